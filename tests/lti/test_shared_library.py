"""The lesson picker's shared library, search, pages and multiple selection, through real launches from
the platform emulator (HTTP): courses shared with one LMS are pickable by its instructors only, and
every lesson posted back is checked by the same rule that listed it."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from django.db import connection
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse

from courses.models import Course, Lesson
from lti.models import LtiCourseShare, LtiPlatform, LtiResourceLink
from lti.sharing import course_share, course_unshare
from media_pipeline.models import MediaAsset
from playback.access import Verdict, can_watch
from tests.lti.conftest import full_launch, register, start_emulator
from tests.lti.platform_emulator import ROLE_INSTRUCTOR, PlatformEmulator

pytestmark = pytest.mark.django_db

PICKER = "/lti/deep-link/"
CONTENT_ITEMS = "https://purl.imsglobal.org/spec/lti-dl/claim/content_items"


@pytest.fixture
def lms(emulator: PlatformEmulator) -> PlatformEmulator:
    register(emulator)
    emulator.users["teacher-2"] = {"sub": "teacher-sub-2", "roles": [ROLE_INSTRUCTOR], "name": "Edsger Dijkstra"}
    return emulator


@pytest.fixture
def other_lms(db: None) -> Iterator[PlatformEmulator]:
    """A second LMS, with its own issuer and client id, and the same user names."""
    emulator = start_emulator(tool_url="http://testserver")
    emulator.client_id = "tool-client-2"
    with emulator as running:
        register(running)
        yield running


def platform_of(emulator: PlatformEmulator) -> LtiPlatform:
    return LtiPlatform.objects.get(issuer=emulator.issuer, client_id=emulator.client_id)


def library(*, lessons: int = 3, slug: str = "optics-library", title: str = "Optics library") -> list[Lesson]:
    """A course nobody of the LMS teaches, not in the catalogue: published lessons and one draft."""
    course = Course.objects.create(slug=slug, title=title, published=False)
    made = Lesson.objects.bulk_create(
        Lesson(course=course, title=f"Lens {number:02d}", position=number) for number in range(lessons)
    )
    Lesson.objects.create(course=course, title="Draft lens", state="draft", position=lessons)
    return made


def open_picker(client: Client, emulator: PlatformEmulator, *, user: str = "teacher-1", multiple: bool = True) -> None:
    emulator.launches["dl"] = {"message_type": "LtiDeepLinkingRequest", "accept_multiple": multiple, "data": "d-1"}
    response = full_launch(client, emulator, user=user, launch="dl")
    assert response.status_code == 302 and response["Location"] == PICKER


def listed(response: HttpResponse) -> list[str]:
    assert response.status_code == 200
    return [html.unescape(text) for text in re.findall(r'<label for="lesson-[^"]+">([^<]+)</label>', response.text)]


def status_line(response: HttpResponse) -> str:
    found = re.search(r'<p id="lti-picker-results" role="status" aria-live="polite">(.*?)</p>', response.text, re.S)
    assert found is not None
    return " ".join(html.unescape(found.group(1)).split())


def shown_ids(response: HttpResponse) -> list[str]:
    return re.findall(r'name="shown" value="([^"]+)"', response.text)


def returned_items(response: HttpResponse) -> list[dict[str, Any]]:
    """The content items of the signed response the tool's return page posts to the platform."""
    assert response.status_code == 200, response.text[:300]
    token = re.search(r'name="JWT" value="([^"]+)"', response.text)
    assert token is not None
    claims = jwt.decode(token.group(1), options={"verify_signature": False})
    return claims[CONTENT_ITEMS]


def picker_state(client: Client) -> tuple[bool, list[str]]:
    """What a refused post must leave as it was: the open request and the selection so far."""
    return "lti_deep_link" in client.session, list(client.session.get("lti_deep_link_selection", []))


