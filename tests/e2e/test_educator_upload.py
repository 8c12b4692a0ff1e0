"""The newcomer's path: an educator uploads a phone video in the admin, watches it become ready,
previews it, and an enrolled learner plays it."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import User

from courses.models import Course, Enrollment, Lesson
from tests.conftest import make_phone_clip
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_educator_uploads_in_the_admin_and_a_learner_watches(
    live_server, dramatiq_worker, new_page, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
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
