"""LTI endpoints. Thin: each view checks its input, calls one service and renders the answer.

Pages an LMS shows in its iframe are frameable only by registered platforms (`frameable`)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any, Literal, TypedDict
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import login as auth_login
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.api_errors import status_for
from core.auth import request_user
from courses import entitlement
from courses import selectors as course_selectors
from lti import (
    account,
    claims,
    deep_linking,
    handoff,
    instructor,
    launch,
    lms_uploads,
    messages,
    picking,
    platforms,
    registration,
)
from lti.errors import LtiError, LtiRefused
from lti.login import lti_login_start, state_cookie_name
from lti.selectors import platform_frame_origins
from playback.access import Verdict, can_watch

DEEP_LINK_SESSION_KEY = "lti_deep_link"
INSTRUCTOR_SESSION_KEY = "lti_instructor_context"  # the picker's link to the instructor page
DEEP_LINK_SELECTION_KEY = "lti_deep_link_selection"  # lesson ids picked so far, across the picker's pages
# How often the processing page of a lesson still being prepared asks whether it is ready.
PROCESSING_POLL_SECONDS = 3
LOGIN_PARAMS = ("iss", "login_hint", "target_link_uri", "lti_message_hint", "client_id", "lti_deployment_id")


def frameable(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Let registered platforms (and only them) frame this view: CSP frame-ancestors, no X-Frame-Options."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        ancestors = " ".join(["'self'", *platform_frame_origins()])
        response["Content-Security-Policy"] = f"frame-ancestors {ancestors}"
        return response

    return xframe_options_exempt(wrapped)


def _error(request: HttpRequest, error: LtiError) -> HttpResponse:
    return render(request, "lti/error.html", {"reason": error.reason}, status=status_for(error))


# The state cookie must reach /lti/launch/ in a cross-site form post: SameSite=None, which browsers
# accept only with Secure (http://localhost and 127.0.0.1 count as secure contexts too). Not HttpOnly:
# the login page's script checks whether it stuck before choosing the postMessage-storage path.
class CookieOptions(TypedDict):
    secure: bool
    samesite: Literal["Lax", "Strict", "None"]
    httponly: bool
    path: str


STATE_COOKIE: CookieOptions = {"secure": True, "samesite": "None", "httponly": False, "path": "/lti/"}


@csrf_exempt
@never_cache
@frameable
@require_http_methods(["GET", "POST"])
def login(request: HttpRequest) -> HttpResponse:
    """OIDC third-party login initiation (GET or POST from the platform)."""
    params = request.POST if request.method == "POST" else request.GET
    try:
        start = lti_login_start(
            issuer=params.get("iss", ""),
            login_hint=params.get("login_hint", ""),
            target_link_uri=params.get("target_link_uri", ""),
            client_id=params.get("client_id", ""),
            lti_message_hint=params.get("lti_message_hint", ""),
            lti_deployment_id=params.get("lti_deployment_id", ""),
            lti_storage_target=params.get("lti_storage_target", ""),
        )
    except LtiError as error:
        return _error(request, error)
    framed = request.headers.get("Sec-Fetch-Dest") == "iframe"
    if start.storage_target or framed:
        # In an iframe the state cookie may be refused: a page checks, and falls back to the platform's
        # postMessage storage or to a new window where the cookie is first-party.
        new_window = {name: params[name] for name in LOGIN_PARAMS if params.get(name)}
        config = {
            "redirectUrl": start.redirect_url,
            "state": start.state,
            "nonce": start.nonce,
            "cookieName": state_cookie_name(start.state),
            "storageTarget": start.storage_target,
            "platformOrigin": messages.origin_of(start.platform.auth_login_url),
            "newWindowUrl": f"{settings.SITE_URL}{reverse('lti:login')}?{urlencode(new_window)}",
        }
        response = render(request, "lti/login.html", {"config": config})
    else:
        response = redirect(start.redirect_url)
    response.set_cookie(
        state_cookie_name(start.state),
        start.state,
        max_age=settings.LTI_LOGIN_STATE_SECONDS,
        **STATE_COOKIE,
    )
    return response


def posted_by_our_page(request: HttpRequest) -> bool:
    """Whether the browser says this POST came from a page of this site (Fetch metadata, else Origin).

    A browser sets both headers itself; another site cannot make a victim's browser send them with our
    origin. A request carrying neither (not a current browser) does not count as ours."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site == "same-origin"
    origin = request.headers.get("Origin", "")
    return bool(origin) and origin.lower() in {
        messages.origin_of(settings.SITE_URL),
        messages.origin_of(request.build_absolute_uri("/")),
    }


