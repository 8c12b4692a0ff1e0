"""The picker's "upload a new video" page and the processing page of a lesson still being prepared
(docs/adr/0033). Thin: each view checks its input, calls one service and renders the answer."""

from __future__ import annotations

import uuid

from django import forms
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.api_errors import status_for
from core import errors
from core.auth import request_user
from courses import selectors as course_selectors
from lti import lms_uploads
from lti.deep_linking import DeepLinkRequest
from lti.errors import LtiError, LtiRefused
from lti.views import DEEP_LINK_SESSION_KEY, frameable
from playback.access import Verdict, can_watch


class UploadStartForm(forms.Form):
    title = forms.CharField(max_length=200)
    description = forms.CharField(max_length=5000, required=False)
    size = forms.IntegerField(min_value=1, max_value=2**62)


def _picker_request(request: HttpRequest) -> DeepLinkRequest:
    dl_request = DeepLinkRequest.from_session(request.session.get(DEEP_LINK_SESSION_KEY))
    if not request.user.is_authenticated:
        raise LtiRefused("open the lesson picker from your course in the LMS")
    return dl_request


def _error(request: HttpRequest, error: LtiError) -> HttpResponse:
    return render(request, "lti/error.html", {"reason": error.reason}, status=status_for(error))


def _refusal(error: errors.DomainError) -> JsonResponse:
    return JsonResponse({"detail": str(error)}, status=status_for(error))


@frameable
@never_cache
@require_http_methods(["GET", "POST"])
def deep_link_upload(request: HttpRequest) -> HttpResponse:
    """GET: the upload form. POST (from its script, with the CSRF header): make the lesson, answer with
    the upload grant its upload and the Deep Linking response are made with."""
    try:
        dl_request = _picker_request(request)
        if request.method == "GET":
            lms_uploads.lms_upload_course(request=dl_request, user=request_user(request))
    except LtiError as error:
        if request.method == "POST":
            return _refusal(error)
        return _error(request, error)
    if request.method == "GET":
        config = {
            "tus": reverse("api-upload-create"),
            "chunk": settings.UPLOAD_WIDGET_CHUNK_BYTES,
            "direct": reverse("api-direct-uploads"),
            "url_seconds": settings.UPLOAD_DIRECT_URL_SECONDS,
            "hasher": static("js/lesson-upload-hasher.js"),
            "hashwasm": static("build/md5.umd.min.js"),
            "start": reverse("lti:deep-link-upload"),
        }
        return render(request, "lti/deep_link_upload.html", {"config": config})
    form = UploadStartForm(request.POST)
    if not form.is_valid():
        reasons = "; ".join(f"{field}: {' '.join(str(why) for why in whys)}" for field, whys in form.errors.items())
        return JsonResponse({"detail": reasons}, status=400)
    try:
        started = lms_uploads.lms_upload_start(
            request=dl_request,
            user=request_user(request),
            title=form.cleaned_data["title"],
            description=form.cleaned_data["description"],
            size=form.cleaned_data["size"],
        )
    except errors.DomainError as error:
        return _refusal(error)
    return JsonResponse({"lesson": str(started.lesson.public_id), "token": started.token}, status=201)


@csrf_exempt  # the upload grant in the body is the credential; a forged form cannot know it
@frameable
@never_cache
@require_POST
def deep_link_upload_done(request: HttpRequest) -> HttpResponse:
    """The upload is complete: the signed Deep Linking response naming the new lesson, posted back to
    the LMS by the page. Needs no cookie (the iframe may keep none)."""
    try:
        return_url, jwt = lms_uploads.lms_upload_finish(token=request.POST.get("token", ""))
    except LtiError as error:
        return _error(request, error)
    if request.user.is_authenticated and DEEP_LINK_SESSION_KEY in request.session:
        del request.session[DEEP_LINK_SESSION_KEY]  # this picker is used up, as after a pick
    return render(request, "lti/deep_link_return.html", {"return_url": return_url, "jwt": jwt})


@never_cache
@require_GET
def lesson_status(request: HttpRequest, public_id: uuid.UUID) -> JsonResponse:
    """{"ready", "state", "text"} for a viewer entitled to the lesson: the processing page's script turns
    into the player when ready, and otherwise shows the text (waiting for the upload, being prepared,
    or could not be prepared: why only to the course's educators). The same 404 as for no lesson, or 403,
    to anyone else."""
    found = course_selectors.lesson_get(public_id=public_id, viewer=request.user)
    if found is None:
        raise Http404("No such lesson")
    verdict = can_watch(user=request.user, lesson=found).verdict
    if verdict is Verdict.DENIED:
        return JsonResponse({"detail": "this lesson is not available to you"}, status=403)
    if verdict is Verdict.ALLOWED:
        return JsonResponse({"ready": True, "state": "ready", "text": ""})
    notice = lms_uploads.lesson_processing_notice(user=request.user, lesson=found)
    return JsonResponse({"ready": False, "state": notice.state, "text": notice.text})
