"""Captions, storyboard previews and chapters in Chromium, for a lesson built by the real pipeline: the caption
menu lists the manifests' tracks and a cue shows at its time in hls.js and Shaka Player; hovering the seek
bar previews the right storyboard tile; a chapter click seeks."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from pytest_django.live_server_helper import LiveServer

from courses.models import Course, Enrollment, Lesson
from media_pipeline.models import AssetStatus, MediaAsset
from media_pipeline.text_tracks import CAPTIONS, CHAPTERS, TextTrack
from tests.e2e.conftest import log_in
from tests.pipeline_steps import publish_in_process

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-learner-123456"
TRACKS = [
    TextTrack(kind=CAPTIONS, language="en", label="English", vtt="WEBVTT\n\n00:00:01.000 --> 00:00:04.000\nHello\n"),
    TextTrack(
        kind=CAPTIONS, language="fr", label="Fran\u00e7ais", vtt="WEBVTT\n\n00:00:01.000 --> 00:00:04.000\nBonjour\n"
    ),
    TextTrack(
        kind=CHAPTERS, language="en", label="Chapters",
        vtt="WEBVTT\n\n00:00:00.000 --> 00:00:03.000\nIntro\n\n00:00:03.000 --> 00:00:06.000\nMain part\n",
    ),
]  # fmt: skip
# Text of the cues showing on the video element, whichever engine put the track there.
SHOWING_CUES = """Array.from(document.getElementById('lesson-video').textTracks)
  .filter(t => t.mode === 'showing' && t.kind !== 'chapters')
  .flatMap(t => Array.from(t.activeCues || []).map(c => c.text))"""


TRACK_MODES = """Array.from(document.getElementById('lesson-video').textTracks)
  .map(t => [t.kind, t.label, t.mode, Array.from(t.activeCues || []).map(c => c.text)])"""


def _wait_for_cues(page: Page, expected: list[str], engine: str) -> None:
    """Until exactly these cue texts show; a timeout names the engine and every text track's state."""
    try:
        page.wait_for_function(f"JSON.stringify({SHOWING_CUES}) === {json.dumps(json.dumps(expected))}", timeout=15_000)
    except PlaywrightTimeout:
        pytest.fail(f"{engine}: cues {page.evaluate(SHOWING_CUES)} not {expected}; tracks {page.evaluate(TRACK_MODES)}")


def _encoded_asset(clip: Path, key_prefix: str) -> MediaAsset:
    asset = publish_in_process(clip, key_prefix=key_prefix, text_tracks=TRACKS)
    assert (asset.status, asset.failure_reason) == (AssetStatus.READY, "")
    return asset


def test_captions_storyboard_and_chapters_in_hls_js_and_shaka_player(
    live_server: LiveServer, new_page: Callable[[], Page], demo_clip: Path, key_prefix: str, tmp_path: Path
) -> None:
    course = Course.objects.create(slug="optics", title="Optics", published=True)
    learner = User.objects.create_user("grace", password=PASSWORD)
    Enrollment.objects.create(user=learner, course=course)
    lesson = Lesson.objects.create(course=course, title="Refraction", asset=_encoded_asset(demo_clip, key_prefix))

    page: Page = new_page()
    sprites: list[int] = []
    page.on("response", lambda r: sprites.append(r.status) if r.url.endswith("/storyboard.jpg") else None)
    log_in(page, live_server.url, "grace", PASSWORD)

    for engine in ("hls", "shaka"):
        page.goto(f"{live_server.url}/lessons/{lesson.public_id}/?engine={engine}")
        page.wait_for_function("window.lessonPlayer.state === 'playing'", timeout=30_000)
        # Both caption languages come from the manifest (HLS SUBTITLES group, DASH text adaptation sets).
        page.wait_for_function("document.querySelectorAll('#player-captions option').length === 3", timeout=10_000)
        options = page.eval_on_selector_all("#player-captions option", "els => els.map(e => [e.textContent, e.lang])")
        assert options == [["Off", ""], ["English", "en"], ["Fran\u00e7ais", "fr"]], engine
        assert page.is_visible("#player-captions")
        assert page.input_value("#player-captions") == "", engine  # captions start off in both engines

        page.select_option("#player-captions", label="Fran\u00e7ais")
        page.evaluate("v => { const el = document.getElementById('lesson-video'); el.pause(); el.currentTime = v; }", 2)
        _wait_for_cues(page, ["Bonjour"], engine)
        # Before the cue starts nothing shows; switching captions off hides them.
        page.evaluate("document.getElementById('lesson-video').currentTime = 0.3")
        _wait_for_cues(page, [], engine)
        page.evaluate("document.getElementById('lesson-video').currentTime = 2")
        _wait_for_cues(page, ["Bonjour"], engine)
        page.select_option("#player-captions", label="Off")
        _wait_for_cues(page, [], engine)
        assert page.input_value("#player-captions") == "", engine
        assert page.evaluate("window.lessonPlayer.fatalErrors") == [], engine

        # Storyboard: hovering the seek bar at 3.2 s of 6 s shows the second tile (2-4 s) of the sprite.
        page.wait_for_function("window.lessonPlayer.extras && window.lessonPlayer.extras.storyboard === 3")
        assert page.is_hidden("#storyboard-preview")
        bar = page.locator(".timeline-bar")
        box = bar.bounding_box()
        assert box is not None and box["width"] > 200
        bar.hover(position={"x": box["width"] * 3.2 / 6, "y": box["height"] / 2})
        page.wait_for_selector("#storyboard-preview", state="visible")
        preview = page.eval_on_selector(
            "#storyboard-preview",
            "el => ({tile: el.dataset.tile, time: el.querySelector('.storyboard-time').textContent,"
            " image: getComputedStyle(el.querySelector('.storyboard-image')).backgroundImage,"
            " position: el.querySelector('.storyboard-image').style.backgroundPosition,"
            " width: el.querySelector('.storyboard-image').getBoundingClientRect().width})",
        )
        assert (preview["tile"], preview["time"], preview["position"], preview["width"]) == (
            "160,0", "0:03", "-160px 0px", 160
        ), engine  # fmt: skip
        assert "/storyboard.jpg" in preview["image"]
        # The sprite really loads (an <img> decodes it: a broken or refused sprite would fail here).
        assert page.evaluate(
            "src => new Promise(ok => { const i = new Image(); i.onload = () => ok([i.naturalWidth, i.naturalHeight]);"
            " i.onerror = () => ok(null); i.src = src; })",
            preview["image"][5:-2],
        ) == [480, 90]
        bar.hover(position={"x": 2, "y": box["height"] / 2})
        assert page.eval_on_selector("#storyboard-preview", "el => el.dataset.tile") == "0,0"
        page.mouse.move(0, 0)
        page.wait_for_selector("#storyboard-preview", state="hidden")

        # Chapters: listed in order; a click seeks to the chapter and marks it current.
        chapters = page.locator("#player-chapters button")
        assert chapters.all_text_contents() == ["0:00 Intro", "0:03 Main part"], engine
        assert page.evaluate("document.querySelector('#lesson-video track[kind=chapters]').srclang") == "en"
        chapters.nth(1).click()
        page.wait_for_function(
            "document.getElementById('lesson-video').currentTime >= 3"
            " && document.querySelector('#player-chapters button[aria-current=true]')?.dataset.start === '3'",
            timeout=10_000,
        )
        chapters.nth(0).click()
        page.wait_for_function("document.getElementById('lesson-video').currentTime < 3", timeout=10_000)
        page.screenshot(path=str(tmp_path / f"extras-{engine}.png"), full_page=True)
    assert sprites and set(sprites) <= {200, 304}
