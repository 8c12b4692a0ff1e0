"""Playback sessions: decide entitlement once, then sign URLs for the published version."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied

from courses.models import Lesson
from media_pipeline.selectors import asset_playback_info
from playback.access import NOT_READY_REASON, AccessDecision, Verdict, can_watch
from playback.signers import signer_get


class PlaybackDenied(PermissionDenied):
    """The viewer is not entitled to this lesson (HTTP 403)."""

    def __init__(self, decision: AccessDecision) -> None:
        super().__init__(decision.reason)
        self.decision = decision


class PlaybackNotReady(Exception):
    """The viewer may watch, but no version of the video is published yet (HTTP 409)."""

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


def playback_session_create(*, user: AbstractBaseUser | AnonymousUser, lesson: Lesson) -> PlaybackSession:
    """Signed URLs for the lesson's published version; raises before anything is signed if refused."""
    decision = can_watch(user=user, lesson=lesson)
    if decision.verdict is Verdict.NOT_READY:
        raise PlaybackNotReady(decision)
    if not decision.allowed:
        raise PlaybackDenied(decision)
    info = asset_playback_info(asset=lesson.asset)
    if info is None:  # unpublished between the decision and here
        raise PlaybackNotReady(AccessDecision(Verdict.NOT_READY, NOT_READY_REASON))
    expires_at = int(time.time()) + settings.PLAYBACK_TOKEN_TTL_SECONDS
    base = signer_get().sign_prefix(prefix=info["prefix"], expires_at=expires_at)
    return PlaybackSession(
        hls_url=base + info["hls"],
        dash_url=base + info["dash"],
        poster_url=base + info["poster"],
        expires_at=datetime.fromtimestamp(expires_at, tz=UTC),
        duration=info["duration"],
    )
