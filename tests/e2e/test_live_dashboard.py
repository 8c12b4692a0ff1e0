"""The live dashboard on the real stack (`scripts/run.py`: config.serve, Valkey, worker, drain, publisher):
a learner's view reaches the staff dashboard within a second, and a broken lesson shows as a failure."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.e2e.conftest import log_in

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    var = tmp_path_factory.mktemp("stack")
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "STORAGE_BACKEND", "DJANGO_ALLOW_ASYNC_UNSAFE"}
        and not k.startswith("S3_")
    }
    env.update({"VAR_DIR": str(var), "RUN_PORT": str(port), "RUN_REDIS_PORT": str(_free_port())})
    log = (var / "run.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "scripts/run.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 240
        while "Press Ctrl-C" not in (var / "run.log").read_text():
            assert process.poll() is None and time.monotonic() < deadline, (var / "run.log").read_text()[-3000:]
            time.sleep(0.5)
        output = (var / "run.log").read_text()
        yield {
            "url": f"http://127.0.0.1:{port}",
            "var": var,
            "lesson": re.search(r"/lessons/([0-9a-f-]{36})/", output).group(1),
            "admin": (var / "admin-password").read_text().strip(),
            "learner": (var / "learner-password").read_text().strip(),
        }
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _dashboard(new_page: Callable[[], Page], stack: dict) -> Page:
    page = new_page()
    page.goto(f"{stack['url']}/admin/login/?next=/analytics/live/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", stack["admin"])
    page.click("input[type=submit]")
    page.wait_for_function("window.liveDashboard && window.liveDashboard.qoeMessages > 0", timeout=10_000)
    return page


def test_a_learners_view_reaches_the_dashboard_within_a_second(stack: dict, new_page: Callable[[], Page]) -> None:
    dashboard = _dashboard(new_page, stack)
    learner = new_page()
    log_in(learner, stack["url"], "learner", stack["learner"])
    learner.goto(f"{stack['url']}/lessons/{stack['lesson']}/")
    learner.wait_for_function("document.getElementById('lesson-video').currentTime > 1", timeout=30_000)
    # The first batch goes out when the page hides or after 10 s; send it now and time its arrival.
    learner.evaluate("window.lessonPlayer.flush()")
    sent = time.monotonic()
    dashboard.wait_for_function(
        "window.liveDashboard.last.windows['10s'].plays >= 1 && window.liveDashboard.last.windows['10s'].viewers >= 1",
        timeout=5_000,
        polling=50,
    )
    assert time.monotonic() - sent < 1.0
    startup = dashboard.evaluate("window.liveDashboard.last.windows['10s'].startup_p50_ms")
    assert 0 < startup < 15_000
    assert stack["lesson"] in dashboard.inner_text("#by-lesson")


def test_a_lesson_with_a_missing_segment_shows_up_as_a_failure(stack: dict, new_page: Callable[[], Page]) -> None:
    # The published version is the newest: `make run` shows a provisional v1 first, then the full ladder.
    versions = (stack["var"] / "media" / "lessons" / stack["lesson"]).glob("v*")
    version = max(versions, key=lambda path: int(path.name.removeprefix("v")))
    segments = list(version.glob("*/2.m4s"))  # the second segment of every rendition
    assert segments, sorted(p.name for p in version.iterdir())
    for segment in segments:
        segment.unlink()
    dashboard = _dashboard(new_page, stack)
    learner = new_page()
    log_in(learner, stack["url"], "learner", stack["learner"])
    learner.goto(f"{stack['url']}/lessons/{stack['lesson']}/")
    learner.wait_for_function("window.lessonPlayer.fatalErrors.length > 0", timeout=90_000)
    dashboard.wait_for_function("window.liveDashboard.last.errors.length > 0", timeout=5_000)
    error = dashboard.evaluate("window.liveDashboard.last.errors[0]")
    assert error["lesson"] == stack["lesson"]
    assert error["code"]
    assert dashboard.evaluate("window.liveDashboard.last.windows['10s'].failures") >= 1
    assert "lesson " + stack["lesson"] in dashboard.inner_text("#errors")
