"""Content keys leave the server only through the license server and the HLS key endpoint, only for
a valid license token of the same viewer and session who may still watch; every answer to an
authentic token is audited, bad input changes nothing, and all three endpoints are throttled."""

from __future__ import annotations

import base64
import io
import json
import time
import uuid
from collections.abc import Iterator

import jwt
import pytest
from django.contrib.auth.models import User
from django.test import Client
from pytest_django import Settings
from rest_framework.test import APIClient

from courses.models import Enrollment
from media_pipeline import content_keys
from media_pipeline.models import ContentKey, MediaAsset
from playback.drm import clearkey, license_tokens
from playback.models import KeyRelease
from playback.throttles import throttles_clear
from tests.playback.conftest import World

LICENSE = "/drm/clearkey/license"


@pytest.fixture
def protected(world: World, settings: Settings) -> content_keys.ContentKeyMaterial:
    """Version 1 of the world's lesson is encrypted with this key."""
    material = content_keys.generate()
    sealed = content_keys.seal(
        material, secret=settings.CONTENT_KEY_SECRET.encode(), asset_id=world.asset.pk, version=1
    )
    ContentKey.objects.create(asset=world.asset, version=1, kid=material.kid, key_sealed=sealed)
    MediaAsset.objects.filter(pk=world.asset.pk).update(published_kid=material.kid, protected=True)
    world.asset.refresh_from_db()
    return material


def _session(client: Client, world: World) -> dict:
    response = client.post(f"/api/v1/lessons/{world.lesson.public_id}/playback/")
    assert response.status_code == 200, response.content
    return response.json()


def _viewer(world: World, user: User | None = None) -> tuple[Client, dict]:
    client = Client()
    client.force_login(user or world.learner)
    return client, _session(client, world)


def _license(client: Client, body: object, authorization: str | None) -> object:
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(LICENSE, data=data, content_type="application/json", **headers)


def _request(material: content_keys.ContentKeyMaterial) -> dict:
    return {"kids": [clearkey.b64url(material.kid.bytes)], "type": "temporary"}


def _released() -> int:
    return KeyRelease.objects.filter(outcome="released").count()


def test_protected_session_carries_license_information_and_no_key(
    world: World, protected: content_keys.ContentKeyMaterial
) -> None:
    before = int(time.time())
    _, body = _viewer(world)
    drm = body["drm"]
    assert drm["provider"] == "clearkey"
    assert drm["scheme"] == "cbcs"
    assert drm["key_ids"] == [protected.kid.hex]
    assert drm["servers"] == {"org.w3.clearkey": LICENSE}
    assert drm["hls_key_url"] == "/drm/hls/key/"
    assert list(drm["headers"]) == ["Authorization"]
    token = drm["headers"]["Authorization"].removeprefix("Bearer ")
    claims = license_tokens.token_verify(secret=_secret(), token=token, now=before)
    assert (claims.user_id, claims.lesson, claims.version, claims.kids) == (
        str(world.learner.pk), str(world.lesson.public_id), 1, (protected.kid.hex,)
    )  # fmt: skip
    assert claims.session != ""  # bound to the browser session
    assert before + 600 - 2 <= claims.expires_at <= int(time.time()) + 600
    text = json.dumps(body)
    assert protected.key.hex() not in text and clearkey.b64url(protected.key) not in text
    for url in [body["hls"], body["dash"], body["poster"], *drm["servers"].values()]:
        assert token not in url
    assert KeyRelease.objects.count() == 0  # a session releases no key


def _secret() -> bytes:
    from django.conf import settings

    return settings.DRM_LICENSE_TOKEN_SECRET.encode()


