"""Path tokens for the Django origin (pure: no Django).

A playback URL is ``/stream/<token>/<key>`` where ``key`` is a storage key under one published
version prefix, e.g. ``lessons/<uuid>/v3/video_720p/12.m4s``. The token is

    <expires>.<signature>
    expires   = Unix seconds, decimal, no sign, no leading zeros
    signature = base64url(HMAC-SHA256(secret, "<expires>:<prefix>[:<binding>]")), 43 characters, no padding
    prefix    = the version prefix, relative, with a trailing slash: "lessons/<uuid>/v3/"
    binding   = optional (PLAYBACK_TOKEN_BINDING): "ip=<address>" or "sid=<session digest>"; the
                verifier recomputes it from the request, so it never travels in the URL

so every character is URL-safe (``0-9 . A-Z a-z - _``) and the token covers every object under
that one prefix until it expires. The verifier does not trust the URL for the prefix: it derives
it from the requested key (``lessons/<id>/v<N>/``) and refuses any key that is not a plain,
normalised path below it. Players keep the token because playlists reference segments relatively.
See docs/adr/0003.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import posixpath
import re

_TOKEN = re.compile(r"(0|[1-9]\d{0,11})\.([A-Za-z0-9_-]{43})")
_VERSION = re.compile(r"v[1-9]\d*")
# Keys are ASCII paths we generate; anything else (percent signs, backslashes, spaces,
# control characters, non-ASCII look-alikes) is refused rather than interpreted.
_KEY_CHARS = re.compile(r"[A-Za-z0-9._/-]+")


class TokenResult(enum.Enum):
    OK = "ok"
    BAD = "bad"
    EXPIRED = "expired"


def _signature(secret: bytes, prefix: str, expires_at: int, binding: str) -> str:
    message = f"{expires_at}:{prefix}" + (f":{binding}" if binding else "")
    mac = hmac.new(secret, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def token_issue(*, secret: bytes, prefix: str, expires_at: int, binding: str = "") -> str:
    """A token for every object under ``prefix`` (``lessons/<id>/v<N>/``) until ``expires_at``;
    with ``binding`` (playback.binding: "ip=<address>" or "sid=<digest>") only for that viewer."""
    if not secret:
        raise ValueError("the token secret is empty")
    if expires_at < 0:
        raise ValueError("expires_at must be Unix seconds")
    if prefix_of(prefix + "x") != prefix:
        raise ValueError(f"not a version prefix: {prefix!r}")
    return f"{expires_at}.{_signature(secret, prefix, expires_at, binding)}"


def prefix_of(key: str) -> str | None:
    """The version prefix a key lives under (``lessons/<id>/v<N>/``), or None if the key is unsafe."""
    if not _KEY_CHARS.fullmatch(key) or posixpath.normpath(key) != key:
        return None
    parts = key.split("/")
    if len(parts) < 4 or parts[0] != "lessons" or not _VERSION.fullmatch(parts[2]):
        return None
    if any(part in {"", ".", ".."} for part in parts):
        return None
    return "/".join(parts[:3]) + "/"


def token_verify(*, secret: bytes, token: str, path_key: str, now: int, binding: str = "") -> TokenResult:
    """Check ``token`` for the object ``path_key`` at time ``now`` (Unix seconds).

    BAD for a malformed or forged token, a key outside the token's prefix, or an unsafe key;
    EXPIRED only for an authentic token whose expiry has passed (``now >= expires``). ``binding`` is
    the request's own (playback.binding): a token bound to another viewer is BAD.
    """
    match = _TOKEN.fullmatch(token)
    prefix = prefix_of(path_key)
    if match is None or prefix is None:
        return TokenResult.BAD
    expires_at = int(match.group(1))
    if not hmac.compare_digest(match.group(2), _signature(secret, prefix, expires_at, binding)):
        return TokenResult.BAD
    if now >= expires_at:
        return TokenResult.EXPIRED
    return TokenResult.OK
