"""The beacon endpoint as served in production (ASGI): same rules as the DRF view, without Django's request path."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.testing import HttpCommunicator
from pytest_django import Settings

from analytics import ingest, live
from analytics.models import QoeEvent
from config.asgi import application
from tests.analytics.test_beacons import body

pytestmark = pytest.mark.services  # Redis, through the module's own client


@pytest.fixture(autouse=True)
def clean() -> None:
    client = ingest.client()
    client.delete(ingest.STREAM)
    for key in [*client.scan_iter("qoe:rl:*"), *client.scan_iter("qoe:live*")]:
        client.delete(key)
    yield
    client.delete(ingest.STREAM)


def _call(method: str, path: str, payload: bytes = b"", headers: list | None = None, client: str = "127.0.0.1") -> dict:
    async def run() -> dict:
        communicator = HttpCommunicator(application, method, path, body=payload, headers=headers or [])
        communicator.scope["client"] = (client, 50000)
        communicator.scope["server"] = ("127.0.0.1", 8000)
        return await communicator.get_response(timeout=5)

    return asyncio.run(run())


def _json(response: dict) -> dict:
    return json.loads(response["body"])


def test_accepts_a_batch_into_the_stream_and_the_live_counters() -> None:
    response = _call("POST", "/api/v1/qoe/events/", body())
    assert response["status"] == 202
    assert _json(response) == {"accepted": 4}
    assert (b"cache-control", b"no-store") in response["headers"]
    assert ingest.client().xlen(ingest.STREAM) == 1
    snapshot = live.snapshot(ingest.client())
    assert snapshot["windows"]["10s"]["plays"] == 1
    assert snapshot["windows"]["10s"]["events_per_second"] == 0.4


@pytest.mark.django_db
def test_the_drainer_stores_what_the_asgi_endpoint_accepted() -> None:
    assert _call("POST", "/api/v1/qoe/events/", body())["status"] == 202
    assert ingest.qoe_drain() == 4
    assert QoeEvent.objects.count() == 4


@pytest.mark.parametrize(
    ("payload", "headers", "status", "detail"),
    [
        (body(events=[{"type": "explode", "t": 0}]), [], 400, "events[0].type is not a known event type"),
        (b"{", [], 400, "body is not JSON"),
        (b"x" * 70_000, [], 413, "batch larger than 65536 bytes"),
        (b"x", [(b"content-length", b"999999")], 413, "batch larger than 65536 bytes"),
    ],
    ids=["unknown event type", "not JSON", "too large", "declared too large"],
)
def test_refusals_queue_nothing(payload: bytes, headers: list, status: int, detail: str) -> None:
    response = _call("POST", "/api/v1/qoe/events/", payload, headers)
    assert response["status"] == status
    assert _json(response) == {"detail": detail}
    assert ingest.client().xlen(ingest.STREAM) == 0


def test_only_post() -> None:
    response = _call("GET", "/api/v1/qoe/events/")
    assert response["status"] == 405


@pytest.mark.usefixtures("ingest_clock_held")
def test_rate_limit_per_client(settings: Settings) -> None:
    settings.QOE_RATE_LIMIT_BATCHES = 2
    statuses = [_call("POST", "/api/v1/qoe/events/", body())["status"] for _ in range(3)]
    assert statuses == [202, 202, 429]
    assert _call("POST", "/api/v1/qoe/events/", body(), client="10.9.8.7")["status"] == 202
    assert ingest.client().xlen(ingest.STREAM) == 3


@pytest.mark.django_db(transaction=True)
def test_every_other_request_goes_to_django() -> None:
    response = _call("GET", "/healthz", headers=[(b"host", b"127.0.0.1")])
    assert response["status"] == 200
    assert _json(response) == {"status": "ok"}
