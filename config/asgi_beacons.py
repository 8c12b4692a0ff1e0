"""ASGI entry point for the beacon role: the beacon endpoint and nothing else.

A deployment can run player beacons (`POST /api/v1/qoe/events/`, the bulk of requests while
lessons play) on processes of their own, scaled on their own (the image's `beacons` role). The
endpoint is the same BeaconIngestApp that config/asgi.py puts in front of Django (docs/adr/0005);
here what it does not answer gets this small app instead of Django: `/healthz` (the process runs),
`/readyz` (Redis, the only thing a beacon needs, answers), `/metrics` (the beacon counters for
Prometheus) and 404 for every other path. No database, session or template is touched.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import django

from config.draining import draining

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)

import prometheus_client  # noqa: E402

from analytics.asgi_ingest import BeaconIngestApp  # noqa: E402


async def _respond(send: Callable, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
               (b"cache-control", b"no-store")]  # fmt: skip
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _json(send: Callable, status: int, payload: dict[str, Any]) -> None:
    await _respond(send, status, json.dumps(payload).encode(), b"application/json")


class BeaconsOnly:
    """What the beacon role answers besides the beacon endpoint."""

    def __init__(self) -> None:
        self.ingest: BeaconIngestApp | None = None  # set below: its Redis client serves /readyz too

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # a websocket is not accepted: returning closes it
        path = scope["path"]
        if path == "/healthz":
            await _json(send, 200, {"status": "ok"})
        elif path == "/readyz":
            await self._ready(send)
        elif path == "/metrics":
            await _respond(
                send, 200, prometheus_client.generate_latest(), prometheus_client.CONTENT_TYPE_LATEST.encode()
            )
        else:
            await _json(send, 404, {"detail": "Not found."})

    async def _ready(self, send: Callable) -> None:
        assert self.ingest is not None
        if draining():  # told to stop (config/serve.py): out of the balancer first, as the site's /readyz
            await _json(send, 503, {"status": "draining"})
            return
        try:
            await self.ingest._redis().ping()
        except Exception:  # noqa: BLE001 - any failure means "not ready"
            await _json(send, 503, {"status": "unavailable", "checks": {"broker": "error"}})
            return
        await _json(send, 200, {"status": "ok", "checks": {"broker": "ok"}})

    async def _lifespan(self, receive: Callable, send: Callable) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


_fallback = BeaconsOnly()
application = BeaconIngestApp(_fallback)
_fallback.ingest = application
