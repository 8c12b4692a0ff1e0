"""Reads about courses, lessons and enrolment that other code reuses."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db.models import Exists, OuterRef, QuerySet, Value

from courses.lti.selectors import launch_grants_of, user_launched_lesson
from courses.models import Course, Enrollment, Lesson, LessonState
from media_pipeline import selectors as media_selectors
from media_pipeline.models import ResumableUpload

User = AbstractBaseUser | AnonymousUser


def lesson_get(*, public_id: uuid.UUID | str, viewer: User | None = None) -> Lesson | None:
    """The lesson with its course and asset; with ``viewer``, also what playback/access.py needs to
    know about that viewer (teaches, enrolled, launched from an LMS), in the same query."""
    lessons = Lesson.objects.select_related("course", "asset")
    if viewer is not None and viewer.is_authenticated:
        lessons = lessons.annotate(
            viewer_pk=Value(viewer.pk),
            viewer_teaches=Exists(
                Course.educators.through.objects.filter(course_id=OuterRef("course_id"), user_id=viewer.pk)
            ),
            viewer_enrolled=Exists(Enrollment.objects.filter(course_id=OuterRef("course_id"), user_id=viewer.pk)),
            viewer_launched=Exists(launch_grants_of(user=viewer).filter(resource_link__lesson=OuterRef("pk"))),
        )
    try:
        return lessons.get(public_id=public_id)
    except (Lesson.DoesNotExist, ValueError):
        return None


def viewer_fact(*, lesson: Lesson, user: User, name: str) -> bool | None:
    """A fact ``lesson_get(viewer=user)`` fetched with the lesson, or None if it was not fetched for this user."""
    if getattr(lesson, "viewer_pk", None) != user.pk or not hasattr(lesson, name):
        return None
    return bool(getattr(lesson, name))


def course_list_published() -> QuerySet[Course]:
    return Course.objects.filter(published=True).order_by("title")


def course_get_published(*, slug: str) -> Course | None:
    return Course.objects.filter(published=True, slug=slug).first()


def lesson_list_visible(*, course: Course) -> QuerySet[Lesson]:
    """Lessons a learner sees on the course page: published ones, in order."""
    return course.lessons.filter(state=LessonState.PUBLISHED).select_related("asset").order_by("position", "id")


def user_is_enrolled(*, user: User, course: Course) -> bool:
    if not user.is_authenticated:
        return False
    return Enrollment.objects.filter(user_id=user.pk, course=course).exists()


def user_teaches(*, user: User, course: Course) -> bool:
    if not user.is_authenticated:
        return False
    return course.educators.filter(pk=user.pk).exists()


def user_may_upload(*, user: User, lesson: Lesson) -> bool:
    """Educators (active staff) who teach the lesson's course, and superusers, may upload its video."""
    if not (user.is_authenticated and user.is_active and getattr(user, "is_staff", False)):
        return False
    return bool(getattr(user, "is_superuser", False)) or user_teaches(user=user, course=lesson.course)


def upload_get_for(*, user: User, public_id: uuid.UUID) -> ResumableUpload | None:
    """One of the user's own resumable uploads, while they may still upload to its lesson; else None
    (someone else's upload is indistinguishable from one that does not exist)."""
    if not user.is_authenticated:
        return None
    upload = ResumableUpload.objects.filter(public_id=public_id, owner_id=user.pk).select_related("asset").first()
    if upload is None:
        return None
    if upload.asset_id is None:
        return None
    lesson = Lesson.objects.select_related("course").filter(asset_id=upload.asset_id).first()
    if lesson is None or not user_may_upload(user=user, lesson=lesson):
        return None
    return upload


def courses_taught_by(*, user: User) -> QuerySet[Course]:
    if not user.is_authenticated:
        return Course.objects.none()
    if getattr(user, "is_superuser", False):
        return Course.objects.all()
    return Course.objects.filter(educators__pk=user.pk)


def lesson_course_slugs(*, public_ids: list[str]) -> dict[str, str]:
    """Course slug of each lesson, by lesson public id (for reports keyed by lesson)."""
    rows = Lesson.objects.filter(public_id__in=public_ids).values_list("public_id", "course__slug")
    return {str(public_id): slug for public_id, slug in rows}


def lesson_ids_taught_by(*, user: User) -> list[str]:
    return [
        str(p)
        for p in Lesson.objects.filter(course__in=courses_taught_by(user=user)).values_list("public_id", flat=True)
    ]


def user_launched_lesson_from_lms(*, user: User, lesson: Lesson) -> bool:
    """An LTI launch of a resource link pointing at this lesson (see courses/lti)."""
    return user_launched_lesson(user=user, lesson=lesson)


def lesson_replicas(*, lesson: Lesson) -> list[dict[str, Any]]:
    """Per storage region, how far each version of the lesson's video is copied (admin and API)."""
    if lesson.asset is None:
        return []
    return [
        {
            "version": row.prefix.rstrip("/").rsplit("/", 1)[-1],
            "region": row.region,
            "state": row.state,
            "state_text": row.get_state_display(),
            "objects_copied": row.objects_copied,
            "objects_total": row.objects_total,
            "last_error": row.last_error,
            "completed_at": row.completed_at,
            "serving": row.prefix == lesson.asset.published_prefix,
        }
        for row in media_selectors.asset_replicas(asset=lesson.asset)
        if not row.prefix.startswith("sources/")
    ]
