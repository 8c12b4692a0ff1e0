"""DRM providers on one interface: this site's ClearKey and Axinom DRM's entitlement message, checked
field by field against Axinom's documented format (License Service Message v1 wrapping an Entitlement
Message v2 with inline content keys), since the commercial service cannot run here."""

from __future__ import annotations

import base64
import json
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from django.urls import reverse
from pytest_django import Settings

from media_pipeline.content_keys import ContentKeyMaterial
from playback.drm import license_tokens
from playback.drm.providers import ProtectedContent, Viewer, provider_get
from playback.drm.providers.axinom import HEADER, AxinomProvider
from playback.drm.providers.clearkey import ClearKeyProvider

COM_KEY = bytes(range(32))
COM_KEY_ID = "12196546-a312-4a4e-ab65-c19bccce1adf"
KEY = ContentKeyMaterial(
    kid=uuid.UUID("c816b99c-66c9-a755-b899-9e78f3ec151a"), key=bytes.fromhex("00112233445566778899aabbccddeeff")
)
URLS = {
    "com.widevine.alpha": "https://drm-widevine-licensing.axprod.net/AcquireLicense",
    "com.microsoft.playready": "https://drm-playready-licensing.axprod.net/AcquireLicense",
    "com.apple.fps": "https://drm-fairplay-licensing.axprod.net/AcquireLicense",
}
NOW = 1_767_225_600  # 2026-01-01T00:00:00Z


def _axinom() -> AxinomProvider:
    return AxinomProvider(com_key_id=COM_KEY_ID, com_key_b64=base64.b64encode(COM_KEY).decode(), license_urls=URLS)


def _content() -> ProtectedContent:
    return ProtectedContent(lesson=str(uuid.uuid4()), version=2, kids=(KEY.kid.hex,), keys=(KEY,))


def test_axinom_entitlement_message_field_by_field() -> None:
    grant = _axinom().grant(viewer=Viewer(user_id="7", session="s"), content=_content(), expires_at=NOW + 600, now=NOW)
    assert grant.provider == "axinom"
    assert grant.servers == URLS
    assert grant.hls_key_url == ""
    assert grant.expires_at == NOW + 600
    assert list(grant.headers) == [HEADER] == ["X-AxDRM-Message"]
    token = grant.headers[HEADER]

    # A JWT signed HS256 with the communication key's raw bytes (it is configured as base64).
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "HS256", "typ": "JWT"}
    envelope = jwt.decode(token, COM_KEY, algorithms=["HS256"])
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, base64.b64encode(COM_KEY), algorithms=["HS256"])  # not the base64 text

    # License Service Message.
    assert envelope == {
        "version": 1,
        "com_key_id": COM_KEY_ID,
        "expiration_date": "2026-01-01T00:10:00Z",
        "message": envelope["message"],
    }
    message = envelope["message"]
    assert list(message) == ["type", "version", "license", "content_keys_source", "content_key_usage_policies"]
    assert message["type"] == "entitlement_message"
    assert message["version"] == 2
    assert message["license"] == {
        "start_datetime": "2025-12-31T23:59:00Z",
        "expiration_datetime": "2026-01-01T00:10:00Z",
        "allow_persistence": False,
    }
    # Exactly one content keys source, inline, with the key encrypted (never in the clear).
    assert list(message["content_keys_source"]) == ["inline"]
    (inline,) = message["content_keys_source"]["inline"]
    assert list(inline) == ["id", "encrypted_key", "usage_policy"]
    assert inline["id"] == "c816b99c-66c9-a755-b899-9e78f3ec151a"
    assert inline["usage_policy"] == "Policy A"
    encrypted = base64.b64decode(inline["encrypted_key"], validate=True)
    assert len(encrypted) == 16  # AES-256-CBC without padding over the 16-byte key
    decryptor = Cipher(algorithms.AES(COM_KEY), modes.CBC(KEY.kid.bytes)).decryptor()
    assert decryptor.update(encrypted) + decryptor.finalize() == KEY.key  # IV = key id, big-endian GUID bytes
    assert KEY.key.hex() not in json.dumps(envelope) and base64.b64encode(KEY.key).decode() not in json.dumps(envelope)
    # Every referenced usage policy is defined.
    assert message["content_key_usage_policies"] == [
        {
            "name": "Policy A",
            "widevine": {"device_security_level": "SW_SECURE_CRYPTO"},
            "playready": {"min_device_security_level": 2000},
        }
    ]


