"""Uploading a new video from the Deep Linking picker (docs/adr/0033).

An instructor in a Deep Linking session gives a title and picks a file; we check the platform's
switch, that they teach the LMS context's course, and the platform's per-instructor quota, then make
the lesson (published: learners see it once its video is ready) in that course and hand the page an
upload grant (courses/upload_grants.py) for that lesson only. The page uploads through the admin
widget's path (tus or direct to S3) with the grant in a header, and, once the bytes are in, trades
the grant for the signed Deep Linking response naming the lesson: the LMS gets its link at once,
while the video is still being processed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser, User

from courses import selectors as course_selectors
from courses import services as course_services
from courses import upload_grants
from courses.models import Course, Lesson, LessonState
from lti import deep_linking
from lti.deep_linking import DeepLinkRequest
from lti.errors import LtiRefused
from lti.models import LtiContext, LtiPlatform
from media_pipeline import uploads

# How long the page may go on uploading with its grant: a large file over a slow connection.
UPLOAD_GRANT_SECONDS = 3 * 3600
SCOPE_KIND = "lti-picker"
QUOTA_NAME = "quota for uploads from this LMS"


@dataclass(frozen=True)
class LmsUpload:
    lesson: Lesson
    token: str


def lms_upload_course(*, request: DeepLinkRequest, user: User) -> tuple[LtiPlatform, Course]:
    """The platform and the course a picker upload goes into; LtiRefused unless the platform allows
    uploads and the user teaches the picker's LMS context's course."""
    platform = LtiPlatform.objects.filter(pk=request.platform_id, active=True).first()
    if platform is None or not platform.lms_upload_enabled:
        raise LtiRefused("uploading videos from this LMS is turned off; ask the tool's administrator")
    context = (
        LtiContext.objects.select_related("course").filter(pk=request.context_pk, deployment__platform=platform).first()
        if request.context_pk is not None
        else None
    )
    course = context.course if context else None
    if course is None or not course_selectors.user_teaches(user=user, course=course):
        raise LtiRefused("only instructors of this LMS course can upload videos to it")
    return platform, course


def lms_upload_quota(*, platform: LtiPlatform, user: User) -> uploads.QuotaScope:
    """The platform's quota for one instructor: originals they uploaded into courses of that platform's
    LMS contexts (what the picker uploads into), whatever their site-wide quota."""
    assets = Lesson.objects.filter(course__lti_contexts__deployment__platform=platform, asset__isnull=False).values(
        "asset_id"
    )
    return uploads.QuotaScope(limit=platform.lms_upload_quota_bytes, assets=assets, name=QUOTA_NAME)


def lms_upload_start(*, request: DeepLinkRequest, user: User, title: str, description: str, size: int) -> LmsUpload:
    """Make the lesson and its upload grant. Refused (LtiRefused, or uploads' UploadTooLarge and
    QuotaExceeded with the reason to show) before anything is made."""
    platform, course = lms_upload_course(request=request, user=user)
    uploads.check_size(size)
    uploads.check_quota(user=user, length=size, quota=lms_upload_quota(platform=platform, user=user))
    lesson = course_services.lesson_create(
        course=course, title=title, description=description, state=LessonState.PUBLISHED
    )
    scope = {"kind": SCOPE_KIND, "platform": platform.pk, "deep_link": request.to_session()}
    token = upload_grants.upload_grant_issue(user=user, lesson=lesson, scope=scope, seconds=UPLOAD_GRANT_SECONDS)
    return LmsUpload(lesson=lesson, token=token)


def lms_upload_grant_quota(*, grant: upload_grants.UploadGrant, user: User) -> uploads.QuotaScope:
    """The resolver of picker grants (registered in apps.py): refused once the platform's switch is off
    or the user no longer teaches the lesson's course."""
    if grant.scope.get("kind") != SCOPE_KIND:
        raise upload_grants.GrantRefused("uploads with this link are not accepted here")
    platform_pk = grant.scope.get("platform")
    platform = LtiPlatform.objects.filter(pk=platform_pk, active=True).first() if isinstance(platform_pk, int) else None
    if platform is None or not platform.lms_upload_enabled:
        raise upload_grants.GrantRefused("uploading videos from this LMS is turned off")
    lesson = Lesson.objects.select_related("course").filter(public_id=grant.lesson).first()
    if lesson is None or not course_selectors.user_teaches(user=user, course=lesson.course):
        raise upload_grants.GrantRefused("only instructors of this LMS course can upload videos to it")
    return lms_upload_quota(platform=platform, user=user)


