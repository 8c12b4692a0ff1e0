from __future__ import annotations

import time
from datetime import UTC

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pytest_django import Settings

from core import errors
from playback.access import Verdict
from playback.services import PlaybackDenied, PlaybackNotReady, playback_session_create
from playback.tokens import TokenResult, token_verify
from tests.playback.conftest import World


def test_session_signs_the_published_version_for_ttl_seconds(world: World, settings: Settings) -> None:
    settings.PLAYBACK_TOKEN_SECRET = "session-secret"
    settings.PLAYBACK_TOKEN_TTL_SECONDS = 900
    before = int(time.time())
    session = playback_session_create(user=world.learner, lesson=world.lesson)
    after = int(time.time())

    token = session.hls_url.split("/")[2]
    assert session.hls_url == f"/stream/{token}/{world.prefix}master.m3u8"
    assert session.dash_url == f"/stream/{token}/{world.prefix}manifest.mpd"
    assert session.poster_url == f"/stream/{token}/{world.prefix}poster.jpg"
    assert session.duration == 6.0
    assert session.expires_at.tzinfo is UTC
    expires = int(session.expires_at.timestamp())
    assert before + 900 <= expires <= after + 900
    assert token == f"{expires}.{token.split('.')[1]}"
    segment = world.prefix + "video_360p/1.m4s"
    verify = token_verify(secret=b"session-secret", token=token, path_key=segment, now=expires - 1)
    assert verify is TokenResult.OK
    assert token_verify(secret=b"session-secret", token=token, path_key=segment, now=expires) is TokenResult.EXPIRED


def test_session_follows_a_new_published_version(world: World) -> None:
    world.asset.published_version = 2
    world.asset.save()
    session = playback_session_create(user=world.learner, lesson=world.lesson)
    assert f"/lessons/{world.lesson.public_id}/v2/master.m3u8" in session.hls_url


@pytest.mark.parametrize("role", ["anonymous", "stranger", "staff"])
def test_a_refused_viewer_gets_permission_denied_and_nothing_is_written(world: World, role: str) -> None:
    user = AnonymousUser() if role == "anonymous" else getattr(world, role)
    with CaptureQueriesContext(connection) as queries, pytest.raises(PlaybackDenied) as refused:
        playback_session_create(user=user, lesson=world.lesson)
    assert isinstance(refused.value, errors.NotAllowed)  # a 403 from the API's one handler
    assert refused.value.decision.verdict is Verdict.DENIED
    assert "/stream/" not in str(refused.value)
    assert [q["sql"] for q in queries if not q["sql"].lstrip().upper().startswith("SELECT")] == []


def test_no_published_version_is_not_ready(world: World) -> None:
    world.asset.status, world.asset.published_version = "transcoding", None
    world.asset.save()
    with pytest.raises(PlaybackNotReady) as not_ready:
        playback_session_create(user=world.learner, lesson=world.lesson)
    assert isinstance(not_ready.value, errors.Conflict)  # a 409
    assert str(not_ready.value) == "the video is still being processed"
