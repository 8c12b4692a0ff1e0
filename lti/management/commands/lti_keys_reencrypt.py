"""Encrypt every stored LTI tool key with the current LTI_KEY_PASSPHRASE (the rotation's second step).

python manage.py lti_keys_reencrypt
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from lti.platforms import tool_keys_reencrypt


class Command(BaseCommand):
    help = (
        "Re-encrypt every LTI tool private key with LTI_KEY_PASSPHRASE; keys under a passphrase in "
        "LTI_KEY_PASSPHRASE_OLD move to the current one. Safe to rerun; afterwards the old one can go."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            checked, changed = tool_keys_reencrypt()
        except ValueError as exc:
            raise CommandError(f"{exc}; nothing was changed") from exc
        self.stdout.write(f"checked {checked} LTI key(s), re-encrypted {changed} with the current passphrase")
