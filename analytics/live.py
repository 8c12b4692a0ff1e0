"""Live QoE aggregates in Redis: per-second buckets summed over rolling windows (10 s, 1 min, 5 min).

Every accepted beacon batch adds to the bucket of the second it arrived in (one pipeline of a few
Redis commands, in the request); a publisher sums the buckets once a second and pushes the
snapshot to the Channels group that every dashboard socket listens on. Nothing here touches the
database, so the dashboard keeps up however slowly history is written.

What a batch adds, and every figure, are the definitions of analytics/qoe.py. Live figures are per
batch, so a startup time is counted when a batch holds both the play request and the first frame
(the player's first batch always does). The windows keep no time-weighted bitrate or rendition mix
(the rollups do): their average bitrate is the mean of the renditions reported.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from analytics import qoe
from analytics.beacons import Batch

WINDOWS = {"10s": 10, "1m": 60, "5m": 300}
BUCKET_TTL = 600
ERROR_FEED = "qoe:live:errors"
ERROR_FEED_LENGTH = 50
GROUP = "analytics.live"
# Steering's evidence (who saw which pathway fail) is kept in 10-second buckets, read over the last minute.
STEER_BUCKET_SECONDS = 10
STEER_TTL = 180


def _bucket(second: int) -> str:
    return f"qoe:live:{second}"


def _steer_key(bucket: int, kind: str, pathway: str = "") -> str:
    return f"qoe:steer:{bucket}:{kind}" + (f":{pathway}" if pathway else "")


def record_batch(pipe: Any, *, batch: Batch, now: float, reporter: str = "") -> None:
    """Queue the batch's live contributions on a Redis pipeline (the caller executes it).

    With a ``reporter`` (beacons.reporter_of: the batch's view token was checked), the batch is
    also evidence for content steering: its view was on its pathway, and saw it fail or not."""
    second = int(now)
    key = _bucket(second)
    counts = qoe.batch_contributions(batch.events)
    startup = counts.pop("startup_ms", None)
    for field, amount in counts.items():
        if field.startswith(("rendition_ms:", "bitrate_weighted")):
            continue  # kept in the rollups, not in the live windows
        pipe.hincrbyfloat(key, field, amount)
        pipe.hincrbyfloat(key, f"{field}|p={batch.pathway}", amount)
        pipe.hincrbyfloat(key, f"{field}|l={batch.lesson}", amount)
        pipe.hincrbyfloat(key, f"{field}|r={batch.region}", amount)
    if startup is not None:
        pipe.rpush(f"{key}:startup", startup)
        pipe.expire(f"{key}:startup", BUCKET_TTL)
    pipe.pfadd(f"{key}:viewers", batch.view_id)
    pipe.expire(key, BUCKET_TTL)
    pipe.expire(f"{key}:viewers", BUCKET_TTL)
    for event in batch.events:
        if event["type"] == "error" and event.get("fatal"):
            feed = {"at": now, "lesson": batch.lesson, "pathway": batch.pathway, "code": event.get("code", "")}
            pipe.lpush(ERROR_FEED, json.dumps(feed))
            pipe.ltrim(ERROR_FEED, 0, ERROR_FEED_LENGTH - 1)
    if reporter:
        bucket = second // STEER_BUCKET_SECONDS
        keys = [_steer_key(bucket, "pathways"), _steer_key(bucket, "views", batch.pathway)]
        pipe.sadd(keys[0], batch.pathway)
        pipe.pfadd(keys[1], batch.view_id)
        if counts.get("failures"):
            keys += [_steer_key(bucket, "failed", batch.pathway), _steer_key(bucket, "reporters", batch.pathway)]
            pipe.sadd(keys[2], batch.view_id)
            pipe.sadd(keys[3], reporter)
        for key in keys:
            pipe.expire(key, STEER_TTL)


def _window_figures(totals: dict[str, float], startups: list[float], viewers: int, seconds: int) -> dict[str, Any]:
    return {
        "viewers": viewers,
        **_split(totals),
        "startup_p50_ms": qoe.percentile(startups, 50),
        "startup_p95_ms": qoe.percentile(startups, 95),
        "rebuffer_ms": totals.get("rebuffer_ms", 0),
        "average_bitrate_kbps": qoe.rounded(qoe.average_bitrate_kbps(totals), 1),
        "events_per_second": round(totals.get("events", 0) / seconds, 2),
    }


def snapshot(client: Any, *, now: float | None = None) -> dict[str, Any]:
    """Sum the last 5 minutes of buckets into the three windows, with per-pathway and per-lesson splits."""
    now = time.time() if now is None else now
    current = int(now)
    seconds = list(range(current - WINDOWS["5m"] + 1, current + 1))
    pipe = client.pipeline()
    for second in seconds:
        pipe.hgetall(_bucket(second))
        pipe.lrange(f"{_bucket(second)}:startup", 0, -1)
    results = pipe.execute()
    windows: dict[str, Any] = {}
    for name, span in WINDOWS.items():
        totals: dict[str, float] = {}
        startups: list[float] = []
        by: dict[str, dict[str, dict[str, float]]] = {"pathway": {}, "lesson": {}, "region": {}}
        for index in range(len(seconds) - span, len(seconds)):
            bucket, samples = results[2 * index], results[2 * index + 1]
            startups.extend(float(s) for s in samples)
            for raw_field, raw_value in bucket.items():
                field, value = raw_field.decode(), float(raw_value)
                if "|" in field:
                    metric, label = field.split("|", 1)
                    dimension = {"p": "pathway", "l": "lesson", "r": "region"}[label[0]]
                    split = by[dimension].setdefault(label[2:], {})
                    split[metric] = split.get(metric, 0) + value
                else:
                    totals[field] = totals.get(field, 0) + value
        viewers = client.pfcount(*[f"{_bucket(s)}:viewers" for s in seconds[-span:]])
        figures = _window_figures(totals, startups, viewers, span)
        figures["by_pathway"] = {k: _split(v) for k, v in sorted(by["pathway"].items())}
        figures["by_lesson"] = {k: _split(v) for k, v in sorted(by["lesson"].items())}
        figures["by_region"] = {k: _split(v) for k, v in sorted(by["region"].items())}
        windows[name] = figures
    errors = [json.loads(item) for item in client.lrange(ERROR_FEED, 0, 19)]
    return {"type": "qoe", "at": now, "windows": windows, "errors": errors}


def snapshot_for_lessons(snapshot: dict[str, Any], *, lessons: Collection[str] | None) -> dict[str, Any]:
    """The part of a snapshot one viewer may see (pure): ``lessons`` None is everything (superusers);
    otherwise the per-lesson split and the error feed keep only those lessons. Site-wide totals and the
    pathway and region splits name no lesson and stay, so an educator can tell a CDN problem from theirs."""
    if lessons is None:
        return snapshot
    allowed = set(lessons)
    windows = {
        name: {**figures, "by_lesson": {k: v for k, v in figures["by_lesson"].items() if k in allowed}}
        for name, figures in snapshot["windows"].items()
    }
    errors = [error for error in snapshot["errors"] if error.get("lesson") in allowed]
    return {**snapshot, "windows": windows, "errors": errors}


def _split(totals: dict[str, float]) -> dict[str, Any]:
    return {
        "plays": int(totals.get("plays", 0)),
        "failures": int(totals.get("failures", 0)),
        "failure_pct": qoe.rounded(qoe.failure_pct(totals), 2),
        "rebuffers": int(totals.get("rebuffers", 0)),
    }


@dataclass(frozen=True)
class PathwayReports:
    """What signed beacons said about one pathway over the last minute (each view and reporter once)."""

    views: int  # distinct views that sent a batch from it (HyperLogLog: within about 1 %)
    failed_views: int  # distinct views that reported a fatal error on it (exact)
    reporters: int  # distinct users / anonymous networks behind those failures (exact)


def pathway_reports(client: Any, *, seconds: int = 60, now: float | None = None) -> dict[str, PathwayReports]:
    """Views, failed views and distinct failure reporters per pathway in the last ``seconds``, for steering."""
    current = int(time.time() if now is None else now)
    buckets = range((current - seconds + 1) // STEER_BUCKET_SECONDS, current // STEER_BUCKET_SECONDS + 1)
    pipe = client.pipeline()
    for bucket in buckets:
        pipe.smembers(_steer_key(bucket, "pathways"))
    pathways = sorted({raw.decode() for members in pipe.execute() for raw in members})
    if not pathways:
        return {}
    pipe = client.pipeline()
    for pathway in pathways:
        pipe.pfcount(*[_steer_key(bucket, "views", pathway) for bucket in buckets])
        pipe.sunion([_steer_key(bucket, "failed", pathway) for bucket in buckets])
        pipe.sunion([_steer_key(bucket, "reporters", pathway) for bucket in buckets])
    results = pipe.execute()
    return {
        pathway: PathwayReports(
            views=int(results[3 * i]), failed_views=len(results[3 * i + 1]), reporters=len(results[3 * i + 2])
        )
        for i, pathway in enumerate(pathways)
    }
