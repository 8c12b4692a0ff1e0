"""Verify a platform's id_token: header, platform lookup, RS256 signature against its JWKS."""

from __future__ import annotations

import threading
from typing import Any

import jwt
from django.conf import settings

from courses.lti.errors import LtiError
from courses.lti.models import LtiPlatform

_clients: dict[tuple[str, int, int], jwt.PyJWKClient] = {}
_clients_lock = threading.Lock()


def jwks_client(url: str) -> jwt.PyJWKClient:
    """One cached PyJWKClient per JWKS URL: keys are cached, and an unknown kid refetches the set once."""
    key = (url, settings.LTI_JWKS_CACHE_SECONDS, settings.LTI_JWKS_REFETCH_COOLDOWN_SECONDS)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = jwt.PyJWKClient(
                url,
                cache_jwk_set=settings.LTI_JWKS_CACHE_SECONDS > 0,
                lifespan=max(1, settings.LTI_JWKS_CACHE_SECONDS),
                timeout=settings.LTI_HTTP_TIMEOUT_SECONDS,
                cooldown_duration=settings.LTI_JWKS_REFETCH_COOLDOWN_SECONDS,
            )
            _clients[key] = client
        return client


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
        raise LtiError("the launch's issuer (iss) is not registered with this tool", status=403)
    azp = claims.get("azp")
    for platform in candidates:
        if platform.client_id in audiences and (azp is None or azp == platform.client_id):
            return platform
    raise LtiError("the launch is not addressed to this tool's client id (aud/azp)", status=403)


def verify(token: str, *, platform: LtiPlatform, header: dict[str, Any]) -> dict[str, Any]:
    """Signature, expiry and audience checked by PyJWT; the LTI rules follow in claims.validate_launch."""
    kid = header.get("kid")
    if header.get("alg") != "RS256":
        raise LtiError("the launch must be signed with RS256")
    if not isinstance(kid, str) or not kid:
        raise LtiError("the launch's JWT header has no key id (kid)")
    try:
        signing_key = jwks_client(platform.jwks_url).get_signing_key(kid)
    except jwt.PyJWKClientConnectionError as exc:
        raise LtiError("the platform's public keys could not be fetched; try again", status=502) from exc
    except jwt.PyJWKClientError as exc:
        raise LtiError("the launch was signed with a key the platform does not publish (kid)", status=403) from exc
    try:
        return jwt.decode(
            token,
            signing_key.key,
            algorithms=["RS256"],
            audience=platform.client_id,
            issuer=platform.issuer,
            leeway=settings.LTI_CLOCK_SKEW_SECONDS,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.InvalidSignatureError as exc:
        raise LtiError("the launch's signature is not valid", status=403) from exc
    except jwt.ExpiredSignatureError as exc:
        raise LtiError("the launch has expired (exp); start it again from the course") from exc
    except jwt.ImmatureSignatureError as exc:
        raise LtiError("the launch was issued in the future (iat); check the platform's clock") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise LtiError(f"the launch has no {exc.claim} claim") from exc
    except jwt.InvalidAudienceError as exc:
        raise LtiError("the launch is not addressed to this tool (aud)", status=403) from exc
    except jwt.InvalidTokenError as exc:
        raise LtiError(f"the launch's token is not valid: {exc}") from exc
