"""Delivery providers' tokens, checked against each provider's reference: botocore's
CloudFrontSigner, Akamai's own EdgeAuth library, and a real nginx with the shipped secure_link config."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from akamai.edgeauth import EdgeAuth
from botocore.signers import CloudFrontSigner as BotocoreSigner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from playback.signers.akamai import AkamaiSigner, edgeauth_token
from playback.signers.cloudfront import CloudFrontSigner
from playback.signers.nginx import secure_link_token

PREFIX = "lessons/2f1d3c4e-0000-4000-8000-000000000001/v3/"
EXPIRES = 1_900_000_000


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _reference(key: rsa.RSAPrivateKey) -> BotocoreSigner:
    return BotocoreSigner("K2JCJMDEHXQW5F", lambda message: key.sign(message, padding.PKCS1v15(), hashes.SHA1()))


def _cf_b64decode(value: str) -> bytes:
    return base64.b64decode(value.replace("-", "+").replace("_", "=").replace("~", "/"))


def test_cloudfront_signed_url_matches_botocore(rsa_key: rsa.RSAPrivateKey) -> None:
    ours = CloudFrontSigner(
        key_pair_id="K2JCJMDEHXQW5F", private_key_pem=_pem(rsa_key), base_url="https://cdn.example.org"
    )
    url = f"https://cdn.example.org/{PREFIX}poster.jpg"
    reference = _reference(rsa_key)
    policy = reference.build_policy(url, datetime.fromtimestamp(EXPIRES, tz=UTC), ip_address="203.0.113.9")
    assert ours.signed_url(url=url, expires_at=EXPIRES, client_ip="203.0.113.9") == reference.generate_presigned_url(
        url, policy=policy
    )


def test_cloudfront_cookies_cover_the_version_prefix(rsa_key: rsa.RSAPrivateKey) -> None:
    ours = CloudFrontSigner(
        key_pair_id="K2JCJMDEHXQW5F", private_key_pem=_pem(rsa_key), base_url="https://cdn.example.org/"
    )
    cookies = ours.cookies_for_prefix(prefix=PREFIX, expires_at=EXPIRES)
    assert set(cookies) == {"CloudFront-Policy", "CloudFront-Signature", "CloudFront-Key-Pair-Id"}
    policy = _cf_b64decode(cookies["CloudFront-Policy"])
    expected = _reference(rsa_key).build_policy(
        f"https://cdn.example.org/{PREFIX}*", datetime.fromtimestamp(EXPIRES, tz=UTC)
    )
    assert policy.decode() == expected
    assert json.loads(policy)["Statement"][0]["Condition"] == {"DateLessThan": {"AWS:EpochTime": EXPIRES}}
    # The signature verifies with the public key CloudFront holds (raises if not).
    rsa_key.public_key().verify(
        _cf_b64decode(cookies["CloudFront-Signature"]), policy, padding.PKCS1v15(), hashes.SHA1()
    )
    assert ours.sign_prefix(prefix=PREFIX, expires_at=EXPIRES) == f"https://cdn.example.org/{PREFIX}"


def test_cloudfront_refuses_a_non_rsa_key() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(ValueError, match="RSA"):
        CloudFrontSigner(key_pair_id="K", private_key_pem=pem, base_url="https://cdn")


@pytest.mark.parametrize("ip", [None, "198.51.100.7"])
def test_akamai_token_matches_the_edgeauth_library(ip: str | None) -> None:
    key = "52a152a152a152a152a152a152a1aabb"
    reference = EdgeAuth(key=key, algorithm="sha256", start_time=EXPIRES - 3600, end_time=EXPIRES, ip=ip)
    expected = reference.generate_acl_token(f"/{PREFIX}*")
    assert edgeauth_token(key_hex=key, acl=f"/{PREFIX}*", start=EXPIRES - 3600, end=EXPIRES, ip=ip) == expected
    signer = AkamaiSigner(key_hex=key, base_url="https://edge.example.org")
    assert signer.cookies_for_prefix(prefix=PREFIX, expires_at=EXPIRES, start=EXPIRES - 3600, client_ip=ip) == {
        "__token__": expected
    }
    with pytest.raises(ValueError):
        edgeauth_token(key_hex=key, acl="/x", start=EXPIRES, end=EXPIRES)
    with pytest.raises(binascii_error()):
        AkamaiSigner(key_hex="not-hex", base_url="https://edge")


def binascii_error() -> type[Exception]:
    import binascii

    return binascii.Error


def test_nginx_token_format() -> None:
    # base64url(MD5("<expires><prefix> <secret>")), unpadded: what secure_link_md5 computes.
    import hashlib

    digest = hashlib.md5(f"{EXPIRES}{PREFIX} s3cret".encode()).digest()
    assert (
        secure_link_token(secret="s3cret", prefix=PREFIX, expires_at=EXPIRES)
        == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    )
