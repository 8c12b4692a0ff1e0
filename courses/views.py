"""Learner pages. Thin: selectors for reads, services for writes; the playback API decides entitlement."""

from __future__ import annotations

import uuid

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.auth import request_user
from courses import hooks, selectors, services
from courses.models import LessonState


def catalogue(request: HttpRequest) -> HttpResponse:
    return render(request, "courses/catalogue.html", {"courses": selectors.course_list_published()})


def course_detail(request: HttpRequest, slug: str) -> HttpResponse:
    course = selectors.course_get_published(slug=slug)
    if course is None:
        raise Http404("No such course")
    context = {
        "course": course,
        "lessons": selectors.lesson_list_visible(course=course),
        "enrolled": selectors.user_is_enrolled(user=request.user, course=course),
    }
    return render(request, "courses/course.html", context)


@require_POST
@login_required
def enroll(request: HttpRequest, slug: str) -> HttpResponse:
    course = selectors.course_get_published(slug=slug)
    if course is None:
        raise Http404("No such course")
    services.enrollment_create(user=request_user(request), course=course)
    return redirect("courses:course", slug=course.slug)


def lesson_detail(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    lesson = selectors.lesson_get(public_id=public_id)
    if lesson is None:
        raise Http404("No such lesson")
    course = lesson.course
    teaches = request.user.is_superuser or selectors.user_teaches(user=request.user, course=course)
    visible = course.published and lesson.state == LessonState.PUBLISHED
    if not (visible or teaches):
        raise Http404("No such lesson")
    lessons = list(selectors.lesson_list_visible(course=course))
    index = next((i for i, item in enumerate(lessons) if item.pk == lesson.pk), None)
    engine = request.GET.get("engine", "hls")
    context = {
        "lesson": lesson,
        "course": course,
        "enrolled": selectors.user_is_enrolled(user=request.user, course=course),
        "teaches": teaches,
        "previous": lessons[index - 1] if index else None,
        "next": lessons[index + 1] if index is not None and index + 1 < len(lessons) else None,
        "engine": engine if engine in ("hls", "shaka") else "hls",
    }
    return render(request, "courses/lesson.html", context)


@login_required
def account(request: HttpRequest) -> HttpResponse:
    """The signed-in user's account page; other apps add their sections through courses.hooks."""
    context = {"sections": hooks.account_sections_render(request=request)}
    return render(request, "courses/account.html", context)
