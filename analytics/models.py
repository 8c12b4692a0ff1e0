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
    received_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["lesson", "received_at"], name="qoe_event_lesson_time")]

    def __str__(self) -> str:
        return f"{self.view_id} {self.type}@{self.t_ms:.0f}"
