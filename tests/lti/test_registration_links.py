"""LTI Dynamic Registration through one-time links only, approval by default, and no server-side
request forgery through the configuration URL (issue 13, findings 1 and 2)."""

from __future__ import annotations

import io
import ipaddress
import json
import socket
import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.http import HttpResponse
from django.test import Client
from django.utils import timezone
from pytest_django import Settings

from lti import registration
from lti.errors import LtiError
from lti.models import LtiDeployment, LtiPlatform, LtiRegistrationLink
from lti.platforms import platform_register
from outbound import client as outbound_client
from tests.lti.conftest import full_launch
from tests.lti.platform_emulator import PlatformEmulator
from tests.outbound.test_client import Listener

pytestmark = pytest.mark.django_db


def _link(*, label: str = "", lifetime: timedelta | None = None) -> str:
    return registration.registration_link_create(created_by=None, label=label, lifetime=lifetime).url


def _register(
    url: str, emulator: PlatformEmulator, *, token: str | None = None, config: str | None = None
) -> HttpResponse:
    return Client().get(
        urlsplit(url).path,
        {"openid_configuration": config or f"{emulator.base}/.well-known/openid-configuration",
         "registration_token": token or emulator.registration_token},
    )  # fmt: skip


def _nothing_stored() -> bool:
    return (LtiPlatform.objects.count(), LtiDeployment.objects.count()) == (0, 0)


def test_a_link_registers_the_platform_which_waits_for_approval_by_default(emulator: PlatformEmulator) -> None:
    response = _register(_link(label="Emulated LMS"), emulator)
    assert response.status_code == 200 and b"must activate it" in response.content
    platform = LtiPlatform.objects.get()
    assert (platform.issuer, platform.client_id, platform.active) == (emulator.issuer, emulator.client_id, False)
    assert list(platform.deployments.values_list("deployment_id", flat=True)) == [emulator.deployment_id]
    assert LtiRegistrationLink.objects.get().platform == platform
    # What the platform received is a proper LTI client registration.
    (sent,) = emulator.recorded.registrations
    assert (sent["initiate_login_uri"], sent["jwks_uri"]) == (
        "http://testserver/lti/login/",
        "http://testserver/lti/jwks/",
    )
    # The page tells the LMS window it is done, and only that LMS's origin may frame it.
    assert json.loads(
        response.content.decode().split('id="lti-close-message" type="application/json">')[1].split("<")[0]
    ) == {"subject": "org.imsglobal.lti.close"}
    assert response["Content-Security-Policy"] == f"frame-ancestors 'self' {emulator.base}"
    # Not active: its logins are refused (no redirect to its login endpoint: no open redirect).
    refused = Client().get("/lti/login/", emulator.login_params(login_hint="learner-1", message_hint="m"))
    assert refused.status_code == 403 and not refused.has_header("Location")
    # A superuser approves it in the admin; then it launches.
    admin = get_user_model().objects.create_superuser("root", "root@example.test", "pw")
    staff = Client()
    staff.force_login(admin)
    page = staff.get(f"/admin/lti/ltiplatform/{platform.pk}/change/")
    assert (
        b"every endpoint is on the issuer&#x27;s origin" in page.content
        or b"every endpoint is on the issuer" in page.content
    )
    answer = staff.post(
        "/admin/lti/ltiplatform/", {"action": "approve", "_selected_action": [platform.pk]}, follow=True
    )
    assert answer.status_code == 200
    platform.refresh_from_db()
    assert (platform.active, platform.approved_by) == (True, admin)
    assert full_launch(Client(), emulator).status_code == 200


def test_with_approval_off_a_platform_on_its_own_origin_is_active_at_once(
    emulator: PlatformEmulator, settings: Settings
) -> None:
    settings.LTI_REGISTRATION_APPROVAL = False
    assert _register(_link(), emulator).status_code == 200
    assert LtiPlatform.objects.get().active is True
    assert full_launch(Client(), emulator).status_code == 200


