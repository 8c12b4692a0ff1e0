"""The one place the REST API turns a domain error into an HTTP answer (REST_FRAMEWORK's handler).

Views call a service and let its core.errors.DomainError through; this maps the kind of error to
its status. Anything else goes to DRF's own handler (validation, authentication, throttling).
"""

from __future__ import annotations

from typing import Any

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core import errors

STATUS_OF: dict[type[errors.DomainError], int] = {
    errors.Invalid: 400,
    errors.NotAllowed: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.TooLarge: 413,
    errors.Misconfigured: 500,
    errors.UpstreamFailed: 502,
    errors.Unavailable: 503,
}


def status_for(error: errors.DomainError) -> int:
    """The HTTP status of a domain error: that of the nearest kind it is (400 when it names none)."""
    for kind in type(error).__mro__:
        if kind in STATUS_OF:
            return STATUS_OF[kind]
    return 400


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if not isinstance(exc, errors.DomainError):
        return drf_exception_handler(exc, context)
    response = Response({"detail": str(exc)}, status=status_for(exc), headers={"Cache-Control": "no-store"})
    if isinstance(exc, errors.Unavailable):
        response["Retry-After"] = str(exc.retry_after_seconds)
    return response