def test_license_server_releases_the_key_as_a_w3c_clearkey_license_and_audits_it(
    world: World, protected: content_keys.ContentKeyMaterial
) -> None:
    client, body = _viewer(world)
    response = client.post(
        LICENSE,
        data=json.dumps(_request(protected)),
        content_type="application/json",
        HTTP_AUTHORIZATION=body["drm"]["headers"]["Authorization"],
        REMOTE_ADDR="203.0.113.9",
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert response.json() == {
        "keys": [
            {
                "kty": "oct",
                "k": base64.urlsafe_b64encode(protected.key).rstrip(b"=").decode(),
                "kid": base64.urlsafe_b64encode(protected.kid.bytes).rstrip(b"=").decode(),
            }
        ],
        "type": "temporary",
    }
    row = KeyRelease.objects.get()
    assert (row.user, row.lesson_public_id, row.version, row.kid, row.endpoint, row.outcome, row.ip) == (
        world.learner, world.lesson.public_id, 1, protected.kid, "license", "released", "203.0.113.9"
    )  # fmt: skip


def test_hls_key_endpoint_returns_the_raw_key_with_the_same_checks(
    world: World, protected: content_keys.ContentKeyMaterial
) -> None:
    client, body = _viewer(world)
    auth = body["drm"]["headers"]["Authorization"]
    response = client.get(f"/drm/hls/key/{protected.kid.hex}", HTTP_AUTHORIZATION=auth)
    assert response.status_code == 200
    assert (response["Content-Type"], response["Cache-Control"], response.content) == (
        "application/octet-stream", "no-store", protected.key
    )  # fmt: skip
    assert KeyRelease.objects.get().endpoint == "hls_key"
    assert client.get(f"/drm/hls/key/{uuid.uuid4().hex}", HTTP_AUTHORIZATION=auth).status_code == 403
    assert client.get("/drm/hls/key/NOT-HEX", HTTP_AUTHORIZATION=auth).status_code == 400
    assert client.get(f"/drm/hls/key/{protected.kid.hex}").status_code == 403  # no token
    assert client.post(f"/drm/hls/key/{protected.kid.hex}", HTTP_AUTHORIZATION=auth).status_code == 405
    assert _released() == 1


def _forged(world: World, material: content_keys.ContentKeyMaterial, **changes: object) -> str:
    claims = {
        "aud": "lessons-drm", "sub": str(world.learner.pk), "sid": "", "lsn": str(world.lesson.public_id),
        "ver": 1, "kids": [material.kid.hex], "iat": int(time.time()), "exp": int(time.time()) + 300,
    }  # fmt: skip
    secret = changes.pop("secret", _secret())
    algorithm = changes.pop("alg", "HS256")
    claims.update(changes)
    # secret and alg arrive through **changes (object): each test passes a str.
    return "Bearer " + jwt.encode(claims, secret, algorithm=algorithm)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("case", "expected_status", "audited"),
    [
        ("not json", 400, False),
        ("json array", 400, False),
        ("kid not base64url", 400, False),
        ("kid too short", 400, False),
        ("persistent license", 400, False),
        ("no kids", 400, False),
        ("too large", 400, False),
        ("no token", 403, False),
        ("basic auth", 403, False),
        ("forged signature", 403, False),
        ("alg none", 403, False),
        ("expired", 403, False),
        ("wrong audience", 403, False),
        ("other viewer's token", 403, True),
        ("same user, other session", 403, True),
        ("unknown kid", 403, True),
        ("kid of another version", 403, True),
    ],
)
def test_bad_license_requests_are_refused_and_release_nothing(
    world: World, protected: content_keys.ContentKeyMaterial, case: str, expected_status: int, audited: bool
) -> None:
    client, body = _viewer(world)
    good_auth = body["drm"]["headers"]["Authorization"]
    request: object = _request(protected)
    auth: str | None = good_auth
    if case == "not json":
        request = b"{kids:"
    elif case == "json array":
        request = [1, 2]
    elif case == "kid not base64url":
        request = {"kids": ["!" * 22], "type": "temporary"}
    elif case == "kid too short":
        request = {"kids": ["AAAA"], "type": "temporary"}
    elif case == "persistent license":
        request = {**_request(protected), "type": "persistent-license"}
    elif case == "no kids":
        request = {"kids": [], "type": "temporary"}
    elif case == "too large":
        request = {**_request(protected), "pad": "x" * 5000}
    elif case == "no token":
        auth = None
    elif case == "basic auth":
        auth = "Basic " + base64.b64encode(b"learner:pw").decode()
    elif case == "forged signature":
        auth = _forged(world, protected, secret=b"not-our-secret-0123456789abcdef0123")
    elif case == "alg none":
        auth = _forged(world, protected, alg="none", secret=None)
    elif case == "expired":
        auth = _forged(world, protected, exp=int(time.time()) - 1)
    elif case == "wrong audience":
        auth = _forged(world, protected, aud="someone-else")
    elif case == "other viewer's token":
        # A stranger presents the learner's token from their own browser.
        client = Client()
        client.force_login(world.stranger)
    elif case == "same user, other session":
        client = Client()
        client.force_login(world.learner)
    elif case == "unknown kid":
        request = {"kids": [clearkey.b64url(uuid.uuid4().bytes)], "type": "temporary"}
    elif case == "kid of another version":
        other = content_keys.generate()
        ContentKey.objects.create(asset=world.asset, version=2, kid=other.kid, key_sealed="v1.x")
        request = {"kids": [clearkey.b64url(other.kid.bytes)], "type": "temporary"}
    response = _license(client, request, auth)
    assert response.status_code == expected_status, response.content
    body = response.json()
    assert "keys" not in body and isinstance(body["detail"], str) and body["detail"]
    assert protected.key.hex() not in response.content.decode()
    assert _released() == 0
    assert KeyRelease.objects.filter(outcome="denied").count() == (1 if audited else 0)


