"""Account linking (lti/linking.py, docs/adr/0032): an LMS identity lands in an existing account of this
site once linked, through real launches from the platform emulator and the first-party link page.

Every refusal checks that nothing changed (`_state`)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.utils import timezone

from courses.models import Course, Enrollment, Lesson, LessonProgress
from lti import linking
from lti.models import LtiContext, LtiLaunchGrant, LtiNonce, LtiPlatform, LtiUser
from media_pipeline.models import MediaAsset
from tests.lti.conftest import full_launch, register
from tests.lti.platform_emulator import PlatformEmulator

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
LIS = "http://purl.imsglobal.org/vocab/lis/v2/"


@pytest.fixture
def educator(db: None) -> Iterator[User]:
    """An educator of this site, with a course of their own."""
    user = User.objects.create_user("educator", email="educator@school.example", password=PASSWORD, is_staff=True)
    Course.objects.create(slug="optics", title="Optics").educators.add(user)
    yield user
    for identity_id in LtiUser.objects.values_list("pk", flat=True):
        for username in ("educator", "root", "other", "lti-x"):
            linking.attempts_forget(username=username, identity_id=identity_id)


def _state() -> dict[str, Any]:
    """Everything a link or an unlink may change."""
    return {
        "identities": sorted(LtiUser.objects.values_list("pk", "user_id", "linked_at", "link_method")),
        "users": sorted(User.objects.values_list("pk", "is_active", "password")),
        "educators": sorted(Course.educators.through.objects.values_list("course_id", "user_id")),
        "enrolments": sorted(Enrollment.objects.values_list("course_id", "user_id")),
        "progress": sorted(LessonProgress.objects.values_list("lesson_id", "user_id", "seconds_watched")),
        "grants": sorted(LtiLaunchGrant.objects.values_list("pk", "user_id")),
        "nonces": LtiNonce.objects.filter(issuer="account-link").count(),
    }


def _launch(emulator: PlatformEmulator, client: Client | None = None, *, user: str = "teacher-1") -> HttpResponse:
    """A launch of a link with no lesson yet: the page that offers linking."""
    response = full_launch(client or Client(), emulator, user=user, launch="first")
    assert response.status_code == 200, response.content[:300]
    return response


def _link_token(page: HttpResponse) -> str:
    found = re.search(r'id="lti-link-account" class="button" href="/lti/link/\?token=([^"]+)"', page.content.decode())
    assert found, page.content.decode()
    return html.unescape(found.group(1)).replace("%3A", ":")


def _signed_in(client: Client) -> int:
    return int(client.session["_auth_user_id"])


def _link(client: Client, token: str, *, username: str = "educator", password: str = PASSWORD) -> HttpResponse:
    form = {"token": token, "method": "password", "username": username, "password": password}
    return client.post("/lti/link/", form)


def test_a_password_links_moves_what_the_placeholder_had_and_later_launches_land_in_the_account(
    emulator: PlatformEmulator, educator: User
) -> None:
    register(emulator)
    page = _launch(emulator)
    identity = LtiUser.objects.get(sub="teacher-sub-1")
    placeholder = identity.user
    assert placeholder.username == linking.placeholder_username(issuer=emulator.issuer, sub="teacher-sub-1")
    context_course = LtiContext.objects.get().course
    # What the placeholder has besides: an enrolment, and progress in a lesson the educator watched too.
    waves = Course.objects.create(slug="waves", title="Waves", published=True)
    Enrollment.objects.create(user=placeholder, course=waves)
    lesson = waves.lessons.create(title="Interference")
    done = timezone.now() - timedelta(days=1)
    LessonProgress.objects.create(user=placeholder, lesson=lesson, watched=b"\x0f", seconds_watched=4)
    LessonProgress.objects.create(
        user=educator, lesson=lesson, watched=b"\xf0\x01", seconds_watched=5, completed_at=done
    )

    token = _link_token(page)
    window = Client()  # the first-party window: none of the iframe's cookies
    shown = window.get("/lti/link/", {"token": token})
    assert shown.status_code == 200
    assert b"Grace Hopper (grace@lms.example)" in shown.content and b'id="lti-link-submit"' in shown.content
    assert b"lti-link-session" not in shown.content  # nobody is signed in here
    assert shown["Referrer-Policy"] == "same-origin" and shown["X-Frame-Options"] == "DENY"

    linked = _link(window, token)
    assert (linked.status_code, linked["Location"]) == (302, "/account/")
    identity.refresh_from_db()
    placeholder.refresh_from_db()
    assert (identity.user, identity.link_method) == (educator, "password") and identity.linked_at is not None
    assert placeholder.is_active is False
    assert list(context_course.educators.all()) == [educator]
    assert list(Enrollment.objects.values_list("user_id", "course_id")) == [(educator.pk, waves.pk)]
    merged = LessonProgress.objects.get()
    assert (merged.user, bytes(merged.watched), merged.seconds_watched, merged.completed_at) == (
        educator, b"\xff\x01", 9, done,
    )  # fmt: skip
    assert list(LtiLaunchGrant.objects.values_list("user_id", flat=True)) == [educator.pk]
    assert _signed_in(window) == educator.pk  # the password signed the window in, first-party
    account = window.get("/account/").content.decode()
    assert "<td><code>teacher-sub-1</code></td>" in account and "<td>password</td>" in account

    # The token is used up.
    before = _state()
    replay = _link(window, token)
    assert replay.status_code == 403 and b"already used" in replay.content
    assert _state() == before

    # The next launch from that LMS lands in the educator's account, says so, and changes no profile field.
    users = User.objects.count()
    iframe = Client()
    again = _launch(emulator, iframe)
    assert _signed_in(iframe) == educator.pk and User.objects.count() == users
    assert b'id="lti-account-linked"' in again.content and b"lti-link-account" not in again.content
    educator.refresh_from_db()
    assert (educator.email, educator.first_name) == ("educator@school.example", "")


def test_the_session_of_this_site_links_only_from_the_tools_own_page(
    emulator: PlatformEmulator, educator: User
) -> None:
    register(emulator)
    token = _link_token(_launch(emulator))
    window = Client()
    window.force_login(educator)
    before = _state()
    for site in ("cross-site", "none", "same-site"):  # another site, a mailed link, a sibling host
        refused = window.get("/lti/link/", {"token": token}, headers={"Sec-Fetch-Site": site})
        assert refused.status_code == 403 and b"that someone sent you must not be used" in refused.content
    # Without Fetch metadata (an old browser) the password form is there, but not the one-click link.
    assert b"lti-link-session" not in window.get("/lti/link/", {"token": token}).content
    post = {"token": token, "method": "session"}
    assert window.post("/lti/link/", post).status_code == 403
    assert window.post("/lti/link/", post, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(educator)
    assert strict.post("/lti/link/", post, headers={"Sec-Fetch-Site": "same-origin"}).status_code == 403  # CSRF
    assert _state() == before

    shown = window.get("/lti/link/", {"token": token}, headers={"Sec-Fetch-Site": "same-origin"})
    assert b'id="lti-link-session"' in shown.content and b"Link to educator, the account" in shown.content
    linked = window.post("/lti/link/", post, headers={"Sec-Fetch-Site": "same-origin"})
    assert linked.status_code == 302
    identity = LtiUser.objects.get(sub="teacher-sub-1")
    assert (identity.user, identity.link_method) == (educator, "session")


@pytest.mark.parametrize(
    "case", ["superuser", "inactive", "placeholder", "wrong password", "expired", "tampered", "linked elsewhere"]
)
def test_refused_links_change_nothing(
    emulator: PlatformEmulator, educator: User, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(emulator)
    token = _link_token(_launch(emulator))
    username, status, reason = "educator", 403, b""
    if case == "superuser":
        User.objects.create_superuser("root", password=PASSWORD)
        username, reason = "root", b"superuser account cannot be linked"
    elif case == "inactive":
        User.objects.filter(pk=educator.pk).update(is_active=False)
        status, reason = 400, b"username or password is not right"  # as Django's login says
    elif case == "placeholder":
        _launch(emulator, user="learner-1")
        other = LtiUser.objects.get(sub="learner-sub-1").user
        other.set_password(PASSWORD)
        other.save()
        username, reason = other.username, b"made by an LMS launch"
    elif case == "wrong password":
        status, reason = 400, b"username or password is not right"
    elif case == "expired":
        monkeypatch.setattr(linking, "LINK_SECONDS", -1)
        reason = b"expired"
    elif case == "tampered":
        token = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        reason = b"not valid"
    elif case == "linked elsewhere":
        second = linking.link_token_create(identity=LtiUser.objects.get(sub="teacher-sub-1"))
        User.objects.create_user("other", password=PASSWORD)
        assert _link(Client(), second, username="other").status_code == 302
        reason = b"already linked to an account of this site; unlink it first"
    before = _state()
    password = "not the password" if case == "wrong password" else PASSWORD
    response = _link(Client(), token, username=username, password=password)
    assert response.status_code == status and reason in response.content, response.content.decode()
    assert _state() == before


def test_too_many_wrong_passwords_stop_even_the_right_one(emulator: PlatformEmulator, educator: User) -> None:
    register(emulator)
    token = _link_token(_launch(emulator))
    window = Client()
    for _ in range(linking.ATTEMPTS_PER_WINDOW):
        assert _link(window, token, password="guess").status_code == 400
    before = _state()
    response = _link(window, token)
    assert response.status_code == 429 and b"too many wrong passwords" in response.content.lower()
    assert _state() == before


def test_a_launch_from_another_platform_with_the_same_sub_never_lands_in_the_linked_account(
    emulator: PlatformEmulator, educator: User
) -> None:
    register(emulator)
    assert _link(Client(), _link_token(_launch(emulator))).status_code == 302
    with PlatformEmulator(tool_url="http://testserver", client_id="tool-client-2") as elsewhere:
        elsewhere.users = emulator.users
        register(elsewhere)
        assert elsewhere.issuer != emulator.issuer
        iframe = Client()
        page = _launch(elsewhere, iframe)  # teacher-1 again: the same sub, another issuer
        assert _signed_in(iframe) != educator.pk
        stranger = LtiUser.objects.get(issuer=elsewhere.issuer, sub="teacher-sub-1")
        assert stranger.user.username.startswith("lti-") and stranger.linked_at is None
        assert b"lti-link-account" in page.content


def test_unlinking_gives_the_identity_its_placeholder_back(emulator: PlatformEmulator, educator: User) -> None:
    register(emulator)
    assert _link(Client(), _link_token(_launch(emulator))).status_code == 302
    identity = LtiUser.objects.get(sub="teacher-sub-1")
    placeholder_username = linking.placeholder_username(issuer=emulator.issuer, sub="teacher-sub-1")
    owner = Client()
    owner.force_login(educator)
    url = f"/lti/unlink/{identity.pk}/"
    account = owner.get("/account/").content.decode()
    assert f'id="lti-unlink-{identity.pk}"' in account and 'id="nav-account" href="/account/"' in account
    assert Client().get("/account/")["Location"] == "/accounts/login/?next=/account/"

    before = _state()
    assert owner.get(url).status_code == 405  # GET never changes anything
    assert Client().post(url).status_code == 302  # to the sign-in page
    someone = Client()
    someone.force_login(User.objects.create_user("other", password=PASSWORD))
    assert someone.post(url).status_code == 403
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(educator)
    assert strict.post(url).status_code == 403  # no CSRF token
    assert _state() == {**before, "users": _state()["users"]}  # "other" was added, nothing else changed

    assert owner.post(url)["Location"] == "/account/"
    identity.refresh_from_db()
    assert (identity.user.username, identity.user.is_active, identity.linked_at, identity.link_method) == (
        placeholder_username, True, None, "",
    )  # fmt: skip
    assert list(LtiLaunchGrant.objects.values_list("user_id", flat=True)) == [identity.user_id]
    assert b"None. To link one" in owner.get("/account/").content
    iframe = Client()
    page = _launch(emulator, iframe)
    assert _signed_in(iframe) == identity.user_id and b"lti-link-account" in page.content


@pytest.mark.parametrize("switch", [False, True])
def test_linking_by_email_only_where_the_platform_says_so(
    emulator: PlatformEmulator, educator: User, switch: bool
) -> None:
    platform = register(emulator)
    platform.link_accounts_by_email = switch
    platform.save()
    emulator.users["teacher-1"]["email"] = "EDUCATOR@School.example"  # the case does not matter
    iframe = Client()
    page = _launch(emulator, iframe)
    identity = LtiUser.objects.get(sub="teacher-sub-1")
    if switch:
        assert (identity.user, identity.link_method, _signed_in(iframe)) == (educator, "email", educator.pk)
        # Never silently: the page says so, and where to undo it.
        assert b'id="lti-linked-by-email"' in page.content and b'href="/account/"' in page.content
        assert b"lti-linked-by-email" not in _launch(emulator).content  # said once; then the usual notice
    else:
        assert identity.user != educator and identity.linked_at is None
        assert b"lti-link-account" in page.content
    educator.refresh_from_db()
    assert educator.email == "educator@school.example"


def test_linking_by_email_needs_exactly_one_ordinary_active_account(emulator: PlatformEmulator, educator: User) -> None:
    platform = register(emulator)
    platform.link_accounts_by_email = True
    platform.save()
    User.objects.create_user("twin-1", email="twin@school.example")
    User.objects.create_user("twin-2", email="TWIN@school.example")
    User.objects.create_superuser("root", email="root@school.example")
    User.objects.create_user("gone", email="gone@school.example", is_active=False)
    _launch(emulator, user="learner-1")  # a placeholder holding ada@lms.example
    for name, email in [("twin", "twin@school.example"), ("root", "root@school.example"),
                        ("gone", "gone@school.example"), ("ada", "ada@lms.example"), ("blank", "")]:  # fmt: skip
        emulator.users[name] = {"sub": f"{name}-sub", "roles": [LIS + "membership#Instructor"], "email": email}
        iframe = Client()
        _launch(emulator, iframe, user=name)
        identity = LtiUser.objects.get(sub=f"{name}-sub")
        assert identity.linked_at is None and identity.user.username.startswith("lti-"), name


def test_the_lesson_page_offers_linking_to_its_instructors_only(emulator: PlatformEmulator) -> None:
    register(emulator)
    _launch(emulator)
    course = LtiContext.objects.get().course
    asset = MediaAsset.objects.create(key_prefix="lessons/x", status="ready", published_version=1, duration_seconds=6)
    lesson = Lesson.objects.create(course=course, title="Refraction", asset=asset)
    emulator.launches["lesson"] = {"custom": {"lesson": str(lesson.public_id)}}
    for user, offered in (("teacher-1", True), ("learner-1", False)):
        client = Client()
        response = full_launch(client, emulator, user=user, launch="lesson")
        page = client.get(response["Location"])
        assert page.status_code == 200 and (b'id="lti-link-account"' in page.content) is offered, user


TA = LIS + "membership/Instructor#TeachingAssistant"


@pytest.mark.parametrize(
    ("roles", "without_tas", "with_tas"),
    [
        ([LIS + "membership#Instructor"], True, True),
        ([LIS + "membership#Administrator"], True, True),
        ([LIS + "institution/person#Instructor"], True, True),
        ([LIS + "institution/person#Administrator"], True, True),
        ([LIS + "membership#TeachingAssistant"], False, True),
        ([LIS + "membership#Instructor", TA], False, True),
        ([LIS + "membership#ContentDeveloper"], False, False),
        ([LIS + "membership#Mentor"], False, False),
        ([LIS + "membership#Learner", LIS + "institution/person#Instructor"], False, False),
        ([LIS + "system/person#Administrator"], False, False),
    ],
)
def test_who_may_open_the_lesson_picker(
    emulator: PlatformEmulator, roles: list[str], without_tas: bool, with_tas: bool
) -> None:
    platform = register(emulator)
    emulator.users["someone"] = {"sub": "someone-sub", "roles": roles}
    emulator.launches["dl"] = {"message_type": "LtiDeepLinkingRequest"}
    for switch, allowed in ((False, without_tas), (True, with_tas)):
        LtiPlatform.objects.filter(pk=platform.pk).update(teaching_assistants_instruct=switch)
        response = full_launch(Client(), emulator, user="someone", launch="dl")
        assert response.status_code == (302 if allowed else 403), (switch, response.content[:200])


def test_only_a_superuser_turns_email_linking_on(emulator: PlatformEmulator) -> None:
    platform = register(emulator)
    model_admin = admin.site._registry[LtiPlatform]
    staff = RequestFactory().get("/")
    staff.user = User.objects.create_user("staff", is_staff=True)
    assert "link_accounts_by_email" in model_admin.get_readonly_fields(staff, platform)
    boss = User.objects.create_superuser("boss", password=PASSWORD)
    superuser = Client()
    superuser.force_login(boss)
    form = superuser.get(f"/admin/lti/ltiplatform/{platform.pk}/change/").content.decode()
    assert 'name="link_accounts_by_email"' in form and "Risk: anyone who can set an email" in form
    # The command registers and updates platforms; it has no way to switch email linking, and keeps it.
    LtiPlatform.objects.filter(pk=platform.pk).update(link_accounts_by_email=True)
    args = [f"--{name.replace('_', '-')}={value}" for name, value in emulator.registration_args.items()]
    with pytest.raises(CommandError):
        call_command("lti_add_platform", *args, "--deployment-id=d", "--link-accounts-by-email")
    call_command("lti_add_platform", *args, "--deployment-id=d2")
    assert LtiPlatform.objects.get(pk=platform.pk).link_accounts_by_email is True
