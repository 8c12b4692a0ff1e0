"""Read CMCD from the edge's JSON access log: `cmcd_ingest_log PATH [--follow]`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from analytics.edge_log import ingest_edge_log


class Command(BaseCommand):
    help = "Count CMCD data from an nginx JSON access log (deploy/nginx/log-format.conf)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--follow", action="store_true", help="keep reading lines as they are appended")

    def handle(self, *args: Any, **options: Any) -> None:
        with options["path"].open() as log:
            total = ingest_edge_log(log)
            while options["follow"]:
                line = log.readline()
                if not line:
                    time.sleep(0.5)
                    continue
                total += ingest_edge_log([line])
        self.stdout.write(f"read CMCD from {total} request(s)")
