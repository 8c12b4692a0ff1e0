"""With PLAYBACK_SIGNER=nginx, learners play through a real nginx edge: URLs point at the edge,
the edge checks the token and serves from its cache, and both players play."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page
from pytest_django import Settings
from pytest_django.live_server_helper import LiveServer

from courses.models import Course, Enrollment, Lesson
from media_pipeline import services
from tests.conftest import make_clip
from tests.e2e.conftest import log_in
from tests.nginx_edge import run_edge
from tests.pipeline_steps import record_sends

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_players_play_through_the_nginx_edge(
    live_server: LiveServer,
    new_page: Callable[[], Page],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record_sends(monkeypatch)
    course = Course.objects.create(slug="edge", title="Edge", published=True)
    learner = User.objects.create_user("ada", password="pw-ada-123456")
    Enrollment.objects.create(user=learner, course=course)
    lesson = Lesson.objects.create(course=course, title="Through the edge", position=0)
    lesson.asset = services.asset_create(key_prefix=f"lessons/{lesson.public_id}")
    lesson.save()
    with make_clip(tmp_path / "clip.mp4", seconds=8).open("rb") as stream:
        services.asset_upload_source(asset=lesson.asset, stream=stream, source_name="clip.mp4")
    for step in (services.asset_probe, services.asset_transcode, services.asset_publish):
        step(asset_id=lesson.asset_id)

    workdir = tmp_path / "edge"
    workdir.mkdir()
    origin = live_server.url.removeprefix("http://")
    with run_edge(workdir=workdir, origin=origin, edge_secret="edge-s3cret", origin_secret="origin-s3cret") as edge:
        settings.PLAYBACK_SIGNER = "nginx"
        settings.PLAYBACK_EDGE_URL = edge
        settings.PLAYBACK_NGINX_SECRET = "edge-s3cret"
        settings.EDGE_ORIGIN_SECRET = "origin-s3cret"
        page = new_page()
        log_in(page, live_server.url, "ada", "pw-ada-123456")
        for engine in ("hls", "shaka"):
            page.goto(f"{live_server.url}/lessons/{lesson.public_id}/?engine={engine}")
            page.wait_for_function("document.getElementById('lesson-video').currentTime > 3", timeout=30_000)
            state = page.evaluate("({fatal: window.lessonPlayer.fatalErrors, hls: window.lessonPlayer.session.hls})")
            assert state["fatal"] == [], engine
            assert state["hls"].startswith(f"{edge}/s/"), engine
        log = [json.loads(line) for line in (workdir / "access.json.log").read_text().splitlines()]
    media = [entry for entry in log if ".m4s" in entry["request_uri"]]
    assert media and all(entry["status"] in (200, 206) for entry in media)
    assert any(entry["cache"] == "HIT" for entry in log)  # the second player was served from the edge cache
    assert any("CMCD=" in entry["request_uri"] for entry in media)
