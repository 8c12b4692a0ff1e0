"""Chunked encoding of a long source across workers: start, encode one chunk, join (docs/adr/0016).

The transcode step hands a long source to ``chunked_build_start``, which records the chunks of the
version (EncodeChunk rows: the video rungs of each GOP-aligned range of frames, and the whole audio)
and sends one message per chunk not done yet. Before that, once per build, the source is split without
re-encoding into a fragmented MP4 of its video and a file of its audio, stored under the build's work
prefix (docs/adr/0029). Any worker encodes any chunk: it downloads only its byte range of the split
video (or the audio), encodes its frames and puts the outputs under the build's work prefix in storage. The worker that
completes the last chunk sends the join; the join claims the build (compare-and-set, so it runs once),
concatenates each rung's chunks without re-encoding, packages and uploads the version exactly as a
one-process encode does, moves the asset on to publishing and removes the work objects.

A rerun (redelivery, `pipeline_resume`) sends only the chunks not done; a chunk held by a live worker
(its lease, renewed with every progress report) is retried later, and one whose worker died is taken
over when the lease passes. A chunk whose outputs are missing at join time is encoded again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from core.leases import lapsed, lease_release, lease_remaining, lease_renew, lease_take
from core.tasks import send_on_commit
from media_pipeline import chunking, storage, versions, workflow
from media_pipeline.ffmpeg import AUDIO_FILE, run_with_progress, rung_file
from media_pipeline.ladder import Rung, output_fps
from media_pipeline.models import AssetStatus, ChunkedBuild, ChunkState, EncodeChunk, MediaAsset
from media_pipeline.probe import run_ffprobe
from media_pipeline.steps.package import package_and_upload
from media_pipeline.tools import ToolFailed, run_tool

logger = logging.getLogger(__name__)

# A join does not report progress; a joiner that died is replaced after this long.
JOIN_LEASE_SECONDS = 30 * 60
# The split source under the build's work prefix; the index is written last (docs/adr/0029).
SPLIT_VIDEO = "source/video.mp4"
SPLIT_AUDIO = "source/audio"  # MOV, MPEG-TS or Matroska, as the source (chunking.split_audio_format)
SPLIT_INDEX = "source/index.json"


class ChunkBusy(Exception):
    """Another worker holds this chunk (or the join); try again after ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ChunkAbandoned(Exception):
    """The build a worker is encoding for is over (its asset deleted, a newer upload, a failure)."""


def wants_chunks(asset: MediaAsset) -> bool:
    """A source with pictures longer than MEDIA_CHUNK_MIN_SECONDS that makes more than one chunk."""
    duration = float(asset.probe.get("duration") or 0)
    if not asset.ladder or duration <= settings.MEDIA_CHUNK_MIN_SECONDS:
        return False
    return len(_plan(asset, chunk_seconds=settings.MEDIA_CHUNK_SECONDS)) > 1


def _plan(asset: MediaAsset, *, chunk_seconds: int) -> list[chunking.Chunk]:
    return chunking.plan_chunks(
        duration=float(asset.probe["duration"]), source_fps=float(asset.probe["fps"]), chunk_seconds=chunk_seconds
    )


def chunked_build_start(*, asset: MediaAsset) -> ChunkedBuild:
    """Record the chunks of the version being built (once), split the source for them (once) and send
    every chunk not done yet, or the join when all are. Safe to call again at any time: that is how a
    stalled build is resumed."""
    with transaction.atomic():
        build, created = ChunkedBuild.objects.get_or_create(
            asset=asset, version=asset.building_version, defaults={"chunk_seconds": settings.MEDIA_CHUNK_SECONDS}
        )
        if created:
            rows = [
                EncodeChunk(build=build, kind=EncodeChunk.Kind.VIDEO, index=c.index, start_frame=c.start_frame,
                            end_frame=c.end_frame)
                for c in _plan(asset, chunk_seconds=build.chunk_seconds)
            ]  # fmt: skip
            if asset.probe.get("has_audio"):
                rows.append(EncodeChunk(build=build, kind=EncodeChunk.Kind.AUDIO, index=0))
            EncodeChunk.objects.bulk_create(rows)
            stale = list(
                ChunkedBuild.objects.filter(asset=asset, version__lt=build.version).exclude(
                    state=ChunkedBuild.State.JOINED
                )
            )
        else:
            stale = []
    if build.chunks.exclude(state=ChunkState.DONE).exists():
        try:
            split_source(build)
        except Exception:
            if _build_exists(build):
                raise
        if not _build_exists(build):
            # The asset was deleted while its source was being split: what the split wrote goes too.
            removed = storage.delete_prefix(build.work_prefix())
            logger.info("build %s: its asset was deleted during the split; removed %s work objects", build.pk, removed)
            return build
    with transaction.atomic():
        waiting = list(
            build.chunks.exclude(state=ChunkState.DONE).order_by("kind", "index").values_list("pk", flat=True)
        )
        if waiting:
            for chunk_id in waiting:
                send_on_commit("encode_chunk", chunk_id)
        else:
            send_on_commit("join_chunks", build.pk)
    # Chunks of versions a newer upload replaced before they were joined will never be joined.
    for old in stale:
        storage.delete_prefix(old.work_prefix())
    return build


