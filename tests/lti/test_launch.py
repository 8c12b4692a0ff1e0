"""Resource link launches end to end: OIDC login, the platform's signed id_token, provisioning."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import User
from django.test import Client

from courses.models import Course, Enrollment, Lesson
from lti.models import LtiContext, LtiLaunchGrant, LtiLoginState, LtiNonce, LtiResourceLink, LtiUser
from media_pipeline.models import MediaAsset
from playback.access import Verdict, can_watch
from tests.lti.conftest import authorize, full_launch, register, start_login
from tests.lti.platform_emulator import ROLE_TA, PlatformEmulator

pytestmark = pytest.mark.django_db


def _lesson(*, course: Course | None = None) -> Lesson:
    course = course or Course.objects.create(slug="optics", title="Optics", published=False)
    asset = MediaAsset.objects.create(key_prefix="lessons/x", status="ready", published_version=1, duration_seconds=6)
    return Lesson.objects.create(course=course, title="Refraction", asset=asset)


def test_login_redirects_to_the_platform_with_every_oidc_parameter(emulator: PlatformEmulator) -> None:
    register(emulator)
    client = Client()
    response = client.post("/lti/login/", emulator.login_params(login_hint="learner-1", message_hint="hint-9"))
    assert response.status_code == 302
    url = urlsplit(response["Location"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{emulator.base}/auth"
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    state = query.pop("state")
    nonce = query.pop("nonce")
    assert query == {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": emulator.client_id,
        "redirect_uri": "http://testserver/lti/launch/",
        "login_hint": "learner-1",
        "lti_message_hint": "hint-9",
    }
    assert len(state) >= 40 and len(nonce) >= 40 and state != nonce
    cookie = response.cookies[f"lti_state_{state[:16]}"]
    assert cookie.value == state
    assert (cookie["secure"], cookie["samesite"], cookie["path"]) == (True, "None; Partitioned", "/lti/")
    assert LtiLoginState.objects.get(state=state).nonce == nonce


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"iss": "https://unknown.example"}, "not registered"),
        ({"client_id": "someone-else"}, "not registered"),
        ({"target_link_uri": "https://evil.example/lti/launch/"}, "not one of this tool"),
        ({"lti_deployment_id": "unknown-deployment"}, "deployment is not registered"),
        ({"login_hint": ""}, "needs iss, login_hint and target_link_uri"),
    ],
)
def test_login_refuses_what_is_not_ours(emulator: PlatformEmulator, change: dict, reason: str) -> None:
    register(emulator)
    params = {**emulator.login_params(login_hint="learner-1", message_hint="x"), **change}
    response = Client().get("/lti/login/", params)
    assert response.status_code in (400, 403)
    assert reason in response.content.decode()
    assert LtiLoginState.objects.count() == 0
    assert not any(name.startswith("lti_state_") for name in response.cookies)


def test_learner_launch_provisions_user_enrolment_link_and_grant(emulator: PlatformEmulator) -> None:
    register(emulator)
    # An instructor opens the LMS course first: the context gets a course of its own.
    teacher = Client()
    assert full_launch(teacher, emulator, user="teacher-1", launch="none").status_code == 200
    context = LtiContext.objects.get()
    assert context.course is not None and context.course.title == "Physics 101" and not context.course.published
    assert list(context.course.educators.values_list("lti_identities__sub", flat=True)) == ["teacher-sub-1"]
    lesson = _lesson(course=context.course)
    emulator.launches["launch-1"] = {
        "custom": {"lesson": str(lesson.public_id)},
        "lineitem": emulator.lineitem_url("li-1"),
    }

    client = Client()
    response = full_launch(client, emulator, user="learner-1", launch="launch-1")
    assert response.status_code == 302
    assert response["Location"].startswith(f"/lti/lesson/{lesson.public_id}/?handoff=")

    identity = LtiUser.objects.get(sub="learner-sub-1")
    user = identity.user
    assert (identity.issuer, user.first_name, user.last_name, user.email) == (
        emulator.issuer, "Ada", "Lovelace", "ada@lms.example",
    )  # fmt: skip
    assert not user.has_usable_password() and not user.is_staff
    assert list(Enrollment.objects.filter(user=user).values_list("course", flat=True)) == [context.course_id]
    link = LtiResourceLink.objects.get(resource_link_id="link-1")
    assert (link.lesson, link.context, link.title, link.lineitem_url) == (
        lesson,
        context,
        "Week 1",
        emulator.lineitem_url("li-1"),
    )
    assert LtiLaunchGrant.objects.get(user=user).resource_link == link
    # The session is the launched user's, and the lesson page plays in the iframe.
    page = client.get(response["Location"])
    assert page.status_code == 200 and b'id="lesson-video"' in page.content
    assert page.get("X-Frame-Options") is None
    assert page["Content-Security-Policy"] == f"frame-ancestors 'self' {emulator.base}"
    # The launch is an entitlement even though the course is not in the catalogue.
    assert can_watch(user=user, lesson=lesson).verdict is Verdict.ALLOWED

    # A second launch by the same person reuses everything.
    assert full_launch(Client(), emulator, user="learner-1", launch="launch-1").status_code == 302
    assert (User.objects.filter(lti_identities__isnull=False).count(), LtiResourceLink.objects.count()) == (2, 1)
    assert LtiNonce.objects.count() == 3


def test_instructor_launch_makes_an_educator_of_the_linked_course(emulator: PlatformEmulator) -> None:
    platform = register(emulator)
    platform.teaching_assistants_instruct = True  # off by default (tests/lti/test_account_linking.py)
    platform.save()
    lesson = _lesson()
    emulator.users["ta-1"] = {"sub": "ta-sub", "roles": [ROLE_TA]}
    emulator.launches["launch-1"] = {"custom": {"lesson": str(lesson.public_id)}}
    # A superuser links the LMS course to an existing course before anyone launches.
    context_course = lesson.course
    assert full_launch(Client(), emulator, user="teacher-1", launch="launch-1").status_code == 403  # not offered yet
    assert LtiContext.objects.count() == 0

    response = full_launch(Client(), emulator, user="teacher-1", launch="plain")
    assert response.status_code == 200 and b"No lesson is linked here yet" in response.content
    context = LtiContext.objects.get()
    context.course = context_course
    context.save()
    response = full_launch(Client(), emulator, user="ta-1", launch="launch-1")
    assert response.status_code == 302
    ta = LtiUser.objects.get(sub="ta-sub").user
    assert list(context_course.educators.all()) == [ta]
    assert Enrollment.objects.filter(user=ta).count() == 0
    assert can_watch(user=ta, lesson=lesson).verdict is Verdict.ALLOWED


def test_launch_without_the_state_cookie_is_refused(emulator: PlatformEmulator) -> None:
    register(emulator)
    login = start_login(Client(), emulator)
    form = authorize(login.auth_url)
    response = Client().post("/lti/launch/", form)  # another browser: no state cookie
    assert response.status_code == 403
    assert b"open the tool in a new window" in response.content
    assert (LtiUser.objects.count(), LtiNonce.objects.count()) == (0, 0)
    assert LtiLoginState.objects.get().used_at is None


def test_state_and_nonce_are_single_use(emulator: PlatformEmulator) -> None:
    register(emulator)
    client = Client()
    login = start_login(client, emulator)
    form = authorize(login.auth_url)
    assert client.post("/lti/launch/", form).status_code == 200  # launched; no lesson linked yet
    users = User.objects.count()
    replay = client.post("/lti/launch/", form)
    assert replay.status_code == 400 and b"state is unknown, used or expired" in replay.content
    assert User.objects.count() == users


def test_expired_login_state_is_refused(emulator: PlatformEmulator) -> None:
    register(emulator)
    client = Client()
    login = start_login(client, emulator)
    form = authorize(login.auth_url)
    LtiLoginState.objects.update(expires_at="2020-01-01T00:00:00Z")
    assert client.post("/lti/launch/", form).status_code == 400
    assert LtiUser.objects.count() == 0


def test_lesson_page_refuses_strangers_and_offers_a_new_window_to_cookieless_iframes(
    emulator: PlatformEmulator,
) -> None:
    register(emulator)
    lesson = _lesson()
    emulator.launches["launch-1"] = {"custom": {"lesson": str(lesson.public_id)}}
    teacher = Client()
    full_launch(teacher, emulator, user="teacher-1", launch="none")
    LtiContext.objects.update(course=lesson.course)
    response = full_launch(Client(), emulator, user="learner-1", launch="launch-1")
    handoff_url = response["Location"]

    stranger = Client()
    assert stranger.get(f"/lti/lesson/{lesson.public_id}/").status_code == 403
    # The iframe lost the session cookie: the page offers the same lesson in a new window...
    offer = stranger.get(handoff_url)
    assert offer.status_code == 200 and b"Open the lesson in a new window" in offer.content
    new_window_url = offer.content.decode().split('id="lti-open-new-window" class="button" href="')[1].split('"')[0]
    new_window_url = new_window_url.replace("&amp;", "&")
    token = parse_qs(urlsplit(new_window_url).query)["token"][0]
    window = Client(enforce_csrf_checks=True)
    # A plain GET (a link someone sent, an <img>) signs nobody in: it only shows a button.
    shown = window.get(new_window_url)
    assert shown.status_code == 200 and b'id="lti-handoff-continue"' in shown.content
    assert "_auth_user_id" not in window.session and LtiNonce.objects.filter(issuer="handoff").count() == 0
    # A POST without the page's CSRF token (another site's form) is refused and consumes nothing.
    assert window.post("/lti/handoff/", {"token": token}).status_code == 403
    assert "_auth_user_id" not in window.session and LtiNonce.objects.filter(issuer="handoff").count() == 0
    csrf = shown.content.decode().split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    landed = window.post("/lti/handoff/", {"token": token, "csrfmiddlewaretoken": csrf})
    assert landed.status_code == 302 and landed["Location"] == f"/lti/lesson/{lesson.public_id}/"
    assert window.get(landed["Location"]).status_code == 200
    # ...once.
    assert Client().post("/lti/handoff/", {"token": token}).status_code == 403
    assert Client().get("/lti/handoff/", {"token": "forged"}).status_code == 403


def test_time_skew_is_tolerated_within_a_minute(emulator: PlatformEmulator) -> None:
    register(emulator)
    emulator.claim_overrides = {"iat": int(time.time()) + 45}
    assert full_launch(Client(), emulator).status_code == 200  # no lesson linked, but launched
    assert LtiUser.objects.count() == 1


def test_the_lti_lesson_page_shows_a_draft_only_to_whom_playback_access_allows(emulator: PlatformEmulator) -> None:
    register(emulator)
    teacher = Client()
    full_launch(teacher, emulator, user="teacher-1", launch="none")
    course = LtiContext.objects.get().course
    draft = _lesson(course=course)
    Lesson.objects.filter(pk=draft.pk).update(title="Unannounced exam answers", state="draft")
    draft.refresh_from_db()
    emulator.launches["launch-1"] = {"custom": {"lesson": str(draft.public_id)}}
    learner = Client()
    launched = full_launch(learner, emulator, user="learner-1", launch="launch-1")
    assert launched.status_code == 302 and launched["Location"].startswith(f"/lti/lesson/{draft.public_id}/")
    assert can_watch(user=User.objects.get(lti_identities__sub="learner-sub-1"), lesson=draft).verdict is Verdict.DENIED
    for client in (learner, Client()):  # the launched learner, and a stranger holding the handoff link
        page = client.get(launched["Location"])
        assert b"Unannounced exam answers" not in page.content and b"Refraction" not in page.content
    assert learner.get(launched["Location"]).status_code == 403
    # The course's instructor sees the draft (playback/access.py: educators see their drafts).
    shown = teacher.get(f"/lti/lesson/{draft.public_id}/")
    assert shown.status_code == 200 and b"Unannounced exam answers" in shown.content
