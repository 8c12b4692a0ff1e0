"""Seal every stored content key with the current CONTENT_KEY_SECRET (the rotation's second step)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from media_pipeline import services
from media_pipeline.content_keys import KeyUnreadable


class Command(BaseCommand):
    help = (
        "Re-seal every content key with CONTENT_KEY_SECRET; keys sealed with a secret in CONTENT_KEY_SECRET_OLD "
        "are moved to the current one. Safe to rerun; afterwards the old secret can be removed."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            checked, resealed = services.content_keys_reseal()
        except KeyUnreadable as exc:
            raise CommandError(f"{exc}; nothing was changed") from exc
        self.stdout.write(f"checked {checked} content key(s), re-sealed {resealed} with the current secret")