def test_a_shared_course_is_pickable_by_any_instructor_of_that_platform_and_no_other(
    lms: PlatformEmulator, other_lms: PlatformEmulator
) -> None:
    lenses = library()
    course_share(course=lenses[0].course, platform=platform_of(lms), by=None)
    first, second, stranger = Client(), Client(), Client()
    open_picker(first, lms, user="teacher-1")
    open_picker(second, lms, user="teacher-2")
    open_picker(stranger, other_lms, user="teacher-1")

    # First-time instructors teach nothing yet: the picker opens on the shared library.
    expected = ["Optics library: Lens 00", "Optics library: Lens 01", "Optics library: Lens 02"]
    for client in (first, second):
        page = client.get(PICKER)
        assert listed(page) == expected
        assert 'aria-current="page">Shared library <span class="count">(3)</span>' in page.text
        assert 'aria-current="page">Your courses' not in page.text
    elsewhere = stranger.get(PICKER)
    assert listed(elsewhere) == [] and "You do not teach any course with published lessons yet." in elsewhere.text
    elsewhere = stranger.get(PICKER, {"source": "shared"})
    assert listed(elsewhere) == [] and "No course is shared with your LMS yet." in elsewhere.text

    # The other LMS's instructor cannot post it either; nothing is answered and their picker is intact.
    before = picker_state(stranger)
    refused = stranger.post(PICKER, {"lesson": [str(lenses[1].public_id)]})
    assert refused.status_code == 403 and "not yours to offer" in refused.text
    assert "JWT" not in refused.text and picker_state(stranger) == before == (True, [])

    items = returned_items(second.post(PICKER, {"lesson": [str(lenses[1].public_id)]}))
    assert [(item["title"], item["custom"]["lesson"]) for item in items] == [("Lens 01", str(lenses[1].public_id))]

    # A learner of that LMS launches the placed link: its grant makes the lesson theirs to watch.
    lms.launches["placed"] = {
        "custom": items[0]["custom"],
        "resource_link": {"id": "placed-7", "title": "Lens 01"},
        "context": {"id": "course-303", "title": "Physics 303"},
    }
    assert full_launch(Client(), lms, user="learner-1", launch="placed").status_code == 302
    link = LtiResourceLink.objects.get(resource_link_id="placed-7")
    assert link.lesson == lenses[1]
    learner = link.grants.get().user
    assert can_watch(user=learner, lesson=lenses[1]).verdict is Verdict.NOT_READY  # entitled; no video yet
    assert can_watch(user=learner, lesson=lenses[0]).verdict is Verdict.DENIED

    # The same item copied into the other LMS: its grant was signed for the first one only.
    other_lms.launches["copied"] = {"custom": items[0]["custom"], "resource_link": {"id": "copied-1"}}
    links = LtiResourceLink.objects.count()
    copied = full_launch(Client(), other_lms, user="learner-1", launch="copied")
    assert copied.status_code == 403 and "not available to this platform" in copied.text
    assert LtiResourceLink.objects.count() == links


def test_an_unshared_course_disappears_from_the_picker_and_its_lessons_are_refused(lms: PlatformEmulator) -> None:
    lenses = library(lessons=2)
    platform = platform_of(lms)
    course_share(course=lenses[0].course, platform=platform, by=None)
    teacher = Client()
    open_picker(teacher, lms)
    assert listed(teacher.get(PICKER)) == ["Optics library: Lens 00", "Optics library: Lens 01"]
    # Ticked on page one, then the course is unshared while the instructor is still choosing.
    ticked = teacher.post(PICKER, {"action": "search", "source": "shared", "lesson": [str(lenses[0].public_id)]})
    assert ticked.status_code == 302
    assert picker_state(teacher) == (True, [str(lenses[0].public_id)])

    assert course_unshare(course=lenses[0].course, platform=platform, by=None) is True
    page = teacher.get(PICKER, {"source": "shared"})
    assert listed(page) == [] and "Selected" not in page.text
    before = picker_state(teacher)
    refused = teacher.post(PICKER, {"action": "add"})
    assert refused.status_code == 403 and "not yours to offer" in refused.text
    assert picker_state(teacher) == before


