"""The demo lesson, made by `seed_demo` through the real pipeline, plays in Chromium."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command

from analytics.ingest import qoe_drain
from analytics.models import QoeEvent
from analytics.qoe import Event, summarize_view
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
    segment_urls: list[str] = []
    learner_page.on("request", lambda request: segment_urls.append(request.url) if ".m4s" in request.url else None)
    log_in(learner_page, live_server.url, "learner", password)
    views = []
    for engine in ("hls", "shaka"):
        learner_page.goto(f"{live_server.url}/lessons/{lesson.public_id}/?engine={engine}")
        learner_page.wait_for_function(PLAYED_PAST_3S, timeout=30_000)
        state = _player_state(learner_page)
        assert state["fatal"] == [], engine
        assert state["state"] == "playing", engine
        assert state["src"].startswith("blob:"), engine  # played through MSE, not a plain file
        views.append(learner_page.evaluate("window.lessonPlayer.viewId"))
        learner_page.evaluate("window.lessonPlayer.flush()")
        learner_page.wait_for_function("window.lessonPlayer.beaconsSent >= 1")

    # Both players sent CMCD data with their segment requests (session id = view id).
    assert any("CMCD=" in url and views[0] in url.replace("%22", '"') for url in segment_urls)
    # The beacons reached the ingest stream and are drained into the database as two views.
    deadline = time.monotonic() + 10
    while QoeEvent.objects.filter(lesson=lesson.public_id).values("view_id").distinct().count() < 2:
        assert time.monotonic() < deadline, "beacons did not arrive"
        qoe_drain()
        time.sleep(0.2)
    for view in views:
        summary = summarize_view(
            Event(type=row.type, t=row.t_ms, **{k: v for k, v in row.data.items() if k in ("bitrate_kbps", "height")})
            for row in QoeEvent.objects.filter(view_id=view)
        )
        assert summary.started and not summary.failed
        assert 0 < summary.startup_ms < 15_000
        assert summary.bitrate_ms  # the player reported the rendition it played

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
