"""Many processes, one platform (issue 15): the built image run as separate containers on this machine.

podman runs the session's image (tests/deploy/conftest.py) with `--network=host`, every container on
127.0.0.1 on ports of its own, against the harness's PostgreSQL, Redis and SeaweedFS S3 (host
processes), with the secrets production insists on in an env file:

- the `migrate` role once, first;
- two `web` containers behind nginx (tests/web_cluster.Balancer) as the load balancer;
- a `worker --queues quick` container and a `worker --queues ladder` one.

A lesson is uploaded through the load balancer (tus, as an educator's API client does) and encoded in
chunks on the ladder worker; the test waits until a chunk is provably mid-encode (its row is running
with progress reported) and `podman kill`s that worker. A second ladder container starts, the
operator's `pipeline_resume` runs in a `manage` container, and the lesson is published exactly once.
A learner plays it in Chromium through the load balancer; while the player plays and a load of
playback sessions and segment downloads runs, one web container is restarted the way an orchestrator
does it (out of the balancer, `podman stop`: SIGTERM through tini to config.serve, which drains;
start; ready; back in): no request fails and the player keeps decoding frames.
Every wait is bounded; every container is removed by name.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from django.conf import global_settings
from playwright.sync_api import Page
from pytest_django import Settings

from tests.conftest import make_clip, under_harness
from tests.deploy.containers import Image, remove_container, run
from tests.e2e.conftest import log_in
from tests.web_cluster import Balancer, Call, Load, free_port

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

T = TypeVar("T")
PASSWORD = "pw-scaleout-123456"
EACH = 10  # requests every web container answers before the restart and after it
# Chunked encoding slow enough that a chunk is still running when the test kills its worker, with
# progress reported (every 2 s) before it ends (as tests/media_pipeline/test_chunked_workers.py).
ENCODE = {
    "MEDIA_CHUNK_MIN_SECONDS": "8",
    "MEDIA_CHUNK_SECONDS": "4",
    "MEDIA_CHUNK_LEASE_SECONDS": "5",
    "ENCODE_PRESET": "placebo",
    "ENCODE_THREADS": "1",
    "dramatiq_queue_prefetch": "1",  # a worker holds only the message it runs
}


def _wait_for(condition: Callable[[], T | None], *, timeout: float, what: str, detail: Callable[[], str]) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}:\n{detail()}")


class Platform:
    """The containers of this test, by name; every one is removed at the end."""

    def __init__(self, image: Image, env_file: Path) -> None:
        self.image = image
        self.env_file = env_file
        self.names: list[str] = []

    def name(self, role: str) -> str:
        return f"{self.image.prefix}-scaleout-{role}"

    def options(self, *extra_env: str) -> list[str]:
        return ["--network=host", "--read-only", "--tmpfs=/tmp", f"--env-file={self.env_file}",
                *(f"--env={item}" for item in extra_env)]  # fmt: skip

    def run_once(self, role: str, *args: str, env: tuple[str, ...] = (), timeout: float = 300) -> str:
        name = self.name(role)
        self.names.append(name)
        try:
            result = run(["podman", "run", f"--name={name}", *self.options(*env), self.image.name, role, *args],
                         self.image.env, timeout=timeout)  # fmt: skip
            return result.stdout + result.stderr
        finally:
            remove_container(name, self.image)

    def start(self, label: str, *command: str, env: tuple[str, ...] = ()) -> str:
        name = self.name(label)
        self.names.append(name)
        run(["podman", "run", "--detach", f"--name={name}", *self.options(*env), self.image.name, *command],
            self.image.env)  # fmt: skip
        return name

    def logs(self, label: str) -> str:
        result = run(["podman", "logs", self.name(label)], self.image.env, check=False)
        return (result.stdout + result.stderr)[-3000:]

    def remove_all(self) -> None:
        for name in self.names:
            remove_container(name, self.image)


def _ready(port: int) -> int | None:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/readyz", headers={"Connection": "close"})
        status = connection.getresponse().status
        connection.close()
        return status
    except OSError:
        return None


def _database_url() -> str:
    """The test database pytest-django made, not the harness's empty one."""
    from django.db import connection

    url = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(url._replace(path="/" + connection.settings_dict["NAME"]))


def _env_file(path: Path) -> Path:
    """The services and secrets of this run, as a deployment's secret would carry them."""
    names = ["REDIS_URL", "STORAGE_BACKEND", "SECRET_KEY", "CONTENT_KEY_SECRET", "LTI_KEY_PASSPHRASE"]
    values = {name: os.environ[name] for name in names}
    values |= {name: value for name, value in os.environ.items() if name.startswith("S3_")}
    values |= {"DATABASE_URL": _database_url(), "MEDIA_PROVISIONAL": "0", "LOG_LEVEL": "WARNING"}
    path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    path.chmod(0o600)
    return path


