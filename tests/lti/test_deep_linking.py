"""Deep Linking 2.0: an instructor picks lessons; the platform gets a signed LtiDeepLinkingResponse
that it verifies against our /lti/jwks/ over HTTP; the links it then launches play those lessons."""

from __future__ import annotations

import html
import re
import urllib.request
from urllib.parse import urlencode

import pytest
from django.test import Client

from courses.models import Course, Lesson
from lti.models import LtiContext, LtiResourceLink, LtiToolKey, LtiUser
from playback.access import Verdict, can_watch
from tests.lti.conftest import full_launch
from tests.lti.platform_emulator import PlatformEmulator

pytestmark = pytest.mark.django_db(transaction=True)


def _teacher_with_lessons(emulator: PlatformEmulator) -> tuple[Client, list[Lesson]]:
    teacher = Client()
    assert full_launch(teacher, emulator, user="teacher-1", launch="first").status_code == 200
    course = LtiContext.objects.get().course
    lessons = [
        Lesson.objects.create(course=course, title="Lenses", description="Bending light.", position=0),
        Lesson.objects.create(course=course, title="Mirrors", position=1),
        Lesson.objects.create(course=course, title="Draft", position=2, state="draft"),
    ]
    Course.objects.create(slug="other", title="Someone else's", published=True).lessons.create(title="Not mine")
    return teacher, lessons


def _post_return_form(page: str) -> tuple[str, str]:
    action = html.unescape(re.search(r'id="lti-deep-link-return" method="post" action="([^"]+)"', page).group(1))
    token = re.search(r'name="JWT" value="([^"]+)"', page).group(1)
    return action, token


