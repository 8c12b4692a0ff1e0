"""Re-enqueue media assets whose processing stalled (broker down, worker lost). Safe to run any time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from media_pipeline import replication, services, uploads


class Command(BaseCommand):
    help = "Re-enqueue the next pipeline step for assets that have not moved for a while."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--idle-minutes", type=float, default=10.0, help="how long an asset must be idle")

    def handle(self, *args: Any, **options: Any) -> None:
        resumed = services.assets_resume_stalled(idle_for=timedelta(minutes=options["idle_minutes"]))
        self.stdout.write(f"resumed {len(resumed)} asset(s)")
        # Copies and deletions a region outage outlasted, and regions added since a version was published.
        replication.replicas_ensure()
        self.stdout.write(f"enqueued {replication.replicas_enqueue()} replication job(s)")
        # Resumable uploads: abandoned ones are aborted, ones stuck while assembling are finished.
        counts = uploads.uploads_sweep()
        self.stdout.write(f"uploads: expired {counts['expired']}, finished {counts['finished']}")
        # Objects a worker wrote after its asset was deleted and could not remove itself (it died first).
        late = replication.deleted_prefixes_sweep(within=timedelta(seconds=2 * settings.ENCODE_TIMEOUT_SECONDS))
        self.stdout.write(f"removed {late} object(s) written after their asset was deleted")
