"""Whether a Matroska/WebM or MPEG-TS upload was cut short, from its structure alone (no decoding).

ffprobe reads a cut file happily: it stops where the data stops. The encode would then make a lesson
that ends early, without a word. These checks read element and packet headers only, so they cost
milliseconds whatever the file's size, and run before ffprobe (probe.run_ffprobe), as
``probe.iso_bmff_damage`` does for MP4/MOV. Each returns the educator's reason, or None when the file
is whole or is not of its kind (then ffprobe decides). Where the structure cannot tell (a live
recording whose sizes were never written, stopped between two blocks), the file is accepted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol


class Handle(Protocol):
    """What the checks use of an open file: an open local file, or source_reader's ranged copy of a stored
    one (whose every read is fetched from storage, so what the checks read is all it fetches)."""

    def read(self, size: int = -1, /) -> bytes: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...


# A local file's path, or an open Handle.
Source = Path | Handle

INCOMPLETE = "the file is incomplete: it ends part-way through ({detail}); the upload or recording was cut short"


@contextmanager
def opened(source: Source) -> Iterator[tuple[Handle, int]]:
    """The source as a seekable binary handle and its size; a path is opened (and closed) here, a handle
    is used as it is (it stays open)."""
    if isinstance(source, Path):
        with source.open("rb") as handle:
            yield handle, source.stat().st_size
        return
    size = source.seek(0, 2)
    source.seek(0)
    yield source, size


# --- Matroska / WebM (EBML) ----------------------------------------------------------------------------

EBML_MAGIC = b"\x1a\x45\xdf\xa3"
SEGMENT, CLUSTER = 0x18538067, 0x1F43B675
# The elements that may follow a Cluster at the Segment's level: one of them ends a Cluster whose size
# is unknown (written by live recorders, the browser's MediaRecorder among them).
LEVEL_1 = {
    0x114D9B74: "SeekHead", 0x1549A966: "Info", 0x1654AE6B: "Tracks", CLUSTER: "Cluster", 0x1C53BB6B: "Cues",
    0x1941A469: "Attachments", 0x1043A770: "Chapters", 0x1254C367: "Tags", SEGMENT: "Segment",
    0x1A45DFA3: "EBML header",
}  # fmt: skip
# Element names for the reason, below the Segment's level.
BLOCKS = {0xA3: "block", 0xA0: "block group", 0xE7: "cluster timestamp", 0xEC: "Void element"}


class _Cut(Exception):
    """The file ends inside an element header."""


class _Unknown(Exception):
    """Not a structure these checks understand: ffprobe decides."""


def _vint(handle: Handle, *, keep_marker: bool) -> tuple[int | None, int]:
    """An EBML variable-length integer at the handle's position: (value or None for "unknown", length)."""
    first = handle.read(1)
    if not first:
        raise _Cut
    length = 9 - first[0].bit_length()  # the number of leading zero bits, plus one
    if length > 8:
        raise _Unknown  # a first byte of zero is no EBML number
    rest = handle.read(length - 1)
    if len(rest) < length - 1:
        raise _Cut
    value = int.from_bytes(first + rest, "big")
    if keep_marker:  # element IDs keep their length marker
        return value, length
    value &= (1 << (7 * length)) - 1
    return (None if value == (1 << (7 * length)) - 1 else value), length


def _element(handle: Handle, offset: int) -> tuple[int, int, int | None]:
    """The element header at ``offset``: (ID, offset of its data, data size or None when unknown)."""
    handle.seek(offset)
    element_id, id_length = _vint(handle, keep_marker=True)
    if id_length > 4:
        raise _Unknown
    size, size_length = _vint(handle, keep_marker=False)
    assert element_id is not None
    return element_id, offset + id_length + size_length, size


def matroska_damage(path: Source) -> str | None:
    """For a Matroska/WebM file, why its element structure shows it was cut short; else None.

    A Segment of known size must fit in the file. A Segment of unknown size (a live recording) is
    walked: every element at the Segment's level, and the blocks of a Cluster of unknown size, must
    end by the end of the file."""
    with opened(path) as (handle, size):
        if handle.read(4) != EBML_MAGIC:
            return None
        try:
            return _walk(handle, size)
        except _Cut:
            return INCOMPLETE.format(detail="in an element header")
        except _Unknown:
            return None


