"""Make a new LTI signing key; the previous one stays in /lti/jwks/ for LTI_KEY_RETENTION_SECONDS.

python manage.py lti_rotate_key
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from lti.platforms import tool_key_rotate


class Command(BaseCommand):
    help = "Rotate the LTI tool's RSA signing key."

    def handle(self, *args: Any, **options: Any) -> None:
        key = tool_key_rotate()
        self.stdout.write(f"new signing key {key.kid}")
