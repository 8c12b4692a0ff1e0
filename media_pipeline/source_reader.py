"""Read a stored source by ranges: what a step needs of it, when it needs it, never the whole object first.

A phone video is 650 MB to 1.1 GB for ten minutes, often with its index (the MP4 ``moov``) at the end;
copied whole at 42 MB/s that is 15 to 25 s before anything can start. The media tools still see only
local files and pipes (docs/adr/0017), so the reading is done here:

- ``stream_in_order(key)``: the object as ffmpeg reads it from a pipe (its stdin), front to back. An
  MP4/MOV whose moov follows its media data is reordered on the way, as ``qt-faststart`` does: the box
  headers first (small ranged GETs), then the moov, rewritten for its new place (iso_boxes), then the
  media data in order. Anything else goes as it is.
- ``probe_copy(key, target)``: a local sparse file of the object's size holding what ffprobe and the
  damage checks (probe.run_ffprobe) read, without the media data: for MP4/MOV the index and every box
  header, the first few MiB of media data; for Matroska its head and the elements its SeekHead points
  to; for MPEG-TS its head and tail. A kind it cannot be sure of is copied whole.

Every byte is fetched at most once, in ``storage.CHUNK_SIZE`` pieces (ranged_reads): only box headers
and the tail of the file (the moov, usually) are held in memory, never the media data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

from media_pipeline.container_damage import CLUSTER, EBML_MAGIC, SEGMENT, matroska_damage, mpegts_damage, packet_layout
from media_pipeline.iso_boxes import (
    Box,
    BoxError,
    Unsupported,
    chunk_offsets,
    faststart_moov,
    is_iso_bmff,
    moved_offset,
    parse_header,
)
from media_pipeline.probe import iso_bmff_damage
from media_pipeline.ranged_reads import Fetcher, HeldRanges, SparseCopy

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
# The first GET: the ftyp and the small boxes after it, up to the mdat's header, in one request.
HEAD_READ = 4096
HEADER_READ = 16  # a box header, with a 64-bit size
# A box header this close to the end: the rest of the file comes in the same GET (the moov, usually).
TAIL_READ = 2 * MIB
# A moov larger than this stays where it is (a day of 60 fps video has a moov of about 70 MB).
MAX_INDEX = 64 * MIB
# Box headers fetched one GET each before giving up on the walk (a file of many fragments).
MAX_HEADER_GETS = 32

Read = Callable[[int, int], bytes]


class _TooManyBoxes(Exception):
    """The walk of the top-level boxes would take more GETs than it is worth."""


def _header_window(offset: int, size: int) -> int:
    """Where the GET for the box header at ``offset`` ends (see HEAD_READ and TAIL_READ)."""
    if offset == 0:
        return min(size, HEAD_READ)
    if size - offset <= TAIL_READ:
        return size
    return min(size, offset + HEADER_READ)


def top_level_boxes(read: Read, size: int, *, stop: Callable[[Box], bool] | None = None) -> list[Box]:
    """The top-level boxes of an ISO BMFF object of ``size`` bytes, read by ``read(start, end)``, up to
    the end or the first box ``stop`` accepts. Raises BoxError for a broken structure."""
    boxes: list[Box] = []
    offset = 0
    while offset < size:
        raw = read(offset, _header_window(offset, size))[:HEADER_READ]
        box = parse_header(raw, offset=offset, limit=size)
        boxes.append(box)
        if stop is not None and stop(box):
            break
        offset = box.end
    return boxes


def _limited(read: Read, fetcher: Fetcher, max_gets: int) -> Read:
    """``read``, refusing to go on once the walk has made ``max_gets`` GETs."""
    first = fetcher.gets

    def limited(start: int, end: int) -> bytes:
        if fetcher.gets - first >= max_gets:
            raise _TooManyBoxes
        return read(start, end)

    return limited


class OrderedSource:
    """A stored source as ffmpeg can read it from a pipe: iterate once for its bytes, in order.

    ``index_moved``: an MP4/MOV whose moov came after its media data, moved in front (``-f mp4`` reads
    it as it would the original). ``needs_seeking``: such a file whose moov could not be moved (too
    large, or a structure iso_boxes does not rewrite): it goes as it is, and ffmpeg cannot read it from
    a pipe, so the caller downloads it instead. ``gets`` and ``bytes_read`` count what was fetched.
    """

    def __init__(self, key: str) -> None:
        self.key = key
        self._fetcher = Fetcher(key)
        self.size = self._fetcher.size
        self.index_moved = False
        self.needs_seeking = False

    @property
    def gets(self) -> int:
        return self._fetcher.gets

    @property
    def bytes_read(self) -> int:
        return self._fetcher.bytes_read

    def __iter__(self) -> Iterator[bytes]:
        pieces = HeldRanges(self._fetcher)
        for part in self._plan(pieces):
            if isinstance(part, bytes):
                yield part
            else:
                yield from pieces.stream(*part)

    def _plan(self, pieces: HeldRanges) -> list[bytes | tuple[int, int]]:
        """What to send, in order: ranges of the object and the rewritten moov."""
        size = self.size
        as_it_is: list[bytes | tuple[int, int]] = [(0, size)] if size else []
        if not size or not is_iso_bmff(pieces.read(0, min(size, HEAD_READ))):
            return as_it_is
        try:
            read = _limited(pieces.read, self._fetcher, MAX_HEADER_GETS)
            boxes = top_level_boxes(read, size, stop=lambda box: box.kind in ("moov", "moof"))
        except (BoxError, _TooManyBoxes) as exc:
            logger.info("%s: sent as it is (%s)", self.key, exc.__class__.__name__)
            return as_it_is  # damaged or unusual: ffmpeg will say
        moov, mdats = boxes[-1], [box for box in boxes if box.kind == "mdat"]
        if moov.kind != "moov" or not mdats:
            return as_it_is  # the index first already, fragments, or no index at all
        if moov.size > MAX_INDEX:
            self.needs_seeking = True
            return as_it_is
        insert_at = mdats[0].offset
        try:
            moved = faststart_moov(
                pieces.read(moov.offset, moov.end, keep=False),
                lambda offset, length: moved_offset(offset, moov_length=length, insert_at=insert_at, moov=moov),
            )
        except (BoxError, Unsupported) as exc:
            logger.warning("%s: its index stays at the end (%s)", self.key, exc)
            self.needs_seeking = True
            return as_it_is
        self.index_moved = True
        return [(0, insert_at), moved, (insert_at, moov.offset), (moov.end, size)]


def stream_in_order(key: str) -> OrderedSource:
    """The stored object ``key`` as a non-seekable reader can take it (see OrderedSource)."""
    return OrderedSource(key)


# --- The probe's copy ----------------------------------------------------------------------------------

# ffprobe reads at most its probesize (5,000,000 bytes) of packets to describe the streams; measured with
# strace on 8 Mbit/s files: 0.65 MB of an MP4's media data, 2.8 MB of Matroska, 5.2 MB of MPEG-TS.
PROBE_HEAD = 6 * MIB
# Each track's first chunk, where the interleaving puts it away from the others (a fragment's audio
# after all of its video).
TRACK_HEAD = 1 * MIB
# A fragmented MP4's first fragment is copied whole (ffprobe reads each track's first samples in it).
FRAGMENT_CAP = 32 * MIB
# Matroska elements the SeekHead points to (Tags, Chapters, Cues) are copied whole up to this size.
ELEMENT_CAP = 16 * MIB
SEEK_HEAD, SEEK, SEEK_POSITION = 0x114D9B74, 0x4DBB, 0x53AC
# ffprobe takes a transport stream's duration from its last timestamps, looking back 250,000 bytes
# from the end and doubling up to six times (libavformat's DURATION_DEFAULT_MAX_READ_SIZE and _RETRY).
TS_TAIL = 250_000 << 6
# The head must hold ffprobe's probesize of packet payload (null packets and tables do not count).
TS_PAYLOAD = 5_500_000
TS_HEAD_CAP = 32 * MIB


def probe_copy(key: str, target: Path) -> int:
    """Write to ``target`` a sparse copy of the stored object ``key`` (the same size) holding what ffprobe
    and the damage checks read of it; returns the bytes read from storage. probe.probe_file on it gives
    the answer it gives on the whole object (same result, same refusal)."""
    fetcher = Fetcher(key)
    with SparseCopy(fetcher, target) as copy:
        copy.fetch(0, PROBE_HEAD)
        head = copy.read_at(0, 5 * 192)
        layout = packet_layout(head, copy.size)
        if is_iso_bmff(head):
            complete = _iso_bmff_copy(copy, fetcher)
        elif head.startswith(EBML_MAGIC):
            complete = _matroska_copy(copy)
        elif layout is not None:
            complete = _mpegts_copy(copy, *layout)
        else:
            complete = False  # a kind whose reading ffprobe may take from anywhere: all of it
        if not complete:
            copy.fetch(0, copy.size)
    logger.info("%s: read %d of %d bytes in %d GETs to probe it", key, fetcher.bytes_read, fetcher.size, fetcher.gets)
    return fetcher.bytes_read


def _iso_bmff_copy(copy: SparseCopy, fetcher: Fetcher) -> bool:
    """Every top-level box header and every box but the media data whole, then the media data's first
    PROBE_HEAD bytes and each track's first TRACK_HEAD bytes. False: copy it all."""
    try:
        boxes: list[Box] | None = top_level_boxes(_limited(copy.read_at, fetcher, MAX_HEADER_GETS), copy.size)
    except _TooManyBoxes:
        return False
    except BoxError:
        boxes = None
    if iso_bmff_damage(copy):
        return True  # refused for what the box headers (now in the copy) show
    if boxes is None:
        return False
    index = [box for box in boxes if box.kind != "mdat"]
    moovs = [box for box in boxes if box.kind == "moov"]
    if len(moovs) != 1 or any(box.size > MAX_INDEX for box in index):
        return False
    for box in index:
        copy.fetch(box.offset, box.end)
    try:
        offsets = chunk_offsets(copy.read_at(moovs[0].offset, moovs[0].end))
    except BoxError:
        return False
    firsts = [track[0] for track in offsets if track]
    starts = list(firsts)
    fragments = [n for n, box in enumerate(boxes) if box.kind == "moof"]
    if fragments and fragments[0] + 1 < len(boxes) and boxes[fragments[0] + 1].kind == "mdat":
        data = boxes[fragments[0] + 1]
        if data.size > FRAGMENT_CAP:
            return False
        copy.fetch(data.offset, data.end)
        starts.append(data.data_start)
    mdats = [box for box in boxes if box.kind == "mdat"]
    if not starts and mdats:
        starts = [mdats[0].data_start]
    if starts:
        copy.fetch(min(starts), min(starts) + PROBE_HEAD)
    for first in firsts:
        copy.fetch(first, first + TRACK_HEAD)
    return True


