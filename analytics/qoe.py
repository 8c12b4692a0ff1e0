"""Quality-of-experience maths (pure: no Django, no I/O).

A *view* is one play attempt, identified by the player's view id. The player reports events with
``t`` in milliseconds on its own monotonic clock (``performance.now()`` at the view's start = 0).
Definitions follow Mux Data's published metric definitions (and Conviva's, where they agree):

- **Playback failure %**: views that ended in a fatal error / all views.
- **Exits before video start %**: views where playback was requested but the viewer left before
  the first frame, without a fatal error / views with a play request.
- **Video startup time**: from the play request to the first frame, for views that started.
- **Watch time**: time from the play request until the view ends, less paused and seeking time;
  it includes startup and rebuffering, as Mux counts it.
- **Rebuffer percentage**: rebuffering time / watch time. **Rebuffer frequency**: rebuffer events
  per minute of watch time. Rebuffering starts only after the first frame (before it is startup).
- **Average bitrate**: bitrate weighted by the time spent playing each rendition.
  **Rendition mix**: share of playing time per rendition height.

Percentiles use linear interpolation between closest ranks (the same as NumPy's default).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

EVENT_TYPES = frozenset(
    {
        "play_request", "first_frame", "pause", "play", "seeking", "seeked", "rebuffer_start", "rebuffer_end",
        "rendition", "error", "heartbeat", "end",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Event:
    type: str
    t: float  # ms since the view started
    bitrate_kbps: float | None = None
    height: int | None = None
    fatal: bool = False
    code: str = ""


@dataclass
class ViewSummary:
    requested: bool = False
    started: bool = False
    failed: bool = False
    startup_ms: float | None = None
    watch_ms: float = 0.0
    playing_ms: float = 0.0
    rebuffer_ms: float = 0.0
    rebuffer_count: int = 0
    # kbps -> ms played at that bitrate; height -> ms played at that height
    bitrate_ms: dict[float, float] = field(default_factory=dict)
    height_ms: dict[int, float] = field(default_factory=dict)
    error_codes: list[str] = field(default_factory=list)

    @property
    def exited_before_start(self) -> bool:
        return self.requested and not self.started and not self.failed


def summarize_view(events: Iterable[Event]) -> ViewSummary:
    """Replay one view's events in time order and account every millisecond to one state."""
    summary = ViewSummary()
    state = "idle"  # idle -> starting -> playing <-> rebuffering / paused / seeking -> ended
    since = 0.0
    requested_at = 0.0
    bitrate: float | None = None
    height: int | None = None

    def close(now: float) -> None:
        elapsed = max(0.0, now - since)
        if state in ("starting", "playing", "rebuffering"):
            summary.watch_ms += elapsed
        if state == "rebuffering":
            summary.rebuffer_ms += elapsed
        if state == "playing":
            summary.playing_ms += elapsed
            if bitrate is not None:
                summary.bitrate_ms[bitrate] = summary.bitrate_ms.get(bitrate, 0.0) + elapsed
            if height is not None:
                summary.height_ms[height] = summary.height_ms.get(height, 0.0) + elapsed

    def move(new_state: str, now: float) -> None:
        nonlocal state, since
        close(now)
        state, since = new_state, now

    for event in sorted(events, key=lambda e: e.t):
        if state == "ended":
            break
        kind, now = event.type, event.t
        if kind == "play_request" and state == "idle":
            summary.requested = True
            state, since, requested_at = "starting", now, now
        elif kind == "first_frame" and state == "starting":
            summary.started = True
            summary.startup_ms = now - requested_at
            move("playing", now)
        elif kind == "rendition":
            close(now)
            since = now if state != "idle" else since
            bitrate, height = event.bitrate_kbps, event.height
        elif kind == "rebuffer_start" and state == "playing":
            summary.rebuffer_count += 1
            move("rebuffering", now)
        elif kind == "rebuffer_end" and state == "rebuffering":
            move("playing", now)
        elif kind == "pause" and state in ("playing", "rebuffering"):
            move("paused", now)
        elif kind == "play" and state == "paused":
            move("playing", now)
        elif kind == "seeking" and state in ("playing", "paused", "rebuffering"):
            move("seeking", now)
        elif kind == "seeked" and state == "seeking":
            move("playing", now)
        elif kind == "error":
            if event.code:
                summary.error_codes.append(event.code)
            if event.fatal:
                summary.failed = True
                move("ended", now)
        elif kind == "end":
            move("ended", now)
        elif kind == "heartbeat":
            close(now)
            since = now
    return summary


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Aggregate:
    views: int
    failure_pct: float | None
    exits_before_start_pct: float | None
    startup_p50_ms: float | None
    startup_p95_ms: float | None
    rebuffer_pct: float | None
    rebuffers_per_minute: float | None
    average_bitrate_kbps: float | None
    rendition_mix: dict[int, float]
    watch_ms: float


def _pct(part: float, whole: float) -> float | None:
    return None if whole == 0 else 100.0 * part / whole


def aggregate(summaries: Sequence[ViewSummary]) -> Aggregate:
    requested = [s for s in summaries if s.requested]
    startups = [s.startup_ms for s in summaries if s.startup_ms is not None]
    watch = sum(s.watch_ms for s in summaries)
    rebuffer = sum(s.rebuffer_ms for s in summaries)
    bitrate_ms: dict[float, float] = {}
    height_ms: dict[int, float] = {}
    for s in summaries:
        for kbps, ms in s.bitrate_ms.items():
            bitrate_ms[kbps] = bitrate_ms.get(kbps, 0.0) + ms
        for h, ms in s.height_ms.items():
            height_ms[h] = height_ms.get(h, 0.0) + ms
    weighted = sum(bitrate_ms.values())
    heights = sum(height_ms.values())
    return Aggregate(
        views=len(summaries),
        failure_pct=_pct(sum(s.failed for s in summaries), len(summaries)),
        exits_before_start_pct=_pct(sum(s.exited_before_start for s in requested), len(requested)),
        startup_p50_ms=percentile(startups, 50),
        startup_p95_ms=percentile(startups, 95),
        rebuffer_pct=_pct(rebuffer, watch),
        rebuffers_per_minute=None if watch == 0 else sum(s.rebuffer_count for s in summaries) / (watch / 60_000),
        average_bitrate_kbps=None if weighted == 0 else sum(k * ms for k, ms in bitrate_ms.items()) / weighted,
        rendition_mix={h: 100.0 * ms / heights for h, ms in sorted(height_ms.items())} if heights else {},
        watch_ms=watch,
    )


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
