"""The Django origin: token first, storage second, byte ranges and cache headers."""

from __future__ import annotations

import inspect
import time
import warnings

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.http.response import HttpResponseBase
from django.test import AsyncClient, Client

from media_pipeline import storage
from playback.origin import IMMUTABLE, PLAYLIST, RangeNotSatisfiable, parse_range
from playback.tokens import token_issue
from tests.playback.conftest import FILES, SEGMENT, World

SEGMENT_NAME = "video_360p/1.m4s"


def _token(world: World, *, expires_in: int = 600, prefix: str | None = None) -> str:
    return token_issue(
        secret=settings.PLAYBACK_TOKEN_SECRET.encode(),
        prefix=prefix or world.prefix,
        expires_at=int(time.time()) + expires_in,
    )


def _url(world: World, name: str, *, expires_in: int = 600, prefix: str | None = None) -> str:
    return f"/stream/{_token(world, expires_in=expires_in, prefix=prefix)}/{world.prefix}{name}"


def _body(response: HttpResponseBase) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def storage_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every storage function that does I/O raises; only the pure content-type lookup remains."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a refused request reached storage")

    for name, function in inspect.getmembers(storage, inspect.isfunction):
        if function.__module__ == storage.__name__ and name != "content_type_for":
            monkeypatch.setattr(storage, name, refuse)


@pytest.mark.parametrize(
    ("name", "content_type", "cache_control"),
    [
        ("master.m3u8", "application/vnd.apple.mpegurl", PLAYLIST),
        ("manifest.mpd", "application/dash+xml", PLAYLIST),
        ("video_360p/init.mp4", "video/mp4", IMMUTABLE),
        ("video_360p/1.m4s", "video/mp4", IMMUTABLE),
        ("poster.jpg", "image/jpeg", IMMUTABLE),
        ("captions/en.vtt", "text/vtt; charset=utf-8", IMMUTABLE),
    ],
)
def test_every_kind_of_object_is_served_whole_with_its_type_and_cache_policy(
    world: World, name: str, content_type: str, cache_control: str
) -> None:
    response = Client().get(_url(world, name))
    assert response.status_code == 200
    assert response.streaming is True
    assert _body(response) == FILES[name]
    assert response["Content-Type"] == content_type
    assert response["Content-Length"] == str(len(FILES[name]))
    assert response["Accept-Ranges"] == "bytes"
    assert response["Cache-Control"] == cache_control
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response.has_header("Content-Range") is False


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=0-0", 0, 0),
        ("bytes=10239-10239", 10239, 10239),
        ("bytes=10000-", 10000, 10239),
        ("bytes=0-", 0, 10239),
        ("bytes=-40", 10200, 10239),
        ("bytes=-20000", 0, 10239),
        ("bytes=10000-99999", 10000, 10239),
    ],
)
def test_byte_ranges(world: World, header: str, start: int, end: int) -> None:
    response = Client().get(_url(world, SEGMENT_NAME), HTTP_RANGE=header)
    assert response.status_code == 206
    assert _body(response) == SEGMENT[start : end + 1]
    assert response["Content-Range"] == f"bytes {start}-{end}/{len(SEGMENT)}"
    assert response["Content-Length"] == str(end - start + 1)
    assert response["Content-Type"] == "video/mp4"
    assert response["Cache-Control"] == IMMUTABLE


@pytest.mark.parametrize("header", ["bytes=10240-", "bytes=20000-30000", "bytes=-0"])
def test_unsatisfiable_range_is_416(world: World, header: str) -> None:
    response = Client().get(_url(world, SEGMENT_NAME), HTTP_RANGE=header)
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(SEGMENT)}"


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "bytes=5-1", "items=0-1", "bytes=a-b", "bytes=-"])
def test_multi_and_invalid_ranges_are_ignored(world: World, header: str) -> None:
    response = Client().get(_url(world, SEGMENT_NAME), HTTP_RANGE=header)
    assert response.status_code == 200
    assert _body(response) == SEGMENT


def test_head_sends_headers_only(world: World) -> None:
    response = Client().head(_url(world, SEGMENT_NAME))
    assert response.status_code == 200
    assert response["Content-Length"] == str(len(SEGMENT))
    assert response["Content-Type"] == "video/mp4"
    assert response["Accept-Ranges"] == "bytes"
    assert response["Cache-Control"] == IMMUTABLE
    assert _body(response) == b""


def test_head_with_a_range(world: World) -> None:
    response = Client().head(_url(world, SEGMENT_NAME), HTTP_RANGE="bytes=100-199")
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 100-199/{len(SEGMENT)}"
    assert response["Content-Length"] == "100"
    assert _body(response) == b""


