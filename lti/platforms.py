"""Platform registrations and our signing keys."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import jwt
from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from lti import keys
from lti.errors import LtiConflict, ToolMisconfigured
from lti.models import LtiDeployment, LtiPlatform, LtiToolKey


@transaction.atomic
def platform_register(
    *,
    issuer: str,
    client_id: str,
    auth_login_url: str,
    auth_token_url: str,
    jwks_url: str,
    deployment_ids: Iterable[str],
    name: str = "",
    auth_token_audience: str = "",
    active: bool = True,
) -> LtiPlatform:
    """Create or update the registration for issuer + client id, and add its deployments.

    `active=False` registers a new platform switched off (a superuser activates it in the admin);
    an existing registration keeps its state then. A client id that another issuer already uses is
    refused: a second registration must never borrow a known platform's identity (the audience of
    the client assertions we sign names it)."""
    if LtiPlatform.objects.filter(client_id=client_id).exclude(issuer=issuer).exists():
        raise LtiConflict("this client id is already registered for another LMS (issuer)")
    defaults = {
        "auth_login_url": auth_login_url,
        "auth_token_url": auth_token_url,
        "jwks_url": jwks_url,
        "auth_token_audience": auth_token_audience,
        **({"name": name} if name else {}),
    }
    platform, _ = LtiPlatform.objects.update_or_create(
        issuer=issuer,
        client_id=client_id,
        defaults={**defaults, **({"active": True} if active else {})},
        create_defaults={**defaults, "active": active},
    )
    for deployment_id in deployment_ids:
        LtiDeployment.objects.get_or_create(platform=platform, deployment_id=deployment_id)
    return platform


def platform_approve(*, platform: LtiPlatform, by: User) -> None:
    """A superuser looked at the platform's endpoints and lets it launch."""
    LtiPlatform.objects.filter(pk=platform.pk).update(active=True, approved_at=timezone.now(), approved_by=by)


def _passphrase() -> bytes:
    return settings.LTI_KEY_PASSPHRASE.encode()


def _passphrases() -> list[bytes]:
    """LTI_KEY_PASSPHRASE (the one that encrypts) first, then the retired ones (LTI_KEY_PASSPHRASE_OLD)."""
    return [value.encode() for value in (settings.LTI_KEY_PASSPHRASE, *settings.LTI_KEY_PASSPHRASES_OLD)]


def tool_key_active() -> LtiToolKey:
    """The key we sign with; the first call on a fresh install makes one."""
    key = LtiToolKey.objects.filter(active=True).first()
    if key is not None:
        return key
    pair = keys.generate(passphrase=_passphrase())
    try:
        with transaction.atomic():
            return LtiToolKey.objects.create(
                kid=pair.kid, public_jwk=pair.public_jwk, private_key_encrypted=pair.private_key_encrypted
            )
    except IntegrityError:  # another process made the first key at the same moment
        return LtiToolKey.objects.get(active=True)


@transaction.atomic
def tool_key_rotate() -> LtiToolKey:
    """Make a new active key; the previous one stays published until LTI_KEY_RETENTION_SECONDS pass."""
    pair = keys.generate(passphrase=_passphrase())
    LtiToolKey.objects.select_for_update().filter(active=True).update(active=False, retired_at=timezone.now())
    return LtiToolKey.objects.create(
        kid=pair.kid, public_jwk=pair.public_jwk, private_key_encrypted=pair.private_key_encrypted
    )


def tool_jwks() -> dict[str, Any]:
    """Public keys for /lti/jwks/: the active key and the retired ones whose tokens may still be valid."""
    tool_key_active()
    cutoff = timezone.now() - timedelta(seconds=settings.LTI_KEY_RETENTION_SECONDS)
    published = LtiToolKey.objects.filter(active=True) | LtiToolKey.objects.filter(retired_at__gte=cutoff)
    return {"keys": [key.public_jwk for key in published.order_by("-active", "-created_at")]}


def tool_sign(payload: dict[str, Any]) -> str:
    """An RS256 JWT signed with the active key, its kid in the header."""
    key = tool_key_active()
    try:
        private, _ = keys.load_private_any(key.private_key_encrypted, passphrases=_passphrases())
    except (ValueError, TypeError) as exc:
        raise ToolMisconfigured("the tool's signing key cannot be read (LTI_KEY_PASSPHRASE changed?)") from exc
    return jwt.encode(payload, private, algorithm="RS256", headers={"kid": key.kid, "typ": "JWT"})


def tool_keys_reencrypt() -> tuple[int, int]:
    """Encrypt every stored tool key with the current LTI_KEY_PASSPHRASE (`manage.py lti_keys_reencrypt`);
    returns (keys checked, keys re-encrypted). Raises ValueError, before changing anything, when a key
    opens with no configured passphrase. Compare-and-set per row, so a rerun changes nothing."""
    passphrases = _passphrases()
    rows = list(LtiToolKey.objects.order_by("pk").values_list("pk", "private_key_encrypted"))
    moved: list[tuple[int, str, str]] = []
    for pk, pem in rows:
        private, index = keys.load_private_any(pem, passphrases=passphrases)
        if index:
            moved.append((pk, pem, keys.encrypt_private(private, passphrase=passphrases[0])))
    changed = 0
    for pk, old, new in moved:
        changed += LtiToolKey.objects.filter(pk=pk, private_key_encrypted=old).update(private_key_encrypted=new)
    return len(rows), changed


def now() -> int:
    return int(time.time())
