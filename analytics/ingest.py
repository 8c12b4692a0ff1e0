"""Beacon ingest: accept a validated batch into a Redis stream at once; drain it to the database later.

The web request never waits on the database (one XADD per batch), so a burst of viewers closing
their tabs costs Redis appends only. `qoe_drain` moves batches into `QoeEvent` rows in bulk.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict
from datetime import UTC, datetime
from functools import cache

import redis
from django.conf import settings
from django.db import transaction

from analytics import live
from analytics.beacons import Batch
from analytics.models import QoeEvent
from analytics.rollups import rollup_batches

STREAM = "qoe:batches"
GROUP = "qoe-drain"
STREAM_MAX_LEN = 1_000_000


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def client() -> redis.Redis:
    return _client(settings.REDIS_URL)


def rate_limit_allow(*, key: str, limit: int, window_seconds: int) -> bool:
    """A fixed-window counter per client: at most ``limit`` batches per window."""
    bucket = f"qoe:rl:{key}:{int(time.time()) // window_seconds}"
    pipe = client().pipeline()
    pipe.incr(bucket)
    pipe.expire(bucket, window_seconds * 2)
    count, _ = pipe.execute()
    return int(count) <= limit


def batch_enqueue(*, batch: Batch) -> None:
    """Queue the batch for the database and add it to the live counters: one round trip to Redis."""
    now = time.time()
    payload = {"b": json.dumps(asdict(batch), separators=(",", ":")), "at": f"{now:.3f}"}
    pipe = client().pipeline(transaction=False)
    pipe.xadd(STREAM, payload, maxlen=STREAM_MAX_LEN, approximate=True)
    live.record_batch(pipe, batch=batch, now=now)
    pipe.execute()


def _ensure_group() -> None:
    try:
        client().xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def qoe_drain(*, max_batches: int = 500, block_ms: int | None = None, reclaim_idle_ms: int = 60_000) -> int:
    """Move up to ``max_batches`` batches from the stream into the database; returns events stored.

    Batches are acknowledged only after their rows are committed. Entries a dead drainer read but
    never acknowledged are reclaimed once idle for ``reclaim_idle_ms``, so nothing is lost.
    """
    _ensure_group()
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    _next, reclaimed, *_ = client().xautoclaim(
        STREAM, GROUP, consumer, min_idle_time=reclaim_idle_ms, start_id="0-0", count=max_batches
    )
    stored = _store(reclaimed)
    response = client().xreadgroup(GROUP, consumer, {STREAM: ">"}, count=max_batches, block=block_ms)
    for _stream, entries in response or []:
        stored += _store(entries)
    return stored


def _store(entries: list) -> int:
    entries = [(entry_id, fields) for entry_id, fields in entries if fields]
    if not entries:
        return 0
    rows: list[QoeEvent] = []
    drained: list[tuple[Batch, datetime]] = []
    for _entry_id, fields in entries:
        batch = json.loads(fields[b"b"])
        received = datetime.fromtimestamp(float(fields[b"at"]), tz=UTC)
        drained.append((Batch(**batch), received))
        rows.extend(
            QoeEvent(
                view_id=batch["view_id"],
                lesson=batch["lesson"],
                type=event["type"],
                t_ms=event["t"],
                data={k: v for k, v in event.items() if k not in ("type", "t")},
                pathway=batch["pathway"],
                browser=batch["browser"],
                device=batch["device"],
                region=batch.get("region", "unknown"),
                received_at=received,
            )
            for event in batch["events"]
        )
    with transaction.atomic():
        QoeEvent.objects.bulk_create(rows, batch_size=1000)
        rollup_batches(drained)
    client().xack(STREAM, GROUP, *[entry_id for entry_id, _ in entries])
    return len(rows)
