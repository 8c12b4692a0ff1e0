"""QoE over any period from the per-minute rollups, grouped by one dimension."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from analytics import qoe
from analytics.models import QoeMinute
from analytics.rollups import COUNTERS
from courses.selectors import lesson_course_slugs

DIMENSIONS = ("lesson", "course", "pathway", "region", "browser", "device")


def qoe_report(*, since: datetime, by: str, lessons: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per value of ``by`` with the QoE figures as analytics/qoe.py defines them, busiest first.

    Startup percentiles come from the per-minute histograms. Average bitrate and rendition mix are
    weighted by playing time (heartbeats carry the current rendition); a player that sent no
    heartbeat yet falls back to the mean of the renditions it reported.
    """
    if by not in DIMENSIONS:
        raise ValueError(f"by must be one of {', '.join(DIMENSIONS)}")
    query = QoeMinute.objects.filter(minute__gte=since)
    if lessons is not None:
        query = query.filter(lesson__in=lessons)
    rows = list(query)
    courses = lesson_course_slugs(public_ids=sorted({str(r.lesson) for r in rows})) if by == "course" else {}
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    histograms: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    renditions: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for row in rows:
        group = courses.get(str(row.lesson), "deleted") if by == "course" else str(getattr(row, by))
        for field in COUNTERS:
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
                "failure_pct": qoe.rounded(qoe.failure_pct(s), 2),
                "exits_before_start_pct": qoe.rounded(qoe.exits_before_start_pct(s), 2),
                "startup_p50_ms": qoe.histogram_quantile(0.5, histograms[group], qoe.STARTUP_BOUNDS_MS),
                "startup_p95_ms": qoe.histogram_quantile(0.95, histograms[group], qoe.STARTUP_BOUNDS_MS),
                "rebuffer_pct": qoe.rounded(qoe.rebuffer_pct(s), 2),
                "rebuffers_per_minute": qoe.rounded(qoe.rebuffers_per_minute(s), 3),
                "average_bitrate_kbps": qoe.rounded(qoe.average_bitrate_kbps(s), 1),
                "rendition_mix": {h: round(pct, 1) for h, pct in qoe.rendition_mix(renditions[group]).items()},
                "watch_seconds": round(s["watch_ms"] / 1000, 1),
            }
        )
    return sorted(report, key=lambda item: (-item["views"], item[by]))
