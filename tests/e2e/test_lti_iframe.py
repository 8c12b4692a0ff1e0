"""LTI 1.3 in a real browser: the emulated LMS's course page embeds the tool in an iframe; a learner
launches, the lesson plays to the end inside the iframe, and the LMS gradebook receives the score.

Hosts: the LMS emulator is http://127.0.0.1:<port>, the tool (live_server) is http://localhost:<port>,
so the iframe is cross-site, like a real LMS embedding the tool: the tool's cookies there are
third-party. Chromium treats both loopback hosts as secure contexts, so the tool's SameSite=None;
Secure; Partitioned cookies are accepted over plain HTTP, as they would be over HTTPS in production.

1. Cookies as shipped (SameSite=None; Secure; Partitioned) carry the launch, both in default Chromium
   and with third-party cookies phased out (partitioned cookies, CHIPS, are still allowed there).
2. Third-party cookies phased out and our cookies not partitioned: the state cookie is refused, so the
   launch goes through the LMS's postMessage storage (lti.put_data/lti.get_data), and the session
   continues in a new window (handoff), where the cookie is first-party.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.test import Client
from dramatiq import Worker
from playwright.sync_api import Browser, Frame, Page
from pytest_django import Settings
from pytest_django.live_server_helper import LiveServer

from courses.models import Lesson, LessonProgress
from lti.models import LtiContext, LtiUser
from tests.e2e.conftest import lti_lesson_frame
from tests.e2e.test_player import _encoded_asset
from tests.lti.conftest import full_launch
from tests.lti.platform_emulator import PlatformEmulator
from tests.pipeline_steps import record_sends

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _graded_lesson(lms: PlatformEmulator, clip: Path, key_prefix: str) -> Lesson:
    # The instructor opened the LMS course once (its course here is made then); the lesson is theirs.
    assert full_launch(Client(), lms, user="teacher-1", launch="first").status_code == 200
    course = LtiContext.objects.get().course
    # The pipeline runs in this process; the test's Dramatiq worker (there for the grade posts) must
    # not take the same steps up from the queue at the same time.
    with pytest.MonkeyPatch.context() as patch:
        record_sends(patch)
        asset = _encoded_asset(clip, key_prefix)
    lesson = Lesson.objects.create(course=course, title="Refraction", asset=asset)
    lms.launches["graded"] = {
        "custom": {"lesson": str(lesson.public_id)},
        "resource_link": {"id": "graded-1", "title": "Refraction"},
        "lineitem": lms.lineitem_url("li-1"),
    }
    return lesson


def _watch_to_the_end(frame: Frame) -> None:
    frame.wait_for_function("window.lessonPlayer && window.lessonPlayer.state === 'playing'", timeout=30_000)
    frame.evaluate("document.getElementById('lesson-video').playbackRate = 2")
    frame.wait_for_function("document.getElementById('lesson-video').ended", timeout=30_000)
    assert frame.evaluate("window.lessonPlayer.fatalErrors") == []


def _wait_for_scores(lms: PlatformEmulator, count: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(lms.recorded.scores) < count:
        time.sleep(0.2)


@pytest.mark.parametrize("third_party_cookies", ["allowed", "phased out"])
def test_learner_launches_in_the_lms_iframe_watches_and_the_gradebook_gets_the_score(
    lms: PlatformEmulator,
    live_server: LiveServer,
    dramatiq_worker: Worker,
    browser: Browser,
    strict_browser: Browser,
    demo_clip: Path,
    key_prefix: str,
    tmp_path: Path,
    third_party_cookies: str,
) -> None:
    lesson = _graded_lesson(lms, demo_clip, key_prefix)
    context = (browser if third_party_cookies == "allowed" else strict_browser).new_context()
    page: Page = context.new_page()
    page.goto(f"{lms.base}/course?user=learner-1&launch=graded")
    frame = lti_lesson_frame(page, lesson)
    assert frame.url.startswith(live_server.url)  # cross-site: localhost inside 127.0.0.1
    _watch_to_the_end(frame)
    page.screenshot(path=str(tmp_path / "lti-iframe.png"))

    _wait_for_scores(lms, 1)
    completed = [score for score in lms.recorded.scores if score["activityProgress"] == "Completed"]
    assert len(completed) == 1, lms.recorded.scores
    assert (completed[0]["userId"], completed[0]["scoreGiven"], completed[0]["gradingProgress"]) == (
        "learner-sub-1", 100, "FullyGraded",
    )  # fmt: skip
    user = LtiUser.objects.get(sub="learner-sub-1").user
    assert LessonProgress.objects.get(user=user, lesson=lesson).seconds_watched == 6
    # The state cookie did the binding: the LMS's storage was never needed.
    assert page.evaluate("window.ltiStorageLog") == []
    # The iframe's sign-in lives only in the LMS's partition: opened directly, the tool knows nobody.
    direct = context.new_page()
    assert direct.goto(f"{live_server.url}/lti/lesson/{lesson.public_id}/").status == 403
    direct.close()
    # Cookies the tool set in the iframe are partitioned under the LMS's site.
    tool_cookies = {c["name"]: c for c in page.context.cookies(live_server.url)}
    assert tool_cookies["sessionid"]["sameSite"] == "None" and tool_cookies["sessionid"]["secure"] is True
    context.close()


def test_without_third_party_cookies_the_launch_uses_lms_storage_and_a_new_window(
    lms: PlatformEmulator,
    live_server: LiveServer,
    dramatiq_worker: Worker,
    strict_browser: Browser,
    demo_clip: Path,
    key_prefix: str,
    settings: Settings,
) -> None:
    settings.LTI_PARTITIONED_COOKIES = False  # plain third-party cookies: what the phase-out blocks
    lesson = _graded_lesson(lms, demo_clip, key_prefix)
    context = strict_browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{lms.base}/course?user=learner-1&launch=graded&storage=1")
        deadline = time.monotonic() + 30
        offer = None
        while time.monotonic() < deadline and offer is None:
            for frame in page.frames:
                if frame.url.startswith(live_server.url) and frame.locator("#lti-open-new-window").count():
                    offer = frame
            page.wait_for_timeout(100)
        assert offer is not None, [frame.url for frame in page.frames]
        # The state went through the LMS's postMessage storage: put at login, read back at launch.
        assert page.evaluate("window.ltiStorageLog") == ["lti.put_data", "lti.put_data", "lti.get_data"]
        assert LtiUser.objects.filter(sub="learner-sub-1").exists()
        with page.expect_popup() as popup_info:
            offer.locator("#lti-open-new-window").click()
        popup = popup_info.value
        # The new window signs in only when the learner presses its button (a POST with CSRF).
        popup.locator("#lti-handoff-continue").click()
        popup.wait_for_url(f"{live_server.url}/lti/lesson/{lesson.public_id}/", timeout=15_000)
        _watch_to_the_end(popup.main_frame)
        _wait_for_scores(lms, 1)
        assert [s["activityProgress"] for s in lms.recorded.scores if s["activityProgress"] == "Completed"] == [
            "Completed"
        ]
    finally:
        context.close()
