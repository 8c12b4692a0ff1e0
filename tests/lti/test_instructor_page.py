"""The instructor page of an LMS context (lti/instructor.py): reached from an instructor's launch, also when
the iframe lost our cookie; shown and changed only by the context's instructors; its learner table as
CSV. Through the Django test client against the platform emulator (launches are real, no AGS traffic)."""

from __future__ import annotations

import csv
import html
import io
import re
import uuid
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from dramatiq import Worker

from courses.models import Enrollment, Lesson, LessonCaption, LessonProgress
from lti.models import LtiContext, LtiResourceLink, LtiScore, LtiUser
from media_pipeline.models import MediaAsset
from tests.lti.conftest import full_launch, register
from tests.lti.platform_emulator import ROLE_INSTRUCTOR, ROLE_LEARNER, PlatformEmulator
from tests.lti.test_ags import _progress, _wait

SRT = b"1\n00:00:00,500 --> 00:00:02,000\nHello there\n"


@dataclass
class Course:
    context: LtiContext
    teacher: Client
    learner: Client
    first: Lesson
    second: Lesson
    no_lesson_page: str

    @property
    def url(self) -> str:
        return f"/lti/instructor/{self.context.public_id}/"

    def lesson_url(self, lesson: Lesson, action: str) -> str:
        return f"{self.url}lessons/{lesson.public_id}/{action}/"


@pytest.fixture
def course(emulator: PlatformEmulator) -> Course:
    register(emulator)
    teacher = Client()
    response = full_launch(teacher, emulator, user="teacher-1", launch="first")
    assert response.status_code == 200
    context = LtiContext.objects.get()
    asset = MediaAsset.objects.create(
        key_prefix="lessons/ip", status="ready", published_version=1, building_version=1, duration_seconds=6.0
    )
    first = Lesson.objects.create(course=context.course, title="Lenses", asset=asset, position=0)
    second = Lesson.objects.create(course=context.course, title="Mirrors", position=1)
    emulator.launches["watch"] = {"custom": {"lesson": str(first.public_id)}, "resource_link": {"id": "watch-1"}}
    learner = Client()
    assert full_launch(learner, emulator, user="learner-1", launch="watch").status_code == 302
    return Course(context, teacher, learner, first, second, response.content.decode())


def _other_instructor(emulator: PlatformEmulator) -> Client:
    """An instructor of another LMS course on the same platform (their own context and course)."""
    emulator.users["teacher-2"] = {"sub": "teacher-sub-2", "roles": [ROLE_INSTRUCTOR], "name": "Other Teacher"}
    emulator.launches["other"] = {"context": {"id": "course-202", "title": "Chemistry"}, "resource_link": {"id": "o"}}
    client = Client()
    assert full_launch(client, emulator, user="teacher-2", launch="other").status_code == 200
    return client


def _state(course: Course) -> list[object]:
    """What the writes could change: lessons, captions, scores."""
    lessons = list(Lesson.objects.order_by("pk").values_list("title", "description", "position"))
    captions = list(LessonCaption.objects.values_list("lesson_id", "language", "vtt"))
    scores = list(LtiScore.objects.values_list("refused_version", "last_error"))
    return [lessons, captions, scores]


def _writes(course: Course, score_id: int) -> list[tuple[str, dict]]:
    return [
        (course.lesson_url(course.first, "details"), {"title": "Hacked", "description": "x"}),
        (course.lesson_url(course.first, "move"), {"direction": "down"}),
        (course.lesson_url(course.first, "captions"), {"language": "en", "file": io.BytesIO(SRT)}),
        (course.lesson_url(course.first, "delete"), {}),
        (f"{course.url}scores/{score_id}/resend/", {}),
    ]


def _refused_score(course: Course) -> LtiScore:
    link = LtiResourceLink.objects.get(resource_link_id="watch-1")
    return LtiScore.objects.create(
        resource_link=link,
        lti_user=LtiUser.objects.get(sub="learner-sub-1"),
        score_given=100,
        activity_progress="Completed",
        grading_progress="FullyGraded",
        version=1,
        refused_version=1,
        last_error="POST http://lms/lineitems/x/scores answered 400",
    )


