"""courses/lesson_row.py writes the lesson query out once per process: it must give exactly what the
ORM gives, on PostgreSQL (the harness) and on SQLite (the embedded default of `make run`)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import connection, models
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pytest_django import Settings

from config.secret_files import embedded_secrets_create
from courses import selectors
from courses.models import Course, Enrollment, Lesson
from media_pipeline.models import MediaAsset, ReplicaState, VersionReplica
from media_pipeline.selectors import asset_complete_regions

ROOT = Path(__file__).resolve().parents[2]


def _fields(instance: models.Model) -> dict[str, object]:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


@pytest.fixture
def lesson(db: None) -> Lesson:
    course = Course.objects.create(slug="row", title="Row", published=True, description="d")
    asset = MediaAsset.objects.create(
        key_prefix=f"lessons/{uuid.uuid4()}", status="ready", published_version=3, building_version=3,
        duration_seconds=61.5, width=1280, height=720, probe={"fps": 25.0, "has_audio": True},
        ladder=[{"name": "720p"}], published_kid=uuid.uuid4(), published_at=timezone.now(), protected=True,
    )  # fmt: skip
    return Lesson.objects.create(course=course, title="L", asset=asset, public=True, protected=True, position=4)


def test_the_same_instances_as_the_orm(lesson: Lesson) -> None:
    reference = Lesson.objects.select_related("course", "asset").get(pk=lesson.pk)
    with CaptureQueriesContext(connection) as queries:
        fetched = selectors.lesson_get(public_id=str(lesson.public_id))
        assert fetched is not None
        assert _fields(fetched) == _fields(reference)
        assert _fields(fetched.course) == _fields(reference.course)
        assert fetched.asset is not None and _fields(fetched.asset) == _fields(reference.asset)
        assert fetched.asset.lesson is fetched  # the reverse side is set too, as select_related does
    assert len(queries) == 1
    assert fetched._state.adding is False and fetched._state.db == "default"
    fetched.title = "Renamed"
    fetched.save()  # a fetched lesson is a normal instance
    assert Lesson.objects.get(pk=lesson.pk).title == "Renamed"


def test_a_lesson_without_video_and_unknown_ids(lesson: Lesson) -> None:
    bare = Lesson.objects.create(course=lesson.course, title="No video")
    fetched = selectors.lesson_get(public_id=bare.public_id)
    assert fetched is not None and fetched.asset is None and fetched.course.slug == "row"
    assert selectors.lesson_get(public_id=uuid.uuid4()) is None
    assert selectors.lesson_get(public_id="not-a-uuid") is None
    assert selectors.lesson_get(public_id="") is None


def test_region_states_come_with_the_lesson(lesson: Lesson, settings: Settings) -> None:
    settings.STORAGE_REGIONS = [
        {"name": "eu", "backend": "local", "primary": True},
        {"name": "us", "backend": "local"},
        {"name": "ap", "backend": "local"},
    ]
    asset = lesson.asset
    assert asset is not None
    prefix = asset.published_prefix
    for region, state in (("us", ReplicaState.COMPLETE), ("ap", ReplicaState.COPYING)):
        VersionReplica.objects.create(
            asset=asset, prefix=prefix, region=region, state=state, available_at=timezone.now()
        )
    # An older version's rows must not count for the published one.
    VersionReplica.objects.create(
        asset=asset,
        prefix=asset.version_prefix(2),
        region="ap",
        state=ReplicaState.COMPLETE,
        available_at=timezone.now(),
    )
    fetched = selectors.lesson_get(public_id=lesson.public_id)
    assert fetched is not None and fetched.asset is not None
    with CaptureQueriesContext(connection) as queries:
        assert asset_complete_regions(asset=fetched.asset) == ["eu", "us"]
    assert len(queries) == 0
    assert asset_complete_regions(asset=MediaAsset.objects.get(pk=asset.pk)) == ["eu", "us"]  # the separate query


SQLITE_SCRIPT = """
import uuid
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth.models import User
from django.utils import timezone
from courses import selectors
from courses.models import Course, Enrollment, Lesson
from media_pipeline.models import MediaAsset, ReplicaState, VersionReplica
from media_pipeline.regions import region_primary
from media_pipeline.selectors import asset_complete_regions
from playback.access import can_watch

course = Course.objects.create(slug="c", title="C", published=True)
asset = MediaAsset.objects.create(key_prefix="lessons/x", status="ready", published_version=2, building_version=2,
                                  published_kid=uuid.uuid4(), probe={"a": [1, 2]}, published_at=timezone.now())
lesson = Lesson.objects.create(course=course, title="L", asset=asset)
learner = User.objects.create_user("learner")
stranger = User.objects.create_user("stranger")
Enrollment.objects.create(user=learner, course=course)
VersionReplica.objects.create(asset=asset, prefix="lessons/x/v2/", region=region_primary().name,
                              state=ReplicaState.DEGRADED, available_at=timezone.now())
reference = Lesson.objects.select_related("course", "asset").get(pk=lesson.pk)
fetched = selectors.lesson_get(public_id=lesson.public_id, viewer=learner)
fields = lambda o: {f.attname: getattr(o, f.attname) for f in o._meta.concrete_fields}
assert fields(fetched) == fields(reference) and fields(fetched.asset) == fields(reference.asset)
assert fields(fetched.course) == fields(reference.course)
assert (fetched.viewer_teaches, fetched.viewer_enrolled, fetched.viewer_launched) == (False, True, False)
assert asset_complete_regions(asset=fetched.asset) == []  # the only copy is damaged
VersionReplica.objects.update(state=ReplicaState.COMPLETE)
fetched = selectors.lesson_get(public_id=lesson.public_id, viewer=learner)
assert asset_complete_regions(asset=fetched.asset) == [region_primary().name]
assert can_watch(user=learner, lesson=fetched).allowed
assert not can_watch(user=stranger, lesson=selectors.lesson_get(public_id=lesson.public_id, viewer=stranger)).allowed
print("sqlite ok")
"""


def test_the_same_on_sqlite(tmp_path: Path) -> None:
    """The embedded default runs on SQLite: the written-out SQL must work there too."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_URL", "DB_")) and key != "DJANGO_SETTINGS_MODULE"
    }
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", DJANGO_SETTINGS_MODULE="config.settings",
        VAR_DIR=str(tmp_path), PYTHONPATH=str(ROOT),
    )  # fmt: skip
    embedded_secrets_create(var_dir=tmp_path)  # what `make run` and the test harness do
    completed = subprocess.run(
        [sys.executable, "-c", SQLITE_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.strip().endswith("sqlite ok")


def test_viewer_facts_for_an_enrolled_learner(lesson: Lesson) -> None:
    learner = User.objects.create_user("row-learner")
    fetched = selectors.lesson_get(public_id=lesson.public_id, viewer=learner)
    assert fetched is not None and not fetched.viewer_enrolled  # type: ignore[attr-defined]  # set by lesson_get on this instance
    Enrollment.objects.create(user=learner, course=lesson.course)
    fetched = selectors.lesson_get(public_id=lesson.public_id, viewer=learner)
    # lesson_get sets the viewer facts on this instance only: not model fields.
    assert fetched is not None and fetched.viewer_enrolled and not fetched.viewer_teaches  # type: ignore[attr-defined]
