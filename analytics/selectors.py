"""Reads for the live dashboard.

The foundation shows the state of the media pipeline; quality-of-experience aggregates
(startup time, rebuffering, failures) join this snapshot when player beacons are collected.
"""

from __future__ import annotations

from django.db.models import Count
from django.utils import timezone

from courses.models import Course, Lesson, LessonState
from media_pipeline.models import AssetStatus, MediaAsset


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
