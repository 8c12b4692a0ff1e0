"""The provisional stream: a new upload plays seconds after probe, long before its full ladder exists.

After probe, a new upload of a lesson that is not protected goes to ``provisional`` (instead of
``probed``), and this step:

- repackages the source as it is when a browser plays its bitstream (H.264 8-bit 4:2:0 in a profile
  browsers decode, AAC stereo or no audio, MP4/MOV/TS, not rotated, keyframes at most
  ``MAX_SEGMENT_SECONDS`` apart): Shaka Packager, no encode, one fragmented MP4 per stream cut at the
  source's own keyframes, HLS (byte ranges) and a static on-demand DASH MPD over them;
- otherwise encodes one fast low rung (at most 360p, x264 ``superfast``) plus stereo AAC, and packages
  that the same way;
- adds the poster and the captions and chapters (no storyboard: that waits for the full version),
  uploads it as version ``v<N>`` (the build number, index last), and publishes it with one
  compare-and-set flip (``published_provisional``);
- whatever happened, moves the asset on to ``probed`` with ``building_version = N + 1`` and enqueues
  the full ladder, which is then built and published as any version is. Its flip replaces the
  provisional version, which is removed after the grace period like any replaced version
  (replication.replicas_record_published).

Failure of this step never fails the asset: it is logged and the full ladder runs. See
docs/adr/0015-provisional-stream.md.
"""

from __future__ import annotations

import logging
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from media_pipeline import extras, layout, replication, storage, versions, workflow
from media_pipeline import selectors as media_selectors
from media_pipeline.ffmpeg import (
    AUDIO_FILE,
    DEINTERLACE,
    ffmpeg_preamble,
    input_options,
    poster_command,
    run_with_progress,
)
from media_pipeline.ladder import AUDIO_BITRATE_KBPS, Rung, gop_frames, output_fps
from media_pipeline.models import AssetStatus, MediaAsset
from media_pipeline.packager import VIDEO_FILE, package_command, single_file_inputs
from media_pipeline.probe import parse_probe, run_ffprobe
from media_pipeline.tools import ToolFailed, run_tool

logger = logging.getLogger(__name__)

# Profiles every MSE browser decodes (8-bit 4:2:0); High 10, 4:2:2 and 4:4:4 are not among them.
BROWSER_H264_PROFILES = {"Constrained Baseline", "Baseline", "Main", "High"}
BROWSER_PIXEL_FORMATS = {"yuv420p", "yuvj420p"}
# Containers Shaka Packager reads H.264 and AAC from (ffprobe's format names).
PACKAGER_FORMATS = {"mov", "mp4", "mpegts"}
# A source whose keyframes are further apart than this would give segments players stall on.
MAX_SEGMENT_SECONDS = 10
FAST_RUNG_MAX_SHORT_SIDE = 360
FAST_PRESET = "superfast"
REMUX, FAST_RUNG = "remux", "fast-rung"
UPLOAD_CONCURRENCY = 8


# --- Pure decisions and commands ------------------------------------------------------------------


def remux_refusal(data: dict[str, Any]) -> str | None:
    """Why the source (ffprobe's JSON) cannot be served as it is; None when it can."""
    streams = data.get("streams") or []
    videos = [
        s for s in streams if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
    ]
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    if not videos:
        return "no video stream"
    video = videos[0]
    formats = set(str((data.get("format") or {}).get("format_name") or "").split(","))
    if not formats & PACKAGER_FORMATS:
        return f"container {'/'.join(sorted(formats))}"
    if video.get("codec_name") != "h264":
        return f"video codec {video.get('codec_name')}"
    if video.get("profile") not in BROWSER_H264_PROFILES:
        return f"H.264 profile {video.get('profile')}"
    if video.get("pix_fmt") not in BROWSER_PIXEL_FORMATS:
        return f"pixel format {video.get('pix_fmt')}"
    if video.get("field_order") not in (None, "progressive", "unknown"):
        return "interlaced"
    if parse_probe(data).rotation:
        return "rotated"  # players ignore the container's display matrix
    if audios and (audios[0].get("codec_name") != "aac" or int(audios[0].get("channels") or 0) > 2):
        return f"audio {audios[0].get('codec_name')} with {audios[0].get('channels')} channels"
    return None


def fast_rung(ladder: list[dict[str, Any]]) -> Rung:
    """The largest rung of the planned ladder at most 360p (the smallest when none is)."""
    rungs = sorted((Rung(**rung) for rung in ladder), key=lambda rung: rung.width * rung.height, reverse=True)
    return next((r for r in rungs if min(r.width, r.height) <= FAST_RUNG_MAX_SHORT_SIDE), rungs[-1])