def split_source(build: ChunkedBuild) -> bool:
    """Split the source (once per build) so that each chunk worker reads only its range: its video,
    copied into a fragmented MP4 with a fragment at each keyframe, its audio into a file of its own, and
    an index (written last) of the fragments' byte ranges and times. False when the source cannot be
    split (a codec the MP4 muxer does not take): the chunks then read the whole source, as before."""
    prefix = build.work_prefix()
    if storage.exists(prefix + SPLIT_INDEX):
        return True
    asset = build.asset
    has_audio = bool(asset.probe.get("has_audio"))
    try:
        with versions.work_dir() as tmp:
            work = Path(tmp)
            source, video, audio = work / "source", work / "video.mp4", work / "audio"
            storage.download(key=asset.source_key, target=source)
            # A long download is not a stall for pipeline_resume.
            workflow.heartbeat(asset.pk, in_state=AssetStatus.TRANSCODING, version=build.version)
            ffprobe = settings.FFPROBE_BIN
            described = run_tool(
                chunking.source_format_command(ffprobe=ffprobe, path=source), timeout=120, work_dir=work,
                label="ffprobe",
            )  # fmt: skip
            container = json.loads(described or "{}").get("format", {})
            start = str(container.get("start_time", ""))
            float(start)  # no start time: it cannot be shifted as the unchunked encode shifts it (ValueError)
            run_tool(
                chunking.split_command(
                    ffmpeg=settings.FFMPEG_BIN, source=source, video=video, audio=audio if has_audio else None,
                    audio_format=chunking.split_audio_format(str(container.get("format_name", ""))),
                    threads=settings.ENCODE_THREADS,
                ),
                timeout=settings.ENCODE_TIMEOUT_SECONDS,
                nice=settings.MEDIA_LADDER_NICE,
                work_dir=work,
            )  # fmt: skip
            listing = run_tool(
                chunking.keyframes_command(ffprobe=ffprobe, path=video),
                timeout=settings.ENCODE_TIMEOUT_SECONDS,
                nice=settings.MEDIA_LADDER_NICE,
                work_dir=work,
                label="ffprobe",
            )
            workflow.heartbeat(asset.pk, in_state=AssetStatus.TRANSCODING, version=build.version)
            init, found = chunking.fragments(
                boxes=chunking.top_level_boxes(chunking.box_headers(video)), keyframes=_key_packets(listing)
            )
            storage.save_file(key=prefix + SPLIT_VIDEO, source=video)
            if has_audio:
                storage.save_file(key=prefix + SPLIT_AUDIO, source=audio)
            index = work / "index.json"
            index.write_text(
                json.dumps(
                    {
                        "start_time": start,
                        "init": init,
                        "fragments": [[f.start, f.end, f.time] for f in found],
                        "audio": has_audio,
                    }
                )
            )
            storage.save_file(key=prefix + SPLIT_INDEX, source=index)
    except (ToolFailed, ValueError) as exc:
        logger.warning("build %s: the source could not be split (%s); each chunk reads the whole source", build.pk,
                       exc)  # fmt: skip
        return False
    return True


def _key_packets(listing: str) -> list[tuple[float, int]]:
    keys = []
    for line in listing.splitlines():
        time, pos, flags = (line.split(",") + ["", "", ""])[:3]
        if flags.startswith("K") and time not in ("", "N/A") and pos.isdigit():
            keys.append((float(time), int(pos)))
    return keys


