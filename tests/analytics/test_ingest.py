"""Beacon ingest through the HTTP API into Redis, and the drain into PostgreSQL."""

from __future__ import annotations

import json
import uuid

import pytest
from django.test import Client
from pytest_django import DjangoAssertNumQueries, Settings

from analytics import ingest
from analytics.models import QoeEvent
from tests.analytics.test_beacons import body

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def clean_stream() -> None:
    ingest.client().delete(ingest.STREAM)
    for key in ingest.client().scan_iter("qoe:rl:*"):
        ingest.client().delete(key)
    yield
    ingest.client().delete(ingest.STREAM)


def _post(payload: bytes, **extra: str) -> object:
    return Client().post("/api/v1/qoe/events/", payload, content_type="text/plain", **extra)


def test_anonymous_beacon_is_accepted_without_touching_the_database(
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    with django_assert_num_queries(0):
        response = _post(body())
    assert response.status_code == 202
    assert response.json() == {"accepted": 4}
    assert ingest.client().xlen(ingest.STREAM) == 1


def test_a_bad_batch_is_refused_and_nothing_is_queued() -> None:
    response = _post(body(events=[{"type": "explode", "t": 0}]))
    assert response.status_code == 400
    assert response.json() == {"detail": "events[0].type is not a known event type"}
    assert ingest.client().xlen(ingest.STREAM) == 0


def test_an_oversized_batch_is_refused_before_it_is_read() -> None:
    response = _post(b"x" * 70_000)
    assert response.status_code == 413
    assert ingest.client().xlen(ingest.STREAM) == 0


@pytest.mark.usefixtures("ingest_clock_held")
def test_a_flood_from_one_client_is_rate_limited(settings: Settings) -> None:
    settings.QOE_RATE_LIMIT_BATCHES = 3
    codes = [_post(body()).status_code for _ in range(5)]
    assert codes == [202, 202, 202, 429, 429]
    assert _post(body(), REMOTE_ADDR="10.1.2.3").status_code == 202  # another client is unaffected
    assert ingest.client().xlen(ingest.STREAM) == 4


def test_drain_stores_every_event_once() -> None:
    view = str(uuid.uuid4())
    _post(body(view_id=view))
    _post(body(view_id=view, events=[{"type": "end", "t": 20000}]))
    assert ingest.qoe_drain() == 5
    assert ingest.qoe_drain() == 0
    rows = list(
        QoeEvent.objects.filter(view_id=view).order_by("t_ms").values("type", "t_ms", "data", "pathway", "device")
    )
    assert [row["type"] for row in rows] == ["play_request", "rendition", "error", "heartbeat", "end"]
    assert rows[1]["data"] == {"bitrate_kbps": 800.0, "height": 360}
    assert rows[2]["data"] == {"fatal": False, "code": "bufferStalledError"}
    assert {row["pathway"] for row in rows} == {"cdn-a"}


def test_batches_a_dead_drainer_read_are_reclaimed() -> None:
    _post(body())
    ingest._ensure_group()
    # A drainer reads the batch and dies before storing it.
    read = ingest.client().xreadgroup(ingest.GROUP, "dead-drainer", {ingest.STREAM: ">"}, count=10)
    assert len(read[0][1]) == 1
    assert ingest.qoe_drain(reclaim_idle_ms=0) == 4
    assert QoeEvent.objects.count() == 4
    assert ingest.client().xpending(ingest.STREAM, ingest.GROUP)["pending"] == 0


def test_the_queued_batch_is_the_validated_one() -> None:
    _post(body(browser=None))
    (_id, fields), *_ = ingest.client().xrange(ingest.STREAM)
    assert json.loads(fields[b"b"])["browser"] == "other"
