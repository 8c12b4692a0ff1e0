"""Beacon ingest: accept a validated batch into a Redis stream at once; drain it to the database later.

The web request never waits on the database: it costs one round trip to Redis, a script that counts the
batch against its sender's window and its view's allowance and, only if both allow it, appends it to
the stream and adds it to the live counters (atomically: a refused batch changes no counter but its
sender's). A burst of viewers closing their tabs costs Redis appends only. `qoe_drain` moves
batches into `QoeEvent` rows in bulk and deletes them from the stream.

Memory is bounded (docs/adr/0020): the stream is capped (MAXLEN ~ on every XADD) at
QOE_STREAM_MAX_BYTES worth of the largest batch we store, each view may send QOE_VIEW_MAX_BATCHES
batches and QOE_VIEW_MAX_EVENTS events, and Redis runs with maxmemory and `noeviction`, so a flood
that still reached the limit would be refused (503) rather than evict a queued task.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache
from typing import Any

import redis
from django.conf import settings
from django.db import transaction

from analytics import live, throughput
from analytics.beacons import (
    MAX_STORED_BYTES,
    Batch,
    batch_claim,
    batch_record,
    parse_batch,
    region_from_header,
    reporter_of,
)
from analytics.models import QoeEvent
from analytics.rollups import rollup_batches

STREAM = "qoe:batches"
GROUP = "qoe-drain"
RATE_WINDOW_SECONDS = 10
# What one stream entry costs Redis besides the batch's JSON: the "at" field, field names, the entry
# header and, for a large entry, a stream node of its own (stream-node-max-bytes is 4 KiB by default).
STREAM_ENTRY_OVERHEAD = 1024
# Redis errors that mean "nothing was stored, try later": full (noeviction), or unreachable.
UNAVAILABLE = (redis.exceptions.OutOfMemoryError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def client() -> redis.Redis:
    return _client(settings.REDIS_URL)


def stream_max_len() -> int:
    """The stream's MAXLEN: the worst case (every entry as large as we store) fits QOE_STREAM_MAX_BYTES."""
    return max(1, settings.QOE_STREAM_MAX_BYTES // (MAX_STORED_BYTES + STREAM_ENTRY_OVERHEAD))


@dataclass(frozen=True)
class Beacon:
    """A batch that passed every check that needs no Redis: schema, view token, size once stored."""

    batch: Batch
    record: str  # the stream entry's JSON
    client: str  # the sender's address (config/client_address.py)
    reporter: str  # who stands behind it, for steering (beacons.reporter_of)
    expires_at: int  # when its view token expires: the per-view counters go with it
    user_id: int = 0  # the signed-in learner the view token names (0: anonymous)


def beacon_prepare(*, body: bytes, client: str, region_header: str | None, now: float) -> Beacon:
    """Parse and authenticate one batch (pure CPU: one HMAC). Raises BatchRejected or BatchUnauthorised."""
    batch = parse_batch(body)
    claim = batch_claim(
        batch, secret=settings.VIEW_TOKEN_SECRET.encode(), now=int(now), max_age=settings.VIEW_TOKEN_MAX_AGE_SECONDS
    )
    if settings.QOE_REGION_HEADER:
        batch = replace(batch, region=region_from_header(region_header))
    return Beacon(
        batch=batch,
        record=batch_record(batch),
        client=client,
        reporter=reporter_of(claim, client_address=client),
        expires_at=claim.issued_at + settings.VIEW_TOKEN_MAX_AGE_SECONDS + 60,
        user_id=claim.user_id,
    )


# Admission and write in one script: one round trip (two pipelines cost half the throughput with small
# batches, bench/qoe_ingest.py), and atomic. KEYS: the sender's window, the view's counters. ARGV: the
# window's TTL, the batch's events, the view's expiry, the three limits, then the write commands, each
# as its length followed by its words.
ADMIT_AND_WRITE = """
local sent = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
local batches = redis.call('HINCRBY', KEYS[2], 'batches', 1)
local events = redis.call('HINCRBY', KEYS[2], 'events', ARGV[2])
redis.call('EXPIREAT', KEYS[2], ARGV[3])
if sent > tonumber(ARGV[4]) then return 'rate_limited' end
if batches > tonumber(ARGV[5]) or events > tonumber(ARGV[6]) then return 'view_full' end
local i = 7
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
return false
"""


@cache
def _admit_and_write(connection: Any) -> Any:
    return connection.register_script(ADMIT_AND_WRITE)


def admit_and_write_script(connection: Any) -> Any:
    """The registered script for a client (sync or asyncio): EVALSHA, loading it when Redis lacks it."""
    return _admit_and_write(connection)


class _Commands:
    """Collects the write commands live.record_batch queues, as words for the script."""

    def __init__(self) -> None:
        self.words: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        def queue(*args: Any) -> None:
            self.words += [len(args) + 1, name.upper(), *args]

        return queue


def admit_and_write_arguments(*, beacon: Beacon, now: float) -> tuple[list[str], list[Any]]:
    """The script's keys and arguments for one batch (pure: no Redis)."""
    window = f"qoe:rl:{beacon.client}:{int(now) // RATE_WINDOW_SECONDS}"
    view = f"qoe:view:{beacon.batch.view_id}"
    commands = _Commands()
    xadd = ["XADD", STREAM, "MAXLEN", "~", stream_max_len(), "*", "b", beacon.record, "at", f"{now:.3f}"]
    commands.words += [len(xadd), *xadd]
    live.record_batch(commands, batch=beacon.batch, now=now, reporter=beacon.reporter)
    _record_throughput(commands, beacon=beacon, now=now)
    limits = [settings.QOE_RATE_LIMIT_BATCHES, settings.QOE_VIEW_MAX_BATCHES, settings.QOE_VIEW_MAX_EVENTS]
    args = [RATE_WINDOW_SECONDS * 2, len(beacon.batch.events), beacon.expires_at, *limits, *commands.words]
    return [window, view], args


def throughput_key(user_id: int) -> str:
    return f"qoe:bw:u:{user_id}"


def _record_throughput(commands: _Commands, *, beacon: Beacon, now: float) -> None:
    """A signed-in learner's bandwidth estimate, kept (bounded) for their next sessions' start."""
    kbps = throughput.last_throughput(beacon.batch.events)
    if not beacon.user_id or kbps is None:
        return
    key = throughput_key(beacon.user_id)
    commands.lpush(key, throughput.history_entry(view_id=beacon.batch.view_id, kbps=kbps, now=now))
    commands.ltrim(key, 0, throughput.HISTORY_LENGTH - 1)
    commands.expire(key, throughput.HISTORY_MAX_AGE_SECONDS)


def admission_answer(answer: Any) -> str | None:
    """None when the batch was admitted and written; else why not ("rate_limited" or "view_full")."""
    if not answer:
        return None
    return answer.decode() if isinstance(answer, bytes) else str(answer)


def clock() -> float:
    """Now, as beacon ingest sees it: one place, so a test can hold it inside one rate window."""
    return time.time()


def beacon_accept(*, beacon: Beacon, now: float) -> str | None:
    """Admit and queue a prepared batch in one round trip. None when queued, else the refusal.

    Raises one of UNAVAILABLE when Redis refuses the write (full) or cannot be reached."""
    keys, args = admit_and_write_arguments(beacon=beacon, now=now)
    return admission_answer(_admit_and_write(client())(keys=keys, args=args))


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
    if isinstance(response, dict):  # the RESP3 shape; client() speaks RESP2: a list of [stream, entries]
        raise TypeError("XREADGROUP answered in RESP3; the drain expects RESP2 connections")
    for _stream, entries in response or []:
        stored += _store(entries)
    return stored


def _store(entries: list[Any]) -> int:
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
    ids = [entry_id for entry_id, _ in entries]
    # Deleted once stored: the stream holds only what is not in the database yet, so its cap is a
    # buffer for a drain outage, not a copy of the last QOE_STREAM_MAX_BYTES of history.
    pipe = client().pipeline(transaction=True)
    pipe.xack(STREAM, GROUP, *ids)
    pipe.xdel(STREAM, *ids)
    pipe.execute()
    return len(rows)
