"""Beacon abuse (issue 13, finding 4) against the harness's Redis: only signed beacons count, each view
and each client address has an allowance, the stream is capped in bytes, and a full Redis answers 503
without touching the task queue."""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
from channels.testing import HttpCommunicator
from django.test import Client
from dramatiq import Message, Worker
from pytest_django import Settings

from analytics import ingest
from analytics.beacons import MAX_STORED_BYTES
from config.asgi import application
from tests.analytics.test_beacons import body, signed

pytestmark = pytest.mark.services  # Redis, through the module's own client

PATH = "/api/v1/qoe/events/"
CANARY_QUEUE = "beacon-canary"  # a queue no worker reads: its messages must outlive any flood


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    def wipe() -> None:
        client = ingest.client()
        for key in client.scan_iter("qoe:*"):
            client.delete(key)

    wipe()
    yield
    wipe()


def _asgi(payload: bytes, *, client: str = "127.0.0.1", headers: list | None = None) -> tuple[int, dict]:
    async def run() -> dict:
        communicator = HttpCommunicator(application, "POST", PATH, body=payload, headers=headers or [])
        communicator.scope["client"] = (client, 50000)
        return await communicator.get_response(timeout=5)

    response = asyncio.run(run())
    return response["status"], json.loads(response["body"])


def _drf(payload: bytes, *, client: str = "127.0.0.1", **extra: str) -> tuple[int, dict]:
    response = Client().post(PATH, payload, content_type="text/plain", REMOTE_ADDR=client, **extra)
    return response.status_code, response.json()


SENDERS = {"asgi": _asgi, "drf": _drf}


def _view_body(view: str, lesson: str, **overrides: object) -> bytes:
    return body(view_id=view, lesson=lesson, view_token=signed(view, lesson), **overrides)


@pytest.mark.django_db
@pytest.mark.parametrize("sender", SENDERS)
def test_a_batch_without_a_valid_view_token_is_refused_and_nothing_is_stored(sender: str) -> None:
    send = SENDERS[sender]
    view, lesson = str(uuid.uuid4()), str(uuid.uuid4())
    token = signed(view, lesson)
    required = "a valid view_token from the playback session is required"
    cases = [
        (body(view_id=view, lesson=lesson, view_token=None), required),
        (body(view_id=view, lesson=lesson, view_token=token[:-1] + ("A" if token[-1] != "A" else "B")), required),
        (body(view_id=view, lesson=lesson, view_token=signed(view, lesson, issued_at=1)), required),  # expired
        (body(view_id=str(uuid.uuid4()), lesson=lesson, view_token=token), "the view_token is for another view_id"),
        (body(view_id=view, lesson=str(uuid.uuid4()), view_token=token), "the view_token is for another lesson"),
    ]
    for payload, detail in cases:
        assert send(payload) == (403, {"detail": detail})
    client = ingest.client()
    assert client.xlen(ingest.STREAM) == 0
    assert list(client.scan_iter("qoe:*")) == []  # not even a counter: refused before Redis
    assert send(body(view_id=view, lesson=lesson, view_token=token)) == (202, {"accepted": 4})


@pytest.mark.django_db
@pytest.mark.parametrize("sender", SENDERS)
def test_a_view_may_send_only_its_allowance(sender: str, settings: Settings) -> None:
    settings.QOE_VIEW_MAX_BATCHES = 3
    send = SENDERS[sender]
    view, lesson = str(uuid.uuid4()), str(uuid.uuid4())
    statuses = [send(_view_body(view, lesson), client=f"198.51.100.{n}")[0] for n in range(5)]
    assert statuses == [202, 202, 202, 429, 429]  # from five addresses: the allowance is the view's
    assert ingest.client().xlen(ingest.STREAM) == 3
    # The count lives as long as the token can be used, no longer.
    ttl = ingest.client().ttl(f"qoe:view:{view}")
    assert settings.VIEW_TOKEN_MAX_AGE_SECONDS <= ttl <= settings.VIEW_TOKEN_MAX_AGE_SECONDS + 60
    # Events are counted too: 4 per batch here.
    settings.QOE_VIEW_MAX_BATCHES, settings.QOE_VIEW_MAX_EVENTS = 100, 9
    other = str(uuid.uuid4())
    assert [send(_view_body(other, lesson))[0] for _ in range(3)] == [202, 202, 429]
    assert send(_view_body(other, lesson))[1] == {"detail": "this view has sent all the beacons it may"}


