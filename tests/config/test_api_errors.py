"""One exception handler turns the domain's refusals into HTTP answers (config/api_errors.py)."""

from __future__ import annotations

import pytest
from rest_framework.exceptions import Throttled

from config.api_errors import STATUS_OF, exception_handler, status_for
from core import errors


class _NotReadyYet(errors.Conflict):
    pass


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (errors.Invalid, 400),
        (errors.NotAllowed, 403),
        (errors.NotFound, 404),
        (errors.Conflict, 409),
        (errors.TooLarge, 413),
        (errors.Misconfigured, 500),
        (errors.UpstreamFailed, 502),
        (errors.Unavailable, 503),
    ],
)
def test_each_kind_of_refusal_has_one_status_and_says_why(kind: type[errors.DomainError], status: int) -> None:
    response = exception_handler(kind("the reason, for whoever asked"), {})
    assert response is not None
    assert (response.status_code, response.data) == (status, {"detail": "the reason, for whoever asked"})
    assert response["Cache-Control"] == "no-store"


def test_every_kind_is_mapped() -> None:
    kinds = {cls for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, errors.DomainError)}
    assert kinds - {errors.DomainError} == set(STATUS_OF)


def test_an_app_error_takes_the_status_of_its_kind() -> None:
    assert status_for(_NotReadyYet("not yet")) == 409
    assert status_for(errors.DomainError("names no kind")) == 400


def test_the_statuses_of_the_apps_refusals() -> None:
    from lti import errors as lti_errors
    from media_pipeline import uploads

    assert [status_for(kind("x")) for kind in (lti_errors.LtiError, lti_errors.LtiRefused, lti_errors.LtiNotFound)] == [
        400,
        403,
        404,
    ]
    assert status_for(lti_errors.LtiConflict("x")) == 409
    assert status_for(lti_errors.PlatformAnswerUnusable("x")) == 502
    assert status_for(lti_errors.ToolMisconfigured("x")) == 500
    assert status_for(uploads.UploadError("x")) == 400
    assert status_for(uploads.QuotaExceeded("x")) == 413
    assert status_for(uploads.UploadFinished("x")) == 403


def test_unavailable_says_when_to_retry() -> None:
    response = exception_handler(errors.Unavailable("the queue is full", retry_after_seconds=30), {})
    assert response is not None and response["Retry-After"] == "30"


def test_other_errors_go_to_drf() -> None:
    response = exception_handler(Throttled(wait=7), {})
    assert response is not None and response.status_code == 429 and response["Retry-After"] == "7"
    assert exception_handler(RuntimeError("a bug"), {}) is None  # a 500, logged by Django
