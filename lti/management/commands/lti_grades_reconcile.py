"""Send the scores LMS gradebooks are still owed (lti/gradebook.py): run from cron, e.g. every 15 minutes.

    python manage.py lti_grades_reconcile [--link ID ...] [--queue]

Safe to run while workers post scores, and twice at once: a score is posted by whoever claims it first.
Refused scores (4xx) are not retried here; re-send them from the instructor page or the admin.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from lti.actors import ags_reconcile_link
from lti.gradebook import link_reconcile, links_owed


class Command(BaseCommand):
    help = "Send the scores LMS gradebooks are still owed (LTI AGS)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--link", type=int, action="append", dest="links", help="LtiResourceLink id")
        parser.add_argument("--queue", action="store_true", help="enqueue for the workers instead of sending here")

    def handle(self, *args: Any, **options: Any) -> None:
        link_ids = links_owed()
        if options["links"]:
            link_ids = [link_id for link_id in link_ids if link_id in set(options["links"])]
        for link_id in link_ids:
            if options["queue"]:
                ags_reconcile_link.send(link_id)
                self.stdout.write(f"link {link_id}: queued")
                continue
            result = link_reconcile(link_id=link_id)
            line = f"link {link_id}: {result.posted} posted, {result.skipped} skipped, {len(result.failed)} failed"
            self.stdout.write(line + (f" (column: {result.blocked})" if result.blocked else ""))
            for failure in result.failed:
                self.stderr.write(f"  {failure}")
        if not link_ids:
            self.stdout.write("nothing owed")
