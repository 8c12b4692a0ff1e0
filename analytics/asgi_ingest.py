"""The beacon endpoint as a small ASGI app in front of Django (see docs/adr/0005).

Django's request path (middleware, a thread hop for sync code, DRF) tops out at a few hundred
requests a second on two cores. Beacons need none of it: no session, no CSRF, no database. This
app answers `POST /api/v1/qoe/events/` itself with an asyncio Redis client and hands every other
request to Django. The rules are the same as the DRF view's (which WSGI deployments and the
OpenAPI schema use): the same parser, view-token check, live counters, metrics and limits
(analytics/ingest.py), and the same client address (config/client_address.py).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import redis.asyncio as aredis
from django.conf import settings

from analytics import ingest, metrics
from analytics.apis import BATCHES, EVENTS, REFUSALS
from analytics.beacons import MAX_BODY_BYTES, BatchRejected, BatchUnauthorised
from config.client_address import scope_client_address

PATH = "/api/v1/qoe/events/"
ASGIApp = Callable[
    [dict[str, Any], Callable[[], Awaitable[Mapping[str, Any]]], Callable[[Mapping[str, Any]], Awaitable[None]]],
    Awaitable[None],
]


class BeaconIngestApp:
    def __init__(self, django_app: ASGIApp) -> None:
        self.django_app = django_app
        self._clients: dict[int, aredis.Redis] = {}

    def _redis(self) -> aredis.Redis:
        # One pool per event loop (tests run several loops in one process).
        import asyncio

        loop_id = id(asyncio.get_running_loop())
        if loop_id not in self._clients:
            self._clients[loop_id] = aredis.Redis.from_url(
                settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
            )
        return self._clients[loop_id]

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["path"] != PATH:
            await self.django_app(scope, receive, send)
            return
        status, payload = await self._handle(scope, receive)
        body = json.dumps(payload).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"cache-control", b"no-store")]  # fmt: skip
        if status == 503:
            headers.append((b"retry-after", b"10"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _handle(self, scope: dict, receive: Callable) -> tuple[int, dict[str, Any]]:
        if scope["method"] != "POST":
            return 405, {"detail": f'Method "{scope["method"]}" not allowed.'}
        headers = dict(scope.get("headers") or [])
        try:
            declared = int(headers.get(b"content-length", b"0") or 0)
        except ValueError:
            return 400, {"detail": "bad Content-Length"}
        if declared > MAX_BODY_BYTES:
            BATCHES.labels("too_large").inc()
            return 413, {"detail": f"batch larger than {MAX_BODY_BYTES} bytes"}
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > MAX_BODY_BYTES:
                BATCHES.labels("too_large").inc()
                return 413, {"detail": f"batch larger than {MAX_BODY_BYTES} bytes"}
            if not message.get("more_body"):
                break
        now = ingest.clock()
        region_header = None
        if settings.QOE_REGION_HEADER:
            region_header = headers.get(settings.QOE_REGION_HEADER.lower().encode(), b"").decode("latin-1")
        try:
            beacon = ingest.beacon_prepare(
                body=bytes(body), client=scope_client_address(scope), region_header=region_header, now=now
            )
        except BatchRejected as exc:
            BATCHES.labels("rejected").inc()
            return 400, {"detail": str(exc)}
        except BatchUnauthorised as exc:
            BATCHES.labels("unauthorised").inc()
            return 403, {"detail": str(exc)}
        try:
            refusal = await self._accept(beacon, now)
        except ingest.UNAVAILABLE:
            refusal = "unavailable"
        if refusal:
            status, detail, outcome = REFUSALS[refusal]
            BATCHES.labels(outcome).inc()
            return status, {"detail": detail}
        metrics.observe_batch(beacon.batch)
        BATCHES.labels("accepted").inc()
        EVENTS.inc(len(beacon.batch.events))
        return 202, {"accepted": len(beacon.batch.events)}

    async def _accept(self, beacon: ingest.Beacon, now: float) -> str | None:
        # The same single round trip as ingest.beacon_accept, on the asyncio client.
        keys, args = ingest.admit_and_write_arguments(beacon=beacon, now=now)
        return ingest.admission_answer(await ingest.admit_and_write_script(self._redis())(keys=keys, args=args))
