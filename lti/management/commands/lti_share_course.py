"""Share a course with an LMS: its published lessons become pickable by every instructor of that LMS
in the Deep Linking picker ("Shared library"), whether or not they teach it here.

    python manage.py lti_share_course SLUG --issuer ISS [--client-id ID] [--unshare]

Running it twice changes nothing the second time. When several registrations share the issuer,
--client-id says which one. An unknown course or LMS is an error (exit status 1) and changes nothing.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from courses.models import Course
from lti import sharing
from lti.errors import LtiError


class Command(BaseCommand):
    help = "Share a course's published lessons with every instructor of an LMS (or stop, with --unshare)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="The course's slug.")
        parser.add_argument("--issuer", required=True, help="The LMS's issuer, as registered.")
        parser.add_argument("--client-id", default=None, help="Needed when several registrations share the issuer.")
        parser.add_argument("--unshare", action="store_true", help="Stop sharing the course with that LMS.")

    def handle(self, *args: Any, **options: Any) -> None:
        course = Course.objects.filter(slug=options["slug"]).first()
        if course is None:
            raise CommandError(f"no course has the slug {options['slug']!r}")
        try:
            platform = sharing.platform_for_share(issuer=options["issuer"], client_id=options["client_id"])
        except LtiError as exc:
            raise CommandError(exc.reason) from exc
        if options["unshare"]:
            removed = sharing.course_unshare(course=course, platform=platform, by=None)
            state = "no longer shared" if removed else "was not shared"
        else:
            _, created = sharing.course_share(course=course, platform=platform, by=None)
            state = "shared" if created else "already shared"
        self.stdout.write(f"course {course.slug} {state} with {platform.issuer} (client {platform.client_id})")
