"""Steering is moved only by signed beacons from enough distinct reporters (issue 13, finding 4).

Real services: the playback API issues the sessions, beacons go through the production ASGI app into
the harness's Redis, and the steering server answers from what they left there."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from channels.testing import HttpCommunicator
from django.contrib.auth.models import User
from pytest_django import Settings
from rest_framework.test import APIClient

from analytics import ingest, selectors
from config.asgi import application
from courses.models import Enrollment
from playback import health
from tests.analytics.test_beacons import signed
from tests.playback.conftest import World

FAILED = [{"type": "play_request", "t": 0}, {"type": "error", "t": 900, "fatal": True, "code": "fragLoadError"}]
PLAYING = [{"type": "play_request", "t": 0}, {"type": "first_frame", "t": 700}, {"type": "heartbeat", "t": 9000}]


@pytest.fixture(autouse=True)
def clean_redis() -> Iterator[None]:
    def clean() -> None:
        client = ingest.client()
        for pattern in ("qoe:*", "throttle:*"):
            for key in client.scan_iter(pattern):
                client.delete(key)
        selectors._pathway_cache["at"] = 0.0
        health.health_forget()

    clean()
    yield
    clean()


def _viewer(world: World, name: str) -> User:
    user = User.objects.create_user(name, password="pw-" + name)
    Enrollment.objects.create(user=user, course=world.course)
    return user


def _session(world: World, user: User) -> dict[str, Any]:
    client = APIClient()
    client.force_authenticate(user)
    response = client.post(f"/api/v1/lessons/{world.lesson.public_id}/playback/")
    assert response.status_code == 200, response.content
    return response.json()


def _beacon(
    session: dict[str, Any] | None, world: World, *, pathway: str, events: list, client: str, **over: Any
) -> int:
    data = {
        "view_id": session["view_id"] if session else str(uuid.uuid4()),
        "lesson": str(world.lesson.public_id),
        "pathway": pathway,
        "device": "desktop",
        "events": events,
    }
    if session:
        data["view_token"] = session["view_token"]
    data.update(over)

    async def run() -> dict:
        communicator = HttpCommunicator(application, "POST", "/api/v1/qoe/events/", body=json.dumps(data).encode())
        communicator.scope["client"] = (client, 50000)
        return await communicator.get_response(timeout=5)

    return asyncio.run(run())["status"]


def _priority(world: World) -> list[str]:
    selectors._pathway_cache["at"] = 0.0
    steering = _session(world, world.learner)["steering"]
    return APIClient().get(steering).json()["PATHWAY-PRIORITY"]


def _healthy_traffic(world: World, viewers: int) -> None:
    """``viewers`` signed-in viewers playing well on both pathways (enough views to judge)."""
    for n in range(viewers):
        user = _viewer(world, f"watcher{n}")
        for pathway in ("eu", "ap"):
            assert _beacon(_session(world, user), world, pathway=pathway, events=PLAYING, client=f"198.51.{n}.1") == 202


def test_failures_from_k_distinct_users_demote_a_pathway(regional_world: World, settings: Settings) -> None:
    settings.PLAYBACK_STEERING_MIN_REPORTERS = 3
    _healthy_traffic(regional_world, 20)
    assert _priority(regional_world) == ["eu", "ap"]
    for n in range(2):
        user = _viewer(regional_world, f"victim{n}")
        assert _beacon(_session(regional_world, user), regional_world, pathway="eu", events=FAILED,
                       client=f"203.0.{n}.9") == 202  # fmt: skip
    assert _priority(regional_world) == ["eu", "ap"]  # two reporters: not yet
    user = _viewer(regional_world, "victim2")
    session = _session(regional_world, user)
    assert _beacon(session, regional_world, pathway="eu", events=FAILED, client="203.0.2.9") == 202
    assert _priority(regional_world) == ["ap", "eu"]  # 3 of 23 views failed, from 3 users


def test_a_forged_steering_batch_changes_nothing(regional_world: World, settings: Settings) -> None:
    settings.PLAYBACK_STEERING_MIN_REPORTERS = 1  # even with K = 1, forged batches count for nothing
    _healthy_traffic(regional_world, 20)
    before = ingest.client().xlen(ingest.STREAM)
    real = _session(regional_world, regional_world.learner)
    other_lesson = str(uuid.uuid4())
    forged = [
        {},  # no token at all
        {"view_token": real["view_token"][:-2] + ("AA" if not real["view_token"].endswith("AA") else "BB")},
        {"view_token": signed(real["view_id"], regional_world.lesson.public_id, issued_at=1)},  # expired
        {"view_token": real["view_token"], "view_id": str(uuid.uuid4())},  # another view's token
        {"view_token": real["view_token"], "lesson": other_lesson},  # another lesson's token
    ]
    for n, change in enumerate(forged):
        fields = {"view_id": real["view_id"], **change} if change else {}
        status = _beacon(None, regional_world, pathway="eu", events=FAILED, client=f"203.0.{n}.9", **fields)
        assert status == 403, change
    assert ingest.client().xlen(ingest.STREAM) == before  # nothing stored
    assert selectors.pathway_failure_rates(max_age=0)["eu"].failed_views == 0
    assert _priority(regional_world) == ["eu", "ap"]


def test_one_real_session_claiming_many_failures_changes_nothing(regional_world: World, settings: Settings) -> None:
    settings.PLAYBACK_STEERING_MIN_REPORTERS = 3
    _healthy_traffic(regional_world, 20)
    attacker = _viewer(regional_world, "attacker")
    session = _session(regional_world, attacker)
    # One session, many batches of failures, from many addresses: one view, one reporter.
    for n in range(30):
        events = FAILED * 20
        assert _beacon(session, regional_world, pathway="eu", events=events, client=f"203.0.{n}.9") == 202
    # The same user in ten more sessions (tabs): still one reporter.
    for n in range(10):
        assert _beacon(_session(regional_world, attacker), regional_world, pathway="eu", events=FAILED,
                       client=f"192.0.2.{n}") == 202  # fmt: skip
    reports = selectors.pathway_failure_rates(max_age=0)["eu"]
    assert (reports.failed_views, reports.reporters) == (11, 1)
    assert _priority(regional_world) == ["eu", "ap"]


def test_anonymous_viewers_count_as_their_network(regional_world: World, settings: Settings) -> None:
    settings.PLAYBACK_STEERING_MIN_REPORTERS = 3
    regional_world.lesson.public = True
    regional_world.lesson.save(update_fields=["public"])
    _healthy_traffic(regional_world, 20)

    def anonymous_session() -> dict[str, Any]:
        response = APIClient().post(f"/api/v1/lessons/{regional_world.lesson.public_id}/playback/")
        assert response.status_code == 200, response.content
        return response.json()

    # Ten anonymous sessions minted from one /24: one reporter, however many views.
    for n in range(10):
        assert _beacon(anonymous_session(), regional_world, pathway="eu", events=FAILED, client=f"203.0.113.{n}") == 202
    assert selectors.pathway_failure_rates(max_age=0)["eu"].reporters == 1
    assert _priority(regional_world) == ["eu", "ap"]
    # Two more networks see the failures too: three reporters.
    for client in ("198.18.0.1", "100.64.7.7"):
        assert _beacon(anonymous_session(), regional_world, pathway="eu", events=FAILED, client=client) == 202
    assert _priority(regional_world) == ["ap", "eu"]
