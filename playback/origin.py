"""Byte-range parsing and cache policy for the origin (pure)."""

from __future__ import annotations

import re

_RANGE = re.compile(r"bytes=(\d{0,18})-(\d{0,18})")
IMMUTABLE = "public, max-age=31536000, immutable"
# One second: a provisional version's playlists grow while players read them (media_pipeline.growing_manifests),
# and RFC 8216 6.2.2 asks caches not to keep a live playlist longer than half its target duration.
PLAYLIST = "public, max-age=1"


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
    # Segments are immutable once written; playlists are rewritten while a provisional stream grows
    # (and their URL carries a token that expires), so they live a second in any cache.
    return PLAYLIST if key.endswith((".m3u8", ".mpd")) else IMMUTABLE
