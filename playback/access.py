"""The one place that decides who may watch a lesson. Nothing is signed before it says yes.

Entitled: anyone, also anonymous, for a public lesson (a free preview) that is published in a
published course; a superuser (the operators' "staff"); an educator of the lesson's course (drafts
and unpublished courses too); an enrolled learner for a published lesson of a published course; a
user who launched, from a registered LMS (LTI 1.3), a resource link pointing at a published lesson,
even when its course is not in the catalogue (the LMS course is where those learners meet it).
Everyone else is refused, including staff users who do not teach the course: educators are staff so
that they can use the admin, which scopes them to their own courses, and playback follows the same
line. Inactive and anonymous users are refused. Entitlement is checked before readiness, so a
stranger learns nothing about the state of a video.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser

from courses import selectors as course_selectors
from courses.models import Lesson, LessonState
from media_pipeline.selectors import asset_playback_info

NOT_READY_REASON = "the video is still being processed"


class Verdict(enum.Enum):
    ALLOWED = "allowed"
    DENIED = "denied"
    NOT_READY = "not_ready"


@dataclass(frozen=True)
class AccessDecision:
    verdict: Verdict
    reason: str

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.ALLOWED


def can_watch(*, user: AbstractBaseUser | AnonymousUser, lesson: Lesson) -> AccessDecision:
    if lesson.public and lesson.state == LessonState.PUBLISHED and lesson.course.published:
        return _ready(lesson)
    if not user.is_authenticated or not user.is_active:
        return AccessDecision(Verdict.DENIED, "log in to watch this lesson")
    course = lesson.course

    def fact(name: str, query: Callable[[], bool]) -> bool:
        # Fetched with the lesson when the caller used lesson_get(viewer=user); asked here otherwise.
        known = course_selectors.viewer_fact(lesson=lesson, user=user, name=name)
        return query() if known is None else known

    teaches = bool(getattr(user, "is_superuser", False)) or fact(
        "viewer_teaches", lambda: course_selectors.user_teaches(user=user, course=course)
    )
    if not teaches:
        if lesson.state != LessonState.PUBLISHED:
            return AccessDecision(Verdict.DENIED, "this lesson is not published")
        launched = fact(
            "viewer_launched", lambda: course_selectors.user_launched_lesson_from_lms(user=user, lesson=lesson)
        )
        if not launched:
            if not course.published:
                return AccessDecision(Verdict.DENIED, "this lesson is not published")
            if not fact("viewer_enrolled", lambda: course_selectors.user_is_enrolled(user=user, course=course)):
                return AccessDecision(Verdict.DENIED, "enrol in the course to watch this lesson")
    return _ready(lesson)


def lesson_visible(*, user: AbstractBaseUser | AnonymousUser, lesson: Lesson) -> bool:
    """May this user see the lesson's page (title, description), even before its video is ready?
    Registered with courses.entitlement, so pages in courses follow this module's decision."""
    return can_watch(user=user, lesson=lesson).verdict is not Verdict.DENIED


def _ready(lesson: Lesson) -> AccessDecision:
    if asset_playback_info(asset=lesson.asset) is None:
        return AccessDecision(Verdict.NOT_READY, NOT_READY_REASON)
    return AccessDecision(Verdict.ALLOWED, "ok")
