"""The provisional stream: a new upload plays seconds after probe, while its first stream is still growing.

After probe, a new upload of a lesson that is not protected goes to ``provisional`` (instead of
``probed``), and this step, as version ``v<N>`` (the build number):

- streams the source into one ffmpeg (media_pipeline.source_reader: the index first, then the media
  in order; never copied whole first), which writes CMAF segments as it goes: the source's own H.264/AAC
  packets when every browser plays them, otherwise one fast rung of at most 360p plus stereo AAC
  (media_pipeline.quick_stream);
- uploads each segment once it is whole (never rewritten: segments are immutable), then the playlists
  that name it (growing_manifests: an HLS EVENT playlist and a dynamic DASH MPD), so a playlist never
  names a segment that is not in storage; after the first segment of each stream, publishes the version
  with one compare-and-set flip (``published_provisional``);
- closes the playlists when the source is done (ENDLIST, a static MPD), writes the version's index, and
  only then lets other storage regions copy it;
- whatever happened, moves the asset on to ``probed`` with ``building_version = N + 1`` and enqueues
  the full ladder, whose flip replaces the provisional version as it replaces any version.

A worker that dies while the stream grows leaves the step in ``provisional``; the redelivered (or
resumed) message encodes again from the start, uploads only the segments storage does not hold yet,
and rewrites a playlist only once it lists more than the published one. Failure of this step never
fails the asset: it is logged and the full ladder runs. See docs/adr/0015 and 0031.
"""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from media_pipeline import (
    extras,
    fmp4,
    layout,
    quick_stream,
    replication,
    source_reader,
    storage,
    versions,
    workflow,
)
from media_pipeline import selectors as media_selectors
from media_pipeline.ffmpeg import poster_command
from media_pipeline.growing_manifests import Stream, dash_mpd, hls_master, hls_media_playlist, target_duration
from media_pipeline.ladder import AUDIO_BITRATE_KBPS, GOP_SECONDS, Rung
from media_pipeline.models import AssetStatus, MediaAsset
from media_pipeline.quick_stream import AUDIO, FAST_RUNG, REMUX, VIDEO, fast_rung, quick_stream_command
from media_pipeline.text_tracks import CAPTIONS, dash_mpd_with_text, hls_master_with_subtitles, hls_subtitles_playlist
from media_pipeline.tools import ToolFailed, run_tool

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30
# How often the work folder is looked at for new segments while ffmpeg runs (not ffmpeg's -progress: it
# prints nothing until every output, the poster's included, has written something).
COLLECT_SECONDS = 0.1


class RemuxRefused(Exception):
    """The source's own packets would make segments players stall on: encode instead."""


class Abandoned(Exception):
    """The asset was deleted or a newer upload replaced this build while the stream grew."""


# --- The step ---------------------------------------------------------------------------------------


def asset_provisional(*, asset_id: int) -> None:
    """Build and publish the provisional version of the build in progress, then start the full ladder.

    Idempotent: a rerun of the same build finds a complete index and only publishes, or finds a stream
    that was growing and carries on from what storage holds; a build that moved on is left alone.
    """
    asset = workflow.claim(asset_id, to_state=AssetStatus.PROVISIONAL)
    if asset is None:
        return
    version = asset.building_version
    try:
        _build_and_publish(asset, version)
    except Abandoned:
        logger.info("asset %s: provisional v%s stopped (the build moved on)", asset.pk, version)
        _discard_unless_published(asset.pk, version)
    except Exception:  # noqa: BLE001 - a provisional stream is a bonus: the full ladder still runs
        logger.exception("asset %s: provisional v%s failed; going on with the full ladder", asset.pk, version)
        _discard_unless_published(asset.pk, version)
    finally:
        _move_on(asset.pk, version)


