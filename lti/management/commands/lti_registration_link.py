"""Make a one-time LTI Dynamic Registration link for an LMS administrator.

    python manage.py lti_registration_link [--label "Moodle of Example High"] [--hours 72]

The administrator pastes the printed URL (the last line) into their LMS ("register a tool by URL").
It works once, until it expires; the platform it registers waits for approval in the admin
(LTI platforms) unless LTI_REGISTRATION_APPROVAL is off and every endpoint is on the issuer's origin.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from lti.registration import registration_link_create


class Command(BaseCommand):
    help = "Print a one-time LTI Dynamic Registration URL for an LMS administrator."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--label", default="", help="whom the link is for (shown in the admin)")
        parser.add_argument("--hours", type=int, default=settings.LTI_REGISTRATION_LINK_HOURS, help="validity")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["hours"] < 1:
            raise CommandError("--hours must be at least 1")
        made = registration_link_create(
            created_by=None, label=options["label"], lifetime=timedelta(hours=options["hours"])
        )
        self.stdout.write(f"One-time registration link, valid until {made.link.expires_at:%Y-%m-%d %H:%M %Z}:")
        self.stdout.write(made.url)