def _ebml_element(raw: bytes, offset: int) -> tuple[int, int, int | None] | None:
    """The EBML element header at the start of ``raw`` (found at ``offset``): its ID, where its data
    starts and its size (None: unknown); None when the bytes are no element header."""
    if len(raw) < 2 or not raw[0]:
        return None
    id_length = 9 - raw[0].bit_length()
    if id_length > 4 or len(raw) <= id_length or not raw[id_length]:
        return None
    size_length = 9 - raw[id_length].bit_length()
    if len(raw) < id_length + size_length:
        return None
    value = int.from_bytes(raw[id_length : id_length + size_length], "big") & ((1 << (7 * size_length)) - 1)
    size = None if value == (1 << (7 * size_length)) - 1 else value
    return int.from_bytes(raw[:id_length], "big"), offset + id_length + size_length, size


def _ebml_children(data: bytes) -> Iterator[tuple[int, bytes]]:
    at = 0
    while at < len(data):
        element = _ebml_element(data[at : at + 12], at)
        if element is None:
            return
        element_id, start, size = element
        if size is None:
            return
        yield element_id, data[start : start + size]
        at = start + size


def _seek_positions(seek_head: bytes) -> list[int]:
    """The SeekPositions (relative to the Segment's data) a SeekHead's payload lists."""
    return [
        int.from_bytes(value, "big")
        for element_id, seek in _ebml_children(seek_head)
        if element_id == SEEK
        for child_id, value in _ebml_children(seek)
        if child_id == SEEK_POSITION
    ]