@pytest.mark.usefixtures("ingest_clock_held")
def test_the_rate_limit_keys_on_the_client_address_not_a_spoofed_header(settings: Settings) -> None:
    settings.QOE_RATE_LIMIT_BATCHES = 2
    lesson = str(uuid.uuid4())

    def send(peer: str, forwarded: str) -> int:
        return _asgi(
            _view_body(str(uuid.uuid4()), lesson), client=peer, headers=[(b"x-forwarded-for", forwarded.encode())]
        )[0]

    # An untrusted peer cannot escape its limit by claiming other addresses.
    assert [send("203.0.113.5", f"198.51.100.{n}") for n in range(4)] == [202, 202, 429, 429]
    # Behind a trusted load balancer every viewer has a limit of their own, not one shared by all.
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert [send("10.0.0.2", f"6.6.6.6, 198.51.100.{n}") for n in range(4)] == [202] * 4
    assert [send("10.0.0.3", "192.0.2.1") for _ in range(3)] == [202, 202, 429]


def test_the_stream_cap_fits_the_worst_case_in_bytes(settings: Settings) -> None:
    settings.QOE_STREAM_MAX_BYTES = 512 * 1024**2
    assert ingest.stream_max_len() == 512 * 1024**2 // (MAX_STORED_BYTES + ingest.STREAM_ENTRY_OVERHEAD) == 8_065
    settings.QOE_STREAM_MAX_BYTES = 1
    assert ingest.stream_max_len() == 1


@pytest.mark.django_db
def test_the_drain_deletes_what_it_stored() -> None:
    lesson = str(uuid.uuid4())
    for _ in range(3):
        assert _asgi(_view_body(str(uuid.uuid4()), lesson))[0] == 202
    assert ingest.client().xlen(ingest.STREAM) == 3
    assert ingest.qoe_drain() == 12
    # The stream keeps only what is not in the database yet: its cap is a buffer, not a history.
    assert ingest.client().xlen(ingest.STREAM) == 0


def test_redis_refuses_writes_rather_than_evicting() -> None:
    config = ingest.client().config_get("maxmemory*")
    assert config["maxmemory-policy"] == "noeviction"
    assert int(config["maxmemory"]) > 0


def _canaries(count: int) -> list[str]:
    broker = dramatiq.get_broker()
    return [
        broker.enqueue(Message(queue_name=CANARY_QUEUE, actor_name="canary", args=(n,), kwargs={}, options={})).options[
            "redis_message_id"
        ]
        for n in range(count)
    ]


def _queued(ids: list[str]) -> list[str]:
    """The canary messages still in the queue (hash and list alike)."""
    client = ingest.client()
    namespace = dramatiq.get_broker().namespace
    listed = {raw.decode() for raw in client.lrange(f"{namespace}:{CANARY_QUEUE}", 0, -1)}
    stored = {raw.decode() for raw in client.hkeys(f"{namespace}:{CANARY_QUEUE}.msgs")}
    return [message_id for message_id in ids if message_id in listed and message_id in stored]


@pytest.fixture
def canaries() -> Iterator[list[str]]:
    dramatiq.get_broker().flush(CANARY_QUEUE)
    ids = _canaries(20)
    yield ids
    dramatiq.get_broker().flush(CANARY_QUEUE)


@pytest.mark.django_db
@pytest.mark.parametrize("sender", SENDERS)
def test_a_full_redis_answers_503_and_the_task_queue_is_untouched(sender: str, canaries: list[str]) -> None:
    send = SENDERS[sender]
    lesson = str(uuid.uuid4())
    client = ingest.client()
    maxmemory = client.config_get("maxmemory")["maxmemory"]
    client.config_set("maxmemory", "1")  # Redis is "full": every write that needs memory is refused
    try:
        statuses = {send(_view_body(str(uuid.uuid4()), lesson), client=f"198.51.100.{n}")[0] for n in range(10)}
        answer = send(_view_body(str(uuid.uuid4()), lesson))
    finally:
        client.config_set("maxmemory", maxmemory)
    assert statuses == {503}
    assert answer == (503, {"detail": "beacons cannot be stored now; nothing was stored"})
    assert client.xlen(ingest.STREAM) == 0
    assert _queued(canaries) == canaries  # nothing evicted
    assert send(_view_body(str(uuid.uuid4()), lesson))[0] == 202  # and back once there is room


