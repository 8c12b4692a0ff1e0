"""The provider chosen by settings signs every playback session: CloudFront and Akamai hand their
cookies to the browser with the session (checked against botocore and Akamai's EdgeAuth library),
and credentials can be bound to the viewer's address or Django session."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from http.cookies import Morsel
from typing import Any

import pytest
from akamai.edgeauth import EdgeAuth
from botocore.signers import CloudFrontSigner as BotocoreSigner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.test import Client, RequestFactory
from pytest_django import Settings
from rest_framework.test import APIClient

from courses.models import Enrollment
from playback.binding import Binding, binding_for, client_ip
from playback.signers import SignedCookie, session_cookies
from playback.signers.cloudfront import CloudFrontSigner
from tests.playback.conftest import World

EDGE = "https://cdn.school.example"
AKAMAI_KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
KEY_PAIR_ID = "K2JCJMDEHXQW5F"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def cloudfront(settings: Settings, rsa_key: rsa.RSAPrivateKey) -> Settings:
    settings.PLAYBACK_SIGNER = "cloudfront"
    settings.PLAYBACK_EDGE_URL = EDGE
    settings.PLAYBACK_CLOUDFRONT_KEY_PAIR_ID = KEY_PAIR_ID
    settings.PLAYBACK_CLOUDFRONT_PRIVATE_KEY = rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    settings.PLAYBACK_COOKIE_DOMAIN = ".school.example"
    return settings


@pytest.fixture
def akamai(settings: Settings) -> Settings:
    settings.PLAYBACK_SIGNER = "akamai"
    settings.PLAYBACK_EDGE_URL = EDGE
    settings.PLAYBACK_AKAMAI_KEY = AKAMAI_KEY
    settings.PLAYBACK_COOKIE_DOMAIN = ".school.example"
    return settings


def _session(world: World, user: User | None = None, **extra: Any) -> HttpResponse:
    client = APIClient()
    client.force_authenticate(user or world.learner)
    return client.post(f"/api/v1/lessons/{world.lesson.public_id}/playback/", **extra)


def _cf_b64decode(value: str) -> bytes:
    return base64.b64decode(value.replace("-", "+").replace("_", "=").replace("~", "/"))


def _expiry(response: HttpResponse) -> int:
    return int(datetime.fromisoformat(response.json()["expires_at"].replace("Z", "+00:00")).timestamp())


def _check_cookie_attributes(morsel: Morsel, world: World) -> None:
    assert morsel["domain"] == ".school.example"
    assert morsel["path"] == f"/{world.prefix}"
    assert morsel["secure"] and morsel["httponly"]
    assert str(morsel["samesite"]).startswith("None")
    assert not morsel["expires"] and not morsel["max-age"]  # session cookies, as CloudFront advises


def test_cloudfront_session_sets_signed_cookies_for_the_version_prefix(
    world: World, cloudfront: Settings, rsa_key: rsa.RSAPrivateKey
) -> None:
    response = _session(world)
    assert response.status_code == 200
    body = response.json()
    # Plain URLs on the CDN: the credential is in the cookies, not the path.
    assert body["hls"] == f"{EDGE}/{world.prefix}master.m3u8"
    assert body["dash"] == f"{EDGE}/{world.prefix}manifest.mpd"
    assert body["credentials"] is True
    assert set(response.cookies) == {"CloudFront-Policy", "CloudFront-Signature", "CloudFront-Key-Pair-Id"}
    for morsel in response.cookies.values():
        _check_cookie_attributes(morsel, world)
    policy = _cf_b64decode(response.cookies["CloudFront-Policy"].value)
    reference = BotocoreSigner(KEY_PAIR_ID, lambda message: b"").build_policy(
        f"{EDGE}/{world.prefix}*", datetime.fromtimestamp(_expiry(response), tz=UTC)
    )
    assert policy.decode() == reference
    # CloudFront checks RSA-SHA1 over the policy with the key group's public key (raises if wrong).
    rsa_key.public_key().verify(
        _cf_b64decode(response.cookies["CloudFront-Signature"].value), policy, padding.PKCS1v15(), hashes.SHA1()
    )
    assert response.cookies["CloudFront-Key-Pair-Id"].value == KEY_PAIR_ID


def test_cloudfront_cookies_bound_to_the_viewer_address(world: World, cloudfront: Settings) -> None:
    cloudfront.PLAYBACK_TOKEN_BINDING = "ip"
    cloudfront.TRUSTED_PROXIES = ["10.0.0.0/8"]
    cloudfront.CLIENT_IP_HEADER = "X-Forwarded-For"
    response = _session(world, HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.77", REMOTE_ADDR="10.0.0.2")
    policy = json.loads(_cf_b64decode(response.cookies["CloudFront-Policy"].value))
    # The last address is the one our trusted proxy saw; the first is whatever the client claimed.
    assert policy["Statement"][0]["Condition"]["IpAddress"] == {"AWS:SourceIp": "203.0.113.77/32"}


def test_a_forwarded_header_from_an_untrusted_peer_does_not_change_the_binding(
    world: World, cloudfront: Settings
) -> None:
    cloudfront.PLAYBACK_TOKEN_BINDING = "ip"
    cloudfront.TRUSTED_PROXIES = ["10.0.0.0/8"]
    bound = []
    for forwarded in ("203.0.113.77", "198.51.100.1, 10.0.0.9", None):
        extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}
        response = _session(world, REMOTE_ADDR="192.0.2.44", **extra)
        policy = json.loads(_cf_b64decode(response.cookies["CloudFront-Policy"].value))
        bound.append(policy["Statement"][0]["Condition"]["IpAddress"]["AWS:SourceIp"])
    assert bound == ["192.0.2.44/32"] * 3  # the peer, whatever it claims
    cloudfront.TRUSTED_PROXIES = []  # the default: no proxy is trusted, even our own network
    response = _session(world, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.77")
    policy = json.loads(_cf_b64decode(response.cookies["CloudFront-Policy"].value))
    assert policy["Statement"][0]["Condition"]["IpAddress"] == {"AWS:SourceIp": "10.0.0.2/32"}


def test_akamai_session_sets_an_edgeauth_token_cookie(world: World, akamai: Settings) -> None:
    akamai.PLAYBACK_TOKEN_BINDING = "ip"
    response = _session(world, REMOTE_ADDR="192.0.2.44")
    assert response.status_code == 200
    assert response.json()["hls"] == f"{EDGE}/{world.prefix}master.m3u8"
    assert set(response.cookies) == {"__token__"}
    _check_cookie_attributes(response.cookies["__token__"], world)
    token = response.cookies["__token__"].value
    fields = dict(field.split("=", 1) for field in token.split("~"))
    assert fields["exp"] == str(_expiry(response))
    assert fields["acl"] == f"/{world.prefix}*"
    assert fields["ip"] == "192.0.2.44"
    reference = EdgeAuth(
        key=AKAMAI_KEY, algorithm="sha256", start_time=int(fields["st"]), end_time=int(fields["exp"]), ip="192.0.2.44"
    )
    assert token == reference.generate_acl_token(f"/{world.prefix}*")


def test_refused_viewers_get_no_cookies(world: World, cloudfront: Settings) -> None:
    response = _session(world, user=world.stranger)
    assert response.status_code == 403
    assert not response.cookies
    assert "hls" not in response.json()


def test_revoking_a_viewer_or_unpublishing_stops_new_credentials(world: World, cloudfront: Settings) -> None:
    assert _session(world).status_code == 200
    Enrollment.objects.filter(user=world.learner, course=world.course).delete()
    revoked = _session(world)
    assert (revoked.status_code, dict(revoked.cookies)) == (403, {})
    world.course.educators.add(world.learner)  # entitled again, as an educator this time
    assert _session(world).status_code == 200
    world.lesson.published = False
    world.lesson.save()
    unpublished = _session(world, user=world.stranger)
    assert (unpublished.status_code, dict(unpublished.cookies)) == (403, {})


def test_cloudfront_policy_covers_the_prefix_on_every_regions_distribution(rsa_key: rsa.RSAPrivateKey) -> None:
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    signer = CloudFrontSigner(key_pair_id=KEY_PAIR_ID, private_key_pem=pem, base_url="https://eu.cdn.school.example")
    prefix = "lessons/2f1d3c4e-0000-4000-8000-000000000001/v3/"
    same = signer.cookies_for_prefix(
        prefix=prefix, expires_at=1_900_000_000, other_bases=("https://eu.cdn.school.example/",)
    )
    assert json.loads(_cf_b64decode(same["CloudFront-Policy"]))["Statement"][0]["Resource"] == (
        f"https://eu.cdn.school.example/{prefix}*"
    )
    several = signer.cookies_for_prefix(
        prefix=prefix, expires_at=1_900_000_000, other_bases=("https://us.cdn.school.example",)
    )
    assert json.loads(_cf_b64decode(several["CloudFront-Policy"]))["Statement"][0]["Resource"] == f"http*://*/{prefix}*"


def test_cookie_providers_need_one_edge_path_for_all_regions(cloudfront: Settings) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from media_pipeline.regions import Region

    def region(name: str, base_url: str) -> Region:
        return Region(name=name, backend="s3", primary=name == "eu", base_url=base_url)

    prefix = "lessons/2f1d3c4e-0000-4000-8000-000000000001/v3/"
    cookies = session_cookies(
        prefix=prefix,
        expires_at=1_900_000_000,
        binding=Binding(),
        regions=[
            region("eu", "https://eu.cdn.school.example/media"),
            region("us", "https://us.cdn.school.example/media"),
        ],
    )
    assert {cookie.path for cookie in cookies} == {f"/media/{prefix}"}
    assert all(isinstance(cookie, SignedCookie) for cookie in cookies)
    with pytest.raises(ImproperlyConfigured, match="same URL path"):
        session_cookies(
            prefix=prefix,
            expires_at=1_900_000_000,
            binding=Binding(),
            regions=[region("eu", "https://eu.cdn.school.example/a"), region("us", "https://us.cdn.school.example/b")],
        )


def _stream_url(response: HttpResponse) -> str:
    return response.json()["hls"]


def test_origin_tokens_bound_to_the_session_work_only_with_that_session(world: World, settings: Settings) -> None:
    settings.PLAYBACK_TOKEN_BINDING = "session"
    mine, theirs = Client(), Client()
    mine.force_login(world.learner)
    theirs.force_login(world.learner)  # the same account in another browser: another session
    url = _stream_url(mine.post(f"/api/v1/lessons/{world.lesson.public_id}/playback/"))
    assert mine.get(url).status_code == 200
    assert theirs.get(url).status_code == 403
    assert Client().get(url).status_code == 403  # no session at all


def test_public_lesson_viewers_get_a_session_to_bind_to(world: World, settings: Settings) -> None:
    settings.PLAYBACK_TOKEN_BINDING = "session"
    world.lesson.public = True
    world.lesson.save()
    anonymous = Client()
    response = anonymous.post(f"/api/v1/lessons/{world.lesson.public_id}/playback/")
    assert response.status_code == 200
    assert settings.SESSION_COOKIE_NAME in response.cookies
    assert anonymous.get(_stream_url(response)).status_code == 200
    assert Client().get(_stream_url(response)).status_code == 403


def test_origin_tokens_bound_to_the_address(world: World, settings: Settings) -> None:
    settings.PLAYBACK_TOKEN_BINDING = "ip"
    client = Client(REMOTE_ADDR="203.0.113.5")
    client.force_login(world.learner)
    url = _stream_url(client.post(f"/api/v1/lessons/{world.lesson.public_id}/playback/"))
    assert re.search(r"/stream/\d+\.[A-Za-z0-9_-]{43}/", url)
    assert client.get(url).status_code == 200
    assert client.get(url, REMOTE_ADDR="203.0.113.6").status_code == 403
    settings.PLAYBACK_TOKEN_BINDING = "none"  # an unbound check refuses a bound token too
    assert client.get(url).status_code == 403


def test_client_ip_from_a_trusted_header(rf: RequestFactory, settings: Settings) -> None:
    settings.TRUSTED_PROXIES = []
    settings.CLIENT_IP_HEADER = "X-Forwarded-For"
    assert client_ip(rf.get("/", HTTP_X_FORWARDED_FOR="1.2.3.4", REMOTE_ADDR="10.0.0.1")) == "10.0.0.1"
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert client_ip(rf.get("/", HTTP_X_FORWARDED_FOR="1.2.3.4, 5.6.7.8", REMOTE_ADDR="10.0.0.1")) == "5.6.7.8"
    assert client_ip(rf.get("/", HTTP_X_FORWARDED_FOR="garbage", REMOTE_ADDR="10.0.0.1")) == "10.0.0.1"
    assert client_ip(rf.get("/", HTTP_X_FORWARDED_FOR="1.2.3.4", REMOTE_ADDR="192.0.2.1")) == "192.0.2.1"
    settings.CLIENT_IP_HEADER = "CloudFront-Viewer-Address"
    headers = {"REMOTE_ADDR": "10.0.0.1"}
    assert client_ip(rf.get("/", HTTP_CLOUDFRONT_VIEWER_ADDRESS="198.51.100.10:46532", **headers)) == "198.51.100.10"
    assert client_ip(rf.get("/", HTTP_CLOUDFRONT_VIEWER_ADDRESS="2001:db8::1:4653", **headers)) == "2001:db8::1"
    settings.PLAYBACK_TOKEN_BINDING = "ip"
    request = rf.get("/", HTTP_CLOUDFRONT_VIEWER_ADDRESS="198.51.100.10:1", **headers)
    assert binding_for(request).token_value() == "ip=198.51.100.10"
