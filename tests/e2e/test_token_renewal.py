"""A lecture longer than its playback token keeps playing: the player renews its session before
the token expires and later segment requests carry the new token (hls.js and Shaka Player)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page
from playwright.sync_api import Response as PlaywrightResponse
from pytest_django import Settings
from pytest_django.live_server_helper import LiveServer

from courses.models import Course, Enrollment, Lesson
from media_pipeline import services
from tests.conftest import make_clip
from tests.e2e.conftest import log_in
from tests.pipeline_steps import record_sends

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
TTL = 6


def test_playback_outlives_its_token(
    live_server: LiveServer,
    new_page: Callable[[], Page],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.PLAYBACK_TOKEN_TTL_SECONDS = TTL
    record_sends(monkeypatch)  # the steps run right here
    course = Course.objects.create(slug="long", title="Long lectures", published=True)
    learner = User.objects.create_user("ada", password="pw-ada-123456")
    Enrollment.objects.create(user=learner, course=course)
    lesson = Lesson.objects.create(course=course, title="Ninety seconds", position=0)
    lesson.asset = services.asset_create(key_prefix=f"lessons/{lesson.public_id}")
    lesson.save()
    clip = make_clip(tmp_path / "long.mp4", seconds=90, size="426x240")
    with clip.open("rb") as stream:
        services.asset_upload_source(asset=lesson.asset, stream=stream, source_name="long.mp4")
    for step in (services.asset_probe, services.asset_transcode, services.asset_publish):
        step(asset_id=lesson.asset_id)

    page = new_page()
    log_in(page, live_server.url, "ada", "pw-ada-123456")
    for engine in ("hls", "shaka"):
        requests: list[tuple[float, str, int]] = []

        def record(response: PlaywrightResponse, requests: list[tuple[float, str, int]] = requests) -> None:
            if ".m4s" in response.url:
                requests.append((time.monotonic(), response.url, response.status))

        page.on("response", record)
        started = time.monotonic()
        page.goto(f"{live_server.url}/lessons/{lesson.public_id}/?engine={engine}")
        if engine == "hls":
            # hls.js buffers this small clip whole at once; a rendition switch after the token
            # expired makes it fetch again, as it would anywhere in a long lecture.
            page.wait_for_function("window.lessonPlayer.renewals >= 1", timeout=30_000)
            page.wait_for_timeout(1_500)
            page.evaluate(
                "(() => { const h = window.lessonPlayer.instance;"
                " h.currentLevel = h.currentLevel === 0 ? h.levels.length - 1 : 0; })()"
            )
        page.wait_for_function(f"document.getElementById('lesson-video').currentTime > {2 * TTL + 2}", timeout=60_000)
        state = page.evaluate("({fatal: window.lessonPlayer.fatalErrors, renewals: window.lessonPlayer.renewals})")
        assert state["fatal"] == [], engine
        assert state["renewals"] >= 2, engine
        late = [(url, status) for at, url, status in requests if at - started > TTL + 1]
        assert late, f"{engine}: no segment was fetched after the first token expired"
        first_token = requests[0][1].split("/stream/")[1].split("/")[0]
        assert all(status in (200, 206) for _, status in late), engine
        assert all(first_token not in url for url, _ in late), engine  # fetched with a renewed token
        page.remove_listener("response", record)
