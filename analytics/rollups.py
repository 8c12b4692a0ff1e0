"""Per-minute rollups, written as batches are drained, and pruning of raw events."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from analytics.beacons import Batch
from analytics.live import batch_contributions
from analytics.metrics import BROWSERS
from analytics.models import QoeEvent, QoeMinute

FIELDS = {
    "plays": "plays", "starts": "starts", "failures": "failures", "rebuffers": "rebuffers",
    "rebuffer_ms": "rebuffer_ms", "span_ms": "watch_ms",
}  # fmt: skip


def rollup_batches(batches: list[tuple[Batch, datetime]]) -> None:
    """Add drained batches to their minute's rollup rows (one increment per row, not per batch)."""
    totals: dict[tuple, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for batch, received in batches:
        pathway = batch.pathway if batch.pathway in settings.QOE_PATHWAYS else "other"
        browser = batch.browser if batch.browser in BROWSERS else "other"
        key = (received.replace(second=0, microsecond=0), batch.lesson, pathway, batch.device, browser)
        counts = batch_contributions(batch)
        for source, target in FIELDS.items():
            totals[key][target] += counts.get(source, 0)
        if "startup_ms" in counts:
            totals[key]["startup_ms_sum"] += counts["startup_ms"]
            totals[key]["startup_count"] += 1
    for (minute, lesson, pathway, device, browser), amounts in sorted(totals.items()):
        lookup = {"minute": minute, "lesson": lesson, "pathway": pathway, "device": device, "browser": browser}
        increments = {name: F(name) + value for name, value in amounts.items()}
        if QoeMinute.objects.filter(**lookup).update(**increments):
            continue
        try:
            with transaction.atomic():
                QoeMinute.objects.create(**lookup, **amounts)
        except IntegrityError:  # another drainer created the row first
            QoeMinute.objects.filter(**lookup).update(**increments)


def qoe_prune(*, now: datetime | None = None) -> int:
    """Delete raw events older than QOE_RAW_RETENTION_DAYS; rollups are kept."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.QOE_RAW_RETENTION_DAYS)
    deleted, _ = QoeEvent.objects.filter(received_at__lt=cutoff).delete()
    return deleted
