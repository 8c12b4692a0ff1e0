"""Publish the live QoE snapshot to every dashboard socket twice a second (run one per deployment)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from analytics.services import live_publish


class Command(BaseCommand):
    help = "Push live QoE aggregates to the dashboard's Channels group every second."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=float, default=0.5, help="seconds between snapshots")

    def handle(self, *args: Any, **options: Any) -> None:
        while True:
            started = time.monotonic()
            live_publish()
            time.sleep(max(0.0, options["interval"] - (time.monotonic() - started)))
