"""The account-linking pages: /lti/link/ (a first-party window opened from a launch) and unlinking.

Thin: each checks its input and calls one service of lti/linking.py. Never framed (the site's default
X-Frame-Options: DENY): the iframe must never see, or be able to click, the site's own sign-in."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import authenticate
from django.contrib.auth import login as auth_login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from config.api_errors import status_for
from core.auth import request_user
from lti import linking
from lti.errors import LtiError, LtiRefused

OPENED_ELSEWHERE = (
    'open this page with the "Link to your account" button of the tool in your LMS; a link to it '
    "that someone sent you must not be used"
)


def _opened_from_our_page(request: HttpRequest) -> bool | None:
    """True when the browser says our own page opened this one (the tool's page in the LMS), False when
    another site, an email or a typed address did, None when the browser sends no Fetch metadata."""
    site = request.headers.get("Sec-Fetch-Site")
    return None if site is None else site == "same-origin"


def _page(
    request: HttpRequest, *, token: str, link: linking.LinkRequest, error: str = "", status: int = 200
) -> HttpResponse:
    user = request.user
    session_target = None
    if isinstance(user, User) and linking.link_target_refusal(user) is None:
        session_target = user
    placeholder = link.identity.user
    context = {
        "token": token,
        "platform_name": link.platform_name,
        "lms_name": placeholder.get_full_name(),
        "lms_email": placeholder.email,
        # Confirming with the session is offered only when our own page opened this one: a link mailed
        # by someone else (their LMS identity) must not be one click from landing in this account.
        "session_target": session_target if _opened_from_our_page(request) else None,
        "error": error,
    }
    response = render(request, "lti/link.html", context, status=status)
    # The URL holds the token: no other site learns it (no-referrer would make the form post Origin: null).
    response["Referrer-Policy"] = "same-origin"
    return response


def _refused(request: HttpRequest, error: LtiError, *, heading: str = "The accounts were not linked") -> HttpResponse:
    context = {"reason": error.reason, "heading": heading}
    return render(request, "lti/link_refused.html", context, status=status_for(error))


@never_cache
@require_http_methods(["GET", "POST"])
def link(request: HttpRequest) -> HttpResponse:
    """GET shows who is being linked and how to prove the target account; only the POST links."""
    token = (request.POST if request.method == "POST" else request.GET).get("token", "")
    if _opened_from_our_page(request) is False:  # another site, a mailed link (a POST: CSRF refuses it too)
        return _refused(request, LtiRefused(OPENED_ELSEWHERE))
    try:
        pending = linking.link_request_read(token=token)
        if request.method == "GET":
            return _page(request, token=token, link=pending)
        method = request.POST.get("method", "")
        if method == linking.METHOD_SESSION:
            refusal = _link_by_session(request, token=token)
        elif method == linking.METHOD_PASSWORD:
            refusal = _link_by_password(request, token=token, pending=pending)
        else:
            raise LtiRefused("choose how to prove the account: your session or your password")
    except LtiError as error:
        return _refused(request, error)
    if refusal is not None:
        return refusal
    messages.success(
        request,
        f"Linked: every launch from {pending.platform_name} as this LMS user now lands in this account. "
        "Go back to the LMS and open the tool again. You can unlink it here at any time.",
    )
    return redirect("courses:account")


def _link_by_session(request: HttpRequest, *, token: str) -> HttpResponse | None:
    target = request.user
    if not _opened_from_our_page(request):  # offered only then (_page); without Fetch metadata, never
        raise LtiRefused(OPENED_ELSEWHERE)
    if not isinstance(target, User):
        raise LtiRefused("sign in to this site first, or use your username and password")
    linking.identity_link(token=token, target=target, method=linking.METHOD_SESSION)
    return None


def _link_by_password(request: HttpRequest, *, token: str, pending: linking.LinkRequest) -> HttpResponse | None:
    """Link to the account whose password was given, and sign this first-party window in to it; a wrong
    password (or too many of them) answers with the form again, and nothing changes."""
    username, identity_id = request.POST.get("username", ""), pending.identity.pk
    if linking.attempts_exhausted(username=username, identity_id=identity_id):
        error = "Too many wrong passwords; wait a quarter of an hour and try again."
        return _page(request, token=token, link=pending, error=error, status=429)
    found = authenticate(request, username=username, password=request.POST.get("password", ""))
    if not isinstance(found, User):  # inactive accounts too: Django's backend lets none in
        linking.attempt_failed(username=username, identity_id=identity_id)
        return _page(request, token=token, link=pending, error="The username or password is not right.", status=400)
    linking.identity_link(token=token, target=found, method=linking.METHOD_PASSWORD)
    linking.attempts_forget(username=username, identity_id=identity_id)
    auth_login(request, found, backend="django.contrib.auth.backends.ModelBackend")
    return None


@require_POST
@login_required
def unlink(request: HttpRequest, identity_id: int) -> HttpResponse:
    try:
        identity = linking.identity_unlink(identity_id=identity_id, owner=request_user(request))
    except LtiError as error:
        return _refused(request, error, heading="Nothing was unlinked")
    messages.success(
        request,
        f"Unlinked: launches from {linking.platform_name_of(identity)} as that LMS user no longer land in "
        "this account.",
    )
    return redirect("courses:account")
