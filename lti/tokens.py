"""Verify a platform's id_token: header, platform lookup, RS256 signature against its JWKS."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import jwt
from django.conf import settings

from lti import http
from lti.errors import LtiError, LtiRefused, PlatformAnswerUnusable, PlatformPermanentError, PlatformTransientError
from lti.models import LtiPlatform


@dataclass
class _CachedSet:
    keys: dict[str, jwt.PyJWK]
    fetched_at: float


_jwks_cache: dict[str, _CachedSet] = {}
_jwks_lock = threading.Lock()


def jwks_cache_clear() -> None:
    """Forget every platform's cached keys (tests, and after a platform's keys were replaced)."""
    with _jwks_lock:
        _jwks_cache.clear()


def _fetch_jwks(url: str) -> dict[str, jwt.PyJWK]:
    """The platform's signing keys by kid, fetched through the guarded outbound client (SSRF-safe)."""
    try:
        document = http.get_json(url).json()
    except PlatformTransientError as exc:
        raise PlatformAnswerUnusable("the platform's public keys could not be fetched; try again") from exc
    except PlatformPermanentError as exc:
        raise PlatformAnswerUnusable(f"the platform's public keys could not be read ({exc})") from exc
    try:
        key_set = jwt.PyJWKSet.from_dict(document if isinstance(document, dict) else {})
    except jwt.PyJWKSetError as exc:
        raise PlatformAnswerUnusable("the platform publishes no usable public key") from exc
    return {key.key_id: key for key in key_set.keys if key.key_id}


def signing_key(url: str, kid: str) -> jwt.PyJWK:
    """The platform's key ``kid``: cached for LTI_JWKS_CACHE_SECONDS; an unknown kid refetches the set,
    at most once per LTI_JWKS_REFETCH_COOLDOWN_SECONDS (made-up kids must not become requests)."""
    now = time.monotonic()
    with _jwks_lock:
        cached = _jwks_cache.get(url)
    fresh = cached is not None and now - cached.fetched_at < settings.LTI_JWKS_CACHE_SECONDS
    if cached is not None and kid in cached.keys and fresh:
        return cached.keys[kid]
    cooling = cached is not None and now - cached.fetched_at < settings.LTI_JWKS_REFETCH_COOLDOWN_SECONDS
    if cached is None or not fresh or not cooling:
        cached = _CachedSet(keys=_fetch_jwks(url), fetched_at=now)
        with _jwks_lock:
            _jwks_cache[url] = cached
    if kid not in cached.keys:
        raise LtiRefused("the launch was signed with a key the platform does not publish (kid)")
    return cached.keys[kid]


def unverified_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError as exc:
        raise LtiError("the launch is not a valid JWT") from exc
    return header, claims


def platform_for(claims: dict[str, Any]) -> LtiPlatform:
    """The active registration for the token's issuer whose client id is an audience (and azp, if given)."""
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise LtiError("the launch has no issuer (iss)")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    candidates = LtiPlatform.objects.filter(issuer=issuer, active=True)
    if not candidates.exists():
        raise LtiRefused("the launch's issuer (iss) is not registered with this tool")
    azp = claims.get("azp")
    for platform in candidates:
        if platform.client_id in audiences and (azp is None or azp == platform.client_id):
            return platform
    raise LtiRefused("the launch is not addressed to this tool's client id (aud/azp)")


def verify(token: str, *, platform: LtiPlatform, header: dict[str, Any]) -> dict[str, Any]:
    """Signature, expiry and audience checked by PyJWT; the LTI rules follow in claims.validate_launch."""
    kid = header.get("kid")
    if header.get("alg") != "RS256":
        raise LtiError("the launch must be signed with RS256")
    if not isinstance(kid, str) or not kid:
        raise LtiError("the launch's JWT header has no key id (kid)")
    key = signing_key(platform.jwks_url, kid)
    try:
        return jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            audience=platform.client_id,
            issuer=platform.issuer,
            leeway=settings.LTI_CLOCK_SKEW_SECONDS,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.InvalidSignatureError as exc:
        raise LtiRefused("the launch's signature is not valid") from exc
    except jwt.ExpiredSignatureError as exc:
        raise LtiError("the launch has expired (exp); start it again from the course") from exc
    except jwt.ImmatureSignatureError as exc:
        raise LtiError("the launch was issued in the future (iat); check the platform's clock") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise LtiError(f"the launch has no {exc.claim} claim") from exc
    except jwt.InvalidAudienceError as exc:
        raise LtiRefused("the launch is not addressed to this tool (aud)") from exc
    except jwt.InvalidTokenError as exc:
        raise LtiError(f"the launch's token is not valid: {exc}") from exc
