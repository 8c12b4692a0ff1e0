"""Byte-range parsing and cache policy for the origin (pure)."""

from __future__ import annotations

import re

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
IMMUTABLE = "public, max-age=31536000, immutable"
PLAYLIST = "public, max-age=60"


class RangeNotSatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The (start, end) inclusive of a single ``Range`` header, None for the whole object.

    Multi-range and malformed headers are ignored (the whole object is sent), as RFC 9110 allows.
    """
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":
        length = int(last)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(0, size - length), size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or (last != "" and int(last) < start):
        raise RangeNotSatisfiable
    return start, end


def cache_control_for(key: str) -> str:
    # Everything under a version prefix is immutable; playlists get a short life anyway because
    # their URL carries a token that expires.
    return PLAYLIST if key.endswith((".m3u8", ".mpd")) else IMMUTABLE
