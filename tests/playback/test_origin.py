"""The Django origin: token first, storage second, byte ranges and cache headers."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from media_pipeline import storage
from playback.origin import IMMUTABLE, RangeNotSatisfiable, parse_range
from playback.tokens import token_issue
from tests.playback.conftest import SEGMENT, World


def _url(world: World, name: str, *, expires_in: int = 600, prefix: str | None = None, settings=None) -> str:  # type: ignore[no-untyped-def]
    from django.conf import settings as django_settings

    prefix = prefix or world.asset.published_prefix
    token = token_issue(
        secret=django_settings.PLAYBACK_TOKEN_SECRET.encode(), prefix=prefix, expires_at=int(time.time()) + expires_in
    )
    return f"/stream/{token}/{world.asset.published_prefix}{name}"


def _body(response) -> bytes:  # type: ignore[no-untyped-def]
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_segment_is_served_whole_with_immutable_cache_headers(world: World) -> None:
    response = Client().get(_url(world, "video_360p/1.m4s"))
    assert response.status_code == 200
    assert _body(response) == SEGMENT
    assert response["Content-Type"] == "video/mp4"
    assert response["Content-Length"] == str(len(SEGMENT))
    assert response["Accept-Ranges"] == "bytes"
    assert response["Cache-Control"] == IMMUTABLE


def test_playlist_has_its_content_type_and_a_short_cache_life(world: World) -> None:
    response = Client().get(_url(world, "master.m3u8"))
    assert response.status_code == 200
    assert _body(response) == b"#EXTM3U\n"
    assert response["Content-Type"] == "application/vnd.apple.mpegurl"
    assert response["Cache-Control"] == "public, max-age=60"


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=10000-", 10000, 10239),
        ("bytes=-40", 10200, 10239),
        ("bytes=10000-99999", 10000, 10239),
    ],
)
def test_byte_ranges(world: World, header: str, start: int, end: int) -> None:
    response = Client().get(_url(world, "video_360p/1.m4s"), HTTP_RANGE=header)
    assert response.status_code == 206
    assert _body(response) == SEGMENT[start : end + 1]
    assert response["Content-Range"] == f"bytes {start}-{end}/{len(SEGMENT)}"
    assert response["Content-Length"] == str(end - start + 1)


def test_unsatisfiable_range_is_416(world: World) -> None:
    response = Client().get(_url(world, "video_360p/1.m4s"), HTTP_RANGE="bytes=20000-")
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(SEGMENT)}"


def test_head_sends_headers_only(world: World) -> None:
    response = Client().head(_url(world, "video_360p/1.m4s"))
    assert response.status_code == 200
    assert response["Content-Length"] == str(len(SEGMENT))
    assert _body(response) == b""


def test_missing_object_is_404(world: World) -> None:
    assert Client().get(_url(world, "video_360p/99.m4s")).status_code == 404


@pytest.fixture
def storage_untouched(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a refused request reached storage")

    for name in ("exists", "size", "open_range"):
        monkeypatch.setattr(storage, name, refuse)


def test_forged_token_is_403_without_touching_storage(world: World, storage_untouched: None) -> None:
    url = _url(world, "video_360p/1.m4s")
    token = url.split("/")[2]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    response = Client().get(url.replace(token, forged))
    assert response.status_code == 403


def test_expired_token_is_410_without_touching_storage(world: World, storage_untouched: None) -> None:
    response = Client().get(_url(world, "video_360p/1.m4s", expires_in=-1))
    assert response.status_code == 410


def test_token_for_another_prefix_is_403_without_touching_storage(world: World, storage_untouched: None) -> None:
    other = world.asset.key_prefix + "/v2/"
    response = Client().get(_url(world, "video_360p/1.m4s", prefix=other))
    assert response.status_code == 403


def test_traversal_out_of_the_prefix_is_refused(world: World, storage_untouched: None) -> None:
    url = _url(world, "../v2/master.m3u8")
    assert Client().get(url).status_code in (403, 404)


def test_write_methods_are_not_allowed(world: World) -> None:
    assert Client().post(_url(world, "master.m3u8")).status_code == 405


def test_parse_range_unit_cases() -> None:
    assert parse_range(None, 100) is None
    assert parse_range("bytes=0-0", 100) == (0, 0)
    assert parse_range("bytes=0-1,5-6", 100) is None  # multi-range: whole object
    assert parse_range("items=0-1", 100) is None
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=5-1", 100)
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=-0", 100)
