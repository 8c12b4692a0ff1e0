"""Deep Linking 2.0: an instructor picks lessons; we answer with a signed LtiDeepLinkingResponse."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.paginator import Page, Paginator
from django.db.models import BooleanField, ExpressionWrapper, F, Q, QuerySet

from courses import selectors as course_selectors
from courses.models import Course, Lesson, LessonState
from lti import messages, platforms, sharing
from lti.errors import LtiError, LtiRefused
from lti.models import LtiContext, LtiPlatform
from lti.picking import duration_text, lesson_id_parse
from lti.provisioning import LaunchResult, lesson_grant_sign


@dataclass(frozen=True)
class DeepLinkRequest:
    """What we keep in the instructor's session between the launch and their choice."""

    platform_id: int
    deployment_id: str
    return_url: str
    data: str | None
    accept_multiple: bool
    # The LMS context (LtiContext pk) the picker was opened from: a new upload goes into its course.
    context_pk: int | None = None

    def to_session(self) -> dict[str, Any]:
        return self.__dict__.copy()

    @classmethod
    def from_session(cls, value: Any) -> DeepLinkRequest:
        if not isinstance(value, dict):
            raise LtiRefused("this lesson picker has expired; open it again from the course")
        return cls(**value)


def deep_link_request_from_launch(*, result: LaunchResult) -> DeepLinkRequest:
    if not result.educator:
        raise LtiRefused("only instructors can add lessons to the course")
    dl = result.message.deep_linking_settings
    accept_types = dl.get("accept_types")
    if isinstance(accept_types, list) and "ltiResourceLink" not in accept_types:
        raise LtiError("the platform does not accept LTI resource links here")
    data = dl.get("data")
    context = result.message.context
    contexts = LtiContext.objects.filter(deployment=result.deployment, context_id=context["id"]) if context else None
    context_pk = contexts.values_list("pk", flat=True).first() if contexts is not None else None
    return DeepLinkRequest(
        context_pk=context_pk,
        platform_id=result.deployment.platform_id,
        deployment_id=result.deployment.deployment_id,
        return_url=dl["deep_link_return_url"],
        data=data if isinstance(data, str) else None,
        accept_multiple=bool(dl.get("accept_multiple", False)),
    )


PAGE_SIZE = 20
# One Deep Linking response carries every item picked; LMSs add them one by one, and a few dozen
# activities at once is already more than an instructor checks by eye.
MAX_PICKED = 50
SEARCH_MAX_CHARS = 100


class Source(enum.StrEnum):
    """Where the picker's lessons come from."""

    MINE = "mine"  # published lessons of the courses this user teaches
    SHARED = "shared"  # published lessons of the courses shared with the launching platform


SOURCE_LABELS = {Source.MINE: "Your courses", Source.SHARED: "Shared library"}


def deep_link_pickable(*, user: User, platform_id: int) -> QuerySet[Lesson]:
    """Every lesson this user may place in a course of this platform: the one rule, used to list the
    picker's lessons and to check the lessons posted back.

    Published lessons of the courses the user teaches, and of the courses shared with this platform
    (never another platform's shares). Drafts never: a learner could not watch them anyway."""
    taught = course_selectors.courses_taught_by(user=user).values("pk")
    shared = sharing.shared_course_ids(platform_id=platform_id)
    return Lesson.objects.filter(state=LessonState.PUBLISHED).filter(Q(course__in=taught) | Q(course_id__in=shared))


def deep_link_lessons(*, user: User, platform_id: int, source: Source, query: str = "") -> QuerySet[Lesson]:
    """One source's pickable lessons matching ``query`` (title, description or course title; case does
    not matter), in course order."""
    lessons = deep_link_pickable(user=user, platform_id=platform_id)
    courses: QuerySet[Any, Any]
    if source is Source.MINE:
        courses = course_selectors.courses_taught_by(user=user).values("pk")
    else:
        courses = sharing.shared_course_ids(platform_id=platform_id)
    query = query.strip()[:SEARCH_MAX_CHARS]
    if not query:
        return lessons.filter(course_id__in=courses).order_by("course__title", "course_id", "position", "id")
    # ucontains (core/db.py): case folded in every script, on SQLite as on PostgreSQL, where the lesson's
    # title and description each have a trigram index. The source's courses, and which of them have a
    # title that matches, come first in one small query: as a list of ids, PostgreSQL knows how many
    # lessons they hold (a subquery hides it, and it walks the course's every lesson instead of the
    # indexes), and a matching course joins the indexes' BitmapOr (a joined column in the OR could not).
    source_courses = Course.objects.filter(pk__in=courses).annotate(
        hit=ExpressionWrapper(Q(title__ucontains=query), output_field=BooleanField())
    )
    found = list(source_courses.values_list("pk", "hit"))
    lessons = lessons.filter(course_id__in=[pk for pk, _hit in found]).filter(
        Q(title__ucontains=query) | Q(description__ucontains=query) | Q(course_id__in=[pk for pk, hit in found if hit])
    )
    return lessons.order_by("course__title", "course_id", "position", "id")


def deep_link_platform(*, request: DeepLinkRequest) -> LtiPlatform:
    """The platform that asked, while it is still active: a registration switched off (or deleted)
    since the launch ends the picker it opened."""
    platform = LtiPlatform.objects.filter(pk=request.platform_id, active=True).first()
    if platform is None:
        raise LtiRefused("this LMS may no longer use the tool; ask the site's administrator")
    return platform


