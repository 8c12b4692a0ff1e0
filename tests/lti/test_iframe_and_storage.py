"""Working inside an LMS iframe: cookie settings, the framed login page, the postMessage-storage path
of a launch (server side), and the admin and housekeeping around registrations."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.utils import timezone
from pytest_django import Settings

from config.secret_files import embedded_secrets_create
from lti.middleware import in_lms_iframe
from lti.models import LtiLoginState, LtiNonce, LtiUser
from tests.lti.conftest import authorize, register
from tests.lti.platform_emulator import PlatformEmulator

pytestmark = pytest.mark.django_db
# What a browser sends when our launch-check page posts the form back to /lti/launch/.
OURS = {"Sec-Fetch-Site": "same-origin", "Origin": "http://testserver"}
ROOT = Path(__file__).resolve().parents[2]
SHOW = (
    "from django.conf import settings as s; import json; print(json.dumps([s.SESSION_COOKIE_SAMESITE, "
    "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SAMESITE, s.CSRF_COOKIE_SECURE, s.LTI_IFRAME_COOKIES, "
    "s.LTI_KEY_PASSPHRASE]))"
)


def _settings(tmp_path: Path, **variables: str) -> list[str]:
    # Only what a process needs to start, not the harness's environment: its database, Redis, S3 and
    # secrets make a production configuration, which never reads the embedded default's files.
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(tmp_path)), "VAR_DIR": str(tmp_path),
           "SECRET_KEY": "k" * 50, **variables}  # fmt: skip
    completed = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", SHOW],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_iframe_cookie_settings_follow_https_and_can_be_turned_off(tmp_path: Path) -> None:
    passphrase = tmp_path / "lti-passphrase"
    passphrase.write_text("from-a-mounted-file\n")
    embedded_secrets_create(var_dir=tmp_path)  # what `make run` and the test harness do
    shown = _settings(tmp_path)
    embedded = (tmp_path / "lti_key_passphrase").read_text().strip()
    assert shown == ["Lax", False, "Lax", False, False, embedded] and embedded != "k" * 50
    # The site's cookies stay Lax in production too; only iframe pages upgrade them (middleware).
    production = {"HTTPS": "1", "CONTENT_KEY_SECRET": "c" * 40}
    assert _settings(tmp_path, **production, LTI_KEY_PASSPHRASE_FILE=str(passphrase)) == [
        "Lax", True, "Lax", True, True, "from-a-mounted-file",
    ]  # fmt: skip
    assert _settings(tmp_path, **production, LTI_IFRAME_COOKIES="0", LTI_KEY_PASSPHRASE="p" * 40) == [
        "Lax", True, "Lax", True, False, "p" * 40,
    ]  # fmt: skip


def test_a_framed_login_answers_with_a_page_that_checks_the_cookie(emulator: PlatformEmulator) -> None:
    register(emulator)
    params = {**emulator.login_params(login_hint="learner-1", message_hint="m"), "lti_storage_target": "_parent"}
    response = Client().get("/lti/login/", params, headers={"Sec-Fetch-Dest": "iframe"})
    assert response.status_code == 200
    page = response.content.decode()
    config = json.loads(page.split('id="lti-login-config" type="application/json">')[1].split("</script>")[0])
    state = LtiLoginState.objects.get()
    assert config["state"] == state.state and config["nonce"] == state.nonce
    assert config["redirectUrl"].startswith(f"{emulator.base}/auth?")
    assert (config["storageTarget"], config["platformOrigin"]) == ("_parent", emulator.base)
    assert config["newWindowUrl"].startswith("http://testserver/lti/login/?iss=")
    assert "lti_storage_target" not in config["newWindowUrl"]  # a new window is first-party: cookies suffice
    assert response.cookies[config["cookieName"]].value == state.state
    assert response["Content-Security-Policy"] == f"frame-ancestors 'self' {emulator.base}"
    assert response.get("X-Frame-Options") is None


def test_without_the_cookie_the_state_is_checked_in_platform_storage(emulator: PlatformEmulator) -> None:
    register(emulator)
    params = {**emulator.login_params(login_hint="learner-1", message_hint="m"), "lti_storage_target": "_parent"}
    page = Client().get("/lti/login/", params).content.decode()
    config = json.loads(page.split('id="lti-login-config" type="application/json">')[1].split("</script>")[0])
    form = authorize(config["redirectUrl"])
    assert form["state"] == config["state"]
    browser = Client()  # no state cookie: third-party cookies blocked
    check = browser.post("/lti/launch/", form)
    assert check.status_code == 200 and b'id="lti-launch-check"' in check.content
    assert (LtiUser.objects.count(), LtiNonce.objects.count()) == (0, 0)
    wrong = browser.post("/lti/launch/", {**form, "lti_storage_state": "what-another-login-stored"}, headers=OURS)
    assert wrong.status_code == 200 and b'id="lti-launch-check"' in wrong.content
    assert (LtiUser.objects.count(), LtiNonce.objects.count()) == (0, 0)
    done = browser.post("/lti/launch/", {**form, "lti_storage_state": config["state"]}, headers=OURS)
    assert done.status_code == 200 and b"No lesson is linked here yet" in done.content
    assert LtiUser.objects.count() == 1
    # Without a storage target at login, a launch without the cookie is simply refused.
    plain = Client().get("/lti/login/", emulator.login_params(login_hint="learner-2", message_hint="m"))
    refused = Client().post("/lti/launch/", {**authorize(plain["Location"]), "lti_storage_state": "x"})
    assert refused.status_code == 403 and LtiUser.objects.count() == 1


def _storage_login(emulator: PlatformEmulator, user: str) -> tuple[dict[str, str], str]:
    """A framed login with platform storage in one browser: the form the platform posts, and the state."""
    params = {**emulator.login_params(login_hint=user, message_hint="m"), "lti_storage_target": "_parent"}
    page = Client().get("/lti/login/", params).content.decode()
    config = json.loads(page.split('id="lti-login-config" type="application/json">')[1].split("</script>")[0])
    return authorize(config["redirectUrl"]), config["state"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://attacker.example"},
        {"Origin": "https://attacker.example"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://testserver"},
        {},  # no browser metadata at all
    ],
)
def test_a_storage_verdict_posted_from_another_site_is_refused(
    emulator: PlatformEmulator, headers: dict[str, str]
) -> None:
    """Login CSRF: the attacker starts a login in their own browser, keeps the id_token and state the
    platform posts, and makes the victim's browser post them with lti_storage_state=state."""
    register(emulator)
    form, state = _storage_login(emulator, "learner-1")
    victim = Client()
    refused = victim.post("/lti/launch/", {**form, "lti_storage_state": state}, headers=headers)
    assert refused.status_code == 403 and b"own check page" in refused.content
    assert "_auth_user_id" not in victim.session
    assert (LtiUser.objects.count(), LtiNonce.objects.count(), User.objects.count()) == (0, 0, 0)
    assert LtiLoginState.objects.get(state=state).used_at is None
    # Without the verdict, the victim's browser only gets the check page; its script asks the
    # platform's storage of *this* browser, which never held the attacker's state (tests/e2e).
    check = victim.post("/lti/launch/", form, headers=headers)
    assert check.status_code == 200 and b'id="lti-launch-check"' in check.content
    assert "_auth_user_id" not in victim.session and LtiUser.objects.count() == 0