@csrf_exempt
@never_cache
@frameable
@require_POST
def launch_view(request: HttpRequest) -> HttpResponse:
    """The platform form-posts the signed id_token here."""
    id_token, state = request.POST.get("id_token", ""), request.POST.get("state", "")
    storage_state = request.POST.get("lti_storage_state")
    try:
        if storage_state is not None and not posted_by_our_page(request):
            # The storage check's verdict is only worth something when our own launch-check page, which
            # read the state from the platform's storage, posts it. Anything else could be a login
            # CSRF: another site posting an id_token and state that it obtained in its own browser.
            raise LtiRefused(
                "this launch did not come from the tool's own check page; open it again from the course",
            )
        validated = launch.lti_launch_validate(
            id_token=id_token,
            state=state,
            cookie_state=request.COOKIES.get(state_cookie_name(state)) if state else None,
            storage_state=storage_state,
        )
        if validated.needs_storage_check:
            config = {
                "state": state,
                "storageTarget": validated.login_state.storage_target,
                "platformOrigin": messages.origin_of(validated.platform.auth_login_url),
            }
            return render(request, "lti/launch_check.html", {"config": config, "id_token": id_token, "state": state})
        result = launch.lti_launch_complete(validated=validated)
    except LtiError as error:
        return _error(request, error)
    auth_login(request, result.user, backend="django.contrib.auth.backends.ModelBackend")
    if result.identity is not None:  # the pages after the launch offer linking, or say it is linked
        request.session[account.SESSION_IDENTITY] = result.identity.pk
        if result.linked_by_email:
            request.session[account.SESSION_LINKED_BY_EMAIL] = result.identity.pk
    response: HttpResponse
    if result.message.message_type == claims.DEEP_LINKING_REQUEST:
        try:
            request.session[DEEP_LINK_SESSION_KEY] = deep_linking.deep_link_request_from_launch(
                result=result
            ).to_session()
            request.session.pop(DEEP_LINK_SELECTION_KEY, None)  # a new request starts with nothing picked
        except LtiError as error:
            return _error(request, error)
        request.session[INSTRUCTOR_SESSION_KEY] = str(instructor.instructor_context_of_launch(result=result) or "")
        response = redirect("lti:deep-link")
    elif result.lesson is None:
        response = render(
            request, "lti/no_lesson.html", {"educator": result.educator, "instructor_url": _instructor_link(result)}
        )
    else:
        token = handoff.handoff_token_create(user=result.user, lesson=result.lesson)
        response = redirect(f"{reverse('lti:lesson', args=[result.lesson.public_id])}?{urlencode({'handoff': token})}")
    response.delete_cookie(state_cookie_name(state), path="/lti/", samesite="None")
    return response


def _instructor_link(result: launch.LaunchResult) -> str:
    """The instructor page of the launch's context, with a handoff token: the page this response renders
    may have lost our session cookie in the iframe (then the page continues in a new window)."""
    public_id = instructor.instructor_context_of_launch(result=result)
    if public_id is None:
        return ""
    token = handoff.handoff_token_create(user=result.user, context_public_id=str(public_id))
    return f"{reverse('lti:instructor', args=[public_id])}?{urlencode({'handoff': token})}"


