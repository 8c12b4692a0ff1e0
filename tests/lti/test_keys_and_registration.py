"""Tool keys and JWKS (with rotation), the tool configuration, manual registration.

Dynamic Registration: test_registration_links.py."""

from __future__ import annotations

import io
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from pytest_django import Settings

from lti import platforms
from lti.models import LtiDeployment, LtiPlatform, LtiToolKey, LtiUser
from tests.lti.conftest import full_launch, register
from tests.lti.platform_emulator import PlatformEmulator

pytestmark = pytest.mark.django_db


def _jwks(client: Client) -> dict:
    response = client.get("/lti/jwks/")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    return response.json()


def test_jwks_publishes_one_public_signing_key() -> None:
    keys = _jwks(Client())["keys"]
    assert len(keys) == 1
    key = keys[0]
    assert sorted(key) == ["alg", "e", "kid", "kty", "n", "use"]  # no private part ("d", "p", "q"...)
    assert (key["kty"], key["alg"], key["use"], key["e"]) == ("RSA", "RS256", "sig", "AQAB")
    assert LtiToolKey.objects.get().kid == key["kid"]
    # The private key is stored encrypted, unreadable without the passphrase.
    stored = LtiToolKey.objects.get().private_key_encrypted
    assert stored.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(stored.encode(), password=None)


def test_rotation_keeps_the_previous_key_published_until_its_tokens_expire(settings: Settings) -> None:
    client = Client()
    old_kid = _jwks(client)["keys"][0]["kid"]
    old_token = platforms.tool_sign({"iss": "tool", "aud": "lms", "exp": platforms.now() + 300})
    out = io.StringIO()
    call_command("lti_rotate_key", stdout=out)
    new_kid = LtiToolKey.objects.get(active=True).kid
    assert out.getvalue().strip() == f"new signing key {new_kid}"
    assert [key["kid"] for key in _jwks(client)["keys"]] == [new_kid, old_kid]
    # A token signed before the rotation still verifies against the published set...
    published = jwt.PyJWKSet.from_dict(_jwks(client))
    assert jwt.decode(old_token, published[old_kid].key, algorithms=["RS256"], audience="lms")["iss"] == "tool"
    # ...and new tokens carry the new kid.
    assert jwt.get_unverified_header(platforms.tool_sign({"iss": "tool"}))["kid"] == new_kid
    # Once the retention has passed, the old key is gone from the set.
    LtiToolKey.objects.filter(kid=old_kid).update(
        retired_at=timezone.now() - timedelta(seconds=settings.LTI_KEY_RETENTION_SECONDS + 1)
    )
    assert [key["kid"] for key in _jwks(client)["keys"]] == [new_kid]


def test_platform_key_rotation_is_picked_up_by_refetching_its_jwks(emulator: PlatformEmulator) -> None:
    register(emulator)
    assert full_launch(Client(), emulator).status_code == 200
    emulator.rotate_key()  # the platform now signs with platform-key-2, which we have not seen
    assert full_launch(Client(), emulator, user="learner-2").status_code == 200
    assert emulator.recorded.jwks_fetches == 2
    assert LtiUser.objects.count() == 2


def test_tool_configuration_describes_the_tool(settings: Settings) -> None:
    settings.SITE_URL = "https://lessons.example.org"
    body = Client().get("/lti/config/").json()
    assert body["initiate_login_uri"] == "https://lessons.example.org/lti/login/"
    assert body["redirect_uris"] == ["https://lessons.example.org/lti/launch/"]
    assert body["jwks_uri"] == "https://lessons.example.org/lti/jwks/"
    assert body["token_endpoint_auth_method"] == "private_key_jwt"
    lti = body["https://purl.imsglobal.org/spec/lti-tool-configuration"]
    assert lti["domain"] == "lessons.example.org"
    assert lti["target_link_uri"] == "https://lessons.example.org/lti/launch/"
    assert [message["type"] for message in lti["messages"]] == ["LtiResourceLinkRequest", "LtiDeepLinkingRequest"]
    assert "https://purl.imsglobal.org/spec/lti-ags/scope/score" in body["scope"].split()


def test_lti_add_platform_registers_and_updates() -> None:
    args = ["--issuer", "https://lms.example.edu", "--client-id", "abc", "--deployment-id", "1", "--deployment-id", "2",
            "--auth-login-url", "https://lms.example.edu/auth", "--auth-token-url", "https://lms.example.edu/token",
            "--jwks-url", "https://lms.example.edu/jwks"]  # fmt: skip
    out = io.StringIO()
    call_command("lti_add_platform", *args, stdout=out)
    platform = LtiPlatform.objects.get()
    assert out.getvalue().strip() == f"platform {platform.pk}: https://lms.example.edu client abc; deployments 1, 2"
    call_command("lti_add_platform", *args[:-1], "https://lms.example.edu/jwks2", "--deployment-id", "3", stdout=out)
    platform.refresh_from_db()
    assert platform.jwks_url == "https://lms.example.edu/jwks2"
    assert sorted(LtiDeployment.objects.values_list("deployment_id", flat=True)) == ["1", "2", "3"]
    with pytest.raises(CommandError, match="--jwks-url is not a URL"):
        call_command("lti_add_platform", *args[:-1], "javascript:alert(1)")
    assert LtiPlatform.objects.count() == 1
