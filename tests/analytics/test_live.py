from __future__ import annotations

import asyncio

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser, User

from analytics.consumers import CLOSE_FORBIDDEN, LiveDashboardConsumer
from media_pipeline.models import MediaAsset


def _communicator(user) -> WebsocketCommunicator:  # type: ignore[no-untyped-def]
    communicator = WebsocketCommunicator(LiveDashboardConsumer.as_asgi(), "/ws/analytics/live/")
    communicator.scope["user"] = user
    return communicator


@pytest.mark.django_db(transaction=True)
def test_staff_receive_a_snapshot_every_second() -> None:
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


def test_live_page_requires_staff(client, django_user_model) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/analytics/live/").status_code == 302
    staff = django_user_model.objects.create_user("ops2", password="pw-ops-12345", is_staff=True)
    client.force_login(staff)
    response = client.get("/analytics/live/")
    assert response.status_code == 200
    assert b"/ws/analytics/live/" in response.content
