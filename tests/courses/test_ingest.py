"""`manage.py ingest` end to end: the real broker, an in-process worker, real storage."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from dramatiq import Worker

from courses.models import Course, Lesson
from media_pipeline.models import AssetStatus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def course() -> Course:
    return Course.objects.create(slug="physics", title="Physics", published=True)


def test_ingest_wait_publishes_and_prints_the_public_id_last(
    course: Course, demo_clip: Path, dramatiq_worker: Worker
) -> None:
    out = io.StringIO()
    call_command(
        "ingest", str(demo_clip), "--course", "physics", "--title", "Waves", "--wait", "--timeout", "240", stdout=out
    )
    last_line = out.getvalue().strip().splitlines()[-1]
    lesson = Lesson.objects.select_related("asset").get(public_id=uuid.UUID(last_line))
    assert lesson.title == "Waves"
    assert lesson.course == course
    assert lesson.asset.status == AssetStatus.READY
    assert lesson.asset.published_version == 1
    assert lesson.asset.duration_seconds == pytest.approx(6.0, abs=0.2)


def test_ingest_wait_rejects_a_file_that_is_not_video(course: Course, tmp_path: Path, dramatiq_worker: Worker) -> None:
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("these are lecture notes, not a video\n" * 50)
    with pytest.raises(CommandError) as excinfo:
        call_command("ingest", str(bogus), "--course", "physics", "--title", "Notes", "--wait", "--timeout", "120")
    assert str(excinfo.value).startswith("rejected: ")
    lesson = Lesson.objects.select_related("asset").get(title="Notes")
    assert lesson.asset.status == AssetStatus.FAILED
    assert lesson.asset.published_version is None


def test_ingest_refuses_unknown_course_and_creates_nothing(tmp_path: Path) -> None:
    clip = tmp_path / "a.mp4"
    clip.write_bytes(b"x")
    with pytest.raises(CommandError, match="course 'nope' does not exist"):
        call_command("ingest", str(clip), "--course", "nope", "--title", "T")
    assert Lesson.objects.count() == 0


def test_ingest_refuses_empty_file(course: Course, tmp_path: Path) -> None:
    clip = tmp_path / "empty.mp4"
    clip.touch()
    with pytest.raises(CommandError, match="the file is empty"):
        call_command("ingest", str(clip), "--course", "physics", "--title", "T")
    assert Lesson.objects.count() == 0


def test_ingest_protected_publishes_an_encrypted_version(
    course: Course, tmp_path: Path, dramatiq_worker: Worker
) -> None:
    from tests.conftest import make_clip

    clip = make_clip(tmp_path / "short.mp4", seconds=3, size="320x180")
    out = io.StringIO()
    call_command(
        "ingest", str(clip), "--course", "physics", "--title", "Paid", "--protected", "--wait", "--timeout", "120",
        stdout=out,
    )  # fmt: skip
    lesson = Lesson.objects.select_related("asset").get(public_id=uuid.UUID(out.getvalue().strip().splitlines()[-1]))
    assert lesson.protected is True
    assert lesson.asset.status == AssetStatus.READY
    assert lesson.asset.published_kid == lesson.asset.content_keys.get(version=1).kid
