"""The instructor page of an LMS context, in the LMS iframe or in a first-party window.

Thin: each view asks lti.instructor whether the user instructs the context (403 otherwise, before
anything is read or written), then calls one service. Writes are POSTs with Django's CSRF check."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from config.api_errors import status_for
from core import streams
from courses import services as course_services
from courses.models import Lesson
from lti import gradebook, handoff, instructor
from lti.errors import LtiError, LtiNotFound, LtiRefused
from lti.models import LtiContext
from lti.views import frameable
from media_pipeline import text_tracks

PAGE = "the instructor page"
NOT_YOURS = "this page is for the instructors of this course"


def _error(request: HttpRequest, error: LtiError) -> HttpResponse:
    return render(request, "lti/error.html", {"reason": error.reason}, status=status_for(error))


def _context_or_refuse(request: HttpRequest, public_id: uuid.UUID) -> LtiContext:
    context = instructor.instructor_context_get(user=request.user, public_id=public_id)
    if context is None:
        raise LtiRefused(NOT_YOURS)
    return context


def instructor_url(*, public_id: uuid.UUID | str, handoff_token: str = "") -> str:
    url = reverse("lti:instructor", args=[public_id])
    return f"{url}?{urlencode({'handoff': handoff_token})}" if handoff_token else url


@frameable
@never_cache
@require_GET
def instructor_page(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse | StreamingHttpResponse:
    """The course's lessons and a page of its learners' progress and scores (`?page=N`, by name);
    `?format=csv` for the whole learner table."""
    context = instructor.instructor_context_get(user=request.user, public_id=public_id)
    if context is None:
        token = request.GET.get("handoff", "")
        if token and handoff.handoff_token_peek_context(token=token) == str(public_id):
            # The iframe did not keep the session of the launch that made this link (no cookie, or an older
            # one of another user): carry on in a first-party window, where the token signs in (lti/handoff.py).
            url = f"{reverse('lti:handoff')}?{urlencode({'token': token})}"
            return render(request, "lti/new_window.html", {"url": url, "page": PAGE})
        reason = NOT_YOURS if request.user.is_authenticated else "open this page from your course in the LMS"
        return _error(request, LtiRefused(reason))
    if request.GET.get("format") == "csv":
        # Every learner, streamed a page of learners at a time (flat memory for any class size).
        chunks = instructor.instructor_csv_chunks(context=context)
        content = streams.streaming_content(request, chunks, thread_sensitive=True)  # it queries the database
        response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="learners-{context.public_id}.csv"'
        return response
    return _render(request, instructor.instructor_page(context=context, page_number=request.GET.get("page", 1)))


def _render(
    request: HttpRequest, page: instructor.InstructorPage, *, error: str = "", status: int = 200
) -> HttpResponse:
    context = {"page": page, "error": error, "caption_accept": ".srt,.vtt,text/vtt", "max_bytes": text_tracks.MAX_BYTES}
    return render(request, "lti/instructor.html", context, status=status)


def _lesson_of(request: HttpRequest, public_id: uuid.UUID, lesson_id: uuid.UUID) -> tuple[LtiContext, Lesson]:
    context = _context_or_refuse(request, public_id)
    lesson = instructor.context_lesson_get(context=context, public_id=lesson_id)
    if lesson is None:
        raise LtiNotFound("no such lesson in this course")
    return context, lesson


def _after_write(request: HttpRequest, context: LtiContext, write: Callable[[], str]) -> HttpResponse:
    """Run the write; back to the page with its message, or the page with the reason (400)."""
    try:
        done = write()
    except course_services.LessonEditInvalid as invalid:
        return _render(request, instructor.instructor_page(context=context), error=str(invalid), status=400)
    if done:
        messages.success(request, done)
    return redirect(instructor_url(public_id=context.public_id))


@frameable
@never_cache
@require_POST
def lesson_details(request: HttpRequest, public_id: uuid.UUID, lesson_id: uuid.UUID) -> HttpResponse:
    try:
        context, lesson = _lesson_of(request, public_id, lesson_id)
    except LtiError as error:
        return _error(request, error)

    def write() -> str:
        title, description = request.POST.get("title", ""), request.POST.get("description", "")
        saved = course_services.lesson_details_update(lesson=lesson, title=title, description=description)
        return f"Saved “{saved.title}”."

    return _after_write(request, context, write)


@frameable
@never_cache
@require_POST
def lesson_move(request: HttpRequest, public_id: uuid.UUID, lesson_id: uuid.UUID) -> HttpResponse:
    try:
        context, lesson = _lesson_of(request, public_id, lesson_id)
    except LtiError as error:
        return _error(request, error)

    def write() -> str:
        offset = {"up": -1, "down": 1}.get(request.POST.get("direction", ""))
        if offset is None:
            raise course_services.LessonEditInvalid("move a lesson up or down")
        course_services.lesson_move(lesson=lesson, offset=offset)
        return ""

    return _after_write(request, context, write)


@frameable
@never_cache
@require_POST
def lesson_captions(request: HttpRequest, public_id: uuid.UUID, lesson_id: uuid.UUID) -> HttpResponse:
    try:
        context, lesson = _lesson_of(request, public_id, lesson_id)
    except LtiError as error:
        return _error(request, error)

    def write() -> str:
        upload = request.FILES.get("file")
        if upload is None:
            raise course_services.LessonEditInvalid("choose a caption file (SRT or WebVTT)")
        course_services.lesson_caption_save(
            lesson=lesson,
            language=request.POST.get("language", ""),
            label=request.POST.get("label", ""),
            data=upload.read(text_tracks.MAX_BYTES + 1),
            source_name=upload.name or "captions",
        )
        return f"Captions saved for “{lesson.title}”: the video gets them in a new version, without re-encoding."

    return _after_write(request, context, write)


@frameable
@never_cache
@require_POST
def lesson_delete(request: HttpRequest, public_id: uuid.UUID, lesson_id: uuid.UUID) -> HttpResponse:
    """Delete a lesson of this course and its video (a failed or abandoned upload from the picker, say).
    The LMS's links to it then say it no longer exists."""
    try:
        context, lesson = _lesson_of(request, public_id, lesson_id)
    except LtiError as error:
        return _error(request, error)

    def write() -> str:
        course_services.lesson_delete(lesson=lesson)
        return f"Deleted “{lesson.title}” and its video."

    return _after_write(request, context, write)


@frameable
@never_cache
@require_POST
def score_resend(request: HttpRequest, public_id: uuid.UUID, score_id: int) -> HttpResponse:
    """Send a score the platform refused (or that failed) again, once."""
    try:
        context = _context_or_refuse(request, public_id)
        score = instructor.context_score_get(context=context, score_id=score_id)
        if score is None:
            raise LtiNotFound("no such score in this course")
    except LtiError as error:
        return _error(request, error)
    if gradebook.score_resend(score_id=score.pk):
        messages.success(request, "The score is being sent again.")
    else:
        messages.info(request, "That score has already reached the gradebook.")
    return redirect(instructor_url(public_id=context.public_id))
