"""Read CMCD data off the origin's segment requests (the edge's access log carries the same)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase
from prometheus_client import Counter, Histogram

from analytics.cmcd import CmcdError, parse_cmcd

logger = logging.getLogger(__name__)

OBJECT_TYPES = {"m": "manifest", "a": "audio", "v": "video", "av": "muxed", "i": "init", "c": "caption"}
CMCD_REQUESTS = Counter("qoe_cmcd_requests_total", "Media requests carrying CMCD", ["object"])
CMCD_STARVATION = Counter("qoe_cmcd_buffer_starvation_total", "Requests made while the player's buffer was empty")
CMCD_BUFFER = Histogram(
    "qoe_cmcd_buffer_length_seconds", "Buffer length reported with video requests", buckets=(1, 2, 5, 10, 20, 30, 60)
)


class CmcdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        payload = request.GET.get("CMCD") if request.path.startswith("/stream/") else None
        if payload:
            record_cmcd(payload)
        return self.get_response(request)


def record_cmcd(payload: str) -> None:
    try:
        data = parse_cmcd(payload)
    except CmcdError as exc:
        logger.debug("ignoring malformed CMCD: %s", exc)
        return
    kind = OBJECT_TYPES.get(str(data.get("ot", "")), "other")
    CMCD_REQUESTS.labels(kind).inc()
    if data.get("bs") is True:
        CMCD_STARVATION.inc()
    if kind == "video" and isinstance(data.get("bl"), int):
        CMCD_BUFFER.observe(data["bl"] / 1000)
