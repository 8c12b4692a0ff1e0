from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from courses.models import Course, Enrollment, Lesson
from media_pipeline import storage
from media_pipeline.models import MediaAsset, ReplicaState, VersionReplica
from media_pipeline.regions import region_get, store_for
from playback import health

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
def world(db: None) -> World:
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


@pytest.fixture
def regional_world(world: World, three_regions: list[dict[str, Any]]) -> Iterator[World]:
    """The world's v1 is complete in eu and ap (whose bucket really holds it) and pending in us."""
    for region, state in (("eu", ReplicaState.COMPLETE), ("us", ReplicaState.PENDING), ("ap", ReplicaState.COMPLETE)):
        VersionReplica.objects.create(
            asset=world.asset, prefix=world.prefix, region=region, state=state, available_at=timezone.now()
        )
    ap_region, eu_region = region_get("ap"), region_get("eu")
    assert ap_region is not None and eu_region is not None, "three_regions configures ap and eu"
    ap, eu = store_for(ap_region), store_for(eu_region)
    from tests.playback.test_steering import MASTER, MPD

    files = {**FILES, "master.m3u8": MASTER.encode(), "manifest.mpd": MPD.encode(), "files.json": b"{}"}
    for name, data in files.items():
        for store in (eu, ap):
            store.put(world.prefix + name, io.BytesIO(data), sha256="", content_type="application/octet-stream")
    health.health_forget()
    yield world
    ap.delete_prefix(f"{world.asset.key_prefix}/")
