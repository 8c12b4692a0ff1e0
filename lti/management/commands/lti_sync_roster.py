"""Bring LMS rosters (LTI Names and Role Provisioning) into enrolments and educators.

    python manage.py lti_sync_roster [--context ID ...] [--queue]

Without --context, every LMS course that offers the service and is linked to a course.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lti.actors import nrps_sync_context
from lti.errors import LtiError, PlatformPermanentError, PlatformTransientError
from lti.models import LtiContext
from lti.nrps import roster_sync


class Command(BaseCommand):
    help = "Sync LMS rosters into enrolments (LTI NRPS)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--context", type=int, action="append", dest="contexts", help="LtiContext id")
        parser.add_argument("--queue", action="store_true", help="enqueue for the workers instead of syncing here")

    def handle(self, *args: Any, **options: Any) -> None:
        contexts = LtiContext.objects.exclude(memberships_url="").filter(course__isnull=False)
        if options["contexts"]:
            contexts = contexts.filter(pk__in=options["contexts"])
        failed = 0
        for context in contexts:
            if options["queue"]:
                nrps_sync_context.send(context.pk)
                self.stdout.write(f"context {context.pk}: queued")
                continue
            try:
                result = roster_sync(context_id=context.pk)
            except (LtiError, PlatformPermanentError, PlatformTransientError) as exc:
                failed += 1
                self.stderr.write(f"context {context.pk}: {exc}")
                continue
            self.stdout.write(
                f"context {context.pk}: {result.members} members on {result.pages} pages, "
                f"{result.learners} learners, {result.educators} educators, {result.removed} removed"
            )
        if failed:
            raise CommandError(f"{failed} roster(s) could not be synced")