def test_session_cookie_is_partitioned_when_iframe_cookies_are_on(
    emulator: PlatformEmulator, settings: Settings
) -> None:
    settings.LTI_IFRAME_COOKIES = True
    register(emulator)
    client = Client()
    login = client.get("/lti/login/", emulator.login_params(login_hint="learner-1", message_hint="m"))
    response = client.post("/lti/launch/", authorize(login["Location"]), headers={"Sec-Fetch-Dest": "iframe"})
    session = response.cookies["sessionid"]
    assert (session["samesite"], session["secure"], session["httponly"]) == ("None; Partitioned", True, True)
    assert "SameSite=None; Partitioned" in session.output()
    settings.LTI_PARTITIONED_COOKIES = False
    assert (
        Client()
        .get("/lti/login/", emulator.login_params(login_hint="x", message_hint="m"))
        .cookies.popitem()[1]["samesite"]
        == "None"
    )


def _session_and_csrf_cookies(response: HttpResponse) -> dict[str, tuple[str, bool]]:
    return {
        name: (str(m["samesite"]), bool(m["secure"]))
        for name, m in response.cookies.items()
        if name in ("sessionid", "csrftoken")
    }


def test_only_pages_in_an_lms_iframe_get_samesite_none_cookies(emulator: PlatformEmulator, settings: Settings) -> None:
    settings.LTI_IFRAME_COOKIES = True
    register(emulator)
    User.objects.create_user("site-user", password="pw-site-user-1", is_staff=True)
    # A first-party login on the site itself: Lax, whatever LTI_IFRAME_COOKIES says.
    site = Client()
    assert _session_and_csrf_cookies(site.get("/admin/login/"))["csrftoken"][0] == "Lax"
    first_party = site.post("/admin/login/", {"username": "site-user", "password": "pw-site-user-1", "next": "/"})
    assert _session_and_csrf_cookies(first_party)["sessionid"][0] == "Lax"
    # The LMS opens the tool in a new window (a top-level document): a first-party launch, Lax.
    window = Client()
    login = window.get("/lti/login/", emulator.login_params(login_hint="learner-1", message_hint="m"))
    top = window.post("/lti/launch/", authorize(login["Location"]), headers={"Sec-Fetch-Dest": "document"})
    assert _session_and_csrf_cookies(top)["sessionid"] == ("Lax", False)
    # The same launch inside the LMS's iframe: None; Secure; Partitioned.
    framed = Client()
    login = framed.get("/lti/login/", emulator.login_params(login_hint="learner-1", message_hint="m"))
    inside = framed.post("/lti/launch/", authorize(login["Location"]), headers={"Sec-Fetch-Dest": "iframe"})
    assert _session_and_csrf_cookies(inside)["sessionid"] == ("None; Partitioned", True)
    # Without Fetch metadata (older browsers): LTI pages count as framed, except the first-party handoff.
    factory = RequestFactory()
    paths = ("/lti/lesson/x/", "/lti/handoff/", "/courses/", "/api/v1/")
    assert [in_lms_iframe(factory.get(path)) for path in paths] == [True, False, False, False]
    assert in_lms_iframe(factory.get("/lti/handoff/", headers={"Sec-Fetch-Dest": "iframe"})) is True
    settings.LTI_IFRAME_COOKIES = False
    framed_off = Client()
    login = framed_off.get("/lti/login/", emulator.login_params(login_hint="learner-2", message_hint="m"))
    off = framed_off.post("/lti/launch/", authorize(login["Location"]), headers={"Sec-Fetch-Dest": "iframe"})
    assert _session_and_csrf_cookies(off)["sessionid"] == ("Lax", False)


