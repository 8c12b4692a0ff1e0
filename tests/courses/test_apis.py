from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from courses.models import Course, Lesson
from media_pipeline.models import MediaAsset

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue() -> dict[str, object]:
    public = Course.objects.create(slug="algebra", title="Algebra", description="Numbers", published=True)
    hidden = Course.objects.create(slug="draft-course", title="Draft course", published=False)
    asset = MediaAsset.objects.create(
        key_prefix="lessons/p", status="ready", published_version=1, duration_seconds=12.5
    )
    ready = Lesson.objects.create(course=public, title="Intro", position=0, asset=asset)
    pending = Lesson.objects.create(course=public, title="Next", position=1)
    draft = Lesson.objects.create(course=public, title="Unfinished", position=2, state="draft")
    hidden_lesson = Lesson.objects.create(course=hidden, title="Hidden", position=0)
    return {"public": public, "ready": ready, "pending": pending, "draft": draft, "hidden_lesson": hidden_lesson}


def test_course_list_shows_published_courses_only(catalogue: dict) -> None:
    response = APIClient().get("/api/v1/courses/")
    assert response.status_code == 200
    assert response.json() == [{"slug": "algebra", "title": "Algebra", "description": "Numbers"}]


def test_course_detail_lists_published_lessons_in_order(catalogue: dict) -> None:
    response = APIClient().get("/api/v1/courses/algebra/")
    assert response.status_code == 200
    body = response.json()
    assert [lesson["title"] for lesson in body["lessons"]] == ["Intro", "Next"]
    assert body["lessons"][0] == {
        "id": str(catalogue["ready"].public_id),
        "title": "Intro",
        "description": "",
        "position": 0,
        "duration": 12.5,
        "playable": True,
    }
    assert body["lessons"][1]["playable"] is False
    assert body["lessons"][1]["duration"] is None


@pytest.mark.parametrize("path", ["/api/v1/courses/draft-course/", "/api/v1/courses/missing/"])
def test_unpublished_or_missing_course_is_404(catalogue: dict, path: str) -> None:
    assert APIClient().get(path).status_code == 404


def test_lesson_detail_by_public_uuid(catalogue: dict) -> None:
    lesson = catalogue["ready"]
    response = APIClient().get(f"/api/v1/lessons/{lesson.public_id}/")
    assert response.status_code == 200
    assert response.json()["id"] == str(lesson.public_id)


@pytest.mark.parametrize("which", ["draft", "hidden_lesson"])
def test_draft_lessons_and_lessons_of_hidden_courses_are_404(catalogue: dict, which: str) -> None:
    lesson = catalogue[which]
    assert APIClient().get(f"/api/v1/lessons/{lesson.public_id}/").status_code == 404


def test_unknown_lesson_is_404_and_sequential_ids_are_not_routes(catalogue: dict) -> None:
    assert APIClient().get(f"/api/v1/lessons/{uuid.uuid4()}/").status_code == 404
    assert APIClient().get(f"/api/v1/lessons/{catalogue['ready'].pk}/").status_code == 404


def test_openapi_schema_and_docs_are_served(catalogue: dict) -> None:
    client = APIClient()
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/courses/" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    assert b"cdn.jsdelivr" not in docs.content
