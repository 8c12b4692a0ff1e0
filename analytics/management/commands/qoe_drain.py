"""Move player beacons from the Redis stream into the database, continuously (or once)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from analytics.ingest import qoe_drain


class Command(BaseCommand):
    help = "Drain QoE beacon batches from Redis into the database."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="drain what is there and exit")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["once"]:
            self.stdout.write(f"stored {qoe_drain()} event(s)")
            return
        while True:
            qoe_drain(block_ms=1000)
