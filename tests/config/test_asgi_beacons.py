"""The beacon role's ASGI application (config/asgi_beacons.py): the beacon endpoint, probes, metrics, 404."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from channels.testing import HttpCommunicator

from config.asgi_beacons import application


def _call(method: str, path: str) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        communicator = HttpCommunicator(application, method, path)
        communicator.scope["client"] = ("127.0.0.1", 50000)
        return await communicator.get_response(timeout=5)

    return asyncio.run(run())


@pytest.mark.parametrize("path", ["/", "/admin/", "/api/v1/courses/", "/static/css/site.css", "/healthz/"])
def test_everything_but_the_beacon_endpoint_and_probes_is_not_found(path: str) -> None:
    response = _call("GET", path)
    assert response["status"] == 404
    assert json.loads(response["body"]) == {"detail": "Not found."}


def test_the_beacon_endpoint_is_answered_by_the_ingest_app() -> None:
    response = _call("GET", "/api/v1/qoe/events/")
    assert response["status"] == 405  # BeaconIngestApp's answer: only POST


def test_liveness_and_metrics() -> None:
    assert _call("GET", "/healthz")["status"] == 200
    metrics = _call("GET", "/metrics")
    assert metrics["status"] == 200
    assert b"qoe_beacon_events_total" in metrics["body"]
