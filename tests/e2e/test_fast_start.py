"""Fast start on slow networks: on a connection throttled to 1.2 Mbit/s (DevTools network emulation),
hls.js and Shaka Player fetch their first media segment from a rung that bandwidth carries (never the
top of the ladder) and play without a stall; a learner whose recent sessions measured a slower
network starts on the rung those measurements allow (the playback session's start_estimate). The same
on the site's lesson page and in an LMS's iframe (an LTI launch, the tool's cookies third-party)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from playwright.sync_api import Browser, Frame, Page, Request, Response
from pytest_django.live_server_helper import LiveServer

from analytics import ingest
from courses.models import Course, Enrollment, Lesson
from lti.models import LtiContext
from media_pipeline.models import AssetStatus
from tests.conftest import make_clip
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, log_in, lti_lesson_frame, pages_of
from tests.lti.conftest import full_launch
from tests.lti.platform_emulator import PlatformEmulator
from tests.pipeline_steps import publish_in_process

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-learner-123456"
MEDIA_SEGMENT = re.compile(r"/video_(\d+p)/\d+\.m4s")
# The engines play at once, each as a learner of its own (a history of its own).
LEARNERS = {"hls": "grace", "shaka": "ada"}
ENGINES = tuple(LEARNERS)
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
    0.44 and 0.28 Mbit/s with audio (the manifests' average bandwidths). One learner per engine, so the
    two players run at once and each has a history of its own."""
    asset = publish_in_process(make_clip(tmp_path / "lecture.mp4", seconds=4, size="1280x720"), key_prefix=key_prefix)
    assert (asset.status, asset.failure_reason) == (AssetStatus.READY, "")
    course = Course.objects.create(slug="optics", title="Optics", published=True)
    for username in LEARNERS.values():
        Enrollment.objects.create(user=User.objects.create_user(username, password=PASSWORD), course=course)
    _forget_throughput()
    return Lesson.objects.create(course=course, title="Refraction", asset=asset)


def _throttle(page: Page, kbps: int) -> None:
    """DevTools network emulation for this page: ``kbps`` down, 40 ms latency (as Chrome's presets add)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 40, "downloadThroughput": kbps * 1000 / 8, "uploadThroughput": kbps * 1000 / 8},
    )


@dataclass
class Opened:
    """A player page being opened: the rungs of its media segment requests and its playback sessions."""

    page: Page
    rungs: list[str] = field(default_factory=list)
    sessions: list[dict] = field(default_factory=list)


def _open(page: Page, url: str) -> Opened:
    opened = Opened(page)
    page.on("request", lambda r: opened.rungs.append(m.group(1)) if (m := MEDIA_SEGMENT.search(r.url)) else None)
    page.on("response", lambda r: opened.sessions.append(r.json()) if r.url.endswith("/playback/") else None)
    # Not waiting for the load event: at 1.2 Mbit/s the page's scripts (the two players' libraries, about
    # 1.5 MB) take seconds, and the other page is opened meanwhile; _first_rung waits for the playing.
    page.goto(url, wait_until="commit")
    return opened


def _first_rung(opened: Opened) -> tuple[str, dict]:
    """Once the lesson played past 3 s: the rung of the first media segment requested, and the session's
    start_estimate."""
    opened.page.wait_for_function("document.getElementById('lesson-video').currentTime > 3", timeout=60_000)
    return opened.rungs[0], opened.sessions[0]["start_estimate"]


def _forget_throughput() -> None:
    """Each case starts from the history it sets up: an earlier session of the learner's may have reported."""
    for learner in User.objects.filter(username__in=LEARNERS.values()):
        ingest.client().delete(ingest.throughput_key(learner.pk))


def _leave(page: Page) -> None:
    """Leave the player page without a last report reaching the server (as the new_page fixture does)."""
    page.context.route("**/*", lambda route: route.abort())
    page.goto("about:blank")


