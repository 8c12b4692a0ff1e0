"""courses.services.user_records_move: what a linked LMS placeholder hands to the account it is linked to."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from courses import services
from courses.models import Course, Enrollment, LessonProgress

pytestmark = pytest.mark.django_db


def test_shared_courses_and_lessons_are_merged_not_doubled() -> None:
    source, target, bystander = (User.objects.create_user(name) for name in ("source", "target", "bystander"))
    both = Course.objects.create(slug="both", title="Both")
    only_source = Course.objects.create(slug="only", title="Only")
    for course in (both, only_source):
        course.educators.add(source, bystander)
        Enrollment.objects.create(user=source, course=course)
    both.educators.add(target)
    Enrollment.objects.create(user=target, course=both)
    lesson = both.lessons.create(title="Lenses")
    now = timezone.now()
    LessonProgress.objects.create(user=source, lesson=lesson, watched=b"\x03", seconds_watched=2, credit_clock=now)
    LessonProgress.objects.create(
        user=target, lesson=lesson, watched=b"\x06", seconds_watched=2, credit_clock=now - timedelta(hours=1)
    )
    LessonProgress.objects.create(user=bystander, lesson=lesson, watched=b"\xff", seconds_watched=8)

    services.user_records_move(source=source, target=target)

    for course in (both, only_source):
        assert sorted(course.educators.values_list("username", flat=True)) == ["bystander", "target"]
    assert sorted(Enrollment.objects.values_list("user__username", "course__slug")) == [
        ("target", "both"), ("target", "only"),
    ]  # fmt: skip
    rows = {p.user.username: p for p in LessonProgress.objects.select_related("user")}
    assert sorted(rows) == ["bystander", "target"]
    merged = rows["target"]
    assert (bytes(merged.watched), merged.seconds_watched, merged.completed_at, merged.credit_clock) == (
        b"\x07", 3, None, now,
    )  # fmt: skip
    assert rows["bystander"].seconds_watched == 8
