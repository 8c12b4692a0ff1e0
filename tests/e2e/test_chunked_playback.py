"""A lesson encoded in chunks plays across every chunk boundary in hls.js and Shaka Player (Chromium)
without stalling: the joined stream has no gap a player would wait on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page
from pytest_django import Settings
from pytest_django.live_server_helper import LiveServer

from courses.models import Course, Enrollment, Lesson
from media_pipeline import services
from media_pipeline.models import AssetStatus, ChunkedBuild, MediaAsset
from media_pipeline.steps import chunked
from tests.conftest import make_clip
from tests.e2e.conftest import log_in
from tests.pipeline_steps import record_sends

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PASSWORD = "pw-learner-123456"
BOUNDARIES = [4.0, 8.0]  # a 12-second clip in 4-second chunks

# Every `waiting` the video element fires, with how long it lasted, and every currentTime it reported.
RECORD_STALLS = """
window.__stalls = []; window.__times = []; window.__waiting = null;
document.addEventListener('waiting', (e) => {
  window.__waiting = {at: e.target.currentTime, since: performance.now()};
}, true);
document.addEventListener('playing', () => {
  if (window.__waiting) {
    window.__stalls.push({at: window.__waiting.at, ms: performance.now() - window.__waiting.since});
    window.__waiting = null;
  }
}, true);
document.addEventListener('timeupdate', (e) => {
  window.__times.push(e.target.currentTime);
  // What the test judges, taken once the last boundary is well behind (past 9 s): the two players run
  // at once and the test reads one after the other, so the second must not be read near its end.
  if (e.target.currentTime > 9 && !window.__past9) {
    window.__past9 = {stalls: window.__stalls.slice(), times: window.__times.slice(), waiting: window.__waiting};
  }
}, true);
"""


def _chunked_asset(key_prefix: str, clip: Path, monkeypatch: pytest.MonkeyPatch) -> MediaAsset:
    """The real pipeline, chunked, run in this process; messages are delivered by hand, in order."""
    sent = record_sends(monkeypatch)
    asset = services.asset_create(key_prefix=key_prefix)
    with clip.open("rb") as stream:
        services.asset_upload_source(asset=asset, stream=stream, source_name=clip.name)
    services.asset_probe(asset_id=asset.pk)
    services.asset_transcode(asset_id=asset.pk)
    while sent:
        name, object_id = sent.pop(0)
        if name == "encode_chunk":
            chunked.chunk_encode(chunk_id=object_id)
        elif name == "join_chunks":
            chunked.chunked_build_join(build_id=object_id)
        elif name == "publish_asset":
            services.asset_publish(asset_id=object_id)
    asset.refresh_from_db()
    assert (asset.status, asset.failure_reason) == (AssetStatus.READY, "")
    assert ChunkedBuild.objects.get(asset=asset).chunks.filter(kind="video").count() == 3
    return asset


def test_players_cross_chunk_boundaries_without_stalling(
    live_server: LiveServer,
    new_page: Callable[[], Page],
    key_prefix: str,
    tmp_path: Path,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.MEDIA_CHUNK_MIN_SECONDS = 8
    settings.MEDIA_CHUNK_SECONDS = 4
    clip = make_clip(tmp_path / "lecture.mp4", seconds=12, size="426x240")
    asset = _chunked_asset(key_prefix, clip, monkeypatch)
    course = Course.objects.create(slug="waves", title="Waves", published=True)
    learner = User.objects.create_user("ada", password=PASSWORD)
    Enrollment.objects.create(user=learner, course=course)
    lesson = Lesson.objects.create(course=course, title="Interference", asset=asset)

    # The two engines play at once, each in a browser context of its own: the playing is real time.
    pages = {engine: new_page() for engine in ("hls", "shaka")}
    for page in pages.values():
        page.add_init_script(RECORD_STALLS)
        log_in(page, live_server.url, "ada", PASSWORD)
    for engine, page in pages.items():
        page.goto(f"{live_server.url}/lessons/{lesson.public_id}/?engine={engine}")
    for engine, page in pages.items():
        page.wait_for_function("window.__past9 !== undefined", timeout=60_000)
        result = page.evaluate(
            "({fatal: window.lessonPlayer.fatalErrors, stalls: window.__past9.stalls, times: window.__past9.times,"
            " waiting: window.__past9.waiting, engine: window.lessonPlayer.engine})"
        )
        assert (result["engine"], result["fatal"], result["waiting"]) == (engine, [], None), result
        times = result["times"]
        assert all(b >= a for a, b in zip(times, times[1:], strict=False)), engine  # never jumped back
        for boundary in BOUNDARIES:  # played through each boundary, not seeked over it
            assert any(boundary - 0.6 < t < boundary for t in times), (engine, boundary)
            assert any(boundary < t < boundary + 0.6 for t in times), (engine, boundary)
        # After the start, no wait longer than a quarter of a second.
        stalls = [s for s in result["stalls"] if s["at"] > 0.5]
        assert [s for s in stalls if s["ms"] > 250] == [], (engine, stalls)