@dataclass(frozen=True)
class PickerRow:
    lesson: Lesson
    public_id: str
    duration: str


@dataclass(frozen=True)
class PickerPage:
    """What one page of the picker shows."""

    source: Source
    query: str
    counts: dict[Source, int]
    page: Page
    rows: list[PickerRow]  # the page's lessons
    selected: list[Lesson]  # the current selection, pickable lessons only, in the order chosen
    selected_ids: frozenset[str]
    platform: LtiPlatform


def deep_link_page(*, user: User, request: DeepLinkRequest, source: str | None, query: str, page: str | None,
                   selected: Sequence[str]) -> PickerPage:  # fmt: skip
    """One page of the picker, in a fixed number of queries whatever the size of the library.

    Without a source it opens on the instructor's own courses if they have any lessons to pick, else
    on the shared library: a first-time instructor lands where there is something to pick."""
    platform = deep_link_platform(request=request)
    counts = {kind: deep_link_lessons(user=user, platform_id=platform.pk, source=kind).count() for kind in Source}
    chosen = Source(source) if source in {kind.value for kind in Source} else None
    if chosen is None:
        chosen = Source.MINE if counts[Source.MINE] or not counts[Source.SHARED] else Source.SHARED
    # The course and the video's duration come with each row: one query for the page, not one per lesson.
    # Only the columns a row shows: the page's sort then carries short rows, not every lesson's
    # description and course text (the bulk of a sort of thousands of lessons for a deep page).
    lessons = (
        deep_link_lessons(user=user, platform_id=platform.pk, source=chosen, query=query)
        .select_related("course")
        .only("public_id", "title", "course__title")
        .annotate(video_seconds=F("asset__duration_seconds"))
    )
    ids = [lesson_id for lesson_id in map(lesson_id_parse, selected) if lesson_id][:MAX_PICKED]
    found: dict[str, Lesson] = {}
    if ids:
        picked = deep_link_pickable(user=user, platform_id=platform.pk).filter(public_id__in=ids)
        found = {str(lesson.public_id): lesson for lesson in picked.select_related("course")}
    paginator = Paginator(lessons, PAGE_SIZE)
    if not query.strip():
        # Without a search the page lists the very lessons the source's tab counted just above: the
        # paginator takes that count instead of counting the library a second time (a scan at 10,000).
        paginator.count = counts[chosen]  # Paginator.count is a cached_property: this is its cache
    shown = paginator.get_page(page)
    rows = [
        PickerRow(
            lesson=lesson,
            public_id=str(lesson.public_id),
            duration=duration_text(getattr(lesson, "video_seconds", None)),
        )
        for lesson in shown.object_list
    ]
    chosen_lessons = [found[lesson_id] for lesson_id in ids if lesson_id in found]
    return PickerPage(
        source=chosen,
        query=query.strip()[:SEARCH_MAX_CHARS],
        counts=counts,
        page=shown,
        rows=rows,
        selected=chosen_lessons,
        selected_ids=frozenset(str(lesson.public_id) for lesson in chosen_lessons),
        platform=platform,
    )


def deep_link_response(*, user: User, request: DeepLinkRequest, lesson_ids: list[str]) -> tuple[str, str]:
    """(return URL, signed JWT) for the lessons picked; refuses lessons the user may not offer."""
    ids = list(dict.fromkeys(lesson_id_parse(value) for value in lesson_ids))
    if not ids:
        raise LtiError("pick at least one lesson")
    if len(ids) > 1 and not request.accept_multiple:
        raise LtiError("the platform accepts only one lesson here")
    if len(ids) > MAX_PICKED:
        raise LtiError(f"pick at most {MAX_PICKED} lessons at once")
    if None in ids:
        raise LtiRefused("one of the lessons picked is not yours to offer")
    platform = deep_link_platform(request=request)
    found = deep_link_pickable(user=user, platform_id=platform.pk).filter(public_id__in=ids)
    by_id = {str(lesson.public_id): lesson for lesson in found}
    if len(by_id) != len(ids):
        raise LtiRefused("one of the lessons picked is not yours to offer")
    lessons = [by_id[lesson_id] for lesson_id in ids if lesson_id is not None]  # the order chosen
    return _signed_response(request=request, platform=platform, lessons=lessons)


def deep_link_response_for_lessons(*, request: DeepLinkRequest, lessons: list[Lesson]) -> tuple[str, str]:
    """(return URL, signed JWT) naming ``lessons``, which the caller has already allowed (a new upload)."""
    platform = LtiPlatform.objects.get(pk=request.platform_id)
    return _signed_response(request=request, platform=platform, lessons=lessons)


def _signed_response(*, request: DeepLinkRequest, platform: LtiPlatform, lessons: list[Lesson]) -> tuple[str, str]:
    """(return URL, signed JWT) of a Deep Linking response naming ``lessons``, each with its grant."""
    picked = [
        messages.PickedLesson(
            public_id=str(lesson.public_id),
            title=lesson.title,
            description=lesson.description,
            url=f"{settings.SITE_URL}/lti/launch/",
            grant=lesson_grant_sign(platform=platform, public_id=str(lesson.public_id)),
        )
        for lesson in lessons
    ]
    payload = messages.deep_linking_response_claims(
        client_id=platform.client_id,
        issuer=platform.issuer,
        deployment_id=request.deployment_id,
        lessons=picked,
        data=request.data,
        now=platforms.now(),
        lifetime=settings.LTI_TOKEN_LIFETIME_SECONDS,
    )
    return request.return_url, platforms.tool_sign(payload)
