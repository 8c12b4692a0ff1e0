"""The beacon endpoint as a small ASGI app in front of Django (see docs/adr/0005).

Django's request path (middleware, a thread hop for sync code, DRF) tops out at a few hundred
requests a second on two cores. Beacons need none of it: no session, no CSRF, no database. This
app answers `POST /api/v1/qoe/events/` itself with an asyncio Redis client and hands every other
request to Django. The rules are the same as the DRF view's (which WSGI deployments and the
OpenAPI schema use): the same parser, live counters, metrics and limits.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, replace
from typing import Any

import redis.asyncio as aredis
from django.conf import settings

from analytics import live, metrics
from analytics.apis import BATCHES, EVENTS
from analytics.beacons import MAX_BODY_BYTES, BatchRejected, parse_batch, region_from_header
from analytics.ingest import STREAM, STREAM_MAX_LEN

PATH = "/api/v1/qoe/events/"
RATE_WINDOW_SECONDS = 10
ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


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
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"cache-control", b"no-store")],
            }
        )  # fmt: skip
        await send({"type": "http.response.body", "body": body})

    async def _handle(self, scope: dict, receive: Callable) -> tuple[int, dict[str, Any]]:
        if scope["method"] != "POST":
            return 405, {"detail": f'Method "{scope["method"]}" not allowed.'}
        headers = dict(scope.get("headers") or [])
        declared = int(headers.get(b"content-length", b"0") or 0)
        if declared > MAX_BODY_BYTES:
            BATCHES.labels("too_large").inc()
            return 413, {"detail": f"batch larger than {MAX_BODY_BYTES} bytes"}
        client = (scope.get("client") or ("unknown", 0))[0]
        if not await self._allow(client):
            BATCHES.labels("rate_limited").inc()
            return 429, {"detail": "too many batches; slow down"}
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > MAX_BODY_BYTES:
                BATCHES.labels("too_large").inc()
                return 413, {"detail": f"batch larger than {MAX_BODY_BYTES} bytes"}
            if not message.get("more_body"):
                break
        try:
            batch = parse_batch(bytes(body))
        except BatchRejected as exc:
            BATCHES.labels("rejected").inc()
            return 400, {"detail": str(exc)}
        if settings.QOE_REGION_HEADER:
            header = headers.get(settings.QOE_REGION_HEADER.lower().encode(), b"").decode("latin-1")
            batch = replace(batch, region=region_from_header(header))
        now = time.time()
        pipe = self._redis().pipeline(transaction=False)
        pipe.xadd(
            STREAM,
            {"b": json.dumps(asdict(batch), separators=(",", ":")), "at": f"{now:.3f}"},
            maxlen=STREAM_MAX_LEN,
            approximate=True,
        )
        live.record_batch(pipe, batch=batch, now=now)
        await pipe.execute()
        metrics.observe_batch(batch)
        BATCHES.labels("accepted").inc()
        EVENTS.inc(len(batch.events))
        return 202, {"accepted": len(batch.events)}

    async def _allow(self, client: str) -> bool:
        bucket = f"qoe:rl:{client}:{int(time.time()) // RATE_WINDOW_SECONDS}"
        pipe = self._redis().pipeline(transaction=False)
        pipe.incr(bucket)
        pipe.expire(bucket, RATE_WINDOW_SECONDS * 2)
        count, _ = await pipe.execute()
        return int(count) <= settings.QOE_RATE_LIMIT_BATCHES
