"""Watched seconds of a lesson as a bitmap, from the time ranges a player reports (pure).

Second i counts once at least half of [i, i+1) lies inside a played range. Players report the ranges
actually played (HTMLMediaElement.played), so seeking ahead leaves a gap that counts for nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

MAX_RANGES = 500
MAX_DURATION_SECONDS = 24 * 3600
# The last media segment may end a little after the duration the probe measured.
END_TOLERANCE_SECONDS = 2.0


def total_seconds(duration: float) -> int:
    return max(1, min(MAX_DURATION_SECONDS, math.ceil(duration - 0.25)))


def parse_ranges(value: object, *, duration: float) -> list[tuple[float, float]]:
    """Validate a JSON list of [start, end] pairs; raises ValueError with a reason."""
    if not isinstance(value, list):
        raise ValueError("ranges must be a list of [start, end] pairs")
    if len(value) > MAX_RANGES:
        raise ValueError(f"at most {MAX_RANGES} ranges")
    ranges = []
    for item in value:
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise ValueError("each range is a [start, end] pair")
        start, end = item
        if not all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in (start, end)):
            raise ValueError("range bounds must be numbers")
        if start < 0 or end < start:
            raise ValueError("each range needs 0 <= start <= end")
        if end > duration + END_TOLERANCE_SECONDS:
            raise ValueError("a range ends after the lesson does")
        ranges.append((float(start), float(min(end, duration))))
    return ranges


def seconds_played(ranges: Iterable[tuple[float, float]], *, total: int) -> set[int]:
    seconds: set[int] = set()
    for start, end in ranges:
        for second in range(int(start), min(total, math.ceil(end))):
            if min(end, second + 1) - max(start, second) >= 0.5:
                seconds.add(second)
    return seconds


def bitmap_merge(bitmap: bytes, seconds: Iterable[int], *, total: int) -> bytes:
    bits = bytearray(bitmap.ljust((total + 7) // 8, b"\0"))
    for second in seconds:
        if 0 <= second < total:
            bits[second // 8] |= 1 << (second % 8)
    return bytes(bits)


def bitmap_count(bitmap: Sequence[int] | bytes, *, total: int) -> int:
    return sum(1 for second in range(total) if second // 8 < len(bitmap) and bitmap[second // 8] >> (second % 8) & 1)
