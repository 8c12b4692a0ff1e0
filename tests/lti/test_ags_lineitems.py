"""AGS for links launched without their own column: only the line items service (`lineitems`) and
scopes. The worker that posts the first score finds the link's column in the emulator's container
(following Link rel="next"), or creates it once when the lineitem scope allows; then the score arrives."""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test import Client
from dramatiq import Worker

from courses.models import Lesson
from lti import ags, lineitems, oauth
from lti.errors import LtiError
from lti.models import LtiContext, LtiResourceLink, LtiScore
from media_pipeline.models import MediaAsset
from tests.lti.conftest import full_launch
from tests.lti.platform_emulator import (
    LINEITEM_TYPE,
    LINEITEMS_TYPE,
    SCOPE_LINEITEM,
    SCOPE_LINEITEM_READONLY,
    SCOPE_SCORE,
    PlatformEmulator,
)
from tests.lti.test_ags import _progress, _wait

pytestmark = pytest.mark.django_db(transaction=True)

LINK_ID = "graded-1"


def _learner_in_link(emulator: PlatformEmulator, *, scopes: list[str]) -> tuple[Client, Lesson]:
    """A lesson linked by a resource link whose launch carries only the line items service and `scopes`."""
    assert full_launch(Client(), emulator, user="teacher-1", launch="first").status_code == 200
    course = LtiContext.objects.get().course
    asset = MediaAsset.objects.create(
        key_prefix="lessons/ags-li", status="ready", published_version=1, building_version=1, duration_seconds=6.0
    )
    lesson = Lesson.objects.create(course=course, title="Lenses", asset=asset, completion_threshold=90)
    emulator.launches["graded"] = {
        "custom": {"lesson": str(lesson.public_id)},
        "resource_link": {"id": LINK_ID, "title": "Lenses"},
        "ags_scopes": scopes,
    }
    learner = Client()
    assert full_launch(learner, emulator, user="learner-1", launch="graded").status_code == 302
    link = LtiResourceLink.objects.get(resource_link_id=LINK_ID)
    assert (link.lineitem_url, link.lineitems_url) == ("", emulator.lineitems_url)
    return learner, lesson


def _scores_path(lineitem_url: str) -> str:
    return urlsplit(lineitem_url).path + "/scores"


def test_an_existing_column_on_page_two_is_found_and_gets_the_score(
    live_emulator: PlatformEmulator, dramatiq_worker: Worker
) -> None:
    emulator = live_emulator
    learner, lesson = _learner_in_link(emulator, scopes=[SCOPE_LINEITEM, SCOPE_SCORE])
    # A platform that ignores the filter: page 1 holds another placement of the same lesson and a quiz.
    emulator.lineitems_filtered = False
    emulator.add_lineitem(resource_link_id="elsewhere", label="Lenses", resourceId=str(lesson.public_id))
    emulator.add_lineitem(resource_link_id=None, label="Quiz")
    column = emulator.add_lineitem(resource_link_id=LINK_ID, label="Lenses (week 1)", score_maximum=100)

    assert _progress(learner, lesson, [[0, 6.0]]) == {"seconds_watched": 6, "completed": True}
    _wait(lambda: len(emulator.recorded.scores) == 1)

    (score,) = emulator.recorded.scores
    assert (score["path"], score["userId"], score["scoreGiven"]) == (_scores_path(column), "learner-sub-1", 100)
    assert score["activityProgress"] == "Completed"
    first, second = emulator.recorded.lineitem_requests
    assert first["method"] == second["method"] == "GET"
    assert (first["query"], first["accept"]) == ({"resource_link_id": LINK_ID}, LINEITEMS_TYPE)
    assert second["query"] == {"resource_link_id": LINK_ID, "page": "2"}
    assert emulator.lineitem_posts() == []
    assert len(emulator.lineitems) == 3
    link = LtiResourceLink.objects.get(resource_link_id=LINK_ID)
    assert (link.lineitem_url, link.grades_blocked_reason) == (column, "")
    scopes = [request["scope"] for request in emulator.recorded.token_requests]
    assert scopes == [SCOPE_LINEITEM, SCOPE_SCORE]


