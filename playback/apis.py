"""The playback API: one POST starts a session with signed URLs for the published version."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotAuthenticated, NotFound
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import throughput
from config.openapi import NOT_LOGGED_IN, error
from courses import progress as course_progress
from courses import view_tokens
from courses.selectors import lesson_get
from courses.services import lesson_progress_record
from playback.access import can_watch
from playback.binding import binding_for
from playback.services import DrmInfo, PlaybackSession, playback_session_create
from playback.throttles import PlaybackSessionThrottle


def _viewer_country(request: Request) -> str:
    header = settings.PLAYBACK_COUNTRY_HEADER
    return request.headers.get(header, "").strip()[:2] if header else ""


class _RegionSerializer(serializers.Serializer):
    name = serializers.CharField()
    hls = serializers.CharField(source="hls_url")
    dash = serializers.CharField(source="dash_url")

    class Meta:
        ref_name = "PlaybackRegion"


class _DrmSerializer(serializers.Serializer):
    provider = serializers.CharField(source="grant.provider", help_text="clearkey (this site) or axinom")
    scheme = serializers.CharField(help_text="Common-encryption scheme of the segments (cbcs)")
    key_ids = serializers.ListField(child=serializers.CharField(), help_text="Key ids, 32 hex digits")
    servers = serializers.DictField(
        source="grant.servers", child=serializers.CharField(), help_text="EME key system -> license server URL"
    )
    headers = serializers.DictField(
        source="grant.headers", child=serializers.CharField(), help_text="Send with every license and key request"
    )
    hls_key_url = serializers.CharField(
        source="grant.hls_key_url", help_text="HLS key endpoint: append the key id (empty if not offered)"
    )
    expires_at = serializers.SerializerMethodField(help_text="When the license credentials stop working")

    class Meta:
        ref_name = "PlaybackDrm"

    def get_expires_at(self, drm: DrmInfo) -> str:
        return _iso(datetime.fromtimestamp(drm.grant.expires_at, tz=UTC))


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def session_as_json(session: PlaybackSession) -> dict[str, Any]:
    """The session as PlaybackApi.OutputSerializer describes it (the OpenAPI schema), built directly:
    every playback start goes through here, and the serializer costs a third of a millisecond
    (bench/playback_session.py). tests/playback/test_api.py checks both give the same JSON."""
    drm = session.drm
    return {
        "hls": session.hls_url,
        "dash": session.dash_url,
        "poster": session.poster_url,
        "expires_at": _iso(session.expires_at),
        "duration": session.duration,
        "region": session.region,
        "steering": session.steering_url,
        "regions": [{"name": r.name, "hls": r.hls_url, "dash": r.dash_url} for r in session.regions],
        "credentials": session.uses_cookies,
        "drm": None
        if drm is None
        else {
            "provider": drm.grant.provider,
            "scheme": drm.scheme,
            "key_ids": list(drm.key_ids),
            "servers": dict(drm.grant.servers),
            "headers": dict(drm.grant.headers),
            "hls_key_url": drm.grant.hls_key_url,
            "expires_at": _iso(datetime.fromtimestamp(drm.grant.expires_at, tz=UTC)),
        },
        "storyboard": session.storyboard_url,
        "chapters": session.chapters_url,
        "captions": [{"language": c.language, "label": c.label, "url": c.url} for c in session.captions],
        "provisional": session.provisional,
        "view_id": session.view_id,
        "view_token": session.view_token,
        "start_estimate": {"kbps": session.start_kbps, "basis": session.start_basis},
    }


class _CaptionSerializer(serializers.Serializer):
    language = serializers.CharField(help_text="BCP 47 language code")
    # "label" is the API's field name; DRF's stubs type Field.label (a field's own label) as a str.
    label = serializers.CharField()  # type: ignore[assignment]
    url = serializers.CharField(help_text="WebVTT file")

    class Meta:
        ref_name = "PlaybackCaption"


class _StartEstimateSerializer(serializers.Serializer):
    kbps = serializers.IntegerField(
        source="start_kbps",
        help_text=f"Bandwidth estimate to start from, kbit/s ({throughput.MIN_KBPS} to {throughput.MAX_KBPS})",
    )
    basis = serializers.ChoiceField(
        source="start_basis",
        choices=throughput.BASES,
        help_text="history: from this learner's recent sessions (the throughput their QoE beacons reported, "
        f"the median of the last {throughput.HISTORY_VIEWS} views times {throughput.SAFETY_FACTOR:g}); "
        f"default: {throughput.DEFAULT_KBPS} kbit/s (anonymous viewers, no recent sessions)",
    )

    class Meta:
        ref_name = "PlaybackStartEstimate"


class PlaybackApi(APIView):
    # Public lessons play for anonymous viewers: playback/access.py decides, not authentication.
    permission_classes = [AllowAny]
    throttle_classes = [PlaybackSessionThrottle]

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
        credentials = serializers.BooleanField(
            source="uses_cookies",
            help_text="True when the URLs need the cookies this response sets (CloudFront, Akamai): "
            "fetch them with credentials (XHR withCredentials)",
        )
        drm = _DrmSerializer(allow_null=True, help_text="License information when the video is encrypted, else null")
        storyboard = serializers.CharField(
            source="storyboard_url", help_text="WebVTT thumbnails track (sprite#xywh=...); empty if none"
        )
        chapters = serializers.CharField(source="chapters_url", help_text="WebVTT chapters; empty if none")
        captions = _CaptionSerializer(many=True, help_text="Caption files (also listed in both manifests)")
        provisional = serializers.BooleanField(
            help_text="True while a quick first stream plays (one rendition: the upload itself, or a fast "
            "low rung); a new session after the full ladder is published gets every quality"
        )
        view_id = serializers.CharField(help_text="This viewing's id (a UUID): the view_id of its QoE beacons")
        view_token = serializers.CharField(
            help_text="The server's signed word for this viewing: progress reports and QoE beacons carry it"
        )
        start_estimate = _StartEstimateSerializer(
            source="*",
            help_text="Where the player's bandwidth estimate starts, so it starts on a rung this viewer's network "
            "carries; a hint only: the player measures from the first segment on",
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
            429: OpenApiResponse(ErrorSerializer, description="Too many sessions started (THROTTLE_PLAYBACK_SESSION)"),
        },
        summary="Start a playback session: signed HLS and DASH URLs for the published version",
    )
    def post(self, request: Request, public_id: uuid.UUID) -> Response:
        lesson = lesson_get(public_id=public_id, viewer=request.user)
        if lesson is None:
            raise NotFound("no such lesson")
        session = playback_session_create(
            user=request.user,
            lesson=lesson,
            country=_viewer_country(request),
            binding=binding_for(request, issuing=True),
            session_key=request.session.session_key if hasattr(request, "session") else None,
        )
        # The URLs are this viewer's credentials: no shared cache may keep them.
        response = Response(session_as_json(session), headers={"Cache-Control": "no-store"})
        for cookie in session.cookies:
            # Session cookies (no Expires), as CloudFront advises: the policy inside carries the expiry.
            # SameSite=None so they also travel from an LMS iframe (Partitioned is added there).
            response.set_cookie(
                cookie.name,
                cookie.value,
                path=cookie.path,
                domain=settings.PLAYBACK_COOKIE_DOMAIN or None,
                secure=True,
                httponly=True,
                samesite="None",
            )
        return response


class ProgressApi(APIView):
    """Watched time ranges from the player; progress counts only for viewers entitled to the lesson,
    with the view token of their playback session, and no faster than the fastest playback rate."""

    MAX_BODY_BYTES = 64 * 1024
    # The player posts JSON. DRF's default multipart and form parsers would offer bodies that the web
    # server then in use (daphne) parsed first and answered with a bare 400 when malformed (schemathesis).
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer):
        ranges = serializers.ListField(
            child=serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2),
            max_length=course_progress.MAX_RANGES,
            help_text="Played [start, end] ranges in seconds (HTMLMediaElement.played)",
        )
        view_token = serializers.CharField(
            max_length=view_tokens.MAX_LENGTH,
            help_text="The view_token of the playback session this viewing started with (POST "
            "/api/v1/lessons/<uuid>/playback/), for this lesson and this user, at most "
            f"{settings.VIEW_TOKEN_MAX_AGE_SECONDS} s old. Newly played seconds are credited no faster "
            f"than wall-clock time at {course_progress.MAX_PLAYBACK_RATE:g}x (the fastest speed the player "
            "offers) over all of the user's viewings; seconds claimed beyond that are not credited yet "
            "and count when a later report claims them again",
        )

        class Meta:
            ref_name = "ProgressInput"

    class OutputSerializer(serializers.Serializer):
        seconds_watched = serializers.IntegerField(help_text="Credited seconds of the lesson")
        completed = serializers.BooleanField()

        class Meta:
            ref_name = "ProgressOutput"

    @extend_schema(
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            # A field error names its field ({"ranges": [...]}); a body that is not JSON has "detail".
            400: OpenApiResponse(
                OpenApiTypes.OBJECT, description="Malformed ranges, no view token, or a body that is not JSON"
            ),
            403: error(
                f"{NOT_LOGGED_IN}, not entitled to this lesson, or the view token is not valid for this lesson "
                "and user (forged, expired, another lesson's or user's); nothing is recorded"
            ),
            404: error("No such lesson"),
            409: error("The video is not ready yet"),
            415: error("The body is not JSON"),
        },
        summary="Record the time ranges of a lesson the viewer actually played",
    )
    def post(self, request: Request, public_id: uuid.UUID) -> Response:
        user = request.user
        if isinstance(user, AnonymousUser):  # IsAuthenticated let no one else in; this tells the type checker
            raise NotAuthenticated()
        if int(request.headers.get("Content-Length") or 0) > self.MAX_BODY_BYTES:
            return Response({"detail": "too many ranges"}, status=status.HTTP_400_BAD_REQUEST)
        lesson = lesson_get(public_id=public_id, viewer=request.user)
        if lesson is None:
            raise NotFound("no such lesson")
        decision = can_watch(user=request.user, lesson=lesson)
        if not decision.allowed:
            code = status.HTTP_409_CONFLICT if decision.verdict.value == "not_ready" else status.HTTP_403_FORBIDDEN
            return Response({"detail": decision.reason}, status=code)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # Refusals (a bad view token, no duration yet, malformed ranges) are domain errors: 403, 409, 400.
        record = lesson_progress_record(
            user=user,
            lesson=lesson,
            ranges=data.validated_data["ranges"],
            view_token=data.validated_data["view_token"],
        )
        return Response({"seconds_watched": record.seconds_watched, "completed": record.completed_at is not None})
