"""The live dashboard on the real stack (`scripts/run.py`: config.serve, Valkey, worker, drain, publisher):
a learner's view reaches the staff dashboard within a second, and a broken lesson shows as a failure."""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.conftest import make_clip
from tests.e2e.conftest import log_in

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# A learner, a course and a 6 s lesson (three 2 s segments) made in the stack's own database and
# published by the stack's own worker: the demo lecture `make run` seeds takes 30 s of 720p through
# the whole ladder, which these tests do not need (the demo's seeding has its test in test_player.py).
LESSON = """
import os, time
from django.contrib.auth.models import User
from django.db import transaction
from courses import services
from media_pipeline.models import AssetStatus

learner = User.objects.create_user("learner", password=os.environ["LESSON_LEARNER_PASSWORD"])
course = services.course_create(slug="live", title="Live dashboard", published=True)
services.enrollment_create(user=learner, course=course)
lesson = services.lesson_create(course=course, title="Watched live")
with transaction.atomic(), open(os.environ["LESSON_CLIP"], "rb") as stream:
    lesson = services.lesson_attach_video(lesson=lesson, stream=stream, source_name="lecture.mp4")
deadline = time.monotonic() + 240
while (status := type(lesson).objects.get(pk=lesson.pk).asset.status) != AssetStatus.READY:
    assert status != AssetStatus.FAILED and time.monotonic() < deadline, status
    time.sleep(0.2)
print(f"/lessons/{lesson.public_id}/")
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    var = tmp_path_factory.mktemp("stack")
    port, redis_port = _free_port(), _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "STORAGE_BACKEND", "DJANGO_ALLOW_ASYNC_UNSAFE"}
        and not k.startswith("S3_")
    }
    env.update({"VAR_DIR": str(var), "RUN_PORT": str(port), "RUN_REDIS_PORT": str(redis_port), "RUN_SEED_DEMO": "0"})
    log = (var / "run.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "scripts/run.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        clip = make_clip(var / "lecture.mp4", seconds=6, size="640x360")
        deadline = time.monotonic() + 240
        while "Press Ctrl-C" not in (var / "run.log").read_text():
            assert process.poll() is None and time.monotonic() < deadline, (var / "run.log").read_text()[-3000:]
            time.sleep(0.2)
        # As run.py's own children see the stack: its SQLite, media folder and Valkey.
        learner_password = secrets.token_urlsafe(12)
        stack_env = {
            **env, "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "REDIS_EMBEDDED": "1",
            "LESSON_CLIP": str(clip), "LESSON_LEARNER_PASSWORD": learner_password,
        }  # fmt: skip
        made = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", LESSON],
            cwd=ROOT, env=stack_env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert made.returncode == 0, made.stdout + made.stderr + (var / "run.log").read_text()[-3000:]
        yield {
            "url": f"http://127.0.0.1:{port}",
            "var": var,
            "lesson": re.search(r"/lessons/([0-9a-f-]{36})/", made.stdout).group(1),
            "admin": (var / "admin-password").read_text().strip(),
            "learner": learner_password,
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
    # The published version is the newest: a new upload shows a provisional v1 first, then the full ladder.
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
