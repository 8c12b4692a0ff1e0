"""The instructor page of an LMS context: who may see it, and what it shows.

An instructor of a context is an educator of the context's course. Instructor launches put them there
(provisioning.provision, with claims.is_educator deciding who counts), and so does the roster sync
(nrps.roster_sync), which also takes them out when the LMS says they left. A learner of the context, an
instructor of another context, a site educator of another course: none of them is one. The page is
named by the context's public id, so its URL neither counts contexts nor can be guessed.

The learners are the course's enrolments (launches and the roster make them); their names are the
ones the roster service or, failing that, the launches' name claims last gave (lti_user_provision).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core.paginator import Page as DjangoPage
from django.core.paginator import Paginator
from django.db.models import Prefetch, QuerySet

from courses import selectors as course_selectors
from courses.models import Lesson, LessonCaption, LessonProgress
from lti.models import LtiContext, LtiScore
from lti.provisioning import LaunchResult

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def instructor_context_get(*, user: AbstractBaseUser | AnonymousUser, public_id: uuid.UUID | str) -> LtiContext | None:
    """The context if `user` instructs it (an educator of its course, on an active platform), else None.

    The one access decision for the instructor page and each of its writes."""
    if not user.is_authenticated or not user.is_active:
        return None
    return (
        LtiContext.objects.select_related("course", "deployment__platform")
        .filter(public_id=public_id, course__isnull=False, course__educators=user.pk, deployment__platform__active=True)
        .first()
    )


def instructor_context_of_lesson(*, user: AbstractBaseUser | AnonymousUser, lesson: Lesson) -> uuid.UUID | None:
    """The public id of a context whose course holds this lesson and which `user` instructs (for a link)."""
    if not user.is_authenticated:
        return None
    return (
        LtiContext.objects.filter(
            course_id=lesson.course_id, course__educators=user.pk, deployment__platform__active=True
        )
        .values_list("public_id", flat=True)
        .first()
    )


def instructor_context_of_launch(*, result: LaunchResult) -> uuid.UUID | None:
    """The public id of the launch's context when the launching user instructs it (for a link), else None."""
    context_id = result.message.context.get("id") if result.message.context else None
    if not result.educator or not isinstance(context_id, str):
        return None
    return (
        LtiContext.objects.filter(
            deployment=result.deployment, context_id=context_id, course__isnull=False, course__educators=result.user.pk
        )
        .values_list("public_id", flat=True)
        .first()
    )


def context_lesson_get(*, context: LtiContext, public_id: uuid.UUID | str) -> Lesson | None:
    """A lesson of the context's course (with its asset), or None: a lesson elsewhere is never edited here."""
    if context.course_id is None:
        return None
    return Lesson.objects.select_related("asset").filter(course_id=context.course_id, public_id=public_id).first()


def context_score_get(*, context: LtiContext, score_id: int) -> LtiScore | None:
    """A score sent to one of this context's gradebook columns, or None."""
    return LtiScore.objects.filter(pk=score_id, resource_link__context=context).first()


@dataclass(frozen=True)
class LessonOverview:
    lesson: Lesson
    processing: str
    captions: list[str]
    problem: str = ""  # why its video will not play without the instructor acting (failed, never uploaded)


@dataclass(frozen=True)
class ScoreState:
    score_id: int
    column: str  # the LMS link's title (one lesson may be placed twice)
    score_given: float
    score_maximum: float
    status: str  # sent, refused, waiting
    last_error: str


@dataclass
class LearnerLesson:
    learner: str
    email: str
    lesson: str
    lesson_seconds: int | None
    seconds_watched: int = 0
    completed_at: datetime | None = None
    scores: list[ScoreState] = field(default_factory=list)


@dataclass(frozen=True)
class InstructorPage:
    context: LtiContext
    lessons: list[LessonOverview]
    rows: list[LearnerLesson]
    learners: DjangoPage[Any]  # this page of the learners, for the page links (LEARNERS_PER_PAGE a page)


# A page of the learner table, and a chunk of its CSV export: the queries per page or chunk are fixed.
LEARNERS_PER_PAGE = 50


def _score_status(score: Mapping[str, Any]) -> str:
    if score["version"] and score["posted_version"] >= score["version"]:
        return "sent"
    if score["refused_version"] >= score["version"] and score["version"]:
        return "refused"
    return "waiting"


def _video_problem(lesson: Lesson) -> str:
    """The pipeline's reason a lesson's video will not play, or "". Asked only of videos not playing (a
    query at most, for one with no original): the page's other lessons cost nothing more."""
    if lesson.asset is not None and lesson.asset.is_playable:
        return ""
    video = course_selectors.lesson_video_state(lesson=lesson)
    return video.reason if video.phase is course_selectors.VideoPhase.FAILED else ""


def _lessons(course_id: int) -> list[Lesson]:
    return list(
        Lesson.objects.filter(course_id=course_id)
        .select_related("asset")
        .prefetch_related(Prefetch("captions", queryset=LessonCaption.objects.only("lesson_id", "language", "kind")))
        .order_by("position", "id")
    )


def _learners(course_id: int) -> QuerySet[Any]:
    """The course's learners by name; the primary key last makes the order total, so pages never overlap."""
    return (
        get_user_model()
        .objects.filter(enrollments__course_id=course_id)
        .order_by("last_name", "first_name", "username", "pk")
        .only("pk", "first_name", "last_name", "username", "email")
    )


