"""RSA key pairs for signing our messages, and their public JWK form (pure: no database, no network).

The private key is kept as encrypted PKCS#8 PEM (AES-256 via BestAvailableEncryption), so a database
dump alone does not give it away; the passphrase comes from the environment (LTI_KEY_PASSPHRASE).
Rotation: a key opens with any configured passphrase (current first) and `reencrypt` moves it onto
the current one.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

KEY_SIZE = 2048


@dataclass(frozen=True)
class KeyPair:
    kid: str
    public_jwk: dict[str, Any]
    private_key_encrypted: str


def public_jwk(public_key: rsa.RSAPublicKey, *, kid: str) -> dict[str, Any]:
    jwk = json.loads(RSAAlgorithm.to_jwk(public_key))
    return {"kty": "RSA", "e": jwk["e"], "n": jwk["n"], "kid": kid, "alg": "RS256", "use": "sig"}


def thumbprint(public_key: rsa.RSAPublicKey) -> str:
    """RFC 7638 JWK thumbprint: a kid derived from the key itself."""
    jwk = json.loads(RSAAlgorithm.to_jwk(public_key))
    canonical = json.dumps({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def encrypt_private(private: rsa.RSAPrivateKey, *, passphrase: bytes) -> str:
    return private.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.BestAvailableEncryption(passphrase),
    ).decode()


def generate(*, passphrase: bytes) -> KeyPair:
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
    kid = thumbprint(private.public_key())
    pem = encrypt_private(private, passphrase=passphrase)
    return KeyPair(kid=kid, public_jwk=public_jwk(private.public_key(), kid=kid), private_key_encrypted=pem)


def load_private(encrypted_pem: str, *, passphrase: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(encrypted_pem.encode(), password=passphrase)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the LTI tool key is not an RSA key")
    return key


def load_private_any(encrypted_pem: str, *, passphrases: Sequence[bytes]) -> tuple[rsa.RSAPrivateKey, int]:
    """The key, opened with the first of ``passphrases`` that works (current first), and that index."""
    for index, passphrase in enumerate(passphrases):
        try:
            return load_private(encrypted_pem, passphrase=passphrase), index
        except (ValueError, TypeError):
            continue
    raise ValueError("the LTI tool key opens with no configured passphrase (LTI_KEY_PASSPHRASE or _OLD)")
