"""Path tokens (pure: no database, no settings)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import string

import pytest

from playback.tokens import TokenResult, prefix_of, token_issue, token_verify

SECRET = b"test-secret"
PREFIX = "lessons/2f1d3c4e-0000-4000-8000-000000000001/v3/"
KEY = PREFIX + "video_720p/12.m4s"
NOW = 1_800_000_000
URL_SAFE = string.ascii_letters + string.digits + "-_"


def _verify(token: str, key: str = KEY, *, now: int = NOW, secret: bytes = SECRET) -> TokenResult:
    return token_verify(secret=secret, token=token, path_key=key, now=now)


def test_token_is_expiry_dot_unpadded_base64url_hmac_of_expiry_and_prefix() -> None:
    token = token_issue(secret=SECRET, prefix=PREFIX, expires_at=NOW + 60)
    mac = hmac.new(SECRET, f"{NOW + 60}:{PREFIX}".encode(), hashlib.sha256).digest()
    assert token == f"{NOW + 60}." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    expires, signature = token.split(".")
    assert len(signature) == 43
    assert set(expires + signature) <= set(URL_SAFE)


def test_a_token_opens_every_object_under_its_prefix() -> None:
    token = token_issue(secret=SECRET, prefix=PREFIX, expires_at=NOW + 60)
    for name in ("master.m3u8", "manifest.mpd", "poster.jpg", "video_720p/init.mp4", "video_720p/12.m4s"):
        assert _verify(token, PREFIX + name) is TokenResult.OK, name


def test_expiry_boundary() -> None:
    token = token_issue(secret=SECRET, prefix=PREFIX, expires_at=NOW)
    assert _verify(token, now=NOW - 1) is TokenResult.OK
    assert _verify(token, now=NOW) is TokenResult.EXPIRED
    assert _verify(token, now=NOW + 10**9) is TokenResult.EXPIRED


def test_changing_any_single_character_of_the_token_is_refused() -> None:
    token = token_issue(secret=SECRET, prefix=PREFIX, expires_at=NOW + 60)
    for index, char in enumerate(token):
        for replacement in ("0", "A") if char != "." else ("-", "_"):
            if replacement == char:
                replacement = "1" if char == "0" else "B"
            tampered = token[:index] + replacement + token[index + 1 :]
            assert _verify(tampered) is TokenResult.BAD, tampered


def test_a_later_expiry_with_the_old_signature_is_refused_not_expired() -> None:
    token = token_issue(secret=SECRET, prefix=PREFIX, expires_at=NOW - 60)
    _, signature = token.split(".")
    assert _verify(token) is TokenResult.EXPIRED
    assert _verify(f"{NOW + 3600}.{signature}") is TokenResult.BAD


def test_another_secret_is_refused() -> None:
    token = token_issue(secret=b"other-secret", prefix=PREFIX, expires_at=NOW + 60)
    assert _verify(token) is TokenResult.BAD


@pytest.mark.parametrize(
    "shape",
    [
        "",
        "{e}",
        "{e}.",
        ".{s}",
        "{e}.{s}=",
        "{e}.{s}.{s}",
        "{e}..{s}",
        "0{e}.{s}",  # same expiry with a leading zero: only the canonical form is accepted
        "+{e}.{s}",
        "-{e}.{s}",
        " {e}.{s}",
        "{e}.{s} ",
        "{e}.{s}\n",
        "{e}.{t}",  # signature cut short by one character
        "{e}.{s}A",
    ],
)
def test_malformed_tokens_are_refused(shape: str) -> None:
    token = token_issue(secret=SECRET, prefix=PREFIX, expires_at=NOW + 60)
    expires, signature = token.split(".")
    assert _verify(shape.format(e=expires, s=signature, t=signature[:-1])) is TokenResult.BAD


@pytest.mark.parametrize(
    "key",
    [
        KEY.replace("/v3/", "/v2/"),  # another version of the same lesson
        KEY.replace("/v3/", "/v30/"),  # a version whose name starts with the same characters
        KEY.replace("2f1d3c4e", "9f1d3c4e"),  # another lesson
        "sources/2f1d3c4e-0000-4000-8000-000000000001/upload",  # a source upload
    ],
)
def test_a_token_for_one_version_opens_no_other(key: str) -> None:
    token = token_issue(secret=SECRET, prefix=PREFIX, expires_at=NOW + 60)
    assert _verify(token, key) is TokenResult.BAD


@pytest.mark.parametrize(
    "key",
    [
        PREFIX + "../v2/master.m3u8",
        PREFIX + "video_720p/../../v2/master.m3u8",
        PREFIX + "./master.m3u8",
        PREFIX + "video_720p//12.m4s",
        PREFIX + "video_720p/",
        PREFIX + "%2e%2e/v2/master.m3u8",
        PREFIX + "%2E%2E%2Fv2%2Fmaster.m3u8",
        PREFIX + "..%2fv2/master.m3u8",
        PREFIX + "..%252fv2/master.m3u8",
        PREFIX + "a\\..\\b",
        PREFIX + "master.m3u8\x00.jpg",
        PREFIX + "master .m3u8",
        PREFIX + "\u2024\u2024/v2/master.m3u8",  # one-dot leaders that normalise to ".."
        "/" + KEY,
        "./" + KEY,
        PREFIX,
        PREFIX.rstrip("/"),
        "",
    ],
)
def test_traversal_encoded_traversal_and_odd_keys_are_refused(key: str) -> None:
    token = token_issue(secret=SECRET, prefix=PREFIX, expires_at=NOW + 60)
    assert _verify(token, key) is TokenResult.BAD


def test_prefix_of() -> None:
    assert prefix_of(KEY) == PREFIX
    assert prefix_of(PREFIX + "master.m3u8") == PREFIX
    assert prefix_of("lessons/x/master.m3u8") is None
    assert prefix_of("lessons/x/v0/master.m3u8") is None
    assert prefix_of("lessons/x/v03/master.m3u8") is None
    assert prefix_of("other/x/v1/a") is None


@pytest.mark.parametrize(
    "prefix",
    [PREFIX.rstrip("/"), "/" + PREFIX, "lessons/x/", "lessons/x/v1/extra/", "lessons/../v1/", "", "lessons/x/v1//"],
)
def test_issue_refuses_anything_but_a_version_prefix(prefix: str) -> None:
    with pytest.raises(ValueError):
        token_issue(secret=SECRET, prefix=prefix, expires_at=NOW)


def test_issue_refuses_an_empty_secret_and_a_negative_expiry() -> None:
    with pytest.raises(ValueError):
        token_issue(secret=b"", prefix=PREFIX, expires_at=NOW)
    with pytest.raises(ValueError):
        token_issue(secret=SECRET, prefix=PREFIX, expires_at=-1)
