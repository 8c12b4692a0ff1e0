"""A real nginx edge (deploy/nginx) in front of the running app: tokens checked at the edge,
one cached copy per object for every viewer, byte ranges, and refusals that never reach the origin."""

from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_django import Settings
from pytest_django.live_server_helper import LiveServer

from media_pipeline import storage
from playback.signers.nginx import NginxSecureLinkSigner
from tests.nginx_edge import run_edge

pytestmark = pytest.mark.django_db(transaction=True)
EDGE_SECRET, ORIGIN_SECRET = "edge-secret-123", "origin-secret-456"
SEGMENT = bytes(range(256)) * 12_000  # 3 MB: three 1 MB slices


def _get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.fixture
def edge(live_server: LiveServer, settings: Settings, tmp_path: Path, key_prefix: str) -> Iterator[dict]:
    settings.EDGE_ORIGIN_SECRET = ORIGIN_SECRET
    prefix = f"{key_prefix}/v1/"
    storage.save_stream(key=prefix + "master.m3u8", stream=io.BytesIO(b"#EXTM3U\n"))
    storage.save_stream(key=prefix + "video_360p/1.m4s", stream=io.BytesIO(SEGMENT))
    with run_edge(
        workdir=tmp_path, origin=live_server.url.removeprefix("http://"), edge_secret=EDGE_SECRET,
        origin_secret=ORIGIN_SECRET,
    ) as url:  # fmt: skip
        yield {"url": url, "prefix": prefix, "log": tmp_path / "access.json.log", "origin": live_server.url}


def _log(edge: dict) -> list[dict]:
    time.sleep(0.1)  # nginx writes the line after the response
    return [json.loads(line) for line in edge["log"].read_text().splitlines()]


def test_second_request_is_a_cache_hit_for_any_viewer(edge: dict) -> None:
    signer = NginxSecureLinkSigner(secret=EDGE_SECRET, base_url=edge["url"])
    now = int(time.time())
    first = signer.sign_prefix(prefix=edge["prefix"], expires_at=now + 600)
    second_viewer = signer.sign_prefix(prefix=edge["prefix"], expires_at=now + 900)  # another token
    status, headers, body = _get(first + "video_360p/1.m4s")
    assert (status, headers["X-Cache-Status"], body == SEGMENT) == (200, "MISS", True)
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
    status, headers, body = _get(second_viewer + "video_360p/1.m4s")
    assert (status, headers["X-Cache-Status"], body == SEGMENT) == (200, "HIT", True)
    status, headers, body = _get(second_viewer + "video_360p/1.m4s", Range="bytes=1048570-1048585")
    assert (status, headers["X-Cache-Status"]) == (206, "HIT")
    assert body == SEGMENT[1048570:1048586]  # across two slices, both from the cache
    assert headers["Content-Range"] == f"bytes 1048570-1048585/{len(SEGMENT)}"


def test_a_growing_playlist_is_cached_whole_for_a_second_then_fetched_again(edge: dict) -> None:
    """A provisional stream's playlists are rewritten while players read them (docs/adr/0031)."""
    url = NginxSecureLinkSigner(secret=EDGE_SECRET, base_url=edge["url"]).sign_prefix(
        prefix=edge["prefix"], expires_at=int(time.time()) + 600
    )
    # Bigger than a 1 MB slice: a manifest is read whole, never stitched from slices of two moments.
    growing = b"#EXTM3U\n" + b"#EXTINF:2.000000,\nvideo/0.m4s\n" * 40_000
    storage.save_stream(key=edge["prefix"] + "video.m3u8", stream=io.BytesIO(growing))
    status, headers, body = _get(url + "video.m3u8")
    assert (status, headers["X-Cache-Status"], body == growing) == (200, "MISS", True)
    assert headers["Cache-Control"] == "public, max-age=1"
    grown = growing + b"#EXTINF:2.000000,\nvideo/1.m4s\n#EXT-X-ENDLIST\n"
    storage.save_stream(key=edge["prefix"] + "video.m3u8", stream=io.BytesIO(grown))
    # Within its second the cached copy is served; after it, the edge fetches the grown one.
    deadline = time.monotonic() + 10
    while body != grown and time.monotonic() < deadline:
        time.sleep(0.2)
        status, headers, body = _get(url + "video.m3u8")
    assert (status, body == grown) == (200, True)


