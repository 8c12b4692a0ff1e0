"""Assignment and Grade Services: watched seconds become scores that a real Dramatiq worker posts
to the emulator's line item, with a client-credentials token it gets by a signed JWT assertion."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from dramatiq import Worker

from courses.models import Lesson, LessonProgress
from lti import ags
from lti.models import LtiContext, LtiScore
from media_pipeline.models import MediaAsset
from tests.lti.conftest import full_launch
from tests.lti.platform_emulator import SCORE_TYPE, PlatformEmulator
from tests.progress_reports import view_token

pytestmark = pytest.mark.django_db(transaction=True)


def _wait(condition: Callable[[], bool], *, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def _learner_in_graded_link(emulator: PlatformEmulator, *, threshold: int = 90) -> tuple[Client, Lesson]:
    assert full_launch(Client(), emulator, user="teacher-1", launch="first").status_code == 200
    course = LtiContext.objects.get().course
    asset = MediaAsset.objects.create(
        key_prefix="lessons/ags", status="ready", published_version=1, building_version=1, duration_seconds=6.0
    )
    lesson = Lesson.objects.create(course=course, title="Lenses", asset=asset, completion_threshold=threshold)
    emulator.launches["graded"] = {
        "custom": {"lesson": str(lesson.public_id)},
        "resource_link": {"id": "graded-1", "title": "Lenses"},
        "lineitem": emulator.lineitem_url("li-7"),
    }
    learner = Client()
    assert full_launch(learner, emulator, user="learner-1", launch="graded").status_code == 302
    return learner, lesson


def _progress(client: Client, lesson: Lesson, ranges: list[list[float]]) -> dict[str, Any]:
    # From a viewing that began a minute ago: time enough, at any speed, to have played the 6 s lesson.
    user = User.objects.get(pk=client.session["_auth_user_id"])
    body = {"ranges": ranges, "view_token": view_token(user=user, lesson=lesson, ago=60)}
    response = client.post(f"/api/v1/lessons/{lesson.public_id}/progress/", body, content_type="application/json")
    assert response.status_code == 200, response.content
    return response.json()


def test_progress_then_completion_are_posted_once_each(
    live_emulator: PlatformEmulator, dramatiq_worker: Worker
) -> None:
    emulator = live_emulator
    learner, lesson = _learner_in_graded_link(emulator)

    # Seeking ahead: 0-1 s and 5-6 s played, 2 of 6 seconds count.
    assert _progress(learner, lesson, [[0, 1.0], [5.0, 6.0]]) == {"seconds_watched": 2, "completed": False}
    _wait(lambda: len(emulator.recorded.scores) == 1)
    first = emulator.recorded.scores[0]
    assert first["path"] == "/lineitems/li-7/scores"
    assert (first["userId"], first["scoreGiven"], first["scoreMaximum"]) == ("learner-sub-1", 30.0, 100)
    assert (first["activityProgress"], first["gradingProgress"]) == ("InProgress", "Pending")
    assert datetime.fromisoformat(first["timestamp"].replace("Z", "+00:00")).tzinfo is not None
    assert emulator.recorded.score_headers[0]["Content-Type"] == SCORE_TYPE

    # Playing on to the end: completion, full marks.
    assert _progress(learner, lesson, [[0, 6.0]]) == {"seconds_watched": 6, "completed": True}
    _wait(lambda: len(emulator.recorded.scores) == 2)
    second = emulator.recorded.scores[1]
    assert (second["scoreGiven"], second["activityProgress"], second["gradingProgress"]) == (
        100,
        "Completed",
        "FullyGraded",
    )

    # Watching again changes nothing: no score is posted twice, completion is never downgraded.
    assert _progress(learner, lesson, [[0, 6.0]]) == {"seconds_watched": 6, "completed": True}
    assert _progress(learner, lesson, [[0, 1.0]]) == {"seconds_watched": 6, "completed": True}
    score = LtiScore.objects.get()
    assert ags.ags_score_post(score_id=score.pk) is False
    time.sleep(1.5)
    assert len(emulator.recorded.scores) == 2
    assert (score.version, score.posted_version, score.last_error) == (2, 2, "")
    # One access token for both posts (cached until it expires), obtained with a signed client assertion;
    # the other one read the named column for its scoreMaximum, once (li-7 is not there: 100 is kept).
    lineitem_token, token_request = emulator.recorded.token_requests
    assert lineitem_token["scope"] == "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
    assert [read["path"] for read in emulator.recorded.lineitem_reads] == ["/lineitems/li-7"]
    assert token_request["grant_type"] == "client_credentials"
    assert token_request["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert token_request["scope"] == "https://purl.imsglobal.org/spec/lti-ags/scope/score"


def test_a_platform_that_fails_first_gets_the_score_once_it_recovers(
    live_emulator: PlatformEmulator, dramatiq_worker: Worker
) -> None:
    emulator = live_emulator
    learner, lesson = _learner_in_graded_link(emulator, threshold=50)
    emulator.fail_scores = 2  # two 500s, then it works
    assert _progress(learner, lesson, [[0, 3.2]]) == {"seconds_watched": 3, "completed": True}
    _wait(lambda: len(emulator.recorded.scores) == 1, timeout=45)
    time.sleep(1.0)
    assert len(emulator.recorded.scores) == 1
    assert emulator.recorded.scores[0]["activityProgress"] == "Completed"
    score = LtiScore.objects.get()
    assert (score.attempts, score.posted_version, score.version, score.last_error) == (2, 1, 1, "")
    assert emulator.fail_scores == 0


def test_a_claimed_version_is_not_posted_by_a_second_worker(live_emulator: PlatformEmulator) -> None:
    emulator = live_emulator
    learner, lesson = _learner_in_graded_link(emulator)
    _progress(learner, lesson, [[0, 6.0]])  # no worker running: the message waits in the queue
    score = LtiScore.objects.get()
    first = ags._claim(score.pk)
    assert first is not None and first.version == 1
    assert ags._claim(score.pk) is None  # the other worker backs off
    assert ags.ags_score_post(score_id=score.pk) is False
    assert emulator.recorded.scores == []


def test_links_without_a_line_item_or_score_scope_post_nothing(live_emulator: PlatformEmulator) -> None:
    emulator = live_emulator
    learner, lesson = _learner_in_graded_link(emulator)
    from lti.models import LtiResourceLink

    LtiResourceLink.objects.update(ags_scopes=["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"])
    _progress(learner, lesson, [[0, 6.0]])
    assert LtiScore.objects.count() == 0
    assert LessonProgress.objects.get().completed_at is not None
