"""Playback and storage regions: viewers are sent only to regions holding the whole version, the
nearest first, and the origin serves each region's own copy."""

from __future__ import annotations

from typing import Any

import m3u8
from django.test import Client
from pytest_django import Settings
from rest_framework.test import APIClient

from media_pipeline.models import ReplicaState, VersionReplica
from media_pipeline.regions import region_get, store_for
from playback import health
from playback.tokens import token_issue
from tests.playback.conftest import SEGMENT, World


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
    assert body["regions"][0]["hls"].startswith("/stream/")
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


def test_the_viewers_nearest_complete_region_comes_first(regional_world: World, settings: Settings) -> None:
    settings.PLAYBACK_COUNTRY_HEADER = "CloudFront-Viewer-Country"
    body = _session(regional_world, HTTP_CLOUDFRONT_VIEWER_COUNTRY="JP")
    assert body["region"] == "ap"
    assert [region["name"] for region in body["regions"]] == ["ap", "eu"]
    # The nearest region (us for a US viewer) is skipped while its copy is incomplete.
    assert _session(regional_world, HTTP_CLOUDFRONT_VIEWER_COUNTRY="US")["region"] == "eu"


def test_the_origin_serves_a_regions_own_copy_behind_the_same_token_check(
    regional_world: World, client: Client
) -> None:
    ap_base = _session(regional_world)["regions"][1]["hls"].removesuffix("master.m3u8")
    response = client.get(ap_base + "video_360p/1.m4s", HTTP_RANGE="bytes=0-99")
    assert response.status_code == 206
    assert b"".join(response.streaming_content) == SEGMENT[:100]
    assert response["Content-Range"] == f"bytes 0-99/{len(SEGMENT)}"
    # The object really comes from ap: remove it there and the primary's copy is not used instead.
    ap = region_get("ap")
    assert ap is not None
    store_for(ap).delete(regional_world.prefix + "video_360p/1.m4s")
    assert client.get(ap_base + "video_360p/1.m4s").status_code == 404

    token = ap_base.split("/")[3]
    forged = ap_base.replace(token, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    assert client.get(forged + "master.m3u8").status_code == 403
    other_prefix = ap_base.replace(str(regional_world.lesson.public_id), "00000000-0000-0000-0000-000000000000")
    assert client.get(other_prefix + "master.m3u8").status_code == 403
    unknown_region = ap_base.replace("/region-stream/ap/", "/region-stream/mars/")
    assert client.get(unknown_region + "master.m3u8").status_code == 404


def test_with_several_complete_regions_the_manifests_are_steered(regional_world: World, client: Client) -> None:
    body = _session(regional_world)
    token = body["hls"].split("/")[2]
    assert body["hls"] == f"/steer/{token}/{regional_world.prefix}master.m3u8"
    assert body["dash"] == f"/steer/{token}/{regional_world.prefix}manifest.mpd"
    assert body["steering"] == f"/steer/{token}/{regional_world.prefix}steering.json"

    response = client.get(body["hls"])
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.apple.mpegurl"
    assert response["Cache-Control"] == "private, max-age=60"
    playlist = m3u8.loads(response.content.decode())
    assert playlist.content_steering.uri == "http://testserver" + body["steering"]
    assert sorted({p.stream_info.pathway_id for p in playlist.playlists}) == ["ap", "eu"]  # never us (pending)
    ap_variant = next(p.uri for p in playlist.playlists if p.stream_info.pathway_id == "ap")
    assert ap_variant.startswith("http://testserver/region-stream/ap/")
    # The pathway bases are signed for this version and work.
    segment = ap_variant.rsplit("/", 1)[0] + "/video_360p/1.m4s"
    assert b"".join(client.get(segment.removeprefix("http://testserver")).streaming_content) == SEGMENT

    mpd = client.get(body["dash"]).content.decode()
    assert '<BaseURL serviceLocation="eu">http://testserver/stream/' in mpd
    assert '<BaseURL serviceLocation="ap">http://testserver/region-stream/ap/' in mpd
    assert (
        f'<ContentSteering defaultServiceLocation="eu" queryBeforeStart="false">http://testserver{body["steering"]}'
        in mpd
    )

    steering = client.get(body["steering"] + "?_HLS_pathway=eu&_HLS_throughput=5000000")
    assert steering["Cache-Control"] == "no-store"
    assert steering.json() == {
        "VERSION": 1, "TTL": 60, "RELOAD-URI": "http://testserver" + body["steering"], "PATHWAY-PRIORITY": ["eu", "ap"],
    }  # fmt: skip


def test_one_complete_region_means_no_steering(regional_world: World) -> None:
    VersionReplica.objects.filter(region="ap").update(state=ReplicaState.DEGRADED)
    body = _session(regional_world)
    assert body["hls"].startswith("/stream/") and body["steering"] == ""


def test_steering_puts_the_viewers_region_first_and_unhealthy_ones_last(
    regional_world: World, client: Client, settings: Settings
) -> None:
    settings.PLAYBACK_COUNTRY_HEADER = "CF-IPCountry"
    steering = _session(regional_world)["steering"]
    assert client.get(steering, HTTP_CF_IPCOUNTRY="JP").json()["PATHWAY-PRIORITY"] == ["ap", "eu"]
    assert client.get(steering, HTTP_CF_IPCOUNTRY="FR").json()["PATHWAY-PRIORITY"] == ["eu", "ap"]

    # ap's storage stops answering: its health check fails and it goes last, even for Japan.
    settings.STORAGE_REGIONS = [
        {**region, "endpoint_url": "http://127.0.0.1:9"} if region["name"] == "ap" else region
        for region in settings.STORAGE_REGIONS
    ]
    health.health_forget()
    assert client.get(steering, HTTP_CF_IPCOUNTRY="JP").json()["PATHWAY-PRIORITY"] == ["eu", "ap"]


def test_steering_urls_carry_the_same_token_checks(regional_world: World, client: Client, settings: Settings) -> None:
    steering = _session(regional_world)["steering"]
    token = steering.split("/")[2]
    forged = steering.replace(token, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    assert client.get(forged).status_code == 403
    other = steering.replace(str(regional_world.lesson.public_id), "00000000-0000-0000-0000-000000000000")
    assert client.get(other).status_code == 403
    assert client.get(steering.replace("steering.json", "video_360p/1.m4s")).status_code == 404
    expired = token_issue(secret=settings.PLAYBACK_TOKEN_SECRET.encode(), prefix=regional_world.prefix, expires_at=1)
    assert client.get(steering.replace(token, expired)).status_code == 410
