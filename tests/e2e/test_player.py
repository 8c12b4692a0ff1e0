"""The demo lesson, made by `seed_demo` through the real pipeline, plays in Chromium."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command

from courses.models import Lesson
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PLAYED_PAST_3S = "document.getElementById('lesson-video').currentTime > 3"


def _player_state(page) -> dict:  # type: ignore[no-untyped-def]
    return page.evaluate(
        "({state: window.lessonPlayer.state, fatal: window.lessonPlayer.fatalErrors,"
        " time: document.getElementById('lesson-video').currentTime,"
        " src: document.getElementById('lesson-video').currentSrc})"
    )


def test_demo_lesson_plays_in_hls_js_and_shaka_and_not_for_strangers(
    live_server, dramatiq_worker, new_page, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    User.objects.create_superuser("admin", password="pw-admin-123456")
    call_command("seed_demo", "--timeout", "240", stdout=io.StringIO())
    lesson = Lesson.objects.select_related("asset").get(course__slug="welcome")
    assert lesson.asset.status == "ready"
    password = (Path(settings.VAR_DIR) / "learner-password").read_text().strip()

    learner_page = new_page()
    log_in(learner_page, live_server.url, "learner", password)
    for engine in ("hls", "shaka"):
        learner_page.goto(f"{live_server.url}/lessons/{lesson.public_id}/?engine={engine}")
        learner_page.wait_for_function(PLAYED_PAST_3S, timeout=30_000)
        state = _player_state(learner_page)
        assert state["fatal"] == [], engine
        assert state["state"] == "playing", engine
        assert state["src"].startswith("blob:"), engine  # played through MSE, not a plain file

    User.objects.create_user("stranger", password="pw-stranger-123")
    stranger_page = new_page()
    log_in(stranger_page, live_server.url, "stranger", "pw-stranger-123")
    # The page itself offers enrolment instead of a player...
    stranger_page.goto(f"{live_server.url}/lessons/{lesson.public_id}/")
    assert stranger_page.locator("#lesson-video").count() == 0
    assert "Enrol in" in stranger_page.inner_text("main")
    # ...and the playback API refuses the same browser session outright.
    response = stranger_page.request.post(
        f"{live_server.url}/api/v1/lessons/{lesson.public_id}/playback/",
        headers={"X-CSRFToken": _csrf(stranger_page)},
    )
    assert response.status == 403
    assert response.json() == {"detail": "enrol in the course to watch this lesson"}


def _csrf(page) -> str:  # type: ignore[no-untyped-def]
    cookies = {cookie["name"]: cookie["value"] for cookie in page.context.cookies()}
    return cookies["csrftoken"]
