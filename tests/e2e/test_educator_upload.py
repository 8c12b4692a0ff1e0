"""The newcomer's path: an educator uploads a phone video in the admin, watches it become ready,
previews it, and an enrolled learner plays it. On a lesson's page the upload is resumable (tus)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from dramatiq import Worker
from playwright.sync_api import Page, Route
from pytest_django import Settings
from pytest_django.live_server_helper import LiveServer

from courses.models import Course, Enrollment, Lesson
from media_pipeline import storage
from media_pipeline.models import ResumableUpload
from tests.conftest import make_phone_clip
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_educator_uploads_in_the_admin_and_a_learner_watches(
    live_server: LiveServer, dramatiq_worker: Worker, new_page: Callable[[], Page], tmp_path: Path
) -> None:
    User.objects.create_superuser("admin", password="pw-admin-123456")
    course = Course.objects.create(slug="chem", title="Chemistry", published=True)
    learner = User.objects.create_user("ada", password="pw-ada-123456")
    Enrollment.objects.create(user=learner, course=course)

    admin = new_page()
    admin.goto(f"{live_server.url}/admin/login/?next=/admin/")
    admin.fill("#id_username", "admin")
    admin.fill("#id_password", "pw-admin-123456")
    admin.click("input[type=submit]")
    admin.goto(f"{live_server.url}/admin/courses/lesson/add/")
    admin.select_option("#id_course", label="Chemistry")
    admin.fill("#id_title", "Titration by phone")
    admin.set_input_files("#id_video", str(make_phone_clip(tmp_path / "IMG_0042.mp4", seconds=8)))
    admin.click("input[name=_continue]")

    # The change page shows the processing state live and reloads with a preview once playable.
    admin.wait_for_selector("#lesson-status")
    admin.wait_for_selector("#lesson-video", timeout=120_000)
    assert admin.inner_text("#lesson-status") == "Ready"
    admin.wait_for_function("document.getElementById('lesson-video').currentTime > 3", timeout=30_000)
    assert admin.evaluate("window.lessonPlayer.fatalErrors") == []

    lesson = Lesson.objects.select_related("asset").get(title="Titration by phone")
    assert (lesson.asset.width, lesson.asset.height) == (360, 640)

    learner_page = new_page()
    log_in(learner_page, live_server.url, "ada", "pw-ada-123456")
    learner_page.goto(f"{live_server.url}/lessons/{lesson.public_id}/")
    learner_page.wait_for_function("document.getElementById('lesson-video').currentTime > 3", timeout=30_000)
    state = learner_page.evaluate(
        "(() => { const v = document.getElementById('lesson-video');"
        " return {fatal: window.lessonPlayer.fatalErrors, w: v.videoWidth, h: v.videoHeight}; })()"
    )
    assert state["fatal"] == []
    assert state["h"] > state["w"]  # plays in portrait


def _admin_page(new_page: Callable[[], Page], live_server: LiveServer) -> Page:
    User.objects.create_superuser("admin", password="pw-admin-123456")
    page = new_page()
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "pw-admin-123456")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    return page


def test_the_admin_widget_uploads_with_tus_and_survives_a_dropped_connection(
    live_server: LiveServer,
    dramatiq_worker: Worker,
    new_page: Callable[[], Page],
    settings: Settings,
    tmp_path: Path,
) -> None:
    settings.UPLOAD_WIDGET_CHUNK_BYTES = 128 * 1024  # several PATCH requests from a small clip
    settings.UPLOAD_DIRECT = False  # S3 storage, but tus (tests/e2e/test_direct_upload.py has the direct path)
    course = Course.objects.create(slug="bio", title="Biology", published=True)
    lesson = Lesson.objects.create(course=course, title="Cells")
    clip = make_phone_clip(tmp_path / "IMG_0043.mp4", seconds=8)
    assert clip.stat().st_size > 3 * 128 * 1024

    admin = _admin_page(new_page, live_server)
    patches: list[str] = []

    def drop_the_second_patch(route: Route) -> None:
        if route.request.method == "PATCH":
            patches.append(route.request.headers["upload-offset"])
            if len(patches) == 2:
                route.abort("connectionreset")  # the network drops once, mid-upload
                return
        route.continue_()

    admin.route("**/api/v1/uploads/**", drop_the_second_patch)
    admin.goto(f"{live_server.url}/admin/courses/lesson/{lesson.pk}/change/")
    admin.set_input_files("#id_video", str(clip))
    # The widget resumes, completes, reloads the page, which then shows processing until playable.
    admin.wait_for_selector("#lesson-video", timeout=180_000)
    assert admin.inner_text("#lesson-status") == "Ready"

    assert patches[1] == patches[2]  # the dropped chunk was sent again from the server's offset
    upload = ResumableUpload.objects.get()
    assert (upload.status, upload.length, upload.filename) == ("completed", clip.stat().st_size, "IMG_0043.mp4")
    lesson.refresh_from_db()
    asset = lesson.asset
    assert (asset.source_key, asset.building_version, asset.published_version) == (upload.storage_key, 1, 1)
    assert hashlib.sha256(b"".join(storage.open_range(key=asset.source_key, start=0, end=asset.source_size - 1))
                          ).hexdigest() == hashlib.sha256(clip.read_bytes()).hexdigest()  # fmt: skip
    assert (asset.width, asset.height) == (360, 640)


def test_the_admin_widget_shows_why_an_upload_is_refused(
    live_server: LiveServer, new_page: Callable[[], Page], settings: Settings, tmp_path: Path
) -> None:
    settings.MAX_UPLOAD_BYTES = 1000
    course = Course.objects.create(slug="geo", title="Geography", published=True)
    lesson = Lesson.objects.create(course=course, title="Rivers")
    video = tmp_path / "river.mp4"
    video.write_bytes(b"\0" * 2000)

    admin = _admin_page(new_page, live_server)
    admin.goto(f"{live_server.url}/admin/courses/lesson/{lesson.pk}/change/")
    admin.set_input_files("#id_video", str(video))
    admin.wait_for_function("window.lessonUpload.state === 'failed'", timeout=30_000)
    assert admin.inner_text("#upload-status") == (
        "Upload failed: The file is 2.0 KB; the largest upload allowed is 1000 bytes."
    )
    assert admin.evaluate("window.lessonUpload.transport") == "direct"  # S3 storage: refused by the direct API
    assert ResumableUpload.objects.count() == 0