def test_the_no_lesson_page_links_to_the_page_and_a_lost_cookie_continues_in_a_new_window(course: Course) -> None:
    (href,) = re.findall(r'id="lti-instructor-link" href="([^"]+)"', course.no_lesson_page)
    href = html.unescape(href)
    assert href.startswith(course.url + "?handoff=")

    # The iframe kept our cookie: the page itself.
    assert course.teacher.get(href).status_code == 200
    # The iframe holds another user's older session: nothing of the page, only the new window.
    other_session = course.learner.get(href)
    assert b"Open the instructor page in a new window" in other_session.content
    assert b"Lenses" not in other_session.content
    # It did not: a first-party window signs in with the single-use token, then shows the page.
    stranger = Client()
    framed = stranger.get(href)
    assert framed.status_code == 200
    assert b"Open the instructor page in a new window" in framed.content
    (handoff_url,) = re.findall(r'id="lti-open-new-window" class="button" href="([^"]+)"', framed.content.decode())
    token = stranger.get(html.unescape(handoff_url)).context["token"]
    signed_in = stranger.post("/lti/handoff/", {"token": token})
    assert (signed_in.status_code, signed_in["Location"]) == (302, course.url)
    assert b"Lenses" in stranger.get(course.url).content
    # The token is spent.
    assert Client().post("/lti/handoff/", {"token": token}).status_code == 403


def test_the_lesson_page_links_instructors_only(course: Course, emulator: PlatformEmulator) -> None:
    lesson_url = f"/lti/lesson/{course.first.public_id}/"
    assert course.learner.get(lesson_url).status_code == 200
    assert b"lti-instructor-link" not in course.learner.get(lesson_url).content
    page = course.teacher.get(lesson_url).content.decode()
    assert f'id="lti-instructor-link" href="{course.url}"' in page


@pytest.mark.parametrize("who", ["learner", "other instructor", "anonymous", "site user"])
def test_only_instructors_of_the_context_see_it_or_change_anything(
    course: Course, emulator: PlatformEmulator, who: str
) -> None:
    score = _refused_score(course)
    if who == "learner":
        client = course.learner
    elif who == "other instructor":
        client = _other_instructor(emulator)
    elif who == "anonymous":
        client = Client()
    else:
        client = Client()
        client.force_login(User.objects.create_user("someone", password=None))
    before = _state(course)

    for url in (course.url, course.url + "?format=csv"):
        response = client.get(url)
        assert response.status_code == 403, url
        assert b"Ada" not in response.content and b"Lenses" not in response.content
    for url, data in _writes(course, score.pk):
        assert client.post(url, data).status_code == 403, url

    assert _state(course) == before
    # A handoff token for another page does not open this one.
    assert client.get(course.url + "?handoff=forged").status_code == 403


def test_unknown_contexts_and_lessons_of_other_courses_are_refused(course: Course, emulator: PlatformEmulator) -> None:
    assert course.teacher.get(f"/lti/instructor/{uuid.uuid4()}/").status_code == 403
    other_teacher = _other_instructor(emulator)
    other = LtiContext.objects.get(context_id="course-202")
    foreign = Lesson.objects.create(course=other.course, title="Acids")
    before = _state(course)
    # The teacher's own context, a lesson of another course: not found here, nothing changed.
    response = course.teacher.post(course.lesson_url(foreign, "details"), {"title": "Mine now"})
    assert response.status_code == 404
    assert course.teacher.post(course.lesson_url(foreign, "delete"), {}).status_code == 404
    assert _state(course) == before
    assert other_teacher.get(f"/lti/instructor/{other.public_id}/").status_code == 200


def test_writes_need_the_csrf_token(course: Course) -> None:
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = course.teacher.cookies
    before = _state(course)
    response = strict.post(course.lesson_url(course.first, "details"), {"title": "Forged", "description": ""})
    assert response.status_code == 403
    assert _state(course) == before
    page = strict.get(course.url)
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content)
    assert token is not None
    data = {"title": "Lenses II", "description": "", "csrfmiddlewaretoken": token.group(1).decode()}
    assert strict.post(course.lesson_url(course.first, "details"), data).status_code == 302


