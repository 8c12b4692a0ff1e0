"""core.tasks on the real (Redis) broker: a message leaves only once its transaction commits, and a
send that fails is logged and reported, never raised."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import dramatiq
import pytest
from django.db import transaction
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import dq_name

from core.tasks import send_now, send_on_commit


@dataclass
class TestActor:
    __test__ = False  # not a test class for pytest

    name: str
    queue: str
    broker: dramatiq.Broker

    def queued(self) -> int:
        """Messages waiting, delayed ones included (Redis counts a queue with its delay queue)."""
        return self.broker.do_qsize(self.queue)  # type: ignore[attr-defined]  # RedisBroker's (the tests' broker), not Broker's

    def take(self, queue: str, *, timeout_ms: int = 2000) -> dramatiq.Message | None:
        """The next message on ``queue`` (this actor's, or its delay queue), acknowledged; None if none."""
        consumer = self.broker.consume(queue, prefetch=1, timeout=timeout_ms)
        try:
            message = next(consumer)
            if message is not None:
                consumer.ack(message)
            return message
        finally:
            consumer.close()

    def take_args(self) -> tuple[object, ...]:
        message = self.take(self.queue)
        assert message is not None
        return tuple(message.args)


def _declare(broker: dramatiq.Broker) -> TestActor:
    suffix = uuid.uuid4().hex[:10]
    name, queue = f"core_tasks_probe_{suffix}", f"core-tasks-{suffix}"

    def probe(*args: object) -> None:
        pass

    dramatiq.actor(probe, actor_name=name, queue_name=queue, broker=broker)
    return TestActor(name=name, queue=queue, broker=broker)


def _forget(actor: TestActor) -> None:
    actor.broker.actors.pop(actor.name, None)
    if isinstance(actor.broker, RedisBroker):
        actor.broker.queues.discard(actor.queue)
        actor.broker.delay_queues.discard(dq_name(actor.queue))


@pytest.fixture
def probe_actor() -> Iterator[TestActor]:
    """An actor of this test's own, on its own queue of the configured broker (nothing consumes it)."""
    actor = _declare(dramatiq.get_broker())
    try:
        yield actor
    finally:
        actor.broker.flush(actor.queue)
        _forget(actor)


@pytest.mark.django_db(transaction=True)
def test_send_on_commit_sends_only_once_the_transaction_commits(probe_actor: TestActor) -> None:
    with transaction.atomic():
        send_on_commit(probe_actor.name, 7, "x")
        assert probe_actor.queued() == 0
    assert probe_actor.queued() == 1
    assert probe_actor.take_args() == (7, "x")


@pytest.mark.django_db(transaction=True)
def test_send_on_commit_sends_nothing_when_the_transaction_rolls_back(probe_actor: TestActor) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        send_on_commit(probe_actor.name, 7)
        raise RuntimeError("the work failed")
    assert probe_actor.queued() == 0


@pytest.mark.django_db(transaction=True)
def test_send_on_commit_in_a_savepoint_waits_for_the_outer_commit(probe_actor: TestActor) -> None:
    with transaction.atomic():
        with transaction.atomic():
            send_on_commit(probe_actor.name, 1)
        assert probe_actor.queued() == 0
    assert probe_actor.queued() == 1


@pytest.mark.django_db(transaction=True)
def test_send_on_commit_outside_a_transaction_sends_at_once(probe_actor: TestActor) -> None:
    send_on_commit(probe_actor.name, 3)
    assert probe_actor.queued() == 1
    assert probe_actor.take_args() == (3,)


@pytest.mark.django_db(transaction=True)
def test_send_now_with_a_delay_goes_to_the_delay_queue(probe_actor: TestActor) -> None:
    sent_at = int(time.time() * 1000)
    assert send_now(probe_actor.name, 5, delay_ms=60_000) is True
    assert probe_actor.queued() == 1
    assert probe_actor.take(probe_actor.queue, timeout_ms=300) is None  # not ready to run yet
    message = probe_actor.take(dq_name(probe_actor.queue))
    assert message is not None and tuple(message.args) == (5,)
    assert message.options["eta"] >= sent_at + 60_000


def test_send_now_of_an_unknown_actor_returns_false_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="core.tasks"):
        assert send_now("no_such_actor_anywhere", 42) is False
    [record] = [r for r in caplog.records if r.name == "core.tasks"]
    assert record.levelno == logging.ERROR
    assert "could not enqueue no_such_actor_anywhere(42,)" in record.getMessage()
    assert record.exc_info is not None and type(record.exc_info[1]).__name__ == "ActorNotFound"


def test_send_now_returns_false_and_logs_when_the_broker_is_unreachable(caplog: pytest.LogCaptureFixture) -> None:
    configured = dramatiq.get_broker()
    # A real Redis broker on a port nothing listens on: the send fails as it does when Redis is down.
    unreachable = RedisBroker(url="redis://127.0.0.1:9/0", middleware=[])
    actor = _declare(unreachable)
    dramatiq.set_broker(unreachable)
    try:
        with caplog.at_level(logging.ERROR, logger="core.tasks"):
            assert send_now(actor.name, 1, 2) is False
    finally:
        dramatiq.set_broker(configured)
        _forget(actor)
    [record] = [r for r in caplog.records if r.name == "core.tasks"]
    assert f"could not enqueue {actor.name}(1, 2)" in record.getMessage()
    assert record.exc_info is not None and "ConnectionError" in type(record.exc_info[1]).__name__
