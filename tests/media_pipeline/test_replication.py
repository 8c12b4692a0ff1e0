"""Storage regions on three real SeaweedFS servers: replication, outage, audit and repair, deletion.

`three_regions` makes the harness's three S3 servers regions eu (primary), us and ap;
`spare_server` is a fourth server a test may kill and restart.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Q
from django.utils import timezone
from pytest_django import Settings

from media_pipeline import replication, services
from media_pipeline.models import AssetStatus, MediaAsset, ReplicaState, VersionReplica
from media_pipeline.regions import region_get, regions_all, store_for
from media_pipeline.selectors import asset_complete_regions
from tests.conftest import _s3_region
from tests.pipeline_steps import publish_in_process

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def work_dir(settings: Settings, tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    settings.MEDIA_WORK_DIR = str(path)
    return path


def _publish(key_prefix: str, clip: Path) -> MediaAsset:
    """Run the pipeline steps in this process (their enqueued messages go to a broker no one reads)."""
    asset = publish_in_process(clip, key_prefix=key_prefix)
    assert asset.status == AssetStatus.READY
    return asset


def _digests(region_name: str, prefix: str) -> dict[str, str]:
    store = store_for(region_get(region_name))
    digests = {}
    for key in store.list(prefix):
        digest = hashlib.sha256()
        for chunk in store.read(key):
            digest.update(chunk)
        digests[key] = digest.hexdigest()
    return digests


def _replica(asset: MediaAsset, region: str) -> VersionReplica:
    return VersionReplica.objects.get(prefix=asset.published_prefix, region=region)


def _wait_complete(asset: MediaAsset, regions: list[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = dict(VersionReplica.objects.filter(prefix=asset.published_prefix).values_list("region", "state"))
        if all(states.get(region) == ReplicaState.COMPLETE for region in regions):
            return
        time.sleep(0.2)
    raise AssertionError(f"replicas not complete after {timeout} s: {states}")


def test_a_published_lesson_ends_up_byte_identical_in_all_three_regions(
    three_regions: list[dict[str, Any]], dramatiq_worker, key_prefix: str, demo_clip: Path, work_dir: Path
) -> None:
    asset = services.asset_create(key_prefix=key_prefix)
    with demo_clip.open("rb") as stream:
        services.asset_upload_source(asset=asset, stream=stream, source_name="clip.mp4")
    asset = services.asset_wait(asset_id=asset.pk, timeout=180)
    assert asset.status == AssetStatus.READY

    _wait_complete(asset, ["eu", "us", "ap"])
    prefix = asset.published_prefix
    primary = _digests("eu", prefix)
    index = replication.index_read(store_for(region_get("eu")), prefix)
    assert index is not None and len(primary) == len(index) > 10
    assert {key: expected.sha256 for key, expected in index.items()} == primary
    assert _digests("us", prefix) == primary
    assert _digests("ap", prefix) == primary
    for region in ("us", "ap"):
        row = _replica(asset, region)
        assert (row.objects_copied, row.objects_total, row.last_error) == (len(index), len(index), "")
        assert row.bytes_copied == sum(expected.size for expected in index.values())
        assert row.completed_at is not None
        # Each object carries the SHA-256 of the index in its metadata.
        info = store_for(region_get(region)).head(prefix + "manifest.mpd")
        assert info is not None and info.sha256 == index[prefix + "manifest.mpd"].sha256
    assert asset_complete_regions(asset=asset) == ["eu", "us", "ap"]
    assert replication.replication_lag_seconds() == {"eu": 0.0, "us": 0.0, "ap": 0.0}
    # The originals stay in the primary region only, for re-encoding later.
    assert store_for(region_get("us")).list(f"sources/{asset.public_id}/") == {}
    assert len(store_for(region_get("eu")).list(f"sources/{asset.public_id}/")) == 1


def test_a_rerun_copies_only_what_is_missing_or_wrong(
    three_regions: list[dict[str, Any]],
    key_prefix: str,
    demo_clip: Path,
    work_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asset = _publish(key_prefix, demo_clip)
    replication.replica_sync(replica_id=_replica(asset, "us").pk)
    us = store_for(region_get("us"))
    prefix = asset.published_prefix
    keys = sorted(us.list(prefix))
    us.delete(keys[0])
    us.client.put_object(Bucket=us.bucket, Key=keys[1], Body=b"not the segment")
    VersionReplica.objects.filter(pk=_replica(asset, "us").pk).update(state=ReplicaState.PENDING)

    copied: list[str] = []
    real_copy = replication.copy_object

    def counting_copy(**kwargs: Any) -> None:
        copied.append(kwargs["key"])
        real_copy(**kwargs)

    monkeypatch.setattr(replication, "copy_object", counting_copy)
    replication.replica_sync(replica_id=_replica(asset, "us").pk)
    assert sorted(copied) == keys[:2]
    assert _digests("us", prefix) == _digests("eu", prefix)
    assert _replica(asset, "us").state == ReplicaState.COMPLETE


def test_a_region_stopped_mid_copy_then_restarted_completes_with_nothing_lost(
    settings: Settings,
    spare_server,
    key_prefix: str,
    demo_clip: Path,
    work_dir: Path,
    dramatiq_worker,
    monkeypatch: pytest.MonkeyPatch,
    client,
) -> None:
    settings.STORAGE_REGIONS = [
        {**settings.STORAGE_REGIONS[0], "name": "eu", "primary": True},
        _s3_region("spare", spare_server.endpoint, countries=[]),
    ]
    settings.REPLICATION_CONNECT_TIMEOUT_SECONDS = 1
    settings.REPLICATION_CONCURRENCY = 2
    dramatiq_worker.pause()  # this test drives the first attempt itself
    asset = _publish(key_prefix, demo_clip)
    replica = _replica(asset, "spare")
    assert replica.state == ReplicaState.PENDING
    assert asset_complete_regions(asset=asset) == ["eu"]

    # The region dies after its third object has landed.
    real_copy = replication.copy_object
    landed: list[str] = []

    def copy_then_crash(**kwargs: Any) -> None:
        real_copy(**kwargs)
        landed.append(kwargs["key"])
        if len(landed) == 3:
            spare_server.kill()

    monkeypatch.setattr(replication, "copy_object", copy_then_crash)
    with pytest.raises(replication.RegionUnavailable):
        replication.replica_sync(replica_id=replica.pk)
    monkeypatch.undo()

    replica.refresh_from_db()
    assert replica.state == ReplicaState.DEGRADED
    assert replica.last_error
    assert 3 <= replica.objects_copied < replica.objects_total
    # Viewers are never sent to the incomplete region; operators see the lag.
    assert asset_complete_regions(asset=asset) == ["eu"]
    assert replication.replication_lag_seconds()["spare"] > 0
    metrics = client.get("/metrics").content.decode()
    assert 'media_replication_lag_seconds{region="spare"}' in metrics
    assert 'media_replicas{region="spare",state="degraded"} 1.0' in metrics

    spare_server.start()
    spare_server.wait_ready()
    # What landed before the crash is still there.
    spare = store_for(region_get("spare"))
    assert set(landed[:3]) <= set(spare.list(asset.published_prefix))

    # The operator (or pipeline_resume at start-up) re-sends; the real worker finishes the copy.
    dramatiq_worker.resume()
    out = io.StringIO()
    call_command("replicas", "sync", stdout=out)
    assert "enqueued 1 job(s)" in out.getvalue()
    _wait_complete(asset, ["eu", "spare"])
    assert _digests("spare", asset.published_prefix) == _digests("eu", asset.published_prefix)
    assert asset_complete_regions(asset=asset) == ["eu", "spare"]
    assert replication.replication_lag_seconds()["spare"] == 0.0
    out = io.StringIO()
    call_command("replicas", "verify", stdout=out)
    assert out.getvalue().strip().endswith("checked 1 version(s) in 2 region(s): 0 problem(s), 0 repaired")
    store_for(region_get("spare")).delete_prefix(key_prefix + "/")


def test_verify_finds_corrupt_and_missing_objects_and_repair_fixes_them(
    three_regions: list[dict[str, Any]], key_prefix: str, demo_clip: Path, work_dir: Path
) -> None:
    asset = _publish(key_prefix, demo_clip)
    for region in ("us", "ap"):
        replication.replica_sync(replica_id=_replica(asset, region).pk)
    prefix = asset.published_prefix
    good = _digests("eu", prefix)
    us, ap = (store_for(region_get(name)) for name in ("us", "ap"))
    segment = next(key for key in sorted(good) if key.endswith(".m4s"))
    size = us.head(segment).size
    # Same size, different bytes, checksum metadata copied over: only a full read can tell.
    us.client.put_object(Bucket=us.bucket, Key=segment, Body=b"\0" * size, Metadata={"sha256": good[segment]})
    ap.delete(prefix + "master.m3u8")

    out = io.StringIO()
    with pytest.raises(CommandError, match="2 problem"):
        call_command("replicas", "verify", stdout=out)
    lines = out.getvalue().splitlines()
    assert f"us\t{segment}\tcontent does not match its SHA-256" in lines
    assert f"ap\t{prefix}master.m3u8\tmissing" in lines
    assert lines[-1] == "checked 1 version(s) in 3 region(s): 2 problem(s), 0 repaired"
    # Damaged copies are taken out of playback until repaired.
    assert (_replica(asset, "us").state, _replica(asset, "ap").state) == (ReplicaState.DEGRADED,) * 2
    assert asset_complete_regions(asset=asset) == ["eu"]

    out = io.StringIO()
    call_command("replicas", "verify", "--repair", stdout=out)
    assert out.getvalue().splitlines()[-1] == "checked 1 version(s) in 3 region(s): 2 problem(s), 2 repaired"
    assert _digests("us", prefix) == good
    assert _digests("ap", prefix) == good
    assert asset_complete_regions(asset=asset) == ["eu", "us", "ap"]

    out = io.StringIO()
    call_command("replicas", "verify", stdout=out)
    assert out.getvalue().strip() == "checked 1 version(s) in 3 region(s): 0 problem(s), 0 repaired"


def test_quick_verify_catches_an_object_replaced_by_hand(
    three_regions: list[dict[str, Any]], key_prefix: str, demo_clip: Path, work_dir: Path
) -> None:
    asset = _publish(key_prefix, demo_clip)
    replication.replica_sync(replica_id=_replica(asset, "us").pk)
    replication.replica_sync(replica_id=_replica(asset, "ap").pk)
    us = store_for(region_get("us"))
    key = asset.published_prefix + "poster.jpg"
    size = us.head(key).size
    us.client.put_object(Bucket=us.bucket, Key=key, Body=b"x" * size)
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("replicas", "verify", "--quick", stdout=out)
    assert f"us\t{key}\tchecksum in metadata missing or different" in out.getvalue().splitlines()


def test_a_copy_from_a_corrupt_source_is_refused_and_taken_from_a_good_region(
    three_regions: list[dict[str, Any]], key_prefix: str, demo_clip: Path, work_dir: Path
) -> None:
    asset = _publish(key_prefix, demo_clip)
    replication.replica_sync(replica_id=_replica(asset, "us").pk)
    prefix = asset.published_prefix
    good = _digests("eu", prefix)
    # The primary's copy of one segment rots; ap must still get the good bytes (from us).
    eu = store_for(region_get("eu"))
    segment = next(key for key in sorted(good) if key.endswith(".m4s"))
    size = eu.head(segment).size
    eu.client.put_object(Bucket=eu.bucket, Key=segment, Body=b"\1" * size)
    replication.replica_sync(replica_id=_replica(asset, "ap").pk)
    assert _digests("ap", prefix) == good


def test_deleting_a_lesson_removes_it_from_every_region_even_one_that_was_down(
    settings: Settings, spare_server, key_prefix: str, demo_clip: Path, work_dir: Path
) -> None:
    from courses.models import Course, Lesson
    from courses.services import lesson_delete

    settings.STORAGE_REGIONS = [
        {**settings.STORAGE_REGIONS[0], "name": "eu", "primary": True},
        _s3_region("spare", spare_server.endpoint, countries=[]),
    ]
    settings.REPLICATION_CONNECT_TIMEOUT_SECONDS = 1
    course = Course.objects.create(slug="c", title="C", published=True)
    lesson = Lesson.objects.create(course=course, title="L", position=0)
    asset = _publish(f"lessons/{lesson.public_id}", demo_clip)
    lesson.asset = asset
    lesson.save()
    replication.replica_sync(replica_id=_replica(asset, "spare").pk)
    prefix = asset.published_prefix
    assert _digests("spare", prefix) == _digests("eu", prefix)

    spare_server.kill()
    lesson_delete(lesson=lesson)
    assert not MediaAsset.objects.filter(pk=asset.pk).exists()
    mine = VersionReplica.objects.filter(
        Q(prefix__startswith=f"lessons/{lesson.public_id}/") | Q(prefix=f"sources/{asset.public_id}/")
    )
    rows = {(row.prefix, row.region): row for row in mine}
    assert {key for key in rows} >= {(prefix, "eu"), (prefix, "spare"), (f"sources/{asset.public_id}/", "eu")}
    for row in rows.values():
        assert row.state == ReplicaState.DELETING
        try:
            replication.replica_collect(replica_id=row.pk)
        except replication.RegionUnavailable:
            assert row.region == "spare"
    eu = store_for(region_get("eu"))
    assert eu.list(f"lessons/{lesson.public_id}/") == {}
    assert eu.list(f"sources/{asset.public_id}/") == {}
    spare_row = VersionReplica.objects.get(prefix=prefix, region="spare")
    assert spare_row.state == ReplicaState.DELETING and spare_row.last_error

    spare_server.start()
    spare_server.wait_ready()
    assert store_for(region_get("spare")).list(prefix) != {}
    out = io.StringIO()
    call_command("replicas", "sync", stdout=out)  # re-sends what is due; here we run it in-process
    for row in VersionReplica.objects.filter(state=ReplicaState.DELETING):
        replication.replica_collect(replica_id=row.pk)
    assert store_for(region_get("spare")).list(f"lessons/{lesson.public_id}/") == {}
    states = set(mine.values_list("state", flat=True))
    assert states == {ReplicaState.DELETED}


def test_an_old_version_is_collected_everywhere_only_after_its_tokens_expired(
    three_regions: list[dict[str, Any]], settings: Settings, key_prefix: str, demo_clip: Path, work_dir: Path
) -> None:
    asset = _publish(key_prefix, demo_clip)
    for region in ("us", "ap"):
        replication.replica_sync(replica_id=_replica(asset, region).pk)
    v1 = asset.published_prefix
    with demo_clip.open("rb") as stream:
        services.asset_upload_source(asset=asset, stream=stream, source_name="again.mp4")
    services.asset_probe(asset_id=asset.pk)
    services.asset_transcode(asset_id=asset.pk)
    published = timezone.now()
    services.asset_publish(asset_id=asset.pk)
    asset.refresh_from_db()
    assert asset.published_prefix == f"{key_prefix}/v2/"

    old = list(VersionReplica.objects.filter(prefix=v1).order_by("region"))
    assert [(row.region, row.state) for row in old] == [(r, ReplicaState.DELETING) for r in ("ap", "eu", "us")]
    grace = timedelta(seconds=settings.MEDIA_OLD_VERSION_GRACE_SECONDS)
    assert settings.MEDIA_OLD_VERSION_GRACE_SECONDS >= settings.PLAYBACK_TOKEN_TTL_SECONDS
    for row in old:
        assert published + grace <= row.delete_after <= timezone.now() + grace
        replication.replica_collect(replica_id=row.pk)  # too early: a viewer may still hold a v1 token
    for region in regions_all():
        assert store_for(region).list(v1) != {}

    VersionReplica.objects.filter(prefix=v1).update(delete_after=timezone.now() - timedelta(seconds=1))
    for row in old:
        replication.replica_collect(replica_id=row.pk)
    for region in regions_all():
        assert store_for(region).list(v1) == {}
    assert store_for(region_get("eu")).list(asset.published_prefix) != {}


def test_regions_on_the_same_store_copy_server_side(
    settings: Settings, s3, key_prefix: str, demo_clip: Path, work_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from media_pipeline.regions import S3Store

    s3.create_bucket(Bucket="lessons-same-store")
    settings.STORAGE_REGIONS = [
        {**settings.STORAGE_REGIONS[0], "name": "eu", "primary": True},
        {**settings.STORAGE_REGIONS[0], "name": "eu-backup", "primary": False, "bucket": "lessons-same-store"},
    ]
    asset = _publish(key_prefix, demo_clip)

    def no_streaming(self: S3Store, key: str) -> None:
        raise AssertionError("a same-store copy must not stream the bytes through the worker")

    monkeypatch.setattr(S3Store, "open", no_streaming)
    replication.replica_sync(replica_id=_replica(asset, "eu-backup").pk)
    monkeypatch.undo()
    assert _replica(asset, "eu-backup").state == ReplicaState.COMPLETE
    assert _digests("eu-backup", asset.published_prefix) == _digests("eu", asset.published_prefix)
    store_for(region_get("eu-backup")).delete_prefix(key_prefix + "/")


def test_a_copy_held_by_a_live_worker_is_left_alone_and_one_whose_worker_died_is_taken_over(
    three_regions: list[dict[str, Any]], key_prefix: str
) -> None:
    asset = MediaAsset.objects.create(key_prefix=key_prefix, status=AssetStatus.READY, published_version=1)
    now = timezone.now()
    row = VersionReplica.objects.create(
        asset=asset, prefix=asset.published_prefix, region="us", state=ReplicaState.COPYING,
        lease_until=now + timedelta(minutes=4), available_at=now, attempts=1,
    )  # fmt: skip
    replication.replica_sync(replica_id=row.pk)  # another worker holds it: nothing happens
    row.refresh_from_db()
    assert (row.state, row.attempts, row.last_error) == (ReplicaState.COPYING, 1, "")

    VersionReplica.objects.filter(pk=row.pk).update(lease_until=now - timedelta(seconds=1))
    # Taken over; no region holds this (empty) version, so it ends degraded with the reason, for good.
    with pytest.raises(replication.NoGoodSource):
        replication.replica_sync(replica_id=row.pk)
    row.refresh_from_db()
    assert (row.state, row.attempts) == (ReplicaState.DEGRADED, 2)
    assert row.last_error == f"no region holds the index of {asset.published_prefix}"


def test_a_large_object_crosses_stores_as_a_verified_multipart_upload(
    three_regions: list[dict[str, Any]], key_prefix: str
) -> None:
    from media_pipeline.regions import PART_SIZE

    eu, us = store_for(region_get("eu")), store_for(region_get("us"))
    prefix = key_prefix + "/v1/"
    big = bytes(range(256)) * ((2 * PART_SIZE + 12345) // 256)  # two full parts and a short last one
    small = b"#EXTM3U\n"
    files = {}
    for name, data in (("video/1.m4s", big), ("master.m3u8", small)):
        digest = hashlib.sha256(data).hexdigest()
        eu.put(prefix + name, io.BytesIO(data), sha256=digest, content_type="video/mp4")
        files[name] = {"size": len(data), "sha256": digest}
    index = json.dumps({"files": files}).encode()
    eu.put(prefix + "files.json", io.BytesIO(index), sha256=hashlib.sha256(index).hexdigest(), content_type="x")
    asset = MediaAsset.objects.create(key_prefix=key_prefix, status=AssetStatus.READY, published_version=1)
    replication.replicas_record_published(asset=asset, version=1, previous_version=None)

    replication.replica_sync(replica_id=_replica(asset, "us").pk)
    assert _replica(asset, "us").state == ReplicaState.COMPLETE
    head = us.client.head_object(Bucket=us.bucket, Key=prefix + "video/1.m4s")
    assert head["ETag"].endswith('-3"')  # three parts: streamed in bounded pieces, not one body
    assert head["Metadata"]["sha256"] == files["video/1.m4s"]["sha256"]
    assert _digests("us", prefix) == _digests("eu", prefix)