def test_an_instructor_edits_titles_moves_lessons_and_uploads_captions(course: Course) -> None:
    teacher = course.teacher
    page = teacher.get(course.url)
    assert page.status_code == 200
    states = {item.lesson.title: item.processing for item in page.context["page"].lessons}
    assert states == {"Lenses": "Ready", "Mirrors": "No video yet"}

    response = teacher.post(course.lesson_url(course.first, "details"), {"title": " Lenses ", "description": "Optics"})
    assert (response.status_code, response["Location"]) == (302, course.url)
    assert Lesson.objects.filter(pk=course.first.pk).values_list("title", "description").get() == ("Lenses", "Optics")

    assert teacher.post(course.lesson_url(course.first, "move"), {"direction": "down"}).status_code == 302
    assert list(Lesson.objects.order_by("position").values_list("title", "position")) == [
        ("Mirrors", 0),
        ("Lenses", 1),
    ]
    assert teacher.post(course.lesson_url(course.first, "move"), {"direction": "down"}).status_code == 302  # last
    assert list(Lesson.objects.order_by("position").values_list("title", flat=True)) == ["Mirrors", "Lenses"]

    upload = io.BytesIO(SRT)
    upload.name = "hello.srt"
    response = teacher.post(
        course.lesson_url(course.first, "captions"), {"language": "en", "label": "", "file": upload}
    )
    assert response.status_code == 302
    caption = LessonCaption.objects.get()
    assert (caption.lesson_id, caption.language, caption.label, caption.source_name) == (
        course.first.pk,
        "en",
        "en",
        "hello.srt",
    )
    assert caption.vtt == "WEBVTT\n\n00:00:00.500 --> 00:00:02.000\nHello there\n"
    assert [item.captions for item in teacher.get(course.url).context["page"].lessons] == [[], ["en"]]


@pytest.mark.parametrize(
    ("action", "data", "reason"),
    [
        ("details", {"title": "  ", "description": "x"}, "a lesson needs a title"),
        ("move", {"direction": "sideways"}, "move a lesson up or down"),
        ("captions", {"language": "english!", "file": "srt"}, "BCP 47"),
        ("captions", {"language": "en", "file": "bad"}, "bad.srt:"),
    ],
)
def test_a_refused_edit_says_why_and_changes_nothing(course: Course, action: str, data: dict, reason: str) -> None:
    if "file" in data:
        upload = io.BytesIO(SRT if data["file"] == "srt" else b"not a caption file")
        upload.name = "bad.srt"
        data = {**data, "file": upload}
    before = _state(course)
    response = course.teacher.post(course.lesson_url(course.first, action), data)
    assert response.status_code == 400
    assert reason in response.context["error"]
    assert _state(course) == before


