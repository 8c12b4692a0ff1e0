"""Reads about courses, lessons and enrolment that other code reuses."""

from __future__ import annotations

import enum
import functools
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from courses import hooks, lesson_row
from courses.models import Course, Enrollment, Lesson, LessonCaption, LessonState
from media_pipeline import selectors as media_selectors
from media_pipeline.models import AssetStatus, ResumableUpload, UploadStatus, UploadTransport
from media_pipeline.text_tracks import TextTrack

if TYPE_CHECKING:
    from courses.upload_grants import UploadGrant

User = AbstractBaseUser | AnonymousUser


def lesson_get(*, public_id: uuid.UUID | str, viewer: User | None = None) -> Lesson | None:
    """A lesson with its course and asset, in one query; with ``viewer``, also what playback/access.py
    needs to know about that viewer (teaches, enrolled, launched from an LMS), and, for playback, the
    state of its published version in every storage region (media_pipeline.selectors).

    Starting a playback session runs this on every start. The query is written out once per process
    (lesson_row.py) rather than compiled by the ORM on every call: compiling the three-model join
    with its subqueries cost more than PostgreSQL took to answer it (bench/playback_session.py,
    docs/adr/0012). tests/courses/test_lesson_row.py checks it against the ORM on PostgreSQL and SQLite.
    """
    try:
        key = Lesson._meta.get_field("public_id").to_python(public_id)
    except ValidationError:
        return None
    viewer_pk = viewer.pk if viewer is not None and viewer.is_authenticated else None
    states_sql, states_params = media_selectors.published_replica_states_sql()
    facts: tuple[str, list[Any]] = ("NULL", [])
    if viewer_pk is not None:
        launched_sql = hooks.lesson_launched_sql()
        facts = (_viewer_facts_sql(launched_sql), [viewer_pk] * (2 if launched_sql is None else 3))
    facts_sql, facts_params = facts
    lesson = lesson_row.lesson_fetch(
        public_id=key, extra={"viewer_facts": (facts_sql, facts_params), "replica_states": (states_sql, states_params)}
    )
    if lesson is None:
        return None
    extra = lesson_row.fetched_extra(lesson)
    if lesson.asset is not None:
        setattr(lesson.asset, media_selectors.PUBLISHED_REPLICA_STATES, extra["replica_states"])
    if viewer_pk is not None:
        # Per-viewer facts ride on this instance only; viewer_fact() reads them back by name.
        bits = int(extra["viewer_facts"])
        facts_of_viewer = {
            "viewer_pk": viewer_pk,
            "viewer_teaches": bool(bits & 1),
            "viewer_enrolled": bool(bits & 2),
            "viewer_launched": bool(bits & 4),
        }
        for name, value in facts_of_viewer.items():
            setattr(lesson, name, value)
    return lesson


@functools.cache
def _viewer_facts_sql(launched_sql: str | None) -> str:
    """1 = teaches the lesson's course, 2 = enrolled in it, 4 = launched it from elsewhere (an LMS: the
    condition lti registers in hooks, with its own %s). Portable SQL (PostgreSQL and the embedded
    SQLite); the outer row is the lesson."""
    lesson = Lesson._meta.db_table
    educators = Course.educators.through._meta.db_table
    launched = "" if launched_sql is None else f" + (CASE WHEN {launched_sql} THEN 4 ELSE 0 END)"
    return (
        f'(CASE WHEN EXISTS (SELECT 1 FROM "{educators}" e '
        f'WHERE e.course_id = "{lesson}".course_id AND e.user_id = %s) THEN 1 ELSE 0 END)'
        f' + (CASE WHEN EXISTS (SELECT 1 FROM "{Enrollment._meta.db_table}" n '
        f'WHERE n.course_id = "{lesson}".course_id AND n.user_id = %s) THEN 2 ELSE 0 END)'
        f"{launched}"
    )


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


def user_may_upload(*, user: User, lesson: Lesson, grant: UploadGrant | None = None) -> bool:
    """Educators (active staff) who teach the lesson's course, and superusers, may upload its video.
    A request authenticated with an upload grant (courses/upload_grants.py) may upload the video of
    the grant's lesson only, whoever its user is."""
    if grant is not None:
        return (
            user.is_authenticated
            and user.is_active
            and grant.user_id == user.pk
            and grant.lesson == str(lesson.public_id)
        )
    if not (user.is_authenticated and user.is_active and getattr(user, "is_staff", False)):
        return False
    return bool(getattr(user, "is_superuser", False)) or user_teaches(user=user, course=lesson.course)