def test_forged_draft_and_unknown_lessons_are_refused_and_change_nothing(lms: PlatformEmulator) -> None:
    lenses = library(lessons=1)
    course_share(course=lenses[0].course, platform=platform_of(lms), by=None)
    draft = Lesson.objects.get(title="Draft lens")
    teacher = Client()
    open_picker(teacher, lms)
    before = picker_state(teacher)
    for forged in ("not-a-lesson-id", "00000000-0000-4000-8000-000000000000", str(draft.public_id)):
        refused = teacher.post(PICKER, {"lesson": [str(lenses[0].public_id), forged]})
        assert refused.status_code == 403 and "not yours to offer" in refused.text, forged
        assert picker_state(teacher) == before
    nothing = teacher.post(PICKER, {"action": "add"})
    assert nothing.status_code == 400 and "Pick at least one lesson" in nothing.text
    assert picker_state(teacher) == before
    # The LMS is switched off while the picker is open: the picker ends, nothing is sent.
    LtiPlatform.objects.filter(pk=platform_of(lms).pk).update(active=False)
    for response in (teacher.get(PICKER), teacher.post(PICKER, {"lesson": [str(lenses[0].public_id)]})):
        assert response.status_code == 403 and "may no longer use the tool" in response.text
        assert "JWT" not in response.text and picker_state(teacher) == before
    LtiPlatform.objects.filter(pk=platform_of(lms).pk).update(active=True)
    assert returned_items(teacher.post(PICKER, {"lesson": [str(lenses[0].public_id)]}))[0]["title"] == "Lens 00"


def test_search_pages_and_a_selection_across_pages_in_the_order_chosen(lms: PlatformEmulator) -> None:
    lenses = library(lessons=45)
    Lesson.objects.filter(pk=lenses[7].pk).update(description="Bending LIGHT through glass.")
    echoes = Course.objects.create(slug="acoustics", title="Acoustics")
    echo = echoes.lessons.create(title="Echoes")
    for course in (lenses[0].course, echoes):
        course_share(course=course, platform=platform_of(lms), by=None)
    teacher = Client()
    open_picker(teacher, lms)

    first = teacher.get(PICKER)
    assert listed(first) == ["Acoustics: Echoes"] + [f"Optics library: Lens {n:02d}" for n in range(19)]
    assert status_line(first) == "46 lessons; page 1 of 3. 0 selected (at most 50)."
    third = teacher.get(PICKER, {"source": "shared", "page": "3"})
    assert listed(third) == [f"Optics library: Lens {n:02d}" for n in range(39, 45)]
    assert listed(teacher.get(PICKER, {"source": "shared", "page": "99"})) == listed(third)

    # Search (case does not matter): lesson title, description, course title. The query keeps its page.
    searched = teacher.post(PICKER, {"action": "search", "source": "shared", "q": "  lens 4 "})
    assert searched.status_code == 302 and searched["Location"] == f"{PICKER}?source=shared&q=lens+4"
    page = teacher.get(searched["Location"])
    assert listed(page) == [f"Optics library: Lens {n}" for n in range(40, 45)]
    assert status_line(page) == "5 lessons match “lens 4”. 0 selected (at most 50)."
    assert listed(teacher.get(PICKER, {"source": "shared", "q": "bending light"})) == ["Optics library: Lens 07"]
    assert listed(teacher.get(PICKER, {"source": "shared", "q": "ACOUSTICS"})) == ["Acoustics: Echoes"]
    assert listed(teacher.get(PICKER, {"source": "shared", "q": "draft"})) == []
    assert "No lesson matches “draft”." in teacher.get(PICKER, {"source": "shared", "q": "draft"}).text

    # Tick one lesson on page 2, go back to page 1, tick two more there, untick nothing, add: the
    # items come in the order chosen, page 2's first.
    on_page_two = teacher.get(PICKER, {"source": "shared", "page": "2"})
    moved = teacher.post(
        PICKER,
        {
            "action": "page:1",
            "source": "shared",
            "shown": shown_ids(on_page_two),
            "lesson": [str(lenses[30].public_id)],
        },
    )
    assert moved["Location"] == f"{PICKER}?source=shared&page=1"
    back = teacher.get(moved["Location"])
    assert status_line(back).endswith("1 selected (at most 50).")
    assert "<li>Optics library: Lens 30</li>" in back.text  # the Selected list names it
    picks = [str(echo.public_id), str(lenses[3].public_id)]
    items = returned_items(teacher.post(PICKER, {"action": "add", "shown": shown_ids(back), "lesson": picks}))
    assert [item["title"] for item in items] == ["Lens 30", "Echoes", "Lens 03"]
    assert "lti_deep_link_selection" not in teacher.session and "lti_deep_link" not in teacher.session


