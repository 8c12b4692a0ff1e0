"""License tokens: what a playback session gives the player to ask for keys (pure: no Django).

An HS256 JWT, sent in ``Authorization: Bearer`` (never in a URL), with

    aud   "lessons-drm"
    sub   the viewer's user id (string)
    sid   hash of the viewer's session key ("" for token-authenticated API clients)
    lsn   the lesson's public id;  ver  the version number;  kids  the version's key ids (hex)
    iat, exp (short-lived: DRM_LICENSE_TOKEN_TTL_SECONDS)

The license server checks it, then that the request comes from the same user and session, then asks
playback/access.py again: a token does not outlive the viewer's entitlement.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import jwt

AUDIENCE = "lessons-drm"
ALGORITHM = "HS256"
_HEX32 = re.compile(r"[0-9a-f]{32}")


class LicenseTokenInvalid(Exception):
    """Malformed, forged, expired or for another audience."""


@dataclass(frozen=True)
class LicenseClaims:
    user_id: str
    session: str
    lesson: str
    version: int
    kids: tuple[str, ...]
    expires_at: int


def session_binding(session_key: str | None) -> str:
    """A stable, non-reversible tag of the session (the session key itself never leaves the server)."""
    if not session_key:
        return ""
    return hashlib.sha256(f"lessons-drm:{session_key}".encode()).hexdigest()[:32]


def token_issue(*, secret: bytes, claims: LicenseClaims, now: int) -> str:
    if not secret:
        raise ValueError("the license token secret is empty")
    if not claims.kids or not all(_HEX32.fullmatch(kid) for kid in claims.kids):
        raise ValueError("kids must be 32 lowercase hex digits each")
    payload = {
        "aud": AUDIENCE,
        "sub": claims.user_id,
        "sid": claims.session,
        "lsn": claims.lesson,
        "ver": claims.version,
        "kids": list(claims.kids),
        "iat": now,
        "exp": claims.expires_at,
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def token_verify(*, secret: bytes, token: str, now: int) -> LicenseClaims:
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],  # never "none", never an algorithm the token names
            audience=AUDIENCE,
            options={"require": ["aud", "sub", "sid", "lsn", "ver", "kids", "iat", "exp"], "verify_exp": False},
        )
    except jwt.PyJWTError as exc:
        raise LicenseTokenInvalid(f"invalid license token ({exc.__class__.__name__})") from exc
    kids = payload["kids"]
    shapes_ok = (
        isinstance(payload["sub"], str)
        and isinstance(payload["sid"], str)
        and isinstance(payload["lsn"], str)
        and isinstance(payload["ver"], int)
        and isinstance(payload["exp"], int)
        and isinstance(kids, list)
        and all(isinstance(kid, str) and _HEX32.fullmatch(kid) for kid in kids)
    )
    if not shapes_ok:
        raise LicenseTokenInvalid("invalid license token (claims)")
    if now >= payload["exp"]:
        raise LicenseTokenInvalid("license token expired")
    return LicenseClaims(
        user_id=payload["sub"],
        session=payload["sid"],
        lesson=payload["lsn"],
        version=payload["ver"],
        kids=tuple(kids),
        expires_at=payload["exp"],
    )
