"""Storage replicas: `verify [--repair] [--quick]`, `sync`, `status`. See README "Storage regions"."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from media_pipeline import replication
from media_pipeline.models import ReplicaState, VersionReplica
from media_pipeline.regions import regions_all
from media_pipeline.replica_verify import replicas_verify


class Command(BaseCommand):
    help = "Verify, repair, resume and list the copies of published versions in every storage region."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        verify = sub.add_parser("verify", help="check every published version in every region against its index")
        verify.add_argument("--repair", action="store_true", help="re-copy bad or missing objects from a good region")
        verify.add_argument("--quick", action="store_true", help="sizes and metadata checksums only; no full read")
        verify.add_argument("--prefix", default="", help="only versions under this storage prefix (lessons/<uuid>)")
        sub.add_parser("sync", help="record missing replicas and enqueue every unfinished copy and due deletion")
        sub.add_parser("status", help="every replica that is not complete, and a count per region and state")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"_{options['action']}")(options)

    def _verify(self, options: dict[str, Any]) -> None:
        report = replicas_verify(deep=not options["quick"], repair=options["repair"], prefix=options["prefix"])
        for finding in report.findings:
            fixed = " (repaired)" if finding in report.repaired else ""
            self.stdout.write(f"{finding.region}\t{finding.key}\t{finding.problem}{fixed}")
        regions = len(regions_all())
        self.stdout.write(
            f"checked {report.versions} version(s) in {regions} region(s): {len(report.findings)} problem(s), "
            f"{len(report.repaired)} repaired"
        )
        if report.unresolved:
            raise CommandError(f"{len(report.unresolved)} problem(s) remain; run with --repair or see the log")

    def _sync(self, options: dict[str, Any]) -> None:
        created = replication.replicas_ensure()
        sent = replication.replicas_enqueue()
        self.stdout.write(f"recorded {created} new replica(s); enqueued {sent} job(s)")

    def _status(self, options: dict[str, Any]) -> None:
        rows = VersionReplica.objects.exclude(state__in=[ReplicaState.COMPLETE, ReplicaState.DELETED])
        for row in rows.order_by("region", "prefix"):
            self.stdout.write(
                f"{row.region}\t{row.prefix}\t{row.state}\t{row.objects_copied}/{row.objects_total}\t{row.last_error}"
            )
        lag = replication.replication_lag_seconds()
        for region, seconds in lag.items():
            self.stdout.write(f"region {region}: lag {seconds:.0f} s")