def test_learner_table_and_csv(course: Course, emulator: PlatformEmulator) -> None:
    emulator.users["learner-2"]["given_name"] = "=HYPERLINK(evil)"
    emulator.users["learner-2"]["family_name"] = ""
    assert full_launch(Client(), emulator, user="learner-2", launch="watch").status_code == 302
    ada = User.objects.get(lti_identities__sub="learner-sub-1")
    completed = timezone.now()
    LessonProgress.objects.create(user=ada, lesson=course.first, seconds_watched=6, completed_at=completed)
    score = _refused_score(course)

    page = course.teacher.get(course.url)
    content = page.content.decode()
    assert "POST http://lms/lineitems/x/scores answered 400" in content
    assert f'action="{course.url}scores/{score.pk}/resend/"' in content
    rows = [(r.learner, r.lesson, r.seconds_watched, r.completed_at) for r in page.context["page"].rows]
    assert rows == [
        ("=HYPERLINK(evil)", "Lenses", 0, None),
        ("=HYPERLINK(evil)", "Mirrors", 0, None),
        ("Ada Lovelace", "Lenses", 6, completed),
        ("Ada Lovelace", "Mirrors", 0, None),
    ]

    response = course.teacher.get(course.url + "?format=csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="learners-{course.context.public_id}.csv"'
    table = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert table[0] == [
        "learner", "email", "lesson", "lesson seconds", "seconds watched", "completed", "completed at",
        "gradebook column", "score given", "score maximum", "sent to gradebook", "last error",
    ]  # fmt: skip
    assert table[1:] == [
        ["'=HYPERLINK(evil)", "alan@lms.example", "Lenses", "6", "0", "no", "", "", "", "", "", ""],
        ["'=HYPERLINK(evil)", "alan@lms.example", "Mirrors", "", "0", "no", "", "", "", "", "", ""],
        ["Ada Lovelace", "ada@lms.example", "Lenses", "6", "6", "yes", completed.isoformat(), "watch-1", "100.0",
         "100.0", "refused", "POST http://lms/lineitems/x/scores answered 400"],
        ["Ada Lovelace", "ada@lms.example", "Mirrors", "", "0", "no", "", "", "", "", "", ""],
    ]  # fmt: skip


def test_the_page_costs_the_same_queries_for_one_learner_or_many(course: Course) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert course.teacher.get(course.url).status_code == 200
            assert b"".join(course.teacher.get(course.url + "?format=csv").streaming_content)  # streamed: read it
        return len(captured)

    one = queries()
    link = LtiResourceLink.objects.get(resource_link_id="watch-1")
    for n in range(6):
        user = User.objects.create_user(f"learner-{n}", first_name=f"L{n}", password=None)
        Enrollment.objects.create(user=user, course=course.context.course)
        LessonProgress.objects.create(user=user, lesson=course.first, seconds_watched=n)
        identity = LtiUser.objects.create(issuer="iss", sub=f"s{n}", user=user)
        LtiScore.objects.create(resource_link=link, lti_user=identity, activity_progress="InProgress",
                                grading_progress="Pending", version=1)  # fmt: skip
    assert len(course.teacher.get(course.url).context["page"].rows) == 14
    assert queries() == one


def test_a_context_without_a_course_and_a_learner_only_role_stay_out(emulator: PlatformEmulator) -> None:
    """A learner's launch of a new LMS course makes no course, so nobody instructs it yet."""
    register(emulator)
    emulator.users["learner-1"]["roles"] = [ROLE_LEARNER]
    client = Client()
    assert full_launch(client, emulator, user="learner-1", launch="first").status_code == 200
    context = LtiContext.objects.get()
    assert context.course is None
    assert client.get(f"/lti/instructor/{context.public_id}/").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_a_learner_watches_and_the_instructor_page_shows_what_reached_the_gradebook(
    live_emulator: PlatformEmulator, dramatiq_worker: Worker
) -> None:
    emulator = live_emulator
    teacher = Client()
    launched = full_launch(teacher, emulator, user="teacher-1", launch="first")
    (href,) = re.findall(r'id="lti-instructor-link" href="([^"]+)"', launched.content.decode())
    context = LtiContext.objects.get()
    asset = MediaAsset.objects.create(
        key_prefix="lessons/ip-e2e", status="ready", published_version=1, building_version=1, duration_seconds=6.0
    )
    lesson = Lesson.objects.create(course=context.course, title="Lenses", asset=asset, completion_threshold=90)
    emulator.launches["graded"] = {
        "custom": {"lesson": str(lesson.public_id)},
        "resource_link": {"id": "graded-1", "title": "Lenses (week 1)"},
        "lineitem": emulator.lineitem_url("li-7"),
    }
    learner = Client()
    assert full_launch(learner, emulator, user="learner-1", launch="graded").status_code == 302

    # The player's progress reports: half, then the rest.
    assert _progress(learner, lesson, [[0, 3.0]]) == {"seconds_watched": 3, "completed": False}
    _wait(lambda: len(emulator.recorded.scores) == 1)  # else the worker may post only the newer version
    assert _progress(learner, lesson, [[3.0, 6.0]]) == {"seconds_watched": 6, "completed": True}
    _wait(lambda: LtiScore.objects.filter(posted_version=2).exists())
    assert [(s["scoreGiven"], s["activityProgress"]) for s in emulator.recorded.scores] == [
        (50.0, "InProgress"),
        (100, "Completed"),
    ]

    page = teacher.get(html.unescape(href))
    assert page.status_code == 200
    (row,) = page.context["page"].rows
    assert (row.learner, row.lesson, row.seconds_watched, row.lesson_seconds) == ("Ada Lovelace", "Lenses", 6, 6)
    assert row.completed_at is not None
    assert [(s.column, s.score_given, s.score_maximum, s.status) for s in row.scores] == [
        ("Lenses (week 1)", 100, 100, "sent")
    ]
    assert "Lenses (week 1): 100 / 100, sent" in page.content.decode()

    table = list(
        csv.reader(
            io.StringIO(
                b"".join(teacher.get(f"/lti/instructor/{context.public_id}/?format=csv").streaming_content).decode(
                    "utf-8-sig"
                )
            )
        )
    )
    assert table[1] == [
        "Ada Lovelace", "ada@lms.example", "Lenses", "6", "6", "yes", row.completed_at.isoformat(),
        "Lenses (week 1)", "100.0", "100.0", "sent", "",
    ]  # fmt: skip
    assert len(table) == 2

    assert learner.get(f"/lti/instructor/{context.public_id}/").status_code == 403
    assert learner.get(f"/lti/instructor/{context.public_id}/?format=csv").status_code == 403


def test_the_lesson_picker_links_to_the_page(course: Course, emulator: PlatformEmulator) -> None:
    emulator.launches["pick"] = {"message_type": "LtiDeepLinkingRequest"}
    response = full_launch(course.teacher, emulator, user="teacher-1", launch="pick")
    assert (response.status_code, response["Location"]) == (302, "/lti/deep-link/")
    picker = course.teacher.get("/lti/deep-link/").content.decode()
    assert f'id="lti-instructor-link" href="{course.url}"' in picker
