"""Cookies inside an LMS iframe, and only there.

The site's session and CSRF cookies are SameSite=Lax. Inside an LMS iframe our site is third-party,
and a Lax cookie is neither stored nor sent there; so when LTI_IFRAME_COOKIES is on, a response to a
navigation inside an iframe (Sec-Fetch-Dest: iframe; without Fetch metadata, any LTI page but the
first-party handoff) sends those two cookies as SameSite=None; Secure instead. With
LTI_PARTITIONED_COOKIES they are also Partitioned (CHIPS): stored in a jar keyed by the LMS's site,
so they survive third-party-cookie blocking and are never sent when the site is visited directly.
Every other response, first-party pages included, keeps Lax.

Python 3.11's cookie module knows no Partitioned attribute; the SameSite value is the last attribute
written before the flags, so "None; Partitioned" renders as the two attributes."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

FIRST_PARTY_LTI_PATHS = ("/lti/handoff/", "/lti/link/", "/lti/unlink/")


def in_lms_iframe(request: HttpRequest) -> bool:
    """Whether this request is a page load inside a frame (an LMS's iframe: our other pages refuse
    framing). Without Fetch metadata (older browsers), LTI pages count, except the handoff."""
    dest = request.headers.get("Sec-Fetch-Dest")
    if dest is not None:
        return dest == "iframe"
    return request.path.startswith("/lti/") and not request.path.startswith(FIRST_PARTY_LTI_PATHS)


class PartitionedCookieMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if settings.LTI_IFRAME_COOKIES and in_lms_iframe(request):
            for name in (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME):
                morsel = response.cookies.get(name)
                if morsel is not None:
                    morsel["samesite"], morsel["secure"] = "None", True
        if settings.LTI_PARTITIONED_COOKIES:
            for morsel in response.cookies.values():
                if str(morsel["samesite"]).lower() == "none" and morsel["secure"]:
                    morsel["samesite"] = "None; Partitioned"
        return response
