"""courses/hooks.py: what courses tells the apps above it, and when."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, User
from pytest_django import DjangoCaptureOnCommitCallbacks

from courses import hooks, selectors, services
from courses.models import Course, Lesson, LessonProgress
from lti import ags
from media_pipeline.models import MediaAsset
from tests.progress_reports import graded_link, view_token

T0 = 1_900_000_000


@pytest.fixture
def heard(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """A listener of its own in place of lti's: what it was told, in order."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(hooks, "progress_recorded_listeners", [])
    hooks.progress_recorded_listen(lambda **kwargs: calls.append(kwargs))
    yield calls


def _lesson_and_learner() -> tuple[Lesson, User]:
    course = Course.objects.create(slug="optics", title="Optics", published=True)
    asset = MediaAsset.objects.create(
        key_prefix="lessons/hooks", status="ready", published_version=1, building_version=1, duration_seconds=10.0
    )
    return Lesson.objects.create(course=course, title="Lenses", asset=asset), User.objects.create_user("learner")


def _report(lesson: Lesson, user: User, ranges: list[list[float]], *, token: str, at: float) -> LessonProgress:
    now = datetime.fromtimestamp(T0 + at, tz=UTC)
    return services.lesson_progress_record(user=user, lesson=lesson, ranges=ranges, view_token=token, now=now)


def test_lti_listens_to_progress_from_its_app_config() -> None:
    assert ags.scores_update in hooks.progress_recorded_listeners


@pytest.mark.django_db
def test_listeners_hear_of_progress_only_once_it_commits(
    heard: list[dict[str, Any]], django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    lesson, learner = _lesson_and_learner()
    token = view_token(user=learner, lesson=lesson, issued_at=T0)
    with django_capture_on_commit_callbacks(execute=True):
        _report(lesson, learner, [[0, 4.0]], token=token, at=2)
        assert heard == []  # not before the commit
    assert heard == [{"user": learner, "lesson": lesson, "share": 0.4, "completed": False}]
    with django_capture_on_commit_callbacks(execute=True):
        _report(lesson, learner, [[0, 10.0]], token=token, at=60)
    assert heard[1] == {"user": learner, "lesson": lesson, "share": 1.0, "completed": True}


@pytest.mark.django_db
def test_a_refused_report_tells_nobody(
    heard: list[dict[str, Any]], django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    lesson, learner = _lesson_and_learner()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(services.ProgressRefused):
        _report(lesson, learner, [[0, 4.0]], token="v1.forged", at=2)
    assert (heard, LessonProgress.objects.count()) == ([], 0)


@pytest.mark.django_db
def test_a_failing_listener_is_logged_and_the_others_are_still_told(
    heard: list[dict[str, Any]],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(**kwargs: Any) -> None:
        raise RuntimeError("gradebook down")

    hooks.progress_recorded_listeners.insert(0, broken)
    lesson, learner = _lesson_and_learner()
    token = view_token(user=learner, lesson=lesson, issued_at=T0)
    with caplog.at_level(logging.ERROR, logger="courses.hooks"), django_capture_on_commit_callbacks(execute=True):
        record = _report(lesson, learner, [[0, 4.0]], token=token, at=2)
    assert len(heard) == 1
    assert LessonProgress.objects.get().seconds_watched == record.seconds_watched == 4
    assert [r.exc_info[1].args for r in caplog.records if r.exc_info] == [("gradebook down",)]


def test_registering_a_listener_twice_keeps_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hooks, "progress_recorded_listeners", [])

    def listener(**kwargs: Any) -> None:
        return None

    hooks.progress_recorded_listen(listener)
    hooks.progress_recorded_listen(listener)
    assert hooks.progress_recorded_listeners == [listener]


@pytest.mark.django_db
def test_without_a_launch_source_nobody_launched_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    lesson, learner = _lesson_and_learner()
    graded_link(user=learner, lesson=lesson)  # a launch lti knows of
    assert selectors.user_launched_lesson_from_lms(user=learner, lesson=lesson) is True
    fetched = selectors.lesson_get(public_id=lesson.public_id, viewer=learner)
    assert fetched is not None and selectors.viewer_fact(lesson=fetched, user=learner, name="viewer_launched")

    monkeypatch.setattr(hooks, "_launch_source", [])
    assert selectors.user_launched_lesson_from_lms(user=learner, lesson=lesson) is False
    fetched = selectors.lesson_get(public_id=lesson.public_id, viewer=learner)
    assert fetched is not None
    assert selectors.viewer_fact(lesson=fetched, user=learner, name="viewer_launched") is False
    assert selectors.user_launched_lesson_from_lms(user=AnonymousUser(), lesson=lesson) is False


def test_account_sections_come_in_order_once_each_and_empty_ones_are_left_out(
    monkeypatch: pytest.MonkeyPatch, rf: Any
) -> None:
    monkeypatch.setattr(hooks, "account_sections", [])

    def first(*, request: Any) -> str:
        return "<p>first</p>"

    def empty(*, request: Any) -> str:
        return ""

    hooks.account_section_register(first)
    hooks.account_section_register(empty)
    hooks.account_section_register(first)
    assert hooks.account_sections_render(request=rf.get("/account/")) == ["<p>first</p>"]


def test_lti_registers_its_account_section() -> None:
    from lti import account

    assert account.account_section in hooks.account_sections
