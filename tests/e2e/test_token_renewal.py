"""A lecture longer than its playback token keeps playing: the player renews its session before
the token expires and later segment requests carry the new token (hls.js and Shaka Player).

What the test waits for is the token's lifetime, so the test sets that lifetime (TTL) short rather
than shortening any wait: the player renews at two thirds of what is left (static/js/player.js),
so a 4 s token leaves it at least a second of margin even when the token's whole-second expiry was
rounded down. Each request is judged by when the browser started it against the first token's own
expiry (the token carries it), so "after expiry" means exactly that, whatever the machine's speed.
The two engines play at once, each in its own browser context, so the lifetimes elapse once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page
from playwright.sync_api import Response as PlaywrightResponse
from pytest_django import Settings
from pytest_django.live_server_helper import LiveServer

from courses.models import Course, Enrollment, Lesson
from media_pipeline import services
from tests.conftest import make_clip
from tests.e2e.conftest import log_in
from tests.pipeline_steps import record_sends

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
TTL = 4
# Longer than the playing the test waits for (2 * TTL + 2 s) plus Shaka's 10 s buffering goal, so
# segments are still being fetched well after the first token expired.
CLIP_SECONDS = 30


def test_playback_outlives_its_token(
    live_server: LiveServer,
    new_page: Callable[[], Page],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.PLAYBACK_TOKEN_TTL_SECONDS = TTL
    record_sends(monkeypatch)  # the steps run right here
    course = Course.objects.create(slug="long", title="Long lectures", published=True)
    learner = User.objects.create_user("ada", password="pw-ada-123456")
    Enrollment.objects.create(user=learner, course=course)
    lesson = Lesson.objects.create(course=course, title="Thirty seconds", position=0)
    lesson.asset = services.asset_create(key_prefix=f"lessons/{lesson.public_id}")
    lesson.save()
    clip = make_clip(tmp_path / "long.mp4", seconds=CLIP_SECONDS, size="426x240")
    with clip.open("rb") as stream:
        services.asset_upload_source(asset=lesson.asset, stream=stream, source_name="long.mp4")
    for step in (services.asset_probe, services.asset_transcode, services.asset_publish):
        step(asset_id=lesson.asset_id)

    pages: dict[str, Page] = {}
    requests: dict[str, list[tuple[float, str, int]]] = {}
    for engine in ("hls", "shaka"):
        page = pages[engine] = new_page()
        log_in(page, live_server.url, "ada", "pw-ada-123456")
        seen = requests[engine] = []

        def record(response: PlaywrightResponse, seen: list[tuple[float, str, int]] = seen) -> None:
            if ".m4s" in response.url:
                # When the browser sent it (Unix ms), not when the test got to hear of it.
                seen.append((response.request.timing["startTime"] / 1000, response.url, response.status))

        page.on("response", record)
    for engine, page in pages.items():
        page.goto(f"{live_server.url}/lessons/{lesson.public_id}/?engine={engine}")

    # hls.js buffers this small clip whole at once; a rendition switch after the first token expired
    # makes it fetch again with whatever token it now holds, as it would anywhere in a long lecture.
    hls = pages["hls"]
    hls.wait_for_function("window.lessonPlayer.renewals >= 1", timeout=30_000)
    hls.wait_for_function(f"Date.now() / 1000 >= {_expiry(requests['hls'])}", timeout=30_000)
    hls.evaluate(
        "(() => { const h = window.lessonPlayer.instance;"
        " h.currentLevel = h.currentLevel === 0 ? h.levels.length - 1 : 0; })()"
    )
    for page in pages.values():
        page.wait_for_function(f"document.getElementById('lesson-video').currentTime > {2 * TTL + 2}", timeout=60_000)
    for engine, page in pages.items():
        state = page.evaluate("({fatal: window.lessonPlayer.fatalErrors, renewals: window.lessonPlayer.renewals})")
        assert state["fatal"] == [], engine
        assert state["renewals"] >= 2, engine
        seen = requests[engine]
        expired_at = _expiry(seen)
        late = [(url, status) for at, url, status in seen if at >= expired_at]
        assert late, f"{engine}: no segment was fetched after the first token expired"
        assert all(status in (200, 206) for _, status in late), engine
        first_token = _token(seen[0][1])
        assert all(first_token not in url for url, _ in late), engine  # fetched with a renewed token


def _token(url: str) -> str:
    return url.split("/stream/")[1].split("/")[0]


def _expiry(seen: list[tuple[float, str, int]]) -> int:
    """The first token's expiry, Unix seconds: the token begins with it (playback/tokens.py)."""
    assert seen, "no segment was fetched"
    return int(_token(seen[0][1]).split(".")[0])
