"""Byte-range parsing and cache policy for the origin (pure)."""

from __future__ import annotations

import re

_RANGE = re.compile(r"bytes=(\d{0,18})-(\d{0,18})")
IMMUTABLE = "public, max-age=31536000, immutable"
PLAYLIST = "public, max-age=60"


class RangeNotSatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (start, end) of a single ``Range`` header, or None to send the whole object.

    Follows RFC 9110 section 14: multi-range and syntactically invalid headers (``bytes=5-1``,
    other units) are ignored; a valid range that selects no byte of the object raises
    ``RangeNotSatisfiable`` (416).
    """
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if first == "":
        if last == "":
            return None
        length = int(last)  # suffix range: the last `length` bytes
        if length == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(0, size - length), size - 1
    start = int(first)
    if last != "" and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable
    end = size - 1 if last == "" else min(int(last), size - 1)
    return start, end


def cache_control_for(key: str) -> str:
    # Everything under a version prefix is immutable; playlists get a short life anyway because
    # their URL carries a token that expires.
    return PLAYLIST if key.endswith((".m3u8", ".mpd")) else IMMUTABLE