def test_endpoints_outside_the_issuer_origin_always_wait_for_an_approval_that_shows_them(
    emulator: PlatformEmulator, settings: Settings
) -> None:
    settings.LTI_REGISTRATION_APPROVAL = False
    elsewhere = "http://127.0.0.1:9/token"  # another origin (port) than the issuer's
    emulator.openid_overrides = {"token_endpoint": elsewhere, "authorization_server": "https://victim.example/token"}
    assert _register(_link(), emulator).status_code == 200
    platform = LtiPlatform.objects.get()
    assert platform.active is False
    admin = get_user_model().objects.create_superuser("root", "root@example.test", "pw")
    staff = Client()
    staff.force_login(admin)
    page = staff.get(f"/admin/lti/ltiplatform/{platform.pk}/change/").content.decode()
    assert "Check these before approving" in page
    assert f"token endpoint: <code>{elsewhere}</code>" in page
    assert "token audience: <code>https://victim.example/token</code>" in page


def test_without_a_link_nothing_is_fetched_or_stored(emulator: PlatformEmulator) -> None:
    response = Client().get(
        "/lti/register/",
        {"openid_configuration": f"{emulator.base}/.well-known/openid-configuration",
         "registration_token": emulator.registration_token},
    )  # fmt: skip
    assert response.status_code == 403 and b"registration link is not valid" in response.content
    assert response["Content-Security-Policy"] == "frame-ancestors 'self'"
    forged = _register("http://testserver/lti/register/made-up-token/", emulator)
    assert forged.status_code == 403 and forged["Content-Security-Policy"] == "frame-ancestors 'self'"
    assert (emulator.recorded.config_fetches, emulator.recorded.registrations) == (0, [])
    assert _nothing_stored()


def test_a_link_works_once(emulator: PlatformEmulator, settings: Settings) -> None:
    url = _link()
    assert _register(url, emulator).status_code == 200
    again = _register(url, emulator)
    assert again.status_code == 403 and b"registration link is not valid" in again.content
    assert emulator.recorded.config_fetches == 1 and LtiPlatform.objects.count() == 1


def test_expired_and_revoked_links_are_refused(emulator: PlatformEmulator) -> None:
    expired = _link(lifetime=timedelta(hours=1))
    LtiRegistrationLink.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    revoked = _link()
    registration.registration_link_revoke(link=LtiRegistrationLink.objects.latest("pk"))
    for url in (expired, revoked):
        assert _register(url, emulator).status_code == 403
    assert emulator.recorded.config_fetches == 0 and _nothing_stored()


def test_a_failed_registration_stores_nothing_and_leaves_the_link_usable(emulator: PlatformEmulator) -> None:
    url = _link()
    refused = _register(url, emulator, token="wrong-token")
    assert refused.status_code == 502 and b"refused the registration" in refused.content
    assert b"invalid registration token" not in refused.content  # the platform's body is never shown
    assert _nothing_stored()
    assert _register(url, emulator).status_code == 200  # the administrator tries again


@pytest.mark.parametrize(
    ("overrides", "words"),
    [({"issuer": "https://elsewhere.example"}, "issuer does not match"),
     ({"registration_endpoint": "ftp://x"}, "no valid registration_endpoint")],
)  # fmt: skip
def test_bad_configurations_are_refused(emulator: PlatformEmulator, overrides: dict[str, str], words: str) -> None:
    emulator.openid_overrides = overrides
    response = _register(_link(), emulator)
    assert response.status_code in (403, 502) and words in response.content.decode()
    assert _nothing_stored()


def test_a_client_id_registered_for_another_issuer_is_refused(emulator: PlatformEmulator) -> None:
    victim = platform_register(
        issuer="https://school.example.edu", client_id=emulator.client_id, auth_login_url="https://school.example.edu/a",
        auth_token_url="https://school.example.edu/t", jwks_url="https://school.example.edu/j", deployment_ids=["1"],
    )  # fmt: skip
    response = _register(_link(), emulator)
    assert response.status_code == 409 and b"already registered for another LMS" in response.content
    assert list(LtiPlatform.objects.all()) == [victim]
    with pytest.raises(LtiError, match="already registered for another LMS"):
        platform_register(
            issuer=emulator.issuer, client_id=emulator.client_id, auth_login_url=f"{emulator.base}/auth",
            auth_token_url=f"{emulator.base}/token", jwks_url=f"{emulator.base}/jwks", deployment_ids=[],
        )  # fmt: skip