def fast_rung_command(
    *,
    ffmpeg: str,
    source: Path,
    out_dir: Path,
    rung: Rung,
    source_fps: float,
    has_audio: bool,
    threads: int = 0,
    interlaced: bool = False,
) -> list[str]:
    """One quick rung and stereo AAC, with the full ladder's 2-second closed GOPs, the same input
    whitelists, deinterlacing and downmix as encode_command. No loudness normalisation (a filter that
    costs more than this small encode); the full version has it."""
    fps = output_fps(source_fps)
    gop = gop_frames(fps)
    deinterlace = DEINTERLACE + "," if interlaced else ""
    command = [
        *ffmpeg_preamble(ffmpeg, progress=True),
        *input_options(threads=threads), "-i", str(source),
        "-map", "0:V:0", "-an", "-sn", "-dn",
        "-vf", f"{deinterlace}fps={fps},scale={rung.width}:{rung.height}:flags=bilinear,setsar=1,format=yuv420p",
        "-c:v", "libx264", "-preset", FAST_PRESET, "-profile:v", "high",
        "-crf", str(rung.crf), "-maxrate", f"{rung.maxrate_kbps}k", "-bufsize", f"{rung.bufsize_kbps}k",
        "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-flags", "+cgop",
        "-threads", str(threads), "-map_metadata", "-1",
        str(out_dir / VIDEO_FILE),
    ]  # fmt: skip
    if has_audio:
        command += [
            "-map", "0:a:0", "-vn", "-sn", "-dn",
            "-filter:a", "aformat=channel_layouts=stereo,aresample=48000",
            "-c:a", "aac", "-b:a", f"{AUDIO_BITRATE_KBPS}k",
            "-map_metadata", "-1",
            str(out_dir / AUDIO_FILE),
        ]  # fmt: skip
    return command


_TARGET_DURATION = re.compile(r"^#EXT-X-TARGETDURATION:(\d+)\s*$", re.MULTILINE)


def longest_segment_seconds(media_playlist: str) -> int:
    match = _TARGET_DURATION.search(media_playlist)
    if match is None:
        raise ValueError("no EXT-X-TARGETDURATION in the media playlist")
    return int(match.group(1))


# --- The step ---------------------------------------------------------------------------------------


def asset_provisional(*, asset_id: int) -> None:
    """Build and publish the provisional version of the build in progress, then start the full ladder.

    Idempotent: a rerun of the same build finds a complete index and only publishes; a build that
    moved on (a newer upload, or this step already done) is left alone.
    """
    asset = workflow.claim(asset_id, to_state=AssetStatus.PROVISIONAL)
    if asset is None:
        return
    version = asset.building_version
    try:
        _build_and_publish(asset, version)
    except Exception:  # noqa: BLE001 - a provisional stream is a bonus: the full ladder still runs
        logger.exception("asset %s: provisional v%s failed; going on with the full ladder", asset.pk, version)
        _discard_unless_published(asset.pk, version)
    finally:
        _move_on(asset.pk, version)


def _build_and_publish(asset: MediaAsset, version: int) -> None:
    prefix = asset.version_prefix(version)
    if not versions.index_complete(prefix):
        _build(asset, prefix)
    if not _publish(asset, version):
        _discard_unless_published(asset.pk, version)


def _build(asset: MediaAsset, prefix: str) -> None:
    probe = asset.probe
    duration = float(probe["duration"])
    with versions.work_dir() as tmp:
        work = Path(tmp)
        source, encoded, out = work / "source", work / "encoded", work / "out"
        encoded.mkdir()
        out.mkdir()
        storage.download(key=asset.source_key, target=source)
        poster_task = ThreadPoolExecutor(max_workers=1, thread_name_prefix="poster")
        # The poster is one decoded frame: made while the streams are packaged (mostly I/O).
        poster = poster_task.submit(
            run_tool,
            poster_command(
                ffmpeg=settings.FFMPEG_BIN,
                source=source,
                target=work / layout.POSTER,
                at_seconds=min(5.0, duration / 3),
                max_height=720,
            ),
            timeout=120,
            work_dir=work,
        )
        try:
            kind = _streams(asset, source=source, encoded=encoded, out=out)
            poster.result()
        finally:
            poster_task.shutdown(wait=True)
        (work / layout.POSTER).replace(out / layout.POSTER)
        tracks = media_selectors.asset_text_tracks(asset_id=asset.pk)
        extras.write_text_tracks(out=out, tracks=tracks, duration=duration)
        # A fingerprint no full build has: a provisional version is never reused by steps.transcode (_derive_version).
        fingerprint = extras.media_fingerprint(
            source_key=asset.source_key, ladder=[{"provisional": kind}], protected=False
        )
        meta = extras.version_meta(fingerprint=fingerprint, tracks=tracks, has_storyboard=False)
        meta["provisional"] = kind
        versions.upload_version(out, prefix, meta=meta, concurrency=UPLOAD_CONCURRENCY)


