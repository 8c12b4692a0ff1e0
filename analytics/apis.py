"""`POST /api/v1/qoe/events/`: player beacons. Signed by the playback session's view token, capped per view and
per client address, never waits on the database. analytics/asgi_ingest.py answers the same path in production
with the same rules; this view serves WSGI deployments and the OpenAPI schema."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from prometheus_client import Counter
from rest_framework import serializers
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import ingest, metrics
from analytics.beacons import (
    DEVICE_CLASSES,
    MAX_BODY_BYTES,
    MAX_EVENTS,
    MAX_LABEL,
    MAX_T_MS,
    BatchRejected,
    BatchUnauthorised,
)
from analytics.qoe import EVENT_TYPES
from config.client_address import request_client_address
from config.openapi import error

BATCHES = Counter("qoe_beacon_batches_total", "Beacon batches received, by outcome", ["outcome"])
EVENTS = Counter("qoe_beacon_events_total", "Beacon events accepted")


class RawParser(BaseParser):
    """Leave the body alone: sendBeacon posts text/plain, and we validate the bytes ourselves."""

    media_type = "*/*"


# The answer for each refusal after parsing: (status, detail, metric outcome).
REFUSALS = {
    "rate_limited": (429, "too many batches; slow down", "rate_limited"),
    "view_full": (429, "this view has sent all the beacons it may", "view_full"),
    "unavailable": (503, "beacons cannot be stored now; nothing was stored", "unavailable"),
}


class QoeEventInput(serializers.Serializer):
    """One player event, as analytics/beacons.py accepts it (the schema the fuzzing tests send)."""

    type = serializers.ChoiceField(choices=sorted(EVENT_TYPES))
    t = serializers.FloatField(min_value=0, max_value=MAX_T_MS, help_text="Milliseconds since the view began")
    bitrate_kbps = serializers.FloatField(required=False, min_value=0, max_value=1_000_000)
    throughput_kbps = serializers.FloatField(
        required=False,
        min_value=0,
        max_value=1_000_000,
        help_text="The player's bandwidth estimate (heartbeats, once it has measured): a signed-in learner's "
        "next sessions start from their recent ones (the playback session's start_estimate)",
    )
    height = serializers.IntegerField(required=False, min_value=0, max_value=8192)
    fatal = serializers.BooleanField(required=False)
    code = serializers.CharField(required=False, max_length=MAX_LABEL)
    position = serializers.FloatField(required=False, min_value=0, max_value=MAX_T_MS / 1000)
    buffer = serializers.FloatField(required=False, min_value=0, max_value=3600)
    dropped = serializers.FloatField(required=False, min_value=0, max_value=10_000_000)

    class Meta:
        ref_name = "QoeEvent"


class QoeBatchInput(serializers.Serializer):
    view_id = serializers.UUIDField()
    lesson = serializers.UUIDField()
    view_token = serializers.CharField(help_text="The playback session's view_token (signed by the server)")
    pathway = serializers.CharField(required=False, max_length=MAX_LABEL)
    browser = serializers.CharField(required=False, max_length=MAX_LABEL)
    device = serializers.ChoiceField(choices=sorted(DEVICE_CLASSES), required=False)
    events = serializers.ListField(child=QoeEventInput(), min_length=1, max_length=MAX_EVENTS)

    class Meta:
        ref_name = "QoeBatch"


class QoeEventsApi(APIView):
    authentication_classes: list = []  # anonymous viewers send beacons too; no session, no CSRF
    permission_classes = [AllowAny]
    parser_classes = [RawParser]

    @extend_schema(
        # navigator.sendBeacon posts the same JSON as text/plain; the body is read as JSON whatever its type.
        request={"application/json": QoeBatchInput},
        responses={
            202: inline_serializer("QoeAccepted", {"accepted": serializers.IntegerField()}),
            400: error("The batch does not match the schema; nothing was stored"),
            403: error("No valid view token for this view and lesson; nothing was stored"),
            413: error("The batch is larger than 64 KiB"),
            429: error("Too many batches from this client address, or from this view"),
            503: error("Beacon storage is full or unreachable; nothing was stored"),
        },
        summary="Player QoE beacons (batched; sent with sendBeacon)",
    )
    def post(self, request: Request) -> Response:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > MAX_BODY_BYTES:
            BATCHES.labels("too_large").inc()
            return Response({"detail": f"batch larger than {MAX_BODY_BYTES} bytes"}, status=413)
        now = ingest.clock()
        try:
            beacon = ingest.beacon_prepare(
                body=request.body,
                client=request_client_address(request),
                region_header=request.headers.get(settings.QOE_REGION_HEADER) if settings.QOE_REGION_HEADER else None,
                now=now,
            )
        except BatchRejected as exc:
            BATCHES.labels("rejected").inc()
            return Response({"detail": str(exc)}, status=400)
        except BatchUnauthorised as exc:
            BATCHES.labels("unauthorised").inc()
            return Response({"detail": str(exc)}, status=403)
        try:
            refusal = ingest.beacon_accept(beacon=beacon, now=now)
        except ingest.UNAVAILABLE:
            refusal = "unavailable"
        if refusal:
            status, detail, outcome = REFUSALS[refusal]
            BATCHES.labels(outcome).inc()
            response = Response({"detail": detail}, status=status)
            if status == 503:
                response["Retry-After"] = "10"
            return response
        metrics.observe_batch(beacon.batch)
        BATCHES.labels("accepted").inc()
        EVENTS.inc(len(beacon.batch.events))
        return Response({"accepted": len(beacon.batch.events)}, status=202)