def test_the_asgi_app_says_when_to_retry() -> None:
    client = ingest.client()
    maxmemory = client.config_get("maxmemory")["maxmemory"]
    client.config_set("maxmemory", "1")
    try:

        async def run() -> dict:
            communicator = HttpCommunicator(
                application, "POST", PATH, body=_view_body(str(uuid.uuid4()), str(uuid.uuid4()))
            )
            communicator.scope["client"] = ("127.0.0.1", 50000)
            return await communicator.get_response(timeout=5)

        response = asyncio.run(run())
    finally:
        client.config_set("maxmemory", maxmemory)
    assert response["status"] == 503
    assert (b"retry-after", b"10") in response["headers"]


def _fat_batch(view: str, lesson: str, *, token: bool = True) -> bytes:
    """A large batch (~48 KB): the most events a batch may hold, each with every field at its longest."""
    event = {
        "type": "rebuffer_start", "t": 86_399_999.123456, "bitrate_kbps": 999_999.123456, "height": 8191,
        "fatal": False, "code": "x" * 40, "position": 86_399.123456789, "buffer": 3599.12345678, "dropped": 9_999_999.5,
    }  # fmt: skip
    payload = body(
        view_id=view, lesson=lesson, events=[event] * 200, view_token=signed(view, lesson) if token else None
    )
    assert 45_000 < len(payload) <= 65_536
    return payload


@pytest.mark.slow
def test_a_beacon_flood_while_a_lesson_encodes(
    dramatiq_worker: Worker, canaries: list[str], settings: Settings, demo_clip: Path
) -> None:
    from django.core.management import call_command

    from courses.models import Course, Lesson
    from media_pipeline.models import AssetStatus

    settings.QOE_STREAM_MAX_BYTES = 4 * 1024**2  # small, so the flood outgrows it many times over
    settings.QOE_RATE_LIMIT_BATCHES = 1_000_000  # the flood comes from a handful of addresses here
    Course.objects.create(slug="flood", title="Flood", published=True)
    call_command("ingest", str(demo_clip), "--course", "flood", "--title", "Under fire", stdout=io.StringIO())
    lesson = str(Lesson.objects.get(title="Under fire").public_id)

    # While the worker probes, encodes, packages and publishes (each step a queued task), 300 signed
    # batches of ~48 KB from 30 views (14 MB, over three times the stream's cap) and 100 unsigned ones.
    async def flood() -> list[int]:
        statuses = []
        for n in range(400):
            view = str(uuid.uuid4()) if n >= 300 else str(uuid.UUID(int=n // 10 + 1))
            payload = _fat_batch(view, lesson, token=n < 300)
            communicator = HttpCommunicator(application, "POST", PATH, body=payload)
            communicator.scope["client"] = (f"198.51.100.{n % 7}", 50000)
            statuses.append((await communicator.get_response(timeout=10))["status"])
        return statuses

    statuses = asyncio.run(flood())
    assert (statuses.count(202), statuses.count(403)) == (300, 100)

    client = ingest.client()
    info = client.info("memory")
    assert info["maxmemory_policy"] == "noeviction"
    assert info["used_memory"] < info["maxmemory"]
    assert client.memory_usage(ingest.STREAM, samples=0) <= settings.QOE_STREAM_MAX_BYTES
    assert client.xlen(ingest.STREAM) <= ingest.stream_max_len() == 63

    deadline = time.monotonic() + 240
    while Lesson.objects.select_related("asset").get(public_id=lesson).asset.status != AssetStatus.READY:
        assert time.monotonic() < deadline, "the encode did not finish"
        time.sleep(0.5)
    assert _queued(canaries) == canaries  # every queued task survived the flood
