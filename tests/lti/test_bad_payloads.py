"""Every "known bad payload" of the 1EdTech LTI 1.3 certification guide, and the other launch rules:
each is refused with a clear reason, and nothing is created (users, enrolments, links, nonces...)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.test import Client

from courses.models import Course, Enrollment
from lti import tokens
from lti.models import (
    LtiContext,
    LtiLaunchGrant,
    LtiLoginState,
    LtiNonce,
    LtiResourceLink,
    LtiScore,
    LtiUser,
)
from tests.lti.conftest import register, start_login
from tests.lti.platform_emulator import LTI, PlatformEmulator, PlatformKey

pytestmark = pytest.mark.django_db
MODELS = (User, Enrollment, Course, LtiUser, LtiContext, LtiResourceLink, LtiLaunchGrant, LtiNonce, LtiScore)


def _counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _drop(*names: str) -> Callable[[dict[str, Any]], None]:
    def change(claims: dict[str, Any]) -> None:
        for name in names:
            claims.pop(name, None)

    return change


def _set(**values: Any) -> Callable[[dict[str, Any]], None]:
    def change(claims: dict[str, Any]) -> None:
        claims.update({name.replace("__", "/"): value for name, value in values.items()})

    return change


def _lti(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(claims: dict[str, Any]) -> None:
        claims[LTI + name] = value

    return change


def _drop_resource_link_id(claims: dict[str, Any]) -> None:
    claims[LTI + "resource_link"] = {"title": "Week 1"}


def _drop_all_lti(claims: dict[str, Any]) -> None:
    for name in [name for name in claims if name.startswith("https://purl.imsglobal.org/")]:
        del claims[name]


def _now() -> int:
    return int(time.time())


# (id, change to the claims, how to sign, expected status, words in the error page)
CLAIM_CASES: list[tuple[str, Callable[[dict[str, Any]], None], int, str]] = [
    # The certification guide's known bad payloads:
    ("wrong LTI version", _lti("version", "1.2.0"), 400, "LTI version"),
    ("no LTI version", _drop(LTI + "version"), 400, "has no LTI version"),
    ("missing LTI claims", _drop_all_lti, 400, "has no LTI version"),
    ("timestamps incorrect", _set(iat=_now() - 7200, exp=_now() - 3600), 400, "has expired"),
    ("issued in the future", _set(iat=_now() + 3600, exp=_now() + 7200), 400, "issued in the future"),
    ("message type claim missing", _drop(LTI + "message_type"), 400, "has no message type"),
    ("role claim missing", _drop(LTI + "roles"), 400, "has no roles claim"),
    ("deployment id claim missing", _drop(LTI + "deployment_id"), 400, "has no deployment id"),
    ("resource link id missing", _drop_resource_link_id, 400, "has no resource link id"),
    ("user claim (sub) missing", _drop("sub"), 400, "has no sub"),
    # And every other rule:
    ("unknown message type", _lti("message_type", "LtiSubmissionReviewRequest"), 400, "is not supported"),
    ("unregistered deployment", _lti("deployment_id", "deployment-9"), 403, "deployment is not registered"),
    ("audience is another tool", _set(aud="another-tool", azp="another-tool"), 403, "not addressed to this tool"),
    ("several audiences, no azp", _set(aud=["tool-client-1", "another-tool"], azp=None), 400, "authorized party"),
    ("several audiences, azp another tool", _set(aud=["tool-client-1", "x"], azp="x"), 403, "not addressed"),
    ("unregistered issuer", _set(iss="https://lms.example"), 403, "issuer (iss) is not registered"),
    ("nonce of another login", _set(nonce="someone-elses-nonce"), 400, "nonce does not match"),
    ("no expiry", _drop("exp"), 400, "has no exp"),
    ("no issue time", _drop("iat"), 400, "has no iat"),
    ("roles not a list", _lti("roles", "Learner"), 400, "has no roles claim"),
    ("malformed context", _lti("context", "course-101"), 400, "context claim is malformed"),
    ("target link URI not the login's", _lti("target_link_uri", "http://testserver/lti/x/"), 400, "target link URI"),
]


@pytest.fixture
def launch_with(emulator: PlatformEmulator) -> Callable[..., HttpResponse]:
    register(emulator)

    def launch(
        change: Callable[[dict[str, Any]], None] | None = None, *, sign: Callable[..., str] | None = None
    ) -> HttpResponse:
        client = Client()
        login = start_login(client, emulator)
        claims = emulator.launch_claims(nonce=login.nonce, login_hint="learner-1", message_hint="launch-1")
        if change:
            change(claims)
        claims = {name: value for name, value in claims.items() if value is not None}
        token = sign(claims) if sign else emulator.sign(claims)
        before = _counts()
        response = client.post("/lti/launch/", {"id_token": token, "state": login.state})
        assert _counts() == before, "a refused launch must create nothing"
        if response.status_code >= 400:
            assert LtiLoginState.objects.get(state=login.state).used_at is None
        return response

    return launch


def test_a_good_launch_passes(launch_with: Callable[..., HttpResponse]) -> None:
    # The baseline the bad ones differ from (and a check that the fixture can fail).
    with pytest.raises(AssertionError, match="must create nothing"):
        launch_with()


@pytest.mark.parametrize(("change", "status", "words"), [pytest.param(*case[1:], id=case[0]) for case in CLAIM_CASES])
def test_bad_claims_are_refused(
    launch_with: Callable[..., HttpResponse], change: Callable[[dict[str, Any]], None], status: int, words: str
) -> None:
    response = launch_with(change)
    assert response.status_code == status
    assert words in response.content.decode()


def test_no_kid_is_refused(launch_with: Callable[..., HttpResponse], emulator: PlatformEmulator) -> None:
    response = launch_with(sign=lambda claims: emulator.sign(claims, kid=False))
    assert response.status_code == 400
    assert b"has no key id (kid)" in response.content


def test_unknown_kid_refetches_the_jwks_once_then_is_refused(
    launch_with: Callable[..., HttpResponse], emulator: PlatformEmulator
) -> None:
    tokens.signing_key(f"{emulator.base}/jwks", "platform-key-1")  # a launch earlier filled the cache
    assert emulator.recorded.jwks_fetches == 1
    response = launch_with(sign=lambda claims: emulator.sign(claims, kid="platform-key-404"))
    assert response.status_code == 403
    assert b"signed with a key the platform does not publish" in response.content
    assert emulator.recorded.jwks_fetches == 2  # the cached set lacked the kid: one refetch, no more


def test_forged_signature_with_a_known_kid_is_refused(
    launch_with: Callable[..., HttpResponse], emulator: PlatformEmulator
) -> None:
    forger = PlatformKey(kid="platform-key-1", private=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    response = launch_with(sign=lambda claims: emulator.sign(claims, key=forger))
    assert response.status_code == 403
    assert b"signature is not valid" in response.content


def test_alg_none_is_refused(launch_with: Callable[..., HttpResponse]) -> None:
    response = launch_with(
        sign=lambda claims: jwt.encode(claims, None, algorithm="none", headers={"kid": "platform-key-1"})
    )
    assert response.status_code == 400
    assert b"must be signed with RS256" in response.content


def test_hs256_with_the_public_key_as_secret_is_refused(
    launch_with: Callable[..., HttpResponse], emulator: PlatformEmulator
) -> None:
    public_pem = (
        emulator.keys[0]
        .private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )

    def sign(claims: dict[str, Any]) -> str:
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "platform-key-1"}).encode())
        body = _b64(json.dumps(claims).encode())
        mac = hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
        return f"{header}.{body}.{_b64(mac)}"

    response = launch_with(sign=sign)
    assert response.status_code == 400
    assert b"must be signed with RS256" in response.content


def test_not_a_jwt_is_refused(launch_with: Callable[..., HttpResponse]) -> None:
    response = launch_with(sign=lambda claims: "not.a.jwt")
    assert response.status_code == 400
    assert b"not a valid JWT" in response.content


def test_a_nonce_already_used_is_refused(launch_with: Callable[..., HttpResponse], emulator: PlatformEmulator) -> None:
    def sign(claims: dict[str, Any]) -> str:
        LtiNonce.objects.create(issuer=emulator.issuer, value=claims["nonce"], expires_at="2099-01-01T00:00:00Z")
        return emulator.sign(claims)

    response = launch_with(sign=sign)
    assert response.status_code == 403
    assert b"nonce was already used" in response.content


def test_missing_state_and_token_are_refused(emulator: PlatformEmulator) -> None:
    register(emulator)
    client = Client()
    login = start_login(client, emulator)
    before = _counts()
    assert client.post("/lti/launch/", {"state": login.state}).status_code == 400
    assert client.post("/lti/launch/", {"id_token": "x"}).status_code == 400
    assert client.get("/lti/launch/").status_code == 405
    assert _counts() == before


def test_a_state_from_another_platform_is_refused(emulator: PlatformEmulator) -> None:
    from tests.lti.conftest import start_emulator

    register(emulator)
    with start_emulator(tool_url="http://testserver") as other:
        other.client_id = "other-client"
        register(other)
        client = Client()
        login = start_login(client, emulator)
        claims = other.launch_claims(nonce=login.nonce, login_hint="learner-1", message_hint="x")
        before = _counts()
        response = client.post("/lti/launch/", {"id_token": other.sign(claims), "state": login.state})
        assert response.status_code == 400 and b"state belongs to another platform" in response.content
        assert _counts() == before
