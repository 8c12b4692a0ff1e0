"""View tokens: the server's word that it started one viewing of a lesson (pure: no Django, no I/O).

The playback session (playback/services.py) issues one per session; the player sends it back with
every progress report and every QoE beacon, so neither can be made up by a client that never got a
session. Checking one is a single HMAC, no database query, so the hot paths keep their cost.

    v1.<view>.<lesson>.<user>.<issued>.<signature>
    view      = 32 lower-case hex characters (a random UUID4, the QoE view id)
    lesson    = the lesson's public UUID as 32 lower-case hex characters
    user      = the viewer's user id in decimal, or "0" for an anonymous viewer of a public lesson
    issued    = Unix seconds when the session was issued
    signature = base64url(HMAC-SHA256(secret, "view:v1.<view>.<lesson>.<user>.<issued>")), no padding

Every character is URL- and header-safe. Courses owns the format because both playback (progress)
and analytics (beacons) check it, and both may use courses; neither imports the other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass

_TOKEN = re.compile(r"v1\.([0-9a-f]{32})\.([0-9a-f]{32})\.(0|[1-9]\d{0,18})\.(0|[1-9]\d{0,11})\.([A-Za-z0-9_-]{43})")
MAX_LENGTH = 160


@dataclass(frozen=True)
class ViewClaim:
    view_id: str  # canonical UUID string
    lesson: str  # canonical UUID string
    user_id: int  # 0 = anonymous
    issued_at: int


def _signature(secret: bytes, body: str) -> str:
    mac = hmac.new(secret, f"view:{body}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def view_token_issue(*, secret: bytes, view_id: str, lesson: str, user_id: int | None, issued_at: int) -> str:
    """A token for one viewing of ``lesson`` (public UUID) by ``user_id`` (None: anonymous)."""
    if not secret:
        raise ValueError("the view token secret is empty")
    if issued_at < 0:
        raise ValueError("issued_at must be Unix seconds")
    body = f"v1.{uuid.UUID(view_id).hex}.{uuid.UUID(lesson).hex}.{int(user_id or 0)}.{issued_at}"
    return f"{body}.{_signature(secret, body)}"


def view_token_read(*, secret: bytes, token: object, now: int, max_age: int) -> ViewClaim | None:
    """The claim of an authentic token issued at most ``max_age`` seconds before ``now``; else None.

    A token from the future (beyond a minute of clock skew between machines) is refused too."""
    if not isinstance(token, str) or len(token) > MAX_LENGTH:
        return None
    match = _TOKEN.fullmatch(token)
    if match is None:
        return None
    view, lesson, user, issued, signature = match.groups()
    body = token[: -len(signature) - 1]
    if not hmac.compare_digest(signature, _signature(secret, body)):
        return None
    issued_at = int(issued)
    if not (now - max_age <= issued_at <= now + 60):
        return None
    return ViewClaim(
        view_id=str(uuid.UUID(view)), lesson=str(uuid.UUID(lesson)), user_id=int(user), issued_at=issued_at
    )
