"""Access tokens for LTI Advantage services: client-credentials grant with a signed JWT assertion,
cached (shared by every process) until shortly before they expire."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches

from lti import http, messages, platforms
from lti.errors import PlatformPermanentError
from lti.models import LtiPlatform

EXPIRY_MARGIN_SECONDS = 30


def _cache_key(platform: LtiPlatform, scopes: Sequence[str]) -> str:
    # The token URL and client id are in the key: a re-registered platform never gets an old token.
    parts = [platform.auth_token_url, platform.client_id, *sorted(scopes)]
    return "token:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class AccessGrant:
    token: str
    scopes: frozenset[str]  # what the platform says it granted (RFC 6749 5.1: absent means as asked)


def access_token(*, platform: LtiPlatform, scopes: Sequence[str]) -> str:
    return access_grant(platform=platform, scopes=scopes).token


def access_grant(*, platform: LtiPlatform, scopes: Sequence[str]) -> AccessGrant:
    cache = caches["lti"]
    key = _cache_key(platform, scopes)
    cached = cache.get(key)
    if isinstance(cached, dict) and isinstance(cached.get("token"), str):
        return AccessGrant(token=cached["token"], scopes=frozenset(cached.get("scopes", ())))
    assertion = platforms.tool_sign(
        messages.client_assertion_claims(
            client_id=platform.client_id,
            audience=platform.auth_token_audience or platform.auth_token_url,
            now=platforms.now(),
            lifetime=settings.LTI_TOKEN_LIFETIME_SECONDS,
        )
    )
    reply = http.post_form(
        platform.auth_token_url,
        {
            "grant_type": "client_credentials",
            "client_assertion_type": messages.CLIENT_ASSERTION_TYPE,
            "client_assertion": assertion,
            "scope": " ".join(scopes),
        },
    )
    body = reply.json()
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise PlatformPermanentError("the platform's token endpoint answered without an access_token")
    granted = body.get("scope")
    granted_scopes = frozenset(granted.split()) if isinstance(granted, str) else frozenset(scopes)
    try:
        expires_in = int(body.get("expires_in", 3600))
    except (TypeError, ValueError):
        expires_in = 3600
    if expires_in > EXPIRY_MARGIN_SECONDS:
        cache.set(key, {"token": token, "scopes": sorted(granted_scopes)}, timeout=expires_in - EXPIRY_MARGIN_SECONDS)
    return AccessGrant(token=token, scopes=granted_scopes)


def access_token_forget(*, platform: LtiPlatform, scopes: Sequence[str]) -> None:
    """Drop a cached token the platform refused (revoked before its expiry)."""
    caches["lti"].delete(_cache_key(platform, scopes))
