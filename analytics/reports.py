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
SUMMED = ("plays", "starts", "failures", "exits", "rebuffers", "rebuffer_ms", "watch_ms", "bitrate_sum", "bitrate_n")


def _pct(part: float, whole: float) -> float | None:
    return None if not whole else round(100 * part / whole, 2)


def qoe_report(*, since: datetime, by: str, lessons: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per value of ``by`` with the QoE metrics of qoe.py's definitions, busiest first.

    Startup percentiles come from the per-minute histograms; the average bitrate is the mean of the
    renditions players reported (the raw events give the time-weighted figure for one lesson).
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
    for row in rows:
        group = courses.get(str(row.lesson), "deleted") if by == "course" else str(getattr(row, by))
        for field in SUMMED:
            sums[group][field] += getattr(row, field)
        for bucket, count in row.startup_histogram.items():
            histograms[group][bucket] += count
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
                "average_bitrate_kbps": None if not s["bitrate_n"] else round(s["bitrate_sum"] / s["bitrate_n"], 1),
                "watch_seconds": round(s["watch_ms"] / 1000, 1),
            }
        )
    return sorted(report, key=lambda item: (-item["views"], item[by]))