def test_both_players_start_on_a_rung_the_learners_bandwidth_carries(
    live_server: LiveServer, new_page: Callable[[], Page], ladder_lesson: Lesson
) -> None:
    """The two cases share one lesson (one encode of the four-rung ladder, the slow part of the setup);
    in each, the two engines play at once, each as its own learner in its own browser context."""
    _on_a_slow_network_both_start_on_a_low_rung_and_play_without_a_stall(live_server, new_page, ladder_lesson)
    _forget_throughput()
    _a_learners_recent_sessions_set_where_the_next_one_starts(live_server, new_page, ladder_lesson)


def _on_a_slow_network_both_start_on_a_low_rung_and_play_without_a_stall(
    live_server: LiveServer, new_page: Callable[[], Page], ladder_lesson: Lesson
) -> None:
    pages = {}
    for engine, learner in LEARNERS.items():
        page = pages[engine] = new_page()
        log_in(page, live_server.url, learner, PASSWORD)
        page.add_init_script(STALL_COUNTER)
        _throttle(page, 1200)
    opened = {
        engine: _open(page, f"{live_server.url}/lessons/{ladder_lesson.public_id}/?engine={engine}")
        for engine, page in pages.items()
    }
    for engine, page in pages.items():
        rung, estimate = _first_rung(opened[engine])
        # No history yet: the conservative 1 Mbit/s start, which 480p fits; hls.js's default would have
        # started from the first variant's bitrate (720p), Shaka's from the browser's Network Information.
        assert estimate == {"kbps": 1000, "basis": "default"}, engine
        assert rung == "480p", engine
        assert page.evaluate("[window.__stalls, window.lessonPlayer.fatalErrors]") == [0, []], engine
    for page in pages.values():
        _leave(page)


def _a_learners_recent_sessions_set_where_the_next_one_starts(
    live_server: LiveServer, new_page: Callable[[], Page], ladder_lesson: Lesson
) -> None:
    lesson = str(ladder_lesson.public_id)
    pages = {}
    for engine, learner in LEARNERS.items():
        page = pages[engine] = new_page()
        log_in(page, live_server.url, learner, PASSWORD)
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
    opened = {
        engine: _open(page, f"{live_server.url}/lessons/{lesson}/?engine={engine}") for engine, page in pages.items()
    }
    for engine, page in pages.items():
        rung, estimate = _first_rung(opened[engine])
        assert estimate == {"kbps": 360, "basis": "history"}, engine  # 450 x 0.8
        configured = page.evaluate(
            "window.lessonPlayer.engine === 'hls' ? window.lessonPlayer.instance.config.abrEwmaDefaultEstimate"
            " : window.lessonPlayer.instance.getConfiguration().abr.defaultBandwidthEstimate"
        )
        assert configured == 360_000, engine
        # 240p fits 360 kbit/s; 360p does not (and the default start would have been 480p).
        assert rung == "240p", engine
    for page in pages.values():
        _leave(page)


# --- In the LMS's iframe ------------------------------------------------------------------------------


@pytest.fixture
def lms_ladder_lesson(lms: PlatformEmulator, tmp_path: Path, key_prefix: str) -> Lesson:
    """The same 4 s 720p lesson, in the course the instructor's first LTI launch made."""
    assert full_launch(Client(), lms, user="teacher-1", launch="first").status_code == 200
    course = LtiContext.objects.get().course
    asset = publish_in_process(make_clip(tmp_path / "lecture.mp4", seconds=4, size="1280x720"), key_prefix=key_prefix)
    assert (asset.status, asset.failure_reason) == (AssetStatus.READY, "")
    lesson = Lesson.objects.create(course=course, title="Refraction", asset=asset)
    lms.launches["lesson"] = {
        "custom": {"lesson": str(lesson.public_id)},
        "resource_link": {"id": "refraction-1", "title": "Refraction"},
    }
    return lesson


