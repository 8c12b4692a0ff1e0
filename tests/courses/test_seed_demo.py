from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from pytest_django import Settings

from courses.models import Course, Enrollment, Lesson
from media_pipeline import storage

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_course_learner_and_lesson_once(settings: Settings, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path
    admin = User.objects.create_superuser("admin", password="pw-admin-123456")

    out = io.StringIO()
    call_command("seed_demo", "--no-wait", stdout=out)

    course = Course.objects.get(slug="welcome")
    assert course.published is True
    assert list(course.educators.all()) == [admin]
    learner = User.objects.get(username="learner")
    password = (tmp_path / "learner-password").read_text().strip()
    assert learner.check_password(password)
    assert Enrollment.objects.filter(user=learner, course=course).count() == 1
    lesson = Lesson.objects.select_related("asset").get(course=course)
    assert lesson.asset.source_name == "demo-lecture.mp4"
    assert lesson.asset.source_size > 100_000
    assert storage.size(lesson.asset.source_key) == lesson.asset.source_size
    assert out.getvalue().strip().splitlines()[-1] == f"Learner login: learner / {password}"

    # A second run changes nothing and keeps the same password.
    call_command("seed_demo", "--no-wait", stdout=io.StringIO())
    assert Course.objects.count() == 1
    assert Lesson.objects.count() == 1
    assert Enrollment.objects.count() == 1
    assert Lesson.objects.get().asset.source_key == lesson.asset.source_key
    assert (tmp_path / "learner-password").read_text().strip() == password
