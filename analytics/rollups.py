"""Per-minute rollups of the counters of analytics/qoe.py, written as batches are drained, and pruning of
raw events."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from analytics.beacons import Batch
from analytics.metrics import BROWSERS
from analytics.models import QoeEvent, QoeMinute
from analytics.qoe import batch_contributions, rendition_played_ms, startup_bucket

# The counters of analytics/qoe.py kept per minute (QoeMinute fields of the same names).
COUNTERS = (
    "plays", "starts", "failures", "rebuffers", "exits", "rebuffer_ms", "watch_ms", "bitrate_sum", "bitrate_n",
    "bitrate_weighted", "bitrate_weighted_ms",
)  # fmt: skip


def _key(batch: Batch, received: datetime) -> tuple:
    pathway = batch.pathway if batch.pathway in settings.QOE_PATHWAYS else "other"
    browser = batch.browser if batch.browser in BROWSERS else "other"
    return received.replace(second=0, microsecond=0), batch.lesson, pathway, batch.device, browser, batch.region


def rollup_batches(batches: list[tuple[Batch, datetime]]) -> None:
    """Add drained batches to their minute's rows. Call inside the drain's transaction: rows are
    locked while they are updated, so several drainers add up correctly."""
    totals: dict[tuple, dict[str, Any]] = defaultdict(lambda: defaultdict(float))
    histograms: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    renditions: dict[tuple, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for batch, received in batches:
        key = _key(batch, received)
        counts = batch_contributions(batch.events)
        for name in COUNTERS:
            totals[key][name] += counts.get(name, 0)
        if "startup_ms" in counts:
            totals[key]["startup_ms_sum"] += counts["startup_ms"]
            totals[key]["startup_count"] += 1
            histograms[key][startup_bucket(counts["startup_ms"])] += 1
        for height, ms in rendition_played_ms(counts).items():
            renditions[key][height] += ms
    for key in sorted(totals):
        minute, lesson, pathway, device, browser, region = key
        lookup = {"minute": minute, "lesson": lesson, "pathway": pathway, "device": device, "browser": browser,
                  "region": region}  # fmt: skip
        row = _locked_row(lookup)
        for name, value in totals[key].items():
            setattr(row, name, getattr(row, name) + value)
        merged = dict(row.startup_histogram)
        for bucket, count in histograms[key].items():
            merged[bucket] = merged.get(bucket, 0) + count
        row.startup_histogram = merged
        played = dict(row.rendition_ms)
        for height, ms in renditions[key].items():
            played[height] = played.get(height, 0) + ms
        row.rendition_ms = played
        row.save()


def _locked_row(lookup: dict[str, Any]) -> QoeMinute:
    row = QoeMinute.objects.select_for_update().filter(**lookup).first()
    if row is not None:
        return row
    try:
        with transaction.atomic():
            return QoeMinute.objects.create(**lookup)
    except IntegrityError:  # another drainer created it first
        return QoeMinute.objects.select_for_update().get(**lookup)


def qoe_prune(*, now: datetime | None = None) -> int:
    """Delete raw events older than QOE_RAW_RETENTION_DAYS; rollups are kept."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.QOE_RAW_RETENTION_DAYS)
    deleted, _ = QoeEvent.objects.filter(received_at__lt=cutoff).delete()
    return deleted