def test_missing_object_is_404(world: World) -> None:
    response = Client().get(_url(world, "video_360p/99.m4s"))
    assert response.status_code == 404
    assert response["Cache-Control"] == "no-store"


def test_under_asgi_the_object_is_streamed_chunk_by_chunk(world: World) -> None:
    async def fetch() -> tuple[int, str, bool, list[bytes]]:
        response = await AsyncClient().get(_url(world, SEGMENT_NAME), headers={"Range": "bytes=0-4095"})
        # A synchronous iterator would be read whole into memory by Django's ASGI handler.
        assert response.is_async is True
        chunks = [chunk async for chunk in response.streaming_content]
        return response.status_code, response["Content-Range"], response.is_async, chunks

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status, content_range, is_async, chunks = async_to_sync(fetch)()
    assert (status, content_range, is_async) == (206, f"bytes 0-4095/{len(SEGMENT)}", True)
    assert b"".join(chunks) == SEGMENT[:4096]
    assert [str(w.message) for w in caught if "StreamingHttpResponse" in str(w.message)] == []


def test_forged_token_is_403_without_touching_storage(world: World, storage_untouched: None) -> None:
    token = _token(world)
    forged = token[:-1] + ("A" if not token.endswith("A") else "B")
    response = Client().get(f"/stream/{forged}/{world.prefix}{SEGMENT_NAME}")
    assert response.status_code == 403
    assert response.content == b"forbidden\n"
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize("method", ["get", "head"])
def test_expired_token_is_410_without_touching_storage(world: World, storage_untouched: None, method: str) -> None:
    response = getattr(Client(), method)(_url(world, SEGMENT_NAME, expires_in=-1))
    assert response.status_code == 410
    assert response["Cache-Control"] == "no-store"


def test_token_for_another_version_is_403_without_touching_storage(world: World, storage_untouched: None) -> None:
    response = Client().get(_url(world, SEGMENT_NAME, prefix=f"{world.asset.key_prefix}/v2/"))
    assert response.status_code == 403


def test_token_for_another_lesson_is_403_without_touching_storage(world: World, storage_untouched: None) -> None:
    other = "lessons/00000000-0000-4000-8000-000000000000/v1/"
    response = Client().get(_url(world, SEGMENT_NAME, prefix=other))
    assert response.status_code == 403


@pytest.mark.parametrize(
    "tail",
    [
        "../v2/master.m3u8",
        "video_360p/../../v2/master.m3u8",
        "%2e%2e/v2/master.m3u8",
        "%2E%2E%2Fv2%2Fmaster.m3u8",
        "..%252fv2/master.m3u8",
        "video_360p//1.m4s",
        "./master.m3u8",
    ],
)
def test_traversal_out_of_the_prefix_is_403_without_touching_storage(
    world: World, storage_untouched: None, tail: str
) -> None:
    assert Client().get(_url(world, tail)).status_code == 403


def test_a_token_cannot_reach_source_uploads(world: World, storage_untouched: None) -> None:
    response = Client().get(f"/stream/{_token(world)}/sources/{world.asset.public_id}/upload")
    assert response.status_code == 403


def test_a_valid_token_still_reaches_storage(world: World, storage_untouched: None) -> None:
    # The guard above is real: an accepted request does hit storage.
    with pytest.raises(AssertionError, match="reached storage"):
        Client().get(_url(world, SEGMENT_NAME))


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "options"])
def test_write_methods_are_not_allowed(world: World, storage_untouched: None, method: str) -> None:
    assert getattr(Client(), method)(_url(world, "master.m3u8")).status_code == 405


def test_parse_range_unit_cases() -> None:
    assert parse_range(None, 100) is None
    assert parse_range("", 100) is None
    assert parse_range("bytes=0-0", 100) == (0, 0)
    assert parse_range("bytes=99-", 100) == (99, 99)
    assert parse_range("bytes=-1", 100) == (99, 99)
    assert parse_range("bytes=-100", 100) == (0, 99)
    assert parse_range(" bytes=1-2 ", 100) == (1, 2)
    assert parse_range("bytes=0-1,5-6", 100) is None
    assert parse_range("bytes=5-1", 100) is None
    assert parse_range("items=0-1", 100) is None
    assert parse_range("bytes=-", 100) is None
    for unsatisfiable in ("bytes=100-", "bytes=100-200", "bytes=-0"):
        with pytest.raises(RangeNotSatisfiable):
            parse_range(unsatisfiable, 100)
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=-5", 0)
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=0-", 0)
