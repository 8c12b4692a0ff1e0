"""The pipeline run in the test's own process (no broker or worker), and a version fetched from storage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core import tasks
from media_pipeline import services, storage, workflow
from media_pipeline.models import MediaAsset

# The messages the pipeline sends: its steps, and the chunks and joins of a chunked encode.
PIPELINE_ACTORS = frozenset({*workflow.NEXT_STEP.values(), "encode_chunk", "join_chunks"})


def record_sends(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """The pipeline's messages, ``(actor name, id)`` in the order sent, recorded instead of sent (every
    other message still goes to the broker). Sends after commit are recorded when the commit happens."""
    sent: list[tuple[Any, ...]] = []
    real_send_now = tasks.send_now

    def send_now(actor_name: str, *args: Any, delay_ms: int | None = None) -> bool:
        if actor_name not in PIPELINE_ACTORS:
            return real_send_now(actor_name, *args, delay_ms=delay_ms)
        sent.append((actor_name, *args))
        return True

    monkeypatch.setattr(tasks, "send_now", send_now)
    return sent


def publish_in_process(path: Path, *, key_prefix: str, asset: MediaAsset | None = None, **create: Any) -> MediaAsset:
    """Upload ``path`` (to a new asset made with ``create``, or to ``asset``) and run probe, transcode and
    publish here; the messages they enqueue go to a broker no one reads. The caller checks the outcome."""
    asset = asset or services.asset_create(key_prefix=key_prefix, **create)
    with path.open("rb") as stream:
        services.asset_upload_source(asset=asset, stream=stream, source_name=path.name)
    services.asset_probe(asset_id=asset.pk)
    services.asset_transcode(asset_id=asset.pk)
    services.asset_publish(asset_id=asset.pk)
    asset.refresh_from_db()
    return asset


def download_prefix(prefix: str, target: Path) -> dict[str, Path]:
    """Every object under ``prefix`` downloaded below ``target``: name (relative to the prefix) -> file."""
    files = {}
    for key in storage.list_keys(prefix):
        name = key[len(prefix) :]
        storage.download(key=key, target=target / name)
        files[name] = target / name
    return files