def test_unticking_on_a_page_removes_the_lesson_from_the_selection(lms: PlatformEmulator) -> None:
    lenses = library(lessons=25)
    course_share(course=lenses[0].course, platform=platform_of(lms), by=None)
    teacher = Client()
    open_picker(teacher, lms)
    page_one = shown_ids(teacher.get(PICKER))
    ticked = [str(lenses[0].public_id), str(lenses[1].public_id)]
    teacher.post(PICKER, {"action": "page:2", "source": "shared", "shown": page_one, "lesson": ticked})
    assert picker_state(teacher) == (True, ticked)
    page_two = teacher.get(PICKER, {"source": "shared", "page": "2"})
    assert "checked" not in page_two.text  # page 2 holds none of them; the hidden ones are in the session
    teacher.post(PICKER, {"action": "page:1", "source": "shared", "shown": shown_ids(page_two), "lesson": []})
    page_one_again = teacher.get(PICKER, {"source": "shared", "page": "1"})
    assert page_one_again.text.count(" checked") == 2
    teacher.post(PICKER, {"action": "search", "source": "shared", "shown": page_one, "lesson": ticked[1:]})
    assert picker_state(teacher) == (True, ticked[1:])


def test_the_picker_page_costs_the_same_queries_for_3_or_63_lessons(lms: PlatformEmulator) -> None:
    lenses = library(lessons=3)
    course = lenses[0].course
    asset = MediaAsset.objects.create(
        key_prefix="lessons/x", status="ready", published_version=1, duration_seconds=75.4
    )
    Lesson.objects.filter(pk=lenses[0].pk).update(asset=asset)
    course_share(course=course, platform=platform_of(lms), by=None)
    teacher = Client()
    open_picker(teacher, lms)
    teacher.post(
        PICKER, {"action": "search", "source": "shared", "lesson": [str(lenses[1].public_id), str(lenses[2].public_id)]}
    )

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert teacher.get(PICKER, {"source": "shared"}).status_code == 200
        return len(captured)

    page = teacher.get(PICKER, {"source": "shared"})
    assert '<span class="visually-hidden">Length </span>1:15</span>' in page.text  # the video's duration
    # Session, user, platform, the two sources' counts, the selected lessons, the page's rows, the launch's
    # LMS identity (the offer to link it to a site account), and the origins allowed to frame the page.
    # Without a search the paginator reuses the source's count (no second count of the library).
    few = queries()
    assert few == 9
    Lesson.objects.bulk_create(Lesson(course=course, title=f"More {n}", position=10 + n) for n in range(60))
    assert queries() == few
    assert len(listed(teacher.get(PICKER, {"source": "shared"}))) == 20


