"""Read-only catalogue API: published courses and their lessons, addressed by slug and public UUID."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.openapi import NOT_LOGGED_IN, error
from courses import selectors
from courses.models import Course, Lesson, LessonState


class LessonOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    title = serializers.CharField()
    description = serializers.CharField()
    position = serializers.IntegerField()
    duration = serializers.FloatField(source="duration_seconds", allow_null=True)
    playable = serializers.SerializerMethodField()

    def get_playable(self, lesson: Lesson) -> bool:
        return bool(lesson.asset and lesson.asset.is_playable)


class CourseOutput(serializers.Serializer):
    slug = serializers.SlugField()
    title = serializers.CharField()
    description = serializers.CharField()


class CourseDetailOutput(CourseOutput):
    lessons = serializers.SerializerMethodField()

    def get_lessons(self, course: Course) -> list[dict[str, Any]]:
        lessons = LessonOutput(selectors.lesson_list_visible(course=course), many=True)
        # many=True makes a ListSerializer, whose data is a list; the stubs type it as the child's dict.
        return lessons.data  # type: ignore[return-value]


class CourseListApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses=CourseOutput(many=True), summary="Published courses")
    def get(self, request: Request) -> Response:
        return Response(CourseOutput(selectors.course_list_published(), many=True).data)


class CourseDetailApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        responses={200: CourseDetailOutput, 404: error("No such published course")},
        summary="A published course and its published lessons",
    )
    def get(self, request: Request, slug: str) -> Response:
        course = selectors.course_get_published(slug=slug)
        if course is None:
            raise Http404
        return Response(CourseDetailOutput(course).data)


class LessonDetailApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        responses={200: LessonOutput, 404: error("No such published lesson in a published course")},
        summary="A published lesson of a published course",
    )
    def get(self, request: Request, public_id: str) -> Response:
        lesson = selectors.lesson_get(public_id=public_id)
        if lesson is None or not lesson.course.published or lesson.state != LessonState.PUBLISHED:
            raise Http404
        return Response(LessonOutput(lesson).data)


class LessonReplicaOutput(serializers.Serializer):
    version = serializers.CharField(help_text="v1, v2, ...")
    region = serializers.CharField()
    state = serializers.CharField(help_text="pending, copying, complete, degraded, deleting")
    objects_copied = serializers.IntegerField()
    objects_total = serializers.IntegerField()
    last_error = serializers.CharField()
    completed_at = serializers.DateTimeField(allow_null=True)
    serving = serializers.BooleanField(help_text="This is the version learners are given")


class LessonReplicasApi(APIView):
    """Where a lesson's video is stored: each version in each storage region, for its educators."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses={
            200: LessonReplicaOutput(many=True),
            403: error(f"{NOT_LOGGED_IN}, or not an educator of the lesson's course"),
            404: error("No such lesson"),
        },
        summary="Per-region copy state of a lesson's video",
    )
    def get(self, request: Request, public_id: str) -> Response:
        lesson = selectors.lesson_get(public_id=public_id)
        if lesson is None:
            raise Http404
        if not (request.user.is_superuser or selectors.user_teaches(user=request.user, course=lesson.course)):
            raise PermissionDenied("only the course's educators see where its videos are stored")
        return Response(LessonReplicaOutput(selectors.lesson_replicas(lesson=lesson), many=True).data)