def _split_index(build: ChunkedBuild) -> dict[str, Any] | None:
    """The split source's index, or None when the build has none (the source could not be split)."""
    key = build.work_prefix() + SPLIT_INDEX
    if not storage.exists(key):
        return None
    index: dict[str, Any] = json.loads(storage.read_bytes(key))
    return index


def _current(build: ChunkedBuild) -> bool:
    """Whether the asset is still building this version (a newer upload or a failure ends it)."""
    asset = MediaAsset.objects.filter(pk=build.asset_id).values("status", "building_version").first()
    return (
        asset is not None and asset["status"] == AssetStatus.TRANSCODING and asset["building_version"] == build.version
    )


def _build_exists(build: ChunkedBuild) -> bool:
    """False once the asset is deleted (its builds and chunks go with it)."""
    return ChunkedBuild.objects.filter(pk=build.pk).exists()


def _abandoned(chunk: EncodeChunk) -> bool:
    """The chunk's work is no longer wanted: its asset was deleted, or the build is over."""
    return not EncodeChunk.objects.filter(pk=chunk.pk).exists() or not _current(chunk.build)


def _stop_abandoned(chunk: EncodeChunk, written: list[str]) -> None:
    """Stop cleanly: remove what this worker wrote (the asset's deletion may already have swept the work
    prefix) and say so once, without a traceback or a retry."""
    for key in written:
        storage.delete_prefix(key)
    logger.info(
        "chunk %s of build %s: its asset was deleted or no longer builds this version; stopped, %s outputs removed",
        chunk.index,
        chunk.build_id,
        len(written),
    )


def chunk_encode(*, chunk_id: int) -> None:
    """Encode one chunk (its video rungs, or the audio) and store its outputs; send the join after the last."""
    chunk = EncodeChunk.objects.select_related("build__asset").filter(pk=chunk_id).first()
    if chunk is None or not _current(chunk.build):
        return
    now = timezone.now()
    claimed = lease_take(
        EncodeChunk,
        chunk.pk,
        when=Q(state=ChunkState.PENDING) | (Q(state=ChunkState.RUNNING) & lapsed(now)),
        seconds=settings.MEDIA_CHUNK_LEASE_SECONDS,
        now=now,
        state=ChunkState.RUNNING,
        attempts=F("attempts") + 1,
        progress=0,
    )
    if not claimed:
        state = EncodeChunk.objects.filter(pk=chunk.pk).values_list("state", flat=True).first()
        if state is None or state == ChunkState.DONE:
            return  # a duplicate message of a chunk already encoded: nothing to do
        held_for = lease_remaining(EncodeChunk, chunk.pk, now=now)
        raise ChunkBusy(f"chunk {chunk.pk} is being encoded by another worker", retry_after=max(1.0, held_for + 1))
    build, asset = chunk.build, chunk.build.asset
    attempt = EncodeChunk.objects.filter(pk=chunk.pk).values_list("attempts", flat=True).get()
    written: list[str] = []  # storage keys this worker wrote, removed again if the build is abandoned
    try:
        with versions.work_dir() as tmp:
            work = Path(tmp)
            if chunk.kind == EncodeChunk.Kind.AUDIO:
                _encode_audio(asset, chunk, work, written)
            else:
                _encode_video(asset, chunk, work, written)
    except ToolFailed as exc:
        if _abandoned(chunk):
            _stop_abandoned(chunk, written)
            return
        reason = f"encoding failed: {exc}"
        workflow.fail(asset.pk, version=build.version, in_state=AssetStatus.TRANSCODING, reason=reason)
        return
    except BaseException:
        # The asset deleted mid-chunk (its source or split gone from storage, or ChunkAbandoned from a
        # progress report): nothing to retry.
        if _abandoned(chunk):
            _stop_abandoned(chunk, written)
            return
        # Let a retry (here or on another worker) take the chunk at once rather than after the lease.
        lease_release(
            EncodeChunk, chunk.pk, when=Q(state=ChunkState.RUNNING, attempts=attempt), state=ChunkState.PENDING
        )
        raise
    with transaction.atomic():
        # One completion at a time per build: the last one sees every other chunk done and sends the join.
        if ChunkedBuild.objects.select_for_update().filter(pk=build.pk).first() is None:
            gone = True
        else:
            gone = False
            lease_release(
                EncodeChunk,
                chunk.pk,
                when=Q(state=ChunkState.RUNNING),
                state=ChunkState.DONE,
                progress=100,
                encodes=F("encodes") + 1,
            )
            _asset_progress(build)
            if not build.chunks.exclude(state=ChunkState.DONE).exists():
                send_on_commit("join_chunks", build.pk)
            # A chunk whose worker died (lease passed) has lost its message too: send it again now rather
            # than when the asset has been idle long enough for pipeline_resume.
            orphans = build.chunks.filter(Q(state=ChunkState.RUNNING) & lapsed(timezone.now()))
            for orphan_id in orphans.values_list("pk", flat=True):
                send_on_commit("encode_chunk", orphan_id)
    if gone:  # the asset was deleted while this chunk was being encoded or uploaded
        _stop_abandoned(chunk, written)


