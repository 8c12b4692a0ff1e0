"""Every entitlement case, in one table. The decision is made in playback/access.py only."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from courses.models import Enrollment, Lesson
from playback.access import Verdict, can_watch
from tests.playback.conftest import World

OK = (Verdict.ALLOWED, "ok")
LOGIN = (Verdict.DENIED, "log in to watch this lesson")
ENROL = (Verdict.DENIED, "enrol in the course to watch this lesson")
UNPUBLISHED = (Verdict.DENIED, "this lesson is not published")
WAIT = (Verdict.NOT_READY, "the video is still being processed")

ROLES = ("anonymous", "inactive_learner", "stranger", "staff", "learner", "educator", "inactive_educator", "admin")
TABLE = {
    # situation: one expected (verdict, reason) per role, in the order of ROLES
    "published": (LOGIN, LOGIN, ENROL, ENROL, OK, OK, LOGIN, OK),
    "re-encoding": (LOGIN, LOGIN, ENROL, ENROL, OK, OK, LOGIN, OK),
    "draft lesson": (LOGIN, LOGIN, UNPUBLISHED, UNPUBLISHED, UNPUBLISHED, OK, LOGIN, OK),
    "unpublished course": (LOGIN, LOGIN, UNPUBLISHED, UNPUBLISHED, UNPUBLISHED, OK, LOGIN, OK),
    "draft in unpublished course": (LOGIN, LOGIN, UNPUBLISHED, UNPUBLISHED, UNPUBLISHED, OK, LOGIN, OK),
    "no version yet": (LOGIN, LOGIN, ENROL, ENROL, WAIT, WAIT, LOGIN, WAIT),
    "first encode failed": (LOGIN, LOGIN, ENROL, ENROL, WAIT, WAIT, LOGIN, WAIT),
    "no asset": (LOGIN, LOGIN, ENROL, ENROL, WAIT, WAIT, LOGIN, WAIT),
    "draft without version": (LOGIN, LOGIN, UNPUBLISHED, UNPUBLISHED, UNPUBLISHED, WAIT, LOGIN, WAIT),
    # A public lesson (free preview) is for everyone, but only once it and its course are published.
    "public lesson": (OK, OK, OK, OK, OK, OK, OK, OK),
    "public, no version yet": (WAIT, WAIT, WAIT, WAIT, WAIT, WAIT, WAIT, WAIT),
    "public draft lesson": (LOGIN, LOGIN, UNPUBLISHED, UNPUBLISHED, UNPUBLISHED, OK, LOGIN, OK),
    "public in unpublished course": (LOGIN, LOGIN, UNPUBLISHED, UNPUBLISHED, UNPUBLISHED, OK, LOGIN, OK),
}
CASES = [
    pytest.param(situation, role, expected, id=f"{situation}-{role}")
    for situation, row in TABLE.items()
    for role, expected in zip(ROLES, row, strict=True)
]


def _user(world: World, role: str) -> User | AnonymousUser:
    if role == "anonymous":
        return AnonymousUser()
    if role == "inactive_learner":
        user = User.objects.create_user("gone", password="pw-gone-123", is_active=False)
        Enrollment.objects.create(user=user, course=world.course)
        return user
    if role == "inactive_educator":
        user = User.objects.create_user("retired", password="pw-retired-123", is_staff=True, is_active=False)
        world.course.educators.add(user)
        return user
    return getattr(world, role)


def _arrange(world: World, situation: str) -> None:
    lesson, course, asset = world.lesson, world.course, world.asset
    if situation.startswith("public"):
        lesson.public = True
    if situation == "public draft lesson":
        lesson.state = "draft"
    if situation == "public in unpublished course":
        course.published = False
    if situation == "public, no version yet":
        asset.status, asset.published_version = "transcoding", None
    if situation in ("draft lesson", "draft in unpublished course", "draft without version"):
        lesson.state = "draft"
    if situation in ("unpublished course", "draft in unpublished course"):
        course.published = False
    if situation == "re-encoding":  # version 1 stays published while version 2 is built
        asset.status, asset.building_version = "transcoding", 2
    if situation in ("no version yet", "draft without version"):
        asset.status, asset.published_version = "transcoding", None
    if situation == "first encode failed":
        asset.status, asset.published_version = "failed", None
    if situation == "no asset":
        lesson.asset = None
    asset.save()
    course.save()
    lesson.save()


def test_table_covers_every_role_in_every_situation() -> None:
    assert len(CASES) == len(TABLE) * len(ROLES) == 104


@pytest.mark.parametrize(("situation", "role", "expected"), CASES)
def test_can_watch(world: World, situation: str, role: str, expected: tuple[Verdict, str]) -> None:
    user = _user(world, role)
    _arrange(world, situation)
    world.lesson.refresh_from_db()
    with CaptureQueriesContext(connection) as queries:
        decision = can_watch(user=user, lesson=world.lesson)
    assert (decision.verdict, decision.reason) == expected
    assert decision.allowed is (expected == OK)
    # Deciding is a read: nothing is written, whatever the answer.
    assert [q["sql"] for q in queries if not q["sql"].lstrip().upper().startswith("SELECT")] == []


# --- LTI 1.3: a launch of a resource link pointing at the lesson is an entitlement ------------------
LTI_CASES = {
    # situation: expected verdict for a user who launched a resource link from an LMS
    "link to this lesson, course not in the catalogue": OK,
    "link to this lesson, published course, not enrolled": OK,
    "link to this lesson, draft lesson": UNPUBLISHED,
    "link to this lesson, no version yet": WAIT,
    "link to this lesson, platform deactivated": UNPUBLISHED,
    "link to another lesson": UNPUBLISHED,
    "link that no longer points at a lesson": UNPUBLISHED,
    "link to this lesson, inactive user": LOGIN,
}


def _lti_grant(world: World, situation: str) -> User:
    from django.utils import timezone

    from courses.models import Lesson
    from lti.models import LtiDeployment, LtiLaunchGrant, LtiPlatform, LtiResourceLink, LtiUser

    platform = LtiPlatform.objects.create(
        issuer="https://lms.example", client_id="c", auth_login_url="https://lms.example/auth",
        auth_token_url="https://lms.example/token", jwks_url="https://lms.example/jwks",
        active=situation != "link to this lesson, platform deactivated",
    )  # fmt: skip
    deployment = LtiDeployment.objects.create(platform=platform, deployment_id="1")
    user = User.objects.create_user("lms-learner", is_active=situation != "link to this lesson, inactive user")
    identity = LtiUser.objects.create(issuer=platform.issuer, sub="s-1", user=user)
    target: Lesson | None = world.lesson
    if situation == "link to another lesson":
        target = Lesson.objects.create(course=world.course, title="Another", position=1)
    if situation == "link that no longer points at a lesson":
        target = None
    link = LtiResourceLink.objects.create(deployment=deployment, resource_link_id="r-1", lesson=target)
    LtiLaunchGrant.objects.create(user=user, lti_user=identity, resource_link=link, last_launch_at=timezone.now())
    if situation != "link to this lesson, published course, not enrolled":
        world.course.published = False
        world.course.save()
    if situation == "link to this lesson, draft lesson":
        world.lesson.state = "draft"
        world.lesson.save()
    if situation == "link to this lesson, no version yet":
        world.asset.status, world.asset.published_version = "transcoding", None
        world.asset.save()
    return user


@pytest.mark.parametrize(("situation", "expected"), list(LTI_CASES.items()), ids=list(LTI_CASES))
def test_can_watch_after_an_lti_launch(world: World, situation: str, expected: tuple[Verdict, str]) -> None:
    user = _lti_grant(world, situation)
    world.lesson.refresh_from_db()
    with CaptureQueriesContext(connection) as queries:
        decision = can_watch(user=user, lesson=world.lesson)
    assert (decision.verdict, decision.reason) == expected
    assert [q["sql"] for q in queries if not q["sql"].lstrip().upper().startswith("SELECT")] == []
    assert not Enrollment.objects.filter(user=user).exists()


@pytest.mark.parametrize("situation", list(LTI_CASES))
def test_facts_fetched_with_the_lesson_match_the_separate_checks(world: World, situation: str) -> None:
    """lesson_get(viewer=...) answers the three entitlement facts in one SQL expression; each must
    equal the selector playback/access.py would otherwise ask."""
    from courses import selectors

    viewers = [_lti_grant(world, situation), world.learner, world.educator, world.stranger, world.staff]
    other = Lesson.objects.create(course=world.course, title="Another", position=1)
    for lesson in (world.lesson, other):
        lesson = Lesson.objects.get(pk=lesson.pk)
        for user in viewers:
            fetched = selectors.lesson_get(public_id=lesson.public_id, viewer=user)
            assert fetched is not None
            expected = {
                "viewer_teaches": selectors.user_teaches(user=user, course=lesson.course),
                "viewer_enrolled": selectors.user_is_enrolled(user=user, course=lesson.course),
                "viewer_launched": selectors.user_launched_lesson_from_lms(user=user, lesson=lesson),
            }
            for name, value in expected.items():
                assert selectors.viewer_fact(lesson=fetched, user=user, name=name) is value, (situation, name)
