"""The container image (deploy/container, docs/adr/0024), built once with `make image` and run as a
user would run it: every role, as uid 10001, on a read-only root filesystem.

The image is the session's `image` fixture (tests/deploy/conftest.py, shared with
tests/deploy/test_scaleout.py). Containers listen on 127.0.0.1 only and are removed by name.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from django.conf import settings

from tests.analytics.test_beacons import body as beacon_body
from tests.deploy.containers import Image, remove_container
from tests.deploy.containers import run as _run

pytestmark = pytest.mark.slow

MAX_IMAGE_BYTES = 500 * 1000 * 1000
# Production-style secrets for the roles that are not the demo (the demo makes its own files).
SECRETS = {
    "SECRET_KEY": "image-test-key",
    "CONTENT_KEY_SECRET": "image-test-ck",
    "LTI_KEY_PASSPHRASE": "image-test-lti",
}
SECRET_OPTIONS = [f"--env={key}={value}" for key, value in SECRETS.items()]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str, *, data: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _wait_for_status(url: str, status: int, *, timeout: float, container: str, image: Image) -> None:
    """Poll until URL answers STATUS; on timeout, fail with the container's log."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = _get(url)[0]
            if last == status:
                return
        except OSError as exc:
            last = exc
        time.sleep(0.25)
    logs = _run(["podman", "logs", container], image.env, check=False)
    output = logs.stdout[-4000:] + logs.stderr[-4000:]
    pytest.fail(f"{url} did not answer {status} within {timeout:.0f} s (last: {last}):\n{output}")


def _wait_for_log(container: str, text: str, *, timeout: float, image: Image) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = _run(["podman", "logs", container], image.env, check=False)
        if text in logs.stdout + logs.stderr:
            return
        time.sleep(0.25)
    pytest.fail(f"{container} did not log {text!r} within {timeout:.0f} s:\n{logs.stdout[-4000:]}{logs.stderr[-4000:]}")


def _stop(container: str, image: Image) -> tuple[int, float]:
    """`podman stop` with a timeout far above what a clean stop takes: (exit code, seconds)."""
    started = time.monotonic()
    _run(["podman", "stop", "--time", "30", container], image.env, timeout=60)
    seconds = time.monotonic() - started
    code = int(_run(["podman", "inspect", "--format", "{{.State.ExitCode}}", container], image.env).stdout.strip())
    return code, seconds


def _remove(container: str, image: Image) -> None:
    remove_container(container, image)