def _encode_video(asset: MediaAsset, chunk: EncodeChunk, work: Path, written: list[str]) -> None:
    probe = asset.probe
    rungs = [Rung(**rung) for rung in asset.ladder]
    source, encoded = work / "source", work / "encoded"
    encoded.mkdir()
    plan = chunking.Chunk(index=chunk.index, start_frame=chunk.start_frame, end_frame=chunk.end_frame)
    fps = output_fps(float(probe["fps"]))
    end = chunk.end_frame / fps if chunk.end_frame is not None else float(probe["duration"])

    def encode(seek: bool, source_start: str | None = None) -> None:
        for stale in encoded.iterdir():
            stale.unlink()
        run_with_progress(
            chunking.chunk_encode_command(
                ffmpeg=settings.FFMPEG_BIN,
                source=source,
                out_dir=encoded,
                rungs=rungs,
                source_fps=float(probe["fps"]),
                chunk=plan,
                seek=seek,
                source_start=source_start,
                preset=settings.ENCODE_PRESET,
                threads=settings.ENCODE_THREADS,
                interlaced=bool(probe.get("interlaced", False)),
            ),
            duration=max(0.1, end - chunk.start_frame / fps),
            timeout=settings.ENCODE_TIMEOUT_SECONDS,
            nice=settings.MEDIA_LADDER_NICE,
            on_progress=_chunk_progress_writer(chunk),
            every_seconds=workflow.PROGRESS_EVERY_SECONDS,
            work_dir=work,
        )
        # A seek that landed late shows as a chunk starting after 0 (or, but for the last, short of frames).
        start, frames = _start_and_frames(encoded / rung_file(rungs[-1]))
        if start > 0.5 / fps:
            raise ToolFailed(f"chunk {plan.index} starts at {start:.3f} s, not 0")
        if plan.end_frame is not None and frames != plan.end_frame - plan.start_frame:
            raise ToolFailed(f"chunk {plan.index} has {frames} frames, expected {plan.end_frame - plan.start_frame}")

    index = _split_index(chunk.build)
    done = False
    if index is not None:
        # Only this chunk's range of the split video: its init segment and its fragments (docs/adr/0029).
        found = [chunking.Fragment(start=a, end=b, time=t) for a, b, t in index["fragments"]]
        begin, finish = chunking.chunk_byte_range(
            fragments=found, chunk=plan, source_fps=float(probe["fps"]), source_start=float(index["start_time"])
        )
        storage.download_ranges(
            key=chunk.build.work_prefix() + SPLIT_VIDEO, ranges=[(0, int(index["init"])), (begin, finish)],
            target=source,
        )  # fmt: skip
        try:
            encode(False, source_start=str(index["start_time"]))
            done = True
        except ToolFailed:
            logger.warning("chunk %s of build %s: its range of the split source failed; encoding it from the "
                           "whole source", chunk.index, chunk.build_id, exc_info=True)  # fmt: skip
    if not done:
        storage.download(key=asset.source_key, target=source)
        format_name = str(
            run_ffprobe(ffprobe=settings.FFPROBE_BIN, path=source).get("format", {}).get("format_name", "")
        )
        seek = chunking.seekable(format_name)
        try:
            encode(seek)
        except ToolFailed:
            if not seek:
                raise
            # A container that claims an index but seeks badly: decode from the start instead (always exact).
            logger.warning("chunk %s of build %s: seeking failed; encoding it again from the start", chunk.index,
                           chunk.build_id, exc_info=True)  # fmt: skip
            encode(False)
    prefix = chunk.build.work_prefix()
    for rung in rungs:
        key = prefix + chunking.chunk_file(chunk.index, rung_file(rung))
        written.append(key)
        storage.save_file(key=key, source=encoded / rung_file(rung))