def _matroska_copy(copy: SparseCopy) -> bool:
    """The head and every element a SeekHead points to but Clusters (ffprobe reads Tags, Chapters and
    Attachments through it). A live recording's Segment of unknown size: False (copy it all), since the
    damage check then walks every Cluster, and a GET per Cluster costs more than the whole file."""
    size = copy.size
    header = _ebml_element(copy.read_at(0, 12), 0)
    if header is None or header[2] is None:
        return False
    after_header = header[1] + header[2]
    segment = _ebml_element(copy.read_at(after_header, after_header + 12), after_header)
    if segment is None or segment[0] != SEGMENT or segment[2] is None:
        return False  # not Matroska as expected, or a live recording's Segment of unknown size
    if matroska_damage(copy):
        return True
    segment_data = segment[1]
    positions: list[int] = []
    at = segment_data
    while at < min(size, PROBE_HEAD):
        element = _ebml_element(copy.read_at(at, at + 12), at)
        if element is None:
            break
        element_id, start, length = element
        if length is None or element_id == CLUSTER:
            break
        if element_id == SEEK_HEAD and length <= ELEMENT_CAP:
            positions += _seek_positions(copy.read_at(start, start + length))
        at = start + length
    seen: set[int] = set()
    while positions:
        position = segment_data + positions.pop(0)
        if position in seen or position >= size:
            continue
        seen.add(position)
        element = _ebml_element(copy.read_at(position, position + 12), position)
        if element is None or element[0] == CLUSTER:
            continue
        element_id, start, length = element
        if length is None or length > ELEMENT_CAP:
            return False
        copy.fetch(position, start + length)
        if element_id == SEEK_HEAD:
            positions += _seek_positions(copy.read_at(start, start + length))
    return True


