"""Quality-of-experience definitions: the one implementation (pure: no Django, no I/O).

The player reports events with ``t`` in milliseconds on its own monotonic clock (a *view* is one
play attempt; ``performance.now()`` at its start = 0) and sends them in batches. Every figure starts
as the additive counters of one batch (:func:`batch_contributions`); the live windows
(analytics/live.py, summed per second in Redis) and the per-minute rollups (analytics/rollups.py,
summed per row) add them up, and the figures below are computed from those sums. A view sent whole
in one batch gives the same counters as the view itself. Definitions follow Mux Data's published
metric definitions (and Conviva's, where they agree):

=============================  =============================================================================
figure                         definition (counters of batch_contributions, summed)
=============================  =============================================================================
views (``plays``)              play requests
playback failure %             ``failures`` (fatal errors) / ``plays``
exits before video start %     ``exits`` / ``plays``; an exit is a batch with a play request and an end, but
                               no first frame and no fatal error (the viewer left before the first frame)
video startup time             ``startup_ms``: from the play request to the first frame, for views that
                               started; percentiles exact (:func:`percentile`, live) or from the
                               per-minute histogram (:func:`histogram_quantile`, ``STARTUP_BOUNDS_MS``)
watch time (``watch_ms``)      time in the starting, playing and rebuffering states: from the play request
                               until the view ends, less paused and seeking time (startup and stalls count)
rebuffering (stalls)           ``rebuffers``: stalls after the first frame (before it is startup);
                               ``rebuffer_ms``: time stalled
rebuffer %                     ``rebuffer_ms`` / ``watch_ms``
rebuffer frequency             ``rebuffers`` per minute of ``watch_ms``
average bitrate                ``bitrate_weighted`` / ``bitrate_weighted_ms``: weighted by the time played in
                               each rendition; without such time, the mean of the renditions reported
                               (``bitrate_sum`` / ``bitrate_n``; the live windows keep only that)
rendition mix                  share of ``rendition_ms:<height>`` per height
=============================  =============================================================================

Time is attributed between consecutive events (ordered by ``t``, ties by ``ORDER``) to the state the
earlier one left the player in; events after the view's end (``end`` or a fatal error) count for
nothing. A batch from the middle of a view starts in an unknown state, counted as watching: the time
before its first event belongs to the batch before. Time in a rendition is counted only for intervals
the batch can vouch for: one that ends at a heartbeat or a rendition switch (the player sends a
heartbeat with its current rendition while playing, and with every flush) and does not start at a
play request, a pause, a seek, a stall or the end.

Percentiles use linear interpolation between closest ranks (the same as NumPy's default).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

EVENT_TYPES = frozenset(
    {
        "play_request", "first_frame", "pause", "play", "seeking", "seeked", "rebuffer_start", "rebuffer_end",
        "rendition", "error", "heartbeat", "end",
    }
)  # fmt: skip
# Events at the same millisecond: whatever closes an interval (a heartbeat, a rendition switch) before
# whatever opens the next state (a stall, a seek, a pause, the end), so arrival order never matters.
ORDER = (
    "play_request", "first_frame", "play", "seeked", "rebuffer_end", "rendition", "heartbeat", "rebuffer_start",
    "seeking", "pause", "error", "end",
)  # fmt: skip
# event -> (the states it moves the player from, the state it moves it to). From any other state the
# event changes nothing; a batch from the middle of a view starts "unknown", which every event leaves.
# Rendition switches, heartbeats and non-fatal errors change nothing (from "unknown": playing).
_MOVES = {
    "play_request": ((), "starting"),
    "first_frame": (("starting",), "playing"),
    "rebuffer_start": (("playing",), "rebuffering"),
    "rebuffer_end": (("rebuffering",), "playing"),
    "pause": (("playing", "rebuffering"), "paused"),
    "play": (("paused",), "playing"),
    "seeking": (("playing", "paused", "rebuffering"), "seeking"),
    "seeked": (("seeking",), "playing"),
    "heartbeat": ((), "playing"),
    "rendition": ((), "playing"),
    "end": (("starting", "playing", "rebuffering", "paused", "seeking"), "ended"),
}
_NOT_WATCHING = frozenset({"paused", "seeking", "ended"})
_RENDITION_UNKNOWN_AFTER = frozenset({"pause", "seeking", "rebuffer_start", "end", "play_request"})
# Upper bounds (ms) of the startup-time buckets kept per minute; "inf" catches the rest.
STARTUP_BOUNDS_MS = (250, 500, 1000, 2000, 3000, 4000, 6000, 10000, 20000)


def _add(counts: dict[str, float], name: str, amount: float) -> None:
    counts[name] = counts.get(name, 0) + amount


def _ordered(events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(events, key=lambda e: (e["t"], ORDER.index(e["type"]) if e["type"] in ORDER else len(ORDER)))


def _move(state: str, event: Mapping[str, Any]) -> str:
    if event["type"] == "error":
        return "ended" if event.get("fatal") else state
    sources, target = _MOVES.get(event["type"], ((), state))
    return target if state == "unknown" or state in sources else state


def batch_contributions(events: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """The additive counters one batch of events contributes (see the table above). ``events`` holds
    every event the batch carried (``events`` counts them all); absent counters are zero."""
    counts: dict[str, float] = {"events": len(events)}
    state = "unknown"  # unknown -> starting -> playing <-> rebuffering / paused / seeking -> ended
    previous: Mapping[str, Any] | None = None
    requested_at: float | None = None
    rendition: tuple[float, int] | None = None  # (kbps, height) in effect
    for event in _ordered(events):
        kind, now = event["type"], event["t"]
        if previous is not None:
            elapsed = now - previous["t"]
            if state not in _NOT_WATCHING:
                _add(counts, "watch_ms", elapsed)
            if state == "rebuffering":
                _add(counts, "rebuffer_ms", elapsed)
            if kind in ("heartbeat", "rendition") and rendition and previous["type"] not in _RENDITION_UNKNOWN_AFTER:
                kbps, height = rendition
                _add(counts, f"rendition_ms:{height}", elapsed)
                _add(counts, "bitrate_weighted", kbps * elapsed)
                _add(counts, "bitrate_weighted_ms", elapsed)
        if kind == "play_request":
            _add(counts, "plays", 1)
            requested_at = now
        elif kind == "first_frame" and state in ("starting", "unknown"):
            _add(counts, "starts", 1)
            if state == "starting" and requested_at is not None:
                counts["startup_ms"] = now - requested_at
        elif kind == "rebuffer_start" and state in ("playing", "unknown"):
            _add(counts, "rebuffers", 1)
        elif kind == "rendition" and "bitrate_kbps" in event:
            _add(counts, "bitrate_sum", event["bitrate_kbps"])
            _add(counts, "bitrate_n", 1)
        elif kind == "error" and event.get("fatal"):
            _add(counts, "failures", 1)
        if "height" in event and "bitrate_kbps" in event:
            rendition = (event["bitrate_kbps"], event["height"])
        state = _move(state, event)
        previous = event
        if state == "ended":
            break  # nothing after the view's end counts
    if counts.get("plays") and not counts.get("starts") and not counts.get("failures") and state == "ended":
        counts["exits"] = 1  # left before the first frame, without an error
    return counts


def ratio_pct(part: float, whole: float) -> float | None:
    """100 * part / whole; None (not zero) when there is nothing to divide by."""
    return None if not whole else 100.0 * part / whole


def failure_pct(totals: Mapping[str, float]) -> float | None:
    return ratio_pct(totals.get("failures", 0), totals.get("plays", 0))


def exits_before_start_pct(totals: Mapping[str, float]) -> float | None:
    return ratio_pct(totals.get("exits", 0), totals.get("plays", 0))


def rebuffer_pct(totals: Mapping[str, float]) -> float | None:
    return ratio_pct(totals.get("rebuffer_ms", 0), totals.get("watch_ms", 0))


def rebuffers_per_minute(totals: Mapping[str, float]) -> float | None:
    watch = totals.get("watch_ms", 0)
    return None if not watch else totals.get("rebuffers", 0) / (watch / 60_000)


def average_bitrate_kbps(totals: Mapping[str, float]) -> float | None:
    if totals.get("bitrate_weighted_ms"):
        return totals["bitrate_weighted"] / totals["bitrate_weighted_ms"]
    return None if not totals.get("bitrate_n") else totals["bitrate_sum"] / totals["bitrate_n"]


def rendition_mix(played_ms: Mapping[str, float]) -> dict[str, float]:
    """Share (%) of playing time per height (``{"360": ms, ...}``, heights as strings), lowest first."""
    total = sum(played_ms.values())
    if not total:
        return {}
    return {height: 100.0 * ms / total for height, ms in sorted(played_ms.items(), key=lambda item: int(item[0]))}


def rendition_played_ms(totals: Mapping[str, float]) -> dict[str, float]:
    """The ``rendition_ms:<height>`` counters of summed contributions, by height."""
    return {name.split(":", 1)[1]: ms for name, ms in totals.items() if name.startswith("rendition_ms:")}


def rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def startup_bucket(startup_ms: float) -> str:
    """The per-minute histogram bucket (its upper bound, or "inf") a startup time falls in."""
    return next((str(bound) for bound in STARTUP_BOUNDS_MS if startup_ms <= bound), "inf")


def histogram_quantile(q: float, counts: dict[str, int], bounds: Sequence[float]) -> float | None:
    """The q-th quantile (0-1) from bucket counts keyed by upper bound ("inf" for the rest).

    Linear interpolation inside the bucket, as Prometheus's histogram_quantile does; a quantile
    that falls in the open "inf" bucket is reported as the highest finite bound.
    """
    ordered = [(float(b), counts.get(str(b), 0)) for b in bounds] + [(math.inf, counts.get("inf", 0))]
    total = sum(n for _, n in ordered)
    if total == 0:
        return None
    rank = q * total
    cumulative, lower = 0, 0.0
    for upper, n in ordered:
        if n and cumulative + n >= rank:
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * (rank - cumulative) / n
        cumulative += n
        lower = upper if not math.isinf(upper) else lower
    return lower