def _podman_run(
    image: Image, role: str, *args: str, options: tuple[str, ...] = (), timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run one role to completion, read-only, with production-style secrets."""
    name = f"{image.prefix}-{role}"
    try:
        return _run(["podman", "run", f"--name={name}", "--read-only", "--tmpfs=/tmp", *SECRET_OPTIONS, *options,
                     image.name, role, *args], image.env, timeout=timeout)  # fmt: skip
    finally:
        _remove(name, image)


def test_image_is_small_non_root_and_carries_no_secret(image: Image) -> None:
    inspected = json.loads(_run(["podman", "image", "inspect", image.name], image.env).stdout)[0]
    assert inspected["Size"] <= MAX_IMAGE_BYTES, f"{inspected['Size'] / 1e6:.0f} MB"
    config = inspected["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"][:2] == ["/usr/bin/tini", "--"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert not {"SECRET_KEY", "CONTENT_KEY_SECRET", "LTI_KEY_PASSPHRASE"} & env.keys()
    assert env["STATIC_ROOT"] == "/app/staticfiles"
    # The build's throwaway values left nothing behind: no VAR_DIR, no secret file.
    result = _podman_run(image, "manage", "shell", "-c",
                         "import os; print(os.getuid(), sorted(os.listdir(os.environ['VAR_DIR'])))")  # fmt: skip
    assert result.stdout.strip().splitlines()[-1] == "10001 []"


def test_demo_serves_on_a_read_only_root_and_stops_on_sigterm(image: Image) -> None:
    """`podman run -p 8000:8000 IMAGE` as the README says, read-only: the embedded default comes up,
    serves the site, and `podman stop` ends it through the supervisor, not by SIGKILL."""
    name, port = f"{image.prefix}-demo", _free_port()
    try:
        _run(["podman", "run", "--detach", f"--name={name}", "--read-only", "--tmpfs=/tmp",
              f"--publish=127.0.0.1:{port}:8000", "--env=RUN_SEED_DEMO=0", image.name], image.env)  # fmt: skip
        _wait_for_status(f"http://127.0.0.1:{port}/readyz", 200, timeout=240, container=name, image=image)
        status, page = _get(f"http://127.0.0.1:{port}/")
        assert status == 200, page[:500]
        # The static files collected into the image at build time are served (by their hashed names).
        stylesheet = re.search(rb'href="(/static/[^"]+\.css)"', page)
        assert stylesheet, page[:2000]
        assert _get(f"http://127.0.0.1:{port}{stylesheet.group(1).decode()}")[0] == 200
        # tini is PID 1 and the supervisor its child: signals reach it.
        assert _run(["podman", "exec", name, "cat", "/proc/1/comm"], image.env).stdout.strip() == "tini"
        code, seconds = _stop(name, image)
        logs = _run(["podman", "logs", name], image.env).stdout
        assert code == 0, logs[-3000:]
        assert seconds < 25, f"stopped after {seconds:.1f} s"
        assert "run: stopped" in logs
        print(f"\ndemo: stopped in {seconds:.1f} s")
    finally:
        _remove(name, image)


def test_manage_check_migrate_and_qoe_roles(image: Image) -> None:
    """`manage check`; `migrate` into a volume (the embedded SQLite); then the QoE roles on that
    database and the suite's Redis: the drain drains, the live publisher runs until SIGTERM."""
    check = _podman_run(image, "manage", "check")
    assert "System check identified no issues" in check.stdout + check.stderr
    volume = f"{image.prefix}-var"
    on_volume = (f"--volume={volume}:/var/lib/lessons", "--network=host", f"--env=REDIS_URL={settings.REDIS_URL}")
    live = f"{image.prefix}-qoe-live"
    try:
        migrate = _podman_run(image, "migrate", options=on_volume)
        assert "Applying courses.0001_initial... OK" in migrate.stdout, migrate.stdout[-2000:]
        assert _podman_run(image, "manage", "migrate", "--check", options=on_volume).returncode == 0
        drained = _podman_run(image, "qoe-drain", "--once", options=on_volume)
        assert re.search(r"stored \d+ event\(s\)", drained.stdout), drained.stdout + drained.stderr
        _run(["podman", "run", "--detach", f"--name={live}", "--read-only", "--tmpfs=/tmp", *SECRET_OPTIONS,
              *on_volume, image.name, "qoe-live"], image.env)  # fmt: skip
        # Python's default for SIGTERM ends the publisher at once: tini reports it as 143 (128 + 15).
        code, seconds = _stop(live, image)
        assert code in (0, 143) and seconds < 25, (code, seconds, _run(["podman", "logs", live], image.env).stderr)
    finally:
        _remove(live, image)
        _run(["podman", "volume", "rm", "--force", volume], image.env, check=False)


def test_beacons_role_answers_the_beacon_endpoint_and_nothing_else(image: Image) -> None:
    """On the host network with the suite's Redis: a signed batch is accepted (202) into the stream,
    other paths answer 404, /readyz checks Redis."""
    name, port = f"{image.prefix}-beacons", _free_port()
    try:
        _run(["podman", "run", "--detach", f"--name={name}", "--read-only", "--tmpfs=/tmp", "--network=host",
              f"--env=PORT={port}", "--env=BIND=127.0.0.1", f"--env=REDIS_URL={settings.REDIS_URL}",
              f"--env=VIEW_TOKEN_SECRET={settings.VIEW_TOKEN_SECRET}", *SECRET_OPTIONS, image.name, "beacons"],
             image.env)  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        _wait_for_status(f"{base}/readyz", 200, timeout=120, container=name, image=image)
        status, answer = _get(f"{base}/api/v1/qoe/events/", data=beacon_body())
        assert (status, json.loads(answer)) == (202, {"accepted": 4})
        assert _get(f"{base}/api/v1/qoe/events/")[0] == 405
        for path in ("/", "/admin/", "/api/v1/courses/", "/static/css/site.css"):
            assert _get(f"{base}{path}")[0] == 404, path
        assert _get(f"{base}/healthz")[0] == 200
        status, metrics = _get(f"{base}/metrics")
        assert status == 200 and b"qoe_beacon_events_total" in metrics
        code, seconds = _stop(name, image)
        assert code == 0 and seconds < 25, (code, seconds)
    finally:
        _remove(name, image)


def test_worker_role_starts_with_its_queues_and_stops_cleanly(image: Image) -> None:
    name = f"{image.prefix}-worker"
    try:
        _run(["podman", "run", "--detach", f"--name={name}", "--read-only", "--tmpfs=/tmp", "--network=host",
              f"--env=REDIS_URL={settings.REDIS_URL}", *SECRET_OPTIONS, image.name,
              "worker", "--queues", "quick", "--processes", "1", "--threads", "1"], image.env)  # fmt: skip
        _wait_for_log(name, "is ready for action", timeout=120, image=image)
        code, seconds = _stop(name, image)
        logs = _run(["podman", "logs", name], image.env)
        assert code == 0 and seconds < 25, (code, seconds, logs.stderr[-2000:])
    finally:
        _remove(name, image)