def test_a_missing_column_is_created_once_and_gets_every_score(
    live_emulator: PlatformEmulator, dramatiq_worker: Worker
) -> None:
    emulator = live_emulator
    learner, lesson = _learner_in_link(emulator, scopes=[SCOPE_LINEITEM, SCOPE_SCORE])
    emulator.add_lineitem(resource_link_id="elsewhere", label="Other link")

    assert _progress(learner, lesson, [[0, 2.0]]) == {"seconds_watched": 2, "completed": False}
    _wait(lambda: len(emulator.recorded.scores) == 1)
    assert _progress(learner, lesson, [[0, 6.0]]) == {"seconds_watched": 6, "completed": True}
    _wait(lambda: len(emulator.recorded.scores) == 2)

    (post,) = emulator.lineitem_posts()
    assert post["content_type"] == LINEITEM_TYPE
    assert post["body"] == {
        "scoreMaximum": 100,
        "label": "Lenses",
        "resourceId": str(lesson.public_id),
        "resourceLinkId": LINK_ID,
    }
    created = emulator.lineitems[-1]["id"]
    link = LtiResourceLink.objects.get(resource_link_id=LINK_ID)
    assert link.lineitem_url == created
    assert [s["path"] for s in emulator.recorded.scores] == [_scores_path(created)] * 2
    assert [s["activityProgress"] for s in emulator.recorded.scores] == ["InProgress", "Completed"]

    # The actor running again (a redelivered message) changes nothing: no second column, no second score.
    score = LtiScore.objects.get()
    assert ags.ags_score_post(score_id=score.pk) is False
    assert lineitems.lineitem_resolve(link_id=link.pk) == created
    assert len(emulator.lineitem_posts()) == 1
    assert len(emulator.lineitems) == 2
    assert len(emulator.recorded.scores) == 2
    assert [r["method"] for r in emulator.recorded.lineitem_requests] == ["GET", "POST"]


def test_two_workers_at_once_make_one_column(live_emulator: PlatformEmulator) -> None:
    emulator = live_emulator
    _learner_in_link(emulator, scopes=[SCOPE_LINEITEM, SCOPE_SCORE])
    link = LtiResourceLink.objects.get(resource_link_id=LINK_ID)
    # A warm token cache, so both workers reach the container at once; each GET takes 0.5 s, so
    # without the row lock both would see it empty and both would create a column.
    oauth.access_grant(platform=link.deployment.platform, scopes=(SCOPE_LINEITEM,))
    emulator.lineitems_delay = 0.5
    barrier = threading.Barrier(2)
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(lineitems.lineitem_resolve(link_id=link.pk))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(results) == 2 and results[0] == results[1]
    assert len(emulator.lineitem_posts()) == 1
    assert len(emulator.lineitems) == 1
    assert [r["method"] for r in emulator.recorded.lineitem_requests] == ["GET", "POST"]


def test_a_lost_answer_to_the_create_is_found_on_retry_not_made_twice(
    live_emulator: PlatformEmulator, dramatiq_worker: Worker
) -> None:
    emulator = live_emulator
    learner, lesson = _learner_in_link(emulator, scopes=[SCOPE_LINEITEM, SCOPE_SCORE])
    emulator.lose_created_lineitems = 1  # the platform makes the column, then answers 500

    _progress(learner, lesson, [[0, 6.0]])
    _wait(lambda: len(emulator.recorded.scores) == 1, timeout=45)

    assert len(emulator.lineitems) == 1
    assert [r["method"] for r in emulator.recorded.lineitem_requests] == ["GET", "POST", "GET"]
    assert emulator.recorded.scores[0]["path"] == _scores_path(emulator.lineitems[0]["id"])
    score = LtiScore.objects.get()
    assert (score.attempts, score.posted_version, score.last_error) == (1, 1, "")


