"""Fast start on slow networks: on a connection throttled to 1.2 Mbit/s (DevTools network emulation),
hls.js and Shaka Player fetch their first media segment from a rung that bandwidth carries (never the
top of the ladder) and play without a stall; a learner whose recent sessions measured a slower
network starts on the rung those measurements allow (the playback session's start_estimate)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page
from pytest_django.live_server_helper import LiveServer

from analytics import ingest
from courses.models import Course, Enrollment, Lesson
from media_pipeline.models import AssetStatus
from tests.conftest import make_clip
from tests.e2e.conftest import log_in
from tests.pipeline_steps import publish_in_process

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-learner-123456"
MEDIA_SEGMENT = re.compile(r"/video_(\d+p)/\d+\.m4s")
ENGINES = ["hls", "shaka"]
# Counted from the first frame on: a "waiting" event then is a stall. Media events do not bubble, but
# a capturing listener on the document sees them.
STALL_COUNTER = """
window.__stalls = 0; window.__started = false;
document.addEventListener("playing", () => { window.__started = true; }, true);
document.addEventListener("waiting", () => { if (window.__started) window.__stalls += 1; }, true);
"""


@pytest.fixture
def ladder_lesson(tmp_path: Path, key_prefix: str) -> Lesson:
    """A 4 s 720p lesson through the real pipeline: rungs 720p, 480p, 360p and 240p, at about 2.3, 0.75,
    0.44 and 0.28 Mbit/s with audio (the manifests' average bandwidths)."""
    asset = publish_in_process(make_clip(tmp_path / "lecture.mp4", seconds=4, size="1280x720"), key_prefix=key_prefix)
    assert (asset.status, asset.failure_reason) == (AssetStatus.READY, "")
    course = Course.objects.create(slug="optics", title="Optics", published=True)
    learner = User.objects.create_user("grace", password=PASSWORD)
    Enrollment.objects.create(user=learner, course=course)
    ingest.client().delete(ingest.throughput_key(learner.pk))
    return Lesson.objects.create(course=course, title="Refraction", asset=asset)


def _throttle(page: Page, kbps: int) -> None:
    """DevTools network emulation for this page: ``kbps`` down, 40 ms latency (as Chrome's presets add)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 40, "downloadThroughput": kbps * 1000 / 8, "uploadThroughput": kbps * 1000 / 8},
    )


def _first_rung(page: Page, url: str) -> tuple[str, dict]:
    """Open the lesson; the rung of the first media segment requested, and the session's start_estimate."""
    rungs: list[str] = []
    sessions: list[dict] = []
    page.on("request", lambda r: rungs.append(m.group(1)) if (m := MEDIA_SEGMENT.search(r.url)) else None)
    page.on("response", lambda r: sessions.append(r.json()) if r.url.endswith("/playback/") else None)
    page.goto(url)
    page.wait_for_function("document.getElementById('lesson-video').currentTime > 3", timeout=60_000)
    return rungs[0], sessions[0]["start_estimate"]


def _forget_throughput() -> None:
    """Each engine's run starts from the same history: the other engine's session may have reported."""
    learner = User.objects.get(username="grace")
    ingest.client().delete(ingest.throughput_key(learner.pk))


def _leave(page: Page) -> None:
    """Leave the player page without a last report reaching the server (as the new_page fixture does)."""
    page.context.route("**/*", lambda route: route.abort())
    page.goto("about:blank")


def test_both_players_start_on_a_rung_the_learners_bandwidth_carries(
    live_server: LiveServer, new_page: Callable[[], Page], ladder_lesson: Lesson
) -> None:
    """The two cases share one lesson (one encode of the four-rung ladder, the slow part of the setup):
    each engine starts with no history on a slow network, then from a history of its own."""
    for engine in ENGINES:
        _on_a_slow_network_it_starts_on_a_low_rung_and_plays_without_a_stall(
            live_server, new_page, ladder_lesson, engine
        )
    for engine in ENGINES:
        _a_learners_recent_sessions_set_where_the_next_one_starts(live_server, new_page, ladder_lesson, engine)


def _on_a_slow_network_it_starts_on_a_low_rung_and_plays_without_a_stall(
    live_server: LiveServer, new_page: Callable[[], Page], ladder_lesson: Lesson, engine: str
) -> None:
    _forget_throughput()
    page = new_page()
    log_in(page, live_server.url, "grace", PASSWORD)
    page.add_init_script(STALL_COUNTER)
    _throttle(page, 1200)
    rung, estimate = _first_rung(page, f"{live_server.url}/lessons/{ladder_lesson.public_id}/?engine={engine}")
    # No history yet: the conservative 1 Mbit/s start, which 480p fits; hls.js's default would have
    # started from the first variant's bitrate (720p), Shaka's from the browser's Network Information.
    assert estimate == {"kbps": 1000, "basis": "default"}, engine
    assert rung == "480p", engine
    assert page.evaluate("[window.__stalls, window.lessonPlayer.fatalErrors]") == [0, []], engine
    _leave(page)


def _a_learners_recent_sessions_set_where_the_next_one_starts(
    live_server: LiveServer, new_page: Callable[[], Page], ladder_lesson: Lesson, engine: str
) -> None:
    lesson = str(ladder_lesson.public_id)
    _forget_throughput()
    page = new_page()
    log_in(page, live_server.url, "grace", PASSWORD)
    # An earlier session that measured 450 kbit/s, reported as the player does: a signed heartbeat.
    earlier = page.request.post(
        f"{live_server.url}/api/v1/lessons/{lesson}/playback/",
        headers={"X-CSRFToken": next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")},
    ).json()
    beacon = {
        "view_id": earlier["view_id"], "view_token": earlier["view_token"], "lesson": lesson,
        "events": [{"type": "heartbeat", "t": 9000, "position": 8, "throughput_kbps": 450}],
    }  # fmt: skip
    assert page.request.post(f"{live_server.url}/api/v1/qoe/events/", data=json.dumps(beacon)).status == 202

    rung, estimate = _first_rung(page, f"{live_server.url}/lessons/{lesson}/?engine={engine}")
    assert estimate == {"kbps": 360, "basis": "history"}, engine  # 450 x 0.8
    configured = page.evaluate(
        "window.lessonPlayer.engine === 'hls' ? window.lessonPlayer.instance.config.abrEwmaDefaultEstimate"
        " : window.lessonPlayer.instance.getConfiguration().abr.defaultBandwidthEstimate"
    )
    assert configured == 360_000, engine
    # 240p fits 360 kbit/s; 360p does not (and the default start would have been 480p).
    assert rung == "240p", engine
    _leave(page)
