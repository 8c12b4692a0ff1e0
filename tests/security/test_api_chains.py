"""The API's create, read, change and delete chains, over HTTP on the web process: drf-spectacular writes no
OpenAPI links, so schemathesis calls each operation on its own; these follow one object through.

- a tus upload: create -> HEAD -> PATCH -> HEAD -> DELETE -> HEAD and PATCH refused (410)
- a viewing: playback session -> progress (twice: the same seconds count once) -> a beacon batch
  naming the session's view, found in the beacon stream
- the catalogue: course list -> course -> lesson -> its replicas (the educator)
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests

from tests.security.conftest import TUS, Served

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def test_a_tus_upload_from_creation_to_cancellation(served: Served) -> None:
    from media_pipeline.models import ResumableUpload, UploadStatus

    auth = {**TUS, **served.headers("educator")}
    metadata = (
        f"lesson {base64.b64encode(served.lesson_id.encode()).decode()},filename {base64.b64encode(b'a.mp4').decode()}"
    )
    created = requests.post(
        f"{served.base}/api/v1/uploads/",
        headers={**auth, "Upload-Length": "10", "Upload-Metadata": metadata},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    assert created.headers["Upload-Offset"] == "0"
    url = created.headers["Location"]
    assert url.startswith(f"{served.base}/api/v1/uploads/")

    def head() -> requests.Response:
        return requests.head(url, headers=auth, timeout=30)

    assert (head().status_code, head().headers["Upload-Offset"], head().headers["Upload-Length"]) == (200, "0", "10")
    patch_headers = {**auth, "Content-Type": "application/offset+octet-stream"}
    appended = requests.patch(url, headers={**patch_headers, "Upload-Offset": "0"}, data=b"01234", timeout=30)
    assert (appended.status_code, appended.headers["Upload-Offset"]) == (204, "5")
    assert head().headers["Upload-Offset"] == "5"
    # Someone else's request for the same upload is a 404 and changes nothing.
    other = {**TUS, **served.headers("superuser")}
    assert requests.delete(url, headers=other, timeout=30).status_code == 404
    assert head().headers["Upload-Offset"] == "5"

    assert requests.delete(url, headers=auth, timeout=30).status_code == 204
    assert head().status_code == 410
    refused = requests.patch(url, headers={**patch_headers, "Upload-Offset": "5"}, data=b"56789", timeout=30)
    assert refused.status_code == 410
    upload = ResumableUpload.objects.get(public_id=url.rsplit("/", 1)[1])
    assert (upload.status, upload.offset) == (UploadStatus.TERMINATED, 5)


def test_a_viewing_from_playback_session_to_progress_and_beacons(served: Served) -> None:
    from analytics import ingest
    from courses.models import LessonProgress

    learner = served.headers("learner")
    lesson = f"{served.base}/api/v1/lessons/{served.lesson_id}"
    session = requests.post(f"{lesson}/playback/", headers=learner, timeout=30)
    assert session.status_code == 200, session.text
    view: dict[str, Any] = session.json()
    assert view["view_id"] and view["view_token"] and view["duration"] == 6.0
    # The hls URL works for the viewer it was given to.
    master = requests.get(served.base + view["hls"], timeout=30)  # a path on this origin
    assert (master.status_code, master.content) == (200, b"#EXTM3U\n#EXT-X-VERSION:7\n")

    # Progress and beacons carry the session's token (required once the grades and beacons work lands).
    report = {"ranges": [[0, 3]], "view_token": view["view_token"]}
    first = requests.post(f"{lesson}/progress/", headers=learner, json=report, timeout=30)
    assert first.status_code == 200, first.text
    assert first.json() == {"seconds_watched": 3, "completed": False}
    again = requests.post(f"{lesson}/progress/", headers=learner, json=report, timeout=30)
    assert again.json() == {"seconds_watched": 3, "completed": False}
    assert LessonProgress.objects.get(lesson__public_id=served.lesson_id).seconds_watched == 3

    batch = {
        "view_id": view["view_id"],
        "view_token": view["view_token"],
        "lesson": served.lesson_id,
        "device": "desktop",
        "events": [{"type": "play_request", "t": 0}, {"type": "first_frame", "t": 420}],
    }
    client = ingest.client()
    before = client.xlen(ingest.STREAM)
    sent = requests.post(f"{served.base}/api/v1/qoe/events/", data=json.dumps(batch), timeout=30)
    assert (sent.status_code, sent.json()) == (202, {"accepted": 2})
    assert client.xlen(ingest.STREAM) == before + 1
    (_, fields), *_ = reversed(client.xrange(ingest.STREAM))
    stored = json.loads(fields[b"b"] if b"b" in fields else fields["b"])
    assert (stored["view_id"], stored["lesson"], len(stored["events"])) == (view["view_id"], served.lesson_id, 2)


def test_the_catalogue_from_course_list_to_a_lessons_replicas(served: Served) -> None:
    courses = requests.get(f"{served.base}/api/v1/courses/", timeout=30).json()
    assert {course["slug"] for course in courses} == {
        served.course_slug,
        served.other_course_slug,
        served.open_course_slug,
    }
    course = requests.get(f"{served.base}/api/v1/courses/{served.course_slug}/", timeout=30).json()
    # The draft lesson is not listed.
    assert [lesson["id"] for lesson in course["lessons"]] == [served.lesson_id]
    lesson = requests.get(f"{served.base}/api/v1/lessons/{served.lesson_id}/", timeout=30).json()
    assert (lesson["title"], lesson["playable"]) == ("Published lesson", True)
    replicas = requests.get(
        f"{served.base}/api/v1/lessons/{served.lesson_id}/replicas/", headers=served.headers("educator"), timeout=30
    )
    # Nothing was replicated in this world: one region, no copies.
    assert (replicas.status_code, replicas.json()) == (200, [])
