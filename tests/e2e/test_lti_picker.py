"""The lesson picker in a real browser, inside the emulated LMS's cross-site iframe with third-party
cookies phased out: a first-time instructor searches the shared library, ticks lessons on two pages,
and the LMS receives both, in the order ticked; an instructor of another LMS never sees that
library, and once the course is unshared nobody does (tests/lti/test_shared_library.py covers the rest)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from playwright.sync_api import Browser, expect
from pytest_django.live_server_helper import LiveServer

from courses.models import Course, Lesson
from lti.models import LtiPlatform
from lti.platforms import platform_register
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


def test_a_shared_lesson_is_hidden_from_another_lms_and_from_everyone_once_unshared(
    lms: PlatformEmulator, live_server: LiveServer, strict_browser: Browser
) -> None:
    from tests.lti.conftest import start_emulator

    course = Course.objects.create(slug="acoustics-library", title="Acoustics library")
    Lesson.objects.create(course=course, title="Standing waves", position=1)
    course_share(course=course, platform=LtiPlatform.objects.get(issuer=lms.issuer), by=None)
    launch = {"message_type": "LtiDeepLinkingRequest", "accept_multiple": True}
    lms.launches["dl"] = launch

    context = strict_browser.new_context()
    try:
        page = context.new_page()
        elsewhere = start_emulator(tool_url=live_server.url)
        elsewhere.client_id = "tool-client-2"  # a client id is unique to one LMS
        with elsewhere as other:
            platform_register(**other.registration_args, deployment_ids=[other.deployment_id])
            other.launches["dl"] = launch
            # The same teacher's name on another LMS: another platform's instructor, none of its shares.
            page.goto(f"{other.base}/course?user=teacher-1&launch=dl")
            tool = page.frame_locator("#tool")
            expect(tool.locator(".picker-source", has_text="Shared library")).to_have_text(
                "Shared library (0)", timeout=30_000
            )
            tool.get_by_role("button", name="Shared library").click()
            tool.get_by_label("Search the shared library").fill("Standing waves")
            tool.get_by_label("Search the shared library").press("Enter")
            expect(tool.locator("#lti-picker-results")).to_contain_text("0 lessons match “Standing waves”.")
            expect(tool.get_by_label("Acoustics library: Standing waves")).to_have_count(0)

        # The first LMS's instructor sees it, until the course is unshared and the picker reopened.
        page.goto(f"{lms.base}/course?user=teacher-1&launch=dl")
        tool = page.frame_locator("#tool")
        expect(tool.get_by_label("Acoustics library: Standing waves")).to_have_count(1, timeout=30_000)
        call_command("lti_share_course", course.slug, "--issuer", lms.issuer, "--unshare", stdout=StringIO())
        page.goto(f"{lms.base}/course?user=teacher-1&launch=dl")
        tool = page.frame_locator("#tool")
        expect(tool.locator(".picker-source", has_text="Shared library")).to_have_text(
            "Shared library (0)", timeout=30_000
        )
        expect(tool.get_by_label("Acoustics library: Standing waves")).to_have_count(0)
    finally:
        context.close()
    assert lms.recorded.deep_link_responses == []