@frameable
@never_cache
@require_GET
def lesson(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """The lesson player sized for an LMS iframe."""
    found = course_selectors.lesson_get(public_id=public_id, viewer=request.user)
    if found is None:
        raise Http404("No such lesson")
    if not request.user.is_authenticated:
        token = request.GET.get("handoff", "")
        if token and handoff.handoff_token_peek(token=token) == str(public_id):
            # The iframe did not keep our session cookie: carry on in a new window. Nothing about the
            # lesson is shown here: whoever holds the link is not known yet.
            url = f"{reverse('lti:handoff')}?{urlencode({'token': token})}"
            return render(request, "lti/new_window.html", {"url": url}, status=200)
        return _error(request, LtiRefused("open this lesson from your course in the LMS"))
    if not entitlement.lesson_entitled(user=request.user, lesson=found):
        # A draft, or a course this user has no place in: not even the title (playback/access.py decides).
        return _error(request, LtiRefused("this lesson is not available to you"))
    if can_watch(user=request.user, lesson=found).verdict is Verdict.NOT_READY:
        # Entitled, but its video does not play yet (a picker upload is linked at once): the title, what
        # is happening (or why it failed, to its educators), and a page that turns into the player when
        # the status endpoint says it is ready.
        status_url = reverse("lti:lesson-status", args=[found.public_id])
        context = {
            "lesson": found,
            "status_url": status_url,
            "poll_seconds": PROCESSING_POLL_SECONDS,
            "notice": lms_uploads.lesson_processing_notice(user=request.user, lesson=found),
            "instructor_context": instructor.instructor_context_of_lesson(user=request.user, lesson=found),
        }
        return render(request, "lti/processing.html", context)
    engine = request.GET.get("engine", "hls")
    context = {
        "lesson": found,
        "engine": engine if engine in ("hls", "shaka") else "hls",
        "instructor_context": instructor.instructor_context_of_lesson(user=request.user, lesson=found),
    }
    return render(request, "lti/lesson.html", context)


@never_cache
@require_http_methods(["GET", "POST"])
def handoff_view(request: HttpRequest) -> HttpResponse:
    """First-party continuation of a launch whose iframe could not keep cookies.

    GET only shows a button: a link or an image must not change who the browser is signed in as.
    The button POSTs the token back with Django's CSRF token, and only that POST signs in."""
    if request.method == "GET":
        token = request.GET.get("token", "")
        if handoff.handoff_token_peek(token=token) is None:
            return _error(request, LtiRefused("this link is not valid or has expired"))
        page = "the instructor page" if handoff.handoff_token_peek_context(token=token) else "the lesson"
        return render(request, "lti/handoff.html", {"token": token, "page": page})
    try:
        user, public_id, context_id = handoff.handoff_token_consume_target(token=request.POST.get("token", ""))
    except LtiError as error:
        return _error(request, error)
    auth_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    if context_id:
        return redirect("lti:instructor", public_id=context_id)
    return redirect("lti:lesson", public_id=public_id)


@frameable
@never_cache
@require_http_methods(["GET", "POST"])
def deep_link(request: HttpRequest) -> HttpResponse:
    """The lesson picker of a Deep Linking request, and the signed answer to the platform.

    Every button of the picker posts its one form, so what was ticked on a page is never lost: "add"
    answers the platform; search, source and page buttons keep the selection in the session and
    come back here with the source, search and page in the query string."""
    try:
        dl_request = deep_linking.DeepLinkRequest.from_session(request.session.get(DEEP_LINK_SESSION_KEY))
        if not request.user.is_authenticated:
            raise LtiRefused("open the lesson picker from your course in the LMS")
        user = request_user(request)
        if request.method == "POST":
            selection = picking.selection_update(
                selected=request.session.get(DEEP_LINK_SELECTION_KEY, []),
                shown=request.POST.getlist("shown"),
                checked=request.POST.getlist("lesson"),
                multiple=dl_request.accept_multiple,
            )
            action = request.POST.get("action", "add")
            if action == "add":
                return_url, jwt = deep_linking.deep_link_response(user=user, request=dl_request, lesson_ids=selection)
                del request.session[DEEP_LINK_SESSION_KEY]
                request.session.pop(DEEP_LINK_SELECTION_KEY, None)
                return render(request, "lti/deep_link_return.html", {"return_url": return_url, "jwt": jwt})
            return _deep_link_navigate(request, action=action, selection=selection)
        picker = deep_linking.deep_link_page(
            user=user,
            request=dl_request,
            source=request.GET.get("source"),
            query=request.GET.get("q", ""),
            page=request.GET.get("page"),
            selected=request.session.get(DEEP_LINK_SELECTION_KEY, []),
        )
    except LtiError as error:
        return _error(request, error)
    context = {
        "picker": picker,
        "multiple": dl_request.accept_multiple,
        "max_picked": deep_linking.MAX_PICKED,
        "capped": request.GET.get("capped") == "1",
        "sources": [(kind.value, label, picker.counts[kind]) for kind, label in deep_linking.SOURCE_LABELS.items()],
        "upload_url": _deep_link_upload_url() if picker.platform.lms_upload_enabled else None,
        "instructor_context": request.session.get(INSTRUCTOR_SESSION_KEY, ""),
    }
    return render(request, "lti/deep_link.html", context)


def _deep_link_navigate(request: HttpRequest, *, action: str, selection: list[str]) -> HttpResponse:
    """Keep the selection (valid ids, at most MAX_PICKED) and go to the page a picker button asked for."""
    ids = [lesson_id for lesson_id in map(picking.lesson_id_parse, selection) if lesson_id]
    request.session[DEEP_LINK_SELECTION_KEY] = ids[: deep_linking.MAX_PICKED]
    kind, _, value = action.partition(":")
    params = {"source": request.POST.get("source", ""), "q": request.POST.get("q", "").strip()}
    if kind == "source":
        params = {"source": value, "q": ""}
    elif kind == "page" and value.isdigit():
        params["page"] = value
    if len(ids) > deep_linking.MAX_PICKED:
        params["capped"] = "1"
    query = urlencode({name: param for name, param in params.items() if param})
    return redirect(f"{reverse('lti:deep-link')}?{query}" if query else reverse("lti:deep-link"))


def _deep_link_upload_url() -> str | None:
    """The picker's upload page, when this build has one (it is a separate view of lti)."""
    try:
        return reverse("lti:deep-link-upload")
    except NoReverseMatch:
        return None


@require_GET
def jwks(request: HttpRequest) -> JsonResponse:
    response = JsonResponse(platforms.tool_jwks())
    response["Cache-Control"] = "public, max-age=300"
    return response


@require_GET
def tool_config(request: HttpRequest) -> JsonResponse:
    """The tool's registration metadata, as LTI Dynamic Registration sends it."""
    body = messages.registration_request(
        site_url=settings.SITE_URL,
        title=settings.LTI_TOOL_TITLE,
        description="Video lessons with adaptive streaming; completion flows back to the gradebook.",
        scopes=messages.TOOL_SCOPES,
    )
    return JsonResponse(body, json_dumps_params={"indent": 2})


@xframe_options_exempt
@never_cache
@require_GET
def register(request: HttpRequest, token: str = "") -> HttpResponse:
    """LTI Dynamic Registration through a one-time link (lti/registration.py), opened by the LMS
    with openid_configuration and registration_token.

    While the link is usable the page may be framed by the origin of the LMS's configuration URL (the
    LMS is not registered yet); otherwise by this site only."""
    openid_configuration = request.GET.get("openid_configuration", "")
    framer = ""
    if token and registration.registration_link_usable(token=token):
        framer = messages.origin_of(openid_configuration)
    if not token:
        response = _error(request, LtiRefused(registration.LINK_INVALID))
    else:
        response = _register(request, token=token, openid_configuration=openid_configuration)
    response["Content-Security-Policy"] = f"frame-ancestors 'self' {framer}".strip()
    return response


def _register(request: HttpRequest, *, token: str, openid_configuration: str) -> HttpResponse:
    try:
        platform = registration.lti_register(
            link_token=token,
            openid_configuration=openid_configuration,
            registration_token=request.GET.get("registration_token", ""),
        )
    except LtiError as error:
        return _error(request, error)
    return render(
        request, "lti/registered.html", {"platform": platform, "message": {"subject": "org.imsglobal.lti.close"}}
    )
