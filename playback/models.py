"""Audit of content key releases (ClearKey licenses and HLS keys)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class KeyReleaseOutcome(models.TextChoices):
    RELEASED = "released", "Key released"
    DENIED = "denied", "Refused"


class KeyRelease(models.Model):
    """One answer of the license server or the HLS key endpoint to a request with an authentic token.

    Requests that are malformed or carry a forged or expired token are refused before anyone is
    known; they are counted in logs, not here.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="key_releases"
    )
    lesson_public_id = models.UUIDField()
    version = models.PositiveIntegerField()
    kid = models.UUIDField()
    endpoint = models.CharField(max_length=16, help_text="license (ClearKey JSON) or hls_key")
    outcome = models.CharField(max_length=16, choices=KeyReleaseOutcome.choices)
    reason = models.CharField(max_length=200, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(outcome__in=KeyReleaseOutcome.values), name="key_release_outcome_valid"
            ),
        ]
        indexes = [models.Index(fields=["lesson_public_id", "created_at"])]

    def __str__(self) -> str:
        return f"{self.outcome} {self.kid} to user {self.user_id} at {self.created_at:%Y-%m-%d %H:%M:%S}"
