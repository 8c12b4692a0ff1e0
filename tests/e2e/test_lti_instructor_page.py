"""The instructor page in a real browser, in the LMS's iframe with third-party cookies phased out: a learner
watches a published lesson to the end with the real player (its own progress reports, none posted by the
test); the instructor of the same LMS course then opens the instructor page from their launch and sees the
learner's seconds watched, completion and the very score the LMS gradebook (the emulator) received; the
learner asking for that page gets 403."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from dramatiq import Worker
from playwright.sync_api import Browser, Frame, Page
from pytest_django.live_server_helper import LiveServer

from lti.models import LtiContext, LtiScore
from tests.e2e.conftest import lti_lesson_frame
from tests.e2e.test_lti_iframe import _graded_lesson, _watch_to_the_end
from tests.lti.platform_emulator import PlatformEmulator

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _tool_frame_with(page: Page, live_server: LiveServer, selector: str) -> Frame:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for frame in page.frames:
            if frame.url.startswith(live_server.url) and frame.locator(selector).count():
                return frame
        page.wait_for_timeout(100)
    raise AssertionError(f"no tool frame shows {selector}: {[frame.url for frame in page.frames]}")


def test_a_learner_watches_and_the_instructor_page_shows_it_with_the_score_the_lms_received(
    lms: PlatformEmulator,
    live_server: LiveServer,
    dramatiq_worker: Worker,
    strict_browser: Browser,
    demo_clip: Path,
    key_prefix: str,
) -> None:
    lesson = _graded_lesson(lms, demo_clip, key_prefix)  # a 6 s clip through the real pipeline
    learner_context = strict_browser.new_context()
    teacher_context = strict_browser.new_context()
    try:
        learner = learner_context.new_page()
        learner.goto(f"{lms.base}/course?user=learner-1&launch=graded")
        frame = lti_lesson_frame(learner, lesson)
        _watch_to_the_end(frame)  # the player reports its own progress (and on the end)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not LtiScore.objects.filter(activity_progress="Completed").exists():
            time.sleep(0.1)
        score = LtiScore.objects.get()
        while time.monotonic() < deadline and score.posted_version < score.version:
            time.sleep(0.1)
            score.refresh_from_db()
        assert (score.activity_progress, score.posted_version) == ("Completed", score.version)
        (received,) = [s for s in lms.recorded.scores if s["activityProgress"] == "Completed"]
        assert received["userId"] == "learner-sub-1"

        # The instructor's launch of the same LMS course shows the link to the instructor page.
        teacher = teacher_context.new_page()
        teacher.goto(f"{lms.base}/course?user=teacher-1&launch=first")
        launched = _tool_frame_with(teacher, live_server, "#lti-instructor-link")
        launched.locator("#lti-instructor-link").click()
        instructor = _tool_frame_with(teacher, live_server, "#instructor-learners")
        context = LtiContext.objects.get()
        assert f"/lti/instructor/{context.public_id}/" in instructor.url
        (row,) = instructor.locator("#instructor-learners tbody tr").all()
        cells = [cell.inner_text().strip() for cell in row.locator("td").all()]
        assert cells[:3] == ["Ada Lovelace", "Refraction", "6 of 6"]
        assert cells[3].startswith("Yes (")
        shown = f"Refraction: {received['scoreGiven']:g} / {received['scoreMaximum']:g}, sent"
        assert cells[4] == shown == "Refraction: 100 / 100, sent"

        # The learner, signed in in their iframe, is refused the page (and its CSV).
        statuses = frame.evaluate(
            """async (url) => [
                (await fetch(url, {credentials: 'include'})).status,
                (await fetch(url + '?format=csv', {credentials: 'include'})).status,
            ]""",
            f"/lti/instructor/{context.public_id}/",
        )
        assert statuses == [403, 403]
    finally:
        for browser_context in (learner_context, teacher_context):
            browser_context.route("**/*", lambda route: route.abort())  # no last beacon into the flush
            browser_context.close()
