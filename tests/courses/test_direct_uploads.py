"""Direct uploads (docs/adr/0026): the client PUTs parts straight to the harness's SeaweedFS through
presigned part URLs (signatures and Content-MD5 really checked); the API only admits, signs and
completes. Through the live server, with plain HTTP, as the admin widget does it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import requests
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone
from pytest_django import Settings
from pytest_django.live_server_helper import LiveServer

from courses.models import Lesson
from media_pipeline.models import AssetStatus, MediaAsset, ResumableUpload, UploadQuota, UploadStatus
from tests.courses.test_tus_uploads import (
    MIB,
    TUS,
    educator,
    lesson,  # noqa: F401 - the fixture, shared
    multipart_uploads,
    queued_actors,
    stored_bytes,
)

pytestmark = pytest.mark.django_db(transaction=True)
Auth = dict[str, str]


@pytest.fixture(autouse=True)
def _small_parts(settings: Settings) -> None:
    settings.UPLOAD_DIRECT_PART_BYTES = 5 * MIB  # S3's minimum: several parts from a small file


@pytest.fixture(autouse=True)
def _no_open_multipart_uploads_left(s3: Any) -> Iterator[None]:
    yield
    bucket = os.environ["S3_BUCKET"]
    for open_upload in multipart_uploads(s3, "sources/"):
        s3.abort_multipart_upload(Bucket=bucket, Key=open_upload["Key"], UploadId=open_upload["UploadId"])


@pytest.fixture
def broker() -> Iterator[Any]:
    broker = dramatiq.get_broker()
    broker.flush_all()
    yield broker
    broker.flush_all()


@pytest.fixture
def teacher(lesson: Lesson) -> tuple[User, Auth]:  # noqa: F811 - the shared fixture
    return educator("grace", lesson.course)


def md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324 - S3's Content-MD5, not security


def api(live_server: LiveServer, auth: Auth, method: str, path: str, body: Any = None) -> requests.Response:
    return requests.request(
        method, f"{live_server.url}/api/v1/uploads/direct/{path}", json=body, headers=auth, timeout=30
    )


def start(live_server: LiveServer, auth: Auth, lesson: Lesson, size: int) -> requests.Response:  # noqa: F811
    return api(live_server, auth, "POST", "", {"lesson": str(lesson.public_id), "filename": "Week 1.mp4", "size": size})


def part_url(live_server: LiveServer, auth: Auth, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
    answer = api(
        live_server, auth, "POST", f"{upload_id}/part-urls/", {"parts": [{"number": number, "md5": md5(body)}]}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["parts"][0]


def put_part(live_server: LiveServer, auth: Auth, upload_id: str, number: int, body: bytes) -> str:
    """Send one part as the widget does: its URL, then a PUT straight to storage; returns the ETag."""
    signed = part_url(live_server, auth, upload_id, number, body)
    stored = requests.put(signed["url"], data=body, headers=signed["headers"], timeout=30)
    assert stored.status_code == 200, stored.text
    return stored.headers["ETag"]


def parts_of(data: bytes, size: int = 5 * MIB) -> list[bytes]:
    return [data[at : at + size] for at in range(0, len(data), size)]


def test_a_direct_upload_lands_in_s3_and_starts_the_pipeline_once(
    live_server: LiveServer,
    s3: Any,
    broker: Any,
    lesson: Lesson,  # noqa: F811
    teacher: tuple[User, Auth],
) -> None:
    user, auth = teacher
    assert api(live_server, auth, "GET", "").json() == {
        "available": True,
        "max_size": 20 * 1024**3,
        "part_size": 5 * MIB,
    }
    data = os.urandom(12 * MIB + 12345)  # two whole 5 MiB parts and a short last one
    created = start(live_server, auth, lesson, len(data))
    assert created.status_code == 201, created.text
    body = created.json()
    upload_id = body["id"]
    assert (body["size"], body["part_size"], body["part_count"], body["status"]) == (len(data), 5 * MIB, 3, "active")
    row = ResumableUpload.objects.get()
    assert (row.transport, row.owner_id, row.filename) == ("direct", user.pk, "Week 1.mp4")
    assert row.storage_key.startswith(f"sources/{row.asset.public_id}/") and "Week" not in row.storage_key

    # Parts go in any order and in parallel; a resumed widget asks what storage holds.
    etags = {
        n: put_part(live_server, auth, upload_id, n, part) for n, part in reversed(list(enumerate(parts_of(data), 1)))
    }
    state = api(live_server, auth, "GET", f"{upload_id}/").json()
    assert [(p["number"], p["size"]) for p in state["parts"]] == [(1, 5 * MIB), (2, 5 * MIB), (3, 2 * MIB + 12345)]
    assert queued_actors(broker) == []

    listed = [{"number": n, "etag": etag} for n, etag in etags.items()]
    done = api(live_server, auth, "POST", f"{upload_id}/complete/", {"parts": listed})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"
    row.refresh_from_db()
    assert (row.status, row.offset) == (UploadStatus.COMPLETED, len(data))
    asset = MediaAsset.objects.get(pk=row.asset_id)
    assert (asset.source_key, asset.source_size, asset.status, asset.source_name) == (
        row.storage_key, len(data), AssetStatus.UPLOADED, "Week 1.mp4"
    )  # fmt: skip
    assert hashlib.sha256(stored_bytes(s3, asset.source_key)).digest() == hashlib.sha256(data).digest()
    assert queued_actors(broker) == ["probe_asset"]  # the same step a finished tus upload ends with
    assert multipart_uploads(s3, f"sources/{asset.public_id}/") == []

    # A repeat (a retried request) answers the same and starts nothing.
    again = api(live_server, auth, "POST", f"{upload_id}/complete/", {"parts": listed})
    assert (again.status_code, again.json()["status"]) == (200, "completed")
    assert queued_actors(broker) == ["probe_asset"]
    # Finished: no more part URLs, no cancelling; and it is no tus upload.
    assert (
        api(
            live_server, auth, "POST", f"{upload_id}/part-urls/", {"parts": [{"number": 1, "md5": md5(b"")}]}
        ).status_code
        == 403
    )
    assert api(live_server, auth, "DELETE", f"{upload_id}/").status_code == 403
    assert (
        requests.head(f"{live_server.url}/api/v1/uploads/{upload_id}", headers={**TUS, **auth}, timeout=30).status_code
        == 404
    )


def test_over_quota_or_max_size_is_refused_before_any_storage_call(
    live_server: LiveServer,
    s3: Any,
    settings: Settings,
    lesson: Lesson,  # noqa: F811
    teacher: tuple[User, Auth],
) -> None:
    user, auth = teacher
    settings.MAX_UPLOAD_BYTES = 50 * MIB
    too_big = start(live_server, auth, lesson, 50 * MIB + 1)
    assert (too_big.status_code, too_big.json()) == (
        413,
        {"detail": "The file is 50.0 MB; the largest upload allowed is 50.0 MB."},
    )

    UploadQuota.objects.create(user=user, quota_bytes=30 * MIB)
    assert start(live_server, auth, lesson, 20 * MIB).status_code == 201  # reserves its whole size
    # The second would fit on its own, not next to the open one: the open upload's size counts.
    over = start(live_server, auth, lesson, 11 * MIB)
    assert over.status_code == 413
    assert over.json()["detail"].startswith(
        "This file is 11.0 MB, but only 10.0 MB of your 30.0 MB storage quota is left."
    )
    assert ResumableUpload.objects.count() == 1
    lesson.refresh_from_db()
    assert len(multipart_uploads(s3, "sources/")) == 1  # only the admitted one exists in storage

    # With storage unreachable, a refused request still answers: no storage call was made for it.
    reachable = settings.STORAGES
    default = reachable["default"]
    unreachable = {**default, "OPTIONS": {**default["OPTIONS"], "endpoint_url": "http://127.0.0.1:9"}}
    settings.STORAGES = {**reachable, "default": unreachable}
    assert start(live_server, auth, lesson, 11 * MIB).status_code == 413
    settings.STORAGES = reachable  # before the lesson fixture cleans storage up


def test_only_the_owner_may_see_continue_complete_or_cancel_an_upload(
    live_server: LiveServer,
    s3: Any,
    broker: Any,
    lesson: Lesson,  # noqa: F811
    teacher: tuple[User, Auth],
) -> None:
    _, auth = teacher
    data = os.urandom(5 * MIB)
    upload_id = start(live_server, auth, lesson, len(data)).json()["id"]
    etag = put_part(live_server, auth, upload_id, 1, data)
    _, colleague = educator("ada", lesson.course)  # teaches the same course: still not theirs
    _, outsider = educator("bob")
    for who in (colleague, outsider):
        assert api(live_server, who, "GET", f"{upload_id}/").status_code == 404
        assert (
            api(
                live_server, who, "POST", f"{upload_id}/part-urls/", {"parts": [{"number": 1, "md5": md5(data)}]}
            ).status_code
            == 404
        )
        assert (
            api(
                live_server, who, "POST", f"{upload_id}/complete/", {"parts": [{"number": 1, "etag": etag}]}
            ).status_code
            == 404
        )
        assert api(live_server, who, "DELETE", f"{upload_id}/").status_code == 404
    assert start(live_server, outsider, lesson, 10).status_code == 404  # not their lesson
    assert api(live_server, {}, "POST", "", {"lesson": str(lesson.public_id), "size": 10}).status_code == 403
    assert api(live_server, {}, "GET", f"{upload_id}/").status_code == 403

    row = ResumableUpload.objects.get()  # nothing changed
    assert (row.status, row.offset) == (UploadStatus.ACTIVE, 0)
    assert len(multipart_uploads(s3, "sources/")) == 1
    assert queued_actors(broker) == []


def test_storage_refuses_a_part_whose_bytes_or_header_differ_from_the_signed_md5(
    live_server: LiveServer,
    s3: Any,
    lesson: Lesson,  # noqa: F811
    teacher: tuple[User, Auth],
) -> None:
    _, auth = teacher
    data = os.urandom(5 * MIB)
    upload_id = start(live_server, auth, lesson, len(data)).json()["id"]
    signed = part_url(live_server, auth, upload_id, 1, data)
    assert "content-md5" in signed["url"]  # X-Amz-SignedHeaders: the MD5 is part of the signature
    corrupt = bytearray(data)
    corrupt[1000] ^= 1
    refused = requests.put(signed["url"], data=bytes(corrupt), headers=signed["headers"], timeout=30)
    assert refused.status_code == 400 and "<Code>BadDigest</Code>" in refused.text
    unsigned = requests.put(signed["url"], data=bytes(corrupt), timeout=30)  # no Content-MD5 at all
    assert unsigned.status_code == 403 and "SignatureDoesNotMatch" in unsigned.text
    other = requests.put(signed["url"], data=bytes(corrupt), headers={"Content-MD5": md5(bytes(corrupt))}, timeout=30)
    assert other.status_code == 403  # the MD5 of other bytes does not match the signed one
    row = ResumableUpload.objects.get()
    assert (
        s3.list_parts(Bucket=os.environ["S3_BUCKET"], Key=row.storage_key, UploadId=row.multipart_id).get("Parts", [])
        == []
    )

    # Malformed requests for URLs: no such part, not an MD5.
    for wrong in ({"number": 2, "md5": md5(data)}, {"number": 1, "md5": "bm90IGFuIG1kNQ=="}):
        answer = api(live_server, auth, "POST", f"{upload_id}/part-urls/", {"parts": [wrong]})
        assert answer.status_code == 400, answer.text


def test_completion_with_a_missing_short_or_replaced_part_is_refused_and_starts_nothing(
    live_server: LiveServer,
    s3: Any,
    broker: Any,
    lesson: Lesson,  # noqa: F811
    teacher: tuple[User, Auth],
) -> None:
    _, auth = teacher
    data = os.urandom(10 * MIB + 5)
    first, second, third = parts_of(data)
    upload_id = start(live_server, auth, lesson, len(data)).json()["id"]
    etag1 = put_part(live_server, auth, upload_id, 1, first)
    etag3 = put_part(live_server, auth, upload_id, 3, third)

    def complete(*parts: tuple[int, str]) -> requests.Response:
        body = {"parts": [{"number": n, "etag": etag} for n, etag in parts]}
        return api(live_server, auth, "POST", f"{upload_id}/complete/", body)

    missing = complete((1, etag1), (2, etag1), (3, etag3))
    assert (missing.status_code, missing.json()) == (400, {"detail": "part 2 is not in storage"})
    unlisted = complete((1, etag1), (3, etag3))
    assert unlisted.json() == {"detail": "the parts listed must be 1 to 3, each once"}
    short = put_part(live_server, auth, upload_id, 2, second[:-1])  # one byte short
    assert complete((1, etag1), (2, short), (3, etag3)).json() == {
        "detail": f"part 2 holds {5 * MIB - 1} bytes, not {5 * MIB}"
    }
    etag2 = put_part(live_server, auth, upload_id, 2, second)  # sent again, whole
    assert complete((1, etag1), (2, short), (3, etag3)).json() == {
        "detail": f"part 2 holds {5 * MIB - 1} bytes, not {5 * MIB}"
    }  # the client names the version it means by its ETag
    assert complete((1, etag1), (2, '"' + "0" * 32 + '"'), (3, etag3)).json() == {
        "detail": "part 2's ETag in storage is not the one listed"
    }
    row = ResumableUpload.objects.get()
    assert (row.status, row.parts) == (UploadStatus.ACTIVE, [])
    assert queued_actors(broker) == []
    assert MediaAsset.objects.get().source_key == ""

    assert complete((1, etag1), (2, etag2), (3, etag3)).status_code == 200
    assert stored_bytes(s3, ResumableUpload.objects.get().storage_key) == data
    assert queued_actors(broker) == ["probe_asset"]


def test_cancelling_aborts_the_multipart_upload_and_the_sweep_aborts_expired_ones(
    live_server: LiveServer,
    s3: Any,
    lesson: Lesson,  # noqa: F811
    teacher: tuple[User, Auth],
) -> None:
    _, auth = teacher
    data = os.urandom(5 * MIB)
    cancelled = start(live_server, auth, lesson, 3 * len(data)).json()["id"]
    put_part(live_server, auth, cancelled, 1, data)
    expired = start(live_server, auth, lesson, 3 * len(data)).json()["id"]
    kept = start(live_server, auth, lesson, 3 * len(data)).json()["id"]
    assert len(multipart_uploads(s3, "sources/")) == 3

    assert api(live_server, auth, "DELETE", f"{cancelled}/").status_code == 204
    assert api(live_server, auth, "DELETE", f"{cancelled}/").status_code == 404  # gone
    assert (
        api(
            live_server, auth, "POST", f"{cancelled}/part-urls/", {"parts": [{"number": 2, "md5": md5(data)}]}
        ).status_code
        == 404
    )
    assert ResumableUpload.objects.get(public_id=cancelled).status == UploadStatus.TERMINATED

    ResumableUpload.objects.filter(public_id=expired).update(expires_at=timezone.now() - timedelta(seconds=1))
    out = io.StringIO()
    call_command("uploads_sweep", stdout=out)
    assert out.getvalue() == "expired 1 upload(s), finished 0 upload(s)\n"
    assert [u["UploadId"] for u in multipart_uploads(s3, "sources/")] == [
        ResumableUpload.objects.get(public_id=kept).multipart_id
    ]
    assert api(live_server, auth, "GET", f"{expired}/").json()["status"] == "expired"


def test_with_local_storage_direct_uploads_are_unavailable_and_tus_stays(
    live_server: LiveServer,
    settings: Settings,
    tmp_path: Path,
    lesson: Lesson,  # noqa: F811
    teacher: tuple[User, Auth],
) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    _, auth = teacher
    assert api(live_server, auth, "GET", "").json()["available"] is False
    refused = start(live_server, auth, lesson, 10)
    assert refused.status_code == 409 and "tus" in refused.json()["detail"]
    assert ResumableUpload.objects.count() == 0
    lesson.refresh_from_db()
    assert lesson.asset is None
