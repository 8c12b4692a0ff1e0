from __future__ import annotations

import io
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import User

from courses.models import Course, Enrollment, Lesson
from media_pipeline import storage
from media_pipeline.models import MediaAsset

SEGMENT = bytes(range(256)) * 40  # 10,240 bytes
FILES = {
    "master.m3u8": b"#EXTM3U\n#EXT-X-VERSION:7\n",
    "manifest.mpd": b'<?xml version="1.0"?><MPD/>\n',
    "poster.jpg": b"\xff\xd8\xff\xe0poster",
    "captions/en.vtt": b"WEBVTT\n",
    "video_360p/init.mp4": b"\x00\x00\x00\x18ftypiso6",
    "video_360p/1.m4s": SEGMENT,
}


@dataclass
class World:
    course: Course
    lesson: Lesson
    asset: MediaAsset
    learner: User
    stranger: User
    staff: User
    educator: User
    admin: User

    @property
    def prefix(self) -> str:
        return f"lessons/{self.lesson.public_id}/v1/"


@pytest.fixture
def world(db) -> World:  # type: ignore[no-untyped-def]
    """A published course with one published lesson whose version 1 is on storage."""
    course = Course.objects.create(slug="course", title="Course", published=True)
    lesson = Lesson.objects.create(course=course, title="Lesson", position=0)
    asset = MediaAsset.objects.create(
        key_prefix=f"lessons/{lesson.public_id}",
        status="ready",
        published_version=1,
        building_version=1,
        duration_seconds=6.0,
    )
    lesson.asset = asset
    lesson.save()
    for name, data in FILES.items():
        storage.save_stream(key=f"{asset.key_prefix}/v1/{name}", stream=io.BytesIO(data))
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
        # Every educator is staff (for the admin); staff alone is no entitlement.
        staff=User.objects.create_user("staff", password="pw-staff-123", is_staff=True),
        educator=educator,
        admin=User.objects.create_superuser("root", password="pw-root-123456"),
    )
