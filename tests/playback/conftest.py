from __future__ import annotations

import io
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import User

from courses.models import Course, Enrollment, Lesson
from media_pipeline import storage
from media_pipeline.models import MediaAsset

SEGMENT = bytes(range(256)) * 40  # 10,240 bytes


@dataclass
class World:
    course: Course
    lesson: Lesson
    asset: MediaAsset
    learner: User
    stranger: User
    educator: User
    other_educator: User
    admin: User


@pytest.fixture
def world(db, key_prefix: str) -> World:  # type: ignore[no-untyped-def]
    asset = MediaAsset.objects.create(
        key_prefix=key_prefix, status="ready", published_version=1, building_version=1, duration_seconds=6.0
    )
    prefix = asset.published_prefix
    storage.save_stream(key=prefix + "master.m3u8", stream=io.BytesIO(b"#EXTM3U\n"))
    storage.save_stream(key=prefix + "video_360p/1.m4s", stream=io.BytesIO(SEGMENT))
    course = Course.objects.create(slug=f"c-{asset.pk}", title="Course", published=True)
    lesson = Lesson.objects.create(course=course, title="Lesson", position=0, asset=asset)
    learner = User.objects.create_user("learner", password="pw-learner-123")
    Enrollment.objects.create(user=learner, course=course)
    educator = User.objects.create_user("educator", password="pw-educator-123", is_staff=True)
    course.educators.add(educator)
    return World(
        course=course,
        lesson=lesson,
        asset=asset,
        learner=learner,
        stranger=User.objects.create_user("stranger", password="pw-stranger-123"),
        educator=educator,
        other_educator=User.objects.create_user("other", password="pw-other-123", is_staff=True),
        admin=User.objects.create_superuser("root", password="pw-root-123456"),
    )