def test_single_selection_radios_and_the_cap_on_multiple_selection(lms: PlatformEmulator) -> None:
    lenses = library(lessons=55)
    course_share(course=lenses[0].course, platform=platform_of(lms), by=None)
    single = Client()
    open_picker(single, lms, multiple=False)
    page = single.get(PICKER)
    assert page.text.count('type="radio" name="lesson"') == 20 and 'type="checkbox"' not in page.text
    assert "selected (at most" not in status_line(page)
    two = [str(lenses[0].public_id), str(lenses[1].public_id)]
    before = picker_state(single)
    refused = single.post(PICKER, {"lesson": two})
    assert refused.status_code == 400 and "only one lesson" in refused.text
    assert picker_state(single) == before
    # A lesson picked on page 1 stays picked on page 2, until one is picked there.
    single.post(PICKER, {"action": "page:2", "source": "shared", "shown": shown_ids(page), "lesson": two[:1]})
    assert [item["title"] for item in returned_items(single.post(PICKER, {"action": "add"}))] == ["Lens 00"]

    many = Client()
    open_picker(many, lms, multiple=True)
    all_ids = [str(lesson.public_id) for lesson in lenses]
    before = picker_state(many)
    too_many = many.post(PICKER, {"action": "add", "lesson": all_ids[:51]})
    assert too_many.status_code == 400 and "Pick at most 50 lessons at once" in too_many.text
    assert picker_state(many) == before
    capped = many.post(PICKER, {"action": "page:2", "source": "shared", "lesson": all_ids[:51]})
    assert capped["Location"] == f"{PICKER}?source=shared&page=2&capped=1"
    assert picker_state(many) == (True, all_ids[:50])
    assert "only the first 50 you picked are kept" in many.get(capped["Location"]).text
    assert len(returned_items(many.post(PICKER, {"action": "add"}))) == 50


def test_the_picker_page_is_labelled_and_offers_upload_only_when_the_platform_allows(lms: PlatformEmulator) -> None:
    lenses = library(lessons=2)
    course_share(course=lenses[0].course, platform=platform_of(lms), by=None)
    teacher = Client()
    open_picker(teacher, lms)
    text = teacher.get(PICKER).text
    # Every control has a label; the lessons are a fieldset with a legend; the result count is a live region.
    ids = re.findall(r'<input type="(?:checkbox|radio|search)"[^>]* id="([^"]+)"', text)
    assert ids and all(f'<label for="{control_id}">' in text for control_id in ids)
    assert '<fieldset class="picker-lessons">\n    <legend>Lessons shared with your LMS</legend>' in text
    assert 'role="status" aria-live="polite"' in text and 'role="search"' in text
    assert "Upload a new video" not in text

    LtiPlatform.objects.filter(pk=platform_of(lms).pk).update(lms_upload_enabled=True)
    try:
        upload_url: str | None = reverse("lti:deep-link-upload")
    except NoReverseMatch:  # the upload page is a separate view; without it the picker offers no link
        upload_url = None
    enabled = teacher.get(PICKER).text
    assert ("Upload a new video" in enabled) is (upload_url is not None)
    if upload_url is not None:
        assert f'<a href="{upload_url}" class="picker-source" id="lti-deep-link-upload">' in enabled


def test_own_courses_come_first_and_stay_pickable(lms: PlatformEmulator) -> None:
    teacher = Client()
    assert full_launch(teacher, lms, user="teacher-1", launch="first").status_code == 200
    mine = Course.objects.get(lti_contexts__context_id="course-101")
    own = mine.lessons.create(title="Prisms")
    lenses = library(lessons=1)
    course_share(course=lenses[0].course, platform=platform_of(lms), by=None)
    open_picker(teacher, lms)
    page = teacher.get(PICKER)
    assert listed(page) == ["Physics 101: Prisms"]
    assert 'aria-current="page">Your courses <span class="count">(1)</span>' in page.text
    switched = teacher.post(
        PICKER, {"action": "source:shared", "source": "mine", "q": "pri", "lesson": [str(own.public_id)]}
    )
    assert switched["Location"] == f"{PICKER}?source=shared"
    assert listed(teacher.get(switched["Location"])) == ["Optics library: Lens 00"]
    items = returned_items(teacher.post(PICKER, {"action": "add", "lesson": [str(lenses[0].public_id)]}))
    assert [item["title"] for item in items] == ["Prisms", "Lens 00"]
    assert LtiCourseShare.objects.count() == 1