def _start_and_frames(path: Path) -> tuple[float, int]:
    command = chunking.frame_count_command(ffprobe=settings.FFPROBE_BIN, path=path)
    stdout = run_tool(command, timeout=120, work_dir=path.parent, label="ffprobe")
    start, _, frames = stdout.strip().partition(",")
    if not frames.isdigit() or start in ("", "N/A"):
        raise ToolFailed(f"chunk {path.name} has no video frames")
    return float(start), int(frames)


def _encode_audio(asset: MediaAsset, chunk: EncodeChunk, work: Path, written: list[str]) -> None:
    source, encoded = work / "source", work / "encoded"
    encoded.mkdir()
    index = _split_index(chunk.build)
    source_start = None
    if index is not None and index.get("audio"):
        # The split's audio alone: a small fraction of the source (docs/adr/0029).
        storage.download(key=chunk.build.work_prefix() + SPLIT_AUDIO, target=source)
        source_start = str(index["start_time"])
    else:
        storage.download(key=asset.source_key, target=source)
    run_with_progress(
        chunking.audio_encode_command(
            ffmpeg=settings.FFMPEG_BIN,
            source=source,
            out_dir=encoded,
            threads=settings.ENCODE_THREADS,
            source_start=source_start,
        ),
        duration=float(asset.probe["duration"]),
        timeout=settings.ENCODE_TIMEOUT_SECONDS,
        nice=settings.MEDIA_LADDER_NICE,
        on_progress=_chunk_progress_writer(chunk),
        every_seconds=workflow.PROGRESS_EVERY_SECONDS,
        work_dir=work,
    )
    written.append(chunk.build.work_prefix() + AUDIO_FILE)
    storage.save_file(key=written[-1], source=encoded / AUDIO_FILE)


def _chunk_progress_writer(chunk: EncodeChunk) -> Callable[[int], None]:
    def write(percent: int) -> None:
        # Progress renews the lease: a live worker keeps its chunk, a dead one loses it soon.
        held = lease_renew(
            EncodeChunk,
            chunk.pk,
            seconds=settings.MEDIA_CHUNK_LEASE_SECONDS,
            when=Q(state=ChunkState.RUNNING),
            progress=percent,
        )
        if not held and _abandoned(chunk):
            raise ChunkAbandoned(f"chunk {chunk.pk}: its build is over")  # stops ffmpeg (tools.run_tool)
        _asset_progress(chunk.build)

    return write


def _asset_progress(build: ChunkedBuild) -> None:
    """The asset's encoding percent: the mean progress of its video chunks (done ones count 100)."""
    video = build.chunks.filter(kind=EncodeChunk.Kind.VIDEO)
    total = video.count()
    done = video.aggregate(total=Sum("progress"))["total"] or 0
    percent = min(99, int(done / total)) if total else 0
    # A heartbeat: an encode that reports progress is alive (pipeline_resume leaves it alone).
    workflow.heartbeat(build.asset_id, in_state=AssetStatus.TRANSCODING, version=build.version, progress=percent)


