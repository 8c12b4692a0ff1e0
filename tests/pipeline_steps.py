"""The pipeline run in the test's own process (no broker or worker), and a version fetched from storage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from media_pipeline import services, storage
from media_pipeline.models import MediaAsset


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