def test_entitlement_is_asked_again_at_release(world: World, protected: content_keys.ContentKeyMaterial) -> None:
    client, body = _viewer(world)
    Enrollment.objects.filter(user=world.learner).delete()  # unenrolled after the session started
    response = _license(client, _request(protected), body["drm"]["headers"]["Authorization"])
    assert (response.status_code, response.json()) == (403, {"detail": "not entitled to this lesson"})
    denied = KeyRelease.objects.get()
    assert (denied.outcome, denied.reason, denied.user) == ("denied", "not entitled to this lesson", world.learner)


def test_unreadable_key_is_a_server_error_not_a_release(
    world: World, protected: content_keys.ContentKeyMaterial, settings: Settings
) -> None:
    client, body = _viewer(world)
    settings.CONTENT_KEY_SECRET = "rotated-without-repackaging"
    response = _license(client, _request(protected), body["drm"]["headers"]["Authorization"])
    assert response.status_code == 500
    assert _released() == 0


def test_token_shapes() -> None:
    secret = b"s" * 32
    claims = license_tokens.LicenseClaims(
        user_id="1", session="abc", lesson=str(uuid.uuid4()), version=3, kids=("ab" * 16,), expires_at=2000
    )
    token = license_tokens.token_issue(secret=secret, claims=claims, now=1000)
    assert license_tokens.token_verify(secret=secret, token=token, now=1999) == claims
    with pytest.raises(license_tokens.LicenseTokenInvalid, match="expired"):
        license_tokens.token_verify(secret=secret, token=token, now=2000)
    with pytest.raises(license_tokens.LicenseTokenInvalid):
        license_tokens.token_verify(secret=b"t" * 32, token=token, now=1500)
    header, payload, signature = token.split(".")
    with pytest.raises(license_tokens.LicenseTokenInvalid):
        license_tokens.token_verify(secret=secret, token=f"{header}.{payload}x.{signature}", now=1500)
    with pytest.raises(ValueError):
        license_tokens.token_issue(secret=secret, claims=claims.__class__(**{**claims.__dict__, "kids": ()}), now=1)
    assert license_tokens.session_binding(None) == ""
    assert license_tokens.session_binding("k1") != license_tokens.session_binding("k2")
    assert "k1" not in license_tokens.session_binding("k1")


# --- Throttles -----------------------------------------------------------------------------------------


@pytest.fixture
def low_rates(settings: Settings) -> Iterator[None]:
    settings.THROTTLE_PLAYBACK_SESSION = "3/min"
    settings.THROTTLE_DRM_LICENSE = "3/min"
    settings.THROTTLE_DRM_KEY = "3/min"
    throttles_clear()
    yield
    throttles_clear()


def test_playback_sessions_are_throttled_per_viewer(world: World, low_rates: None) -> None:
    client = APIClient()
    client.force_authenticate(world.learner)
    url = f"/api/v1/lessons/{world.lesson.public_id}/playback/"
    assert [client.post(url).status_code for _ in range(3)] == [200, 200, 200]
    refused = client.post(url)
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    other = APIClient()
    other.force_authenticate(world.educator)
    assert other.post(url).status_code == 200  # counted per viewer