def _build_and_publish(asset: MediaAsset, version: int) -> None:
    prefix = asset.version_prefix(version)
    if versions.index_complete(prefix):  # closed by a run that died before or after its flip
        if _publish(asset, version, extras=versions.read_meta(prefix).get("extras", {})) or _published(
            asset.pk, version
        ):
            replication.replicas_record_closed(asset_id=asset.pk, version=version)
        return
    refusal = asset.probe.get("remux_refusal", "not probed for it")
    if refusal == "":
        try:
            _grow(asset, version, kind=REMUX)
            return
        except (RemuxRefused, ToolFailed) as exc:
            if _published(asset.pk, version):
                raise  # a stream learners already hold cannot change its kind
            refusal = f"repackaging failed: {exc}"
            storage.delete_prefix(prefix)
    logger.info("asset %s: provisional stream encoded (%s)", asset.pk, refusal)
    _grow(asset, version, kind=FAST_RUNG)


def _grow(asset: MediaAsset, version: int, *, kind: str) -> None:
    probe = asset.probe
    rung = fast_rung(asset.ladder)
    with versions.work_dir() as tmp:
        out = Path(tmp)
        for name in (VIDEO, AUDIO):
            (out / name).mkdir()
        growing = Growing(asset=asset, version=version, kind=kind, out=out, rung=rung)
        command = quick_stream_command(
            ffmpeg=settings.FFMPEG_BIN,
            out=out,
            kind=kind,
            rung=rung,
            source_fps=float(probe["fps"]),
            has_audio=bool(probe["has_audio"]),
            poster_at=growing.poster_at,
            threads=settings.ENCODE_THREADS,
            interlaced=bool(probe.get("interlaced", False)),
            read_rate=1.0 if settings.MEDIA_QUICK_STREAM_REAL_TIME else 0.0,
        )
        try:
            run_tool(
                command,
                timeout=settings.ENCODE_TIMEOUT_SECONDS,
                work_dir=out,
                every=(COLLECT_SECONDS, growing.tick),
                stdin_chunks=source_reader.stream_in_order(asset.source_key),
                label="ffmpeg",
            )
        except BaseException:
            growing.close_early()
            raise
        growing.finish()


# --- The growing version --------------------------------------------------------------------------


