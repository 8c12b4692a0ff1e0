"""`POST /api/v1/qoe/events/`: player beacons. Signed by the playback session's view token, capped per view and
per client address, never waits on the database. analytics/asgi_ingest.py answers the same path in production
with the same rules; this view serves WSGI deployments and the OpenAPI schema."""

from __future__ import annotations

import time

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from prometheus_client import Counter
from rest_framework import serializers
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import ingest, metrics
from analytics.beacons import MAX_BODY_BYTES, BatchRejected, BatchUnauthorised
from config.client_address import request_client_address

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


class QoeEventsApi(APIView):
    authentication_classes: list = []  # anonymous viewers send beacons too; no session, no CSRF
    permission_classes = [AllowAny]
    parser_classes = [RawParser]

    @extend_schema(
        request=inline_serializer(
            "QoeBatch",
            {
                "view_id": serializers.UUIDField(),
                "lesson": serializers.UUIDField(),
                "view_token": serializers.CharField(help_text="the playback session's view_token"),
                "pathway": serializers.CharField(required=False),
                "browser": serializers.CharField(required=False),
                "device": serializers.ChoiceField(choices=["desktop", "mobile", "tablet", "tv", "other"]),
                "events": serializers.ListField(child=serializers.DictField()),
            },
        ),
        responses={
            202: inline_serializer("QoeAccepted", {"accepted": serializers.IntegerField()}),
            400: OpenApiResponse(description="The batch does not match the schema; nothing was stored"),
            403: OpenApiResponse(description="No valid view token for this view and lesson; nothing was stored"),
            413: OpenApiResponse(description="The batch is larger than 64 KiB"),
            429: OpenApiResponse(description="Too many batches from this client address, or from this view"),
            503: OpenApiResponse(description="Beacon storage is full or unreachable; nothing was stored"),
        },
        summary="Player QoE beacons (batched; sent with sendBeacon)",
    )
    def post(self, request: Request) -> Response:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > MAX_BODY_BYTES:
            BATCHES.labels("too_large").inc()
            return Response({"detail": f"batch larger than {MAX_BODY_BYTES} bytes"}, status=413)
        try:
            beacon = ingest.beacon_prepare(
                body=request.body,
                client=request_client_address(request),
                region_header=request.headers.get(settings.QOE_REGION_HEADER) if settings.QOE_REGION_HEADER else None,
                now=time.time(),
            )
        except BatchRejected as exc:
            BATCHES.labels("rejected").inc()
            return Response({"detail": str(exc)}, status=400)
        except BatchUnauthorised as exc:
            BATCHES.labels("unauthorised").inc()
            return Response({"detail": str(exc)}, status=403)
        try:
            refusal = ingest.beacon_accept(beacon=beacon)
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
