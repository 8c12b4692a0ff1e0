from __future__ import annotations

import json
import uuid

import pytest

from analytics.beacons import MAX_BODY_BYTES, BatchRejected, parse_batch

VIEW, LESSON = str(uuid.uuid4()), str(uuid.uuid4())


def signed(view_id: object, lesson: object, *, user_id: int | None = None, issued_at: int | None = None) -> str:
    """The view token a playback session would have given this view of this lesson ("" for non-UUIDs)."""
    import time

    from django.conf import settings

    from courses.view_tokens import view_token_issue

    try:
        return view_token_issue(
            secret=settings.VIEW_TOKEN_SECRET.encode(), view_id=str(view_id), lesson=str(lesson), user_id=user_id,
            issued_at=int(time.time()) if issued_at is None else issued_at,
        )  # fmt: skip
    except ValueError:
        return ""


def body(**overrides: object) -> bytes:
    """A valid batch, signed with a view token for its view and lesson unless ``view_token`` is given."""
    data: dict = {
        "view_id": VIEW,
        "lesson": LESSON,
        "pathway": "cdn-a",
        "browser": "Chrome",
        "device": "desktop",
        "events": [
            {"type": "play_request", "t": 0},
            {"type": "rendition", "t": 10, "bitrate_kbps": 800, "height": 360},
            {"type": "error", "t": 20, "fatal": False, "code": "bufferStalledError"},
            {"type": "heartbeat", "t": 10000, "position": 9.5, "buffer": 12.0, "dropped": 3},
        ],
    }
    data.update(overrides)
    if "view_token" not in overrides:
        data["view_token"] = signed(data.get("view_id"), data.get("lesson"))
    elif overrides["view_token"] is None:
        del data["view_token"]
    return json.dumps(data).encode()


def test_a_valid_batch() -> None:
    batch = parse_batch(body())
    assert (batch.view_id, batch.lesson, batch.pathway, batch.browser, batch.device) == (
        VIEW, LESSON, "cdn-a", "Chrome", "desktop",
    )  # fmt: skip
    assert batch.events[1] == {"type": "rendition", "t": 10.0, "bitrate_kbps": 800.0, "height": 360}
    assert batch.events[3] == {"type": "heartbeat", "t": 10000.0, "position": 9.5, "buffer": 12.0, "dropped": 3.0}


def test_defaults_for_optional_labels() -> None:
    batch = parse_batch(body(pathway=None, browser=None, device=None))
    assert (batch.pathway, batch.browser, batch.device) == ("origin", "other", "other")


BAD_BATCHES = [
    (b"not json", "body is not JSON"),
    (b"[]", "body must be a JSON object"),
    (body(view_id="42"), "view_id must be a UUID"),
    (body(lesson=None), "lesson must be a UUID"),
    (body(events=[]), "events must be a non-empty list"),
    (body(events=[{"type": "play_request", "t": 0}] * 201), "at most 200 events per batch"),
    (body(events=[{"type": "explode", "t": 0}]), "events[0].type is not a known event type"),
    (body(events=[{"type": "end", "t": -1}]), "events[0].t must be a number from 0 to 8.64e+07"),
    (body(events=[{"type": "end", "t": "soon"}]), "events[0].t must be a number from 0 to 8.64e+07"),
    (body(events=[{"type": "end", "t": True}]), "events[0].t must be a number from 0 to 8.64e+07"),
    (body(events=[{"type": "end", "t": 1, "sql": "drop"}]), "events[0] has unknown fields: sql"),
    (body(events=[{"type": "error", "t": 1, "fatal": "yes"}]), "events[0].fatal must be true or false"),
    (body(events=["end"]), "events[0] must be an object"),
    (body(device="fridge"), "device must be one of desktop, mobile, other, tablet, tv"),
    (body(pathway="x" * 41), "pathway must be a short printable string"),
    (body(browser="Chrome\n"), "browser must be a short printable string"),
    (b" " * (MAX_BODY_BYTES + 1), "batch larger than 65536 bytes"),
]


@pytest.mark.parametrize(("payload", "reason"), BAD_BATCHES, ids=[reason for _, reason in BAD_BATCHES])
def test_bad_batches_are_refused_whole_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(BatchRejected) as excinfo:
        parse_batch(payload)
    assert str(excinfo.value) == reason
