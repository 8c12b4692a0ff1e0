"""A first-time LMS instructor uploads a new video from the Deep Linking picker, inside the LMS's
iframe with third-party cookies phased out (and once with them allowed), and the LMS gets its link at
once; a learner's launch of that link says "being prepared" while the pipeline is held, then plays (docs/adr/0033).

The tool (live_server, http://localhost:<port>) is framed by the emulated LMS (http://127.0.0.1:<port>):
cross-site, so only its partitioned cookies live there. The video's parts go straight to the harness's
S3 (direct upload), and every upload API call carries the upload grant and no cookie at all."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.handlers.wsgi import WSGIHandler
from playwright.sync_api import Browser, Frame, Page
from pytest_django.live_server_helper import LiveServer

from courses.models import Lesson
from lti.models import LtiContext, LtiPlatform, LtiUser
from media_pipeline import services as media_services
from media_pipeline import storage
from media_pipeline.models import ResumableUpload
from tests.conftest import make_clip
from tests.e2e.conftest import lti_lesson_frame
from tests.lti.platform_emulator import PlatformEmulator
from tests.pipeline_steps import record_sends

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def upload_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, bool]]:
    """(path, credential kind, whether a cookie came) of every upload API request the tool received."""
    seen: list[tuple[str, str, bool]] = []
    handle = WSGIHandler.__call__

    def recording(self: WSGIHandler, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/api/v1/uploads/"):
            kind = environ.get("HTTP_AUTHORIZATION", "").partition(" ")[0]
            seen.append((path, kind, bool(environ.get("HTTP_COOKIE"))))
        return handle(self, environ, start_response)

    monkeypatch.setattr(WSGIHandler, "__call__", recording)
    return seen


@pytest.fixture
def held_pipeline(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[Any, ...]]]:
    """The pipeline's messages are recorded, not sent (no worker runs): the test runs the steps itself."""
    yield record_sends(monkeypatch)
    for key in set(ResumableUpload.objects.values_list("storage_key", flat=True)):
        storage.delete_prefix(key.rsplit("/", 1)[0] + "/")


@pytest.fixture(params=["third-party cookies blocked", "third-party cookies allowed"])
def lms_browser(request: pytest.FixtureRequest, browser: Browser) -> Browser:
    """Chromium as browsers now ship it (third-party cookies phased out), and once with them allowed:
    the tool's partitioned cookies then live in the iframe, and the upload must still send none."""
    if request.param == "third-party cookies blocked":
        return request.getfixturevalue("strict_browser")  # type: ignore[no-any-return]  # pytest types fixtures as Any
    return browser


def _tool_frame(page: Page, live_server: LiveServer, selector: str) -> Frame:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for frame in page.frames:
            if frame.url.startswith(live_server.url) and frame.locator(selector).count():
                return frame
        page.wait_for_timeout(100)
    raise AssertionError(f"no tool frame with {selector}; frames: {[f.url for f in page.frames]}")


def test_a_first_time_instructor_uploads_in_the_picker_and_a_learner_sees_processing_then_plays(
    lms: PlatformEmulator,
    live_server: LiveServer,
    lms_browser: Browser,
    tmp_path: Path,
    held_pipeline: list[tuple[Any, ...]],
    upload_calls: list[tuple[str, str, bool]],
) -> None:
    LtiPlatform.objects.update(lms_upload_enabled=True)
    lms.launches["dl"] = {"message_type": "LtiDeepLinkingRequest", "accept_multiple": False}
    clip = make_clip(tmp_path / "prism.mp4", seconds=4, size="320x180")

    teacher = lms_browser.new_context()
    learner = lms_browser.new_context()
    try:
        page = teacher.new_page()
        page.goto(f"{lms.base}/course?user=teacher-1&launch=dl")
        picker = _tool_frame(page, live_server, "h1")
        assert picker.url == f"{live_server.url}/lti/deep-link/"
        assert not LtiUser.objects.get(sub="teacher-sub-1").user.is_staff  # no site account before this launch
        # The picker's "upload a new video" tab leads here.
        picker.evaluate("window.location.href = '/lti/deep-link/upload/'")
        form = _tool_frame(page, live_server, "#lti-upload-form")
        form.fill("#lti-upload-title", "Dispersion in a prism")
        form.fill("#lti-upload-description", "White light splits.")
        form.set_input_files("#lti-upload-file", str(clip))
        form.click("#lti-upload-submit")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not lms.recorded.deep_link_responses:
            page.wait_for_timeout(100)
        assert lms.recorded.deep_link_responses, form.evaluate("[window.lessonUpload, window.ltiUpload]")
        (response,) = lms.recorded.deep_link_responses
        (item,) = response["claims"]["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
        lesson = Lesson.objects.select_related("asset").get(public_id=item["custom"]["lesson"])
        assert (lesson.title, lesson.course) == ("Dispersion in a prism", LtiContext.objects.get().course)
        # The link came back with the video uploaded and its processing not started (held).
        assert [name for name, *_ in held_pipeline] == ["probe_asset"]
        assert lesson.asset.source_size == clip.stat().st_size
        # Straight to S3, every upload call with the grant and without any cookie.
        paths = [path for path, _, _ in upload_calls]
        assert paths[0] == "/api/v1/uploads/direct/" and paths[-1].endswith("/complete/")
        assert {(kind, cookie) for _, kind, cookie in upload_calls} == {("LessonUpload", False)}

        lms.launches["placed"] = {"custom": item["custom"], "resource_link": {"id": "prism-1", "title": "Prism"}}
        watching = learner.new_page()
        watching.goto(f"{lms.base}/course?user=learner-1&launch=placed")
        frame = lti_lesson_frame(watching, lesson)
        frame.wait_for_selector("#lti-processing", timeout=30_000)
        assert frame.inner_text("h1") == "Dispersion in a prism"
        assert "being prepared" in frame.inner_text("#lti-processing")

        media_services.asset_probe(asset_id=lesson.asset.pk)
        media_services.asset_transcode(asset_id=lesson.asset.pk)
        media_services.asset_publish(asset_id=lesson.asset.pk)
        # The processing page notices and turns into the player (hls.js).
        frame.wait_for_function("window.lessonPlayer && window.lessonPlayer.state === 'playing'", timeout=30_000)
        frame.wait_for_function("document.getElementById('lesson-video').currentTime > 1", timeout=30_000)
        assert frame.evaluate("window.lessonPlayer.fatalErrors") == []
    finally:
        teacher.close()
        learner.close()
