"""ISO BMFF (MP4, MOV, 3GP) structure, pure: box headers, the moov's chunk offsets, and the moov rewritten
for its move in front of the media data, as qt-faststart and ffmpeg's ``-movflags +faststart`` do.

A phone writes its index (the ``moov`` box) after the media data (``mdat``), since it knows the sample
tables only once recording stops. A reader that cannot seek (ffmpeg on a pipe) needs the index first;
moving it in front shifts the media data by the index's length, so every chunk offset (``stco`` 32-bit,
``co64`` 64-bit) in every track moves by as much, and a 32-bit table whose offsets would pass 4 GiB
becomes a 64-bit one (which makes the index longer still: ``faststart_moov`` iterates until it holds).
No I/O here: media_pipeline/source_reader.py reads the boxes from storage.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

# Boxes an MP4/MOV file may start with (as probe.iso_bmff_damage); anything else at offset 0 is not ISO BMFF.
FIRST_BOXES = {b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
# Boxes on the path from the moov to the chunk offset tables.
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}
# Inside these, offsets this module does not rewrite: a compressed moov (old QuickTime), and sample
# auxiliary information offsets (encrypted files) that are absolute in a file without fragments.
_UNSUPPORTED = {b"cmov", b"saio"}
_MAX_32 = 0xFFFFFFFF


class BoxError(ValueError):
    """The box structure is broken (a size that cannot be, a table longer than its box)."""


class Unsupported(ValueError):
    """A structure this module does not rewrite; the caller keeps the file as it is."""


@dataclass(frozen=True)
class Box:
    kind: str
    offset: int
    size: int
    header: int  # 8, or 16 with a 64-bit size

    @property
    def end(self) -> int:
        return self.offset + self.size

    @property
    def data_start(self) -> int:
        return self.offset + self.header


def is_iso_bmff(head: bytes) -> bool:
    """Whether a file starting with ``head`` (at least 8 bytes) starts with an ISO BMFF box."""
    return len(head) >= 8 and head[4:8] in FIRST_BOXES


def parse_header(raw: bytes, *, offset: int, limit: int) -> Box:
    """The box whose header starts ``raw`` (up to 16 bytes), at ``offset`` of a file or parent ending at
    ``limit``. A size of 0 means "to the end". Raises BoxError for a size that cannot be."""
    if len(raw) < 8:
        raise BoxError(f"a box header at byte {offset} is cut short")
    size, kind = struct.unpack(">I4s", raw[:8])
    header = 8
    if size == 1:
        if len(raw) < 16:
            raise BoxError(f"a box header at byte {offset} is cut short")
        size, header = struct.unpack(">Q", raw[8:16])[0], 16
    elif size == 0:
        size = limit - offset
    if size < header or offset + size > limit:
        raise BoxError(f"the {kind!r} box at byte {offset} has an impossible size {size}")
    return Box(kind=kind.decode("latin-1"), offset=offset, size=size, header=header)


def children(data: bytes, start: int = 0, end: int | None = None) -> Iterator[Box]:
    """The boxes laid one after another in ``data[start:end]`` (a box's payload), offsets within ``data``.
    Fewer than 8 zero bytes at the end (QuickTime's terminator) end the list."""
    end = len(data) if end is None else end
    at = start
    while at < end:
        if end - at < 8:
            if any(data[at:end]):
                raise BoxError(f"{end - at} stray bytes at the end of a box")
            return
        box = parse_header(data[at : at + 16], offset=at, limit=end)
        yield box
        at = box.end


def chunk_offsets(moov: bytes) -> list[list[int]]:
    """Every track's chunk offsets (its ``stco`` or ``co64``), in track order; a track without a table
    (none in a fragmented file's moov) gives an empty list."""
    tracks: list[list[int]] = []
    for trak in children(moov, _payload_start(moov)):
        if trak.kind == "trak":
            found: list[int] = []
            for table in _tables(moov, trak):
                found.extend(_entries(moov, table))
            tracks.append(found)
    return tracks


def _payload_start(moov: bytes) -> int:
    box = parse_header(moov[:16], offset=0, limit=len(moov))
    if box.kind != "moov" or box.size != len(moov):
        raise BoxError("not one whole moov box")
    return box.header


def _tables(data: bytes, parent: Box) -> Iterator[Box]:
    for box in children(data, parent.data_start, parent.end):
        if box.kind.encode("latin-1") in _CONTAINERS:
            yield from _tables(data, box)
        elif box.kind in ("stco", "co64"):
            yield box


def _entries(data: bytes, table: Box) -> list[int]:
    width = 4 if table.kind == "stco" else 8
    if table.size - table.header < 8:
        raise BoxError(f"a {table.kind} box too short for its header")
    count = struct.unpack(">I", data[table.data_start + 4 : table.data_start + 8])[0]
    first = table.data_start + 8
    if first + count * width > table.end:
        raise BoxError(f"a {table.kind} box holds fewer than its {count} entries")
    return list(struct.unpack(f">{count}{'I' if width == 4 else 'Q'}", data[first : first + count * width]))


def relocated_moov(moov: bytes, relocate: Callable[[int], int]) -> bytes:
    """The moov with every chunk offset replaced by ``relocate(offset)``; a ``stco`` table with a new
    offset past 32 bits becomes a ``co64`` one and the boxes around it grow to match. Everything else
    is copied byte for byte."""
    root = parse_header(moov[:16], offset=0, limit=len(moov))
    if root.kind != "moov" or root.size != len(moov):
        raise BoxError("not one whole moov box")
    return _rebuild(moov, root, relocate)


def _rebuild(data: bytes, box: Box, relocate: Callable[[int], int]) -> bytes:
    kind = box.kind.encode("latin-1")
    if kind in _CONTAINERS:
        parts, at = [], box.data_start
        for child in children(data, box.data_start, box.end):
            parts.append(_rebuild(data, child, relocate))
            at = child.end
        parts.append(data[at : box.end])  # a terminator, if any
        return _with_header(kind, b"".join(parts), header=box.header)
    if kind in (b"stco", b"co64"):
        return _table(data, box, relocate)
    if kind in _UNSUPPORTED:
        raise Unsupported(f"a {box.kind!r} box")
    return data[box.offset : box.end]


def _table(data: bytes, box: Box, relocate: Callable[[int], int]) -> bytes:
    offsets = [relocate(offset) for offset in _entries(data, box)]
    if any(offset < 0 for offset in offsets):
        raise BoxError("a chunk offset before the start of the file")
    wide = box.kind == "co64" or any(offset > _MAX_32 for offset in offsets)
    version_flags = data[box.data_start : box.data_start + 4]
    entries = struct.pack(f">{len(offsets)}{'Q' if wide else 'I'}", *offsets)
    body = version_flags + struct.pack(">I", len(offsets)) + entries
    return _with_header(b"co64" if wide else b"stco", body, header=box.header)


def _with_header(kind: bytes, body: bytes, *, header: int) -> bytes:
    size = len(body) + header
    if header == 16:
        return struct.pack(">I4sQ", 1, kind, size) + body
    if size > _MAX_32:
        raise Unsupported(f"a {kind!r} box past 4 GiB")
    return struct.pack(">I4s", size, kind) + body


def faststart_moov(moov: bytes, relocate: Callable[[int, int], int]) -> bytes:
    """The moov rewritten for its new place: ``relocate(offset, moov_length)`` gives a chunk's new offset
    when the rewritten moov is ``moov_length`` bytes long. Promoting a table to 64 bits lengthens the
    moov, which moves the media data further, which may promote another table: repeated until the
    length holds (it only grows, and each table is promoted at most once)."""
    length = len(moov)
    while True:
        rewritten = relocated_moov(moov, functools.partial(_at_length, relocate, length))
        if len(rewritten) == length:
            return rewritten
        length = len(rewritten)


def _at_length(relocate: Callable[[int, int], int], length: int, offset: int) -> int:
    return relocate(offset, length)


def moved_offset(offset: int, *, moov_length: int, insert_at: int, moov: Box) -> int:
    """Where byte ``offset`` of the file lands once the moov (``moov``, after ``insert_at``) is taken
    out and ``moov_length`` bytes of rewritten moov are put in at ``insert_at``."""
    if offset < insert_at:
        return offset
    if offset < moov.offset:
        return offset + moov_length
    if offset >= moov.end:
        return offset + moov_length - moov.size
    raise Unsupported("a chunk inside the moov itself")