def test_license_and_key_requests_are_throttled_before_anything_else(
    world: World, protected: content_keys.ContentKeyMaterial, low_rates: None
) -> None:
    client, body = _viewer(world)
    auth = body["drm"]["headers"]["Authorization"]
    statuses = [_license(client, _request(protected), auth).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = _license(client, b"not even json", auth)
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    key_url = f"/drm/hls/key/{protected.kid.hex}"
    statuses = [client.get(key_url, HTTP_AUTHORIZATION=auth).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert _released() == 6  # the refused requests released nothing
    anonymous = Client()
    assert [_license(anonymous, _request(protected), auth).status_code for _ in range(4)] == [403, 403, 403, 429]


# --- Admin ---------------------------------------------------------------------------------------------


def test_key_releases_are_read_only_in_the_admin_for_superusers(
    world: World, protected: content_keys.ContentKeyMaterial
) -> None:
    client, body = _viewer(world)
    _license(client, _request(protected), body["drm"]["headers"]["Authorization"])
    row = KeyRelease.objects.get()
    admin = Client()
    admin.force_login(world.admin)
    listing = admin.get("/admin/playback/keyrelease/")
    assert listing.status_code == 200
    assert str(protected.kid) in listing.content.decode() and "released" in listing.content.decode()
    detail = admin.get(f"/admin/playback/keyrelease/{row.pk}/change/")
    assert detail.status_code == 200 and b'type="submit"' not in detail.content.split(b'id="content"')[1]
    assert admin.get("/admin/playback/keyrelease/add/").status_code == 403
    assert admin.post(f"/admin/playback/keyrelease/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert KeyRelease.objects.count() == 1
    educator = Client()
    educator.force_login(world.educator)
    assert educator.get("/admin/playback/keyrelease/").status_code == 403


def test_a_protected_session_costs_no_extra_query(world: World, protected: content_keys.ContentKeyMaterial) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=world.learner)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    with CaptureQueriesContext(connection) as queries:
        response = client.post(f"/api/v1/lessons/{world.lesson.public_id}/playback/")
    assert response.status_code == 200 and response.json()["drm"]["key_ids"] == [protected.kid.hex]
    assert len(queries) == 2, [query["sql"][:80] for query in queries]
    # An API client without a browser session gets a token bound to the user only.
    claims = license_tokens.token_verify(
        secret=_secret(), token=response.json()["drm"]["headers"]["Authorization"][7:], now=int(time.time())
    )
    assert claims.session == ""


def _released_key(world: World, material: content_keys.ContentKeyMaterial) -> bytes:
    client, body = _viewer(world)
    response = _license(client, _request(material), body["drm"]["headers"]["Authorization"])
    assert response.status_code == 200, response.content
    return base64.urlsafe_b64decode(response.json()["keys"][0]["k"] + "==")


def test_content_key_secret_rotation_end_to_end(
    world: World, protected: content_keys.ContentKeyMaterial, settings: Settings
) -> None:
    """Sealed with the old secret; the new one configured with the old kept for reading; re-sealed by
    the command; the old one removed: the license server still releases the same key."""
    from django.core.management import call_command
    from django.core.management.base import CommandError

    old = settings.CONTENT_KEY_SECRET
    sealed_with_old = ContentKey.objects.get().key_sealed
    settings.CONTENT_KEY_SECRET, settings.CONTENT_KEY_SECRETS_OLD = "the-new-content-key-secret", [old]
    assert _released_key(world, protected) == protected.key  # read with the old secret meanwhile
    out = io.StringIO()
    call_command("content_keys_reseal", stdout=out)
    assert out.getvalue().strip() == "checked 1 content key(s), re-sealed 1 with the current secret"
    resealed = ContentKey.objects.get().key_sealed
    assert resealed != sealed_with_old
    assert (
        content_keys.open_sealed(
            resealed, kid=protected.kid, secret=b"the-new-content-key-secret", asset_id=world.asset.pk, version=1
        )
        == protected
    )
    settings.CONTENT_KEY_SECRETS_OLD = []
    assert _released_key(world, protected) == protected.key
    call_command("content_keys_reseal", stdout=io.StringIO())  # a rerun changes nothing
    assert ContentKey.objects.get().key_sealed == resealed
    # A key that opens with no configured secret stops the command before anything changes.
    settings.CONTENT_KEY_SECRET = "yet-another-secret"
    with pytest.raises(CommandError, match=r"opens with no configured secret .*; nothing was changed"):
        call_command("content_keys_reseal", stdout=io.StringIO())
    assert ContentKey.objects.get().key_sealed == resealed
