from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from pytest_django import Settings

from analytics import ingest
from analytics.beacons import Batch, batch_record, parse_batch
from analytics.models import QoeEvent, QoeMinute
from analytics.rollups import qoe_prune, rollup_batches
from analytics.selectors import lesson_engagement
from courses.models import Course, Lesson
from media_pipeline.models import MediaAsset
from tests.analytics.test_beacons import body

pytestmark = pytest.mark.django_db
LESSON = str(uuid.uuid4())
AT = datetime(2026, 11, 25, 10, 15, 30, tzinfo=UTC)


def _batch(**kw: object) -> Batch:
    return parse_batch(body(lesson=LESSON, view_id=str(uuid.uuid4()), **kw))


def test_batches_roll_up_by_minute_and_bounded_dimensions(settings: Settings) -> None:
    settings.QOE_PATHWAYS = ["cdn-a"]
    started = [{"type": "play_request", "t": 0}, {"type": "first_frame", "t": 700}, {"type": "heartbeat", "t": 10700}]
    failed = [{"type": "play_request", "t": 0}, {"type": "error", "t": 300, "fatal": True}]
    rollup_batches([(_batch(events=started, pathway="cdn-a"), AT), (_batch(events=failed, pathway="cdn-a"), AT)])
    rollup_batches([(_batch(events=started, pathway="weird"), AT + timedelta(seconds=20))])
    rollup_batches([(_batch(events=started, pathway="cdn-a"), AT + timedelta(minutes=1))])

    rows = {
        (r.minute.minute, r.pathway): (r.plays, r.starts, r.failures, r.watch_ms, r.startup_ms_sum, r.startup_count)
        for r in QoeMinute.objects.all()
    }
    assert rows == {
        (15, "cdn-a"): (2, 1, 1, 10700 + 300, 700, 1),
        (15, "other"): (1, 1, 0, 10700, 700, 1),
        (16, "cdn-a"): (1, 1, 0, 10700, 700, 1),
    }


def test_drain_writes_raw_events_and_rollups_together() -> None:
    ingest.client().delete(ingest.STREAM)
    batch = _batch(events=[{"type": "play_request", "t": 0}, {"type": "first_frame", "t": 400}])
    ingest.client().xadd(ingest.STREAM, {"b": batch_record(batch), "at": "1800000000.000"})
    assert ingest.qoe_drain() == 2
    row = QoeMinute.objects.get()
    assert (row.plays, row.starts, row.startup_ms_sum, str(row.lesson)) == (1, 1, 400, LESSON)


def test_prune_keeps_rollups_and_recent_events(settings: Settings) -> None:
    settings.QOE_RAW_RETENTION_DAYS = 30
    common = {"view_id": uuid.uuid4(), "lesson": LESSON, "t_ms": 0, "pathway": "o", "browser": "b", "device": "desktop"}
    QoeEvent.objects.create(type="play_request", received_at=AT - timedelta(days=31), **common)
    QoeEvent.objects.create(type="end", received_at=AT - timedelta(days=29), **common)
    QoeMinute.objects.create(minute=AT - timedelta(days=90), lesson=LESSON, pathway="o", device="desktop", browser="b")
    assert qoe_prune(now=AT) == 1
    assert list(QoeEvent.objects.values_list("type", flat=True)) == ["end"]
    assert QoeMinute.objects.count() == 1


def _view(kind_positions: list[tuple[str, float | None]]) -> None:
    view = uuid.uuid4()
    for index, (kind, position) in enumerate(kind_positions):
        data = {} if position is None else {"position": position}
        QoeEvent.objects.create(
            view_id=view, lesson=LESSON, type=kind, t_ms=index * 1000, data=data,
            pathway="origin", browser="Chrome", device="desktop", received_at=AT,
        )  # fmt: skip


@pytest.fixture
def four_views() -> None:
    _view([("play_request", None), ("heartbeat", 30), ("end", None)])  # A: watched to the end
    _view([("play_request", None), ("heartbeat", 10), ("heartbeat", 45)])  # B: left at 45 s
    _view([("play_request", None), ("heartbeat", 95)])  # C: reached 95 s
    _view([("play_request", None)])  # D: never started
    QoeMinute.objects.create(
        minute=AT, lesson=LESSON, pathway="origin", device="desktop", browser="Chrome", watch_ms=240_000
    )


def test_engagement_by_hand(four_views: None) -> None:
    result = lesson_engagement(lesson_public_id=LESSON, duration_seconds=100.0)
    assert result["views"] == 4
    assert result["watch_seconds"] == 240.0
    assert result["completion_pct"] == 50.0  # A and C reached 90 s
    curve = {point["percent"]: point["viewers_pct"] for point in result["retention"]}
    assert len(curve) == 21
    assert (curve[0], curve[5], curve[45], curve[50], curve[95], curve[100]) == (100.0, 75.0, 75.0, 50.0, 50.0, 25.0)


def test_engagement_endpoint_is_for_the_lessons_educators(four_views: None) -> None:
    course = Course.objects.create(slug="c", title="C", published=True)
    asset = MediaAsset.objects.create(key_prefix="lessons/e", status="ready", published_version=1, duration_seconds=100)
    lesson = Lesson.objects.create(course=course, title="L", position=0, asset=asset)
    Lesson.objects.filter(pk=lesson.pk).update(public_id=LESSON)
    teacher = User.objects.create_user("t", password="pw-t-123456", is_staff=True)
    course.educators.add(teacher)
    stranger = User.objects.create_user("s", password="pw-s-123456", is_staff=True)

    client = Client()
    client.force_login(teacher)
    response = client.get(f"/analytics/lessons/{LESSON}/engagement.json")
    assert response.status_code == 200
    assert response.json()["completion_pct"] == 50.0
    client.force_login(stranger)
    assert client.get(f"/analytics/lessons/{LESSON}/engagement.json").status_code == 404
    assert Client().get(f"/analytics/lessons/{LESSON}/engagement.json").status_code == 302
    client.force_login(teacher)
    page = client.get(f"/admin/courses/lesson/{lesson.pk}/change/").content.decode()
    assert f'data-url="/analytics/lessons/{LESSON}/engagement.json"' in page
    assert 'id="retention-chart"' in page
