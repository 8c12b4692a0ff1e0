"""Reads for the live dashboard.

The foundation shows the state of the media pipeline; quality-of-experience aggregates
(startup time, rebuffering, failures) join this snapshot when player beacons are collected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import Count
from django.utils import timezone

from courses.models import Course, Lesson, LessonState
from media_pipeline.models import AssetStatus, MediaAsset

if TYPE_CHECKING:
    from analytics.live import PathwayReports
    from analytics.throughput import StartEstimate


def live_snapshot() -> dict[str, object]:
    counts = {status: 0 for status in AssetStatus.values}
    for row in MediaAsset.objects.values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return {
        "type": "snapshot",
        "at": timezone.now().isoformat(),
        "assets_by_status": counts,
        "courses": Course.objects.filter(published=True).count(),
        "lessons": Lesson.objects.filter(state=LessonState.PUBLISHED).count(),
    }


RETENTION_POINTS = 20


def lesson_engagement(*, lesson_public_id: str, duration_seconds: float | None) -> dict[str, object]:
    """Views, watch time, completion rate and the audience-retention curve of one lesson.

    A view's reach is the furthest position its heartbeats reported (an "end" event counts as the
    whole lesson). Retention at x % is the share of views that reached x % of the lesson; a view is
    complete when it reached 90 %.
    """
    from django.db.models import FloatField, Max, Sum
    from django.db.models.fields.json import KT
    from django.db.models.functions import Cast

    from analytics.models import QoeEvent, QoeMinute

    events = QoeEvent.objects.filter(lesson=lesson_public_id)
    views = set(events.filter(type="play_request").values_list("view_id", flat=True))
    reach = {
        row["view_id"]: row["furthest"] or 0.0
        for row in events.filter(type="heartbeat", view_id__in=views)
        .values("view_id")
        .annotate(furthest=Max(Cast(KT("data__position"), FloatField())))
    }
    duration = duration_seconds or 0.0
    for view_id in events.filter(type="end", view_id__in=views).values_list("view_id", flat=True):
        reach[view_id] = max(reach.get(view_id, 0.0), duration)
    reached = [reach.get(view_id, 0.0) for view_id in views]
    watch_ms = QoeMinute.objects.filter(lesson=lesson_public_id).aggregate(total=Sum("watch_ms"))["total"] or 0.0
    curve: list[dict[str, float]] = []
    if views and duration:
        for step in range(RETENTION_POINTS + 1):
            share = step / RETENTION_POINTS
            curve.append(
                {
                    "percent": round(100 * share),
                    "viewers_pct": round(100 * sum(r >= share * duration for r in reached) / len(views), 1),
                }
            )
    complete = sum(r >= 0.9 * duration for r in reached) if duration else 0
    return {
        "views": len(views),
        "watch_seconds": round(watch_ms / 1000, 1),
        "completion_pct": round(100 * complete / len(views), 1) if views and duration else None,
        "retention": curve,
    }


_pathway_cache: dict[str, Any] = {"at": 0.0, "value": {}}


def pathway_failure_rates(*, max_age: float = 5.0) -> dict[str, PathwayReports]:
    """live.PathwayReports per delivery pathway in the last minute of signed beacons; {} if Redis is down.

    Cached in the process for a few seconds: every player asks the steering server regularly.
    """
    import time

    from analytics import ingest, live

    now = time.monotonic()
    if now - _pathway_cache["at"] < max_age:
        return _pathway_cache["value"]
    try:
        value = live.pathway_reports(ingest.client())
    except Exception:  # noqa: BLE001 - steering works without QoE; it only loses one signal
        value = {}
    _pathway_cache.update(at=now, value=value)
    return value


def viewer_start_estimate(*, user_id: int | None, now: float) -> StartEstimate:
    """The bandwidth a learner's next session starts from (analytics/throughput.py): from their recent
    sessions' beacons; the default for anonymous viewers, and when Redis cannot be read (the hint is
    never worth a failed playback start)."""
    from analytics import ingest, throughput

    if not user_id:
        return throughput.DEFAULT
    try:
        entries = ingest.client().lrange(ingest.throughput_key(user_id), 0, throughput.HISTORY_LENGTH - 1)
    except ingest.UNAVAILABLE:
        return throughput.DEFAULT
    texts = (entry.decode() if isinstance(entry, bytes) else str(entry) for entry in entries)
    return throughput.start_estimate(texts, now=now)
