"""Live aggregates: what a batch adds, and how seconds roll up into 10 s / 1 min / 5 min windows (real Redis)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import redis

from analytics import ingest, live, qoe
from analytics.beacons import Batch, parse_batch
from tests.analytics.test_beacons import body

pytestmark = pytest.mark.services  # Redis, through the module's own client

LESSON = str(uuid.uuid4())


@pytest.fixture
def redis_clean() -> Iterator[redis.Redis]:
    client = ingest.client()
    for key in client.scan_iter("qoe:live*"):
        client.delete(key)
    yield client
    for key in client.scan_iter("qoe:live*"):
        client.delete(key)


def _batch(**overrides: object) -> Batch:
    return parse_batch(body(lesson=LESSON, view_id=str(uuid.uuid4()), **overrides))


STARTED = [
    {"type": "play_request", "t": 100},
    {"type": "rendition", "t": 120, "bitrate_kbps": 800, "height": 360},
    {"type": "first_frame", "t": 1300},
    {"type": "rebuffer_start", "t": 5000},
    {"type": "rebuffer_end", "t": 5750},
    {"type": "rendition", "t": 6000, "bitrate_kbps": 3000, "height": 720},
]
FAILED = [{"type": "play_request", "t": 0}, {"type": "error", "t": 900, "fatal": True, "code": "manifestLoadError"}]


def test_batch_contributions_are_exact() -> None:
    assert qoe.batch_contributions(_batch(events=STARTED).events) == {
        "events": 6, "plays": 1, "starts": 1, "startup_ms": 1200, "rebuffers": 1, "rebuffer_ms": 750,
        "bitrate_sum": 3800, "bitrate_n": 2, "watch_ms": 5900,
        # 250 ms played at 360p/800 kbps between the end of the stall and the switch to 720p
        "rendition_ms:360": 250, "bitrate_weighted": 800 * 250, "bitrate_weighted_ms": 250,
    }  # fmt: skip
    assert qoe.batch_contributions(_batch(events=FAILED).events) == {
        "events": 2, "plays": 1, "failures": 1, "watch_ms": 900,
    }  # fmt: skip


def test_windows_roll_up_seconds(redis_clean: redis.Redis) -> None:
    now = 1_800_000_000.0
    pipe = redis_clean.pipeline()
    live.record_batch(pipe, batch=_batch(events=STARTED, pathway="cdn-a"), now=now - 30)  # only in 1m and 5m
    live.record_batch(pipe, batch=_batch(events=STARTED, pathway="cdn-b"), now=now - 5)
    live.record_batch(pipe, batch=_batch(events=FAILED, pathway="cdn-b"), now=now - 1)
    live.record_batch(pipe, batch=_batch(events=FAILED, pathway="cdn-b"), now=now - 400)  # too old for any window
    pipe.execute()

    snap = live.snapshot(redis_clean, now=now)
    ten, minute, five = snap["windows"]["10s"], snap["windows"]["1m"], snap["windows"]["5m"]
    assert (ten["plays"], ten["failures"], ten["failure_pct"], ten["viewers"]) == (2, 1, 50.0, 2)
    assert (minute["plays"], minute["failures"], minute["viewers"]) == (3, 1, 3)
    assert five == {**minute, "events_per_second": round(14 / 300, 2)}
    assert ten["startup_p50_ms"] == 1200
    assert minute["rebuffers"] == 2 and minute["rebuffer_ms"] == 1500
    assert minute["average_bitrate_kbps"] == 1900.0  # (800 + 3000) * 2 / 4
    assert ten["events_per_second"] == 0.8  # 8 events in 10 s
    assert minute["by_pathway"] == {
        "cdn-a": {"plays": 1, "failures": 0, "failure_pct": 0.0, "rebuffers": 1},
        "cdn-b": {"plays": 2, "failures": 1, "failure_pct": 50.0, "rebuffers": 1},
    }
    assert minute["by_lesson"] == {LESSON: {"plays": 3, "failures": 1, "failure_pct": 33.33, "rebuffers": 2}}
    assert minute["by_region"] == {"unknown": {"plays": 3, "failures": 1, "failure_pct": 33.33, "rebuffers": 2}}
    # The error feed lists the newest fatal errors first, with where they happened.
    assert [(e["pathway"], e["code"], e["lesson"]) for e in snap["errors"]] == [
        ("cdn-b", "manifestLoadError", LESSON), ("cdn-b", "manifestLoadError", LESSON),
    ]  # fmt: skip


def test_empty_windows_say_none_not_zero(redis_clean: redis.Redis) -> None:
    snap = live.snapshot(redis_clean, now=1_800_000_000.0)
    assert snap["windows"]["10s"]["failure_pct"] is None
    assert snap["windows"]["10s"]["startup_p95_ms"] is None
    assert snap["errors"] == []
    json.dumps(snap)  # serialisable as sent over the socket


def test_steering_evidence_counts_each_view_and_reporter_once_over_the_last_minute(redis_clean: redis.Redis) -> None:
    client = redis_clean
    for key in client.scan_iter("qoe:steer:*"):
        client.delete(key)
    now = 1_800_000_005.0
    pipe = client.pipeline()
    view = str(uuid.uuid4())
    for seconds_ago in (1, 2, 3):  # one view sending three failing batches: one failed view
        batch = parse_batch(body(lesson=LESSON, view_id=view, pathway="eu", events=FAILED))
        live.record_batch(pipe, batch=batch, now=now - seconds_ago, reporter="u:7")
    batch = parse_batch(body(lesson=LESSON, view_id=str(uuid.uuid4()), pathway="eu", events=FAILED))
    live.record_batch(pipe, batch=batch, now=now - 30, reporter="u:7")  # the same user, another tab
    batch = parse_batch(body(lesson=LESSON, view_id=str(uuid.uuid4()), pathway="eu", events=STARTED))
    live.record_batch(pipe, batch=batch, now=now - 50, reporter="n:203.0.113.0/24")  # played well
    batch = parse_batch(body(lesson=LESSON, view_id=str(uuid.uuid4()), pathway="ap", events=FAILED))
    live.record_batch(pipe, batch=batch, now=now - 120, reporter="u:8")  # too old
    batch = parse_batch(body(lesson=LESSON, view_id=str(uuid.uuid4()), pathway="eu", events=FAILED))
    live.record_batch(pipe, batch=batch, now=now, reporter="")  # unsigned: no evidence at all
    pipe.execute()
    assert live.pathway_reports(client, now=now) == {"eu": live.PathwayReports(views=3, failed_views=2, reporters=1)}
    assert all(0 < client.ttl(key) <= live.STEER_TTL for key in client.scan_iter("qoe:steer:*"))
