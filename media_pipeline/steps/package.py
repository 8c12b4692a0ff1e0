"""Packaging a version: the encoded rungs and audio become CMAF segments (encrypted for a protected
asset), with the poster, storyboard and text tracks, uploaded with the index last.

Shared by the one-process encode (steps.transcode) and the join of a chunked one (steps.chunked).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.conf import settings

from media_pipeline import content_keys, cover_picture, extras, layout, versions
from media_pipeline import selectors as media_selectors
from media_pipeline.ffmpeg import cover_extract_command, poster_command, waveform_poster_command
from media_pipeline.ladder import Rung
from media_pipeline.models import ContentKey, MediaAsset
from media_pipeline.packager import (
    Encryption,
    hls_playlist_for_clearkey,
    ladder_inputs,
    package_command,
    write_key_flag_file,
)
from media_pipeline.tools import ToolFailed, run_tool

logger = logging.getLogger(__name__)
POSTER_MAX_HEIGHT = 720


def package_and_upload(asset: MediaAsset, prefix: str, *, work: Path, encoded: Path, poster_source: Path) -> None:
    """Package the encoded rungs and audio in ``encoded`` (encrypted when the asset is protected), add
    the poster (from ``poster_source``), storyboard and text tracks, and upload the version, index last."""
    probe = asset.probe
    rungs = [Rung(**rung) for rung in asset.ladder]
    out = work / "out"
    out.mkdir(exist_ok=True)
    encryption = None
    if asset.protected:
        material = content_key_for(asset, version=asset.building_version)
        encryption = Encryption(
            # In the work folder, removed with it; the key never reaches storage.
            flag_file=write_key_flag_file(work / "keys.flags", kid_hex=material.kid_hex, key_hex=material.key_hex),
            key_uri=settings.DRM_HLS_KEY_URI.format(kid=material.kid_hex),
            protection_systems=tuple(settings.DRM_PROTECTION_SYSTEMS),
        )
    inputs = ladder_inputs(work_dir=encoded, rungs=rungs, has_audio=bool(probe["has_audio"]))
    run_packager(out, package_command(packager=settings.PACKAGER_BIN, inputs=inputs, encryption=encryption))
    if encryption is not None:
        for playlist in out.glob("*.m3u8"):
            playlist.write_text(hls_playlist_for_clearkey(playlist.read_text()))
    write_poster(probe, rungs=rungs, source=poster_source, target=out / layout.POSTER)
    extras.write_storyboard(encoded=encoded, out=out, rungs=rungs, duration=float(probe["duration"]))
    tracks = media_selectors.asset_text_tracks(asset_id=asset.pk)
    extras.write_text_tracks(out=out, tracks=tracks, duration=float(probe["duration"]))
    versions.upload_version(out, prefix, meta=version_meta(asset))


def run_packager(directory: Path, command: list[str]) -> None:
    """Run Shaka Packager inside ``directory``: it writes relative URIs when run inside the output folder."""
    run_tool(command, cwd=directory, timeout=settings.ENCODE_TIMEOUT_SECONDS, label="packager")


def write_poster(probe: dict[str, Any], *, rungs: list[Rung], source: Path, target: Path) -> None:
    """A frame of the video; for a sound-only lesson its cover picture, or else its waveform."""
    if rungs:
        command = poster_command(
            ffmpeg=settings.FFMPEG_BIN,
            source=source,
            target=target,
            at_seconds=min(5.0, float(probe["duration"]) / 3),
            max_height=POSTER_MAX_HEIGHT,
            interlaced=bool(probe.get("interlaced", False)),
        )
        run_tool(command, timeout=120, work_dir=target.parent)
        return
    if probe.get("cover_art") and _write_cover_poster(source=source, target=target):
        return
    # A waveform decodes the whole recording (about a thousand times real time): a longer limit.
    run_tool(waveform_poster_command(ffmpeg=settings.FFMPEG_BIN, source=source, target=target), timeout=600,
             work_dir=target.parent)  # fmt: skip


def _write_cover_poster(*, source: Path, target: Path) -> bool:
    """The attached picture copied out of the source as it is, then decoded with Pillow (both in the
    tools' sandbox): PNG covers too, which the bundled ffmpeg cannot decode. False when the picture
    cannot be used (damaged, not a picture, too many pixels): the caller draws the waveform instead."""
    picture = target.with_name("cover-picture")
    try:
        run_tool(cover_extract_command(ffmpeg=settings.FFMPEG_BIN, source=source, target=picture), timeout=120,
                 work_dir=target.parent)  # fmt: skip
        run_tool(cover_picture.command(picture=picture, target=target, max_height=POSTER_MAX_HEIGHT), timeout=120,
                 work_dir=target.parent, label="cover_picture")  # fmt: skip
    except ToolFailed as exc:
        logger.warning("cover picture not usable, the waveform is drawn instead: %s", exc)
        target.unlink(missing_ok=True)
        return False
    finally:
        picture.unlink(missing_ok=True)
    return True


def version_meta(asset: MediaAsset) -> dict[str, object]:
    """What the index records about the version this build makes (media fingerprint, text tracks)."""
    fingerprint = extras.media_fingerprint(source_key=asset.source_key, ladder=asset.ladder, protected=asset.protected)
    return extras.version_meta(
        fingerprint=fingerprint,
        tracks=media_selectors.asset_text_tracks(asset_id=asset.pk),
        has_storyboard=bool(asset.ladder),
    )


def content_key_for(asset: MediaAsset, *, version: int) -> content_keys.ContentKeyMaterial:
    """The version's content key, made on first use: a rerun of the same version reuses it, so segments
    packaged by an interrupted attempt and by the rerun share one key."""
    secrets = media_selectors.content_key_secrets()
    fresh = content_keys.generate()
    row, _ = ContentKey.objects.get_or_create(
        asset=asset,
        version=version,
        defaults={
            "kid": fresh.kid,
            "key_sealed": content_keys.seal(fresh, secret=secrets[0], asset_id=asset.pk, version=version),
        },
    )
    material, _ = content_keys.open_sealed_any(
        row.key_sealed, kid=row.kid, secrets=secrets, asset_id=asset.pk, version=version
    )
    return material
