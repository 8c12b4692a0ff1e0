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


def test_unavailable_says_when_to_retry() -> None:
    response = exception_handler(errors.Unavailable("the queue is full", retry_after_seconds=30), {})
    assert response is not None and response["Retry-After"] == "30"


def test_other_errors_go_to_drf() -> None:
    response = exception_handler(Throttled(wait=7), {})
    assert response is not None and response.status_code == 429 and response["Retry-After"] == "7"
    assert exception_handler(RuntimeError("a bug"), {}) is None  # a 500, logged by Django
