"""Uploading a new video from the Deep Linking picker (docs/adr/0033), over real HTTP: the instructor's
launch and picker through the test client, the upload itself over tus with only the upload grant (no
cookie), the Deep Linking response verified by the platform emulator against our JWKS."""

from __future__ import annotations

import base64
import html
import re
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import requests
from django.contrib.auth.models import User
from django.core import signing
from django.template.defaultfilters import filesizeformat
from django.test import Client
from django.utils import timezone
from pytest_django import Settings
from pytest_django.live_server_helper import LiveServer

from courses import upload_grants
from courses.models import Lesson
from courses.selectors import UNFINISHED_REASON, VideoPhase
from lti import lms_uploads
from lti.models import LtiContext, LtiPlatform, LtiUser
from media_pipeline import services as media_services
from media_pipeline import storage
from media_pipeline.models import MediaAsset, ResumableUpload, UploadStatus
from tests.conftest import make_clip
from tests.courses import test_direct_uploads as direct
from tests.lti.conftest import full_launch
from tests.lti.platform_emulator import PlatformEmulator
from tests.pipeline_steps import record_sends

pytestmark = pytest.mark.django_db(transaction=True)

TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture(autouse=True)
def _held_pipeline(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """The pipeline's messages are recorded, not sent: a test runs the steps itself, when it wants."""
    return record_sends(monkeypatch)


@pytest.fixture(autouse=True)
def _clean_storage() -> Iterator[None]:
    yield
    for key in set(ResumableUpload.objects.values_list("storage_key", flat=True)):
        storage.delete_prefix(key.rsplit("/", 1)[0] + "/")
    storage.delete_prefix("uploads/spool/")


def _picker(emulator: PlatformEmulator, *, enabled: bool = True, quota: int = 10**9) -> Client:
    """A first-time instructor's Deep Linking launch (it makes the LMS course's course), in the picker."""
    LtiPlatform.objects.update(lms_upload_enabled=enabled, lms_upload_quota_bytes=quota)
    emulator.launches["dl"] = {"message_type": "LtiDeepLinkingRequest", "accept_multiple": False, "data": "dl-7"}
    teacher = Client()
    response = full_launch(teacher, emulator, user="teacher-1", launch="dl")
    assert response.status_code == 302 and response["Location"] == "/lti/deep-link/"
    return teacher


def _start(teacher: Client, *, size: int, title: str = "Snell's law") -> Any:
    return teacher.post("/lti/deep-link/upload/", {"title": title, "description": "Refraction.", "size": size})


def _tus_create(live_server: LiveServer, token: str, lesson: str, length: int) -> requests.Response:
    metadata = f"lesson {base64.b64encode(lesson.encode()).decode()},filename {base64.b64encode(b'snell.mp4').decode()}"
    return requests.post(
        f"{live_server.url}/api/v1/uploads/",
        headers={**TUS, "Authorization": f"LessonUpload {token}", "Upload-Length": str(length),
                 "Upload-Metadata": metadata},
        timeout=30,
    )  # fmt: skip


def _tus_upload(live_server: LiveServer, token: str, lesson: str, data: bytes) -> str:
    """The whole file over tus with the grant alone (requests keeps no cookie between calls here)."""
    created = _tus_create(live_server, token, lesson, len(data))
    assert created.status_code == 201, created.text
    sent = requests.patch(
        created.headers["Location"],
        data=data,
        headers={**TUS, "Authorization": f"LessonUpload {token}", "Upload-Offset": "0",
                 "Content-Type": "application/offset+octet-stream"},
        timeout=60,
    )  # fmt: skip
    assert sent.status_code == 204, sent.text
    return created.headers["Location"]


def _return_form(page: str) -> tuple[str, str]:
    action = html.unescape(re.search(r'id="lti-deep-link-return" method="post" action="([^"]+)"', page).group(1))
    return action, re.search(r'name="JWT" value="([^"]+)"', page).group(1)


def _nothing_made() -> tuple[int, int]:
    return Lesson.objects.count(), ResumableUpload.objects.count()


@pytest.fixture
def clip(tmp_path: Path) -> bytes:
    return make_clip(tmp_path / "snell.mp4", seconds=2, size="320x180").read_bytes()


def test_uploads_are_refused_while_the_platform_switch_is_off(live_emulator: PlatformEmulator) -> None:
    teacher = _picker(live_emulator, enabled=False)
    page = teacher.get("/lti/deep-link/upload/")
    assert page.status_code == 403 and b"Uploading videos from this LMS is turned off" in page.content
    refused = _start(teacher, size=1000)
    assert (refused.status_code, refused.json()) == (
        403, {"detail": "uploading videos from this LMS is turned off; ask the tool's administrator"},
    )  # fmt: skip
    assert _nothing_made() == (0, 0)


def test_learners_and_instructors_of_another_course_cannot_upload(live_emulator: PlatformEmulator) -> None:
    emulator = live_emulator
    LtiPlatform.objects.update(lms_upload_enabled=True)
    # A learner's ordinary launch: signed in, but no picker.
    learner = Client()
    assert full_launch(learner, emulator, user="learner-1", launch="launch-1").status_code == 200
    assert learner.get("/lti/deep-link/upload/").status_code == 403
    assert _start(learner, size=1000).status_code == 403
    # A learner cannot open the picker at all (the launch refuses them).
    emulator.launches["dl"] = {"message_type": "LtiDeepLinkingRequest"}
    assert full_launch(Client(), emulator, user="learner-1", launch="dl").status_code == 403
    # An instructor whose picker session is for a course they no longer teach.
    teacher = _picker(emulator)
    LtiContext.objects.get().course.educators.clear()
    refused = _start(teacher, size=1000)
    assert (refused.status_code, refused.json()["detail"]) == (
        403, "only instructors of this LMS course can upload videos to it",
    )  # fmt: skip
    assert _nothing_made() == (0, 0)


def test_the_platforms_own_quota_applies_not_the_site_wide_one(
    live_emulator: PlatformEmulator, live_server: LiveServer, settings: Settings, clip: bytes
) -> None:
    settings.UPLOAD_QUOTA_BYTES = 10  # the site-wide default would refuse any video: it does not apply
    teacher = _picker(live_emulator, quota=len(clip) + 100)
    over = _start(teacher, size=len(clip) + 101)
    assert over.status_code == 413
    size, quota = filesizeformat(len(clip) + 101), filesizeformat(len(clip) + 100)
    assert over.json()["detail"] == (
        f"This file is {size}, but only {quota} of your {quota} quota for uploads from this LMS is left. "
        "Delete videos you no longer need, or ask an administrator for more."
    ).replace("\xa0", " ")
    assert _nothing_made() == (0, 0)

    started = _start(teacher, size=len(clip))
    assert started.status_code == 201
    _tus_upload(live_server, started.json()["token"], started.json()["lesson"], clip)
    # What the picker stored counts: 100 bytes are left of the quota.
    second = _start(teacher, size=101, title="Total reflection")
    assert second.status_code == 413 and "but only 100 bytes of your" in second.json()["detail"]
    assert _nothing_made() == (1, 1)


def test_forged_foreign_and_expired_upload_grants_are_refused(
    live_emulator: PlatformEmulator, live_server: LiveServer
) -> None:
    emulator = live_emulator
    teacher = _picker(emulator)
    first = _start(teacher, size=1000).json()
    second = _start(teacher, size=1000, title="Mirrors").json()
    lesson_2 = Lesson.objects.get(public_id=second["lesson"])

    # Forged: not signed by us, tampered, or signed for another purpose with the same secret.
    tampered = first["token"][:-3] + ("aaa" if not first["token"].endswith("aaa") else "bbb")
    other_salt = signing.dumps({"u": 1, "l": second["lesson"], "s": {}, "x": 2**40}, salt="lti-handoff")
    for token in ("nonsense", tampered, other_salt):
        assert _tus_create(live_server, token, second["lesson"], 1000).status_code == 403
    # One lesson's grant does not open another lesson, even of the same instructor.
    wrong_lesson = _tus_create(live_server, first["token"], second["lesson"], 1000)
    assert (wrong_lesson.status_code, wrong_lesson.text) == (404, "no such lesson among the ones you teach")
    # Another user's grant cannot touch this instructor's upload.
    location = _tus_create(live_server, second["token"], second["lesson"], 1000).headers["Location"]
    someone = User.objects.create_user("someone-else")
    lesson_2.course.educators.add(someone)  # even a co-teacher of the course
    foreign = upload_grants.upload_grant_issue(
        user=someone, lesson=lesson_2, scope={"kind": "lti-picker", "platform": LtiPlatform.objects.get().pk},
        seconds=60,
    )  # fmt: skip
    patch_headers = {**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    foreign_auth = {**patch_headers, "Authorization": f"LessonUpload {foreign}"}
    stolen = requests.patch(location, data=b"x" * 10, headers=foreign_auth, timeout=30)
    assert stolen.status_code == 404
    # Expired.
    expired = upload_grants.upload_grant_issue(
        user=LtiUser.objects.get(sub="teacher-sub-1").user,
        lesson=lesson_2,
        scope={"kind": "lti-picker", "platform": 1},
        seconds=-1,
    )
    assert _tus_create(live_server, expired, second["lesson"], 1000).status_code == 403
    # The grant alone: without it, the session of the picker is not an uploader's (not staff).
    metadata = f"lesson {base64.b64encode(second['lesson'].encode()).decode()}"
    by_session = teacher.post(
        "/api/v1/uploads/", HTTP_TUS_RESUMABLE="1.0.0", HTTP_UPLOAD_LENGTH="1000", HTTP_UPLOAD_METADATA=metadata
    )
    assert (by_session.status_code, by_session.content) == (404, b"no such lesson among the ones you teach")
    # The switch turned off after the grant was given: the grant dies with it.
    LtiPlatform.objects.update(lms_upload_enabled=False)
    off = requests.head(location, headers={**TUS, "Authorization": f"LessonUpload {second['token']}"}, timeout=30)
    assert off.status_code == 403
    LtiPlatform.objects.update(lms_upload_enabled=True)
    # No Deep Linking response before the bytes are in, nor for a forged grant.
    assert (
        b"has not been uploaded yet" in teacher.post("/lti/deep-link/upload/done/", {"token": second["token"]}).content
    )
    assert Client().post("/lti/deep-link/upload/done/", {"token": tampered}).status_code == 403
    assert emulator.recorded.deep_link_responses == []
    assert [(u.offset, u.status) for u in ResumableUpload.objects.all()] == [(0, UploadStatus.ACTIVE)]


def test_an_upload_returns_the_link_at_once_and_learners_see_processing_then_the_player(
    live_emulator: PlatformEmulator, live_server: LiveServer, clip: bytes, _held_pipeline: list[tuple[Any, ...]]
) -> None:
    emulator = live_emulator
    teacher = _picker(emulator)
    page = teacher.get("/lti/deep-link/upload/")
    assert page.status_code == 200 and page["Content-Security-Policy"] == f"frame-ancestors 'self' {emulator.base}"
    started = _start(teacher, size=len(clip))
    assert started.status_code == 201
    token, public_id = started.json()["token"], started.json()["lesson"]
    lesson = Lesson.objects.get(public_id=public_id)
    assert (lesson.course, lesson.title, lesson.description, lesson.state) == (
        LtiContext.objects.get().course, "Snell's law", "Refraction.", "published",
    )  # fmt: skip

    _tus_upload(live_server, token, public_id, clip)
    # The link goes back at once: nothing of the pipeline has run (its first step is only queued).
    assert [name for name, *_ in _held_pipeline] == ["probe_asset"]
    done = Client().post("/lti/deep-link/upload/done/", {"token": token})  # no cookie needed
    assert done.status_code == 200
    action, jwt = _return_form(done.content.decode())
    assert action == f"{emulator.base}/deep_link_return"
    request = urllib.request.Request(action, data=urlencode({"JWT": jwt}).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert reply.status == 200
    (received,) = emulator.recorded.deep_link_responses
    claims = received["claims"]
    assert claims["https://purl.imsglobal.org/spec/lti-dl/claim/data"] == "dl-7"
    (item,) = claims["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
    assert (item["type"], item["title"], item["text"], item["custom"]["lesson"]) == (
        "ltiResourceLink", "Snell's law", "Refraction.", public_id,
    )  # fmt: skip

    # A learner launches the link: "being prepared", with nothing else about the video.
    emulator.launches["placed"] = {"custom": item["custom"], "resource_link": {"id": "placed-1", "title": "Snell"}}
    learner = Client()
    launched = full_launch(learner, emulator, user="learner-1", launch="placed")
    assert launched.status_code == 302
    lesson_url = urlsplit(launched["Location"]).path
    assert lesson_url == f"/lti/lesson/{public_id}/"
    processing = learner.get(lesson_url)
    assert processing.status_code == 200
    text = processing.content.decode()
    assert '<h1 class="lti-title">Snell&#x27;s law</h1>' in text and "being prepared" in text
    assert "lesson-video" not in text
    status_url = f"/lti/lesson/{public_id}/status/"
    assert learner.get(status_url).json() == {
        "ready": False, "state": "processing", "text": lms_uploads.PROCESSING_TEXTS[VideoPhase.PROCESSING],
    }  # fmt: skip
    # Someone without a grant learns nothing, not even that it is being prepared.
    stranger = Client()
    stranger.force_login(User.objects.create_user("nobody"))
    assert stranger.get(status_url).status_code == 403
    refused = stranger.get(lesson_url)
    assert refused.status_code == 403 and b"Snell" not in refused.content

    # The pipeline finishes: the same link now plays.
    asset = Lesson.objects.get(pk=lesson.pk).asset
    media_services.asset_probe(asset_id=asset.pk)
    media_services.asset_transcode(asset_id=asset.pk)
    media_services.asset_publish(asset_id=asset.pk)
    assert learner.get(status_url).json() == {"ready": True, "state": "ready", "text": ""}
    player = learner.get(lesson_url)
    assert player.status_code == 200 and 'id="lesson-video"' in player.content.decode()


def test_the_grant_uploads_straight_to_s3_and_opens_nothing_else_of_the_api(
    live_emulator: PlatformEmulator, live_server: LiveServer, clip: bytes
) -> None:
    teacher = _picker(live_emulator)
    started = _start(teacher, size=len(clip)).json()
    lesson = Lesson.objects.get(public_id=started["lesson"])
    grant = {"Authorization": f"LessonUpload {started['token']}"}
    created = direct.start(live_server, grant, lesson, len(clip))
    assert created.status_code == 201, created.text
    upload_id = created.json()["id"]
    etag = direct.put_part(live_server, grant, upload_id, 1, clip)
    done = direct.api(live_server, grant, "POST", f"{upload_id}/complete/", {"parts": [{"number": 1, "etag": etag}]})
    assert (done.status_code, done.json()["status"]) == (200, "completed")
    assert Client().post("/lti/deep-link/upload/done/", {"token": started["token"]}).status_code == 200
    # Elsewhere in the API the grant is no credential: the answers are those to no credential at all.
    for path in (f"/api/v1/lessons/{lesson.public_id}/", f"/api/v1/lessons/{lesson.public_id}/replicas/"):
        with_grant = requests.get(f"{live_server.url}{path}", headers=grant, timeout=30)
        anonymous = requests.get(f"{live_server.url}{path}", timeout=30)
        assert (with_grant.status_code, with_grant.content) == (anonymous.status_code, anonymous.content)
        assert with_grant.status_code in (401, 403, 404)


def test_operators_edit_the_switch_and_the_quota_in_the_admin(live_emulator: PlatformEmulator) -> None:
    platform = LtiPlatform.objects.get()
    admin = Client()
    admin.force_login(User.objects.create_superuser("root", password="pw-root-123456"))
    page = admin.get(f"/admin/lti/ltiplatform/{platform.pk}/change/").content.decode()
    assert "Uploads from the lesson picker" in page
    assert 'name="lms_upload_enabled"' in page and 'name="lms_upload_quota_bytes" value="5368709120"' in page


def _status(client: Client, public_id: str) -> dict[str, Any]:
    response = client.get(f"/lti/lesson/{public_id}/status/")
    assert response.status_code == 200
    return response.json()


def test_a_corrupt_upload_tells_the_instructor_why_and_learners_nothing_and_the_instructor_deletes_it(
    live_emulator: PlatformEmulator, live_server: LiveServer
) -> None:
    emulator = live_emulator
    teacher = _picker(emulator)
    corrupt = bytes(range(256)) * 64  # no container ffprobe knows
    started = _start(teacher, size=len(corrupt), title="Broken clip").json()
    token, public_id = started["token"], started["lesson"]
    _tus_upload(live_server, token, public_id, corrupt)
    assert Client().post("/lti/deep-link/upload/done/", {"token": token}).status_code == 200  # the LMS has its link
    emulator.launches["placed"] = {"custom": {"lesson": public_id}, "resource_link": {"id": "broken-1"}}
    learner = Client()
    assert full_launch(learner, emulator, user="learner-1", launch="placed").status_code == 302
    processing = lms_uploads.PROCESSING_TEXTS[VideoPhase.PROCESSING]
    assert _status(learner, public_id) == {"ready": False, "state": "processing", "text": processing}

    # The pipeline's own probe step rejects it.
    lesson = Lesson.objects.select_related("asset").get(public_id=public_id)
    media_services.asset_probe(asset_id=lesson.asset.pk)
    reason = MediaAsset.objects.get(pk=lesson.asset.pk).failure_reason
    assert reason == "rejected: not a video or audio file (unknown or damaged format)"
    told = lms_uploads.FAILED_TEXT.format(reason=reason.rstrip("."))
    # Learners: a neutral notice, no detail; the page does not promise the video any more.
    for page in (learner.get(f"/lti/lesson/{public_id}/").content.decode(), str(_status(learner, public_id))):
        assert reason not in page and "being prepared" not in page
    assert _status(learner, public_id) == {"ready": False, "state": "failed", "text": lms_uploads.NOT_AVAILABLE_TEXT}
    assert lms_uploads.NOT_AVAILABLE_TEXT in learner.get(f"/lti/lesson/{public_id}/").content.decode()
    # The course's instructor: why, and what to do.
    assert _status(teacher, public_id) == {"ready": False, "state": "failed", "text": told}
    assert html.escape(told) in teacher.get(f"/lti/lesson/{public_id}/").content.decode()
    context = LtiContext.objects.get()
    instructor_url = f"/lti/instructor/{context.public_id}/"
    page = teacher.get(instructor_url).content.decode()
    assert f'<p class="lesson-problem" role="alert">Could not be prepared: {html.escape(reason)}</p>' in page

    # Deleting it: refused to a learner and without the CSRF token, nothing changed; then done.
    delete_url = f"{instructor_url}lessons/{public_id}/delete/"
    assert learner.post(delete_url).status_code == 403
    forged = Client(enforce_csrf_checks=True)
    forged.cookies = teacher.cookies
    assert forged.post(delete_url).status_code == 403
    assert Lesson.objects.filter(public_id=public_id).count() == 1
    assert MediaAsset.objects.filter(pk=lesson.asset.pk).count() == 1
    deleted = teacher.post(delete_url)
    assert (deleted.status_code, deleted["Location"]) == (302, instructor_url)
    assert Lesson.objects.filter(public_id=public_id).count() == 0
    assert MediaAsset.objects.filter(pk=lesson.asset.pk).count() == 0
    assert learner.get(f"/lti/lesson/{public_id}/").status_code == 404


def test_an_upload_under_way_then_abandoned_stops_saying_it_is_coming(
    live_emulator: PlatformEmulator, live_server: LiveServer, clip: bytes
) -> None:
    teacher = _picker(live_emulator)
    started = _start(teacher, size=len(clip), title="Half a clip").json()
    token, public_id = started["token"], started["lesson"]
    # Before any byte: no video at all (nothing will come unless the page uploads).
    assert _status(teacher, public_id)["state"] == "failed"
    assert _tus_create(live_server, token, public_id, len(clip)).status_code == 201
    uploading = lms_uploads.PROCESSING_TEXTS[VideoPhase.UPLOADING]
    assert _status(teacher, public_id) == {"ready": False, "state": "uploading", "text": uploading}
    assert "being uploaded" in teacher.get(f"/lti/lesson/{public_id}/").content.decode()
    # The page was closed: once the upload expires nothing is coming, and the instructor is told why.
    ResumableUpload.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    told = lms_uploads.FAILED_TEXT.format(reason=UNFINISHED_REASON)
    assert _status(teacher, public_id) == {"ready": False, "state": "failed", "text": told}
