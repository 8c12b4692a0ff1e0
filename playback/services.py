"""Playback sessions: decide entitlement once, then sign URLs for the published version."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser

from courses.models import Lesson
from media_pipeline.selectors import asset_playback_info
from playback.access import AccessDecision, can_watch
from playback.tokens import token_issue


class PlaybackRefused(Exception):
    def __init__(self, decision: AccessDecision) -> None:
        super().__init__(decision.reason)
        self.decision = decision


@dataclass(frozen=True)
class PlaybackSession:
    hls_url: str
    dash_url: str
    poster_url: str
    expires_at: datetime
    duration: float | None


def stream_url(*, token: str, key: str) -> str:
    return f"/stream/{token}/{key}"


def playback_session_create(*, user: AbstractBaseUser | AnonymousUser, lesson: Lesson) -> PlaybackSession:
    decision = can_watch(user=user, lesson=lesson)
    if not decision.allowed:
        raise PlaybackRefused(decision)
    info = asset_playback_info(asset=lesson.asset)
    assert info is not None  # can_watch refuses lessons with nothing playable
    expires_at = int(time.time()) + settings.PLAYBACK_TOKEN_TTL_SECONDS
    token = token_issue(secret=settings.PLAYBACK_TOKEN_SECRET.encode(), prefix=info["prefix"], expires_at=expires_at)
    return PlaybackSession(
        hls_url=stream_url(token=token, key=info["prefix"] + info["hls"]),
        dash_url=stream_url(token=token, key=info["prefix"] + info["dash"]),
        poster_url=stream_url(token=token, key=info["prefix"] + info["poster"]),
        expires_at=datetime.fromtimestamp(expires_at, tz=UTC),
        duration=info["duration"],
    )
