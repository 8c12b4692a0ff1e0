from __future__ import annotations

import uuid

from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

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