def test_a_registered_platform_cannot_be_re_registered_by_link(emulator: PlatformEmulator, settings: Settings) -> None:
    settings.LTI_REGISTRATION_APPROVAL = False
    assert _register(_link(), emulator).status_code == 200
    emulator.openid_overrides = {"token_endpoint": f"{emulator.base}/other-token"}
    response = _register(_link(), emulator)
    assert response.status_code == 409 and b"registered already" in response.content
    assert LtiPlatform.objects.get().auth_token_url == f"{emulator.base}/token"


def test_a_configuration_url_on_loopback_is_never_fetched(settings: Settings) -> None:
    settings.OUTBOUND_HTTP_ALLOW_NETWORKS = ()  # production: nothing but public addresses
    listener = Listener()
    try:
        for host in ("127.0.0.1", "localhost", "[::ffff:127.0.0.1]"):
            url = _link()
            response = Client().get(
                urlsplit(url).path,
                {"openid_configuration": f"http://{host}:{listener.port}/.well-known/openid-configuration"},
            )
            assert response.status_code in (403, 502)
            assert b"could not be read" in response.content or b"issuer does not match" in response.content
        socket.create_connection(("127.0.0.1", listener.port), timeout=2).close()  # the listener does listen
        for _ in range(50):
            if listener.accepted:
                break
            time.sleep(0.02)
        assert listener.accepted == 1  # only the test's own connection above
    finally:
        listener.close()
    assert _nothing_stored()


@pytest.mark.parametrize("address", ["10.0.0.8", "192.168.0.2", "169.254.169.254", "fd00::8", "100.64.0.9"])
def test_names_resolving_to_internal_addresses_are_never_contacted(
    monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    attempts: list[object] = []
    monkeypatch.setattr(outbound_client, "resolve", lambda host, port: [ipaddress.ip_address(address)])
    monkeypatch.setattr(outbound_client, "open_connection", lambda *args: attempts.append(args))
    url = _link()
    response = Client().get(
        urlsplit(url).path, {"openid_configuration": "https://lms.attacker.example/.well-known/openid-configuration"}
    )
    assert response.status_code == 502
    assert b"may not reach" in response.content
    assert attempts == [] and _nothing_stored()
    assert registration.registration_link_usable(token=urlsplit(url).path.rstrip("/").rsplit("/", 1)[1])


def test_the_command_prints_a_working_one_time_link_last(emulator: PlatformEmulator) -> None:
    out = io.StringIO()
    call_command("lti_registration_link", "--label", "Emulated LMS", "--hours", "2", stdout=out)
    url = out.getvalue().strip().splitlines()[-1]
    assert url.startswith("http://testserver/lti/register/")
    link = LtiRegistrationLink.objects.get()
    assert link.label == "Emulated LMS"
    assert timedelta(hours=1, minutes=59) < link.expires_at - timezone.now() <= timedelta(hours=2)
    assert url.rsplit("/", 2)[1] not in link.token_hash  # only the hash is stored
    assert _register(url, emulator).status_code == 200
    assert _register(url, emulator).status_code == 403
    with pytest.raises(CommandError, match="--hours must be at least 1"):
        call_command("lti_registration_link", "--hours", "0")


def test_the_admin_makes_a_link_shown_once_and_only_for_superusers(emulator: PlatformEmulator) -> None:
    admin = get_user_model().objects.create_superuser("root", "root@example.test", "pw")
    educator = get_user_model().objects.create_user("edu", "edu@example.test", "pw", is_staff=True)
    other = Client()
    other.force_login(educator)
    assert other.get("/admin/lti/ltiregistrationlink/add/").status_code == 403
    assert other.post("/admin/lti/ltiregistrationlink/add/", {"label": "x", "hours": 1}).status_code == 403
    assert LtiRegistrationLink.objects.count() == 0
    staff = Client()
    staff.force_login(admin)
    page = staff.post("/admin/lti/ltiregistrationlink/add/", {"label": "Moodle", "hours": 24}, follow=True)
    assert page.status_code == 200
    url = page.content.decode().split("id='lti-registration-url'>")[1].split("<")[0]
    link = LtiRegistrationLink.objects.get()
    assert (link.label, link.created_by) == ("Moodle", admin)
    assert _register(url, emulator).status_code == 200
    assert url not in staff.get(f"/admin/lti/ltiregistrationlink/{link.pk}/change/").content.decode()
