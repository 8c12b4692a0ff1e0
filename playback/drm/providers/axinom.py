"""Axinom DRM (Widevine, PlayReady, FairPlay): a signed entitlement message per playback session.

Format, from Axinom's documentation (License Service Message, Entitlement Message v2, Content Keys
Source) and its drm-quick-start sample:

- a License Service Message ``{"version": 1, "com_key_id": <communication key id>,
  "expiration_date": <ISO 8601>, "message": <entitlement message>}`` sent as an HS256 JWT signed
  with the communication key (given base64; the raw 32 bytes are the HMAC key), in the
  ``X-AxDRM-Message`` header of each license request;
- the entitlement message ``{"type": "entitlement_message", "version": 2, "license": {...},
  "content_keys_source": {"inline": [{"id", "encrypted_key", "usage_policy"}]},
  "content_key_usage_policies": [...]}``. Inline keys are never sent in the clear: ``encrypted_key``
  is the 16-byte content key encrypted with AES-256-CBC under the communication key, without padding,
  the IV being the key id's 16 bytes (big-endian GUID), base64.

The license service then answers the players' Widevine/PlayReady/FairPlay license requests itself;
nothing of it runs here. The packaging must carry those systems' PSSH boxes (DRM_PROTECTION_SYSTEMS).
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import jwt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from media_pipeline.content_keys import ContentKeyMaterial
from playback.drm.providers.base import DrmGrant, ProtectedContent, Viewer

HEADER = "X-AxDRM-Message"
POLICY = "Policy A"


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def encrypt_content_key(*, com_key: bytes, material: ContentKeyMaterial) -> str:
    encryptor = Cipher(algorithms.AES(com_key), modes.CBC(material.kid.bytes)).encryptor()
    return base64.b64encode(encryptor.update(material.key) + encryptor.finalize()).decode()


@dataclass(frozen=True)
class AxinomProvider:
    com_key_id: str
    com_key_b64: str = field(repr=False)
    license_urls: dict[str, str]
    name: str = "axinom"
    needs_keys: bool = True

    @property
    def com_key(self) -> bytes:
        key = base64.b64decode(self.com_key_b64, validate=True)
        if len(key) != 32:
            raise ValueError("the Axinom communication key must be 32 bytes (base64)")
        return key

    def entitlement_message(self, *, content: ProtectedContent, viewer: Viewer, now: int, expires_at: int) -> dict:
        com_key = self.com_key
        return {
            "type": "entitlement_message",
            "version": 2,
            "license": {
                "start_datetime": _iso(now - 60),  # a little clock skew between us and the service
                "expiration_datetime": _iso(expires_at),
                "allow_persistence": False,
            },
            "content_keys_source": {
                "inline": [
                    {
                        "id": str(material.kid),
                        "encrypted_key": encrypt_content_key(com_key=com_key, material=material),
                        "usage_policy": POLICY,
                    }
                    for material in content.keys
                ]
            },
            "content_key_usage_policies": [
                {
                    "name": POLICY,
                    "widevine": {"device_security_level": "SW_SECURE_CRYPTO"},
                    "playready": {"min_device_security_level": 2000},
                }
            ],
        }

    def license_service_message(self, *, content: ProtectedContent, viewer: Viewer, now: int, expires_at: int) -> dict:
        return {
            "version": 1,
            "com_key_id": str(uuid.UUID(self.com_key_id)),
            "expiration_date": _iso(expires_at),
            "message": self.entitlement_message(content=content, viewer=viewer, now=now, expires_at=expires_at),
        }

    def grant(self, *, viewer: Viewer, content: ProtectedContent, expires_at: int, now: int) -> DrmGrant:
        if {material.kid.hex for material in content.keys} != set(content.kids):
            raise ValueError("the Axinom entitlement needs every content key of the version")
        message = self.license_service_message(content=content, viewer=viewer, now=now, expires_at=expires_at)
        token = jwt.encode(message, self.com_key, algorithm="HS256")
        return DrmGrant(
            provider=self.name, servers=dict(self.license_urls), headers={HEADER: token}, expires_at=expires_at
        )
