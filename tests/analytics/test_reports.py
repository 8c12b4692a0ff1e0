"""QoE reports over the per-minute rollups: grouping by every dimension, percentiles from histograms."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from channels.testing import HttpCommunicator
from django.contrib.auth.models import User
from django.test import Client
from pytest_django import Settings

from analytics import ingest
from analytics.beacons import Batch, parse_batch, region_from_header
from analytics.models import QoeMinute
from analytics.qoe import STARTUP_BOUNDS_MS, histogram_quantile
from analytics.reports import qoe_report
from analytics.rollups import rollup_batches
from courses.models import Course, Lesson
from tests.analytics.test_beacons import body

AT = datetime(2026, 11, 25, 9, 0, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("counts", "q", "expected"),
    [
        ({"1000": 2, "2000": 2}, 0.5, 1000.0),  # rank 2 ends the first bucket
        ({"1000": 2, "2000": 2}, 0.95, 1900.0),  # 1000 + 1000 * (3.8 - 2) / 2
        ({"250": 1, "inf": 3}, 0.95, 20000.0),  # in the open bucket: the highest finite bound
        ({}, 0.5, None),
    ],
)
def test_histogram_quantile(counts: dict, q: float, expected: float | None) -> None:
    assert histogram_quantile(q, counts, STARTUP_BOUNDS_MS) == expected


@pytest.mark.parametrize(
    ("header", "region"),
    [("de", "DE"), ("GB", "GB"), ("", "unknown"), (None, "unknown"), ("XYZ", "unknown"), ("1A", "unknown")],
)
def test_region_from_the_cdn_header(header: str | None, region: str) -> None:
    assert region_from_header(header) == region


def _batch(lesson: str, events: list[dict], region: str = "unknown", **kw: object) -> Batch:
    return replace(parse_batch(body(lesson=lesson, view_id=str(uuid.uuid4()), events=events, **kw)), region=region)


def _started(startup: int) -> list[dict]:
    return [
        {"type": "play_request", "t": 0},
        {"type": "rendition", "t": 10, "bitrate_kbps": 1000, "height": 480},
        {"type": "first_frame", "t": startup},
        {"type": "rebuffer_start", "t": 20000},
        {"type": "rebuffer_end", "t": 21000},
        {"type": "heartbeat", "t": 60000},
    ]


FAILED = [{"type": "play_request", "t": 0}, {"type": "error", "t": 500, "fatal": True, "code": "x"}]
EXITED = [{"type": "play_request", "t": 0}, {"type": "end", "t": 3000}]


@pytest.fixture
def rollups(db: None) -> dict[str, str]:
    physics = Course.objects.create(slug="physics", title="Physics")
    chemistry = Course.objects.create(slug="chemistry", title="Chemistry")
    waves = Lesson.objects.create(course=physics, title="Waves", position=0)
    optics = Lesson.objects.create(course=physics, title="Optics", position=1)
    acids = Lesson.objects.create(course=chemistry, title="Acids", position=0)
    w, o, a = str(waves.public_id), str(optics.public_id), str(acids.public_id)
    rollup_batches(
        [
            (_batch(w, _started(800), region="DE"), AT),
            (_batch(w, _started(1500), region="DE"), AT + timedelta(minutes=3)),
            (_batch(o, FAILED, region="FR"), AT),
            (_batch(a, _started(3000), region="FR"), AT),
            (_batch(a, EXITED, region="FR", device="mobile"), AT),
        ]
    )
    return {"waves": w, "optics": o, "acids": a}


def test_rollup_rows_carry_the_startup_histogram(rollups: dict[str, str]) -> None:
    first = QoeMinute.objects.get(lesson=rollups["waves"], minute=AT.replace(second=0))
    assert first.startup_histogram == {"1000": 1}
    assert (first.plays, first.starts, first.exits, first.bitrate_sum, first.bitrate_n, first.region) == (
        1,
        1,
        0,
        1000,
        1,
        "DE",
    )


def test_report_by_course(rollups: dict[str, str]) -> None:
    rows = qoe_report(since=AT - timedelta(hours=1), by="course")
    assert [row["course"] for row in rows] == ["physics", "chemistry"] or [row["course"] for row in rows] == [
        "chemistry",
        "physics",
    ]
    physics = next(row for row in rows if row["course"] == "physics")
    chemistry = next(row for row in rows if row["course"] == "chemistry")
    # physics: 3 views (2 started, 1 failed); startups 800 and 1500 ms
    assert physics["views"] == 3
    assert physics["failure_pct"] == 33.33
    assert physics["exits_before_start_pct"] == 0.0
    assert physics["startup_p50_ms"] == 1000.0  # rank 1 of 2 ends the (500, 1000] bucket
    assert physics["startup_p95_ms"] == 1900.0  # rank 1.9: 1000 + 1000 * (1.9 - 1) / 1 in (1000, 2000]
    # watch 60 s + 60 s + 0.5 s; stalls 1 s + 1 s
    assert physics["watch_seconds"] == 120.5
    assert physics["rebuffer_pct"] == round(100 * 2000 / 120500, 2)
    assert physics["rebuffers_per_minute"] == round(2 / (120500 / 60000), 3)
    assert physics["average_bitrate_kbps"] == 1000.0
    # chemistry: 2 views, one left before the first frame
    assert (chemistry["views"], chemistry["exits_before_start_pct"], chemistry["failure_pct"]) == (2, 50.0, 0.0)


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        ("region", {"DE": 2, "FR": 3}),
        ("device", {"desktop": 4, "mobile": 1}),
        ("pathway", {"other": 5}),  # "cdn-a" is not a configured pathway
        ("browser", {"Chrome": 5}),
    ],
)
def test_report_by_other_dimensions(rollups: dict[str, str], by: str, expected: dict[str, int]) -> None:
    rows = qoe_report(since=AT - timedelta(hours=1), by=by)
    assert {row[by]: row["views"] for row in rows} == expected


def test_report_period_and_lesson_filter(rollups: dict[str, str]) -> None:
    later = qoe_report(since=AT + timedelta(minutes=1), by="lesson")  # only the second Waves view
    assert [(row["lesson"], row["views"], row["startup_p50_ms"]) for row in later] == [(rollups["waves"], 1, 1500.0)]
    only = qoe_report(since=AT - timedelta(hours=1), by="lesson", lessons=[rollups["acids"]])
    assert [row["lesson"] for row in only] == [rollups["acids"]]
    with pytest.raises(ValueError, match="by must be one of"):
        qoe_report(since=AT, by="colour")


def test_report_endpoint_scopes_educators_to_their_courses(
    rollups: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("analytics.views.timezone.now", lambda: AT + timedelta(minutes=5))
    teacher = User.objects.create_user("t", password="pw-t-123456", is_staff=True)
    Course.objects.get(slug="chemistry").educators.add(teacher)
    client = Client()
    client.force_login(teacher)
    response = client.get("/analytics/report.json?by=course&days=1")
    assert response.status_code == 200
    assert [row["course"] for row in response.json()["rows"]] == ["chemistry"]
    assert client.get("/analytics/report.json?by=colour").status_code == 400
    client.force_login(User.objects.create_superuser("root", password="pw-root-123456"))
    assert {row["course"] for row in client.get("/analytics/report.json?by=course&days=1").json()["rows"]} == {
        "physics", "chemistry",
    }  # fmt: skip
    assert Client().get("/analytics/report.json").status_code == 302


@pytest.mark.django_db
def test_both_ingest_front_ends_take_the_region_from_the_configured_header(settings: Settings) -> None:
    from config.asgi import application

    settings.QOE_REGION_HEADER = "CloudFront-Viewer-Country"
    ingest.client().delete(ingest.STREAM)
    for key in ingest.client().scan_iter("qoe:rl:*"):
        ingest.client().delete(key)
    Client().post("/api/v1/qoe/events/", body(), content_type="text/plain", HTTP_CLOUDFRONT_VIEWER_COUNTRY="br")

    async def via_asgi() -> int:
        communicator = HttpCommunicator(
            application, "POST", "/api/v1/qoe/events/", body=body(), headers=[(b"cloudfront-viewer-country", b"JP")]
        )
        communicator.scope["client"] = ("127.0.0.1", 1)
        return (await communicator.get_response(timeout=5))["status"]

    assert asyncio.run(via_asgi()) == 202
    regions = [json.loads(fields[b"b"])["region"] for _id, fields in ingest.client().xrange(ingest.STREAM)]
    assert regions == ["BR", "JP"]
    ingest.client().delete(ingest.STREAM)


def test_bitrate_and_rendition_mix_are_weighted_by_playing_time(db: None) -> None:
    course = Course.objects.create(slug="bio", title="Bio")
    lesson = str(Lesson.objects.create(course=course, title="Cells", position=0).public_id)
    events = [
        {"type": "play_request", "t": 0},
        {"type": "rendition", "t": 10, "bitrate_kbps": 800, "height": 360},
        {"type": "first_frame", "t": 500},
        {"type": "heartbeat", "t": 10000, "bitrate_kbps": 800, "height": 360},  # 9,500 ms at 360p
        {"type": "rendition", "t": 15000, "bitrate_kbps": 3000, "height": 720},  # 5,000 ms more at 360p
        {"type": "heartbeat", "t": 25000, "bitrate_kbps": 3000, "height": 720},  # 10,000 ms at 720p
        {"type": "pause", "t": 26000},  # 1,000 ms before a pause is not attributed
    ]
    rollup_batches([(_batch(lesson, events), AT)])
    (row,) = qoe_report(since=AT - timedelta(hours=1), by="lesson")
    assert row["rendition_mix"] == {"360": round(100 * 14500 / 24500, 1), "720": round(100 * 10000 / 24500, 1)}
    assert row["average_bitrate_kbps"] == round((800 * 14500 + 3000 * 10000) / 24500, 1)  # 1698.0
