"""The instructor page's learner table for a large class (lti/instructor.py): pages of LEARNERS_PER_PAGE by
name, each page and each CSV chunk at a fixed number of queries, and the CSV streaming every learner."""

from __future__ import annotations

import csv
import io
import warnings

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.db import connection
from django.http import StreamingHttpResponse
from django.test import AsyncClient
from django.test.utils import CaptureQueriesContext

from courses.models import Enrollment, LessonProgress
from lti.instructor import LEARNERS_PER_PAGE
from lti.models import LtiResourceLink, LtiScore, LtiUser
from tests.lti import test_instructor_page
from tests.lti.test_instructor_page import Course

course = test_instructor_page.course  # the fixture: an LMS course with a teacher, Ada and two lessons

pytestmark = pytest.mark.django_db


def _enrol(course: Course, count: int) -> None:
    """`count` more learners, named so that the order by name is known: Learner 000, Learner 001, ..."""
    link = LtiResourceLink.objects.get(resource_link_id="watch-1")
    users = User.objects.bulk_create(
        User(username=f"big-{n:03}", first_name="Zed", last_name=f"Learner {n:03}") for n in range(count)
    )
    Enrollment.objects.bulk_create(Enrollment(user=user, course=course.context.course) for user in users)
    LessonProgress.objects.bulk_create(
        LessonProgress(user=user, lesson=course.first, seconds_watched=n % 7) for n, user in enumerate(users)
    )
    identities = LtiUser.objects.bulk_create(LtiUser(issuer="iss", sub=f"big-{n}", user=u) for n, u in enumerate(users))
    LtiScore.objects.bulk_create(
        LtiScore(resource_link=link, lti_user=identity, activity_progress="InProgress", grading_progress="Pending")
        for identity in identities
    )


def _csv(course: Course) -> tuple[list[list[str]], int]:
    """The CSV export's rows, and the queries it took (the response is streamed: reading it runs them)."""
    with CaptureQueriesContext(connection) as captured:
        response = course.teacher.get(course.url + "?format=csv")
        assert isinstance(response, StreamingHttpResponse)
        body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body))), len(captured)


def _page(course: Course, number: str) -> tuple[list[str], int]:
    with CaptureQueriesContext(connection) as captured:
        response = course.teacher.get(course.url, {"page": number})
        assert response.status_code == 200
    learners = [row.learner for row in response.context["page"].rows if row.lesson == "Lenses"]
    return learners, len(captured)


def test_a_large_class_pages_by_name_and_the_csv_streams_everyone(course: Course) -> None:
    assert LEARNERS_PER_PAGE == 50
    few_rows, few_queries = _csv(course)  # Ada alone: one chunk
    _, page_queries = _page(course, "1")
    assert len(few_rows) == 1 + 2  # the header, Ada's two lessons

    _enrol(course, 119)  # 120 learners with Ada Lovelace, who sorts last ("Learner ..." < "Lovelace")
    rows, queries = _csv(course)
    assert len(rows) == 1 + 120 * 2  # every learner, each of the two lessons: nobody is cut to a page
    assert len({row[0] for row in rows[1:]}) == 120
    assert queries == few_queries + 2 * 3  # three chunks instead of one: three queries more per chunk

    first, first_queries = _page(course, "1")
    third, third_queries = _page(course, "3")
    assert first_queries == third_queries == page_queries  # the same queries for one learner or 120
    assert first[:2] == ["Zed Learner 000", "Zed Learner 001"] and len(first) == 50
    assert len(third) == 20 and third[-1] == "Ada Lovelace"
    second, _ = _page(course, "2")
    assert set(first).isdisjoint(second) and set(second).isdisjoint(third)
    assert len(set(first + second + third)) == 120
    assert _page(course, "99")[0] == third  # past the end: the last page
    assert _page(course, "x")[0] == first  # not a number: the first

    content = course.teacher.get(course.url, {"page": "2"}).content.decode()
    assert 'href="?page=1"' in content and 'href="?page=3"' in content
    assert "Learners 51–100 of 120" in content


def test_under_asgi_the_csv_is_streamed_a_chunk_of_learners_at_a_time(course: Course) -> None:
    _enrol(course, 119)
    client = AsyncClient()
    client.cookies = course.teacher.cookies  # the instructor's session

    async def fetch() -> tuple[int, bool, list[bytes]]:
        response = await client.get(course.url + "?format=csv")
        # A synchronous iterator would be read whole into memory by Django's ASGI handler.
        return response.status_code, response.is_async, [chunk async for chunk in response.streaming_content]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status, is_async, chunks = async_to_sync(fetch)()
    assert (status, is_async, len(chunks)) == (200, True, 3)  # 50, 50 and 20 learners
    rows = list(csv.reader(io.StringIO(b"".join(chunks).decode("utf-8-sig"))))
    assert len(rows) == 1 + 120 * 2
    assert rows[1][:3] == ["Zed Learner 000", "", "Lenses"]
    assert [str(w.message) for w in caught if "StreamingHttpResponse" in str(w.message)] == []
