"""Playback and storage regions: viewers are sent only to regions holding the whole version, the
nearest first, and the origin serves each region's own copy."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from media_pipeline.models import ReplicaState, VersionReplica
from media_pipeline.regions import region_get, store_for
from tests.playback.conftest import FILES, SEGMENT, World


@pytest.fixture
def regional_world(world: World, three_regions: list[dict[str, Any]]) -> World:
    """The world's v1 is complete in eu and ap (whose bucket really holds it) and pending in us."""
    for region, state in (("eu", ReplicaState.COMPLETE), ("us", ReplicaState.PENDING), ("ap", ReplicaState.COMPLETE)):
        VersionReplica.objects.create(
            asset=world.asset, prefix=world.prefix, region=region, state=state, available_at=timezone.now()
        )
    ap = store_for(region_get("ap"))  # type: ignore[arg-type]
    for name, data in FILES.items():
        ap.put(world.prefix + name, io.BytesIO(data), sha256="", content_type="application/octet-stream")
    yield world  # type: ignore[misc]
    ap.delete_prefix(f"{world.asset.key_prefix}/")


def _session(world: World, **headers: str) -> dict[str, Any]:
    client = APIClient()
    client.force_authenticate(world.learner)
    response = client.post(f"/api/v1/lessons/{world.lesson.public_id}/playback/", **headers)
    assert response.status_code == 200, response.content
    return response.json()


def test_playback_never_returns_a_region_whose_copy_is_incomplete(regional_world: World) -> None:
    body = _session(regional_world)
    assert body["region"] == "eu"
    assert [region["name"] for region in body["regions"]] == ["eu", "ap"]
    assert body["hls"].startswith("/stream/")
    assert body["regions"][1]["hls"].startswith("/region-stream/ap/")

    VersionReplica.objects.filter(region="us").update(state=ReplicaState.COPYING)
    assert [region["name"] for region in _session(regional_world)["regions"]] == ["eu", "ap"]
    VersionReplica.objects.filter(region="us").update(state=ReplicaState.DEGRADED)
    assert [region["name"] for region in _session(regional_world)["regions"]] == ["eu", "ap"]
    VersionReplica.objects.filter(region="us").update(state=ReplicaState.COMPLETE)
    assert [region["name"] for region in _session(regional_world)["regions"]] == ["eu", "us", "ap"]
    # A primary found damaged by `replicas verify` is left out too.
    VersionReplica.objects.filter(region="eu").update(state=ReplicaState.DEGRADED)
    assert [region["name"] for region in _session(regional_world)["regions"]] == ["us", "ap"]


def test_the_viewers_nearest_complete_region_comes_first(regional_world: World, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PLAYBACK_COUNTRY_HEADER = "CloudFront-Viewer-Country"
    body = _session(regional_world, HTTP_CLOUDFRONT_VIEWER_COUNTRY="JP")
    assert body["region"] == "ap"
    assert [region["name"] for region in body["regions"]] == ["ap", "eu"]
    assert body["hls"] == body["regions"][0]["hls"]
    # The nearest region (us for a US viewer) is skipped while its copy is incomplete.
    assert _session(regional_world, HTTP_CLOUDFRONT_VIEWER_COUNTRY="US")["region"] == "eu"


def test_the_origin_serves_a_regions_own_copy_behind_the_same_token_check(regional_world: World, client) -> None:  # type: ignore[no-untyped-def]
    ap_base = _session(regional_world)["regions"][1]["hls"].removesuffix("master.m3u8")
    response = client.get(ap_base + "video_360p/1.m4s", HTTP_RANGE="bytes=0-99")
    assert response.status_code == 206
    assert b"".join(response.streaming_content) == SEGMENT[:100]
    assert response["Content-Range"] == f"bytes 0-99/{len(SEGMENT)}"
    # The object really comes from ap: remove it there and the primary's copy is not used instead.
    store_for(region_get("ap")).delete(regional_world.prefix + "video_360p/1.m4s")  # type: ignore[arg-type]
    assert client.get(ap_base + "video_360p/1.m4s").status_code == 404

    token = ap_base.split("/")[3]
    forged = ap_base.replace(token, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    assert client.get(forged + "master.m3u8").status_code == 403
    other_prefix = ap_base.replace(str(regional_world.lesson.public_id), "00000000-0000-0000-0000-000000000000")
    assert client.get(other_prefix + "master.m3u8").status_code == 403
    unknown_region = ap_base.replace("/region-stream/ap/", "/region-stream/mars/")
    assert client.get(unknown_region + "master.m3u8").status_code == 404
