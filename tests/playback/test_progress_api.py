"""POST /api/v1/lessons/<uuid>/progress/: played ranges become watched seconds, for entitled viewers only."""

from __future__ import annotations

import pytest
from django.test import Client

from courses.models import LessonProgress
from tests.playback.conftest import World

pytestmark = pytest.mark.django_db


def _post(client: Client, world: World, body: object, **extra):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/v1/lessons/{world.lesson.public_id}/progress/", body, content_type="application/json", **extra
    )


def _client(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def test_distinct_seconds_are_counted_and_seeking_ahead_is_not(world: World) -> None:
    client = _client(world.learner)
    assert _post(client, world, {"ranges": [[0, 1.2]]}).json() == {"seconds_watched": 1, "completed": False}
    # Seeked to 4.0 and played to the end: 0-1 and 4-6; the skipped 1-4 counts for nothing.
    assert _post(client, world, {"ranges": [[0, 1.2], [4.0, 6.0]]}).json() == {"seconds_watched": 3, "completed": False}
    # The same seconds again do not add up.
    assert _post(client, world, {"ranges": [[4.0, 6.0]]}).json() == {"seconds_watched": 3, "completed": False}
    assert _post(client, world, {"ranges": [[1.0, 4.1]]}).json() == {"seconds_watched": 6, "completed": True}
    record = LessonProgress.objects.get()
    assert (record.user, record.lesson, record.seconds_watched) == (world.learner, world.lesson, 6)
    assert record.completed_at is not None


def test_completion_threshold_is_per_lesson(world: World) -> None:
    world.lesson.completion_threshold = 50
    world.lesson.save()
    client = _client(world.learner)
    assert _post(client, world, {"ranges": [[0, 2.0]]}).json() == {"seconds_watched": 2, "completed": False}
    assert _post(client, world, {"ranges": [[2.0, 3.0]]}).json() == {"seconds_watched": 3, "completed": True}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"ranges": [[0, 9.5]]}, 400),  # ends after the lesson (6 s) does
        ({"ranges": [[3, 1]]}, 400),
        ({"ranges": [[-1, 1]]}, 400),
        ({"ranges": [[0]]}, 400),
        ({"ranges": "0-6"}, 400),
        ({"ranges": [[0, 1]] * 501}, 400),
        ({}, 400),
    ],
)
def test_malformed_ranges_are_refused_and_change_nothing(world: World, body: object, status: int) -> None:
    response = _post(_client(world.learner), world, body)
    assert response.status_code == status
    assert LessonProgress.objects.count() == 0


def test_viewers_who_may_not_watch_record_nothing(world: World) -> None:
    assert _post(Client(), world, {"ranges": [[0, 6]]}).status_code == 403
    assert _post(_client(world.stranger), world, {"ranges": [[0, 6]]}).status_code == 403
    world.asset.status, world.asset.published_version = "transcoding", None
    world.asset.save()
    assert _post(_client(world.learner), world, {"ranges": [[0, 6]]}).status_code == 409
    assert LessonProgress.objects.count() == 0


def test_session_posts_need_the_csrf_token(world: World) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.learner)
    assert _post(client, world, {"ranges": [[0, 6]]}).status_code == 403
    assert LessonProgress.objects.count() == 0


def test_only_json_is_accepted_and_a_form_body_changes_nothing(world: World) -> None:
    # schemathesis found that a multipart body (offered by DRF's default parsers) never reaches the view
    # under daphne: Twisted parses it first and answers a malformed one with a bare 400. The player posts
    # JSON, so the endpoint takes JSON only and says so.
    client = _client(world.learner)
    response = client.post(
        f"/api/v1/lessons/{world.lesson.public_id}/progress/", {"ranges": "0,6"}, HTTP_X_CSRFTOKEN="x"
    )  # multipart/form-data, Django's test client default
    assert response.status_code == 415
    assert response.json() == {
        "detail": 'Unsupported media type "multipart/form-data; boundary=BoUnDaRyStRiNg" in request.'
    }
    assert LessonProgress.objects.count() == 0
