"""The lesson picker in a real browser, inside the emulated LMS's cross-site iframe with third-party
cookies phased out: a first-time instructor searches the shared library, ticks lessons on two pages,
and the LMS receives both, in the order ticked (tests/lti/test_shared_library.py covers the rest)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from courses.models import Course, Lesson
from lti.models import LtiPlatform
from lti.sharing import course_share
from tests.lti.platform_emulator import PlatformEmulator

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_instructor_picks_shared_lessons_on_two_pages_in_the_lms_iframe(
    lms: PlatformEmulator, strict_browser: Browser
) -> None:
    course = Course.objects.create(slug="optics-library", title="Optics library")
    Lesson.objects.bulk_create(
        [Lesson(course=course, title=f"Lens {n:02d}", position=n) for n in range(25)]
        + [Lesson(course=course, title=f"Prism {n}", position=30 + n) for n in range(5)]
    )
    course_share(course=course, platform=LtiPlatform.objects.get(issuer=lms.issuer), by=None)
    lms.launches["dl"] = {"message_type": "LtiDeepLinkingRequest", "accept_multiple": True, "data": "dl-data"}

    context = strict_browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{lms.base}/course?user=teacher-1&launch=dl")
        tool = page.frame_locator("#tool")
        results = tool.locator("#lti-picker-results")
        expect(results).to_contain_text("30 lessons; page 1 of 2.", timeout=30_000)
        tool.get_by_label("Search the shared library").fill("LENS")
        tool.get_by_label("Search the shared library").press("Enter")
        expect(results).to_contain_text("25 lessons match “LENS”; page 1 of 2.")
        tool.get_by_label("Optics library: Lens 03").check()
        tool.get_by_role("button", name="Next page").click()
        expect(results).to_contain_text("page 2 of 2. 1 selected")
        tool.get_by_label("Optics library: Lens 22").check()
        tool.get_by_role("button", name="Add to the course").click()
        expect(tool.locator("#done")).to_have_text("Content added", timeout=15_000)
    finally:
        context.close()

    (response,) = lms.recorded.deep_link_responses
    claims = response["claims"]
    assert claims["https://purl.imsglobal.org/spec/lti-dl/claim/data"] == "dl-data"
    items = claims["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
    assert [item["title"] for item in items] == ["Lens 03", "Lens 22"]
