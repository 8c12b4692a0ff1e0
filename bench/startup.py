"""Benchmark: time to first frame in Chromium on slow networks, hls.js and Shaka Player, our player's
fast start against the players' default configuration, on a full ladder.

    .venv/bin/python tests/harness.py -- .venv/bin/python bench/startup.py [--rounds 5] [--watch 30] [--source pattern]

Runs under the test harness (PostgreSQL, Redis, SeaweedFS S3 on loopback). The source is the
lecture-like 1080p30 video of bench/lecture_source.py (cached under var/bench/), encoded here
through our pipeline (probe, full ladder, publish: 1080p, 720p, 480p and 360p) as a free-preview
lesson, so every view is a new anonymous viewer with no history (the start estimate's default). One
production web process (``python -m config.serve``, static files collected) serves the page, the
playback API and the origin.

Each view is a fresh browser context with DevTools network emulation on its page (CDP
``Network.emulateNetworkConditions``: 1.2 Mbit/s or 4 Mbit/s down with 40 ms latency, or none).
Time to first frame is the QoE "video startup time" (analytics/qoe.py): from the player's playback
API request (its Resource Timing entry) to the video element's first ``playing`` event, so the page
and the player libraries' download are not counted. "baseline" is the player before fast start
(``--baseline-rev``: static/js/player.js of that commit, served in place of ours), whose engines run
with their default configuration; "ours" is this checkout's. Each round runs every combination in
turn; the first round also plays on until ``--watch`` seconds of media and counts stalls ("waiting"
after the first frame). Medians of the rounds; the machine's load average is printed.

Targets (issue 16): ours at most 2.5 s at 1.2 Mbit/s, at most 1.5 s more than unthrottled, no stall
in the first 30 s.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Request, Response

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.web_cluster import Web, free_port  # noqa: E402

# The commit before fast start (issue 16): its player.js is the players' default configuration.
BASELINE_REV = "bd74611"
NETWORKS: dict[str, int | None] = {"1.2 Mbit/s": 1200, "4 Mbit/s": 4000, "unthrottled": None}
ENGINES = ("hls", "shaka")
LATENCY_MS = 40
# static/js/player.js as collected (with its content hash), not player-extras.js.
PLAYER_JS = re.compile(r"/static/js/player(\.[0-9a-f]+)?\.js$")
# A media segment (CMCD adds a query string) and its rung; the ladder as the HLS master lists it.
MEDIA_SEGMENT = re.compile(r"/video_(\d+p)/\d+\.m4s")
STREAM_INF = re.compile(r"#EXT-X-STREAM-INF:.*?AVERAGE-BANDWIDTH=(\d+).*?RESOLUTION=(\d+x\d+)")
LADDER: list[str] = []
# Before the page's scripts: the first "playing" and every stall after it, on the page's clock.
PROBE = """
window.__bench = {firstFrame: null, stalls: 0, stalledMs: 0, waitingAt: null};
document.addEventListener("playing", () => {
  const b = window.__bench, now = performance.now();
  if (b.firstFrame === null) b.firstFrame = now;
  if (b.waitingAt !== null) { b.stalledMs += now - b.waitingAt; b.waitingAt = null; }
}, true);
document.addEventListener("waiting", () => {
  const b = window.__bench;
  if (b.firstFrame !== null && b.waitingAt === null) { b.stalls += 1; b.waitingAt = performance.now(); }
}, true);
"""
STARTUP = """() => {
  const api = performance.getEntriesByType("resource").find((e) => e.name.endsWith("/playback/"));
  return window.__bench.firstFrame === null || !api ? null : window.__bench.firstFrame - api.startTime;
}"""


def arrange(source: Path) -> tuple[str, float]:
    """A published free-preview lesson encoded from ``source``: its URL path and the encode's seconds."""
    from django.core.management import call_command

    from courses.models import Course, Lesson
    from media_pipeline.models import AssetStatus
    from tests.pipeline_steps import publish_in_process

    call_command("migrate", verbosity=0)
    call_command("collectstatic", "--noinput", verbosity=0)
    course = Course.objects.create(slug=f"startup-{os.getpid()}", title="Startup", published=True)
    lesson = Lesson.objects.create(course=course, title="Lecture", public=True)
    started = time.monotonic()
    asset = publish_in_process(source, key_prefix=f"lessons/{lesson.public_id}")
    encode = time.monotonic() - started
    if asset.status != AssetStatus.READY:
        raise RuntimeError(f"the pipeline failed: {asset.failure_reason}")
    lesson.asset = asset
    lesson.save(update_fields=["asset"])
    return f"/lessons/{lesson.public_id}/", encode


