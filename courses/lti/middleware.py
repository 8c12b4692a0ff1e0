"""Mark cross-site cookies Partitioned (CHIPS), so they work inside an LMS iframe when browsers block
third-party cookies. Python 3.11's cookie module knows no Partitioned attribute; the SameSite value is
the last attribute written before the flags, so "None; Partitioned" renders as the two attributes."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


class PartitionedCookieMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if settings.LTI_PARTITIONED_COOKIES:
            for morsel in response.cookies.values():
                if str(morsel["samesite"]).lower() == "none" and morsel["secure"]:
                    morsel["samesite"] = "None; Partitioned"
        return response