def _first_rung_in_the_iframe(
    page: Page, lms: PlatformEmulator, lesson: Lesson, engine: str, user: str
) -> tuple[str, dict, Frame]:
    """Launch the lesson from the LMS's course page (Shaka chosen with the player's own engine button,
    which reloads the iframe with ?engine=shaka). The rung of the first media segment that player
    requested, its session's start_estimate, and the iframe."""
    rungs: list[tuple[str, str]] = []
    sessions: list[tuple[str, dict]] = []

    def on_request(request: Request) -> None:
        if match := MEDIA_SEGMENT.search(request.url):
            rungs.append((request.frame.url, match.group(1)))

    def on_response(response: Response) -> None:
        if response.url.endswith("/playback/"):
            sessions.append((response.frame.url, response.json()))

    page.on("request", on_request)
    page.on("response", on_response)
    try:
        page.goto(f"{lms.base}/course?user={user}&launch=lesson")
        frame = lti_lesson_frame(page, lesson)
        if engine == "shaka":
            frame.locator("[data-engine-choice=shaka]").click()
            frame.wait_for_url("**engine=shaka", timeout=15_000)
        frame.wait_for_function(
            "window.lessonPlayer && document.getElementById('lesson-video').currentTime > 3", timeout=60_000
        )
    finally:
        page.remove_listener("request", on_request)
        page.remove_listener("response", on_response)
    assert frame.evaluate("window.lessonPlayer.engine") == engine

    def ours(url: str) -> bool:  # requests of the document that played, not of the one before the switch
        return engine == "hls" or "engine=shaka" in url

    rung = next(rung for url, rung in rungs if ours(url))
    return rung, next(session for url, session in sessions if ours(url))["start_estimate"], frame


@pytest.fixture
def one_process_browser(browser: Browser) -> Iterator[Browser]:
    """Chromium (third-party cookies phased out) that keeps a tab's cross-site iframes in the tab's own
    process. DevTools throttles every frame of a tab, out-of-process iframes included (it attaches to
    each); a CDP session on the page reaches only the page's own process, and the LMS's iframe of the
    tool (another site) would otherwise be a process of its own, unthrottled."""
    launched = browser.browser_type.launch(
        executable_path=CHROMIUM,
        args=[
            *CHROMIUM_ARGS, "--test-third-party-cookie-phaseout",
            "--disable-site-isolation-trials", "--disable-features=IsolateOrigins,site-per-process",
        ],
    )  # fmt: skip
    yield launched
    launched.close()


@pytest.fixture
def new_one_process_page(one_process_browser: Browser, request: pytest.FixtureRequest) -> Iterator[Callable[[], Page]]:
    yield from pages_of(one_process_browser, request)


def test_in_the_lms_iframe_both_players_start_where_the_session_estimate_says(
    live_server: LiveServer, new_one_process_page: Callable[[], Page], lms: PlatformEmulator, lms_ladder_lesson: Lesson
) -> None:
    for engine, user in zip(ENGINES, ["learner-1", "learner-2"], strict=True):  # a history of their own
        page = new_one_process_page()
        # The players' own reports are dropped: only the history this test writes counts below.
        page.context.route("**/api/v1/qoe/events/", lambda route: route.abort())
        page.add_init_script(STALL_COUNTER)
        _throttle(page, 1200)
        rung, estimate, frame = _first_rung_in_the_iframe(page, lms, lms_ladder_lesson, engine, user)
        assert estimate == {"kbps": 1000, "basis": "default"}, engine  # an LTI learner with no history yet
        assert rung == "480p", engine  # 1 Mbit/s fits 480p; 720p would stall at 1.2 Mbit/s
        assert frame.evaluate("[window.__stalls, window.lessonPlayer.fatalErrors]") == [0, []], engine

        # This view measured 450 kbit/s, reported as the player does (a heartbeat signed by its view token).
        session = frame.evaluate("window.lessonPlayer.session")
        beacon = {
            "view_id": session["view_id"], "view_token": session["view_token"],
            "lesson": str(lms_ladder_lesson.public_id),
            "events": [{"type": "heartbeat", "t": 9000, "position": 8, "throughput_kbps": 450}],
        }  # fmt: skip
        assert page.request.post(f"{live_server.url}/api/v1/qoe/events/", data=json.dumps(beacon)).status == 202

        # The next launch starts where that history says: 240p fits 360 kbit/s (450 x 0.8), 360p does not.
        rung, estimate, frame = _first_rung_in_the_iframe(page, lms, lms_ladder_lesson, engine, user)
        assert estimate == {"kbps": 360, "basis": "history"}, engine
        assert rung == "240p", engine
        assert frame.evaluate("[window.__stalls, window.lessonPlayer.fatalErrors]") == [0, []], engine
        _leave(page)
