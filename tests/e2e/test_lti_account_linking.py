"""An instructor links their LMS identity to their educator account on this site, in a real browser.

The emulated LMS (http://127.0.0.1:<port>) embeds the tool (http://localhost:<port>) in a cross-site
iframe, so the tool's cookies there are third-party: with third-party cookies phased out, the iframe
keeps only its own partitioned cookies, and never the site's first-party sign-in. The instructor opens
the lesson picker (Deep Linking) from the LMS, finds nothing to pick, links their account in the
first-party window the picker opens (username and password), and on the next deep-linking launch
picks one of that educator's lessons; the LMS receives it.
"""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, Frame, Page
from pytest_django.live_server_helper import LiveServer

from courses.models import Course, Lesson
from lti.models import LtiUser
from tests.lti.platform_emulator import PlatformEmulator

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"


def _tool_frame(page: Page, base_url: str, selector: str) -> Frame:
    """The frame of the LMS page where the tool shows ``selector``."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for frame in page.frames:
            if frame.url.startswith(base_url) and frame.locator(selector).count():
                return frame
        page.wait_for_timeout(100)
    raise AssertionError(f"{selector} never appeared; frames: {[f.url for f in page.frames]}")


@pytest.mark.parametrize("third_party_cookies", ["phased out", "allowed"])
def test_an_instructor_links_their_account_and_picks_one_of_its_lessons(
    lms: PlatformEmulator,
    live_server: LiveServer,
    browser: Browser,
    request: pytest.FixtureRequest,
    third_party_cookies: str,
) -> None:
    base_url = live_server.url
    educator = User.objects.create_user("educator", email="e@school.example", password=PASSWORD, is_staff=True)
    course = Course.objects.create(slug="optics", title="Optics")
    course.educators.add(educator)
    lesson = Lesson.objects.create(course=course, title="Refraction")
    lms.launches["dl"] = {"message_type": "LtiDeepLinkingRequest", "accept_multiple": False}
    chromium = request.getfixturevalue("strict_browser") if third_party_cookies == "phased out" else browser
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(f"{lms.base}/course?user=teacher-1&launch=dl")
        picker = _tool_frame(page, base_url, "#lti-link-account")
        assert "You do not teach any course" in picker.inner_text("main")

        with context.expect_page() as opened:
            picker.locator("#lti-link-account").click()
        window = opened.value  # first-party: the iframe's (partitioned) session is not here
        window.wait_for_load_state()
        assert window.url.startswith(f"{base_url}/lti/link/?token=")
        assert window.locator("#lti-link-session").count() == 0
        window.fill("#lti-link-username", "educator")
        window.fill("#lti-link-password", PASSWORD)
        window.click("#lti-link-submit")
        window.wait_for_url(f"{base_url}/account/")
        assert "teacher-sub-1" in window.inner_text("#lti-identities")
        identity = LtiUser.objects.get(sub="teacher-sub-1")
        assert (identity.user_id, identity.link_method) == (educator.pk, "password")

        # Back in the LMS's tab (a click in a tab left in the background may hit nothing), the next
        # deep-linking launch lands in the educator's account: its lessons are there to pick.
        window.close()
        page.bring_to_front()
        page.goto(f"{lms.base}/course?user=teacher-1&launch=dl")
        picker = _tool_frame(page, base_url, "#lti-deep-link-form")
        assert picker.locator("#lti-account-linked").count() == 1
        choice = picker.locator(f"input[name=lesson][value='{lesson.public_id}']")
        choice.check()
        picker.locator("#lti-deep-link-form button[value=add]").click()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not lms.recorded.deep_link_responses:
            page.wait_for_timeout(100)
        (received,) = lms.recorded.deep_link_responses
        items = received["claims"]["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
        assert [(item["title"], item["custom"]["lesson"]) for item in items] == [("Refraction", str(lesson.public_id))]
    finally:
        context.close()
