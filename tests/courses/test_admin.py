from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from pytest_django import DjangoCaptureOnCommitCallbacks, Settings

from courses import services
from courses.models import Course, Lesson, LessonCaption
from media_pipeline import services as media_services
from media_pipeline import storage, uploads
from media_pipeline.models import AssetStatus, MediaAsset


@pytest.fixture
def educator(db: None) -> User:
    return User.objects.create_user("teacher", password="pw-teacher-1", is_staff=True)


@pytest.fixture
def other_educator(db: None) -> User:
    return User.objects.create_user("other", password="pw-other-1", is_staff=True)


@pytest.fixture
def courses(educator: User, other_educator: User) -> tuple[Course, Course]:
    mine = Course.objects.create(slug="mine", title="Mine", published=True)
    mine.educators.add(educator)
    theirs = Course.objects.create(slug="theirs", title="Theirs", published=True)
    theirs.educators.add(other_educator)
    return mine, theirs


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_educator_sees_only_courses_they_teach(educator: User, courses: tuple[Course, Course]) -> None:
    mine, theirs = courses
    response = _client(educator).get("/admin/courses/course/")
    assert response.status_code == 200
    listed = list(response.context["cl"].queryset)
    assert listed == [mine]
    assert _client(educator).get(f"/admin/courses/course/{theirs.pk}/change/").status_code == 302


def test_educator_cannot_edit_lessons_of_another_course(educator: User, courses: tuple[Course, Course]) -> None:
    _, theirs = courses
    lesson = Lesson.objects.create(course=theirs, title="Secret", position=0)
    client = _client(educator)
    response = client.post(
        f"/admin/courses/lesson/{lesson.pk}/change/",
        {"course": theirs.pk, "title": "Hijacked", "description": "", "state": "published", "position": 0},
    )
    assert response.status_code == 302  # redirected away: the object is outside their scope
    lesson.refresh_from_db()
    assert lesson.title == "Secret"
    assert client.get(f"/admin/courses/lesson/{lesson.pk}/status/").status_code == 404


def test_educator_cannot_move_a_lesson_into_a_course_they_do_not_teach(
    educator: User, courses: tuple[Course, Course]
) -> None:
    mine, theirs = courses
    response = _client(educator).post(
        "/admin/courses/lesson/add/",
        {"course": theirs.pk, "title": "Sneaky", "description": "", "state": "published", "position": 0},
    )
    assert response.status_code == 200  # form redisplayed with an error
    assert "Select a valid choice" in response.content.decode()
    assert Lesson.objects.count() == 0


