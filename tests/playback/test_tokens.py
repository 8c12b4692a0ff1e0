from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from playback.tokens import TokenResult, prefix_of, token_issue, token_verify

SECRET = b"test-secret"
PREFIX = "lessons/2f1d3c4e-0000-4000-8000-000000000001/v3/"
KEY = PREFIX + "video_720p/12.m4s"
NOW = 1_800_000_000


def test_token_format_is_expiry_dot_base64url_hmac_of_expiry_and_prefix() -> None:
    token = token_issue(secret=SECRET, prefix=PREFIX, expires_at=NOW + 60)
    mac = hmac.new(SECRET, f"{NOW + 60}:{PREFIX}".encode(), hashlib.sha256).digest()
    assert token == f"{NOW + 60}." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    assert token_verify(secret=SECRET, token=token, key=KEY, now=NOW) is TokenResult.OK
    assert token_verify(secret=SECRET, token=token, key=PREFIX + "master.m3u8", now=NOW) is TokenResult.OK


def test_expiry_boundary() -> None:
    token = token_issue(secret=SECRET, prefix=PREFIX, expires_at=NOW)
    assert token_verify(secret=SECRET, token=token, key=KEY, now=NOW - 1) is TokenResult.OK
    assert token_verify(secret=SECRET, token=token, key=KEY, now=NOW) is TokenResult.EXPIRED


def test_every_tampered_part_is_refused() -> None:
    token = token_issue(secret=SECRET, prefix=PREFIX, expires_at=NOW + 60)
    expires, signature = token.split(".")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    assert token_verify(secret=SECRET, token=f"{int(expires) + 3600}.{signature}", key=KEY, now=NOW) is TokenResult.BAD
    assert token_verify(secret=SECRET, token=f"{expires}.{flipped}", key=KEY, now=NOW) is TokenResult.BAD
    assert token_verify(secret=b"other-secret", token=token, key=KEY, now=NOW) is TokenResult.BAD
    for malformed in ["", expires, f"{expires}.", f".{signature}", f"{expires}.{signature}=", f"-1.{signature}"]:
        assert token_verify(secret=SECRET, token=malformed, key=KEY, now=NOW) is TokenResult.BAD, malformed


def test_a_token_for_one_version_opens_no_other() -> None:
    token = token_issue(secret=SECRET, prefix=PREFIX, expires_at=NOW + 60)
    other_version = KEY.replace("/v3/", "/v2/")
    other_lesson = KEY.replace("2f1d3c4e", "9f1d3c4e")
    for key in (other_version, other_lesson, "sources/2f1d3c4e/abc"):
        assert token_verify(secret=SECRET, token=token, key=key, now=NOW) is TokenResult.BAD, key


@pytest.mark.parametrize(
    "key",
    [
        PREFIX + "../v2/master.m3u8",
        PREFIX + "./master.m3u8",
        PREFIX + "video//1.m4s",
        PREFIX + "%2e%2e/v2/master.m3u8",
        "/" + KEY,
        PREFIX + "a\\b",
        PREFIX,
    ],
)
def test_traversal_and_odd_keys_are_refused(key: str) -> None:
    token = token_issue(secret=SECRET, prefix=PREFIX, expires_at=NOW + 60)
    assert token_verify(secret=SECRET, token=token, key=key, now=NOW) is TokenResult.BAD


def test_prefix_of() -> None:
    assert prefix_of(KEY) == PREFIX
    assert prefix_of("lessons/x/master.m3u8") is None
    assert prefix_of("other/x/v1/a") is None


def test_issue_refuses_a_prefix_without_trailing_slash() -> None:
    with pytest.raises(ValueError):
        token_issue(secret=SECRET, prefix=PREFIX.rstrip("/"), expires_at=NOW)
