"""lesson_progress_record with the clock in the test's hands: what the server credits, and when."""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User
from django.db import connection
from pytest_django import DjangoCaptureOnCommitCallbacks

from courses import progress, services
from courses.models import Course, Lesson, LessonProgress
from lti.models import LtiScore
from media_pipeline.models import MediaAsset
from tests.progress_reports import graded_link, view_token

T0 = 1_900_000_000  # when the first playback session was issued (Unix seconds)
RATE, SLACK = progress.MAX_PLAYBACK_RATE, progress.CREDIT_SLACK_SECONDS


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(T0 + seconds, tz=UTC)


def _lesson_and_learner() -> tuple[Lesson, User]:
    course = Course.objects.create(slug="optics", title="Optics", published=True)
    asset = MediaAsset.objects.create(
        key_prefix="lessons/credit", status="ready", published_version=1, building_version=1, duration_seconds=120.0
    )
    lesson = Lesson.objects.create(course=course, title="Lenses", asset=asset)
    return lesson, User.objects.create_user("learner")


def _report(lesson: Lesson, user: User, ranges: list[list[float]], *, token: str, at: float) -> LessonProgress:
    return services.lesson_progress_record(user=user, lesson=lesson, ranges=ranges, view_token=token, now=_at(at))


@pytest.mark.django_db
def test_the_whole_lesson_one_second_into_the_session_earns_seconds_not_completion(
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    lesson, learner = _lesson_and_learner()
    graded_link(user=learner, lesson=lesson)
    token = view_token(user=learner, lesson=lesson, issued_at=T0)
    with django_capture_on_commit_callbacks() as told:
        record = _report(lesson, learner, [[0, 120]], token=token, at=1)
    assert len(told) == 1  # once committed, the progress hook tells the gradebook (lti)
    told[0]()
    assert record.seconds_watched == (1 + SLACK) * RATE == 6
    assert record.completed_at is None
    assert LtiScore.objects.get().activity_progress != "Completed"
    # Claiming it again at once earns nothing more: the slack was spent.
    assert _report(lesson, learner, [[0, 120]], token=token, at=1).seconds_watched == 6


@pytest.mark.django_db
@pytest.mark.parametrize("speed", [1.0, 1.5, 2.0])
def test_honest_playing_completes_with_every_second_credited(speed: float) -> None:
    lesson, learner = _lesson_and_learner()
    token = view_token(user=learner, lesson=lesson, issued_at=T0)
    # The player loads for a second, then plays and reports every 15 s (video.played grows).
    played_until = 0.0
    for wall in range(16, 400, 15):
        played_until = min(120.0, (wall - 1) * speed)
        record = _report(lesson, learner, [[0, played_until]], token=token, at=wall)
        assert record.seconds_watched == math.floor(played_until + 0.5)  # credit keeps up with honest play
        if played_until == 120.0:
            break
    assert (record.seconds_watched, record.completed_at is not None) == (120, True)


@pytest.mark.django_db
def test_a_tab_that_reports_only_at_the_end_is_credited_in_full() -> None:
    lesson, learner = _lesson_and_learner()
    token = view_token(user=learner, lesson=lesson, issued_at=T0)
    assert _report(lesson, learner, [[0, 2]], token=token, at=2).seconds_watched == 2
    # Played at 2x in a background tab whose timers were throttled: the next report comes at the end.
    assert _report(lesson, learner, [[0, 120]], token=token, at=61).seconds_watched == 120


@pytest.mark.django_db
def test_ten_sessions_at_once_earn_no_more_than_one() -> None:
    lesson, learner = _lesson_and_learner()
    tokens = [view_token(user=learner, lesson=lesson, issued_at=T0) for _ in range(10)]
    for tab, token in enumerate(tokens):  # each tab claims its own twelfth of the lesson 10 s in
        record = _report(lesson, learner, [[tab * 12, tab * 12 + 12]], token=token, at=10)
    assert record.seconds_watched == (10 + SLACK) * RATE == 24
    # Twenty seconds later, all ten again: twenty seconds' worth more at the fastest rate, in all.
    for tab, token in enumerate(tokens):
        record = _report(lesson, learner, [[tab * 12, tab * 12 + 12]], token=token, at=30)
    assert record.seconds_watched == 24 + 20 * RATE == 64


@pytest.mark.django_db
def test_an_old_token_brings_back_no_time_and_a_new_session_starts_from_its_issue() -> None:
    lesson, learner = _lesson_and_learner()
    first = view_token(user=learner, lesson=lesson, issued_at=T0)
    assert _report(lesson, learner, [[0, 10]], token=first, at=20).seconds_watched == 10
    # An hour later, a new session: the hour between earns nothing, only time since it was issued.
    second = view_token(user=learner, lesson=lesson, issued_at=T0 + 3600)
    assert _report(lesson, learner, [[0, 120]], token=second, at=3601).seconds_watched == 10 + 6
    # The first token, still within its age, brings back neither the hour nor the unused first minute.
    assert _report(lesson, learner, [[0, 120]], token=first, at=3601).seconds_watched == 16
    assert LessonProgress.objects.get().credit_clock == _at(3603)


@pytest.mark.django_db(transaction=True)
def test_concurrent_reports_take_turns_under_the_row_lock() -> None:
    lesson, learner = _lesson_and_learner()
    tokens = [view_token(user=learner, lesson=lesson, issued_at=T0) for _ in range(8)]
    start = threading.Barrier(len(tokens))
    credited: dict[int, int] = {}
    errors: list[BaseException] = []

    def tab(index: int) -> None:
        try:
            start.wait(timeout=30)
            own = range(index * 15, index * 15 + 15)
            record = _report(lesson, learner, [[own.start, own.stop]], token=tokens[index], at=10)
            # What this report saw credited of its own claim, as its transaction committed it.
            credited[index] = sum(progress.bitmap_has(bytes(record.watched), s) for s in own)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=tab, args=(i,)) for i in range(len(tokens))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    # One allowance between all of them: without the lock each would have seen an untouched clock.
    assert sum(credited.values()) == (10 + SLACK) * RATE == 24
    record = LessonProgress.objects.get()
    assert record.seconds_watched == 24
    assert record.credit_clock == _at(10 + SLACK)
