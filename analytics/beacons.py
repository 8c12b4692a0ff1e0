"""Validation of player beacon batches (pure: no Django, no I/O).

A batch is what the player sends with ``navigator.sendBeacon`` when the page hides, or every
few seconds while playing::

    {"view_id": "<uuid>", "lesson": "<uuid>", "view_token": "v1....", "pathway": "cdn-a",
     "browser": "Chrome", "device": "desktop", "events": [{"type": "play_request", "t": 0}, ...]}

Anything outside the schema is refused whole, with a reason; nothing is partly accepted. The view id
and token are the playback session's (courses/view_tokens.py): `batch_claim` checks that the token is
authentic, unexpired and names this view and lesson (one HMAC, no database), so only viewings the
server started count for the live dashboard and for content steering (docs/adr/0020).
"""

from __future__ import annotations

import ipaddress
import json
import uuid
from dataclasses import dataclass, field, fields
from typing import Any

from analytics.qoe import EVENT_TYPES
from courses.view_tokens import MAX_LENGTH as VIEW_TOKEN_MAX_LENGTH
from courses.view_tokens import ViewClaim, view_token_read

MAX_BODY_BYTES = 64 * 1024
# A batch as stored in the ingest stream (normalised JSON) is never larger than this, so the stream's
# entry count bounds its bytes (analytics/ingest.py stream_max_len).
MAX_STORED_BYTES = MAX_BODY_BYTES
MAX_EVENTS = 200
MAX_T_MS = 24 * 3600 * 1000
MAX_LABEL = 40
DEVICE_CLASSES = frozenset({"desktop", "mobile", "tablet", "tv", "other"})
_EVENT_FIELDS = {
    "type", "t", "bitrate_kbps", "height", "fatal", "code", "position", "buffer", "dropped", "throughput_kbps",
}  # fmt: skip


class BatchRejected(ValueError):
    pass


class BatchUnauthorised(ValueError):
    """The batch is well formed but carries no valid view token for its view and lesson."""


@dataclass(frozen=True)
class Batch:
    view_id: str
    lesson: str
    pathway: str
    browser: str
    device: str
    events: list[dict[str, Any]]
    # Set by the server from the CDN's viewer-country header, never by the player.
    region: str = "unknown"
    # Checked (batch_claim), never stored: the stream keeps the batch without it.
    view_token: str = field(default="", repr=False, compare=False)


_RECORD_FIELDS = tuple(f.name for f in fields(Batch) if f.name != "view_token")


