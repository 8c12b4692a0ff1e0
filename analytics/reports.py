"""QoE over any period from the per-minute rollups, grouped by one dimension."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from analytics.models import QoeMinute
from analytics.qoe import histogram_quantile
from analytics.rollups import STARTUP_BOUNDS_MS
from courses.selectors import lesson_course_slugs

DIMENSIONS = ("lesson", "course", "pathway", "region", "browser", "device")
SUMMED = (
    "plays", "starts", "failures", "exits", "rebuffers", "rebuffer_ms", "watch_ms", "bitrate_sum", "bitrate_n",
    "bitrate_weighted", "bitrate_weighted_ms",
)  # fmt: skip


def _pct(part: float, whole: float) -> float | None:
    return None if not whole else round(100 * part / whole, 2)


def qoe_report(*, since: datetime, by: str, lessons: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per value of ``by`` with the QoE metrics of qoe.py's definitions, busiest first.

    Startup percentiles come from the per-minute histograms. Average bitrate and rendition mix are
    weighted by playing time (heartbeats carry the current rendition); a player that sent no
    heartbeat yet falls back to the mean of the renditions it reported.
    """
    if by not in DIMENSIONS:
        raise ValueError(f"by must be one of {', '.join(DIMENSIONS)}")
    rows = QoeMinute.objects.filter(minute__gte=since)
    if lessons is not None:
        rows = rows.filter(lesson__in=lessons)
    rows = list(rows)
    courses = lesson_course_slugs(public_ids=sorted({str(r.lesson) for r in rows})) if by == "course" else {}
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    histograms: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    renditions: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for row in rows:
        group = courses.get(str(row.lesson), "deleted") if by == "course" else str(getattr(row, by))
        for field in SUMMED:
            sums[group][field] += getattr(row, field)
        for bucket, count in row.startup_histogram.items():
            histograms[group][bucket] += count
        for height, ms in row.rendition_ms.items():
            renditions[group][height] += ms
    report = []
    for group, s in sums.items():
        report.append(
            {
                by: group,
                "views": int(s["plays"]),
                "failure_pct": _pct(s["failures"], s["plays"]),
                "exits_before_start_pct": _pct(s["exits"], s["plays"]),
                "startup_p50_ms": histogram_quantile(0.5, histograms[group], STARTUP_BOUNDS_MS),
                "startup_p95_ms": histogram_quantile(0.95, histograms[group], STARTUP_BOUNDS_MS),
                "rebuffer_pct": _pct(s["rebuffer_ms"], s["watch_ms"]),
                "rebuffers_per_minute": None
                if not s["watch_ms"]
                else round(s["rebuffers"] / (s["watch_ms"] / 60_000), 3),
                "average_bitrate_kbps": _average_bitrate(s),
                "rendition_mix": _mix(renditions[group]),
                "watch_seconds": round(s["watch_ms"] / 1000, 1),
            }
        )
    return sorted(report, key=lambda item: (-item["views"], item[by]))


def _average_bitrate(s: dict[str, float]) -> float | None:
    if s["bitrate_weighted_ms"]:
        return round(s["bitrate_weighted"] / s["bitrate_weighted_ms"], 1)
    return None if not s["bitrate_n"] else round(s["bitrate_sum"] / s["bitrate_n"], 1)


def _mix(played: dict[str, float]) -> dict[str, float]:
    total = sum(played.values())
    return (
        {height: round(100 * ms / total, 1) for height, ms in sorted(played.items(), key=lambda i: int(i[0]))}
        if total
        else {}
    )
