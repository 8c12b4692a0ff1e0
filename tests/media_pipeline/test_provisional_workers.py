"""The growing first stream on real Dramatiq worker processes (Redis broker, PostgreSQL, S3, ffmpeg reading
the source at real time): a worker killed with SIGKILL while the stream grows is resumed by another; no
segment is written twice, none changes, and no playlist ever names a missing segment or gets shorter."""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from django.core.management import call_command

from media_pipeline import services, storage, versions
from media_pipeline.models import AssetStatus, MediaAsset
from media_pipeline.quick_stream import FAST_RUNG, REMUX
from tests import media_corpus
from tests.media_checks import media_playlist_segments
from tests.worker_processes import WorkerProcess, wait_for, worker_environment

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SECONDS = 16  # of source, read at real time by each run: the first run dies a few seconds in
VIDEO, AUDIO = "video.m3u8", "audio.m3u8"
QUICK = ("quick",)  # the full ladder (queue `ladder`) is not run: the test ends where the provisional step does


@pytest.fixture
def worker_env(tmp_path: Path) -> dict[str, str]:
    return worker_environment(
        tmp_path / "worker-work",
        MEDIA_PROVISIONAL="1",
        # ffmpeg reads the source as fast as it plays: the stream is still growing when its worker dies.
        MEDIA_QUICK_STREAM_REAL_TIME="1",
        dramatiq_worker_timeout="100",  # a message is picked up within 0.1 s, not 1 s
    )


def _source(kind: str, folder: Path) -> Path:
    """A phone's HEVC recording (its MP4 index at the end), encoded to the fast rung; or H.264/AAC with a
    keyframe every 2 s, whose own packets are served."""
    picture = ["-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=25:duration={SECONDS}"]
    tone = ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={SECONDS}"]
    if kind == FAST_RUNG:
        target, video = folder / "phone.mov", ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params",
                                               "log-level=error", "-tag:v", "hvc1"]  # fmt: skip
    else:
        target, video = folder / "camera.mp4", ["-c:v", "libx264", "-preset", "veryfast", "-g", "50"]
    media_corpus.ffmpeg(*picture, *tone, *video, "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(target))
    return target


@dataclass(frozen=True)
class Playlist:
    text: str
    written: datetime  # S3's date: whole seconds

    @property
    def segments(self) -> list[str]:
        return media_playlist_segments(self.text)[1]

    @property
    def named(self) -> list[str]:
        """The init segment and the media segments."""
        init, segments = media_playlist_segments(self.text)
        return [init, *segments]

    @property
    def open(self) -> bool:
        return "#EXT-X-ENDLIST" not in self.text


class Stored:
    """The version's objects as a player (or a CDN) reads them: one GET each, never a HEAD then a GET,
    which could mix two writes of a playlist."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.client, self.bucket = storage.s3_client_and_bucket()

    def text(self, name: str) -> tuple[str, datetime] | None:
        try:
            got = self.client.get_object(Bucket=self.bucket, Key=self.prefix + name)
        except self.client.exceptions.NoSuchKey:
            return None
        return got["Body"].read().decode(), got["LastModified"]

    def playlist(self, name: str) -> Playlist | None:
        got = self.text(name)
        return None if got is None else Playlist(*got)

    def dates(self) -> dict[str, datetime]:
        """Every object's name (relative to the prefix) and the date it was stored."""
        stored: dict[str, datetime] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            stored |= {item["Key"][len(self.prefix) :]: item["LastModified"] for item in page.get("Contents", [])}
        return stored

    def head(self, name: str) -> tuple[str | None, str, datetime]:
        """An object's SHA-256 (as stored with it), ETag and date: a rewrite changes at least the date."""
        head = self.client.head_object(Bucket=self.bucket, Key=self.prefix + name)
        return storage.stored_sha256(self.prefix + name), head["ETag"], head["LastModified"]


def _second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


@dataclass
class PlaylistWatch:
    """What a player polling the origin would see: the stored playlists and MPD fetched every 0.1 s by a
    thread, each checked against the objects stored at that moment and against the one seen before."""

    stored: Stored
    problems: list[str] = field(default_factory=list)
    segments: dict[str, list[str]] = field(default_factory=lambda: {VIDEO: [], AUDIO: []})
    open_counts: list[int] = field(default_factory=list)  # video segments of every open playlist seen
    anchors: set[str] = field(default_factory=set)  # availabilityStartTime of every dynamic MPD seen

    def __post_init__(self) -> None:
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="playlist-watch", daemon=True)

    def __enter__(self) -> PlaylistWatch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join(timeout=30)

    def _run(self) -> None:
        while not self.done.wait(0.1):
            try:
                self.look()
            except Exception as exc:  # noqa: BLE001 - reported by the test, not lost in a thread
                self.problems.append(f"watch failed: {exc!r}")

    def look(self) -> None:
        for name in (VIDEO, AUDIO):
            playlist = self.stored.playlist(name)
            if playlist is None:
                if self.segments[name]:
                    self.problems.append(f"{name} disappeared")
                continue
            # Listed after the playlist was read, so it holds at least what was stored then; a segment
            # stored after the playlist that names it (by a second or more: S3 dates are whole seconds)
            # is caught by its date.
            dates = self.stored.dates()
            late = [n for n in playlist.named if n not in dates or _second(dates[n]) > _second(playlist.written)]
            if late:
                self.problems.append(f"{name} of {playlist.written} named {late} before storage held them")
            before, segments = self.segments[name], playlist.segments
            if segments[: len(before)] != before:
                self.problems.append(f"{name} went from {len(before)} segments to {len(segments)}: {segments}")
            self.segments[name] = segments
            if name == VIDEO and playlist.open:
                self.open_counts.append(len(segments))
        mpd = self.stored.text("manifest.mpd")
        if mpd is not None and 'type="dynamic"' in mpd[0]:
            self.anchors |= set(re.findall(r'availabilityStartTime="([^"]+)"', mpd[0]))


