"""Watched seconds of a lesson as a bitmap, from the time ranges a player reports (pure).

Second i counts once at least half of [i, i+1) lies inside a played range. Players report the ranges
actually played (HTMLMediaElement.played), so seeking ahead leaves a gap that counts for nothing.
What a player claims is credited no faster than wall-clock time at the fastest playback rate
(credit()), so a report of the whole lesson a second after the viewing began earns a few seconds, not the lesson.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from core import errors

MAX_RANGES = 500
MAX_DURATION_SECONDS = 24 * 3600
# The last media segment may end a little after the duration the probe measured.
END_TOLERANCE_SECONDS = 2.0


class RangesInvalid(errors.Invalid, ValueError):
    """The reported ranges are malformed or out of the lesson's bounds."""


def total_seconds(duration: float) -> int:
    return max(1, min(MAX_DURATION_SECONDS, math.ceil(duration - 0.25)))


def parse_ranges(value: object, *, duration: float) -> list[tuple[float, float]]:
    """Validate a JSON list of [start, end] pairs; raises RangesInvalid with a reason."""
    if not isinstance(value, list):
        raise RangesInvalid("ranges must be a list of [start, end] pairs")
    if len(value) > MAX_RANGES:
        raise RangesInvalid(f"at most {MAX_RANGES} ranges")
    ranges = []
    for item in value:
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise RangesInvalid("each range is a [start, end] pair")
        start, end = item
        if not all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in (start, end)):
            raise RangesInvalid("range bounds must be numbers")
        if start < 0 or end < start:
            raise RangesInvalid("each range needs 0 <= start <= end")
        if end > duration + END_TOLERANCE_SECONDS:
            raise RangesInvalid("a range ends after the lesson does")
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


def bitmap_has(bitmap: Sequence[int] | bytes, second: int) -> bool:
    return second // 8 < len(bitmap) and bool(bitmap[second // 8] >> (second % 8) & 1)


def bitmap_count(bitmap: Sequence[int] | bytes, *, total: int) -> int:
    return sum(1 for second in range(total) if bitmap_has(bitmap, second))


# --- Credit: how many newly claimed seconds the server believes --------------------------------------
# The speeds the player offers (templates/player/_player.html renders its menu from this). The server
# credits watched seconds no faster than wall-clock time at the fastest of them.
PLAYBACK_RATES = (0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
MAX_PLAYBACK_RATE = max(PLAYBACK_RATES)
# Wall-clock seconds the credit clock may run ahead of now: a second counts when half of it was played,
# and two web machines' clocks differ a little. A one-off margin, not a per-report one (see credit()).
CREDIT_SLACK_SECONDS = 2.0


@dataclass(frozen=True)
class Credit:
    seconds: tuple[int, ...]  # the newly claimed seconds that are credited, earliest first
    clock: float  # the credit clock afterwards (Unix seconds)


def credit(
    *,
    claimed: Iterable[int],
    bitmap: Sequence[int] | bytes,
    total: int,
    clock: float | None,
    issued_at: float,
    now: float,
    rate: float = MAX_PLAYBACK_RATE,
    slack: float = CREDIT_SLACK_SECONDS,
) -> Credit:
    """Which of the ``claimed`` seconds not yet in ``bitmap`` to credit, by a credit clock.

    One clock per learner and lesson, shared by all their viewings: crediting a second moves it on by
    1/``rate`` seconds of wall-clock time, and it may never run more than ``slack`` seconds ahead of
    ``now``. A viewing's report starts the clock no earlier than when its view token was issued
    (``issued_at``), so time between viewings earns nothing, and an old token cannot bring back time
    already used. Hence, over any number of viewings and reports, credited seconds never exceed
    ``rate`` x (wall-clock time since the first viewing began + ``slack``). Unused time is kept
    within a viewing: a report that arrives late (a background tab) is still credited in full.
    """
    start = max(clock if clock is not None else -math.inf, min(issued_at, now))
    allowance = max(0, math.floor((now + slack - start) * rate + 1e-9))
    new = sorted(second for second in set(claimed) if 0 <= second < total and not bitmap_has(bitmap, second))
    granted = tuple(new[:allowance])
    return Credit(seconds=granted, clock=start + len(granted) / rate)