def test_axinom_refuses_a_grant_without_the_keys_and_a_bad_communication_key() -> None:
    content = ProtectedContent(lesson="l", version=1, kids=(KEY.kid.hex,), keys=())
    with pytest.raises(ValueError, match="every content key"):
        _axinom().grant(viewer=Viewer(user_id="1", session=""), content=content, expires_at=NOW + 1, now=NOW)
    short = AxinomProvider(com_key_id=COM_KEY_ID, com_key_b64=base64.b64encode(b"short").decode(), license_urls=URLS)
    with pytest.raises(ValueError, match="32 bytes"):
        short.grant(viewer=Viewer(user_id="1", session=""), content=_content(), expires_at=NOW + 1, now=NOW)
    assert "com_key_b64" not in repr(_axinom()) or base64.b64encode(COM_KEY).decode() not in repr(_axinom())


def test_clearkey_grant_is_a_license_token_for_this_viewer() -> None:
    provider = ClearKeyProvider(secret=b"k" * 32, license_url="/drm/clearkey/license", hls_key_url="/drm/hls/key/")
    content = ProtectedContent(lesson="lesson-id", version=4, kids=(KEY.kid.hex,))
    grant = provider.grant(viewer=Viewer(user_id="9", session="sid"), content=content, expires_at=NOW + 60, now=NOW)
    assert (grant.provider, grant.servers, grant.hls_key_url) == (
        "clearkey", {"org.w3.clearkey": "/drm/clearkey/license"}, "/drm/hls/key/"
    )  # fmt: skip
    claims = license_tokens.token_verify(
        secret=b"k" * 32, token=grant.headers["Authorization"].removeprefix("Bearer "), now=NOW
    )
    assert claims == license_tokens.LicenseClaims(
        user_id="9", session="sid", lesson="lesson-id", version=4, kids=(KEY.kid.hex,), expires_at=NOW + 60
    )


def test_provider_is_chosen_by_settings_and_key_uri_matches_the_endpoint(settings: Settings) -> None:
    assert isinstance(provider_get(), ClearKeyProvider)
    assert settings.DRM_HLS_KEY_URI.format(kid="ab" * 16) == reverse("drm:hls-key", kwargs={"kid": "ab" * 16})
    settings.DRM_PROVIDER = "axinom"
    settings.AXINOM_COM_KEY_ID = COM_KEY_ID
    settings.AXINOM_COM_KEY = base64.b64encode(COM_KEY).decode()
    provider = provider_get()
    assert isinstance(provider, AxinomProvider) and provider.needs_keys
    assert provider.license_urls == settings.AXINOM_LICENSE_URLS


def test_steered_mpd_keeps_the_content_protection_of_a_protected_version() -> None:
    from playback.steering import Pathway, steer_dash_mpd

    mpd = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" xmlns:cenc="urn:mpeg:cenc:2013" type="static">'
        '<Period id="0"><AdaptationSet id="0" contentType="video">'
        '<ContentProtection value="cbcs" schemeIdUri="urn:mpeg:dash:mp4protection:2011" '
        'cenc:default_KID="c816b99c-66c9-a755-b899-9e78f3ec151a"/>'
        '<ContentProtection schemeIdUri="urn:uuid:1077efec-c0b2-4d02-ace3-3c1e52e2fb4b">'
        "<cenc:pssh>AAAANHBzc2gBAAAAEHfv7MCyTQKs4zweUuL7SwAAAAEBI0VniavN7wEjRWeJq83vAAAAAA==</cenc:pssh>"
        "</ContentProtection></AdaptationSet></Period></MPD>"
    )
    steered = steer_dash_mpd(
        mpd, pathways=[Pathway("eu", "https://eu/x/"), Pathway("us", "https://us/x/")], steering_uri="/s"
    )
    assert 'cenc:default_KID="c816b99c-66c9-a755-b899-9e78f3ec151a"' in steered
    assert 'value="cbcs"' in steered
    assert "<cenc:pssh>AAAANHBzc2gBAAAAEHfv7MCyTQKs4zweUuL7SwAAAAEBI0VniavN7wEjRWeJq83vAAAAAA==</cenc:pssh>" in steered