def _kill_while_growing(
    worker: WorkerProcess, asset_id: int, stored: Stored, *, audio_ahead: bool
) -> tuple[Playlist, Playlist]:
    """SIGKILL the worker once the version is published and its playlists are open and name at least 2
    video segments (and, with ``audio_ahead``, more audio segments than video ones); the playlists it leaves.

    Seen so, the worker is frozen (SIGSTOP) and they are read again: the kill happens in the state read."""

    def growing() -> tuple[Playlist, Playlist] | None:
        published = MediaAsset.objects.filter(pk=asset_id, published_version=1).exists()
        video, audio = stored.playlist(VIDEO), stored.playlist(AUDIO)
        if not (published and video and audio and video.open and len(video.segments) >= 2):
            return None
        return (video, audio) if not audio_ahead or len(audio.segments) > len(video.segments) else None

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if growing():
            worker.freeze()
            if playlists := growing():
                worker.kill()
                return playlists
            worker.thaw()
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the stream to grow")


@pytest.mark.parametrize("kind", [FAST_RUNG, REMUX])
def test_a_worker_killed_while_the_stream_grows_is_resumed_by_another_without_rewriting_a_segment(
    kind: str, key_prefix: str, worker_env: dict[str, str], workers: list[WorkerProcess], tmp_path: Path
) -> None:
    log = tmp_path / "workers.log"
    stored = Stored(f"{key_prefix}/v1/")
    workers.append(WorkerProcess(worker_env, log, queues=QUICK))
    clip = _source(kind, tmp_path)  # while the worker starts
    asset = services.asset_create(key_prefix=key_prefix)
    with PlaylistWatch(stored) as watch:
        with clip.open("rb") as stream:
            services.asset_upload_source(asset=asset, stream=stream, source_name=clip.name)
        # Once the first worker holds the provisional step (claimed after the probe's claim), a second one
        # starts: idle (the queue is empty) until the step is sent again, as in a pool of workers.
        wait_for(
            lambda: MediaAsset.objects.filter(pk=asset.pk, status=AssetStatus.PROVISIONAL, attempts=2).exists(),
            timeout=120,
            what=f"the provisional step to start\n{log.read_text()}",
        )
        workers.append(WorkerProcess(worker_env, log, queues=QUICK))
        # The encoder's delay puts the fast rung's audio a segment ahead of its video for a while every
        # 2 s: die then, and the resumed run reaches the published video count with one audio segment less.
        video, audio = _kill_while_growing(workers[0], asset.pk, stored, audio_ahead=kind == FAST_RUNG)
        listed = {VIDEO: video.segments, AUDIO: audio.segments}
        before = {name: stored.head(name) for name in stored.dates() if name.endswith((".m4s", ".mp4"))}
        assert set(video.named + audio.named) <= set(before)
        asset.refresh_from_db()
        assert (asset.status, asset.published_version, asset.building_version) == (AssetStatus.PROVISIONAL, 1, 1)

        # An operator (or cron) runs pipeline_resume, which sends the provisional step again.
        out = io.StringIO()
        call_command("pipeline_resume", "--idle-minutes", "0", stdout=out)
        assert out.getvalue().startswith("resumed 1 asset(s)")
        wait_for(
            lambda: MediaAsset.objects.filter(pk=asset.pk).exclude(status=AssetStatus.PROVISIONAL).exists(),
            timeout=180,
            what=f"the resumed provisional step to end\n{log.read_text()}",
        )
        watch.look()  # the closed playlists, checked like every other

    text = log.read_text()
    assert watch.problems == [], text[-3000:]
    assert "differs from the stored copy" not in text
    asset.refresh_from_db()
    # On to the full ladder, as v2; the provisional v1 stays published until that is built.
    assert (asset.status, asset.building_version, asset.failure_reason) == (AssetStatus.PROBED, 2, "")
    assert (asset.published_version, asset.published_provisional) == (1, True)
    assert asset.attempts == 3  # claimed by the probe once, by the provisional step twice

    # Closed: ENDLIST, a static MPD, the index; extending what was listed when the first worker died.
    prefix = stored.prefix
    assert versions.index_complete(prefix)
    index = json.loads(storage.read_bytes(prefix + "files.json"))
    assert index["meta"]["provisional"] == kind
    for name in (VIDEO, AUDIO):
        final = stored.playlist(name)
        assert final is not None and not final.open
        assert final.segments == watch.segments[name] and final.segments[: len(listed[name])] == listed[name]
    assert len(watch.segments[VIDEO]) == SECONDS // 2
    assert 'type="static"' in storage.read_bytes(prefix + "manifest.mpd").decode()
    # The resumed run published open playlists longer than the dead one's before closing them (it grew
    # again), and every dynamic MPD, whichever run wrote it, kept the same anchor.
    assert max(watch.open_counts) > len(listed[VIDEO])
    assert len(watch.anchors) == 1

    # Every segment stored before the kill is the very object it was (never written again) ...
    assert {name: stored.head(name) for name in before} == before
    # ... and every segment and init segment holds the bytes the index and its stored SHA-256 say.
    for name, entry in index["files"].items():
        if name.endswith((".m4s", ".mp4")):
            data = storage.read_bytes(prefix + name)
            assert hashlib.sha256(data).hexdigest() == entry["sha256"] == storage.stored_sha256(prefix + name), name
