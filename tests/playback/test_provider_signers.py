"""Delivery providers' tokens, checked against each provider's reference: botocore's
CloudFrontSigner, Akamai's own EdgeAuth library, and a real nginx with the shipped secure_link config."""

from __future__ import annotations

import base64
import json
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from akamai.edgeauth import EdgeAuth
from botocore.signers import CloudFrontSigner as BotocoreSigner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from playback.signers.akamai import AkamaiSigner, edgeauth_token
from playback.signers.cloudfront import CloudFrontSigner
from playback.signers.nginx import NginxSecureLinkSigner, secure_link_token

ROOT = Path(__file__).resolve().parents[2]
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


# --- nginx secure_link, for real --------------------------------------------------------------------


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_nginx_checks_the_tokens_our_signer_makes(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    for folder in (tmp_path, *tmp_path.parents):  # nginx workers run unprivileged
        if folder == Path("/tmp"):
            break
        folder.chmod(folder.stat().st_mode | 0o755)
    media = tmp_path / "media" / PREFIX / "video_360p"
    media.mkdir(parents=True)
    (media / "1.m4s").write_bytes(b"segment")
    (tmp_path / "media" / PREFIX / "master.m3u8").write_text("#EXTM3U\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    temp = "".join(f"{n}_temp_path {tmp_path / n};\n" for n in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (tmp_path / "nginx.conf").write_text(
        f"""daemon off;
pid {tmp_path / "nginx.pid"};
error_log {tmp_path / "error.log"};
events {{}}
http {{
  {temp}
  access_log off;
  server {{
    listen 127.0.0.1:{port};
    root {tmp_path / "media"};
    set $lessons_secret "edge-secret-123";
    include {ROOT / "deploy" / "nginx" / "lessons-secure-link.conf"};
    location / {{ return 404; }}
  }}
}}
"""
    )
    process = subprocess.Popen([nginx, "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "error.log").read_text()
                time.sleep(0.05)
        edge = f"http://127.0.0.1:{port}"
        now = int(time.time())
        signer = NginxSecureLinkSigner(secret="edge-secret-123", base_url=edge)
        base = signer.sign_prefix(prefix=PREFIX, expires_at=now + 600)
        assert _status(base + "master.m3u8") == 200
        assert _status(base + "video_360p/1.m4s") == 200
        forged = NginxSecureLinkSigner(secret="guessed", base_url=edge).sign_prefix(prefix=PREFIX, expires_at=now + 600)
        assert _status(forged + "master.m3u8") == 403
        expired = signer.sign_prefix(prefix=PREFIX, expires_at=now - 1)
        assert _status(expired + "master.m3u8") == 410
        other_version = base.replace("/v3/", "/v2/")
        assert _status(other_version + "master.m3u8") == 403
        assert _status(base + "../v2/master.m3u8") in (403, 404)
        later = base.replace(f"/{now + 600}/", f"/{now + 9600}/")  # extending the expiry breaks the token
        assert _status(later + "master.m3u8") == 403
        assert len(secure_link_token(secret="s", prefix=PREFIX, expires_at=1)) == 22
    finally:
        process.send_signal(signal.SIGQUIT)
        process.wait(timeout=10)
