"""Real Dramatiq worker processes for tests: `manage.py rundramatiq` on the test's database, killed as a
machine dies (SIGKILL to its whole process group, its ffmpeg included), and a wait on a condition.

Shared by the tests that kill workers mid-step (tests/media_pipeline/test_chunked_workers.py,
test_provisional_workers.py); their `workers` fixture is in tests/media_pipeline/conftest.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

from tests.conftest import under_harness

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


class WorkerProcess:
    """`manage.py rundramatiq` in a process group of its own, on this test's database; one process, one
    thread (and every queue unless ``queues`` names some)."""

    def __init__(self, env: dict[str, str], log: Path, *, queues: tuple[str, ...] = ()) -> None:
        self.log = log.open("ab")
        command = [sys.executable, "manage.py", "rundramatiq", "--processes", "1", "--threads", "1"]
        if queues:
            command += ["--queues", *queues]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def freeze(self) -> None:
        """SIGSTOP the worker and everything it started: what it stored stays as it is until thaw()."""
        os.killpg(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.killpg(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL the worker and everything it started (its ffmpeg too): a machine that died."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        self.log.close()


def worker_environment(work_dir: Path, **settings: str) -> dict[str, str]:
    """This process's environment for a worker on the test database pytest-django made (not the
    harness's empty one), with its own MEDIA_WORK_DIR and ``settings`` on top. Skips outside the harness."""
    if not under_harness():
        pytest.skip("needs the services of tests/harness.py")
    url = urlsplit(os.environ["DATABASE_URL"])
    work_dir.mkdir(exist_ok=True)
    return {
        **os.environ,
        "DATABASE_URL": urlunsplit(url._replace(path="/" + connection.settings_dict["NAME"])),
        "MEDIA_WORK_DIR": str(work_dir),
        # A worker holds only the message it is running: the rest stay in the queue for the others.
        "dramatiq_queue_prefetch": "1",
        **settings,
    }


def wait_for(condition: Callable[[], T], *, timeout: float, what: str) -> T:
    """``condition()``'s first truthy value, polled every 0.1 s; AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
