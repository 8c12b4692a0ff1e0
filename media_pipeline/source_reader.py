"""Read a stored source by ranges: what a step needs of it, when it needs it, never the whole object first.

A phone video is 650 MB to 1.1 GB for ten minutes, often with its index (the MP4 ``moov``) at the end;
copied whole at 42 MB/s that is 15 to 25 s before anything can start. The media tools still see only
local files and pipes (docs/adr/0017), so the reading is done here:

- ``stream_in_order(key)``: the object as ffmpeg reads it from a pipe (its stdin), front to back. An
  MP4/MOV whose moov follows its media data is reordered on the way, as ``qt-faststart`` does: the box
  headers first (small ranged GETs), then the moov, rewritten for its new place (iso_boxes), then the
  media data in order. Anything else goes as it is.

Every byte is fetched at most once, in ``storage.CHUNK_SIZE`` pieces: only box headers and the tail
of the file (the moov, usually) are held in memory, never the media data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from botocore.exceptions import BotoCoreError

from media_pipeline import storage
from media_pipeline.iso_boxes import (
    Box,
    BoxError,
    Unsupported,
    faststart_moov,
    is_iso_bmff,
    moved_offset,
    parse_header,
)

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
# A dropped or stalled connection mid-stream is asked again from where it stopped, this many times in a row.
RETRIES = 3

Read = Callable[[int, int], bytes]


class _TooManyBoxes(Exception):
    """The walk of the top-level boxes would take more GETs than it is worth."""


class _Fetcher:
    """Ranged GETs of one stored object, counted (``gets``, ``bytes_read``)."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.size = storage.size(key)
        self.gets = 0
        self.bytes_read = 0

    def stream(self, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``[start, end)`` in order, one GET (another from where it stopped if the connection drops:
        a slow consumer, ffmpeg encoding, keeps one open for minutes)."""
        at, failures = start, 0
        while at < end:
            self.gets += 1
            try:
                for chunk in storage.open_range(key=self.key, start=at, end=end - 1):
                    if chunk:
                        failures = 0
                        self.bytes_read += len(chunk)
                        at += len(chunk)
                        yield chunk
            except BotoCoreError as exc:
                failures += 1
                if failures > RETRIES:
                    raise
                logger.warning("%s: reading again from byte %d after %s", self.key, at, exc)
                continue
            if at < end:
                raise OSError(f"{self.key}: bytes {at}-{end - 1} did not come (is the object shorter?)")

    def read(self, start: int, end: int) -> bytes:
        return b"".join(self.stream(start, end))


class _Pieces:
    """The few small ranges fetched ahead of their turn (the head, box headers, the tail), so that no
    byte is fetched twice: a later read or stream takes them from here."""

    def __init__(self, fetcher: _Fetcher) -> None:
        self._fetcher = fetcher
        self._pieces: dict[int, bytes] = {}

    def _at(self, position: int, end: int) -> tuple[bytes | None, int]:
        """The held bytes starting at ``position`` (up to ``end``), or None and where the next held piece
        starts (``end`` at most)."""
        following = end
        for start, data in self._pieces.items():
            if start <= position < start + len(data):
                return data[position - start : end - start], position
            if position < start < following:
                following = start
        return None, following

    def read(self, start: int, end: int, *, keep: bool = True) -> bytes:
        """Bytes ``[start, end)``; what is fetched for it is kept for later unless ``keep`` is false."""
        return b"".join(self._parts(start, end, keep=keep))

    def stream(self, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``[start, end)`` in order; held pieces inside the range are let go."""
        yield from self._parts(start, end, keep=False)
        for piece in [p for p, data in self._pieces.items() if start <= p and p + len(data) <= end]:
            del self._pieces[piece]

    def _parts(self, start: int, end: int, *, keep: bool) -> Iterator[bytes]:
        position = start
        while position < end:
            held, following = self._at(position, end)
            if held is not None:
                position += len(held)
                yield held
            elif keep:
                data = self._fetcher.read(position, following)
                self._pieces[position] = data
                position = following
                yield data
            else:
                yield from self._fetcher.stream(position, following)
                position = following


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


def _limited(read: Read, fetcher: _Fetcher, max_gets: int) -> Read:
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
        self._fetcher = _Fetcher(key)
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
        pieces = _Pieces(self._fetcher)
        for part in self._plan(pieces):
            if isinstance(part, bytes):
                yield part
            else:
                yield from pieces.stream(*part)

    def _plan(self, pieces: _Pieces) -> list[bytes | tuple[int, int]]:
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
