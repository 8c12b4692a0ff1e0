"""Every valid source of the generated corpus (tests/media_corpus.py), published by the real pipeline, plays
in Chromium with hls.js and with Shaka Player: time advances, no fatal error, and the picture has the
orientation and aspect the source is displayed with (a phone video stays portrait). Sound-only lessons
play with no video track and show their poster."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from pytest_django.live_server_helper import LiveServer

from courses.models import Course, Enrollment, Lesson
from media_pipeline.models import AssetStatus, MediaAsset
from tests.e2e.conftest import log_in
from tests.media_corpus import VALID, Item, build_valid
from tests.pipeline_steps import publish_in_process

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-learner-123456"
STATE = """(() => {
  const video = document.getElementById('lesson-video');
  const player = window.lessonPlayer;
  let videoTracks = null;
  if (player.instance && player.engine === 'hls' && player.instance.levels) {
    videoTracks = player.instance.levels.filter(l => l.videoCodec || l.width).length;
  } else if (player.instance && player.engine === 'shaka') {
    videoTracks = player.instance.getVariantTracks().filter(t => t.videoCodec).length;
  }
  return {state: player.state, fatal: player.fatalErrors, time: video.currentTime, width: video.videoWidth,
          height: video.videoHeight, src: video.currentSrc, poster: video.poster, videoTracks: videoTracks,
          message: document.getElementById('player-message').textContent};
})()"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_valid(tmp_path_factory.mktemp("corpus-e2e"))


def _published(path: Path, key_prefix: str) -> MediaAsset:
    asset = publish_in_process(path, key_prefix=key_prefix)
    assert (asset.status, asset.failure_reason) == (AssetStatus.READY, "")
    return asset


@pytest.mark.parametrize("item", VALID, ids=[item.name for item in VALID])
def test_corpus_lesson_plays_upright_in_hls_js_and_shaka_player(
    item: Item,
    corpus: dict[str, Path],
    live_server: LiveServer,
    new_page: Callable[[], Page],
    key_prefix: str,
    tmp_path: Path,
) -> None:
    course = Course.objects.create(slug="corpus", title="Corpus", published=True)
    learner = User.objects.create_user("grace", password=PASSWORD)
    Enrollment.objects.create(user=learner, course=course)
    # One published asset, shared by both players.
    asset = _published(corpus[item.name], key_prefix)
    lesson = Lesson.objects.create(course=course, title=item.name, asset=asset)
    rung_sizes = {(rung["width"], rung["height"]) for rung in asset.ladder}

    page: Page = new_page()
    poster_responses: list[tuple[int, str]] = []
    page.on(
        "response",
        lambda r: poster_responses.append((r.status, r.headers.get("content-type", "")))
        if r.url.endswith("/poster.jpg")
        else None,
    )
    log_in(page, live_server.url, "grace", PASSWORD)
    for engine in ("hls", "shaka"):
        page.goto(f"{live_server.url}/lessons/{lesson.public_id}/?engine={engine}")
        try:
            # Time advances: a third of the shortest clip is well past the start.
            page.wait_for_function(
                "document.getElementById('lesson-video').currentTime > 0.4 || window.lessonPlayer.fatalErrors.length",
                timeout=30_000,
            )
        except PlaywrightTimeout:
            pytest.fail(f"{item.name} in {engine} did not play: {page.evaluate(STATE)}")
        state = page.evaluate(STATE)
        assert (state["fatal"], state["message"]) == ([], ""), (engine, state)
        assert state["state"] == "playing", (engine, state)
        assert state["src"].startswith("blob:"), engine  # through MSE
        assert state["poster"].endswith("/poster.jpg"), engine
        if item.display is None:
            # Sound only: no video track in either manifest; the element shows the poster.
            assert (state["videoTracks"], state["width"], state["height"]) == (0, 0, 0), (engine, state)
        else:
            assert state["videoTracks"] >= 1, (engine, state)
            width, height = state["width"], state["height"]
            expected_w, expected_h = item.display
            # Whichever rung the player chose, the picture has the displayed orientation and aspect.
            assert (height > width) == (expected_h > expected_w), (engine, state)
            assert width / height == pytest.approx(expected_w / expected_h, rel=0.03), (engine, state)
            assert (width, height) in rung_sizes, (engine, state, rung_sizes)  # the picture of a planned rung
        page.screenshot(path=str(tmp_path / f"{item.name}-{engine}.png"))
    assert poster_responses and all(status == 200 for status, _ in poster_responses)
    assert poster_responses[0][1].startswith("image/jpeg")
