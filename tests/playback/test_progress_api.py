"""POST /api/v1/lessons/<uuid>/progress/: played ranges become watched seconds, for entitled viewers
only, with the view token of their playback session, and no faster than the fastest playback rate."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from pytest_django import DjangoCaptureOnCommitCallbacks

from courses.models import Lesson, LessonProgress
from lti.models import LtiScore
from tests.playback.conftest import World
from tests.progress_reports import graded_link, view_token

pytestmark = pytest.mark.django_db


def _post(client: Client, world: World, body: object, **extra: Any) -> HttpResponse:
    return client.post(
        f"/api/v1/lessons/{world.lesson.public_id}/progress/", body, content_type="application/json", **extra
    )


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _report(world: World, ranges: list[list[float]], *, ago: float = 60) -> dict[str, Any]:
    """The learner's report from a viewing that began ``ago`` seconds ago: time enough to have played."""
    return {"ranges": ranges, "view_token": view_token(user=world.learner, lesson=world.lesson, ago=ago)}


def test_distinct_seconds_are_counted_and_seeking_ahead_is_not(world: World) -> None:
    client = _client(world.learner)
    assert _post(client, world, _report(world, [[0, 1.2]])).json() == {"seconds_watched": 1, "completed": False}
    # Seeked to 4.0 and played to the end: 0-1 and 4-6; the skipped 1-4 counts for nothing.
    answer = _post(client, world, _report(world, [[0, 1.2], [4.0, 6.0]])).json()
    assert answer == {"seconds_watched": 3, "completed": False}
    # The same seconds again do not add up.
    assert _post(client, world, _report(world, [[4.0, 6.0]])).json() == {"seconds_watched": 3, "completed": False}
    assert _post(client, world, _report(world, [[1.0, 4.1]])).json() == {"seconds_watched": 6, "completed": True}
    record = LessonProgress.objects.get()
    assert (record.user, record.lesson, record.seconds_watched) == (world.learner, world.lesson, 6)
    assert record.completed_at is not None


def test_completion_threshold_is_per_lesson(world: World) -> None:
    world.lesson.completion_threshold = 50
    world.lesson.save()
    client = _client(world.learner)
    assert _post(client, world, _report(world, [[0, 2.0]])).json() == {"seconds_watched": 2, "completed": False}
    assert _post(client, world, _report(world, [[2.0, 3.0]])).json() == {"seconds_watched": 3, "completed": True}


def test_the_token_of_a_real_playback_session_is_accepted(world: World) -> None:
    client = _client(world.learner)
    session = client.post(f"/api/v1/lessons/{world.lesson.public_id}/playback/")
    assert session.status_code == 200
    body = {"ranges": [[0, 1.2]], "view_token": session.json()["view_token"]}
    assert _post(client, world, body).json() == {"seconds_watched": 1, "completed": False}


def test_the_whole_lesson_claimed_as_the_viewing_begins_is_not_credited(world: World) -> None:
    # A learner who reports [[0, duration]] as soon as the session starts gets (at most) what the
    # fastest speed could have played since the token was issued, plus the slack: not the lesson.
    world.asset.duration_seconds = 600.0
    world.asset.save()
    client = _client(world.learner)
    before = time.time()
    answer = _post(
        client, world, {"ranges": [[0, 600]], "view_token": view_token(user=world.learner, lesson=world.lesson)}
    ).json()
    elapsed = time.time() - int(before)  # the token's issue time is whole seconds
    assert answer["completed"] is False
    assert 1 <= answer["seconds_watched"] <= (elapsed + 2.0) * 2.0


# --- Refused reports change nothing ---------------------------------------------------------------------
def _other_lesson_token(world: World) -> str:
    other = Lesson.objects.create(course=world.course, title="Other", position=1)
    return view_token(user=world.learner, lesson=other, ago=60)


def _forged(world: World) -> str:
    token = view_token(user=world.learner, lesson=world.lesson, ago=60)
    return token[:-1] + ("A" if token[-1] != "A" else "B")


BAD_TOKENS = {
    "missing": (None, 400),
    "empty": (lambda world: "", 400),
    "not a token": (lambda world: "v1.nonsense", 403),
    "forged signature": (_forged, 403),
    "another secret": (lambda world: _with_secret("someone-else's-secret", world), 403),
    "another lesson": (_other_lesson_token, 403),
    "another user": (lambda world: view_token(user=world.stranger, lesson=world.lesson, ago=60), 403),
    "expired": (
        lambda world: view_token(user=world.learner, lesson=world.lesson, ago=settings.VIEW_TOKEN_MAX_AGE_SECONDS + 5),
        403,
    ),
}


def _with_secret(secret: str, world: World) -> str:
    from django.test import override_settings

    with override_settings(VIEW_TOKEN_SECRET=secret):
        return view_token(user=world.learner, lesson=world.lesson, ago=60)


