"""A learner's recent throughput, as a start hint for the player (pure: no Django, no I/O).

The player reports its bandwidth estimate (``throughput_kbps``) in its heartbeats once it has
measured a few segments. Ingest keeps, per signed-in learner, the last ``HISTORY_LENGTH`` reports
(the view token says whose they are: beacons.batch_claim), and the playback API turns them into the
estimate the next session starts from. The hint is only a hint: both players
measure from the first segment on and switch. A client that lies in its beacons moves only its own
learner's start, and never beyond ``[MIN_KBPS, MAX_KBPS]``.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass

# With no history: about 1 Mbit/s, what a 3G or a crowded Wi-Fi carries. A ladder's 360p rung
# (800 kbit/s at most, plus audio) fits; a faster network climbs after the first segments.
DEFAULT_KBPS = 1000
MIN_KBPS = 300
MAX_KBPS = 8000
# Reports kept per learner, views taken into account, and how old a report may be.
HISTORY_LENGTH = 20
HISTORY_VIEWS = 5
HISTORY_MAX_AGE_SECONDS = 7 * 24 * 3600
# Start below what was measured: a network varies from one session to the next, and a stall at the
# start costs more than a few seconds on a lower rung.
SAFETY_FACTOR = 0.8


BASES = ("history", "default")


@dataclass(frozen=True)
class StartEstimate:
    kbps: int
    basis: str  # "history" (this learner's recent sessions) or "default"


DEFAULT = StartEstimate(kbps=DEFAULT_KBPS, basis="default")


def history_entry(*, view_id: str, kbps: float, now: float) -> str:
    """One report as kept in Redis: ``view_id kbps unix_time``."""
    return f"{view_id} {round(kbps)} {int(now)}"


def last_throughput(events: Iterable[dict]) -> float | None:
    """The last ``throughput_kbps`` a batch reports, if any."""
    found = None
    for event in events:
        if "throughput_kbps" in event:
            found = event["throughput_kbps"]
    return found


def start_estimate(entries: Iterable[str], *, now: float) -> StartEstimate:
    """The start estimate from a learner's history entries, newest first (malformed ones are skipped).

    Each view counts once, with its newest report; the median over the last ``HISTORY_VIEWS`` views,
    times ``SAFETY_FACTOR``, bounded to ``[MIN_KBPS, MAX_KBPS]``."""
    per_view: dict[str, float] = {}
    for entry in entries:
        try:
            view_id, kbps_text, at_text = entry.split(" ")
            kbps, at = float(kbps_text), float(at_text)
        except ValueError:
            continue
        if view_id in per_view or not kbps > 0 or now - at > HISTORY_MAX_AGE_SECONDS:
            continue
        per_view[view_id] = kbps
        if len(per_view) == HISTORY_VIEWS:
            break
    if not per_view:
        return DEFAULT
    kbps = statistics.median(per_view.values()) * SAFETY_FACTOR
    return StartEstimate(kbps=int(min(MAX_KBPS, max(MIN_KBPS, kbps))), basis="history")
