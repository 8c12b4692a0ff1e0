"""LTI Dynamic Registration, by one-time link only.

A superuser makes a registration link (`manage.py lti_registration_link`, or the admin's "LTI
registration links"); the LMS administrator pastes it into their LMS. The LMS opens it with
`openid_configuration` and `registration_token`; we claim the link (once), read the platform's
OpenID configuration through the guarded outbound client, register ourselves with its registration
endpoint, and keep the platform and deployment it returns.

A new platform stays inactive until a superuser approves it (LTI_REGISTRATION_APPROVAL, on by
default). Endpoints or a token audience outside the issuer's origin always need that approval, even
with LTI_REGISTRATION_APPROVAL off: they are where we send signed client assertions and where we
send browsers, so a person must have looked at them.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import TypedDict

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from lti import http, messages
from lti.errors import (
    LtiConflict,
    LtiError,
    LtiRefused,
    PlatformAnswerUnusable,
    PlatformPermanentError,
    PlatformTransientError,
)
from lti.models import LtiPlatform, LtiRegistrationLink
from lti.platforms import platform_register
from lti.selectors import platform_foreign_endpoints

PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
LINK_INVALID = "This registration link is not valid: it was used already, it expired, or it never existed. Ask the operator of this site for a new one."  # noqa: E501


@dataclass(frozen=True)
class NewLink:
    link: LtiRegistrationLink
    url: str  # shown once: only its hash is stored


class PlatformFields(TypedDict):
    """What a registration learns of the platform: its identity and endpoints."""

    issuer: str
    client_id: str
    auth_login_url: str
    auth_token_url: str
    jwks_url: str
    auth_token_audience: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def registration_link_create(*, created_by: User | None, label: str = "", lifetime: timedelta | None = None) -> NewLink:
    """A one-time Dynamic Registration URL, valid for ``lifetime`` (LTI_REGISTRATION_LINK_HOURS)."""
    token = secrets.token_urlsafe(32)
    lifetime = lifetime or timedelta(hours=settings.LTI_REGISTRATION_LINK_HOURS)
    link = LtiRegistrationLink.objects.create(
        token_hash=_hash(token), label=label[:200], created_by=created_by, expires_at=timezone.now() + lifetime
    )
    return NewLink(link=link, url=f"{settings.SITE_URL}{reverse('lti:register-link', args=[token])}")


def registration_link_revoke(*, link: LtiRegistrationLink) -> None:
    LtiRegistrationLink.objects.filter(pk=link.pk, used_at__isnull=True).update(expires_at=timezone.now())


def registration_link_usable(*, token: str) -> bool:
    """Whether the link may still be used (for the page's framing rule; the claim is what counts)."""
    return LtiRegistrationLink.objects.filter(
        token_hash=_hash(token), used_at__isnull=True, expires_at__gt=timezone.now()
    ).exists()


def _claim(token: str) -> LtiRegistrationLink:
    # Compare-and-set: of two requests with the same link, one claims it and the other is refused.
    now = timezone.now()
    claimed = LtiRegistrationLink.objects.filter(
        token_hash=_hash(token), used_at__isnull=True, expires_at__gt=now
    ).update(used_at=now)
    if claimed != 1:
        raise LtiRefused(LINK_INVALID)
    return LtiRegistrationLink.objects.get(token_hash=_hash(token))


def _release(link: LtiRegistrationLink) -> None:
    # The platform could not be registered: the administrator may try the same link again.
    LtiRegistrationLink.objects.filter(pk=link.pk, used_at=link.used_at, platform__isnull=True).update(used_at=None)


def lti_register(*, link_token: str, openid_configuration: str, registration_token: str) -> LtiPlatform:
    link = _claim(link_token)
    try:
        platform = _register(openid_configuration=openid_configuration, registration_token=registration_token)
    except LtiError:
        _release(link)
        raise
    LtiRegistrationLink.objects.filter(pk=link.pk).update(platform=platform)
    return platform


def _register(*, openid_configuration: str, registration_token: str) -> LtiPlatform:
    if not openid_configuration.lower().startswith("https://") and not openid_configuration.lower().startswith(
        "http://"
    ):
        raise LtiError("openid_configuration must be an http(s) URL")
    bearer = {"Authorization": f"Bearer {registration_token}"} if registration_token else {}
    try:
        config = http.get_json(openid_configuration, headers=bearer).json()
    except (PlatformTransientError, PlatformPermanentError) as exc:
        raise PlatformAnswerUnusable(f"the platform's configuration could not be read: {exc}") from exc
    if not isinstance(config, dict):
        raise PlatformAnswerUnusable("the platform's configuration is not a JSON object")
    issuer = config.get("issuer")
    if not isinstance(issuer, str) or messages.origin_of(issuer) != messages.origin_of(openid_configuration):
        raise LtiRefused("the platform's issuer does not match the address of its configuration")
    needed = ("authorization_endpoint", "token_endpoint", "jwks_uri", "registration_endpoint")
    endpoints: dict[str, str] = {}
    for name in needed:
        value = config.get(name)
        if not isinstance(value, str) or not value.lower().startswith(("https://", "http://")):
            raise PlatformAnswerUnusable(f"the platform's configuration has no valid {name}")
        endpoints[name] = value
    supported = config.get("scopes_supported")
    scopes = [s for s in messages.TOOL_SCOPES if not isinstance(supported, list) or s in supported]
    request = messages.registration_request(
        site_url=settings.SITE_URL,
        title=settings.LTI_TOOL_TITLE,
        description="Video lessons with adaptive streaming; completion flows back to the gradebook.",
        scopes=scopes,
    )
    try:
        reply = http.post_json(endpoints["registration_endpoint"], request, headers=bearer)
    except (PlatformTransientError, PlatformPermanentError) as exc:
        raise PlatformAnswerUnusable(f"the platform refused the registration: {exc}") from exc
    answer = reply.json() if reply.body else None
    client_id = answer.get("client_id") if isinstance(answer, dict) else None
    if not isinstance(answer, dict) or not isinstance(client_id, str) or not client_id:
        raise PlatformAnswerUnusable("the platform's registration answer has no client_id")
    tool_config = answer.get(messages.TOOL_CONFIGURATION) or {}
    deployment_id = tool_config.get("deployment_id") if isinstance(tool_config, dict) else None
    product = config.get(PLATFORM_CONFIGURATION)
    platform_name = product.get("product_family_code", "") if isinstance(product, dict) else ""
    audience = config.get("authorization_server", "")
    fields: PlatformFields = {
        "issuer": issuer,
        "client_id": client_id,
        "auth_login_url": endpoints["authorization_endpoint"],
        "auth_token_url": endpoints["token_endpoint"],
        "jwks_url": endpoints["jwks_uri"],
        "auth_token_audience": audience[:500] if isinstance(audience, str) else "",
    }
    needs_approval = settings.LTI_REGISTRATION_APPROVAL or bool(platform_foreign_endpoints(**fields))
    with transaction.atomic():
        if LtiPlatform.objects.filter(issuer=issuer, client_id=client_id).exists():
            # Re-registration would replace a working platform's endpoints on the word of whoever
            # holds a link: the operator edits a known platform in the admin instead.
            raise LtiConflict("this LMS (issuer and client id) is registered already")
        return platform_register(
            **fields,
            deployment_ids=[deployment_id] if isinstance(deployment_id, str) and deployment_id else [],
            name=str(platform_name)[:200] if platform_name else "",
            active=not needs_approval,
        )