def upload_get_for(
    *, user: User, public_id: uuid.UUID, direct: bool = False, grant: UploadGrant | None = None
) -> ResumableUpload | None:
    """One of the user's own resumable uploads (tus, or ``direct`` ones), while they may still upload
    to its lesson; else None (someone else's upload is indistinguishable from one that does not exist)."""
    if not user.is_authenticated:
        return None
    transport = UploadTransport.DIRECT if direct else UploadTransport.TUS
    upload = (
        ResumableUpload.objects.filter(public_id=public_id, owner_id=user.pk, transport=transport)
        .select_related("asset")
        .first()
    )
    if upload is None:
        return None
    if upload.asset_id is None:
        return None
    lesson = Lesson.objects.select_related("course").filter(asset_id=upload.asset_id).first()
    if lesson is None or not user_may_upload(user=user, lesson=lesson, grant=grant):
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


def lesson_upload_received(*, lesson: Lesson, user: User) -> bool:
    """Whether ``user`` finished uploading a video to ``lesson`` (its bytes are all in storage; processing
    may still be running)."""
    if lesson.asset_id is None or not user.is_authenticated:
        return False
    return ResumableUpload.objects.filter(
        owner_id=user.pk, asset_id=lesson.asset_id, status__in=[UploadStatus.COMPLETING, UploadStatus.COMPLETED]
    ).exists()


def user_launched_lesson_from_lms(*, user: User, lesson: Lesson) -> bool:
    """The user launched this lesson from an LMS (lti registers how to tell, in hooks)."""
    return hooks.lesson_launched(user=user, lesson=lesson)


def lesson_text_tracks(*, lesson: Lesson) -> list[TextTrack]:
    """The lesson's captions and chapters as saved, for its video (courses.services hands them over)."""
    return [
        TextTrack(kind=row.kind, language=row.language, label=row.label, vtt=row.vtt)
        for row in LessonCaption.objects.filter(lesson=lesson).order_by("kind", "id")
    ]


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


def lesson_has_video(*, lesson: Lesson) -> bool:
    """Whether a video was uploaded for the lesson (a resumable upload makes the asset when it starts;
    it has a source only once the upload ends)."""
    asset = lesson.asset
    return asset is not None and not (asset.status == "uploaded" and not asset.source_key)


def lesson_processing_text(*, lesson: Lesson) -> str:
    """The lesson's video processing state as an educator reads it (the admin, the LMS instructor page).

    Takes the lesson with its asset loaded; a transcoding one costs one query more (its chunks)."""
    asset = lesson.asset
    if asset is None or not lesson_has_video(lesson=lesson):
        return "No video yet"
    text = asset.get_status_display()
    if asset.status == "transcoding":
        chunks = media_selectors.asset_chunks_done(asset=asset)
        text = f"{text} ({asset.progress}%{f', {chunks[0]} of {chunks[1]} chunks' if chunks else ''})"
    if asset.published_provisional and asset.status != "ready":
        text = f"{text}; a quick stream is playing, full quality in progress"
    elif asset.is_playable and asset.status != "ready":
        text = f"{text}; the previous version is still playing"
    return text


class VideoPhase(enum.Enum):
    """Where a lesson's video is on its way to playing, as the LMS processing page tells it."""

    UPLOADING = "uploading"  # an upload is under way (its bytes are not all in)
    PROCESSING = "processing"  # the original is in; the pipeline is preparing it
    FAILED = "failed"  # it will not play without someone acting: rejected, failed, or never uploaded
    READY = "ready"


@dataclass(frozen=True)
class VideoState:
    phase: VideoPhase
    reason: str = ""  # why it failed, in the pipeline's user-visible words: for the course's educators only


NO_VIDEO_REASON = "no video was uploaded"
UNFINISHED_REASON = "its upload was not finished"


def lesson_video_state(*, lesson: Lesson) -> VideoState:
    """The lesson's video phase, asked of media_pipeline (at most two queries more than the lesson).

    A video with nothing in storage and no upload still running (expired, cancelled, or never begun)
    counts as failed: nobody is going to finish it, so a page must not promise it is coming."""
    asset = lesson.asset
    if media_selectors.asset_playback_info(asset=asset) is not None:
        return VideoState(VideoPhase.READY)
    if asset is not None and asset.status == AssetStatus.FAILED:
        return VideoState(VideoPhase.FAILED, asset.failure_reason or "the video could not be prepared")
    if asset is not None and lesson_has_video(lesson=lesson):
        return VideoState(VideoPhase.PROCESSING)
    if asset is None:
        return VideoState(VideoPhase.FAILED, NO_VIDEO_REASON)
    if media_selectors.asset_upload_running(asset=asset):
        return VideoState(VideoPhase.UPLOADING)
    return VideoState(VideoPhase.FAILED, UNFINISHED_REASON)
