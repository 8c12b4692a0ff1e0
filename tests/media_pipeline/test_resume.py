"""A broker outage never loses an upload: the row is kept and `pipeline_resume` moves it on."""

from __future__ import annotations

import io
from datetime import timedelta

import dramatiq
import pytest
from django.core.management import call_command
from django.utils import timezone

from media_pipeline import services
from media_pipeline.models import AssetStatus, MediaAsset
from media_pipeline.steps import transcode

pytestmark = pytest.mark.django_db(transaction=True)


def test_upload_survives_a_broker_outage_and_is_resumed(key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    broker = dramatiq.get_broker()
    broker.flush_all()

    def broker_down(*args: object, **kwargs: object) -> None:
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(broker, "enqueue", broker_down)
    asset = services.asset_create(key_prefix=key_prefix)
    services.asset_upload_source(asset=asset, stream=io.BytesIO(b"x" * 1000), source_name="a.mp4")
    asset.refresh_from_db()
    assert asset.status == AssetStatus.UPLOADED  # kept, not lost
    assert asset.source_size == 1000
    monkeypatch.undo()

    # Not idle long enough yet: nothing is re-sent.
    assert services.assets_resume_stalled(idle_for=timedelta(minutes=10)) == []
    MediaAsset.objects.filter(pk=asset.pk).update(updated_at=timezone.now() - timedelta(minutes=11))
    out = io.StringIO()
    call_command("pipeline_resume", stdout=out)
    assert out.getvalue().splitlines()[0] == "resumed 1 asset(s)"
    queued = broker.client.lrange(f"{broker.namespace}:quick", 0, -1)
    assert len(queued) == 1
    broker.flush_all()


def test_finished_and_failed_assets_are_left_alone(key_prefix: str) -> None:
    old = timezone.now() - timedelta(days=1)
    MediaAsset.objects.create(key_prefix=key_prefix + "a", status=AssetStatus.READY, published_version=1)
    MediaAsset.objects.create(key_prefix=key_prefix + "b", status=AssetStatus.FAILED)
    MediaAsset.objects.update(updated_at=old)
    assert services.assets_resume_stalled(idle_for=timedelta(minutes=1)) == []


def test_an_encode_that_reports_progress_is_not_resumed_as_stalled(key_prefix: str) -> None:
    asset = MediaAsset.objects.create(key_prefix=key_prefix, status=AssetStatus.TRANSCODING, building_version=1)
    MediaAsset.objects.filter(pk=asset.pk).update(updated_at=timezone.now() - timedelta(minutes=30))
    assert services.assets_resume_stalled(idle_for=timedelta(minutes=10)) == [asset.pk]
    dramatiq.get_broker().flush_all()

    transcode.progress_writer(asset)(42)  # the running encode reports progress
    assert services.assets_resume_stalled(idle_for=timedelta(minutes=10)) == []
    asset.refresh_from_db()
    assert asset.progress == 42
