"""Resumable uploads over tus 1.0.0, through the live server, with the Python client tuspy.

Storage is the harness's SeaweedFS (signature-checked S3) unless a test switches to a local folder.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import socket
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dramatiq
import pytest
import requests
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone
from pytest_django import Settings
from pytest_django.live_server_helper import LiveServer
from rest_framework.authtoken.models import Token
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError
from tusclient.uploader import Uploader

from courses.models import Course, Lesson
from media_pipeline import storage
from media_pipeline.models import AssetStatus, MediaAsset, ResumableUpload, UploadQuota, UploadStatus

pytestmark = pytest.mark.django_db(transaction=True)

MIB = 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture(autouse=True)
def _small_parts(settings: Settings) -> None:
    settings.UPLOAD_PART_BYTES = 5 * MIB  # S3's minimum: several parts from a small file


@pytest.fixture
def broker() -> Iterator[Any]:
    broker = dramatiq.get_broker()
    broker.flush_all()
    yield broker
    broker.flush_all()


def queued_actors(broker: Any, queue: str = "quick") -> list[str]:
    """The actor of every message waiting on a queue of the real Redis broker."""
    raw = broker.client.hvals(f"{broker.namespace}:{queue}.msgs")
    return sorted(json.loads(message)["actor_name"] for message in raw)


def educator(name: str, course: Course | None = None) -> tuple[User, dict[str, str]]:
    user = User.objects.create_user(name, password=f"pw-{name}-123456", is_staff=True)
    if course is not None:
        course.educators.add(user)
    return user, {"Authorization": f"Token {Token.objects.create(user=user).key}"}


@pytest.fixture
def lesson() -> Iterator[Lesson]:
    course = Course.objects.create(slug="physics", title="Physics")
    lesson = Lesson.objects.create(course=course, title="Waves")
    yield lesson
    for key in set(ResumableUpload.objects.values_list("storage_key", flat=True)):
        storage.delete_prefix(key.rsplit("/", 1)[0] + "/")
    storage.delete_prefix("uploads/spool/")


@pytest.fixture
def teacher(lesson: Lesson) -> tuple[User, dict[str, str]]:
    return educator("grace", lesson.course)


def uploader(live_server: LiveServer, auth: dict[str, str], lesson: Lesson, data: bytes, **options: Any) -> Uploader:
    client = tus_client.TusClient(f"{live_server.url}/api/v1/uploads/", headers=auth)
    return client.uploader(
        file_stream=io.BytesIO(data),
        metadata={"lesson": str(lesson.public_id), "filename": "../../etc/Week 1 <lecture>.mp4"},
        **options,
    )


def multipart_uploads(s3: Any, prefix: str) -> list[dict[str, Any]]:
    return s3.list_multipart_uploads(Bucket=os.environ["S3_BUCKET"], Prefix=prefix).get("Uploads", [])


def stored_bytes(s3: Any, key: str) -> bytes:
    return s3.get_object(Bucket=os.environ["S3_BUCKET"], Key=key)["Body"].read()


def create(live_server: LiveServer, auth: dict[str, str], lesson: Lesson, length: int) -> requests.Response:
    metadata = f"lesson {base64.b64encode(str(lesson.public_id).encode()).decode()}"
    return requests.post(
        f"{live_server.url}/api/v1/uploads/",
        headers={**TUS, **auth, "Upload-Length": str(length), "Upload-Metadata": metadata},
        timeout=30,
    )


def patch(url: str, auth: dict[str, str], offset: int, body: bytes, **headers: str) -> requests.Response:
    return requests.patch(
        url,
        data=body,
        headers={**TUS, **auth, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream",
                 **headers},
        timeout=30,
    )  # fmt: skip


def offset_of(url: str, auth: dict[str, str]) -> int:
    response = requests.head(url, headers={**TUS, **auth}, timeout=30)
    assert response.status_code == 200
    return int(response.headers["Upload-Offset"])


def test_options_advertise_version_extensions_max_size_and_checksums(
    live_server: LiveServer, settings: Settings
) -> None:
    response = requests.options(f"{live_server.url}/api/v1/uploads/", timeout=30)
    assert response.status_code == 204
    assert response.headers["Tus-Version"] == "1.0.0"
    assert response.headers["Tus-Extension"] == "creation,termination,checksum,expiration"
    assert response.headers["Tus-Max-Size"] == str(settings.MAX_UPLOAD_BYTES)
    assert response.headers["Tus-Checksum-Algorithm"] == "sha1,sha256,md5"
    # The probe reads no credentials: a stale or made-up token does not turn it into a 403
    # (schemathesis found this).
    stale = requests.options(
        f"{live_server.url}/api/v1/uploads/{uuid.uuid4()}", headers={"Authorization": "Token stale"}, timeout=30
    )
    assert stale.status_code == 204 and stale.headers["Tus-Version"] == "1.0.0"


def test_a_chunked_upload_lands_byte_identical_in_s3_and_starts_the_pipeline_once(
    live_server: LiveServer, s3: Any, broker: Any, lesson: Lesson, teacher: tuple[User, dict[str, str]]
) -> None:
    user, auth = teacher
    data = os.urandom(17 * MIB + 12345)  # three whole 5 MiB parts and a short last one
    upload = uploader(live_server, auth, lesson, data, chunk_size=3 * MIB, upload_checksum=True)
    upload.upload()

    row = ResumableUpload.objects.get()
    assert upload.url == f"{live_server.url}/api/v1/uploads/{row.public_id}"
    assert (row.status, row.offset, row.length, row.owner_id) == (UploadStatus.COMPLETED, len(data), len(data), user.pk)
    assert [part["n"] for part in row.parts] == [1, 2, 3, 4]
    assert row.filename == "Week 1 lecture.mp4"  # display only
    asset = MediaAsset.objects.get(pk=row.asset_id)
    assert asset.source_key == row.storage_key
    assert asset.source_key.startswith(f"sources/{asset.public_id}/") and "Week" not in asset.source_key
    assert (asset.status, asset.source_size, asset.source_name, asset.building_version) == (
        AssetStatus.UPLOADED, len(data), "Week 1 lecture.mp4", 1
    )  # fmt: skip
    assert hashlib.sha256(stored_bytes(s3, asset.source_key)).digest() == hashlib.sha256(data).digest()
    assert queued_actors(broker) == ["probe_asset"]  # the pipeline starts once
    assert multipart_uploads(s3, f"sources/{asset.public_id}/") == []
    assert s3.list_objects_v2(Bucket=os.environ["S3_BUCKET"], Prefix=f"uploads/spool/{row.public_id}/")["KeyCount"] == 0

    # The finished upload answers with its full offset; nothing more can be appended.
    assert offset_of(upload.url, auth) == len(data)
    assert patch(upload.url, auth, len(data), b"x").status_code == 400
    assert patch(upload.url, auth, 0, b"x").status_code == 409
    assert queued_actors(broker) == ["probe_asset"]


def test_a_dropped_connection_keeps_what_arrived_and_tuspy_resumes_from_the_servers_offset(
    live_server: LiveServer, s3: Any, broker: Any, lesson: Lesson, teacher: tuple[User, dict[str, str]]
) -> None:
    _, auth = teacher
    data = os.urandom(13 * MIB)
    response = create(live_server, auth, lesson, len(data))
    assert response.status_code == 201
    url = response.headers["Location"]

    # A PATCH announcing 10 MiB whose connection dies after 7.5 MiB (no checksum: keep what came).
    sent = 7 * MIB + MIB // 2
    target = urlsplit(url)
    with socket.create_connection((target.hostname, target.port), timeout=30) as conn:
        head = (
            f"PATCH {target.path} HTTP/1.1\r\nHost: {target.netloc}\r\nTus-Resumable: 1.0.0\r\n"
            f"Authorization: {auth['Authorization']}\r\nUpload-Offset: 0\r\n"
            f"Content-Type: application/offset+octet-stream\r\nContent-Length: {10 * MIB}\r\n\r\n"
        )
        conn.sendall(head.encode() + data[:sent])
        conn.shutdown(socket.SHUT_WR)
        conn.recv(4096)  # the server answers once it has read to the end of what came
    assert offset_of(url, auth) == sent
    row = ResumableUpload.objects.get()
    assert (len(row.parts), row.spool_key != "") == (1, True)  # one 5 MiB part, 2.5 MiB spooled

    # tuspy asks the server where to carry on (HEAD) and sends only the rest.
    resumed = tus_client.TusClient(f"{live_server.url}/api/v1/uploads/", headers=auth).uploader(
        file_stream=io.BytesIO(data), url=url, chunk_size=4 * MIB, upload_checksum=True
    )
    assert resumed.offset == sent
    resumed.upload()
    row.refresh_from_db()
    assert row.status == UploadStatus.COMPLETED
    assert stored_bytes(s3, row.storage_key) == data
    assert queued_actors(broker) == ["probe_asset"]


def test_a_checksum_mismatch_is_460_and_the_chunk_is_discarded(
    live_server: LiveServer, s3: Any, lesson: Lesson, teacher: tuple[User, dict[str, str]]
) -> None:
    _, auth = teacher
    data = os.urandom(12 * MIB)
    url = create(live_server, auth, lesson, len(data)).headers["Location"]
    good = base64.b64encode(hashlib.sha1(data[: 6 * MIB]).digest()).decode()
    bad = base64.b64encode(hashlib.sha1(b"something else").digest()).decode()

    assert patch(url, auth, 0, data[: 6 * MIB], **{"Upload-Checksum": f"sha1 {good}"}).status_code == 204
    row = ResumableUpload.objects.get()
    before = (row.offset, row.parts, row.spool_key)
    refused = patch(url, auth, 6 * MIB, data[6 * MIB :], **{"Upload-Checksum": f"sha1 {bad}"})
    assert refused.status_code == 460
    assert "checksum does not match" in refused.text
    row.refresh_from_db()
    assert (row.offset, row.parts, row.spool_key) == before
    assert offset_of(url, auth) == 6 * MIB

    unsupported = patch(url, auth, 6 * MIB, data[6 * MIB :], **{"Upload-Checksum": f"crc32 {good}"})
    assert unsupported.status_code == 400
    right = base64.b64encode(hashlib.sha1(data[6 * MIB :]).digest()).decode()
    assert patch(url, auth, 6 * MIB, data[6 * MIB :], **{"Upload-Checksum": f"sha1 {right}"}).status_code == 204
    row.refresh_from_db()
    assert stored_bytes(s3, row.storage_key) == data  # the refused bytes left no trace


def test_a_wrong_offset_is_409_and_changes_nothing(
    live_server: LiveServer, lesson: Lesson, teacher: tuple[User, dict[str, str]]
) -> None:
    _, auth = teacher
    url = create(live_server, auth, lesson, 1000).headers["Location"]
    assert patch(url, auth, 0, b"a" * 100).status_code == 204
    conflict = patch(url, auth, 50, b"b" * 100)
    assert conflict.status_code == 409
    assert conflict.text == "the upload is at byte 100, not 50"
    assert offset_of(url, auth) == 100
    assert patch(url, auth, 100, b"c" * 901).status_code == 400  # past Upload-Length
    assert offset_of(url, auth) == 100


def test_protocol_version_and_content_type_are_checked(
    live_server: LiveServer, lesson: Lesson, teacher: tuple[User, dict[str, str]]
) -> None:
    _, auth = teacher
    url = create(live_server, auth, lesson, 1000).headers["Location"]
    old = requests.head(url, headers={**auth, "Tus-Resumable": "0.2.2"}, timeout=30)
    assert (old.status_code, old.headers["Tus-Version"]) == (412, "1.0.0")
    assert requests.head(url, headers=auth, timeout=30).status_code == 412
    wrong_type = patch(url, auth, 0, b"a", **{"Content-Type": "application/octet-stream"})
    assert wrong_type.status_code == 415
    assert offset_of(url, auth) == 0


def test_other_users_cannot_create_continue_or_cancel(
    live_server: LiveServer, s3: Any, lesson: Lesson, teacher: tuple[User, dict[str, str]]
) -> None:
    _, auth = teacher
    url = create(live_server, auth, lesson, 1000).headers["Location"]
    assert patch(url, auth, 0, b"a" * 10).status_code == 204

    other_course = Course.objects.create(slug="art", title="Art")
    _, stranger = educator("mallory", other_course)  # an educator, but not of this course
    learner = User.objects.create_user("lea", password="pw-lea-123456")
    learner_auth = {"Authorization": f"Token {Token.objects.create(user=learner).key}"}
    _, colleague = educator("ada", lesson.course)  # teaches the course, but did not start this upload

    for someone in (stranger, learner_auth, colleague):
        assert requests.head(url, headers={**TUS, **someone}, timeout=30).status_code == 404
        assert patch(url, someone, 10, b"b" * 10).status_code == 404
        assert requests.delete(url, headers={**TUS, **someone}, timeout=30).status_code == 404
    assert create(live_server, stranger, lesson, 1000).status_code == 404
    assert create(live_server, learner_auth, lesson, 1000).status_code == 404
    assert requests.post(f"{live_server.url}/api/v1/uploads/", headers={**TUS, "Upload-Length": "10"}, timeout=30
                         ).status_code in (401, 403)  # fmt: skip

    row = ResumableUpload.objects.get()  # nothing changed, nothing else created
    assert (row.status, row.offset) == (UploadStatus.ACTIVE, 10)
    assert offset_of(url, auth) == 10


def test_over_quota_and_over_max_size_are_413_with_a_reason_and_store_nothing(
    live_server: LiveServer, s3: Any, settings: Settings, lesson: Lesson, teacher: tuple[User, dict[str, str]]
) -> None:
    user, auth = teacher
    settings.MAX_UPLOAD_BYTES = 50 * MIB
    too_big = create(live_server, auth, lesson, 50 * MIB + 1)
    assert too_big.status_code == 413
    assert too_big.text == "The file is 50.0 MB; the largest upload allowed is 50.0 MB."

    UploadQuota.objects.create(user=user, quota_bytes=30 * MIB)
    assert create(live_server, auth, lesson, 20 * MIB).status_code == 201  # reserves 20 MiB
    over = create(live_server, auth, lesson, 11 * MIB)
    assert over.status_code == 413
    assert over.text == (
        "This file is 11.0 MB, but only 10.0 MB of your 30.0 MB storage quota is left. "
        "Delete videos you no longer need, or ask an administrator for more."
    )
    assert ResumableUpload.objects.count() == 1
    lesson.refresh_from_db()
    assert len(multipart_uploads(s3, f"sources/{lesson.asset.public_id}/")) == 1  # only the admitted one

    # The setting is the default for everyone else.
    settings.UPLOAD_QUOTA_BYTES = 5 * MIB
    _, colleague = educator("ada", lesson.course)
    assert create(live_server, colleague, lesson, 6 * MIB).status_code == 413


def test_termination_aborts_the_multipart_upload_and_removes_the_spool(
    live_server: LiveServer, s3: Any, lesson: Lesson, teacher: tuple[User, dict[str, str]]
) -> None:
    _, auth = teacher
    data = os.urandom(8 * MIB)
    url = create(live_server, auth, lesson, 20 * MIB).headers["Location"]
    assert patch(url, auth, 0, data).status_code == 204  # one part stored, 3 MiB spooled
    row = ResumableUpload.objects.get()
    prefix = f"sources/{row.asset.public_id}/"
    assert len(multipart_uploads(s3, prefix)) == 1 and row.spool_key

    response = requests.delete(url, headers={**TUS, **auth}, timeout=30)
    assert response.status_code == 204
    assert multipart_uploads(s3, prefix) == []
    assert s3.list_objects_v2(Bucket=os.environ["S3_BUCKET"], Prefix="uploads/spool/")["KeyCount"] == 0
    assert requests.head(url, headers={**TUS, **auth}, timeout=30).status_code == 410
    assert patch(url, auth, 8 * MIB, b"x").status_code == 410
    assert ResumableUpload.objects.get().status == UploadStatus.TERMINATED


def test_the_sweep_aborts_expired_uploads(
    live_server: LiveServer, s3: Any, lesson: Lesson, teacher: tuple[User, dict[str, str]]
) -> None:
    _, auth = teacher
    url = create(live_server, auth, lesson, 20 * MIB).headers["Location"]
    assert patch(url, auth, 0, os.urandom(6 * MIB)).status_code == 204
    fresh = create(live_server, auth, lesson, 20 * MIB).headers["Location"]
    ResumableUpload.objects.filter(public_id=url.rsplit("/", 1)[1]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    out = io.StringIO()
    call_command("uploads_sweep", stdout=out)
    assert out.getvalue() == "expired 1 upload(s), finished 0 upload(s)\n"
    lesson.refresh_from_db()
    assert [u["UploadId"] for u in multipart_uploads(s3, f"sources/{lesson.asset.public_id}/")] == [
        ResumableUpload.objects.get(public_id=fresh.rsplit("/", 1)[1]).multipart_id
    ]
    assert requests.head(url, headers={**TUS, **auth}, timeout=30).status_code == 410
    assert offset_of(fresh, auth) == 0


def test_local_storage_appends_to_a_file_and_discards_a_bad_chunk(
    live_server: LiveServer,
    settings: Settings,
    tmp_path: Path,
    lesson: Lesson,
    teacher: tuple[User, dict[str, str]],
) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    _, auth = teacher
    data = os.urandom(3 * MIB + 7)
    url = create(live_server, auth, lesson, len(data)).headers["Location"]
    assert patch(url, auth, 0, data[:MIB]).status_code == 204
    bad = base64.b64encode(hashlib.sha1(b"nope").digest()).decode()
    assert patch(url, auth, MIB, data[MIB:], **{"Upload-Checksum": f"sha1 {bad}"}).status_code == 460
    row = ResumableUpload.objects.get()
    part = tmp_path / (row.storage_key + ".part")
    assert part.stat().st_size == MIB  # the refused bytes were cut off again
    resumed = tus_client.TusClient(f"{live_server.url}/api/v1/uploads/", headers=auth).uploader(
        file_stream=io.BytesIO(data), url=url, chunk_size=MIB, upload_checksum=True
    )
    resumed.upload()
    assert (tmp_path / row.storage_key).read_bytes() == data
    assert not part.exists()


def test_tuspy_sees_the_reason_of_a_refusal(
    live_server: LiveServer, settings: Settings, lesson: Lesson, teacher: tuple[User, dict[str, str]]
) -> None:
    settings.MAX_UPLOAD_BYTES = MIB
    _, auth = teacher
    with pytest.raises(TusCommunicationError) as refused:
        uploader(live_server, auth, lesson, os.urandom(MIB + 1), chunk_size=MIB).upload()
    assert refused.value.status_code == 413
    assert b"the largest upload allowed is 1.0 MB" in refused.value.response_content
    assert ResumableUpload.objects.count() == 0


def test_the_sweep_finishes_an_upload_whose_web_process_died_while_assembling(
    live_server: LiveServer,
    s3: Any,
    broker: Any,
    lesson: Lesson,
    teacher: tuple[User, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from media_pipeline import uploads

    _, auth = teacher
    data = os.urandom(6 * MIB)
    url = create(live_server, auth, lesson, len(data)).headers["Location"]

    def crash(**kwargs: object) -> None:
        raise RuntimeError("the web process died here")

    monkeypatch.setattr(uploads, "upload_finish", crash)
    assert patch(url, auth, 0, data).status_code == 500
    monkeypatch.undo()
    row = ResumableUpload.objects.get()
    assert (row.status, row.offset) == (UploadStatus.COMPLETING, len(data))
    assert offset_of(url, auth) == len(data)  # the client sees its bytes as received
    assert queued_actors(broker) == []

    ResumableUpload.objects.filter(pk=row.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    out = io.StringIO()
    call_command("uploads_sweep", stdout=out)
    assert out.getvalue() == "expired 0 upload(s), finished 1 upload(s)\n"
    row.refresh_from_db()
    assert row.status == UploadStatus.COMPLETED
    assert stored_bytes(s3, row.storage_key) == data
    assert MediaAsset.objects.get(pk=row.asset_id).source_key == row.storage_key
    assert queued_actors(broker) == ["probe_asset"]
    call_command("uploads_sweep", stdout=io.StringIO())  # again: nothing more happens
    assert queued_actors(broker) == ["probe_asset"]


def test_a_second_request_while_one_is_appending_is_423_and_changes_nothing(
    live_server: LiveServer, lesson: Lesson, teacher: tuple[User, dict[str, str]]
) -> None:
    _, auth = teacher
    url = create(live_server, auth, lesson, 1000).headers["Location"]
    # Another web process is in the middle of appending (it holds the lease).
    ResumableUpload.objects.update(lease_token="other", lease_until=timezone.now() + timedelta(minutes=1))
    busy = patch(url, auth, 0, b"a" * 10)
    assert (busy.status_code, busy.text) == (423, "another request is appending to this upload; retry in a moment")
    assert ResumableUpload.objects.get().offset == 0
    # A lease whose holder died lapses, and the upload carries on.
    ResumableUpload.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
    assert patch(url, auth, 0, b"a" * 10).status_code == 204
    assert offset_of(url, auth) == 10


def test_deleting_the_lesson_leaves_its_unfinished_upload_to_the_sweep(
    live_server: LiveServer, s3: Any, lesson: Lesson, teacher: tuple[User, dict[str, str]]
) -> None:
    from courses import services as course_services

    _, auth = teacher
    url = create(live_server, auth, lesson, 20 * MIB).headers["Location"]
    assert patch(url, auth, 0, os.urandom(6 * MIB)).status_code == 204
    row = ResumableUpload.objects.get()
    prefix = row.storage_key.rsplit("/", 1)[0] + "/"
    course_services.lesson_delete(lesson=Lesson.objects.get(pk=lesson.pk))
    assert requests.head(url, headers={**TUS, **auth}, timeout=30).status_code == 404

    call_command("uploads_sweep", stdout=io.StringIO())
    row.refresh_from_db()
    assert (row.status, row.asset_id) == (UploadStatus.EXPIRED, None)
    assert multipart_uploads(s3, prefix) == []
    assert s3.list_objects_v2(Bucket=os.environ["S3_BUCKET"], Prefix=f"uploads/spool/{row.public_id}/")["KeyCount"] == 0


def test_a_protected_lessons_first_upload_over_tus_is_packaged_encrypted(
    live_server: LiveServer, s3: Any, broker: Any, teacher: tuple[User, dict[str, str]]
) -> None:
    """The asset is created with the lesson's protection, so the tus path (which never passes the
    flag itself) builds an encrypted version just like the form upload."""
    _, auth = teacher
    course = Course.objects.get(slug="physics")
    protected = Lesson.objects.create(course=course, title="Paid lecture", protected=True)
    uploader(live_server, auth, protected, os.urandom(1 * MIB), chunk_size=MIB).upload()
    protected.refresh_from_db()
    assert protected.asset is not None
    asset = MediaAsset.objects.get(pk=protected.asset_id)
    assert (asset.protected, asset.status) == (True, AssetStatus.UPLOADED)
    assert queued_actors(broker) == ["probe_asset"]
    storage.delete_prefix(asset.source_key.rsplit("/", 1)[0] + "/")
