"""The production ASGI application (config.serve, beacon app in front of Django) on 127.0.0.1, over a
committed world of courses, lessons and people, for the tests that prove the whole HTTP surface.

`served` starts one web process (`python -m config.serve`) per test module on the harness's
PostgreSQL test database (the rows below are committed, so the server's own connections see them),
and stops it by its PID. At the end the database is flushed, the world's storage emptied and the
beacon stream cleared: what the fuzzing wrote leaves nothing behind for later tests.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pytest_django import DjangoDbBlocker

from tests.conftest import _empty_storage_prefix, under_harness

ROOT = Path(__file__).resolve().parents[2]
TUS = {"Tus-Resumable": "1.0.0"}

# The people of the authorisation matrix; schemathesis runs as the first, third and fifth.
PRINCIPALS = ("anonymous", "stranger", "learner", "other_educator", "educator", "superuser")

FILES = {
    "master.m3u8": b"#EXTM3U\n#EXT-X-VERSION:7\n",
    "manifest.mpd": b'<?xml version="1.0"?><MPD/>\n',
    "poster.jpg": b"\xff\xd8\xff\xe0poster",
    "video_360p/init.mp4": b"\x00\x00\x00\x18ftypiso6",
    "video_360p/1.m4s": bytes(range(256)) * 8,
}


@dataclass
class Served:
    """The running server and the world it serves: ids to fill URL parameters with, a token and a
    logged-in session per user."""

    base: str
    log: Path
    course_slug: str
    other_course_slug: str
    lesson_id: str
    draft_lesson_id: str
    lesson_key_prefix: str
    open_course_slug: str = ""  # a third published course, for enrolling without changing the others
    tokens: dict[str, str] = field(default_factory=dict)  # principal -> DRF token key
    sessions: dict[str, str] = field(default_factory=dict)  # principal -> Django session key (logged in)
    uploads: dict[str, str] = field(default_factory=dict)  # purpose -> tus upload id (the educator's)

    def headers(self, principal: str) -> dict[str, str]:
        token = self.tokens.get(principal)
        return {"Authorization": f"Token {token}"} if token else {}

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _session_for(user: Any) -> str:
    """A logged-in Django session, as the login view would leave it."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return str(session.session_key)


def make_world() -> dict[str, object]:
    """Two published courses, a published lesson whose version 1 is on storage, a draft lesson, the
    six principals with API tokens, and tus and direct uploads of the educator's (for fuzzing, for DELETE, for
    the authorisation matrix). Returns what `Served` needs."""
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    from courses import services
    from courses.models import Course, Enrollment, Lesson, LessonState
    from media_pipeline import storage
    from media_pipeline.models import MediaAsset

    course = Course.objects.create(slug="proof-course", title="Proof course", published=True)
    other = Course.objects.create(slug="other-course", title="Other course", published=True)
    lesson = Lesson.objects.create(course=course, title="Published lesson", position=0)
    asset = MediaAsset.objects.create(
        key_prefix=f"lessons/{lesson.public_id}", status="ready", published_version=1, building_version=1,
        duration_seconds=6.0,
    )  # fmt: skip
    lesson.asset = asset
    lesson.save()
    for name, data in FILES.items():
        storage.save_stream(key=f"{asset.key_prefix}/v1/{name}", stream=io.BytesIO(data))
    draft = Lesson.objects.create(course=course, title="Draft lesson", position=1, state=LessonState.DRAFT)
    Lesson.objects.create(course=other, title="Other lesson", position=0)
    Course.objects.create(slug="open-course", title="Open course", published=True)

    users = {
        "stranger": User.objects.create_user("stranger", password="pw-stranger-123"),
        "learner": User.objects.create_user("learner", password="pw-learner-123"),
        # Every educator is staff (for the admin).
        "other_educator": User.objects.create_user("other_educator", password="pw-other-123", is_staff=True),
        "educator": User.objects.create_user("educator", password="pw-educator-123", is_staff=True),
        "superuser": User.objects.create_superuser("superuser", password="pw-superuser-123"),
    }
    Enrollment.objects.create(user=users["learner"], course=course)
    course.educators.add(users["educator"])
    other.educators.add(users["other_educator"])
    uploads = {
        purpose: str(
            services.lesson_upload_start(user=users["educator"], lesson=lesson, length=1024, filename="f.mp4").public_id
        )
        for purpose in ("fuzz", "delete", "matrix-delete")
    }
    for purpose in ("direct-fuzz", "direct-delete", "matrix-direct"):
        direct = services.lesson_upload_start(
            user=users["educator"], lesson=lesson, length=1024, filename="f.mp4", direct=True
        )
        uploads[purpose] = str(direct.public_id)
    return {
        "course_slug": course.slug,
        "other_course_slug": other.slug,
        "lesson_id": str(lesson.public_id),
        "draft_lesson_id": str(draft.public_id),
        "lesson_key_prefix": asset.key_prefix,
        "open_course_slug": "open-course",
        "tokens": {name: Token.objects.create(user=user).key for name, user in users.items()},
        "sessions": {name: _session_for(user) for name, user in users.items()},
        "uploads": uploads,
    }


def _database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def _wait_ready(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the web process exited during start-up:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as response:  # loopback only
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"the web process did not answer /healthz within 60 s:\n{tail}")


def _clear_beacons() -> None:
    from analytics import ingest

    client = ingest.client()
    client.delete(ingest.STREAM)
    for key in [*client.scan_iter("qoe:rl:*"), *client.scan_iter("qoe:live*")]:
        client.delete(key)


@pytest.fixture(scope="module")
def served(
    django_db_setup: None, django_db_blocker: DjangoDbBlocker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    if not under_harness():
        pytest.fail("needs the harness's PostgreSQL, Redis and S3: run it through tests/harness.py")
    from django.core.management import call_command

    from tests.harness import free_port

    tmp = tmp_path_factory.mktemp("served")
    with django_db_blocker.unblock():
        world = make_world()
    port = free_port()
    log = tmp / "web.log"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "DJANGO_SETTINGS_MODULE": "tests.security.served_settings",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        # One client makes every request: lift the per-client limits (their own tests check them).
        "THROTTLE_PLAYBACK_SESSION": "100000000/min",
        "THROTTLE_DRM_LICENSE": "100000000/min",
        "THROTTLE_DRM_KEY": "100000000/min",
        "QOE_RATE_LIMIT_BATCHES": "100000000",
        "MEDIA_PROVISIONAL": "0",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "config.serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base, process, log)
        yield Served(base=base, log=log, **world)  # type: ignore[arg-type]  # make_world's dict holds Served's other fields
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        with django_db_blocker.unblock():
            from media_pipeline import uploads
            from media_pipeline.models import ResumableUpload, UploadStatus

            for upload in ResumableUpload.objects.filter(status=UploadStatus.ACTIVE):
                try:
                    uploads.upload_terminate(upload=upload)
                except uploads.UploadError:
                    pass
            _empty_storage_prefix(str(world["lesson_key_prefix"]) + "/")
            _clear_beacons()
            call_command("flush", interactive=False, verbosity=0)
