"""The lesson player in Chromium: lessons encoded by the real pipeline play in hls.js and Shaka Player;
learners who may not watch, and videos still processing, get a clear message and no playback."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from dramatiq import Worker
from playwright.sync_api import Page, Route
from pytest_django.live_server_helper import LiveServer

from analytics.ingest import qoe_drain
from analytics.models import QoeEvent
from analytics.qoe import batch_contributions
from courses.models import Course, Enrollment, Lesson
from media_pipeline.models import AssetStatus, MediaAsset
from tests.e2e.conftest import log_in
from tests.pipeline_steps import publish_in_process

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PLAYED_PAST_3S = "document.getElementById('lesson-video').currentTime > 3"
PASSWORD = "pw-learner-123456"


def _player_state(page: Page) -> dict:
    return page.evaluate(
        "({engine: window.lessonPlayer.engine, state: window.lessonPlayer.state,"
        " fatal: window.lessonPlayer.fatalErrors,"
        " time: document.getElementById('lesson-video').currentTime,"
        " src: document.getElementById('lesson-video').currentSrc,"
        " message: document.getElementById('player-message').textContent})"
    )


def _encoded_asset(clip: Path, key_prefix: str) -> MediaAsset:
    """Run the real pipeline steps in this process: no broker or worker needed."""
    asset = publish_in_process(clip, key_prefix=key_prefix)
    assert (asset.status, asset.failure_reason) == (AssetStatus.READY, "")
    return asset


def _course_with_learner(*, enrolled: bool = True) -> tuple[Course, User]:
    course = Course.objects.create(slug="optics", title="Optics", description="Light and lenses", published=True)
    learner = User.objects.create_user("grace", password=PASSWORD)
    if enrolled:
        Enrollment.objects.create(user=learner, course=course)
    return course, learner


def test_pipeline_lesson_plays_in_hls_js_and_shaka_player(
    live_server: LiveServer, new_page: Callable[[], Page], demo_clip: Path, key_prefix: str, tmp_path: Path
) -> None:
    course, _ = _course_with_learner()
    asset = _encoded_asset(demo_clip, key_prefix)
    lesson = Lesson.objects.create(
        course=course, title="Refraction", description="Why a straw looks bent.", asset=asset
    )
    page: Page = new_page()
    playback_statuses: list[int] = []
    page.on("response", lambda r: playback_statuses.append(r.status) if r.url.endswith("/playback/") else None)
    log_in(page, live_server.url, "grace", PASSWORD)

    page.goto(f"{live_server.url}/lessons/{lesson.public_id}/?engine=hls")
    page.wait_for_function(PLAYED_PAST_3S, timeout=30_000)
    state = _player_state(page)
    assert (state["engine"], state["state"], state["fatal"], state["message"]) == ("hls", "playing", [], "")
    assert state["src"].startswith("blob:")  # through MSE with hls.js, not a plain file
    assert page.evaluate("window.lessonPlayer.instance instanceof Hls")
    assert page.evaluate("window.lessonPlayer.instance.config.enableWorker") is True
    assert page.get_attribute("[data-engine-choice=hls]", "aria-pressed") == "true"
    # Progress reports carry the session's view token, so what was played is credited.
    page.evaluate("window.lessonPlayer.sendProgress(false)")
    page.wait_for_function("(window.lessonPlayer.progress || {}).seconds_watched >= 3", timeout=10_000)
    page.select_option("#player-speed", "1.5")
    assert page.evaluate("document.getElementById('lesson-video').playbackRate") == 1.5
    page.screenshot(path=str(tmp_path / "lesson-hls.png"), full_page=True)

    # The labelled engine button reloads the lesson with ?engine=shaka.
    page.get_by_role("button", name="DASH (Shaka Player)").click()
    page.wait_for_url(f"{live_server.url}/lessons/{lesson.public_id}/?engine=shaka")
    page.wait_for_function(PLAYED_PAST_3S, timeout=30_000)
    state = _player_state(page)
    assert (state["engine"], state["state"], state["fatal"], state["message"]) == ("shaka", "playing", [], "")
    assert state["src"].startswith("blob:")
    assert page.evaluate("window.lessonPlayer.instance instanceof shaka.Player")
    assert page.get_attribute("[data-engine-choice=shaka]", "aria-pressed") == "true"
    assert page.get_attribute("[data-engine-choice=hls]", "aria-pressed") == "false"
    page.screenshot(path=str(tmp_path / "lesson-shaka.png"))
    assert playback_statuses == [200, 200]

    # Enrolment revoked while the page is open: the playback API refuses, the player says why and
    # the video never gets a source.
    def revoke_then_continue(route: Route) -> None:
        Enrollment.objects.filter(course=course).delete()
        route.continue_()

    page.route("**/playback/", revoke_then_continue)
    page.goto(f"{live_server.url}/lessons/{lesson.public_id}/?engine=hls")
    page.wait_for_function("window.lessonPlayer.state === 'denied'", timeout=10_000)
    page.wait_for_timeout(2_000)  # long enough for a player that was wrongly started to load and play
    state = _player_state(page)
    assert (state["state"], state["fatal"], state["src"], state["time"]) == ("denied", [], "", 0)
    assert state["message"] == "Enrol in the course to watch this lesson. Go to the course page"
    assert page.get_attribute("#player-message a", "href") == "/courses/optics/"
    assert page.evaluate("window.lessonPlayer.instance") is None
    assert playback_statuses == [200, 200, 403]
    page.screenshot(path=str(tmp_path / "lesson-denied.png"))


def test_strangers_and_unfinished_videos_get_a_message_and_no_playback(
    live_server: LiveServer, new_page: Callable[[], Page], tmp_path: Path
) -> None:
    course, _ = _course_with_learner()
    processing = MediaAsset.objects.create(key_prefix="lessons/e2e-processing", status=AssetStatus.TRANSCODING)
    lesson = Lesson.objects.create(course=course, title="Lenses", asset=processing)

    learner: Page = new_page()
    log_in(learner, live_server.url, "grace", PASSWORD)
    learner.goto(f"{live_server.url}/lessons/{lesson.public_id}/")
    learner.wait_for_function("window.lessonPlayer.state === 'processing'", timeout=10_000)
    state = _player_state(learner)
    assert (state["engine"], state["fatal"], state["src"], state["time"]) == ("hls", [], "", 0)
    assert state["message"] == "This video is still being processed. It will start here when it is ready."

    User.objects.create_user("stranger", password="pw-stranger-123")
    stranger: Page = new_page()
    log_in(stranger, live_server.url, "stranger", "pw-stranger-123")
    # The page offers enrolment instead of a player...
    stranger.goto(f"{live_server.url}/lessons/{lesson.public_id}/")
    assert stranger.locator("#lesson-video").count() == 0
    assert stranger.inner_text(".notice") == "Enrol in Optics to watch this lesson."
    # ...and the playback API refuses the same browser session outright.
    response = stranger.request.post(
        f"{live_server.url}/api/v1/lessons/{lesson.public_id}/playback/", headers={"X-CSRFToken": _csrf(stranger)}
    )
    assert response.status == 403
    assert response.json() == {"detail": "enrol in the course to watch this lesson"}

    # Keyboard first: the skip link is the first stop and moves focus to the content.
    stranger.keyboard.press("Tab")
    assert stranger.evaluate("document.activeElement.textContent") == "Skip to content"
    stranger.keyboard.press("Enter")
    assert stranger.evaluate("document.activeElement.id") == "main"

    # A phone-sized screen: the course page fits without sideways scrolling.
    stranger.set_viewport_size({"width": 360, "height": 740})
    stranger.goto(f"{live_server.url}/courses/optics/")
    assert stranger.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert stranger.get_by_role("button", name="Enrol in this course").is_visible()
    stranger.screenshot(path=str(tmp_path / "course-phone.png"), full_page=True)


def test_demo_lesson_plays_in_hls_js_and_shaka_and_not_for_strangers(
    live_server: LiveServer, dramatiq_worker: Worker, new_page: Callable[[], Page], tmp_path: Path
) -> None:
    User.objects.create_superuser("admin", password="pw-admin-123456")
    call_command("seed_demo", "--timeout", "240", stdout=io.StringIO())
    lesson = Lesson.objects.select_related("asset").get(course__slug="welcome")
    assert lesson.asset.status == "ready"
    password = (Path(settings.VAR_DIR) / "learner-password").read_text().strip()

    # The two players at once, each in a browser context of its own (the playing is real time).
    learner_pages = {engine: new_page() for engine in ("hls", "shaka")}
    segment_urls: list[str] = []
    for learner_page in learner_pages.values():
        learner_page.on("request", lambda request: segment_urls.append(request.url) if ".m4s" in request.url else None)
        log_in(learner_page, live_server.url, "learner", password)
    for engine, learner_page in learner_pages.items():
        learner_page.goto(f"{live_server.url}/lessons/{lesson.public_id}/?engine={engine}")
    views = []
    for engine, learner_page in learner_pages.items():
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
        view_events = [
            {"type": row.type, "t": row.t_ms, **{k: v for k, v in row.data.items() if k in ("bitrate_kbps", "height")}}
            for row in QoeEvent.objects.filter(view_id=view)
        ]
        summary = batch_contributions(view_events)  # the whole view as one batch
        assert summary.get("starts") and not summary.get("failures")
        assert 0 < summary["startup_ms"] < 15_000
        assert summary.get("bitrate_weighted_ms")  # the player reported the rendition it played

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


def _csrf(page: Page) -> str:
    cookies = {cookie["name"]: cookie["value"] for cookie in page.context.cookies()}
    return cookies["csrftoken"]
