"""The task queues (docs/adr/0025): which step runs on which queue, a quick step that does not wait
behind the full ladder, and the work per queue that the autoscalers read, on the real Redis broker."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
from django.test import Client
from dramatiq import Worker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import dq_name

from media_pipeline import services
from media_pipeline.metrics import queue_messages
from media_pipeline.models import AssetStatus, MediaAsset

EXPECTED_QUEUES = {
    "probe_asset": "quick",
    "provisional_asset": "quick",
    "publish_asset": "quick",
    "transcode_asset": "ladder",
    "encode_chunk": "ladder",
    "join_chunks": "ladder",
    "replicate_version": "replication",
    "collect_replica": "replication",
    "ags_post_score": "lti",
    "ags_reconcile_link": "lti",
    "nrps_sync_context": "lti",
}


def test_every_step_is_on_its_queue() -> None:
    broker = dramatiq.get_broker()
    declared = {name: broker.get_actor(name).queue_name for name in broker.get_declared_actors()}
    assert declared == EXPECTED_QUEUES


def redis_broker() -> RedisBroker:
    broker = dramatiq.get_broker()
    assert isinstance(broker, RedisBroker)
    return broker


def start_worker(broker: RedisBroker, queues: set[str]) -> Worker:
    """A real Dramatiq worker in this process that consumes only ``queues``, one message at a time."""
    worker = Worker(broker, queues=queues, worker_threads=1, worker_timeout=100)
    worker.queue_prefetch = 1  # takes a message only when its thread is free: "running" is exact
    worker.start()
    return worker


def stop_worker(broker: RedisBroker, worker: Worker) -> None:
    worker.stop(timeout=10_000)
    # Worker() leaves a middleware on the process-wide broker that would add consumers for it later.
    broker.middleware[:] = [m for m in broker.middleware if getattr(m, "worker", None) is not worker]


@pytest.mark.django_db(transaction=True)
def test_a_quick_step_runs_while_the_ladder_queue_is_full_and_nobody_takes_it(key_prefix: str, tmp_path: Path) -> None:
    broker = redis_broker()
    broker.flush_all()
    # The ladder queue holds a full-ladder encode, sent first; no worker consumes `ladder`.
    waiting = MediaAsset.objects.create(key_prefix=key_prefix + "-other", status=AssetStatus.PROBED)
    broker.get_actor("transcode_asset").send(waiting.pk)
    worker = start_worker(broker, {"quick"})
    try:
        asset = services.asset_create(key_prefix=key_prefix)
        bogus = tmp_path / "x.mp4"
        bogus.write_text("not a video\n" * 50)
        with bogus.open("rb") as stream:
            services.asset_upload_source(asset=asset, stream=stream, source_name="x.mp4")  # sends probe_asset
        broker.join("quick", timeout=60_000)
    finally:
        stop_worker(broker, worker)
    try:
        asset.refresh_from_db()
        assert asset.status == AssetStatus.FAILED  # probed (and refused) by the quick worker
        assert queue_messages(broker, "ladder") == {"waiting": 1, "running": 0, "delayed": 0}
        assert queue_messages(broker, "quick") == {"waiting": 0, "running": 0, "delayed": 0}
    finally:
        broker.flush_all()


@pytest.fixture
def blocking_actor() -> Iterator[tuple[dramatiq.Actor[[int], None], threading.Event, threading.Event]]:
    """An actor on a queue of its own: a negative number is busy elsewhere and retried in an hour (as
    encode_chunk does with a chunk another worker holds); any other signals ``started`` and holds its
    thread until ``release``."""
    broker = redis_broker()
    started, release = threading.Event(), threading.Event()

    def hold(number: int) -> None:
        if number < 0:
            raise dramatiq.Retry("busy elsewhere", delay=3_600_000)
        started.set()
        release.wait(timeout=60)

    suffix = uuid.uuid4().hex[:10]
    actor: dramatiq.Actor[[int], None] = dramatiq.actor(
        actor_name=f"hold_{suffix}", queue_name=f"work-{suffix}", broker=broker, max_retries=5
    )(hold)
    try:
        yield actor, started, release
    finally:
        release.set()
        broker.flush(actor.queue_name)
        broker.actors.pop(actor.actor_name, None)
        broker.queues.discard(actor.queue_name)
        broker.delay_queues.discard(dq_name(actor.queue_name))


@pytest.mark.services
def test_the_work_of_a_queue_counts_waiting_running_and_delayed_messages(
    blocking_actor: tuple[dramatiq.Actor[[int], None], threading.Event, threading.Event],
) -> None:
    actor, started, release = blocking_actor
    broker, queue = redis_broker(), actor.queue_name
    # One worker thread, one message at a time, in order: -1 runs first and is retried in an hour; 0
    # runs and holds the thread; 1 and 2 wait behind it; 3 is sent with a delay of an hour.
    for number in range(-1, 3):
        actor.send(number)
    actor.send_with_options(args=(3,), delay=3_600_000)
    worker = start_worker(broker, {queue})
    try:
        assert started.wait(timeout=30)  # 0 runs; -1's retry was sent before 0 was taken (same thread)
        counts = queue_messages(broker, queue)
        # Where Dramatiq keeps them, read directly: the list, every worker's acks sets, the delay hash.
        client, name = broker.client, f"{broker.namespace}:{queue}"
        acks = sum(client.scard(key) for key in client.scan_iter(f"{broker.namespace}:__acks__.*.{queue}"))
        assert (client.llen(name), acks, client.hlen(f"{name}.DQ.msgs")) == (2, 1, 2)
        assert counts == {"waiting": 2, "running": 1, "delayed": 2}

        page = Client().get("/metrics").content.decode()
        # What each ScaledObject's trigger reads (deploy/kubernetes, tests/deploy/test_kubernetes.py):
        assert f'dramatiq_queue_work{{queue="{queue}"}} 5.0' in page
        # A scaler on the waiting list alone would see 2 here, and 0 once the last message runs.
        assert f'dramatiq_queue_depth{{queue="{queue}"}} 2.0' in page
        for state, count in counts.items():
            assert f'dramatiq_queue_messages{{queue="{queue}",state="{state}"}} {count:.1f}' in page
    finally:
        release.set()
        stop_worker(broker, worker)
