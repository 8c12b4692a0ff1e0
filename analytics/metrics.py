"""Prometheus metrics for quality of experience, with bounded label values.

Labels come from beacons, which anyone can send, so every label value is mapped onto a fixed
set before use: a pathway not in settings.QOE_PATHWAYS becomes "other", and so on. The figures are
the counters of analytics/qoe.py.
"""

from __future__ import annotations

from django.conf import settings
from prometheus_client import Counter, Histogram

from analytics.beacons import DEVICE_CLASSES, Batch
from analytics.qoe import batch_contributions

BROWSERS = frozenset({"Chrome", "Edge", "Firefox", "Safari"})
STARTUP_BUCKETS = (0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 10.0, 20.0)

VIEWS = Counter("qoe_views_total", "Play requests (one per view)", ["pathway", "device", "browser"])
FAILURES = Counter("qoe_playback_failures_total", "Views that ended in a fatal error", ["pathway", "device", "browser"])
STARTUP = Histogram("qoe_startup_seconds", "Video startup time", ["pathway"], buckets=STARTUP_BUCKETS)
REBUFFERS = Counter("qoe_rebuffers_total", "Stalls after the first frame", ["pathway"])
REBUFFER_SECONDS = Counter("qoe_rebuffer_seconds_total", "Time spent stalled", ["pathway"])
WATCH_SECONDS = Counter(
    "qoe_watch_seconds_total", "Watch time: starting, playing and stalled (not paused or seeking)", ["pathway"]
)


def _labels(batch: Batch) -> tuple[str, str, str]:
    pathway = batch.pathway if batch.pathway in settings.QOE_PATHWAYS else "other"
    device = batch.device if batch.device in DEVICE_CLASSES else "other"
    browser = batch.browser if batch.browser in BROWSERS else "other"
    return pathway, device, browser


def observe_batch(batch: Batch) -> None:
    pathway, device, browser = _labels(batch)
    counts = batch_contributions(batch.events)
    if counts.get("plays"):
        VIEWS.labels(pathway, device, browser).inc(counts["plays"])
    if counts.get("failures"):
        FAILURES.labels(pathway, device, browser).inc(counts["failures"])
    if "startup_ms" in counts:
        STARTUP.labels(pathway).observe(counts["startup_ms"] / 1000)
    if counts.get("rebuffers"):
        REBUFFERS.labels(pathway).inc(counts["rebuffers"])
    if counts.get("rebuffer_ms"):
        REBUFFER_SECONDS.labels(pathway).inc(counts["rebuffer_ms"] / 1000)
    WATCH_SECONDS.labels(pathway).inc(counts.get("watch_ms", 0) / 1000)
