from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from courses.models import Course, Enrollment, Lesson
from media_pipeline.models import MediaAsset

pytestmark = pytest.mark.django_db


@pytest.fixture
def course() -> Course:
    course = Course.objects.create(slug="biology", title="Biology", description="Cells and more", published=True)
    asset = MediaAsset.objects.create(
        key_prefix="lessons/bio", status="ready", published_version=1, duration_seconds=75
    )
    Lesson.objects.create(course=course, title="Cells", position=0, asset=asset)
    Lesson.objects.create(course=course, title="Tissues", position=1)
    Lesson.objects.create(course=course, title="Draft notes", position=2, state="draft")
    Course.objects.create(slug="hidden", title="Hidden course", published=False)
    return course


@pytest.fixture
def learner() -> User:
    return User.objects.create_user("ada", password="pw-ada-123456")


def _logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_catalogue_lists_published_courses_only(course: Course) -> None:
    response = Client().get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Biology" in html
    assert "Hidden course" not in html
    assert 'href="#main"' in html  # skip link for keyboard users


def test_course_page_lists_published_lessons_and_offers_login(course: Course) -> None:
    response = Client().get("/courses/biology/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Cells" in html and "Tissues" in html
    assert "Draft notes" not in html
    assert "Log in to enrol" in html
    assert "coming soon" in html  # Tissues has no video yet


def test_unpublished_course_is_404(course: Course) -> None:
    assert Client().get("/courses/hidden/").status_code == 404


def test_enrol_is_a_post_and_idempotent(course: Course, learner: User) -> None:
    client = _logged_in(learner)
    assert "Enrol in this course" in client.get("/courses/biology/").content.decode()
    assert client.get("/courses/biology/enroll/").status_code == 405
    for _ in range(2):
        response = client.post("/courses/biology/enroll/")
        assert response.status_code == 302
        assert response["Location"] == "/courses/biology/"
    assert Enrollment.objects.filter(user=learner, course=course).count() == 1
    assert "You are enrolled." in client.get("/courses/biology/").content.decode()


def test_anonymous_enrol_redirects_to_login_and_creates_nothing(course: Course) -> None:
    response = Client().post("/courses/biology/enroll/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert Enrollment.objects.count() == 0


def test_lesson_page_shows_the_player_to_enrolled_learners(course: Course, learner: User) -> None:
    Enrollment.objects.create(user=learner, course=course)
    lesson = Lesson.objects.get(title="Cells")
    html = _logged_in(learner).get(f"/lessons/{lesson.public_id}/?engine=shaka").content.decode()
    assert 'id="lesson-video"' in html
    assert f'data-playback-url="/api/v1/lessons/{lesson.public_id}/playback/"' in html
    assert 'data-engine="shaka"' in html
    assert '<label for="player-speed">Speed</label>' in html
    assert "build/hls.min.js" in html and "build/shaka-player.compiled.js" in html
    assert "Tissues &rarr;" in html  # next lesson link


def test_lesson_page_offers_enrolment_instead_of_a_player(course: Course, learner: User) -> None:
    lesson = Lesson.objects.get(title="Cells")
    html = _logged_in(learner).get(f"/lessons/{lesson.public_id}/").content.decode()
    assert 'id="lesson-video"' not in html
    assert "to watch this lesson" in html


def test_draft_lesson_is_404_for_learners_but_visible_to_its_educator(course: Course, learner: User) -> None:
    Enrollment.objects.create(user=learner, course=course)
    draft = Lesson.objects.get(title="Draft notes")
    assert _logged_in(learner).get(f"/lessons/{draft.public_id}/").status_code == 404
    educator = User.objects.create_user("teach", password="pw-teach-123", is_staff=True)
    course.educators.add(educator)
    assert _logged_in(educator).get(f"/lessons/{draft.public_id}/").status_code == 200


def test_login_page_and_logout(learner: User) -> None:
    page = Client().get("/accounts/login/")
    assert page.status_code == 200
    assert '<label for="id_username">Username</label>' in page.content.decode()
    client = Client()
    response = client.post("/accounts/login/", {"username": "ada", "password": "pw-ada-123456"})
    assert response.status_code == 302
    assert client.post("/accounts/logout/").status_code == 302
    assert "_auth_user_id" not in client.session
