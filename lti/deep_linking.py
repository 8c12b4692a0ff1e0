"""Deep Linking 2.0: an instructor picks lessons; we answer with a signed LtiDeepLinkingResponse."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import QuerySet

from courses import selectors as course_selectors
from courses.models import Lesson, LessonState
from lti import messages, platforms
from lti.errors import LtiError, LtiRefused
from lti.models import LtiContext, LtiPlatform
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


def deep_link_lessons(*, user: User) -> QuerySet[Lesson]:
    """Lessons an instructor may place in their LMS course: published lessons of the courses they teach."""
    return (
        Lesson.objects.filter(course__in=course_selectors.courses_taught_by(user=user), state=LessonState.PUBLISHED)
        .select_related("course")
        .order_by("course__title", "position", "id")
    )


def deep_link_response(*, user: User, request: DeepLinkRequest, lesson_ids: list[str]) -> tuple[str, str]:
    """(return URL, signed JWT) for the lessons picked; refuses lessons the user may not offer."""
    if not lesson_ids:
        raise LtiError("pick at least one lesson")
    if len(lesson_ids) > 1 and not request.accept_multiple:
        raise LtiError("the platform accepts only one lesson here")
    lessons = list(deep_link_lessons(user=user).filter(public_id__in=lesson_ids))
    if len(lessons) != len(set(lesson_ids)):
        raise LtiRefused("one of the lessons picked is not yours to offer")
    platform = LtiPlatform.objects.get(pk=request.platform_id)
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


def deep_link_response_for_lessons(*, request: DeepLinkRequest, lessons: list[Lesson]) -> tuple[str, str]:
    """(return URL, signed JWT) naming ``lessons``, which the caller has already allowed (a new upload)."""
    platform = LtiPlatform.objects.get(pk=request.platform_id)
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
