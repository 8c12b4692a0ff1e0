"""Learner pages through HTTP: what each visitor sees, and that enrolment is an idempotent POST."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import User
from django.test import Client

from courses.models import Course, Enrollment, Lesson
from courses.templatetags.lesson_format import clock, iso_duration
from media_pipeline.models import MediaAsset

pytestmark = pytest.mark.django_db


@pytest.fixture
def course() -> Course:
    course = Course.objects.create(slug="biology", title="Biology", description="Cells and more", published=True)
    asset = MediaAsset.objects.create(
        key_prefix="lessons/bio", status="ready", published_version=1, duration_seconds=75.4
    )
    Lesson.objects.create(course=course, title="Cells", position=0, asset=asset)
    Lesson.objects.create(course=course, title="Tissues", position=1)
    Lesson.objects.create(course=course, title="Draft notes", position=2, state="draft")
    hidden = Course.objects.create(slug="hidden", title="Hidden course", published=False)
    Lesson.objects.create(course=hidden, title="Secret lesson", position=0)
    return course


@pytest.fixture
def learner() -> User:
    return User.objects.create_user("ada", password="pw-ada-123456")


def _logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _lesson(title: str) -> Lesson:
    return Lesson.objects.get(title=title)


# --- Catalogue and course page ---------------------------------------------------------------------


def test_catalogue_lists_published_courses_only(course: Course) -> None:
    response = Client().get("/")
    assert response.status_code == 200
    assert [c.slug for c in response.context["courses"]] == ["biology"]
    html = response.content.decode()
    assert '<a href="/courses/biology/">Biology</a>' in html
    assert "Hidden course" not in html
    assert '<a class="skip-link" href="#main">Skip to content</a>' in html
    assert '<main id="main" class="wrap" tabindex="-1">' in html


def test_catalogue_without_courses_says_so() -> None:
    response = Client().get("/")
    assert response.status_code == 200
    assert "No courses are published yet." in response.content.decode()


def test_course_page_lists_published_lessons_with_durations_and_offers_login(course: Course) -> None:
    response = Client().get("/courses/biology/")
    assert response.status_code == 200
    assert [lesson.title for lesson in response.context["lessons"]] == ["Cells", "Tissues"]
    html = response.content.decode()
    assert "Draft notes" not in html
    assert '<time class="muted" datetime="PT75S">1:15</time>' in html
    assert html.count("coming soon") == 1  # Tissues has no video yet
    assert '<a class="button" href="/accounts/login/?next=/courses/biology/">Log in to enrol</a>' in html
    assert "Enrol in this course" not in html


def test_unpublished_and_unknown_courses_are_404(course: Course, learner: User) -> None:
    assert Client().get("/courses/hidden/").status_code == 404
    assert _logged_in(learner).get("/courses/hidden/").status_code == 404
    assert Client().get("/courses/nope/").status_code == 404


# --- Enrolment -------------------------------------------------------------------------------------


def test_enrol_is_a_post_and_idempotent(course: Course, learner: User) -> None:
    client = _logged_in(learner)
    page = client.get("/courses/biology/").content.decode()
    assert '<form method="post" action="/courses/biology/enroll/">' in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert client.get("/courses/biology/enroll/").status_code == 405
    assert Enrollment.objects.count() == 0
    for _ in range(2):
        response = client.post("/courses/biology/enroll/")
        assert response.status_code == 302
        assert response["Location"] == "/courses/biology/"
    assert list(Enrollment.objects.values_list("user__username", "course__slug")) == [("ada", "biology")]
    page = client.get("/courses/biology/").content.decode()
    assert "You are enrolled." in page
    assert "Enrol in this course" not in page


def test_enrol_needs_a_csrf_token(course: Course, learner: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(learner)
    assert client.post("/courses/biology/enroll/").status_code == 403
    assert Enrollment.objects.count() == 0


def test_anonymous_enrol_redirects_to_login_and_creates_nothing(course: Course) -> None:
    response = Client().post("/courses/biology/enroll/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/courses/biology/enroll/"
    assert Enrollment.objects.count() == 0


def test_enrol_in_an_unpublished_course_is_404_and_creates_nothing(course: Course, learner: User) -> None:
    assert _logged_in(learner).post("/courses/hidden/enroll/").status_code == 404
    assert Enrollment.objects.count() == 0


# --- Lesson page -----------------------------------------------------------------------------------


def test_lesson_page_shows_the_player_to_enrolled_learners(course: Course, learner: User) -> None:
    Enrollment.objects.create(user=learner, course=course)
    lesson = _lesson("Cells")
    response = _logged_in(learner).get(f"/lessons/{lesson.public_id}/?engine=shaka")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('id="lesson-video"') == 1
    assert f'data-lesson="{lesson.public_id}"' in html
    assert f'data-playback-url="/api/v1/lessons/{lesson.public_id}/playback/"' in html
    assert 'data-course-url="/courses/biology/"' in html
    assert 'data-engine="shaka"' in html
    assert f'data-csrf="{response.context["csrf_token"]}"' in html
    assert " controls muted playsinline " in html  # keyboard-usable native controls; muted autoplay is allowed
    assert '<label for="player-speed">Speed</label>' in html
    for rate in ("0.75", "1", "1.25", "1.5", "1.75", "2"):
        assert f'<option value="{rate}"' in html
    assert 'data-engine-choice="hls"\n              aria-pressed="false">HLS (hls.js)</button>' in html
    assert 'data-engine-choice="shaka"\n              aria-pressed="true">DASH (Shaka Player)</button>' in html
    # Our own copies of the players, never a public CDN.
    assert '<script src="/static/build/hls.min.js"></script>' in html
    assert '<script src="/static/build/shaka-player.compiled.js"></script>' in html
    assert '<script src="/static/js/player.js"></script>' in html
    assert "Previous:" not in html
    assert f'<a rel="next" href="/lessons/{_lesson("Tissues").public_id}/">Next: Tissues' in html


@pytest.mark.parametrize(("query", "engine"), [("", "hls"), ("?engine=hls", "hls"), ("?engine=flash", "hls")])
def test_lesson_page_defaults_to_hls_js(course: Course, learner: User, query: str, engine: str) -> None:
    Enrollment.objects.create(user=learner, course=course)
    response = _logged_in(learner).get(f"/lessons/{_lesson('Cells').public_id}/{query}")
    assert response.context["engine"] == engine
    assert f'data-engine="{engine}"' in response.content.decode()


def test_lesson_page_links_the_previous_lesson(course: Course, learner: User) -> None:
    Enrollment.objects.create(user=learner, course=course)
    html = _logged_in(learner).get(f"/lessons/{_lesson('Tissues').public_id}/").content.decode()
    assert f'<a rel="prev" href="/lessons/{_lesson("Cells").public_id}/">' in html
    assert "Previous: Cells</a>" in html
    assert 'rel="next"' not in html  # the draft after it is not a lesson learners can reach


def test_lesson_page_offers_enrolment_instead_of_a_player(course: Course, learner: User) -> None:
    response = _logged_in(learner).get(f"/lessons/{_lesson('Cells').public_id}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="lesson-video"' not in html
    assert "player.js" not in html
    assert '<p>Enrol in <a href="/courses/biology/">Biology</a> to watch this lesson.</p>' in html


def test_lesson_page_asks_anonymous_visitors_to_log_in(course: Course) -> None:
    lesson = _lesson("Cells")
    response = Client().get(f"/lessons/{lesson.public_id}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="lesson-video"' not in html
    assert f'<a href="/accounts/login/?next=/lessons/{lesson.public_id}/">Log in</a>' in html


def test_draft_lesson_is_404_for_learners_but_visible_to_its_educator(course: Course, learner: User) -> None:
    Enrollment.objects.create(user=learner, course=course)
    draft = _lesson("Draft notes")
    assert _logged_in(learner).get(f"/lessons/{draft.public_id}/").status_code == 404
    assert Client().get(f"/lessons/{draft.public_id}/").status_code == 404
    educator = User.objects.create_user("teach", password="pw-teach-123", is_staff=True)
    course.educators.add(educator)
    response = _logged_in(educator).get(f"/lessons/{draft.public_id}/")
    assert response.status_code == 200
    assert 'id="lesson-video"' in response.content.decode()


def test_lesson_of_an_unpublished_course_is_404_even_for_enrolled_learners(course: Course, learner: User) -> None:
    hidden = Course.objects.get(slug="hidden")
    Enrollment.objects.create(user=learner, course=hidden)
    secret = _lesson("Secret lesson")
    assert _logged_in(learner).get(f"/lessons/{secret.public_id}/").status_code == 404
    superuser = User.objects.create_superuser("root", password="pw-root-123456")
    assert _logged_in(superuser).get(f"/lessons/{secret.public_id}/").status_code == 200


def test_unknown_lesson_is_404() -> None:
    assert Client().get(f"/lessons/{uuid.uuid4()}/").status_code == 404
    assert Client().get("/lessons/not-a-uuid/").status_code == 404


# --- Log in and out --------------------------------------------------------------------------------


def test_login_page_and_logout_form(learner: User) -> None:
    page = Client().get("/accounts/login/?next=/courses/biology/")
    assert page.status_code == 200
    html = page.content.decode()
    assert '<label for="id_username">Username</label>' in html
    assert '<label for="id_password">Password</label>' in html
    assert '<input type="hidden" name="next" value="/courses/biology/">' in html
    assert '<a href="/accounts/login/?next=/accounts/login/">Log in</a>' in html  # header, anonymous

    client = Client()
    response = client.post("/accounts/login/", {"username": "ada", "password": "pw-ada-123456"})
    assert response.status_code == 302
    assert response["Location"] == "/"
    header = client.get("/").content.decode()
    assert '<form method="post" action="/accounts/logout/">' in header  # logout is a POST in Django 5
    assert "Log in</a>" not in header
    assert client.get("/accounts/logout/").status_code == 405
    assert client.post("/accounts/logout/").status_code == 302
    assert "_auth_user_id" not in client.session


def test_login_with_a_wrong_password_shows_an_error(learner: User) -> None:
    response = Client().post("/accounts/login/", {"username": "ada", "password": "wrong"})
    assert response.status_code == 200
    assert '<div class="error" role="alert">' in response.content.decode()


# --- Filters ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "shown", "iso"),
    [(None, "", ""), (0, "0:00", "PT0S"), (7.6, "0:08", "PT8S"), (75.4, "1:15", "PT75S"), (3725, "1:02:05", "PT3725S")],
)
def test_duration_filters(seconds: float | None, shown: str, iso: str) -> None:
    assert clock(seconds) == shown
    assert iso_duration(seconds) == iso
