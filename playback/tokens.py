"""Path tokens for the Django origin (pure: no Django).

A playback URL is ``/stream/<token>/<key>`` where ``key`` is a storage key under one published
version prefix, e.g. ``lessons/<uuid>/v3/video_720p/12.m4s``. The token is

    <expires>.<signature>
    signature = base64url(HMAC-SHA256(secret, "<expires>:<prefix>")), without padding

with ``expires`` in Unix seconds and ``prefix`` the version prefix with a trailing slash.
The token therefore covers every object under that one prefix until it expires. Players keep
the token because playlists reference segments relatively. See docs/adr/0003.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import posixpath
import re

_TOKEN = re.compile(r"^(\d{1,12})\.([A-Za-z0-9_-]{43})$")


class TokenResult(enum.Enum):
    OK = "ok"
    BAD = "bad"
    EXPIRED = "expired"


def _signature(secret: bytes, prefix: str, expires_at: int) -> str:
    mac = hmac.new(secret, f"{expires_at}:{prefix}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def token_issue(*, secret: bytes, prefix: str, expires_at: int) -> str:
    if not prefix.endswith("/") or prefix.startswith("/"):
        raise ValueError("prefix must be relative and end with a slash")
    return f"{expires_at}.{_signature(secret, prefix, expires_at)}"


def prefix_of(key: str) -> str | None:
    """The version prefix a key lives under (``lessons/<id>/v<N>/``), or None if the key is unsafe."""
    if not key or key.startswith("/") or "\\" in key or "%" in key or "\x00" in key:
        return None
    if posixpath.normpath(key) != key or any(part in {"", ".", ".."} for part in key.split("/")):
        return None
    parts = key.split("/")
    if len(parts) < 4 or parts[0] != "lessons" or not re.fullmatch(r"v\d+", parts[2]):
        return None
    return "/".join(parts[:3]) + "/"


def token_verify(*, secret: bytes, token: str, key: str, now: int) -> TokenResult:
    """Check a token against the object key it is used for, at time ``now`` (Unix seconds)."""
    match = _TOKEN.fullmatch(token)
    prefix = prefix_of(key)
    if match is None or prefix is None:
        return TokenResult.BAD
    expires_at = int(match.group(1))
    if not hmac.compare_digest(match.group(2), _signature(secret, prefix, expires_at)):
        return TokenResult.BAD
    if now >= expires_at:
        return TokenResult.EXPIRED
    return TokenResult.OK