def _streams(asset: MediaAsset, *, source: Path, encoded: Path, out: Path) -> str:
    """The packaged streams in ``out``: the source as it is when it can be, else one fast rung."""
    has_audio = bool(asset.probe["has_audio"])
    refusal = remux_refusal(run_ffprobe(ffprobe=settings.FFPROBE_BIN, path=source))
    if refusal is None:
        refusal = _remux(out, source=source, has_audio=has_audio)
    if refusal is None:
        return REMUX
    logger.info("asset %s: provisional stream encoded (%s)", asset.pk, refusal)
    _encode_fast_rung(asset, source, encoded)
    _package(out, video=encoded / VIDEO_FILE, audio=encoded / AUDIO_FILE if has_audio else None)
    return FAST_RUNG


def _remux(out: Path, *, source: Path, has_audio: bool) -> str | None:
    """Package the source as it is into ``out``; the reason when that did not give a good stream."""
    try:
        _package(out, video=source, audio=source if has_audio else None)
        longest = longest_segment_seconds((out / "video.m3u8").read_text())
    except (ToolFailed, ValueError, OSError) as exc:
        refusal: str | None = f"repackaging failed: {exc}"
    else:
        refusal = f"keyframes up to {longest} s apart" if longest > MAX_SEGMENT_SECONDS else None
    if refusal is not None:
        for path in out.iterdir():
            path.unlink()
    return refusal


def _package(out: Path, *, video: Path, audio: Path | None) -> None:
    command = package_command(packager=settings.PACKAGER_BIN, inputs=single_file_inputs(video=video, audio=audio))
    run_tool(command, cwd=out, timeout=settings.ENCODE_TIMEOUT_SECONDS, label="packager")


def _encode_fast_rung(asset: MediaAsset, source: Path, encoded: Path) -> None:
    probe = asset.probe

    def alive(percent: int) -> None:
        # pipeline_resume re-sends steps idle for a while: a long encode that reports is alive.
        workflow.heartbeat(asset.pk, in_state=AssetStatus.PROVISIONAL)

    run_with_progress(
        fast_rung_command(
            ffmpeg=settings.FFMPEG_BIN,
            source=source,
            out_dir=encoded,
            rung=fast_rung(asset.ladder),
            source_fps=float(probe["fps"]),
            has_audio=bool(probe["has_audio"]),
            threads=settings.ENCODE_THREADS,
            interlaced=bool(probe.get("interlaced", False)),
        ),
        duration=float(probe["duration"]),
        timeout=settings.ENCODE_TIMEOUT_SECONDS,
        on_progress=alive,
        every_seconds=30,
        work_dir=encoded.parent,
    )


def _publish(asset: MediaAsset, version: int) -> bool:
    """The provisional flip: only while this build is still the one in progress and still in the
    provisional step, never over a version at least as new, never for a lesson that became protected."""
    meta = versions.read_meta(asset.version_prefix(version))
    now = timezone.now()
    with transaction.atomic():
        row = MediaAsset.objects.select_for_update().filter(pk=asset.pk).first()
        if row is None:
            return False
        flipped = (
            MediaAsset.objects.filter(
                Q(published_version__isnull=True) | Q(published_version__lt=version),
                pk=asset.pk,
                status=AssetStatus.PROVISIONAL,
                building_version=version,
                protected=False,
            ).update(
                published_version=version,
                published_provisional=True,
                published_kid=None,
                published_extras=meta.get("extras", {}),
                published_at=now,
                updated_at=now,
            )
            == 1
        )
        if flipped:
            replication.replicas_record_published(asset=row, version=version, previous_version=row.published_version)
    if flipped:
        logger.info("asset %s: provisional v%s published (%s)", asset.pk, version, meta.get("provisional"))
    return flipped


def _discard_unless_published(asset_id: int, version: int) -> None:
    """Objects of a provisional version that was never published: nobody holds URLs to them."""
    asset = MediaAsset.objects.filter(pk=asset_id).first()
    if asset is None or asset.published_version == version:
        return
    try:
        storage.delete_prefix(asset.version_prefix(version))
    except Exception:  # noqa: BLE001 - asset_delete removes every built prefix in the end
        logger.exception("asset %s: could not remove the unpublished provisional v%s", asset_id, version)


def _move_on(asset_id: int, version: int) -> None:
    """On to the full ladder, as the next version number (the provisional one is immutable now)."""
    workflow.advance(
        asset_id,
        version=version,
        from_state=AssetStatus.PROVISIONAL,
        to_state=AssetStatus.PROBED,
        building_version=version + 1,
        progress=0,
    )