@pytest.fixture
def platform(image: Image, tmp_path: Path) -> Iterator[Platform]:
    if not under_harness():  # `make test-unit` deselects it (slow); anywhere else it must not pass silently
        pytest.fail("needs the harness's PostgreSQL, Redis and S3: run it through tests/harness.py")
    import dramatiq

    broker = dramatiq.get_broker()
    broker.flush_all()
    made = Platform(image, _env_file(tmp_path / "lessons.env"))
    try:
        yield made
    finally:
        made.remove_all()
        broker.flush_all()


def test_the_image_scales_out_uploads_encodes_survives_a_dead_worker_and_restarts_without_errors(
    platform: Platform, settings: Settings, tmp_path: Path, page: Page
) -> None:
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    from courses.models import Course, Enrollment, Lesson
    from media_pipeline import storage
    from media_pipeline.models import AssetStatus, ChunkedBuild, ChunkState, EncodeChunk, MediaAsset
    from playback.tokens import token_issue
    from tests.conftest import _empty_storage_prefix

    started = time.monotonic()
    # The containers check passwords with the production hashers.
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
    course = Course.objects.create(slug="scaleout", title="Scale-out", published=True)
    lesson = Lesson.objects.create(course=course, title="Many processes")
    educator = User.objects.create_user("ada", password=PASSWORD, is_staff=True)
    course.educators.add(educator)
    learner = User.objects.create_user("grace", password=PASSWORD)
    Enrollment.objects.create(user=learner, course=course)
    educator_auth = {"Authorization": f"Token {Token.objects.create(user=educator).key}"}
    learner_auth = {"Authorization": f"Token {Token.objects.create(user=learner).key}"}
    clip = make_clip(tmp_path / "lecture.mp4", seconds=12, size="640x360")

    web_env = ("WEB_DRAIN_SECONDS=1", "WEB_ACCESS_LOG=0", "THROTTLE_PLAYBACK_SESSION=100000000/min")
    ports = [free_port(), free_port()]
    (tmp_path / "nginx").mkdir()
    balancer = Balancer(tmp_path / "nginx", ports)
    upstreams = [f"127.0.0.1:{port}" for port in ports]
    with ExitStack() as stack:
        stack.callback(balancer.stop)
        stack.callback(_empty_storage_prefix, f"lessons/{lesson.public_id}")

        out = platform.run_once("migrate")
        assert "No migrations to apply." in out or "OK" in out, out[-2000:]
        for index, port in enumerate(ports):
            platform.start(f"web-{index}", "web", env=(*web_env, f"PORT={port}", "BIND=127.0.0.1"))
        platform.start("worker-quick", "worker", "--queues", "quick", "--processes", "1", "--threads", "1")
        ladder = ("worker", "--queues", "ladder", "--processes", "1", "--threads", "1")
        platform.start("worker-ladder-0", *ladder, env=tuple(f"{k}={v}" for k, v in ENCODE.items()))
        for index, port in enumerate(ports):
            _wait_for(lambda port=port: _ready(port) == 200, timeout=180, what=f"web-{index} ready",
                      detail=lambda index=index: platform.logs(f"web-{index}"))  # fmt: skip
        balancer.start()
        base = balancer.base

        # Upload through the load balancer (tus: create, then the bytes in one PATCH).
        data = clip.read_bytes()
        metadata = f"lesson {base64.b64encode(str(lesson.public_id).encode()).decode()}"
        tus = {"Tus-Resumable": "1.0.0", **educator_auth}
        created = requests.post(
            f"{base}/api/v1/uploads/",
            timeout=60,
            headers={**tus, "Upload-Length": str(len(data)), "Upload-Metadata": metadata},
        )
        assert created.status_code == 201, created.text
        location = created.headers["Location"]
        assert location.startswith(base + "/"), location
        sent = requests.patch(
            location,
            data=data,
            timeout=120,
            headers={**tus, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
        )
        assert sent.status_code == 204, sent.text

        def asset() -> MediaAsset | None:
            return MediaAsset.objects.filter(pk=Lesson.objects.get(pk=lesson.pk).asset_id).first()

        def state() -> str:
            found = asset()
            chunks = list(EncodeChunk.objects.filter(build__asset=found).values("index", "kind", "state", "progress"))
            row = (found.status, found.failure_reason, found.published_version) if found else None
            return f"{row} {chunks}\n{platform.logs('worker-quick')}\n{platform.logs('worker-ladder-0')}"

        # Kill the ladder worker while it provably holds a chunk mid-encode.
        def chunk_mid_encode() -> EncodeChunk | None:
            return EncodeChunk.objects.filter(
                build__asset_id=Lesson.objects.get(pk=lesson.pk).asset_id, kind="video", state=ChunkState.RUNNING,
                progress__gt=0, progress__lt=100,
            ).first()  # fmt: skip

        victim = _wait_for(chunk_mid_encode, timeout=300, what="a chunk mid-encode", detail=state)
        run(["podman", "kill", "--signal", "KILL", platform.name("worker-ladder-0")], platform.image.env)
        victim.refresh_from_db()
        assert (victim.state, victim.attempts, victim.encodes) == (ChunkState.RUNNING, 1, 0)

        # Another ladder container, and the operator's pipeline_resume (docs/operations.md).
        platform.start("worker-ladder-1", *ladder, env=tuple(f"{k}={v}" for k, v in ENCODE.items()))
        resumed = platform.run_once("manage", "pipeline_resume", "--idle-minutes", "0")
        assert "resumed 1 asset(s)" in resumed, resumed

        def published() -> MediaAsset | None:
            found = asset()
            assert found is not None and found.status != AssetStatus.FAILED, state()
            return found if found.status == AssetStatus.READY else None

        encoded = _wait_for(published, timeout=600, what="the lesson published", detail=state)
        assert (encoded.failure_reason, encoded.published_version) == ("", 1)
        build = ChunkedBuild.objects.get(asset=encoded)
        assert (build.version, build.state, build.joins) == (1, ChunkedBuild.State.JOINED, 1)
        chunks = {chunk.pk: chunk for chunk in build.chunks.all()}
        assert (chunks[victim.pk].attempts, chunks[victim.pk].encodes) == (2, 1)
        assert all(chunk.state == ChunkState.DONE for chunk in chunks.values())
        assert storage.list_keys(encoded.key_prefix + "/v2/") == []  # one version, published once
        encoded_seconds = time.monotonic() - started

        # The learner plays it in Chromium through the load balancer, looping so it plays throughout.
        prefix = encoded.published_prefix
        assert prefix is not None
        log_in(page, base, "grace", PASSWORD)
        page.goto(f"{base}/lessons/{lesson.public_id}/?engine=hls")
        page.wait_for_function("document.getElementById('lesson-video').currentTime > 1", timeout=60_000)
        page.evaluate("document.getElementById('lesson-video').loop = true")

        def frames() -> int:
            return int(
                page.evaluate("document.getElementById('lesson-video').getVideoPlaybackQuality().totalVideoFrames")
            )

        segment = next(key for key in storage.list_keys(prefix) if key.endswith(".m4s"))
        stream_token = token_issue(secret=settings.PLAYBACK_TOKEN_SECRET.encode(), prefix=prefix,
                                   expires_at=int(time.time()) + 3600)  # fmt: skip
        calls = [
            Call("playback session", "POST", f"/api/v1/lessons/{lesson.public_id}/playback/", learner_auth),
            Call("segment", "GET", f"/stream/{stream_token}/{segment}"),
        ]
        victim_port, other_port = ports
        with Load(base, calls, threads=3) as load:
            load.wait_served(0, upstreams, at_least=EACH)
            frames_before = frames()
            balancer.route([other_port])  # out of the balancer: what a failing readiness check leads to
            load.phase = 1  # every request from here on goes to the other container
            stop_started = time.monotonic()
            run(["podman", "stop", "--time", "60", platform.name("web-0")], platform.image.env, timeout=90)
            stop_seconds = time.monotonic() - stop_started
            code = run(["podman", "inspect", "--format", "{{.State.ExitCode}}", platform.name("web-0")],
                       platform.image.env).stdout.strip()  # fmt: skip
            assert code == "0", platform.logs("web-0")
            run(["podman", "start", platform.name("web-0")], platform.image.env)
            _wait_for(lambda: _ready(victim_port) == 200, timeout=180, what="web-0 ready again",
                      detail=lambda: platform.logs("web-0"))  # fmt: skip
            load.phase = 2  # before it is back in the balancer: phase 1 is the time it was out
            balancer.route(ports)
            load.wait_served(2, upstreams, at_least=EACH)
            frames_after = frames()

        player = page.evaluate("({state: window.lessonPlayer.state, fatal: window.lessonPlayer.fatalErrors})")
        failures = load.failures()
        print(
            f"\nscale-out: encoded in {encoded_seconds:.0f} s; restart: {len(load.outcomes)} requests, "
            f"{len(failures)} failed, web-0 stopped in {stop_seconds:.1f} s; frames {frames_before} -> {frames_after}"
        )
        assert failures == []
        assert set(load.served(1)) == {upstreams[1]}  # while web-0 was out, web-1 answered
        assert all(load.served(phase)[upstream] >= EACH for phase in (0, 2) for upstream in upstreams)
        assert player["fatal"] == [] and player["state"] == "playing", player
        assert frames_after > frames_before
        assert json.loads(storage.read_bytes(prefix + "files.json"))["files"]