def _mpegts_copy(copy: SparseCopy, packet: int, sync: int) -> bool:
    """The tail ffprobe takes the duration from, and a head holding its probesize of stream payload."""
    size = copy.size
    copy.fetch(size - TS_TAIL, size)
    if mpegts_damage(copy):
        return True
    streams: set[int] = set()
    payload, counted = 0, 0
    head = min(size, PROBE_HEAD)
    while True:
        whole = head // packet * packet
        payload += _stream_payload(copy.read_at(counted, whole), packet=packet, sync=sync, streams=streams)
        counted = whole
        if payload >= TS_PAYLOAD or head >= size:
            return True
        if head >= TS_HEAD_CAP:
            return False
        head = min(size, head + PROBE_HEAD)
        copy.fetch(0, head)


def _stream_payload(data: bytes, *, packet: int, sync: int, streams: set[int]) -> int:
    """Payload bytes of the transport packets in ``data`` that carry a PES stream (PIDs in ``streams``,
    to which a PID is added at its first PES start): what ffprobe counts against its probesize."""
    total = 0
    for at in range(sync, len(data) - 187, packet):
        pid = ((data[at + 1] & 0x1F) << 8) | data[at + 2]
        control = (data[at + 3] >> 4) & 0x3
        if not control & 0x1:
            continue
        payload_at = at + 4 + (1 + data[at + 4] if control & 0x2 else 0)
        if data[at + 1] & 0x40 and data[payload_at : payload_at + 3] == b"\x00\x00\x01":
            streams.add(pid)
        if pid in streams:
            total += max(0, at + 188 - payload_at)
    return total
