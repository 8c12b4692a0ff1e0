"""Content keys of protected versions: generation and sealing at rest (pure: no Django).

A protected version is encrypted with one random 128-bit content key under a random key id (KID).
The key is stored only sealed: AES-256-GCM under a key derived (HKDF-SHA256) from the configured
secret, with the version's identity (asset, version, KID) as associated data, so a sealed key copied
onto another row does not open. Stored form: ``"v1." + base64url(nonce || ciphertext+tag)``.

Rotation: keys are always sealed with the current secret and opened with any configured one (the
current first, then the retired ones), and `open_sealed_any` says which opened it so a re-seal can
move every row onto the current secret.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_FORMAT = "v1."
_NONCE_BYTES = 12


class KeyUnreadable(Exception):
    """A sealed content key does not open: wrong secret, tampered value, or another row's key."""


@dataclass(frozen=True)
class ContentKeyMaterial:
    kid: uuid.UUID
    key: bytes  # 16 bytes

    def __repr__(self) -> str:  # keys never end up in logs or tracebacks by accident
        return f"ContentKeyMaterial(kid={self.kid}, key=<hidden>)"

    @property
    def kid_hex(self) -> str:
        return self.kid.hex

    @property
    def key_hex(self) -> str:
        return self.key.hex()


def generate() -> ContentKeyMaterial:
    return ContentKeyMaterial(kid=uuid.UUID(bytes=os.urandom(16)), key=os.urandom(16))


def _aead(secret: bytes) -> AESGCM:
    if not secret:
        raise ValueError("the content key secret is empty")
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"lessons content keys v1").derive(secret)
    return AESGCM(derived)


def _context(*, asset_id: int, version: int, kid: uuid.UUID) -> bytes:
    return f"{asset_id}:{version}:{kid.hex}".encode()


def seal(material: ContentKeyMaterial, *, secret: bytes, asset_id: int, version: int) -> str:
    nonce = os.urandom(_NONCE_BYTES)
    sealed = _aead(secret).encrypt(nonce, material.key, _context(asset_id=asset_id, version=version, kid=material.kid))
    return _FORMAT + base64.urlsafe_b64encode(nonce + sealed).decode()


def open_sealed(sealed: str, *, kid: uuid.UUID, secret: bytes, asset_id: int, version: int) -> ContentKeyMaterial:
    if not sealed.startswith(_FORMAT):
        raise KeyUnreadable("unknown sealed key format")
    try:
        raw = base64.urlsafe_b64decode(sealed[len(_FORMAT) :])
        key = _aead(secret).decrypt(
            raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _context(asset_id=asset_id, version=version, kid=kid)
        )
    except Exception as exc:  # noqa: BLE001 - InvalidTag, bad base64, short input: all the same to callers
        raise KeyUnreadable("the content key cannot be opened (CONTENT_KEY_SECRET changed?)") from exc
    if len(key) != 16:
        raise KeyUnreadable("the content key has the wrong length")
    return ContentKeyMaterial(kid=kid, key=key)


def open_sealed_any(
    sealed: str, *, kid: uuid.UUID, secrets: Sequence[bytes], asset_id: int, version: int
) -> tuple[ContentKeyMaterial, int]:
    """Open with the first of ``secrets`` that works (current first); returns the key and that index."""
    for index, secret in enumerate(secrets):
        try:
            return open_sealed(sealed, kid=kid, secret=secret, asset_id=asset_id, version=version), index
        except KeyUnreadable:
            continue
    raise KeyUnreadable("the content key opens with no configured secret (CONTENT_KEY_SECRET or _OLD)")
