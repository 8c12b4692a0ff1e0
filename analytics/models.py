"""Raw QoE events, kept for a configurable time, from which views and rollups are computed."""

from __future__ import annotations

from django.db import models


class QoeEvent(models.Model):
    view_id = models.UUIDField(db_index=True)
    lesson = models.UUIDField(db_index=True)
    type = models.CharField(max_length=20)
    t_ms = models.FloatField(help_text="Milliseconds since the view started, on the player's clock.")
    data = models.JSONField(default=dict, blank=True)
    pathway = models.CharField(max_length=40)
    browser = models.CharField(max_length=40)
    device = models.CharField(max_length=10)
    region = models.CharField(max_length=7, default="unknown")
    received_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["lesson", "received_at"], name="qoe_event_lesson_time")]

    def __str__(self) -> str:
        return f"{self.view_id} {self.type}@{self.t_ms:.0f}"


class QoeMinute(models.Model):
    """Per-minute rollup of beacon batches, by lesson and the bounded dimensions, kept for history."""

    minute = models.DateTimeField()
    lesson = models.UUIDField()
    pathway = models.CharField(max_length=40)
    device = models.CharField(max_length=10)
    browser = models.CharField(max_length=40)
    region = models.CharField(max_length=7, default="unknown")
    plays = models.PositiveIntegerField(default=0)
    starts = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    rebuffers = models.PositiveIntegerField(default=0)
    rebuffer_ms = models.FloatField(default=0)
    watch_ms = models.FloatField(default=0)
    startup_ms_sum = models.FloatField(default=0)
    startup_count = models.PositiveIntegerField(default=0)
    # Startup times counted into buckets (upper bound in ms -> views), for p50/p95 over any period.
    startup_histogram = models.JSONField(default=dict, blank=True)
    exits = models.PositiveIntegerField(default=0, help_text="Views that left before the first frame.")
    bitrate_sum = models.FloatField(default=0)
    bitrate_n = models.PositiveIntegerField(default=0)
    # Time-weighted: sum of bitrate x milliseconds played, over the milliseconds, and ms per height.
    bitrate_weighted = models.FloatField(default=0)
    bitrate_weighted_ms = models.FloatField(default=0)
    rendition_ms = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["minute", "lesson", "pathway", "device", "browser", "region"], name="qoe_minute_unique_key"
            )
        ]
        indexes = [models.Index(fields=["lesson", "minute"], name="qoe_minute_lesson")]