def _uuid(value: Any, name: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except (ValueError, TypeError, AttributeError) as exc:
        raise BatchRejected(f"{name} must be a UUID") from exc


def _label(value: Any, name: str, default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or len(value) > MAX_LABEL or not value.isprintable():
        raise BatchRejected(f"{name} must be a short printable string")
    return value


def _number(value: Any, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise BatchRejected(f"{name} must be a number from {low:g} to {high:g}")
    return float(value)


def _event(raw: Any, index: int) -> dict[str, Any]:
    where = f"events[{index}]"
    if not isinstance(raw, dict):
        raise BatchRejected(f"{where} must be an object")
    unknown = set(raw) - _EVENT_FIELDS
    if unknown:
        raise BatchRejected(f"{where} has unknown fields: {', '.join(sorted(unknown))}")
    kind = raw.get("type")
    if kind not in EVENT_TYPES:
        raise BatchRejected(f"{where}.type is not a known event type")
    event: dict[str, Any] = {"type": kind, "t": _number(raw.get("t"), f"{where}.t", 0, MAX_T_MS)}
    if "bitrate_kbps" in raw:
        event["bitrate_kbps"] = _number(raw["bitrate_kbps"], f"{where}.bitrate_kbps", 0, 1_000_000)
    if "throughput_kbps" in raw:
        event["throughput_kbps"] = _number(raw["throughput_kbps"], f"{where}.throughput_kbps", 0, 1_000_000)
    if "height" in raw:
        event["height"] = int(_number(raw["height"], f"{where}.height", 0, 8192))
    for name, high in (("position", MAX_T_MS / 1000), ("buffer", 3600), ("dropped", 10_000_000)):
        if name in raw:
            event[name] = _number(raw[name], f"{where}.{name}", 0, high)
    if "fatal" in raw:
        if not isinstance(raw["fatal"], bool):
            raise BatchRejected(f"{where}.fatal must be true or false")
        event["fatal"] = raw["fatal"]
    if "code" in raw:
        event["code"] = _label(raw["code"], f"{where}.code", "")
    return event


def region_from_header(value: str | None) -> str:
    """An ISO 3166 alpha-2 country code from a CDN header (e.g. CloudFront-Viewer-Country), else "unknown"."""
    if value and len(value) == 2 and value.isascii() and value.isalpha():
        return value.upper()
    return "unknown"


def parse_batch(body: bytes) -> Batch:
    if len(body) > MAX_BODY_BYTES:
        raise BatchRejected(f"batch larger than {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BatchRejected("body is not JSON") from exc
    if not isinstance(data, dict):
        raise BatchRejected("body must be a JSON object")
    events = data.get("events")
    if not isinstance(events, list) or not events:
        raise BatchRejected("events must be a non-empty list")
    if len(events) > MAX_EVENTS:
        raise BatchRejected(f"at most {MAX_EVENTS} events per batch")
    device = _label(data.get("device"), "device", "other")
    if device not in DEVICE_CLASSES:
        raise BatchRejected(f"device must be one of {', '.join(sorted(DEVICE_CLASSES))}")
    return Batch(
        view_id=_uuid(data.get("view_id"), "view_id"),
        lesson=_uuid(data.get("lesson"), "lesson"),
        pathway=_label(data.get("pathway"), "pathway", "origin"),
        browser=_label(data.get("browser"), "browser", "other"),
        device=device,
        events=[_event(raw, i) for i, raw in enumerate(events)],
        view_token=_token(data.get("view_token")),
    )


def _token(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > VIEW_TOKEN_MAX_LENGTH:
        raise BatchRejected("view_token must be the token of the playback session")
    return value


def batch_claim(batch: Batch, *, secret: bytes, now: int, max_age: int) -> ViewClaim:
    """The view claim of the batch's token, which must name the batch's view and lesson."""
    claim = view_token_read(secret=secret, token=batch.view_token, now=now, max_age=max_age)
    if claim is None:
        raise BatchUnauthorised("a valid view_token from the playback session is required")
    if claim.view_id != batch.view_id:
        raise BatchUnauthorised("the view_token is for another view_id")
    if claim.lesson != batch.lesson:
        raise BatchUnauthorised("the view_token is for another lesson")
    return claim


def batch_record(batch: Batch) -> str:
    """The batch as stored in the ingest stream (JSON, without the token); refused when too large."""
    # Not dataclasses.asdict: its deep copy of every event cost more than the rest of a request.
    record = json.dumps({name: getattr(batch, name) for name in _RECORD_FIELDS}, separators=(",", ":"))
    if len(record) > MAX_STORED_BYTES:
        raise BatchRejected(f"batch larger than {MAX_STORED_BYTES} bytes once normalised")
    return record


def reporter_of(claim: ViewClaim, *, client_address: str) -> str:
    """Who stands behind a batch, for steering's count of distinct reporters.

    A signed-in viewer is their user, however many sessions they open. An anonymous viewer of a
    public lesson can mint a playback session (a view) a second from one address, so views prove
    nothing: they count as their network (IPv4 /24, IPv6 /48), where an attacker cannot cheaply be many.
    """
    if claim.user_id:
        return f"u:{claim.user_id}"
    try:
        address = ipaddress.ip_address(client_address)
    except ValueError:
        return "n:unknown"
    prefix = 24 if address.version == 4 else 48
    return f"n:{ipaddress.ip_network(f'{address}/{prefix}', strict=False)}"
