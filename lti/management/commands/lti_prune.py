"""Delete expired LTI login states and used nonces (run from cron, e.g. hourly). Always safe.

python manage.py lti_prune
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from lti.login import login_states_prune


class Command(BaseCommand):
    help = "Delete expired LTI login states and nonces."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"deleted {login_states_prune()} expired rows")
