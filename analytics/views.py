from __future__ import annotations

import uuid
from datetime import timedelta

from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from analytics.reports import DIMENSIONS, qoe_report
from analytics.selectors import lesson_engagement
from courses import selectors as course_selectors


@staff_member_required
def live_dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "analytics/live.html")


@staff_member_required
def lesson_engagement_json(request: HttpRequest, public_id: uuid.UUID) -> JsonResponse:
    """Engagement of one lesson, for its educators (drawn on the lesson's admin page)."""
    lesson = course_selectors.lesson_get(public_id=public_id)
    if lesson is None or not (
        request.user.is_superuser or course_selectors.user_teaches(user=request.user, course=lesson.course)
    ):
        raise Http404("No such lesson")
    return JsonResponse(
        lesson_engagement(lesson_public_id=str(lesson.public_id), duration_seconds=lesson.duration_seconds)
    )


@staff_member_required
def report_json(request: HttpRequest) -> JsonResponse:
    """QoE by lesson, course, pathway, region, browser or device over the last `days` days.
    Superusers see everything; an educator sees the lessons of the courses they teach."""
    by = request.GET.get("by", "lesson")
    try:
        days = min(366, max(1, int(request.GET.get("days", "7"))))
    except ValueError:
        days = 7
    if by not in DIMENSIONS:
        return JsonResponse({"detail": f"by must be one of {', '.join(DIMENSIONS)}"}, status=400)
    lessons = None if request.user.is_superuser else course_selectors.lesson_ids_taught_by(user=request.user)
    rows = qoe_report(since=timezone.now() - timedelta(days=days), by=by, lessons=lessons)
    return JsonResponse({"by": by, "days": days, "rows": rows})
