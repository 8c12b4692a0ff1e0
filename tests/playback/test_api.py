from __future__ import annotations

import time
import uuid
from datetime import datetime

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from playback.tokens import TokenResult, token_verify
from tests.playback.conftest import World


def _post(world: World, user=None, lesson_id=None) -> object:  # type: ignore[no-untyped-def]
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client.post(f"/api/v1/lessons/{lesson_id or world.lesson.public_id}/playback/")


def test_enrolled_learner_gets_signed_urls_for_the_published_version(world: World, settings) -> None:  # type: ignore[no-untyped-def]
    before = int(time.time())
    response = _post(world, world.learner)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"hls", "dash", "poster", "expires_at", "duration"}
    prefix = world.asset.published_prefix
    token = body["hls"].split("/")[2]
    assert body["hls"] == f"/stream/{token}/{prefix}master.m3u8"
    assert body["dash"] == f"/stream/{token}/{prefix}manifest.mpd"
    assert body["poster"] == f"/stream/{token}/{prefix}poster.jpg"
    assert body["duration"] == 6.0
    expires = int(datetime.fromisoformat(body["expires_at"]).timestamp())
    assert (
        before + settings.PLAYBACK_TOKEN_TTL_SECONDS
        <= expires
        <= int(time.time()) + settings.PLAYBACK_TOKEN_TTL_SECONDS
    )
    secret = settings.PLAYBACK_TOKEN_SECRET.encode()
    assert token_verify(secret=secret, token=token, key=prefix + "video_360p/1.m4s", now=before) is TokenResult.OK


def test_token_authentication_works_for_lms_and_apps(world: World) -> None:
    token = Token.objects.create(user=world.learner)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.post(f"/api/v1/lessons/{world.lesson.public_id}/playback/").status_code == 200


def test_not_enrolled_learner_is_refused_and_gets_no_url(world: World) -> None:
    response = _post(world, world.stranger)
    assert response.status_code == 403
    assert response.json() == {"detail": "enrol in the course to watch this lesson"}
    assert "/stream/" not in response.content.decode()


def test_anonymous_is_refused(world: World) -> None:
    response = _post(world)
    assert response.status_code == 403
    assert "/stream/" not in response.content.decode()


def test_session_post_without_csrf_is_refused(world: World) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(world.learner)
    response = client.post(f"/api/v1/lessons/{world.lesson.public_id}/playback/")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_unknown_lesson_is_404(world: World) -> None:
    assert _post(world, world.learner, lesson_id=uuid.uuid4()).status_code == 404


def test_video_not_ready_is_409(world: World) -> None:
    world.asset.published_version = None
    world.asset.status = "transcoding"
    world.asset.save()
    response = _post(world, world.learner)
    assert response.status_code == 409
    assert response.json() == {"detail": "the video is still being processed"}


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_only_post_starts_a_session(world: World, method: str) -> None:
    client = APIClient()
    client.force_authenticate(world.learner)
    response = getattr(client, method)(f"/api/v1/lessons/{world.lesson.public_id}/playback/")
    assert response.status_code == 405