def test_a_failing_platform_is_retried_until_it_recovers(
    live_emulator: PlatformEmulator, dramatiq_worker: Worker
) -> None:
    emulator = live_emulator
    learner, lesson = _learner_in_link(emulator, scopes=[SCOPE_LINEITEM, SCOPE_SCORE])
    emulator.fail_lineitems = 2  # two 500s from the line items service, then it works

    _progress(learner, lesson, [[0, 6.0]])
    _wait(lambda: len(emulator.recorded.scores) == 1, timeout=45)

    assert emulator.fail_lineitems == 0
    assert [r["method"] for r in emulator.recorded.lineitem_requests] == ["GET", "GET", "GET", "POST"]
    assert len(emulator.lineitems) == 1
    assert emulator.recorded.scores[0]["activityProgress"] == "Completed"
    score = LtiScore.objects.get()
    assert (score.attempts, score.version, score.posted_version, score.last_error) == (2, 1, 1, "")


@pytest.mark.parametrize("how", ["launch scope", "token grant"])
def test_read_only_access_finds_but_never_creates(live_emulator: PlatformEmulator, how: str) -> None:
    emulator = live_emulator
    if how == "launch scope":
        learner, lesson = _learner_in_link(emulator, scopes=[SCOPE_LINEITEM_READONLY, SCOPE_SCORE])
    else:  # the launch offers both lineitem scopes, the token endpoint grants only read access
        learner, lesson = _learner_in_link(emulator, scopes=[SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_SCORE])
        emulator.grant_scopes = {SCOPE_LINEITEM_READONLY, SCOPE_SCORE}
    _progress(learner, lesson, [[0, 6.0]])  # no worker: the post is run by hand below
    score = LtiScore.objects.get()

    with pytest.raises(LtiError, match="lineitem.readonly"):
        ags.ags_score_post(score_id=score.pk)
    assert emulator.lineitem_posts() == []
    assert emulator.lineitems == []
    assert emulator.recorded.scores == []
    (token_request, *_) = emulator.recorded.token_requests
    assert set(token_request["scope"].split()) == (
        {SCOPE_LINEITEM_READONLY} | ({SCOPE_LINEITEM} if how == "token grant" else set())
    )
    link = LtiResourceLink.objects.get(resource_link_id=LINK_ID)
    assert link.lineitem_url == ""
    assert "no gradebook column for this link" in link.grades_blocked_reason
    score.refresh_from_db()
    assert (score.posted_version, score.attempts) == (0, 1)
    assert "lineitem.readonly" in score.last_error

    # An instructor adds the column in the LMS: the next attempt finds it and the score arrives.
    column = emulator.add_lineitem(resource_link_id=LINK_ID, label="Lenses")
    assert ags.ags_score_post(score_id=score.pk) is True
    assert [s["path"] for s in emulator.recorded.scores] == [_scores_path(column)]
    link.refresh_from_db()
    assert (link.lineitem_url, link.grades_blocked_reason) == (column, "")
    assert emulator.lineitem_posts() == []


def test_without_a_lineitem_scope_no_grades_and_the_link_says_why(live_emulator: PlatformEmulator) -> None:
    emulator = live_emulator
    learner, lesson = _learner_in_link(emulator, scopes=[SCOPE_SCORE])
    link = LtiResourceLink.objects.get(resource_link_id=LINK_ID)
    assert "neither lineitem scope" in link.grades_blocked_reason

    assert _progress(learner, lesson, [[0, 6.0]]) == {"seconds_watched": 6, "completed": True}
    assert LtiScore.objects.count() == 0
    assert emulator.recorded.lineitem_requests == []
    assert emulator.recorded.token_requests == []
    with pytest.raises(LtiError, match="neither lineitem scope"):
        lineitems.lineitem_resolve(link_id=link.pk)
    assert emulator.recorded.lineitem_requests == []