def test_bad_tokens_are_refused_at_the_edge_without_reaching_the_origin(edge: dict) -> None:
    now = int(time.time())
    good = NginxSecureLinkSigner(secret=EDGE_SECRET, base_url=edge["url"])
    forged = NginxSecureLinkSigner(secret="guessed", base_url=edge["url"]).sign_prefix(
        prefix=edge["prefix"], expires_at=now + 600
    )
    expired = good.sign_prefix(prefix=edge["prefix"], expires_at=now - 1)
    other_prefix = good.sign_prefix(prefix=edge["prefix"], expires_at=now + 600).replace("/v1/", "/v2/")
    stretched = good.sign_prefix(prefix=edge["prefix"], expires_at=now + 600).replace(
        f"/{now + 600}/", f"/{now + 6000}/"
    )
    assert _get(forged + "master.m3u8")[0] == 403
    assert _get(expired + "master.m3u8")[0] == 410
    assert _get(other_prefix + "master.m3u8")[0] == 403
    assert _get(stretched + "master.m3u8")[0] == 403
    assert _get(good.sign_prefix(prefix=edge["prefix"], expires_at=now + 600) + "../v2/master.m3u8")[0] in (403, 404)
    entries = _log(edge)
    assert len(entries) == 5
    assert all(entry["upstream"] == "" for entry in entries)  # nothing was proxied to the origin


def test_the_origin_serves_the_edge_only(edge: dict) -> None:
    key = edge["prefix"] + "master.m3u8"
    assert _get(f"{edge['origin']}/edge-origin/{key}")[0] == 403
    assert _get(f"{edge['origin']}/edge-origin/{key}", **{"X-Lessons-Edge-Secret": "wrong"})[0] == 403
    assert _get(f"{edge['origin']}/edge-origin/{key}", **{"X-Lessons-Edge-Secret": ORIGIN_SECRET})[0] == 200
    assert _get(f"{edge['origin']}/edge-origin/sources/x/y", **{"X-Lessons-Edge-Secret": ORIGIN_SECRET})[0] == 403


def test_tokens_bound_to_the_viewer_address_are_checked_at_the_edge(
    live_server: LiveServer, settings: Settings, tmp_path: Path, key_prefix: str
) -> None:
    from playback.binding import Binding

    settings.EDGE_ORIGIN_SECRET = ORIGIN_SECRET
    prefix = f"{key_prefix}/v1/"
    storage.save_stream(key=prefix + "master.m3u8", stream=io.BytesIO(b"#EXTM3U\n"))
    with run_edge(
        workdir=tmp_path, origin=live_server.url.removeprefix("http://"), edge_secret=EDGE_SECRET,
        origin_secret=ORIGIN_SECRET, binding="$remote_addr",
    ) as url:  # fmt: skip
        signer = NginxSecureLinkSigner(secret=EDGE_SECRET, base_url=url)
        expires = int(time.time()) + 600
        mine = signer.sign_prefix(prefix=prefix, expires_at=expires, binding=Binding(ip="127.0.0.1"))
        elsewhere = signer.sign_prefix(prefix=prefix, expires_at=expires, binding=Binding(ip="198.51.100.23"))
        unbound = signer.sign_prefix(prefix=prefix, expires_at=expires)
        assert _get(mine + "master.m3u8")[0] == 200
        assert _get(elsewhere + "master.m3u8")[0] == 403
        assert _get(unbound + "master.m3u8")[0] == 403
        with pytest.raises(ValueError, match="session"):
            signer.sign_prefix(prefix=prefix, expires_at=expires, binding=Binding(session="abc"))
