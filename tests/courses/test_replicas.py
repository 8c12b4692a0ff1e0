"""Where a lesson's video is stored, per version and region: admin, API, and deletion from the admin."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from courses.models import Course, Lesson
from media_pipeline.models import AssetStatus, MediaAsset, ReplicaState, VersionReplica


@pytest.fixture
def lesson(db: None) -> Lesson:
    course = Course.objects.create(slug="c", title="C", published=True)
    lesson = Lesson.objects.create(course=course, title="L", position=0)
    lesson.asset = MediaAsset.objects.create(
        key_prefix=f"lessons/{lesson.public_id}", status=AssetStatus.READY, published_version=2, building_version=2
    )
    lesson.save()
    now = timezone.now()
    for prefix, region, state, copied, error in (
        (f"lessons/{lesson.public_id}/v2/", "default", ReplicaState.COMPLETE, 20, ""),
        (f"lessons/{lesson.public_id}/v2/", "us", ReplicaState.DEGRADED, 7, "EndpointConnectionError: down"),
        (f"lessons/{lesson.public_id}/v1/", "default", ReplicaState.DELETED, 0, ""),
    ):
        VersionReplica.objects.create(
            asset=lesson.asset, prefix=prefix, region=region, state=state, objects_copied=copied, objects_total=20,
            last_error=error, available_at=now,
        )  # fmt: skip
    return lesson


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _educator(lesson: Lesson) -> User:
    user = User.objects.create_user("teacher", password="pw-teacher-1", is_staff=True)
    lesson.course.educators.add(user)
    return user


def test_educators_see_each_versions_state_per_region_in_the_api(lesson: Lesson) -> None:
    url = f"/api/v1/lessons/{lesson.public_id}/replicas/"
    assert Client().get(url).status_code == 403
    learner = User.objects.create_user("learner", password="pw-learner-1")
    assert _client(learner).get(url).status_code == 403
    educator = _client(_educator(lesson))
    response = educator.get(url)
    assert response.status_code == 200
    rows = [
        (row["version"], row["region"], row["state"], row["objects_copied"], row["serving"]) for row in response.json()
    ]
    assert sorted(rows) == [("v2", "default", "complete", 20, True), ("v2", "us", "degraded", 7, True)]
    us = next(row for row in response.json() if row["region"] == "us")
    assert us["last_error"] == "EndpointConnectionError: down"
    missing = "/api/v1/lessons/00000000-0000-0000-0000-000000000000/replicas/"
    assert educator.get(missing).status_code == 404


def test_the_admin_lesson_page_and_its_status_poll_show_the_regions(lesson: Lesson) -> None:
    client = _client(_educator(lesson))
    page = client.get(f"/admin/courses/lesson/{lesson.pk}/change/").content.decode()
    assert "v2 in us: Region unreachable or incomplete, retrying (7/20 objects) - EndpointConnectionError: down" in page
    assert "v2 in default: Complete and verified (20/20 objects)" in page
    status = client.get(f"/admin/courses/lesson/{lesson.pk}/status/").json()
    assert {(row["region"], row["state"]) for row in status["regions"]} == {("default", "complete"), ("us", "degraded")}


def test_deleting_a_lesson_in_the_admin_schedules_its_objects_for_deletion_in_every_region(lesson: Lesson) -> None:
    client = _client(_educator(lesson))
    asset = lesson.asset
    response = client.post(f"/admin/courses/lesson/{lesson.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Lesson.objects.filter(pk=lesson.pk).exists()
    assert not MediaAsset.objects.filter(pk=asset.pk).exists()
    deleting = set(VersionReplica.objects.filter(state=ReplicaState.DELETING).values_list("prefix", "region"))
    # Every version ever built, the originals and the build's work objects (in the primary, where
    # builds write them), in every region (one configured here: "default"). (v1 was already deleted;
    # "us" is not configured any more but held a copy, so it is cleaned too.)
    assert deleting == {
        (f"lessons/{lesson.public_id}/v2/", "default"),
        (f"lessons/{lesson.public_id}/v2/", "us"),
        (f"lessons/{lesson.public_id}/work/", "default"),
        (f"sources/{asset.public_id}/", "default"),
    }