def chunked_build_join(*, build_id: int) -> None:
    """Join the chunks of a build into the version (once), then move the asset on to publishing."""
    build = ChunkedBuild.objects.select_related("asset").filter(pk=build_id).first()
    if build is None or not _current(build) or build.chunks.exclude(state=ChunkState.DONE).exists():
        return  # gone, superseded, or not ready: the last chunk to finish sends the join again
    now = timezone.now()
    claimed = lease_take(
        ChunkedBuild,
        build.pk,
        when=Q(state=ChunkedBuild.State.ENCODING) | (Q(state=ChunkedBuild.State.JOINING) & lapsed(now)),
        seconds=JOIN_LEASE_SECONDS,
        now=now,
        state=ChunkedBuild.State.JOINING,
        joins=F("joins") + 1,
    )
    if not claimed:
        state = ChunkedBuild.objects.filter(pk=build.pk).values_list("state", flat=True).first()
        if state is None or state == ChunkedBuild.State.JOINED:
            return
        held_for = lease_remaining(ChunkedBuild, build.pk, now=now)
        raise ChunkBusy(f"build {build.pk} is being joined by another worker", retry_after=max(1.0, held_for + 1))
    asset = build.asset
    try:
        with versions.work_dir() as tmp:
            if not _join_and_upload(build, asset, Path(tmp)):
                return
    except ToolFailed as exc:
        if not _build_exists(build):
            _stop_deleted_join(build)
            return
        reason = f"joining chunks failed: {exc}"
        workflow.fail(asset.pk, version=build.version, in_state=AssetStatus.TRANSCODING, reason=reason)
        return
    except BaseException:
        if not _build_exists(build):  # the asset deleted mid-join (its chunk outputs gone): nothing to retry
            _stop_deleted_join(build)
            return
        joining = Q(state=ChunkedBuild.State.JOINING)
        lease_release(ChunkedBuild, build.pk, when=joining, state=ChunkedBuild.State.ENCODING)
        raise
    if not _build_exists(build):
        _stop_deleted_join(build)
        return
    with transaction.atomic():
        lease_release(ChunkedBuild, build.pk, when=Q(state=ChunkedBuild.State.JOINING), state=ChunkedBuild.State.JOINED)
        workflow.advance(
            asset.pk,
            version=build.version,
            from_state=AssetStatus.TRANSCODING,
            to_state=AssetStatus.TRANSCODED,
            progress=100,
        )
    # The version's index is written: a rerun goes straight to publishing and never needs the chunks.
    storage.delete_prefix(build.work_prefix())


def _stop_deleted_join(build: ChunkedBuild) -> None:
    """The asset was deleted while its chunks were being joined: remove the version this join may have
    uploaded after the deletion swept it, and the work objects, and stop without a retry."""
    removed = storage.delete_prefix(build.asset.version_prefix(build.version))
    removed += storage.delete_prefix(build.work_prefix())
    logger.info("build %s: its asset was deleted during the join; stopped, %s objects removed", build.pk, removed)


def _join_and_upload(build: ChunkedBuild, asset: MediaAsset, work: Path) -> bool:
    """Download the chunks, join each rung, package and upload the version. False when chunk outputs were
    missing: those chunks are marked to be encoded again (and sent), and the build waits for them."""
    rungs = [Rung(**rung) for rung in asset.ladder]
    chunks_dir, encoded = work / "chunks", work / "encoded"
    chunks_dir.mkdir()
    encoded.mkdir()
    prefix = build.work_prefix()
    rows = list(build.chunks.order_by("kind", "index"))
    missing = []
    for row in rows:
        names: list[tuple[str, Path | None]] = (
            [(AUDIO_FILE, encoded / AUDIO_FILE)]
            if row.kind == EncodeChunk.Kind.AUDIO
            else [(chunking.chunk_file(row.index, rung_file(r)), None) for r in rungs]
        )
        for name, target in names:
            if not storage.exists(prefix + name):
                missing.append(row.pk)
                break
            storage.download(key=prefix + name, target=target or chunks_dir / name)
    if missing:
        logger.warning("build %s: outputs of chunks %s are missing; encoding them again", build.pk, missing)
        with transaction.atomic():
            for chunk_id in missing:
                lease_release(EncodeChunk, chunk_id, state=ChunkState.PENDING, progress=0)
            lease_release(
                ChunkedBuild, build.pk, when=Q(state=ChunkedBuild.State.JOINING), state=ChunkedBuild.State.ENCODING
            )
            for chunk_id in missing:
                send_on_commit("encode_chunk", chunk_id)
        return False
    plan = [
        chunking.Chunk(index=r.index, start_frame=r.start_frame, end_frame=r.end_frame)
        for r in rows
        if r.kind == EncodeChunk.Kind.VIDEO
    ]
    fps = output_fps(float(asset.probe["fps"]))
    for rung in rungs:
        listing = chunks_dir / f"{rung.name}.{chunking.CONCAT_LIST}"
        listing.write_text(chunking.concat_list(rung=rung, chunks=plan, fps=fps))
        run_tool(
            chunking.join_command(ffmpeg=settings.FFMPEG_BIN, concat_file=listing, target=encoded / rung_file(rung)),
            timeout=settings.ENCODE_TIMEOUT_SECONDS,
            nice=settings.MEDIA_LADDER_NICE,
            work_dir=work,
        )
    # The poster comes from the largest rung: the source is not downloaded again just for one frame.
    package_and_upload(
        asset,
        asset.version_prefix(build.version),
        work=work,
        encoded=encoded,
        poster_source=encoded / rung_file(rungs[0]),
    )
    return True
