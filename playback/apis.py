from __future__ import annotations

import uuid

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from courses.selectors import lesson_get
from playback.access import Verdict
from playback.services import PlaybackRefused, playback_session_create


class PlaybackOutput(serializers.Serializer):
    hls = serializers.CharField(source="hls_url", help_text="HLS master playlist URL (token in the path)")
    dash = serializers.CharField(source="dash_url", help_text="DASH MPD URL (token in the path)")
    poster = serializers.CharField(source="poster_url")
    expires_at = serializers.DateTimeField()
    duration = serializers.FloatField(allow_null=True)


class ErrorOutput(serializers.Serializer):
    detail = serializers.CharField()


class PlaybackApi(APIView):
    @extend_schema(
        request=None,
        responses={
            200: PlaybackOutput,
            403: OpenApiResponse(ErrorOutput, description="Not entitled to watch this lesson"),
            404: OpenApiResponse(ErrorOutput, description="No such lesson"),
            409: OpenApiResponse(ErrorOutput, description="The video is not ready yet"),
        },
        summary="Start a playback session: signed HLS and DASH URLs for the published version",
    )
    def post(self, request: Request, public_id: uuid.UUID) -> Response:
        lesson = lesson_get(public_id=public_id)
        if lesson is None:
            raise NotFound("no such lesson")
        try:
            session = playback_session_create(user=request.user, lesson=lesson)
        except PlaybackRefused as refused:
            code = (
                status.HTTP_409_CONFLICT if refused.decision.verdict is Verdict.NOT_READY else status.HTTP_403_FORBIDDEN
            )
            return Response({"detail": refused.decision.reason}, status=code)
        return Response(PlaybackOutput(session).data)