def _learner_rows(*, context: LtiContext, lessons: list[Lesson], learners: list[Any]) -> list[LearnerLesson]:
    """Per learner (of this slice) and lesson: seconds watched, completion and scores, in two queries."""
    if not learners or not lessons or context.course_id is None:
        return []
    learner_ids = [learner.pk for learner in learners]
    progress = {
        (row["user_id"], row["lesson_id"]): row
        for row in LessonProgress.objects.filter(lesson__course_id=context.course_id, user_id__in=learner_ids).values(
            "user_id", "lesson_id", "seconds_watched", "completed_at"
        )
    }
    scores: dict[tuple[int, int], list[ScoreState]] = defaultdict(list)
    for score in (
        LtiScore.objects.filter(
            resource_link__context=context, resource_link__lesson__isnull=False, lti_user__user_id__in=learner_ids
        )
        .order_by("resource_link__title", "pk")
        .values(
            "pk",
            "lti_user__user_id",
            "resource_link__lesson_id",
            "resource_link__title",
            "resource_link__resource_link_id",
            "score_given",
            "score_maximum",
            "version",
            "posted_version",
            "refused_version",
            "last_error",
        )  # fmt: skip
    ):
        scores[(score["lti_user__user_id"], score["resource_link__lesson_id"])].append(
            ScoreState(
                score_id=score["pk"],
                column=score["resource_link__title"] or score["resource_link__resource_link_id"],
                score_given=score["score_given"],
                score_maximum=score["score_maximum"],
                status=_score_status(score),
                last_error=score["last_error"],
            )
        )
    rows = []
    for learner in learners:
        name = learner.get_full_name() or learner.email or learner.username
        for lesson in lessons:
            watched: Mapping[str, Any] = progress.get((learner.pk, lesson.pk), {})
            duration = lesson.duration_seconds
            rows.append(
                LearnerLesson(
                    learner=name,
                    email=learner.email,
                    lesson=lesson.title,
                    lesson_seconds=int(duration) if duration else None,
                    seconds_watched=watched.get("seconds_watched", 0),
                    completed_at=watched.get("completed_at"),
                    scores=scores.get((learner.pk, lesson.pk), []),
                )
            )
    return rows


def instructor_page(*, context: LtiContext, page_number: int | str | None = 1) -> InstructorPage:
    """Lessons with their state, and for one page of learners (by name) the seconds watched, completion and scores.

    A fixed number of queries whatever the number of learners (one more per lesson being transcoded, or
    without a video). A page
    number past the end shows the last page; one that is not a number, the first."""
    course_id = context.course_id
    assert course_id is not None  # instructor_context_get returns linked contexts only
    lessons = _lessons(course_id)
    lesson_states = [
        LessonOverview(
            lesson=lesson,
            processing=course_selectors.lesson_processing_text(lesson=lesson),
            captions=[caption.language for caption in lesson.captions.all() if caption.kind == "subtitles"],
            problem=_video_problem(lesson),
        )
        for lesson in lessons
    ]
    learners = Paginator(_learners(course_id), LEARNERS_PER_PAGE).get_page(page_number)
    rows = _learner_rows(context=context, lessons=lessons, learners=list(learners.object_list))
    return InstructorPage(context=context, lessons=lesson_states, rows=rows, learners=learners)


CSV_HEADER = [
    "learner", "email", "lesson", "lesson seconds", "seconds watched", "completed", "completed at",
    "gradebook column", "score given", "score maximum", "sent to gradebook", "last error",
]  # fmt: skip


def csv_cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run: text starting with = + - @ (or a tab or CR) gets a quote."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_PREFIXES) else text


def _csv_rows(rows: Iterable[LearnerLesson]) -> Iterable[list[object]]:
    for row in rows:
        base = [
            row.learner, row.email, row.lesson, row.lesson_seconds, row.seconds_watched,
            "yes" if row.completed_at else "no", row.completed_at.isoformat() if row.completed_at else "",
        ]  # fmt: skip
        if not row.scores:
            yield [*base, "", "", "", "", ""]
        for score in row.scores:
            yield [*base, score.column, score.score_given, score.score_maximum, score.status, score.last_error]


def instructor_csv_chunks(*, context: LtiContext) -> Iterator[str]:
    """The learner table as CSV: a header, then one line per learner, lesson and gradebook column.

    Everyone, not one page, yielded LEARNERS_PER_PAGE learners at a time (one chunk each, three queries:
    learners, progress, scores), so memory stays flat however large the class is. For a
    StreamingHttpResponse (core.streams.streaming_content, which keeps it streaming under ASGI)."""
    course_id = context.course_id
    assert course_id is not None
    lessons = _lessons(course_id)
    learners = _learners(course_id)
    start = 0
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    while True:
        chunk = list(learners[start : start + LEARNERS_PER_PAGE])
        for values in _csv_rows(_learner_rows(context=context, lessons=lessons, learners=chunk)):
            writer.writerow([csv_cell(value) for value in values])
        text = out.getvalue()
        out.seek(0)
        out.truncate()
        yield ("\ufeff" + text) if start == 0 else text  # the BOM makes spreadsheets read UTF-8
        if len(chunk) < LEARNERS_PER_PAGE:
            return
        start += LEARNERS_PER_PAGE
