"""Matroska/WebM and MPEG-TS files cut short are told from whole ones by their structure alone
(media_pipeline/container_damage.py). Whole files come from the bundled ffmpeg; cut ones are their
prefixes. Through the probe step and the whole pipeline: the hostile corpus (tests/media_corpus.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from media_pipeline.container_damage import INCOMPLETE, matroska_damage, mpegts_damage
from media_pipeline.probe import iso_bmff_damage
from tests.media_corpus import AAC, H264, _picture, _tone, ffmpeg, ts_cut_mid_pes

CUT = INCOMPLETE.split("{detail}")[0]  # "the file is incomplete: it ends part-way through ("


def _damage(path: Path) -> str | None:
    return iso_bmff_damage(path) or matroska_damage(path) or mpegts_damage(path)


def _vint(data: bytes, at: int, *, keep_marker: bool) -> tuple[int, int]:
    length = 9 - data[at].bit_length()
    value = int.from_bytes(data[at : at + length], "big")
    return (value if keep_marker else value & ((1 << (7 * length)) - 1)), length


def _recorder_style(data: bytes) -> bytes:
    """A live-muxed Matroska file (Segment of unknown size) with every Cluster's size made unknown too,
    as the browser's MediaRecorder writes WebM."""
    out = bytearray(data)
    _, id_length = _vint(data, 0, keep_marker=True)
    header_size, size_length = _vint(data, id_length, keep_marker=False)
    at = id_length + size_length + header_size  # the Segment
    _, id_length = _vint(data, at, keep_marker=True)
    at += id_length + _vint(data, at + id_length, keep_marker=False)[1]  # its first child
    clusters = 0
    while at < len(data):
        element, id_length = _vint(data, at, keep_marker=True)
        size, size_length = _vint(data, at + id_length, keep_marker=False)
        if element == 0x1F43B675:
            out[at + id_length] |= (1 << (8 - size_length)) - 1  # every value bit set: "unknown"
            out[at + id_length + 1 : at + id_length + size_length] = b"\xff" * (size_length - 1)
            clusters += 1
        at += id_length + size_length + size
    assert clusters > 1
    return bytes(out)


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("containers")
    sources = [*_picture("320x240", 3), *_tone(3)]
    made = {
        "mkv": ["-f", "matroska"],
        "live_mkv": ["-f", "matroska", "-live", "1"],  # sizes never written back: Segment of unknown size
        "ts": ["-f", "mpegts"],
        "m2ts": ["-f", "mpegts", "-mpegts_m2ts_mode", "1"],
    }
    files = {}
    for name, muxer in made.items():
        path = folder / name
        ffmpeg(*sources, *H264, *AAC, "-shortest", *muxer, str(path))
        files[name] = path.read_bytes()
    webm = folder / "webm"
    ffmpeg(*sources, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k", "-c:a", "libopus",
           "-shortest", "-f", "webm", str(webm))  # fmt: skip
    files["webm"] = webm.read_bytes()
    files["recorder_webm"] = _recorder_style(files["live_mkv"])
    return files


def _cut(tmp_path: Path, data: bytes, at: int) -> Path:
    path = tmp_path / f"cut-{at}"
    path.write_bytes(data[:at])
    return path


@pytest.mark.parametrize("name", ["mkv", "live_mkv", "webm", "recorder_webm", "ts", "m2ts"])
def test_whole_files_made_by_ffmpeg_are_accepted(name: str, whole: dict[str, bytes], tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes(whole[name])
    assert _damage(path) is None


@pytest.mark.parametrize("name", ["mkv", "webm"])
def test_a_matroska_file_cut_anywhere_is_incomplete(name: str, whole: dict[str, bytes], tmp_path: Path) -> None:
    data = whole[name]
    for fraction in (0.001, 0.1, 0.5, 0.9, 0.999):
        at = max(41, int(len(data) * fraction))
        assert matroska_damage(_cut(tmp_path, data, at)) == INCOMPLETE.format(
            detail=f"its Segment needs {len(data) - at} more bytes"
        )
    assert matroska_damage(_cut(tmp_path, data, len(data) - 1)) is not None
    # Only the EBML header arrived.
    header_end = 4 + sum(_vint(data, 4, keep_marker=False))
    reason = matroska_damage(_cut(tmp_path, data, header_end))
    assert reason == INCOMPLETE.format(detail="its Segment was never written")
    assert matroska_damage(_cut(tmp_path, data, header_end + 3)) == INCOMPLETE.format(detail="in an element header")


@pytest.mark.parametrize("name", ["live_mkv", "recorder_webm"])
def test_a_live_recording_cut_inside_its_last_cluster_is_incomplete(
    name: str, whole: dict[str, bytes], tmp_path: Path
) -> None:
    data = whole[name]
    what = "Cluster" if name == "live_mkv" else "block"
    for fraction in (0.3, 0.6, 0.95):
        reason = matroska_damage(_cut(tmp_path, data, int(len(data) * fraction)))
        assert reason is not None and reason.startswith(CUT + f"its last {what} needs "), reason


def test_a_live_recording_stopped_between_two_clusters_is_accepted(whole: dict[str, bytes], tmp_path: Path) -> None:
    # The structure cannot tell this from a recording stopped there on purpose: it plays to that point.
    data = whole["live_mkv"]
    second_cluster = data.index(b"\x1f\x43\xb6\x75", data.index(b"\x1f\x43\xb6\x75") + 4)
    assert matroska_damage(_cut(tmp_path, data, second_cluster)) is None


@pytest.mark.parametrize(("name", "packet"), [("ts", 188), ("m2ts", 192)])
def test_a_transport_stream_cut_inside_a_packet_is_incomplete(
    name: str, packet: int, whole: dict[str, bytes], tmp_path: Path
) -> None:
    data = whole[name]
    for fraction in (0.1, 0.5, 0.9):
        at = int(len(data) * fraction) // packet * packet + 77
        assert mpegts_damage(_cut(tmp_path, data, at)) == INCOMPLETE.format(
            detail=f"its last {packet}-byte transport packet lacks {packet - 77} bytes"
        )


@pytest.mark.parametrize("name", ["ts", "m2ts"])
def test_a_transport_stream_cut_inside_a_sound_pes_packet_is_incomplete(
    name: str, whole: dict[str, bytes], tmp_path: Path
) -> None:
    data = whole[name]
    at, pid, missing = ts_cut_mid_pes(data, packet=188 if name == "ts" else 192)
    assert at % (188 if name == "ts" else 192) == 0  # a whole number of packets: only the PES tells
    assert mpegts_damage(_cut(tmp_path, data, at)) == INCOMPLETE.format(
        detail=f"its last PES packet of stream {pid:#x} needs {missing} more bytes"
    )


def test_other_files_are_left_to_ffprobe(tmp_path: Path) -> None:
    text = tmp_path / "notes.mkv"
    text.write_text("Good morning, class.\n" * 100)  # 'G' is the TS sync byte, but not every 188 bytes
    mp4 = tmp_path / "clip.mp4"
    ffmpeg(*_picture("64x64", 1), *H264, str(mp4))
    for path in (text, mp4):
        assert (matroska_damage(path), mpegts_damage(path)) == (None, None)
