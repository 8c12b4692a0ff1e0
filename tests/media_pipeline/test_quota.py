"""Replaced originals count against the quota until they are deleted, and are deleted once nothing
needs them (issue 13, finding 5). Assertions are on the real S3 objects of the harness."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from pytest_django import Settings

from courses.models import Course, Lesson
from courses.services import lesson_attach_video
from media_pipeline import replication, services, storage, uploads
from media_pipeline.models import AssetStatus, MediaAsset, ResumableUpload, UploadQuota, UploadStatus
from tests.pipeline_steps import record_sends

pytestmark = pytest.mark.django_db

SIZE = 100_000


@pytest.fixture
def educator() -> User:
    return User.objects.create_user("ada", password="pw-ada-123456", is_staff=True)


@pytest.fixture
def lesson(educator: User) -> Iterator[Lesson]:
    course = Course.objects.create(slug="quota", title="Quota")
    course.educators.add(educator)
    lesson = Lesson.objects.create(course=course, title="Week 1", position=0)
    yield lesson
    lesson.refresh_from_db()
    if lesson.asset_id:
        storage.delete_prefix(f"sources/{lesson.asset.public_id}/")


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    calls = record_sends(monkeypatch)
    monkeypatch.setattr(replication, "replicas_enqueue", lambda prefix=None: 0)
    return calls


def _upload(lesson: Lesson, educator: User, data: bytes) -> MediaAsset:
    """The admin's form upload: the quota is checked, then the original is stored and recorded."""
    uploads.check_quota(user=educator, length=len(data))
    lesson = lesson_attach_video(lesson=lesson, stream=io.BytesIO(data), source_name="week1.mp4", uploader=educator)
    return MediaAsset.objects.get(pk=lesson.asset_id)


def _sources(s3: Any, asset: MediaAsset) -> list[str]:
    listed = s3.list_objects_v2(Bucket=os.environ["S3_BUCKET"], Prefix=f"sources/{asset.public_id}/")
    return sorted(item["Key"] for item in listed.get("Contents", []))


def test_replaced_originals_count_until_the_quota_refuses_another_upload(
    s3: Any, lesson: Lesson, educator: User, sent
) -> None:
    UploadQuota.objects.create(user=educator, quota_bytes=int(2.5 * SIZE))
    first = _upload(lesson, educator, b"a" * SIZE)
    second = _upload(lesson, educator, b"b" * SIZE)
    assert second.source_key != first.source_key
    # Both originals are stored (the first is replaced, not deleted: no build of the second finished).
    assert _sources(s3, second) == sorted([first.source_key, second.source_key])
    assert uploads.quota_used(user=educator) == 2 * SIZE

    with pytest.raises(uploads.QuotaExceeded) as refused:
        _upload(lesson, educator, b"c" * SIZE)

    assert str(refused.value) == (
        "This file is 97.7 KB, but only 48.8 KB of your 244.1 KB storage quota is left. "
        "Delete videos you no longer need, or ask an administrator for more."
    )
    assert _sources(s3, second) == sorted([first.source_key, second.source_key])  # nothing stored
    assert ResumableUpload.objects.filter(owner=educator).count() == 2
    assert MediaAsset.objects.get(pk=second.pk).source_key == second.source_key


def test_the_tus_path_counts_replaced_originals_too(s3: Any, lesson: Lesson, educator: User, sent) -> None:
    UploadQuota.objects.create(user=educator, quota_bytes=int(2.5 * SIZE))
    asset = _upload(lesson, educator, b"a" * SIZE)
    _upload(lesson, educator, b"b" * SIZE)
    with pytest.raises(uploads.QuotaExceeded):
        uploads.upload_create(owner=educator, asset=asset, length=SIZE, filename="week1.mp4")
    assert ResumableUpload.objects.filter(owner=educator).count() == 2


def test_deleting_the_video_frees_its_originals(s3: Any, lesson: Lesson, educator: User, sent) -> None:
    asset = _upload(lesson, educator, b"a" * SIZE)
    _upload(lesson, educator, b"b" * SIZE)
    assert uploads.quota_used(user=educator) == 2 * SIZE
    replication.asset_delete(asset_id=asset.pk)
    assert uploads.quota_used(user=educator) == 0


def test_replaced_originals_are_deleted_once_the_new_one_is_published(
    s3: Any,
    lesson: Lesson,
    educator: User,
    demo_clip: Path,
    tmp_path: Path,
    settings: Settings,
    sent,
    django_capture_on_commit_callbacks,
) -> None:
    settings.MEDIA_PROVISIONAL = False
    settings.MEDIA_WORK_DIR = str(tmp_path)
    data = demo_clip.read_bytes()

    def upload_and_publish() -> MediaAsset:
        with django_capture_on_commit_callbacks(execute=True):
            asset = _upload(lesson, educator, data)
        for step in (services.asset_probe, services.asset_transcode, services.asset_publish):
            with django_capture_on_commit_callbacks(execute=True):
                step(asset_id=asset.pk)
        return MediaAsset.objects.get(pk=asset.pk)

    first = upload_and_publish()
    assert (first.status, first.published_version) == (AssetStatus.READY, 1)
    assert _sources(s3, first) == [first.source_key]

    # A new original arrives: while it is being built the old one stays (and counts).
    with django_capture_on_commit_callbacks(execute=True):
        second = _upload(lesson, educator, data)
    assert services.asset_collect_replaced_originals(asset_id=second.pk) == 0
    assert _sources(s3, second) == sorted([first.source_key, second.source_key])
    assert uploads.quota_used(user=educator) == 2 * len(data)
    for step in (services.asset_probe, services.asset_transcode, services.asset_publish):
        with django_capture_on_commit_callbacks(execute=True):
            step(asset_id=second.pk)

    second.refresh_from_db()
    assert (second.status, second.published_version) == (AssetStatus.READY, 2)
    assert _sources(s3, second) == [second.source_key]
    rows = dict(ResumableUpload.objects.filter(owner=educator).values_list("storage_key", "status"))
    assert rows == {first.source_key: UploadStatus.DISCARDED, second.source_key: UploadStatus.COMPLETED}
    assert uploads.quota_used(user=educator) == len(data)
    storage.delete_prefix(f"{second.key_prefix}/")


def test_the_sweep_deletes_replaced_originals_only_when_no_build_needs_them(
    s3: Any, lesson: Lesson, educator: User, sent
) -> None:
    first = _upload(lesson, educator, b"a" * SIZE)
    second = _upload(lesson, educator, b"b" * SIZE)
    # The second original is being built (status UPLOADED): nothing is collected.
    assert call_sweep() == "expired 0 upload(s), finished 0 upload(s)\n"
    assert _sources(s3, second) == sorted([first.source_key, second.source_key])

    # Its version published (as if the collection right after publishing had not run): collected.
    MediaAsset.objects.filter(pk=second.pk).update(status=AssetStatus.READY, published_version=2)
    assert call_sweep() == "expired 0 upload(s), finished 0 upload(s), collected 1 replaced original(s)\n"
    assert _sources(s3, second) == [second.source_key]
    assert uploads.quota_used(user=educator) == SIZE
    assert call_sweep() == "expired 0 upload(s), finished 0 upload(s)\n"  # again: nothing more


def call_sweep() -> str:
    out = io.StringIO()
    call_command("uploads_sweep", stdout=out)
    return out.getvalue()