def _walk(handle: Handle, size: int) -> str | None:
    offset, segments = 0, 0
    while offset < size:
        element_id, data, length = _element(handle, offset)
        segments += element_id == SEGMENT
        if length is None and element_id == SEGMENT:
            offset = data  # its children follow, at this same level of the walk
        elif length is None and element_id == CLUSTER:
            offset = data
            while offset < size:  # its blocks, up to the next element of the Segment's level
                child, child_data, child_length = _element(handle, offset)
                if child in LEVEL_1:
                    break
                if child_length is None:
                    raise _Unknown
                if child_data + child_length > size:
                    return _needs(f"its last {BLOCKS.get(child, 'element')}", child_data + child_length - size)
                offset = child_data + child_length
        elif length is None:
            raise _Unknown  # only a Segment and a Cluster may leave their size unknown
        elif data + length > size:
            name = LEVEL_1.get(element_id, "element")
            return _needs(f"its {name}" if element_id == SEGMENT else f"its last {name}", data + length - size)
        else:
            offset = data + length
    return None if segments else INCOMPLETE.format(detail="its Segment was never written")


def _needs(what: str, missing: int) -> str:
    return INCOMPLETE.format(detail=f"{what} needs {missing} more bytes")


# --- MPEG transport stream --------------------------------------------------------------------------------

SYNC = 0x47
# (packet size, offset of the sync byte): broadcast and HLS TS, and Blu-ray/AVCHD M2TS (a 4-byte
# timestamp before each packet).
PACKET_LAYOUTS = ((188, 0), (192, 4))
TAIL_BYTES = 2 * 1024 * 1024  # the last PES of every stream is looked for in this much of the end
NULL_PID = 0x1FFF


def packet_layout(head: bytes, size: int) -> tuple[int, int] | None:
    for packet, sync in PACKET_LAYOUTS:
        whole = min(5, size // packet)
        if whole >= 3 and all(head[sync + i * packet] == SYNC for i in range(whole)):
            return packet, sync
    return None


def mpegts_damage(path: Source) -> str | None:
    """For an MPEG-TS (or M2TS) file, why its packets show it was cut short; else None.

    It ends part-way through a transport packet (the size is not a whole number of packets), or part-way
    through a PES packet whose length is declared (sound and most data streams: video PES packets of
    unbounded length end where the next begins, so a cut between two of their transport packets cannot
    be seen)."""
    with opened(path) as (handle, size):
        layout = packet_layout(handle.read(5 * 192), size)
        if layout is None:
            return None
        packet, sync = layout
        if size % packet:
            return INCOMPLETE.format(
                detail=f"its last {packet}-byte transport packet lacks {packet - size % packet} bytes"
            )
        start = max(0, size - TAIL_BYTES // packet * packet)
        handle.seek(start)
        tail = handle.read()
    # PID -> [declared PES size (header included), bytes seen] for the last PES packet started in the tail.
    pes: dict[int, list[int]] = {}
    for at in range(sync, len(tail), packet):
        header = tail[at : at + 4]
        if header[0] != SYNC:
            return None  # lost sync: damaged in a way ffprobe judges
        pid = ((header[1] & 0x1F) << 8) | header[2]
        control = (header[3] >> 4) & 0x3
        if pid == NULL_PID or not control & 0x1:  # no payload
            continue
        payload_at = at + 4 + (1 + tail[at + 4] if control & 0x2 else 0)
        payload = tail[payload_at : at + 188]
        if header[1] & 0x40:  # a PES packet (or a table section) starts here
            if payload[:3] == b"\x00\x00\x01" and len(payload) >= 6 and (length := int.from_bytes(payload[4:6], "big")):
                pes[pid] = [6 + length, len(payload)]
            else:
                pes.pop(pid, None)  # unbounded video PES, or a table: nothing to count
        elif pid in pes:
            pes[pid][1] += len(payload)
    for pid, (declared, seen) in sorted(pes.items()):
        if seen < declared:
            return INCOMPLETE.format(
                detail=f"its last PES packet of stream {pid:#x} needs {declared - seen} more bytes"
            )
    return None
