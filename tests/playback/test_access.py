"""Every entitlement case, in one table. The decision is made in playback/access.py only."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from playback.access import Verdict, can_watch
from tests.playback.conftest import World

ENROL = "enrol in the course to watch this lesson"
UNPUBLISHED = "this lesson is not published"


@pytest.mark.parametrize(
    ("who", "situation", "verdict", "reason"),
    [
        ("learner", "normal", Verdict.ALLOWED, "ok"),
        ("stranger", "normal", Verdict.DENIED, ENROL),
        ("anonymous", "normal", Verdict.DENIED, "log in to watch this lesson"),
        ("inactive", "normal", Verdict.DENIED, "log in to watch this lesson"),
        ("educator", "normal", Verdict.ALLOWED, "ok"),
        ("other_educator", "normal", Verdict.DENIED, ENROL),
        ("admin", "normal", Verdict.ALLOWED, "ok"),
        ("learner", "draft lesson", Verdict.DENIED, UNPUBLISHED),
        ("educator", "draft lesson", Verdict.ALLOWED, "ok"),
        ("admin", "draft lesson", Verdict.ALLOWED, "ok"),
        ("learner", "unpublished course", Verdict.DENIED, UNPUBLISHED),
        ("educator", "unpublished course", Verdict.ALLOWED, "ok"),
        ("learner", "no video yet", Verdict.NOT_READY, "the video is still being processed"),
        ("educator", "no video yet", Verdict.NOT_READY, "the video is still being processed"),
        ("stranger", "no video yet", Verdict.DENIED, ENROL),
        ("learner", "no asset", Verdict.NOT_READY, "the video is still being processed"),
    ],
)
def test_can_watch(world: World, who: str, situation: str, verdict: Verdict, reason: str) -> None:
    if who == "anonymous":
        user = AnonymousUser()
    elif who == "inactive":
        user = world.learner
        user.is_active = False
        user.save()
    else:
        user = getattr(world, who)
    lesson = world.lesson
    if situation == "draft lesson":
        lesson.state = "draft"
        lesson.save()
    elif situation == "unpublished course":
        world.course.published = False
        world.course.save()
    elif situation == "no video yet":
        world.asset.published_version = None
        world.asset.status = "transcoding"
        world.asset.save()
    elif situation == "no asset":
        lesson.asset = None
        lesson.save()
    lesson.refresh_from_db()
    decision = can_watch(user=user, lesson=lesson)
    assert (decision.verdict, decision.reason) == (verdict, reason)
    assert decision.allowed is (verdict is Verdict.ALLOWED)