def test_lti_admin_is_for_superusers_only(emulator: PlatformEmulator) -> None:
    platform = register(emulator)
    admin = Client()
    admin.force_login(User.objects.create_superuser("root", password="pw-root-123456"))
    page = admin.get(f"/admin/lti/ltiplatform/{platform.pk}/change/")
    assert page.status_code == 200 and emulator.base.encode() in page.content
    assert admin.get("/admin/lti/ltitoolkey/").status_code == 200
    educator = Client()
    educator.force_login(User.objects.create_user("teacher", password="pw-teacher-123", is_staff=True))
    assert educator.get(f"/admin/lti/ltiplatform/{platform.pk}/change/").status_code == 403
    assert educator.get("/admin/lti/ltiplatform/").status_code == 403


def test_lti_prune_deletes_what_expired(emulator: PlatformEmulator) -> None:
    register(emulator)
    client = Client()
    client.get("/lti/login/", emulator.login_params(login_hint="learner-1", message_hint="m"))
    client.get("/lti/login/", emulator.login_params(login_hint="learner-1", message_hint="m"))
    LtiLoginState.objects.filter(pk=LtiLoginState.objects.first().pk).update(expires_at=timezone.now() - timedelta(1))
    LtiNonce.objects.create(issuer="i", value="old", expires_at=timezone.now() - timedelta(seconds=1))
    LtiNonce.objects.create(issuer="i", value="new", expires_at=timezone.now() + timedelta(hours=1))
    out = io.StringIO()
    call_command("lti_prune", stdout=out)
    assert out.getvalue().strip() == "deleted 2 expired rows"
    assert (LtiLoginState.objects.count(), list(LtiNonce.objects.values_list("value", flat=True))) == (1, ["new"])
