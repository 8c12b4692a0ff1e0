from __future__ import annotations

import pytest
from pytest_django import Settings

from playback.signers import signer_get
from playback.signers.origin import OriginSigner
from playback.tokens import TokenResult, token_issue, token_verify

PREFIX = "lessons/2f1d3c4e-0000-4000-8000-000000000001/v3/"
NOW = 1_800_000_000


def test_origin_signer_puts_the_token_before_the_prefix() -> None:
    signer = OriginSigner(secret=b"s3cret")
    token = token_issue(secret=b"s3cret", prefix=PREFIX, expires_at=NOW)
    assert signer.sign_prefix(prefix=PREFIX, expires_at=NOW) == f"/stream/{token}/{PREFIX}"


def test_origin_signer_with_another_root() -> None:
    base = OriginSigner(secret=b"s3cret", stream_root="https://media.example/stream/").sign_prefix(
        prefix=PREFIX, expires_at=NOW
    )
    assert base.startswith("https://media.example/stream/")
    assert base.endswith("/" + PREFIX)
    with pytest.raises(ValueError):
        OriginSigner(secret=b"s3cret", stream_root="/stream")


def test_configured_signer_uses_the_playback_secret_and_the_stream_mount(settings: Settings) -> None:
    settings.PLAYBACK_TOKEN_SECRET = "configured-secret"
    base = signer_get().sign_prefix(prefix=PREFIX, expires_at=NOW + 60)
    assert base.startswith("/stream/")
    token = base.removeprefix("/stream/").removesuffix("/" + PREFIX)
    assert token == token_issue(secret=b"configured-secret", prefix=PREFIX, expires_at=NOW + 60)
    assert (
        token_verify(secret=b"configured-secret", token=token, path_key=PREFIX + "master.m3u8", now=NOW)
        is TokenResult.OK
    )
