"""Move player beacons from the Redis stream into the database (raw events and per-minute rollups),
continuously or once; prunes raw events past their retention every hour."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from analytics.ingest import qoe_drain
from analytics.rollups import qoe_prune

PRUNE_EVERY_SECONDS = 3600


class Command(BaseCommand):
    help = "Drain QoE beacon batches from Redis into the database."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="drain what is there and exit")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["once"]:
            self.stdout.write(f"stored {qoe_drain()} event(s)")
            return
        last_prune = 0.0
        while True:
            qoe_drain(block_ms=1000)
            if time.monotonic() - last_prune > PRUNE_EVERY_SECONDS:
                qoe_prune()
                last_prune = time.monotonic()