def lms_upload_finish(*, token: str) -> tuple[str, str]:
    """(return URL, signed JWT) of the Deep Linking response naming the grant's lesson, once its video
    is uploaded (processing need not be done). Refused for a token that is not a valid picker grant,
    for a grant whose issuer now refuses it, and before the upload is complete."""
    grant = upload_grants.upload_grant_read(token=token)
    if grant is None or grant.scope.get("kind") != SCOPE_KIND:
        raise LtiRefused("this upload link is not valid or has expired; upload the video again")
    user = get_user_model().objects.filter(pk=grant.user_id, is_active=True).first()
    if user is None:
        raise LtiRefused("this upload link is not valid or has expired; upload the video again")
    try:
        upload_grants.upload_grant_resolve(grant=grant, user=user)
    except upload_grants.GrantRefused as exc:
        raise LtiRefused(str(exc)) from exc
    lesson = Lesson.objects.filter(public_id=grant.lesson).first()
    if lesson is None or not course_selectors.lesson_upload_received(lesson=lesson, user=user):
        raise LtiRefused("the video has not been uploaded yet")
    dl_request = DeepLinkRequest.from_session(_dict(grant.scope.get("deep_link")))
    return deep_linking.deep_link_response_for_lessons(request=dl_request, lessons=[lesson])


def _dict(value: Any) -> Any:
    return value if isinstance(value, dict) else None


# What the processing page says (docs/adr/0033). Learners get no detail: the reason is the instructor's.
PROCESSING_TEXTS = {
    course_selectors.VideoPhase.UPLOADING: "This video is still being uploaded. It will play here once it is "
    "uploaded and prepared.",
    course_selectors.VideoPhase.PROCESSING: "This video is being prepared. It will play here as soon as it is ready.",
}
NOT_AVAILABLE_TEXT = "This video is not available yet. Your instructor can see why on their course page."
FAILED_TEXT = (
    "This video could not be prepared: {reason}. Delete this lesson on the instructor page, then upload the video "
    "again from the lesson picker."
)


@dataclass(frozen=True)
class ProcessingNotice:
    """What the processing page of a lesson whose video does not play yet tells this viewer."""

    state: str  # "uploading", "processing", "failed" (or "ready": reload into the player)
    text: str
    reason: str  # the pipeline's user-visible reason, for the course's educators only; "" otherwise


def lesson_processing_notice(*, user: AbstractBaseUser | AnonymousUser, lesson: Lesson) -> ProcessingNotice:
    """For a viewer already entitled to the lesson (the caller asked playback.access): waiting for the
    upload, being prepared, or could not be prepared; why only to those who can act on it."""
    video = course_selectors.lesson_video_state(lesson=lesson)
    if video.phase is not course_selectors.VideoPhase.FAILED:
        return ProcessingNotice(state=video.phase.value, text=PROCESSING_TEXTS.get(video.phase, ""), reason="")
    educator = bool(getattr(user, "is_superuser", False)) or course_selectors.user_teaches(
        user=user, course=lesson.course
    )
    if not educator:
        return ProcessingNotice(state=video.phase.value, text=NOT_AVAILABLE_TEXT, reason="")
    return ProcessingNotice(
        state=video.phase.value, text=FAILED_TEXT.format(reason=video.reason.rstrip(".")), reason=video.reason
    )