@dataclass
class Growing:
    """Uploads what ffmpeg has finished, publishes after the first segments, closes at the end."""

    asset: MediaAsset
    version: int
    kind: str
    out: Path
    rung: Rung
    streams: dict[str, Stream] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # the index: name -> size, sha256
    published: bool = False
    closed: bool = False
    began: datetime = field(default_factory=lambda: datetime.now(UTC))
    stored: set[str] = field(default_factory=set)  # names storage already held when this run began
    listed: dict[str, int] = field(default_factory=dict)  # segments each stored playlist names (never fewer)
    last_beat: float = field(default_factory=time.monotonic)
    poster_sent: bool = False

    def __post_init__(self) -> None:
        self.prefix = self.asset.version_prefix(self.version)
        self.has_audio = bool(self.asset.probe["has_audio"])
        self.duration = float(self.asset.probe["duration"])
        self.poster_at = min(5.0, self.duration / 3)
        self.tracks = media_selectors.asset_text_tracks(asset_id=self.asset.pk)
        self.planned_target = quick_stream.MAX_REMUX_SEGMENT_SECONDS if self.kind == REMUX else GOP_SECONDS
        self.stored = {key[len(self.prefix) :] for key in storage.list_keys(self.prefix)}
        self.published = _published(self.asset.pk, self.version)
        for name in (VIDEO, AUDIO):  # a run before this one wrote playlists: carry on from there
            if f"{name}.m3u8" in self.stored:
                self.listed[name] = storage.read_bytes(f"{self.prefix}{name}.m3u8").decode().count(".m4s")
        if layout.DASH_MANIFEST in self.stored:
            stored_mpd = storage.read_bytes(self.prefix + layout.DASH_MANIFEST).decode()
            began = _AVAILABILITY_START.search(stored_mpd)
            if began:  # the same availabilityStartTime in every MPD update, whoever writes it
                available = datetime.fromisoformat(began.group(1).replace("Z", "+00:00"))
                self.began = available + timedelta(seconds=math.ceil(self.duration))

    # Called every COLLECT_SECONDS while ffmpeg runs: the worker's whole loop.
    def tick(self) -> None:
        self._collect()
        if time.monotonic() - self.last_beat >= HEARTBEAT_SECONDS:
            self.last_beat = time.monotonic()
            workflow.heartbeat(self.asset.pk, in_state=AssetStatus.PROVISIONAL, version=self.version)
            self._check_still_building()

    def _check_still_building(self) -> None:
        """Stop when the asset was deleted, a newer upload replaced this build, or the lesson was made
        protected (its clear stream withdrawn): raise Abandoned."""
        rows = MediaAsset.objects.filter(
            pk=self.asset.pk, status=AssetStatus.PROVISIONAL, building_version=self.version, protected=False
        )
        if self.published:
            rows = rows.filter(published_version=self.version)
        if not rows.exists():
            raise Abandoned

    def finish(self) -> None:
        """ffmpeg is done: the last segments, the closed playlists, the poster, the index, the replicas."""
        self._collect()
        if not self.streams.get(VIDEO) or not self.streams[VIDEO].segments:
            raise ToolFailed("ffmpeg wrote no video segment")
        written = self.streams[VIDEO].seconds()
        if written < self.duration - max(1.0, 0.02 * self.duration):  # never close a stream cut short as whole
            raise ToolFailed(f"ffmpeg ended at {written:.1f} s of {self.duration:.1f} s")
        self._close(complete=True)
        if not (self.published or _publish(self.asset, self.version, extras=self._extras())):
            raise Abandoned
        replication.replicas_record_closed(asset_id=self.asset.pk, version=self.version)

    def close_early(self) -> None:
        """The stream stops short (a failure, or the build moved on): players that hold it get an end
        instead of waiting at its edge for segments that will never come. No index: not complete."""
        if not self.closed and self._ready() and _published(self.asset.pk, self.version):
            try:
                self._close(complete=False)
            except Exception:  # noqa: BLE001 - the original error is the one to raise
                logger.exception("asset %s: could not close provisional v%s", self.asset.pk, self.version)

    # --- what ffmpeg finished ---------------------------------------------------------------------

    def _collect(self) -> None:
        """Upload every new whole segment (in order, per stream), then publish or extend the playlists."""
        names = (VIDEO, AUDIO) if self.has_audio else (VIDEO,)
        if not self.published:  # the first segment of each stream, then the flip, then the rest
            for name in names:
                self._collect_stream(name, limit=1)
            if not self._ready():
                return
            self._write_manifests()
            self.published = _publish(self.asset, self.version, extras=self._extras())
            if not self.published:
                raise Abandoned
            logger.info(
                "asset %s: provisional v%s published while growing (%s, %.1f s written)",
                self.asset.pk, self.version, self.kind, self.streams[VIDEO].seconds(),
            )  # fmt: skip
        added = False
        for name in names:
            added |= self._collect_stream(name)
        self._send_poster()
        if added and self._ready():  # (a resumed run may have audio before its first video segment)
            self._check_still_building()
            self._write_manifests()

    def _collect_stream(self, name: str, *, limit: int | None = None) -> bool:
        """Upload the stream's new whole segments, in order (at most ``limit`` in all); True if any."""
        folder = self.out / name
        stream = self.streams.get(name)
        if stream is None:
            init = folder / "init.mp4"
            if not (folder / "0.m4s").exists() or not init.exists():
                return False
            stream = Stream(name=name, track=fmp4.init_track(init.read_bytes()))
            self._upload(stream.init_name, init)
            self.streams[name] = stream
        added = False
        while (limit is None or len(stream.segments) < limit) and (
            path := folder / f"{len(stream.segments)}.m4s"
        ).exists():
            timing = fmp4.segment_timing(path.read_bytes())
            seconds = timing.duration / stream.track.timescale
            if (
                self.kind == REMUX
                and name == VIDEO
                and not self.published
                and seconds > quick_stream.MAX_KEYFRAME_SECONDS
            ):
                raise RemuxRefused(f"keyframes {seconds:.1f} s apart")
            if self.kind == REMUX and name == VIDEO and seconds > quick_stream.MAX_REMUX_SEGMENT_SECONDS:
                logger.warning("asset %s: a %.1f s segment in provisional v%s", self.asset.pk, seconds, self.version)
            self._upload(stream.segment_name(len(stream.segments)), path)
            if name == VIDEO and self.kind == REMUX and not self.poster_sent:
                self._poster_from(folder / "init.mp4", path, timing, stream.track.timescale)
            path.unlink()  # uploaded: the work folder holds only what is still to send
            stream.segments.append(timing)
            added = True
        return added

    def _ready(self) -> bool:
        wanted = (VIDEO, AUDIO) if self.has_audio else (VIDEO,)
        return all(name in self.streams and self.streams[name].segments for name in wanted)

    def _poster_from(self, init: Path, segment: Path, timing: fmp4.SegmentTiming, timescale: int) -> None:
        """A copied stream's poster: one frame of the source-sized segment that holds the poster's time
        (a small decode of one segment, after the stream is published)."""
        start, end = timing.start / timescale, (timing.start + timing.duration) / timescale
        if end < self.poster_at and end < self.duration - 0.1:
            return  # a later segment holds it
        joined = self.out / "poster-source.mp4"
        joined.write_bytes(init.read_bytes() + segment.read_bytes())
        try:
            run_tool(
                poster_command(
                    ffmpeg=settings.FFMPEG_BIN,
                    source=joined,
                    target=self.out / layout.POSTER,
                    at_seconds=max(0.0, min(self.poster_at - start, end - start - 0.1)),
                    max_height=quick_stream.POSTER_MAX_HEIGHT,
                ),
                timeout=120,
                work_dir=self.out,
            )
        except ToolFailed:
            logger.warning("asset %s: no poster for provisional v%s", self.asset.pk, self.version, exc_info=True)
            self.poster_sent = True  # the full version has one; never try again on every segment
        finally:
            joined.unlink(missing_ok=True)

    def _send_poster(self) -> None:
        poster = self.out / layout.POSTER
        if not self.poster_sent and poster.exists():  # written whole (image2's atomic_writing)
            self._upload(layout.POSTER, poster, immutable=False)
            self.poster_sent = True

    def _upload(self, name: str, path: Path, *, immutable: bool = True) -> None:
        """Record the object in the index and upload it. Segments and init segments are immutable: one
        that storage already holds (an earlier run's) is never written again; manifests and the poster
        (``immutable=False``) are rewritten."""
        digest = versions.sha256(path)
        self.files[name] = {"size": path.stat().st_size, "sha256": digest}
        if immutable and name in self.stored:
            held = storage.stored_sha256(self.prefix + name)
            if held != digest:
                logger.warning("asset %s: %s%s differs from the stored copy, kept", self.asset.pk, self.prefix, name)
                self.files[name] = {"size": storage.size(self.prefix + name), "sha256": held or ""}
            return
        storage.save_file(key=self.prefix + name, source=path, sha256=digest)

    # --- manifests ----------------------------------------------------------------------------------

    def _bandwidths(self) -> tuple[int, int]:
        """Peak bit rates so far (the planned cap for an encode): BANDWIDTH is a peak (RFC 8216 4.4.6.2)."""
        audio = AUDIO_BITRATE_KBPS * 1000 if self.has_audio else 0
        if self.kind == FAST_RUNG:
            return self.rung.maxrate_kbps * 1000, audio
        peaks = {}
        for name, stream in self.streams.items():
            sizes = [self.files[stream.segment_name(n)]["size"] for n in range(len(stream.segments))]
            rates = [
                8 * size * stream.track.timescale / max(1, s.duration)
                for size, s in zip(sizes, stream.segments, strict=True)
            ]
            peaks[name] = int(max(rates, default=0))
        return peaks.get(VIDEO, 0), peaks.get(AUDIO, 0)

    def _write_manifests(self, *, closed: bool = False) -> None:
        """Media playlists first, then the master and the MPD; only ever naming uploaded segments. What
        does not change while the stream grows (the master, the captions) is written the first time and
        once more when closed (the master then gives the measured peak rate)."""
        video, audio = self.streams[VIDEO], self.streams.get(AUDIO)
        streams = [video, *([audio] if audio else [])]
        if any(len(stream.segments) < self.listed.get(stream.name, 0) for stream in streams):
            return  # a run before this one published more: wait until this one has caught up
        target = target_duration(streams, planned=self.planned_target) if closed else self.planned_target
        video_rate, audio_rate = self._bandwidths()
        texts = {s.playlist_name: hls_media_playlist(s, target_duration=target, closed=closed) for s in streams}
        if closed or not self.published:
            for track in self.tracks:
                if track.kind == CAPTIONS:
                    texts[track.playlist_name] = hls_subtitles_playlist(track, duration=self.duration)
                texts[track.file_name] = track.vtt
            texts[layout.HLS_MASTER] = hls_master_with_subtitles(
                hls_master(video, audio, bandwidth=video_rate + audio_rate), self.tracks
            )
        mpd = dash_mpd(
            video, audio, video_bandwidth=video_rate, audio_bandwidth=audio_rate, closed=closed,
            began=self.began, source_seconds=self.duration, now=datetime.now(UTC),
        )  # fmt: skip
        texts[layout.DASH_MANIFEST] = dash_mpd_with_text(mpd, self.tracks)
        for name, text in texts.items():
            path = self.out / ("manifest-" + name.replace("/", "_"))
            path.write_text(text)
            self._upload(name, path, immutable=False)
        self.listed = {stream.name: len(stream.segments) for stream in streams}

    def _close(self, *, complete: bool) -> None:
        self._write_manifests(closed=True)
        self.closed = True
        if complete:
            meta = extras.version_meta(
                fingerprint=_fingerprint(self.asset, self.kind), tracks=self.tracks, has_storyboard=False
            )
            meta["provisional"] = self.kind
            versions.write_index(self.out, self.prefix, files=self.files, meta=meta)

    def _extras(self) -> dict[str, Any]:
        return extras.version_meta(fingerprint="", tracks=self.tracks, has_storyboard=False)["extras"]


_AVAILABILITY_START = re.compile(r'availabilityStartTime="([^"]+)"')


def _fingerprint(asset: MediaAsset, kind: str) -> str:
    # A fingerprint no full build has: a provisional version is never reused by steps.transcode (_derive_version).
    return extras.media_fingerprint(source_key=asset.source_key, ladder=[{"provisional": kind}], protected=False)


# --- Publishing ---------------------------------------------------------------------------------------


def _published(asset_id: int, version: int) -> bool:
    return MediaAsset.objects.filter(pk=asset_id, published_version=version).exists()


def _publish(asset: MediaAsset, version: int, *, extras: dict[str, Any]) -> bool:
    """The provisional flip: only while this build is still the one in progress and still in the
    provisional step, never over a version at least as new, never for a lesson that became protected.
    Other regions get the version once it is closed (replication.replicas_record_closed)."""
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
                published_extras=extras,
                published_at=now,
                updated_at=now,
            )
            == 1
        )
        if flipped:
            replication.replicas_record_published(
                asset=row, version=version, previous_version=row.published_version, other_regions=False
            )
    if flipped:
        logger.info("asset %s: provisional v%s published", asset.pk, version)
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
