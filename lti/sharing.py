"""The shared library: courses whose published lessons every instructor of one LMS (platform) may pick
in the Deep Linking picker, whether or not they teach the course here.

Who may share: operators (superusers) any course with any platform, from the shell
(`manage.py lti_share_course`) or the admin; educators (active staff who teach the course) only their
own courses, in the admin. Unsharing takes the course out of the picker; links already placed in the
LMS keep playing (their signed lesson grant was issued when the lesson was offered), so a lesson is
withdrawn from learners by unpublishing it, not by unsharing its course.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet

from courses import selectors as course_selectors
from courses.models import Course
from lti.errors import LtiConflict, LtiNotFound, LtiRefused
from lti.models import LtiCourseShare, LtiPlatform


def user_may_share(*, user: User, course: Course) -> bool:
    """Superusers share any course; other active staff (educators) only a course they teach."""
    if not (user.is_authenticated and user.is_active):
        return False
    if user.is_superuser:
        return True
    return user.is_staff and course_selectors.user_teaches(user=user, course=course)


def courses_shareable_by(*, user: User) -> QuerySet[Course]:
    """The courses ``user`` may share or unshare (the admin's choices and list)."""
    if not (user.is_authenticated and user.is_active and (user.is_staff or user.is_superuser)):
        return Course.objects.none()
    return course_selectors.courses_taught_by(user=user)


def _check(*, course: Course, by: User | None) -> None:
    # by=None is an operator at the shell, who may do anything anyway.
    if by is not None and not user_may_share(user=by, course=course):
        raise LtiRefused("only a superuser or an educator of this course may share or unshare it")


@transaction.atomic
def course_share(*, course: Course, platform: LtiPlatform, by: User | None) -> tuple[LtiCourseShare, bool]:
    """Share ``course`` with ``platform``; (the share, whether it is new). Sharing again changes nothing."""
    _check(course=course, by=by)
    # get_or_create retries the read when two requests insert at once (the unique constraint decides).
    return LtiCourseShare.objects.get_or_create(course=course, platform=platform, defaults={"shared_by": by})


@transaction.atomic
def course_unshare(*, course: Course, platform: LtiPlatform, by: User | None) -> bool:
    """Stop sharing ``course`` with ``platform``; whether it was shared. Unsharing again changes nothing."""
    _check(course=course, by=by)
    deleted, _ = LtiCourseShare.objects.filter(course=course, platform=platform).delete()
    return deleted > 0


def platform_for_share(*, issuer: str, client_id: str | None) -> LtiPlatform:
    """The one platform registered for ``issuer`` (and ``client_id`` when given).

    An issuer can be registered several times (one client id per registration, e.g. two Moodle tool
    entries): sharing with "the issuer" would then be ambiguous, so the client id is required."""
    platforms = LtiPlatform.objects.filter(issuer=issuer)
    if client_id is not None:
        platforms = platforms.filter(client_id=client_id)
    found = list(platforms.order_by("client_id")[:20])
    if not found:
        suffix = f" and client id {client_id!r}" if client_id is not None else ""
        raise LtiNotFound(f"no LMS is registered with issuer {issuer!r}{suffix}")
    if len(found) > 1:
        ids = ", ".join(platform.client_id for platform in found)
        raise LtiConflict(f"several LMS registrations have issuer {issuer!r}; choose one with --client-id ({ids})")
    return found[0]


def shared_course_ids(*, platform_id: int) -> QuerySet[LtiCourseShare, Any]:
    """The ids of the courses shared with a platform, as a subquery (``course_id__in=...``)."""
    return LtiCourseShare.objects.filter(platform_id=platform_id).values("course_id")
