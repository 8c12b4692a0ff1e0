"""The playback session's start estimate: from the throughput a learner's own recent sessions reported
in their signed QoE beacons, bounded, and for no one else; the default without history."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.test import Client
from pytest_django import Settings
from rest_framework.test import APIClient

from analytics import ingest
from tests.playback.conftest import World

DEFAULT = {"kbps": 1000, "basis": "default"}


@pytest.fixture(autouse=True)
def clean_redis() -> Iterator[None]:
    redis = ingest.client()  # the real one, whatever a test puts in its place

    def clean() -> None:
        for pattern in ("qoe:bw:*", "qoe:rl:*", "qoe:view:*"):
            for key in redis.scan_iter(pattern):
                redis.delete(key)

    clean()
    yield
    clean()


def _session(world: World, user: User | None) -> dict:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    response = client.post(f"/api/v1/lessons/{world.lesson.public_id}/playback/")
    assert response.status_code == 200
    return response.json()


def _beacon(session: dict, world: World, *throughputs: float, address: str = "127.0.0.1") -> int:
    events = [{"type": "play_request", "t": 0}] + [
        {"type": "heartbeat", "t": 1000 * (i + 1), "position": i, "throughput_kbps": kbps}
        for i, kbps in enumerate(throughputs)
    ]
    body = {
        "view_id": session["view_id"],
        "view_token": session["view_token"],
        "lesson": str(world.lesson.public_id),
        "events": events,
    }
    response = Client().post("/api/v1/qoe/events/", json.dumps(body), content_type="text/plain", REMOTE_ADDR=address)
    return response.status_code


def test_a_learners_next_session_starts_from_what_their_last_sessions_measured(world: World) -> None:
    first = _session(world, world.learner)
    assert first["start_estimate"] == DEFAULT
    assert _beacon(first, world, 1800, 3000) == 202  # the newest report of the view counts
    assert _session(world, world.learner)["start_estimate"] == {"kbps": 2400, "basis": "history"}
    second = _session(world, world.learner)
    assert _beacon(second, world, 1000) == 202
    # Two views: 3000 and 1000, median 2000, times 0.8.
    assert _session(world, world.learner)["start_estimate"] == {"kbps": 1600, "basis": "history"}
    # Nobody else's start moved: another user, and anonymous viewers of a public lesson.
    assert _session(world, world.educator)["start_estimate"] == DEFAULT
    world.lesson.public = True
    world.lesson.save(update_fields=["public"])
    anonymous = _session(world, None)
    assert anonymous["start_estimate"] == DEFAULT
    assert _beacon(anonymous, world, 5000) == 202
    assert list(ingest.client().scan_iter("qoe:bw:*")) == [ingest.throughput_key(world.learner.pk).encode()]


def test_a_lying_client_moves_only_its_own_start_and_only_within_bounds(world: World) -> None:
    session = _session(world, world.learner)
    assert _beacon(session, world, 1_000_000) == 202
    assert _session(world, world.learner)["start_estimate"] == {"kbps": 8000, "basis": "history"}
    assert _session(world, world.educator)["start_estimate"] == DEFAULT
    # A token is the server's: a beacon claiming another view (or user) with it is refused, nothing kept.
    forged = dict(session, view_id=_session(world, world.educator)["view_id"])
    assert _beacon(forged, world, 1_000_000) == 403
    assert ingest.client().exists(ingest.throughput_key(world.educator.pk)) == 0


def test_a_refused_batch_records_no_throughput(world: World, settings: Settings) -> None:
    settings.QOE_VIEW_MAX_BATCHES = 1
    session = _session(world, world.learner)
    assert _beacon(session, world, 2000) == 202
    assert _beacon(session, world, 7000) == 429  # the view has sent all it may
    assert _session(world, world.learner)["start_estimate"] == {"kbps": 1600, "basis": "history"}


def test_without_redis_the_session_starts_from_the_default(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import redis

    monkeypatch.setattr(ingest, "client", lambda: redis.Redis(host="127.0.0.1", port=9, socket_connect_timeout=1))
    assert _session(world, world.learner)["start_estimate"] == DEFAULT
