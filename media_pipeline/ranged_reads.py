"""Ranged reads of one stored object, each byte fetched at most once (source_reader's building blocks).

- ``Fetcher``: ranged GETs, counted, resumed where a dropped connection stopped.
- ``HeldRanges``: the few small ranges fetched ahead of their turn (in memory), served from there later.
- ``SparseCopy``: a local sparse file filled range by range, readable as a seekable file
  (container_damage.Handle), so that what a check reads through it is what lands in the copy.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

from botocore.exceptions import BotoCoreError

from media_pipeline import storage

logger = logging.getLogger(__name__)

# A dropped or stalled connection mid-stream is asked again from where it stopped, this many times in a row.
RETRIES = 3


class Fetcher:
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


class HeldRanges:
    """The few small ranges fetched ahead of their turn (the head, box headers, the tail), so that no
    byte is fetched twice: a later read or stream takes them from here."""

    def __init__(self, fetcher: Fetcher) -> None:
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


class SparseCopy:
    """A local sparse file as long as the stored object, filled range by range (each byte fetched at most
    once) and readable as a seekable binary file: the damage checks read through it, and what they read
    is in the copy when probe.run_ffprobe runs them again on the file."""

    def __init__(self, fetcher: Fetcher, target: Path) -> None:
        self._fetcher = fetcher
        self.size = fetcher.size
        target.parent.mkdir(parents=True, exist_ok=True)
        self._file = target.open("w+b")
        self._file.truncate(self.size)
        self._have: list[tuple[int, int]] = []  # fetched ranges [start, end), sorted, not touching
        self._position = 0

    def missing(self, start: int, end: int) -> list[tuple[int, int]]:
        gaps, at, end = [], max(0, start), min(end, self.size)
        for have_start, have_end in self._have:
            if have_end <= at:
                continue
            if have_start >= end:
                break
            if have_start > at:
                gaps.append((at, have_start))
            at = max(at, have_end)
        if at < end:
            gaps.append((at, end))
        return gaps

    def fetch(self, start: int, end: int) -> None:
        """Bytes ``[start, end)`` (within the object) into the copy, one GET per range not there yet."""
        for gap_start, gap_end in self.missing(start, end):
            self._file.seek(gap_start)
            for chunk in self._fetcher.stream(gap_start, gap_end):
                self._file.write(chunk)
            merged = [*self._have, (gap_start, gap_end)]
            merged.sort()
            self._have = []
            for have_start, have_end in merged:
                if self._have and have_start <= self._have[-1][1]:
                    self._have[-1] = (self._have[-1][0], max(self._have[-1][1], have_end))
                else:
                    self._have.append((have_start, have_end))

    def read_at(self, start: int, end: int) -> bytes:
        self.fetch(start, end)
        self._file.seek(start)
        return self._file.read(max(0, min(end, self.size) - start))

    # A container_damage.Handle: what the damage checks read comes from storage on the way.
    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def read(self, size: int = -1, /) -> bytes:
        end = self.size if size < 0 else self._position + size
        data = self.read_at(self._position, end)
        self._position += len(data)
        return data

    def __enter__(self) -> SparseCopy:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()