def test_instructor_picks_lessons_and_the_platform_gets_a_signed_response(live_emulator: PlatformEmulator) -> None:
    emulator = live_emulator
    teacher, lessons = _teacher_with_lessons(emulator)
    emulator.launches["dl"] = {"message_type": "LtiDeepLinkingRequest", "accept_multiple": True, "data": "csrf-xyz"}
    response = full_launch(teacher, emulator, user="teacher-1", launch="dl")
    assert response.status_code == 302 and response["Location"] == "/lti/deep-link/"
    picker = teacher.get("/lti/deep-link/")
    assert picker.status_code == 200
    titles = re.findall(r"Physics 101: (\w+)</label>", picker.content.decode())
    assert titles == ["Lenses", "Mirrors"]  # published lessons of the courses this instructor teaches
    assert picker["Content-Security-Policy"] == f"frame-ancestors 'self' {emulator.base}"

    answer = teacher.post("/lti/deep-link/", {"lesson": [str(lessons[0].public_id), str(lessons[1].public_id)]})
    assert answer.status_code == 200
    action, token = _post_return_form(answer.content.decode())
    assert action == f"{emulator.base}/deep_link_return"
    # The browser's auto-submitted form, as real HTTP: the platform verifies the JWT against our JWKS.
    request = urllib.request.Request(action, data=urlencode({"JWT": token}).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert reply.status == 200
    (received,) = emulator.recorded.deep_link_responses
    claims, header = received["claims"], received["header"]
    assert (header["alg"], header["kid"]) == ("RS256", LtiToolKey.objects.get(active=True).kid)
    assert (claims["iss"], claims["aud"]) == (emulator.client_id, emulator.issuer)
    assert claims["exp"] - claims["iat"] == 300 and len(claims["nonce"]) == 32
    lti = "https://purl.imsglobal.org/spec/lti/claim/"
    assert claims[lti + "deployment_id"] == emulator.deployment_id
    assert claims[lti + "message_type"] == "LtiDeepLinkingResponse"
    assert claims[lti + "version"] == "1.3.0"
    assert claims["https://purl.imsglobal.org/spec/lti-dl/claim/data"] == "csrf-xyz"
    items = claims["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
    assert [item["title"] for item in items] == ["Lenses", "Mirrors"]
    first = items[0]
    assert first["type"] == "ltiResourceLink" and first["url"] == f"{emulator.tool_url}/lti/launch/"
    assert first["text"] == "Bending light."
    assert first["custom"]["lesson"] == str(lessons[0].public_id) and first["custom"]["lesson_grant"]
    assert first["lineItem"] == {"scoreMaximum": 100, "label": "Lenses", "resourceId": str(lessons[0].public_id)}
    # The picker is used up.
    assert teacher.post("/lti/deep-link/", {"lesson": [str(lessons[0].public_id)]}).status_code == 403

    # The platform now launches that link, even from another LMS course: the grant proves we offered it.
    emulator.launches["placed"] = {
        "custom": first["custom"],
        "resource_link": {"id": "placed-1", "title": "Lenses"},
        "context": {"id": "course-202", "title": "Physics 202"},
    }
    learner = Client()
    response = full_launch(learner, emulator, user="learner-1", launch="placed")
    assert response.status_code == 302
    assert LtiResourceLink.objects.get(resource_link_id="placed-1").lesson == lessons[0]
    user = LtiUser.objects.get(sub="learner-sub-1").user
    assert can_watch(user=user, lesson=lessons[0]).verdict is Verdict.NOT_READY  # entitled; no video yet
    assert can_watch(user=user, lesson=lessons[1]).verdict is Verdict.DENIED


def test_a_tampered_lesson_grant_is_refused(live_emulator: PlatformEmulator) -> None:
    emulator = live_emulator
    _, lessons = _teacher_with_lessons(emulator)
    emulator.launches["placed"] = {
        "custom": {"lesson": str(lessons[0].public_id), "lesson_grant": "forged"},
        "context": {"id": "course-202", "title": "Physics 202"},
    }
    before = (LtiUser.objects.count(), LtiResourceLink.objects.count(), LtiContext.objects.count())
    response = full_launch(Client(), emulator, user="learner-1", launch="placed")
    assert response.status_code == 403 and b"not available to this platform" in response.content
    assert (LtiUser.objects.count(), LtiResourceLink.objects.count(), LtiContext.objects.count()) == before


def test_learners_cannot_deep_link_and_instructors_only_offer_their_lessons(live_emulator: PlatformEmulator) -> None:
    emulator = live_emulator
    teacher, lessons = _teacher_with_lessons(emulator)
    emulator.launches["dl"] = {"message_type": "LtiDeepLinkingRequest", "accept_multiple": False}
    users = LtiUser.objects.count()
    learner_response = full_launch(Client(), emulator, user="learner-1", launch="dl")
    assert learner_response.status_code == 403, learner_response.content.decode()
    assert b"Only instructors can add lessons" in learner_response.content
    assert LtiUser.objects.count() == users

    assert full_launch(teacher, emulator, user="teacher-1", launch="dl").status_code == 302
    not_mine = Lesson.objects.get(title="Not mine")
    refused = teacher.post("/lti/deep-link/", {"lesson": [str(not_mine.public_id)]})
    assert refused.status_code == 403 and b"not yours to offer" in refused.content
    draft = teacher.post("/lti/deep-link/", {"lesson": [str(lessons[2].public_id)]})
    assert draft.status_code == 403
    two = teacher.post("/lti/deep-link/", {"lesson": [str(lessons[0].public_id), str(lessons[1].public_id)]})
    assert two.status_code == 400 and b"only one lesson" in two.content
    assert emulator.recorded.deep_link_responses == []


def test_a_return_url_that_is_not_https_refuses_the_launch(live_emulator: PlatformEmulator) -> None:
    emulator = live_emulator
    teacher, _ = _teacher_with_lessons(emulator)
    emulator.launches["dl"] = {
        "message_type": "LtiDeepLinkingRequest",
        "return_url": "javascript:alert(document.domain)",
    }
    before = (LtiUser.objects.count(), LtiContext.objects.count())
    response = full_launch(teacher, emulator, user="teacher-1", launch="dl")
    assert response.status_code == 400 and b"return URL must be an https URL" in response.content
    assert "lti_deep_link" not in teacher.session
    assert teacher.get("/lti/deep-link/").status_code == 403  # no picker, so no form with that action
    assert (LtiUser.objects.count(), LtiContext.objects.count()) == before
