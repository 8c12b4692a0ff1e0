"""The transcode step: build the version being built (probed -> transcoding -> transcoded).

A rerun that finds the version's index complete goes straight on to publishing. A version that would
differ from the published one only in its text tracks is derived from it inside storage (no encode,
docs/adr/0013); a long source is encoded in chunks by many workers (steps.chunked, docs/adr/0016);
anything else is one ffmpeg process and one packager run here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from django.conf import settings

from media_pipeline import extras, layout, storage, versions, workflow
from media_pipeline import selectors as media_selectors
from media_pipeline.ffmpeg import encode_command, run_with_progress
from media_pipeline.ladder import Rung
from media_pipeline.models import AssetStatus, MediaAsset
from media_pipeline.steps import chunked
from media_pipeline.steps.package import package_and_upload, version_meta
from media_pipeline.tools import ToolFailed


def asset_transcode(*, asset_id: int) -> None:
    asset = workflow.claim(asset_id, to_state=AssetStatus.TRANSCODING)
    if asset is None:
        return
    prefix = asset.version_prefix(asset.building_version)
    if not versions.index_complete(prefix):
        try:
            reusable = _reusable_published_prefix(asset)
            if reusable is not None:
                _derive_version(asset, source_prefix=reusable, prefix=prefix)
            elif chunked.wants_chunks(asset):
                # Long source: chunks on many workers; the join moves the asset on (docs/adr/0016).
                chunked.chunked_build_start(asset=asset)
                return
            else:
                _build_version(asset, prefix)
        except ToolFailed as exc:
            workflow.fail(
                asset.pk,
                version=asset.building_version,
                in_state=AssetStatus.TRANSCODING,
                reason=f"encoding failed: {exc}",
            )
            return
    workflow.advance(
        asset.pk,
        version=asset.building_version,
        from_state=AssetStatus.TRANSCODING,
        to_state=AssetStatus.TRANSCODED,
        progress=100,
    )


def _build_version(asset: MediaAsset, prefix: str) -> None:
    probe = asset.probe
    rungs = [Rung(**rung) for rung in asset.ladder]
    with versions.work_dir() as tmp:
        work = Path(tmp)
        source, encoded = work / "source", work / "encoded"
        encoded.mkdir()
        storage.download(key=asset.source_key, target=source)
        run_with_progress(
            encode_command(
                ffmpeg=settings.FFMPEG_BIN,
                source=source,
                out_dir=encoded,
                rungs=rungs,
                source_fps=float(probe["fps"]),
                has_audio=bool(probe["has_audio"]),
                preset=settings.ENCODE_PRESET,
                threads=settings.ENCODE_THREADS,
                interlaced=bool(probe.get("interlaced", False)),
            ),
            duration=float(probe["duration"]),
            timeout=settings.ENCODE_TIMEOUT_SECONDS,
            nice=settings.MEDIA_LADDER_NICE,
            on_progress=progress_writer(asset),
            every_seconds=workflow.PROGRESS_EVERY_SECONDS,
            work_dir=work,
        )
        package_and_upload(asset, prefix, work=work, encoded=encoded, poster_source=source)


def progress_writer(asset: MediaAsset) -> Callable[[int], None]:
    """Records the encode's percent on the asset while it is transcoding."""

    def write(percent: int) -> None:
        # updated_at too: a long encode that reports progress is alive, and pipeline_resume (which
        # re-sends steps idle for a while) must not start a second encode of the same version.
        workflow.heartbeat(asset.pk, in_state=AssetStatus.TRANSCODING, progress=percent)

    return write


def _reusable_published_prefix(asset: MediaAsset) -> str | None:
    """The published version's prefix when its segments are what this build would encode again (same
    source, ladder and protection: only text tracks changed). Encrypted versions are always encoded:
    a content key belongs to one version (ContentKey), and sharing one is not worth a caption."""
    if asset.published_version is None or asset.protected or asset.published_kid is not None:
        return None
    prefix = asset.version_prefix(asset.published_version)
    meta = versions.read_meta(prefix)
    if meta.get("media") != version_meta(asset)["media"]:
        return None
    if asset.ladder and "storyboard" not in meta.get("extras", {}):  # published before storyboards
        return None
    return prefix


def _derive_version(asset: MediaAsset, *, source_prefix: str, prefix: str) -> None:
    """A new version that differs from the published one only in its text tracks: every segment, init
    segment, media playlist, poster and storyboard copied inside storage (no download, no encode), the
    two manifests and the text tracks written afresh."""
    index = versions.read_index(source_prefix) or {}
    copied: dict[str, dict[str, object]] = {}
    with versions.work_dir() as tmp:
        out = Path(tmp) / "out"
        out.mkdir()
        for name, meta in index.items():
            if extras.is_text_track_file(name):
                continue
            storage.copy(source_key=source_prefix + name, target_key=prefix + name)
            copied[name] = meta
        for name in (layout.HLS_MASTER, layout.DASH_MANIFEST):
            storage.download(key=source_prefix + name, target=out / name)
        extras.write_text_tracks(
            out=out,
            tracks=media_selectors.asset_text_tracks(asset_id=asset.pk),
            duration=float(asset.probe["duration"]),
        )
        versions.upload_version(out, prefix, meta=version_meta(asset), copied=copied)