def test_upload_from_the_lesson_page_stores_the_source_and_schedules_processing(
    educator: User, courses: tuple[Course, Course], django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    mine, _ = courses
    payload = b"\x00\x00\x00\x18ftypmp42" + b"x" * 4096
    video = SimpleUploadedFile("My Lecture (final).mp4", payload, content_type="video/mp4")
    with django_capture_on_commit_callbacks() as callbacks:
        response = _client(educator).post(
            "/admin/courses/lesson/add/",
            {
                "course": mine.pk,
                "title": "Week 1",
                "description": "",
                "state": "published",
                "position": 0,
                "video": video,
            },
        )
    assert response.status_code == 302
    lesson = Lesson.objects.get(title="Week 1")
    asset = MediaAsset.objects.get(pk=lesson.asset_id)
    assert asset.status == AssetStatus.UPLOADED
    assert asset.source_size == len(payload)
    assert asset.source_name == "My Lecture (final).mp4"
    # The stored name is generated, never the user's file name.
    assert asset.source_key.startswith(f"sources/{asset.public_id}/")
    assert "Lecture" not in asset.source_key
    assert asset.key_prefix == f"lessons/{lesson.public_id}"
    assert len(callbacks) == 1  # the probe is enqueued after commit


def test_empty_upload_is_refused_and_nothing_is_created(educator: User, courses: tuple[Course, Course]) -> None:
    mine, _ = courses
    video = SimpleUploadedFile("empty.mp4", b"", content_type="video/mp4")
    response = _client(educator).post(
        "/admin/courses/lesson/add/",
        {"course": mine.pk, "title": "Empty", "description": "", "state": "published", "position": 0, "video": video},
    )
    assert response.status_code == 200
    assert "The submitted file is empty." in response.content.decode()
    assert Lesson.objects.count() == 0
    assert MediaAsset.objects.count() == 0


def test_a_new_lesson_without_a_position_goes_last_under_the_course_lock(
    educator: User, courses: tuple[Course, Course], monkeypatch: pytest.MonkeyPatch
) -> None:
    mine, _ = courses
    Lesson.objects.create(course=mine, title="First", position=0)
    Lesson.objects.create(course=mine, title="Second", position=4)
    placed: list[str] = []
    real = services.lesson_add
    monkeypatch.setattr(services, "lesson_add", lambda *, lesson: placed.append(lesson.title) or real(lesson=lesson))
    for title, position in (("Third", 0), ("Pinned", 2)):
        response = _client(educator).post(
            "/admin/courses/lesson/add/",
            {"course": mine.pk, "title": title, "description": "", "state": "published", "position": position},
        )
        assert response.status_code == 302
    assert placed == ["Third", "Pinned"]  # the service that locks the course row, as lesson_create does
    positions = dict(Lesson.objects.filter(course=mine).values_list("title", "position"))
    assert positions == {"First": 0, "Second": 4, "Third": 5, "Pinned": 2}


def test_a_video_over_the_size_limit_is_refused_in_the_upload_widgets_words(
    educator: User, courses: tuple[Course, Course], settings: Settings
) -> None:
    mine, _ = courses
    settings.MAX_UPLOAD_BYTES = 1000
    video = SimpleUploadedFile("big.mp4", b"x" * 2048, content_type="video/mp4")
    response = _client(educator).post(
        "/admin/courses/lesson/add/",
        {"course": mine.pk, "title": "Big", "description": "", "state": "published", "position": 0, "video": video},
    )
    assert response.status_code == 200
    with pytest.raises(uploads.UploadTooLarge) as refused:
        uploads.check_size(2048)
    assert str(refused.value) == "The file is 2.0 KB; the largest upload allowed is 1000 bytes."
    assert str(refused.value) in response.content.decode()
    assert (Lesson.objects.count(), MediaAsset.objects.count()) == (0, 0)


def test_status_endpoint_reports_progress_and_failure(educator: User, courses: tuple[Course, Course]) -> None:
    mine, _ = courses
    asset = MediaAsset.objects.create(
        key_prefix="lessons/x", status=AssetStatus.FAILED, failure_reason="not a video: no video stream"
    )
    lesson = Lesson.objects.create(course=mine, title="Broken", position=0, asset=asset)
    response = _client(educator).get(f"/admin/courses/lesson/{lesson.pk}/status/")
    assert response.status_code == 200
    assert response.json() == {
        "status": "failed",
        "text": "Failed",
        "progress": 0,
        "failure_reason": "not a video: no video stream",
        "playable": False,
        "provisional": False,
        "regions": [],
    }


def test_status_endpoint_says_a_quick_stream_plays_while_the_full_ladder_is_encoded(
    educator: User, courses: tuple[Course, Course]
) -> None:
    mine, _ = courses
    asset = MediaAsset.objects.create(
        key_prefix="lessons/quick", source_key="sources/x/y", status=AssetStatus.TRANSCODING, progress=40,
        published_version=1, building_version=2, published_provisional=True,
    )  # fmt: skip
    lesson = Lesson.objects.create(course=mine, title="Quick", position=0, asset=asset)
    body = _client(educator).get(f"/admin/courses/lesson/{lesson.pk}/status/").json()
    assert body["text"] == "Encoding and packaging (40%); a quick stream is playing, full quality in progress"
    assert (body["status"], body["progress"], body["playable"], body["provisional"]) == ("transcoding", 40, True, True)


def test_non_staff_user_cannot_open_the_admin(db: None, courses: tuple[Course, Course]) -> None:
    learner = User.objects.create_user("learner", password="pw-learner-1")
    response = _client(learner).get("/admin/courses/course/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_educator_reorders_lessons_in_the_course_page(educator: User, courses: tuple[Course, Course]) -> None:
    mine, _ = courses
    first = Lesson.objects.create(course=mine, title="First", position=0)
    second = Lesson.objects.create(course=mine, title="Second", position=1)
    form = {
        "slug": "mine", "title": "Mine", "description": "", "published": "on",
        "lessons-TOTAL_FORMS": "2", "lessons-INITIAL_FORMS": "2", "lessons-MIN_NUM_FORMS": "0",
        "lessons-MAX_NUM_FORMS": "1000",
        "lessons-0-id": str(first.pk), "lessons-0-course": str(mine.pk), "lessons-0-position": "1",
        "lessons-0-title": "First", "lessons-0-state": "published",
        "lessons-1-id": str(second.pk), "lessons-1-course": str(mine.pk), "lessons-1-position": "0",
        "lessons-1-title": "Second", "lessons-1-state": "published",
    }  # fmt: skip
    response = _client(educator).post(f"/admin/courses/course/{mine.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert list(mine.lessons.order_by("position", "id").values_list("title", flat=True)) == ["Second", "First"]


def test_preview_player_is_on_the_lesson_page_once_playable(educator: User, courses: tuple[Course, Course]) -> None:
    mine, _ = courses
    asset = MediaAsset.objects.create(key_prefix="lessons/p", status=AssetStatus.READY, published_version=1)
    lesson = Lesson.objects.create(course=mine, title="Ready one", position=0, asset=asset)
    html = _client(educator).get(f"/admin/courses/lesson/{lesson.pk}/change/").content.decode()
    assert 'id="lesson-video"' in html
    assert f'data-playback-url="/api/v1/lessons/{lesson.public_id}/playback/"' in html
    assert f'data-status-url="/admin/courses/lesson/{lesson.pk}/status/"' in html


def test_form_uploads_count_towards_the_educators_quota(
    educator: User, courses: tuple[Course, Course], settings: Settings
) -> None:
    settings.UPLOAD_QUOTA_BYTES = 6000
    mine, _ = courses
    form = {"course": mine.pk, "description": "", "state": "published", "position": 0}
    first = SimpleUploadedFile("a.mp4", b"x" * 4000, content_type="video/mp4")
    response = _client(educator).post("/admin/courses/lesson/add/", {**form, "title": "One", "video": first})
    assert response.status_code == 302
    assert uploads.quota_used(user=educator) == 4000

    second = SimpleUploadedFile("b.mp4", b"y" * 3000, content_type="video/mp4")
    response = _client(educator).post("/admin/courses/lesson/add/", {**form, "title": "Two", "video": second})
    assert response.status_code == 200
    assert "This file is 2.9 KB, but only 2.0 KB of your 5.9 KB storage quota is left." in response.content.decode()
    assert list(Lesson.objects.values_list("title", flat=True)) == ["One"]
    assert uploads.quota_used(user=educator) == 4000
    lesson = Lesson.objects.get(title="One")
    storage.delete_prefix(f"sources/{lesson.asset.public_id}/")


def test_educator_protects_a_lesson_and_its_video_is_rebuilt_encrypted(
    educator: User, courses: tuple[Course, Course], django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    mine, _ = courses
    video = SimpleUploadedFile("talk.mp4", b"\x00\x00\x00\x18ftypmp42" + b"x" * 512, content_type="video/mp4")
    form = {"course": mine.pk, "title": "Paid", "description": "", "state": "published", "position": 0}
    with django_capture_on_commit_callbacks():
        response = _client(educator).post("/admin/courses/lesson/add/", {**form, "protected": "on", "video": video})
    assert response.status_code == 302
    lesson = Lesson.objects.get(title="Paid")
    assert lesson.protected is True
    assert MediaAsset.objects.get(pk=lesson.asset_id).protected is True  # the upload is packaged encrypted

    # Published in the clear (say, before protection was ticked): unticking and ticking rebuild it.
    MediaAsset.objects.filter(pk=lesson.asset_id).update(
        status=AssetStatus.READY, published_version=1, building_version=1, probe={"duration": 4.0}, protected=False
    )
    Lesson.objects.filter(pk=lesson.pk).update(protected=False)
    with django_capture_on_commit_callbacks() as callbacks:
        response = _client(educator).post(f"/admin/courses/lesson/{lesson.pk}/change/", {**form, "protected": "on"})
    assert response.status_code == 302
    asset = MediaAsset.objects.get(pk=lesson.asset_id)
    # The clear v1 is withdrawn at once (issue 13): nothing plays until the encrypted v2 is published.
    assert (asset.protected, asset.status, asset.building_version, asset.published_version) == (
        True, AssetStatus.PROBED, 2, None
    )  # fmt: skip
    assert len(callbacks) == 2  # the transcode of v2 and the deletion of v1, after commit
    # Saving again without a change builds nothing more.
    with django_capture_on_commit_callbacks() as callbacks:
        _client(educator).post(f"/admin/courses/lesson/{lesson.pk}/change/", {**form, "protected": "on"})
    assert callbacks == [] and MediaAsset.objects.get(pk=lesson.asset_id).building_version == 2


def _caption_form(lesson: Lesson, rows: list[dict[str, object]], *, initial: int = 0) -> dict[str, object]:
    """The lesson change form with its captions inline (Django's formset fields)."""
    data: dict[str, object] = {
        "course": lesson.course_id, "title": lesson.title, "description": "", "state": "published", "position": 0,
        "captions-TOTAL_FORMS": len(rows), "captions-INITIAL_FORMS": initial,
        "captions-MIN_NUM_FORMS": 0, "captions-MAX_NUM_FORMS": 1000,
    }  # fmt: skip
    for index, row in enumerate(rows):
        data.update({f"captions-{index}-{key}": value for key, value in row.items()})
    return data


SRT = b"1\r\n00:00:01,000 --> 00:00:02,500\r\nHello\r\n"


def test_educator_adds_captions_and_a_published_video_gets_a_new_version(
    educator: User, courses: tuple[Course, Course], django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    mine, _ = courses
    asset = MediaAsset.objects.create(
        key_prefix="lessons/captions", status=AssetStatus.READY, published_version=1, building_version=1,
        probe={"duration": 6.0}, duration_seconds=6.0,
    )  # fmt: skip
    lesson = Lesson.objects.create(course=mine, title="Optics", asset=asset)
    rows = [
        {"kind": "subtitles", "language": "en", "label": "English", "file": SimpleUploadedFile("en.srt", SRT)},
        {"kind": "chapters", "language": "en", "label": "Chapters",
         "file": SimpleUploadedFile("ch.vtt", b"WEBVTT\n\n00:00.000 --> 00:06.000\nAll\n")},
    ]  # fmt: skip
    with django_capture_on_commit_callbacks() as callbacks:
        response = _client(educator).post(f"/admin/courses/lesson/{lesson.pk}/change/", _caption_form(lesson, rows))
    assert response.status_code == 302
    captions = list(LessonCaption.objects.filter(lesson=lesson).order_by("kind").values_list("kind", "source_name"))
    assert captions == [("chapters", "ch.vtt"), ("subtitles", "en.srt")]
    assert LessonCaption.objects.get(kind="subtitles").vtt == "WEBVTT\n\n00:00:01.000 --> 00:00:02.500\nHello\n"
    asset.refresh_from_db()
    assert [(t.kind, t.language, t.label) for t in media_services.asset_text_tracks(asset_id=asset.pk)] == [
        ("chapters", "en", "Chapters"), ("subtitles", "en", "English")
    ]  # fmt: skip
    assert (asset.status, asset.building_version, asset.published_version) == (AssetStatus.PROBED, 2, 1)
    assert len(callbacks) == 1  # the (derived) version 2, after commit


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        ("en.srt", b"", "The submitted file is empty."),
        ("en.srt", b"\r\n \n", "en.srt: the file is empty."),
        (
            "en.srt",
            "1\n00:00:01,000 --> 00:00:02,000\nd\u00e9j\u00e0\n".encode("cp1252"),
            "en.srt: the file is not UTF-8",
        ),
        ("en.srt", b"1\n00:00:01,000 --> 00:00:09,000\nLate\n", "en.srt: cue 1 ends at 00:00:09.000, after the end"),
        ("en.vtt", b"WEBVTT\n\nHello there\n", "en.vtt: line 3: expected a timing line"),
    ],
)
def test_a_bad_caption_file_is_refused_with_its_reason_and_nothing_changes(
    educator: User, courses: tuple[Course, Course],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks, name: str, data: bytes, error: str,
) -> None:  # fmt: skip
    mine, _ = courses
    asset = MediaAsset.objects.create(
        key_prefix="lessons/bad-captions", status=AssetStatus.READY, published_version=1, building_version=1,
        probe={"duration": 6.0}, duration_seconds=6.0,
    )  # fmt: skip
    lesson = Lesson.objects.create(course=mine, title="Optics", asset=asset)
    rows = [
        {"kind": "subtitles", "language": "fr", "label": "Fran\u00e7ais", "file": SimpleUploadedFile("fr.srt", SRT)},
        {"kind": "subtitles", "language": "en", "label": "English", "file": SimpleUploadedFile(name, data)},
    ]
    form = _caption_form(lesson, rows)
    form["title"] = "Renamed"
    with django_capture_on_commit_callbacks() as callbacks:
        response = _client(educator).post(f"/admin/courses/lesson/{lesson.pk}/change/", form)
    assert response.status_code == 200  # the form again, with the reason
    assert error in response.content.decode()
    assert callbacks == []
    assert LessonCaption.objects.count() == 0
    lesson.refresh_from_db()
    asset.refresh_from_db()
    assert (lesson.title, asset.text_tracks.count(), asset.building_version) == ("Optics", 0, 1)


def test_caption_language_codes_are_checked(educator: User, courses: tuple[Course, Course]) -> None:
    mine, _ = courses
    lesson = Lesson.objects.create(course=mine, title="Optics")
    rows = [{"kind": "subtitles", "language": "english", "label": "English", "file": SimpleUploadedFile("e.srt", SRT)}]
    response = _client(educator).post(f"/admin/courses/lesson/{lesson.pk}/change/", _caption_form(lesson, rows))
    assert response.status_code == 200
    assert "Use a BCP 47 language code such as en, fr or pt-BR." in response.content.decode()
    assert LessonCaption.objects.count() == 0


def test_status_of_a_chunked_encode_counts_the_chunks_done(educator: User, courses: tuple[Course, Course]) -> None:
    from media_pipeline.models import ChunkedBuild, EncodeChunk

    mine, _ = courses
    asset = MediaAsset.objects.create(
        key_prefix="lessons/long", status=AssetStatus.TRANSCODING, building_version=1, progress=46
    )
    build = ChunkedBuild.objects.create(asset=asset, version=1, chunk_seconds=120)
    for index, state in enumerate(["done", "done", "running", "pending", "pending"]):
        EncodeChunk.objects.create(build=build, kind="video", index=index, state=state)
    EncodeChunk.objects.create(build=build, kind="audio", index=0, state="done")
    lesson = Lesson.objects.create(course=mine, title="Long", position=0, asset=asset)
    response = _client(educator).get(f"/admin/courses/lesson/{lesson.pk}/status/")
    assert response.json()["text"] == "Encoding and packaging (46%, 2 of 5 chunks)"
    assert response.json()["progress"] == 46


def test_the_lesson_course_filter_lists_only_the_courses_an_educator_teaches(
    educator: User, courses: tuple[Course, Course]
) -> None:
    mine, theirs = courses
    also_mine = Course.objects.create(slug="also-mine", title="Also mine")
    also_mine.educators.add(educator)
    Lesson.objects.create(course=theirs, title="Theirs 1", position=0)
    Lesson.objects.create(course=mine, title="Mine 1", position=0)
    page = _client(educator).get("/admin/courses/lesson/")
    assert page.status_code == 200
    course_filter = next(f for f in page.context["cl"].filter_specs if f.field_path == "course")
    assert course_filter.lookup_choices == [(also_mine.pk, "Also mine"), (mine.pk, "Mine")]
    assert b"Theirs" not in page.content
    # Asking for the other course's lessons by URL shows nothing of it.
    other = _client(educator).get(f"/admin/courses/lesson/?course__id__exact={theirs.pk}")
    assert b"Theirs" not in other.content
    root = User.objects.create_superuser("root", password="pw-root-12345")
    root_page = _client(root).get("/admin/courses/lesson/")
    root_filter = next(f for f in root_page.context["cl"].filter_specs if f.field_path == "course")
    assert root_filter.lookup_choices == [(also_mine.pk, "Also mine"), (mine.pk, "Mine"), (theirs.pk, "Theirs")]


def test_an_educator_with_token_permissions_mints_tokens_only_for_themselves(
    educator: User, other_educator: User
) -> None:
    from django.contrib.auth.models import Permission
    from rest_framework.authtoken.models import Token

    educator.user_permissions.add(*Permission.objects.filter(content_type__app_label="authtoken"))
    root = User.objects.create_superuser("root", password="pw-root-12345")
    theirs = Token.objects.create(user=other_educator)
    client = _client(educator)
    # Another user (a superuser, even) is not on offer, and posting their id anyway creates nothing.
    form = client.get("/admin/authtoken/tokenproxy/add/")
    assert form.status_code == 200 and f'value="{root.pk}"'.encode() not in form.content
    for victim in (root, other_educator):
        refused = client.post("/admin/authtoken/tokenproxy/add/", {"user": victim.pk})
        assert refused.status_code == 200 and b"errorlist" in refused.content
    assert list(Token.objects.values_list("user__username", flat=True)) == ["other"]
    # Their own token: yes. The list and the other user's token page show only theirs.
    assert client.post("/admin/authtoken/tokenproxy/add/", {"user": educator.pk}).status_code == 302
    listed = client.get("/admin/authtoken/tokenproxy/")
    assert [t.user_id for t in listed.context["cl"].queryset] == [educator.pk]
    assert theirs.key.encode() not in listed.content
    assert client.get(f"/admin/authtoken/tokenproxy/{other_educator.pk}/change/").status_code == 302
    assert client.post(f"/admin/authtoken/tokenproxy/{other_educator.pk}/delete/", {"post": "yes"}).status_code == 302
    assert Token.objects.filter(pk=theirs.pk).exists()
    # A superuser manages everyone's.
    assert _client(root).post("/admin/authtoken/tokenproxy/add/", {"user": root.pk}).status_code == 302
    assert Token.objects.count() == 3