def _snapshot() -> tuple[list[Any], list[Any]]:
    progress = list(
        LessonProgress.objects.values_list("watched", "seconds_watched", "completed_at", "credit_clock", "updated_at")
    )
    scores = list(LtiScore.objects.values_list("pk", "version", "score_given", "activity_progress", "updated_at"))
    return [(bytes(row[0]), *row[1:]) for row in progress], scores


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_a_report_without_a_valid_view_token_is_refused_and_changes_nothing(
    world: World, case: str, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    graded_link(user=world.learner, lesson=world.lesson)
    client = _client(world.learner)
    with django_capture_on_commit_callbacks() as told:
        assert _post(client, world, _report(world, [[0, 2.0]])).json() == {"seconds_watched": 2, "completed": False}
    assert len(told) == 1
    told[0]()  # the progress hook, as after the commit: lti records the score
    before = _snapshot()
    assert len(before[1]) == 1  # the gradebook has the 2 s already

    make, status = BAD_TOKENS[case]
    body: dict[str, object] = {"ranges": [[0, 6.0]]}
    if make is not None:
        body["view_token"] = make(world)
    with django_capture_on_commit_callbacks() as callbacks:
        response = _post(client, world, body)
    assert response.status_code == status, response.content
    assert list(response.json()) == (["detail"] if status == 403 else ["view_token"])
    assert _snapshot() == before
    assert callbacks == []  # no score queued for the LMS


def test_a_forged_report_of_the_whole_lesson_sends_no_score(
    world: World, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    graded_link(user=world.learner, lesson=world.lesson)
    client = _client(world.learner)
    with django_capture_on_commit_callbacks() as callbacks:
        response = _post(client, world, {"ranges": [[0, 6.0]], "view_token": _forged(world)})
    assert response.status_code == 403
    assert response.json() == {"detail": "the view token is not valid or has expired: start a new playback session"}
    assert (LessonProgress.objects.count(), LtiScore.objects.count(), callbacks) == (0, 0, [])
    # The same report with the real token of a viewing long enough sends full marks, once.
    with django_capture_on_commit_callbacks() as told:
        assert _post(client, world, _report(world, [[0, 6.0]])).json() == {"seconds_watched": 6, "completed": True}
    assert len(told) == 1  # the progress hook, run once the report commits
    with django_capture_on_commit_callbacks() as callbacks:
        told[0]()
    score = LtiScore.objects.get()
    assert (score.version, score.score_given, score.activity_progress, len(callbacks)) == (1, 100, "Completed", 1)


def test_checking_the_token_costs_no_query(world: World) -> None:
    client = _client(world.learner)
    client.get("/")  # the session and user are loaded the same way for both requests below
    with CaptureQueriesContext(connection) as without_token:
        assert _post(client, world, {"ranges": [[0, 6.0]]}).status_code == 400
    with CaptureQueriesContext(connection) as forged:
        assert _post(client, world, {"ranges": [[0, 6.0]], "view_token": _forged(world)}).status_code == 403
    # Both stop after the entitlement check; the HMAC adds nothing to it.
    assert len(forged) == len(without_token), [q["sql"] for q in forged.captured_queries]


@pytest.mark.parametrize(
    ("ranges", "status"),
    [
        ([[0, 9.5]], 400),  # ends after the lesson (6 s) does
        ([[3, 1]], 400),
        ([[-1, 1]], 400),
        ([[0]], 400),
        ("0-6", 400),
        ([[0, 1]] * 501, 400),
        (None, 400),
    ],
)
def test_malformed_ranges_are_refused_and_change_nothing(world: World, ranges: object, status: int) -> None:
    body = _report(world, ranges)  # type: ignore[arg-type]  # malformed ranges are what this test sends
    if ranges is None:
        del body["ranges"]
    response = _post(_client(world.learner), world, body)
    assert response.status_code == status
    assert LessonProgress.objects.count() == 0


def test_viewers_who_may_not_watch_record_nothing(world: World) -> None:
    assert _post(Client(), world, _report(world, [[0, 6]])).status_code == 403
    stranger = {"ranges": [[0, 6]], "view_token": view_token(user=world.stranger, lesson=world.lesson, ago=60)}
    assert _post(_client(world.stranger), world, stranger).status_code == 403
    world.asset.status, world.asset.published_version = "transcoding", None
    world.asset.save()
    assert _post(_client(world.learner), world, _report(world, [[0, 6]])).status_code == 409
    assert LessonProgress.objects.count() == 0


def test_anonymous_viewers_of_a_public_lesson_keep_no_progress(world: World) -> None:
    world.lesson.public = True
    world.lesson.save()
    assert Client().post(f"/api/v1/lessons/{world.lesson.public_id}/playback/").status_code == 200
    response = _post(Client(), world, {"ranges": [[0, 6]], "view_token": "v1.anything"})
    assert response.status_code == 403  # progress is per user: the API wants a logged-in one
    assert LessonProgress.objects.count() == 0


def test_session_posts_need_the_csrf_token(world: World) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.learner)
    assert _post(client, world, _report(world, [[0, 6]])).status_code == 403
    assert LessonProgress.objects.count() == 0


def test_openapi_schema_describes_the_view_token(db: None) -> None:
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/v1/lessons/{public_id}/progress/"]["post"]
    assert sorted(operation["responses"]) == ["200", "400", "403", "404", "409", "415"]
    assert "view token" in operation["responses"]["403"]["description"]
    body = schema["components"]["schemas"]["ProgressInput"]
    assert sorted(body["required"]) == ["ranges", "view_token"]
    assert body["properties"]["view_token"]["maxLength"] == 160
    assert "2x" in body["properties"]["view_token"]["description"]


def test_only_json_is_accepted_and_a_form_body_changes_nothing(world: World) -> None:
    # schemathesis found that a multipart body (offered by DRF's default parsers) never reaches the view
    # under daphne (the web server then): Twisted parsed it first and answered a malformed one with a
    # bare 400. The player posts JSON, so the endpoint takes JSON only and says so.
    client = _client(world.learner)
    response = client.post(
        f"/api/v1/lessons/{world.lesson.public_id}/progress/", {"ranges": "0,6"}, HTTP_X_CSRFTOKEN="x"
    )  # multipart/form-data, Django's test client default
    assert response.status_code == 415
    assert response.json() == {
        "detail": 'Unsupported media type "multipart/form-data; boundary=BoUnDaRyStRiNg" in request.'
    }
    assert LessonProgress.objects.count() == 0