def one_view(
    browser: Browser, url: str, *, kbps: int | None, player_js: str | None, watch: float
) -> tuple[float, int, float, str]:
    """Seconds to first frame, stalls and stalled seconds up to ``watch`` s of media, and the first rung."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    context = browser.new_context()
    try:
        if player_js is not None:  # the baseline: the player before fast start
            context.route(
                PLAYER_JS,
                lambda route: route.fulfill(status=200, content_type="text/javascript", body=player_js),
            )
        page = context.new_page()
        page.add_init_script(PROBE)
        if kbps is not None:
            cdp = context.new_cdp_session(page)
            cdp.send("Network.enable")
            rate = kbps * 1000 / 8
            cdp.send(
                "Network.emulateNetworkConditions",
                {"offline": False, "latency": LATENCY_MS, "downloadThroughput": rate, "uploadThroughput": rate},
            )
        first_rung: list[str] = []

        def on_request(request: Request) -> None:
            found = MEDIA_SEGMENT.search(request.url)
            if found and not first_rung:
                first_rung.append(found.group(1))

        def on_response(response: Response) -> None:
            if not LADDER and response.url.split("?")[0].endswith("/master.m3u8"):
                LADDER.extend(
                    f"{attributes.group(2)} at {int(attributes.group(1)) / 1e6:.2f} Mbit/s"
                    for attributes in STREAM_INF.finditer(response.text())
                )

        page.on("request", on_request)
        page.on("response", on_response)
        console: list[str] = []
        page.on(
            "console", lambda message: console.append(message.text) if message.type in ("error", "warning") else None
        )
        page.goto(url)
        try:
            page.wait_for_function(f"({STARTUP})() !== null", timeout=60_000, polling=50)
        except PlaywrightTimeout:
            state = page.evaluate(
                "window.lessonPlayer ? [window.lessonPlayer.state, window.lessonPlayer.fatalErrors,"
                " window.lessonPlayer.errors, document.getElementById('player-message').textContent] : null"
            )
            raise RuntimeError(
                f"no first frame at {url} ({kbps} kbit/s): player {state}; console {console[-5:]}"
            ) from None
        startup = page.evaluate(STARTUP) / 1000
        if watch:
            page.wait_for_function(
                f"(v => v.currentTime >= {watch} || v.ended)(document.getElementById('lesson-video'))",
                timeout=int((watch * 4 + 60) * 1000),
                polling=250,
            )
        stalls, stalled_ms = page.evaluate("[window.__bench.stalls, window.__bench.stalledMs]")
        return startup, int(stalls), stalled_ms / 1000, first_rung[0] if first_rung else "?"
    finally:
        context.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--watch", type=float, default=30.0, help="seconds of media played in the first round")
    parser.add_argument("--seconds", type=int, default=45, help="length of the lecture")
    parser.add_argument("--baseline-rev", default=BASELINE_REV)
    parser.add_argument(
        "--source",
        choices=["lecture", "pattern"],
        default="lecture",
        help="lecture: slides and a talking head (light rungs); pattern: testsrc2, moving everywhere (heavy rungs)",
    )
    args = parser.parse_args()
    if "S3_ENDPOINT_URL" not in os.environ:
        print("run under the harness: .venv/bin/python tests/harness.py -- .venv/bin/python bench/startup.py")
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["MEDIA_PROVISIONAL"] = "0"  # the full ladder straight away: no quick first stream to replace
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "1"  # ORM calls beside Playwright's event loop (as tests/e2e)
    import django

    django.setup()
    from django.conf import settings
    from playwright.sync_api import sync_playwright

    from bench.lecture_source import lecture_source, test_pattern_source
    from tests.conftest import CHROMIUM_ARGS
    from tests.e2e.conftest import CHROMIUM

    baseline_js = subprocess.run(
        ["git", "show", f"{args.baseline_rev}:static/js/player.js"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    if args.source == "lecture":
        source = lecture_source(ffmpeg=settings.FFMPEG_BIN, seconds=args.seconds)
    else:
        source = test_pattern_source(ffmpeg=settings.FFMPEG_BIN, seconds=args.seconds, width=1920, height=1080)
    path, encode = arrange(source)
    print(f"source: {source.name} ({args.seconds} s 1080p, {args.source}), encoded and published in {encode:.1f} s")
    port = free_port()
    env = {**os.environ, "THROTTLE_PLAYBACK_SESSION": "100000000/min", "LOG_LEVEL": "WARNING"}
    server = Web(port=port, env=env, log=Path(tempfile.gettempdir()) / f"bench-startup-web-{port}.log")
    server.start()
    url = f"http://127.0.0.1:{port}{path}"
    results: dict[tuple[str, str, str], list[float]] = {}
    stalls: dict[tuple[str, str, str], tuple[int, float]] = {}
    rungs: dict[tuple[str, str, str], set[str]] = {}
    try:
        server.wait_readiness(200)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                # Warm up: the web process and the origin's first requests.
                one_view(browser, f"{url}?engine=hls", kbps=None, player_js=None, watch=0)
                print("ladder (average bandwidth, video and audio):", "; ".join(LADDER))
                for round_ in range(args.rounds):
                    for network, kbps in NETWORKS.items():
                        for engine in ENGINES:
                            for name, js in (("baseline", baseline_js), ("ours", None)):
                                key = (network, engine, name)
                                watch = args.watch if round_ == 0 else 0
                                startup, n, stalled, rung = one_view(
                                    browser, f"{url}?engine={engine}", kbps=kbps, player_js=js, watch=watch
                                )
                                results.setdefault(key, []).append(startup)
                                rungs.setdefault(key, set()).add(rung)
                                if watch:
                                    stalls[key] = (n, stalled)
                    print(f"round {round_ + 1}/{args.rounds} done", flush=True)
            finally:
                browser.close()
    finally:
        server.stop()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"\ntime to first frame, median of {args.rounds} (s); stalls in the first {args.watch:g} s of round 1")
    print(f"{'network':12} {'engine':6} {'baseline':>9} {'ours':>7} {'ratio':>6}  first rung (baseline / ours)  stalls")
    met = True
    for engine in ENGINES:
        unthrottled = statistics.median(results[("unthrottled", engine, "ours")])
        for network in NETWORKS:
            base = statistics.median(results[(network, engine, "baseline")])
            ours = statistics.median(results[(network, engine, "ours")])
            first = " / ".join("/".join(sorted(rungs[(network, engine, n)])) for n in ("baseline", "ours"))
            stall_text = " / ".join(
                f"{stalls[key][0]} ({stalls[key][1]:.1f} s)" if key in stalls else "-"
                for key in ((network, engine, "baseline"), (network, engine, "ours"))
            )
            print(f"{network:12} {engine:6} {base:9.2f} {ours:7.2f} {ours / base:6.2f}  {first:29} {stall_text}")
            if network == "1.2 Mbit/s" and ours > 2.5:
                met = False
            if ours > unthrottled + 1.5 or stalls.get((network, engine, "ours"), (0, 0.0))[0]:
                met = False
    spread = {key: (min(v), max(v)) for key, v in results.items()}
    print("\nrange (min-max) of ours:", "; ".join(
        f"{n} {e}: {spread[(n, e, 'ours')][0]:.2f}-{spread[(n, e, 'ours')][1]:.2f}" for n in NETWORKS for e in ENGINES
    ))  # fmt: skip
    print(f"targets (<= 2.5 s at 1.2 Mbit/s, <= unthrottled + 1.5 s, no stall): {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
