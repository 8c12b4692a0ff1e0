"""The playback API: one POST starts a session with signed URLs for the published version."""

from __future__ import annotations

import uuid

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from courses.selectors import lesson_get
from playback.services import PlaybackDenied, PlaybackNotReady, playback_session_create


def _viewer_country(request: Request) -> str:
    header = settings.PLAYBACK_COUNTRY_HEADER
    return request.headers.get(header, "").strip()[:2] if header else ""


class _RegionSerializer(serializers.Serializer):
    name = serializers.CharField()
    hls = serializers.CharField(source="hls_url")
    dash = serializers.CharField(source="dash_url")

    class Meta:
        ref_name = "PlaybackRegion"


class PlaybackApi(APIView):
    class OutputSerializer(serializers.Serializer):
        hls = serializers.CharField(source="hls_url", help_text="HLS master playlist URL (token in the path)")
        dash = serializers.CharField(source="dash_url", help_text="DASH MPD URL (token in the path)")
        poster = serializers.CharField(source="poster_url", help_text="Poster image URL")
        expires_at = serializers.DateTimeField(help_text="When every URL of this session stops working")
        duration = serializers.FloatField(allow_null=True, help_text="Seconds")
        region = serializers.CharField(help_text="Storage region the URLs above are served from")
        steering = serializers.CharField(
            source="steering_url",
            help_text="Content-steering server named in the manifests (empty when only one region serves)",
        )
        regions = _RegionSerializer(
            many=True, help_text="Every region holding the whole version (the chosen one first), with its URLs"
        )

        class Meta:
            ref_name = "PlaybackSession"

    class ErrorSerializer(serializers.Serializer):
        detail = serializers.CharField()

        class Meta:
            ref_name = "PlaybackError"

    @extend_schema(
        request=None,
        responses={
            200: OutputSerializer,
            403: OpenApiResponse(ErrorSerializer, description="Not logged in, or not entitled to this lesson"),
            404: OpenApiResponse(ErrorSerializer, description="No such lesson"),
            409: OpenApiResponse(ErrorSerializer, description="The video is not ready yet"),
        },
        summary="Start a playback session: signed HLS and DASH URLs for the published version",
    )
    def post(self, request: Request, public_id: uuid.UUID) -> Response:
        lesson = lesson_get(public_id=public_id)
        if lesson is None:
            raise NotFound("no such lesson")
        try:
            session = playback_session_create(user=request.user, lesson=lesson, country=_viewer_country(request))
        except PlaybackDenied as denied:
            return Response({"detail": denied.decision.reason}, status=status.HTTP_403_FORBIDDEN)
        except PlaybackNotReady as not_ready:
            return Response({"detail": not_ready.decision.reason}, status=status.HTTP_409_CONFLICT)
        # The URLs are this viewer's credentials: no shared cache may keep them.
        return Response(self.OutputSerializer(session).data, headers={"Cache-Control": "no-store"})
