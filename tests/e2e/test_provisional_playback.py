"""The provisional stream in Chromium: an H.264/AAC upload, copied as it is (CMAF segments at the
source's keyframes), plays in hls.js and Shaka Player before the full ladder exists; after the
full ladder replaces it, the URLs a player already holds keep working."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page
from pytest_django import Settings
from pytest_django.live_server_helper import LiveServer

from courses.models import Course, Enrollment, Lesson
from media_pipeline import services as media_services
from media_pipeline.models import AssetStatus
from media_pipeline.steps import provisional
from tests.conftest import make_clip
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PLAYED_PAST_3S = "document.getElementById('lesson-video').currentTime > 3"
PASSWORD = "pw-learner-123456"


def _state(page: Page) -> dict:
    return page.evaluate(
        "({engine: window.lessonPlayer.engine, state: window.lessonPlayer.state,"
        " fatal: window.lessonPlayer.fatalErrors, message: document.getElementById('player-message').textContent})"
    )


def test_the_provisional_stream_plays_in_hls_js_and_shaka_and_outlives_its_replacement(
    live_server: LiveServer, new_page: Callable[[], Page], key_prefix: str, tmp_path: Path, settings: Settings
) -> None:
    settings.MEDIA_PROVISIONAL = True
    settings.MEDIA_WORK_DIR = str(tmp_path)
    # 8 s with a keyframe every 2 s and AAC: what a phone or Zoom hands over.
    clip = make_clip(tmp_path / "camera.mp4", seconds=8, size="640x360", gop=50)
    course = Course.objects.create(slug="optics", title="Optics", published=True)
    User.objects.create_user("grace", password=PASSWORD)
    Enrollment.objects.create(user=User.objects.get(username="grace"), course=course)
    asset = media_services.asset_create(key_prefix=key_prefix)
    with clip.open("rb") as stream:
        media_services.asset_upload_source(asset=asset, stream=stream, source_name=clip.name)
    media_services.asset_probe(asset_id=asset.pk)
    provisional.asset_provisional(asset_id=asset.pk)
    asset.refresh_from_db()
    assert (asset.status, asset.published_version, asset.published_provisional) == (AssetStatus.PROBED, 1, True)
    lesson = Lesson.objects.create(course=course, title="Refraction", asset=asset)

    page: Page = new_page()
    sessions: list[dict] = []
    page.on("response", lambda r: sessions.append(r.json()) if r.url.endswith("/playback/") else None)
    log_in(page, live_server.url, "grace", PASSWORD)
    for engine in ("hls", "shaka"):
        page.goto(f"{live_server.url}/lessons/{lesson.public_id}/?engine={engine}")
        page.wait_for_function(PLAYED_PAST_3S, timeout=30_000)  # past the first 2-second segment
        assert _state(page) == {"engine": engine, "state": "playing", "fatal": [], "message": ""}
    assert [s["provisional"] for s in sessions] == [True, True]
    assert all(f"/{key_prefix}/v1/master.m3u8" in s["hls"] for s in sessions)

    # The full ladder replaces it; the URLs handed out before still serve every object they name.
    media_services.asset_transcode(asset_id=asset.pk)
    media_services.asset_publish(asset_id=asset.pk)
    asset.refresh_from_db()
    assert (asset.status, asset.published_version, asset.published_provisional) == (AssetStatus.READY, 2, False)
    old = sessions[0]
    for url in (old["hls"], old["hls"].replace("master.m3u8", "video/0.m4s"), old["dash"], old["poster"]):
        assert page.request.get(live_server.url + url).status == 200, url
    page.goto(f"{live_server.url}/lessons/{lesson.public_id}/?engine=hls")
    page.wait_for_function(PLAYED_PAST_3S, timeout=30_000)
    assert sessions[-1]["provisional"] is False and f"/{key_prefix}/v2/" in sessions[-1]["hls"]
