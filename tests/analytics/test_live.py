from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser, User
from django.test import Client
from pytest_django import Settings

from analytics.consumers import CLOSE_FORBIDDEN, LiveDashboardConsumer
from media_pipeline.models import MediaAsset


def _communicator(user: User | AnonymousUser) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(LiveDashboardConsumer.as_asgi(), "/ws/analytics/live/")
    communicator.scope["user"] = user
    return communicator


@pytest.mark.django_db(transaction=True)
def test_staff_receive_the_pipeline_state_every_second() -> None:
    staff = User.objects.create_user("ops", password="pw-ops-12345", is_staff=True)
    MediaAsset.objects.create(key_prefix="lessons/a", status="failed")
    MediaAsset.objects.create(key_prefix="lessons/b", status="uploaded")

    async def scenario() -> list[dict]:
        communicator = _communicator(staff)
        connected, _ = await communicator.connect()
        assert connected
        first = await communicator.receive_json_from(timeout=1)
        second = await communicator.receive_json_from(timeout=1.5)
        await communicator.disconnect()
        return [first, second]

    first, second = asyncio.run(scenario())
    assert first["type"] == "snapshot"
    assert first["assets_by_status"]["failed"] == 1
    assert first["assets_by_status"]["uploaded"] == 1
    assert first["assets_by_status"]["ready"] == 0
    assert second["type"] == "snapshot"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["anonymous", "learner"])
def test_non_staff_are_refused(kind: str) -> None:
    user = AnonymousUser() if kind == "anonymous" else User.objects.create_user("l", password="pw-l-123456")

    async def scenario() -> tuple[bool, int | None]:
        communicator = _communicator(user)
        connected, code = await communicator.connect()
        return connected, code

    connected, code = asyncio.run(scenario())
    assert connected is False
    assert code == CLOSE_FORBIDDEN


def test_live_page_requires_staff(client: Client, django_user_model: type[User]) -> None:
    assert client.get("/analytics/live/").status_code == 302
    staff = django_user_model.objects.create_user("ops2", password="pw-ops-12345", is_staff=True)
    client.force_login(staff)
    response = client.get("/analytics/live/")
    assert response.status_code == 200
    assert b"/ws/analytics/live/" in response.content


@pytest.mark.django_db(transaction=True)
def test_a_beacon_reaches_the_dashboard_socket_within_a_second() -> None:
    import time

    from asgiref.sync import sync_to_async
    from django.test import Client

    from analytics import ingest
    from analytics.services import live_publish
    from tests.analytics.test_beacons import body

    staff = User.objects.create_user("ops3", password="pw-ops-12345", is_staff=True)
    for key in ingest.client().scan_iter("qoe:live*"):
        ingest.client().delete(key)

    async def scenario() -> tuple[dict, float]:
        communicator = _communicator(staff)
        connected, _ = await communicator.connect()
        assert connected
        sent = time.monotonic()
        response = await sync_to_async(Client().post)("/api/v1/qoe/events/", body(), content_type="text/plain")
        assert response.status_code == 202
        await sync_to_async(live_publish)()
        while True:
            message = await communicator.receive_json_from(timeout=1)
            if message["type"] == "qoe":
                break
        latency = time.monotonic() - sent
        await communicator.disconnect()
        return message, latency

    message, latency = asyncio.run(scenario())
    assert latency < 1.0
    assert message["windows"]["10s"]["plays"] == 1
    assert message["windows"]["10s"]["viewers"] == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("origin", "accepted"), [(b"http://127.0.0.1:8000", True), (b"http://evil.example", False)])
def test_the_socket_checks_the_origin(origin: bytes, accepted: bool, settings: Settings) -> None:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from config.asgi import application

    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    staff = User.objects.create_user("ops4", password="pw-ops-12345", is_staff=True)
    session = SessionStore()
    session[SESSION_KEY] = str(staff.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = staff.get_session_auth_hash()
    session.save()

    async def scenario() -> bool:
        communicator = WebsocketCommunicator(
            application,
            "/ws/analytics/live/",
            headers=[
                (b"origin", origin),
                (b"host", b"127.0.0.1:8000"),
                (b"cookie", f"sessionid={session.session_key}".encode()),
            ],
        )
        connected, _ = await communicator.connect(timeout=3)
        await communicator.disconnect()
        return connected

    assert asyncio.run(scenario()) is accepted


def _qoe_snapshot(*lessons: str) -> dict[str, Any]:
    split = {"plays": 1, "failures": 1, "failure_pct": 100.0, "rebuffers": 0}
    window = {"plays": len(lessons), "by_pathway": {"origin": split}, "by_lesson": dict.fromkeys(lessons, split)}
    errors = [{"at": 1.0, "lesson": lesson, "pathway": "origin", "code": "E"} for lesson in lessons]
    return {"type": "qoe", "at": 1.0, "windows": {"10s": window, "1m": window}, "errors": errors}


@pytest.mark.django_db(transaction=True)
def test_an_educator_sees_only_the_lessons_they_teach_on_the_live_dashboard() -> None:
    from channels.layers import get_channel_layer

    from analytics.live import GROUP
    from courses.models import Course, Lesson

    teacher = User.objects.create_user("teacher", password="pw-teacher-1", is_staff=True)
    root = User.objects.create_superuser("root", password="pw-root-12345")
    mine = Course.objects.create(slug="mine", title="Mine")
    mine.educators.add(teacher)
    my_lesson = str(Lesson.objects.create(course=mine, title="Mine 1").public_id)
    their_lesson = str(Lesson.objects.create(course=Course.objects.create(slug="t", title="T"), title="T1").public_id)

    async def scenario(user: User) -> dict[str, Any]:
        communicator = _communicator(user)
        connected, _ = await communicator.connect()
        assert connected
        await get_channel_layer().group_send(
            GROUP, {"type": "qoe.snapshot", "snapshot": _qoe_snapshot(my_lesson, their_lesson)}
        )
        while True:
            message = await communicator.receive_json_from(timeout=2)
            if message["type"] == "qoe":
                break
        await communicator.disconnect()
        return message

    seen = asyncio.run(scenario(teacher))
    assert [list(w["by_lesson"]) for w in seen["windows"].values()] == [[my_lesson], [my_lesson]]
    assert [error["lesson"] for error in seen["errors"]] == [my_lesson]
    assert seen["windows"]["10s"]["by_pathway"] == {
        "origin": _qoe_snapshot("x")["windows"]["10s"]["by_pathway"]["origin"]
    }
    everything = asyncio.run(scenario(root))
    assert everything == _qoe_snapshot(my_lesson, their_lesson)
