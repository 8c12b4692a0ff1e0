"""Prometheus metrics of the media pipeline: failures by step, and the work in each task queue."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from django.db.models import Count
from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from dramatiq.brokers.redis import RedisBroker

from media_pipeline.models import VersionReplica
from media_pipeline.replication import replication_lag_seconds

# What the workers' autoscalers read (deploy/kubernetes): waiting + running + delayed messages per queue.
WORK_METRIC = "dramatiq_queue_work"
ASSET_FAILURES = Counter("media_asset_failures_total", "Assets that ended in the failed state", ["step"])


def queue_messages(broker: RedisBroker, queue: str) -> dict[str, int]:
    """The messages of one Dramatiq queue by state, read atomically from the Redis broker's keys.

    Where Dramatiq 2's Redis broker keeps them (dramatiq/brokers/redis/dispatch.lua): a message id waits
    in the list ``NS:QUEUE`` while its body is in the hash ``NS:QUEUE.msgs``; a worker's fetch moves the id
    into its set ``NS:__acks__.WORKER.QUEUE`` and leaves the body in the hash until the ack deletes it. A
    delayed message (``send_with_options(delay=...)``, every retry's backoff) is enqueued on ``QUEUE.DQ``
    instead and stays in the hash ``NS:QUEUE.DQ.msgs`` until it is due and moved back to ``QUEUE``, also
    while a worker's delay consumer holds it. So:

    - waiting = LLEN ``NS:QUEUE``;
    - running = HLEN ``NS:QUEUE.msgs`` - waiting, the ids in every worker's acks set for the queue (taken
      and not acknowledged: running, prefetched, or held by a dead worker until Dramatiq requeues them),
      counted without scanning the keyspace for the acks sets;
    - delayed = HLEN ``NS:QUEUE.DQ.msgs``.

    Dead-lettered messages (``QUEUE.XQ``) are no work and are left out.
    """
    name = f"{broker.namespace}:{queue}"
    with broker.client.pipeline(transaction=True) as pipe:  # MULTI: the three counts of one instant
        pipe.llen(name)
        pipe.hlen(f"{name}.msgs")
        pipe.hlen(f"{name}.DQ.msgs")
        waiting, stored, delayed = pipe.execute()
    return {"waiting": waiting, "running": max(stored - waiting, 0), "delayed": delayed}


class QueueDepthCollector(Collector):
    """The messages of each Dramatiq queue, read from the broker at scrape time (docs/adr/0025).

    ``dramatiq_queue_work`` (waiting + running + delayed) is what the workers' autoscalers read: a queue
    whose only message is an encode in progress, or a retry waiting for its backoff, still needs its
    worker. ``dramatiq_queue_depth`` (waiting only) is what the backlog alerts read.
    """

    def collect(self) -> Iterator[GaugeMetricFamily]:
        import dramatiq
        from dramatiq.brokers.redis import RedisBroker

        depth = GaugeMetricFamily("dramatiq_queue_depth", "Messages waiting in a Dramatiq queue", labels=["queue"])
        by_state = GaugeMetricFamily(
            "dramatiq_queue_messages", "Messages of a Dramatiq queue by state", labels=["queue", "state"]
        )
        work = GaugeMetricFamily(
            WORK_METRIC, "Messages of a Dramatiq queue waiting, running or delayed", labels=["queue"]
        )
        try:
            broker = dramatiq.get_broker()
            if not isinstance(broker, RedisBroker):  # the queues are Redis keys only on the Redis broker
                return
            for queue in sorted(broker.get_declared_queues()):
                counts = queue_messages(broker, queue)
                depth.add_metric([queue], counts["waiting"])
                for state, count in counts.items():
                    by_state.add_metric([queue, state], count)
                work.add_metric([queue], sum(counts.values()))
        except Exception:  # noqa: BLE001 - a scrape must not fail because the broker is down
            return
        yield depth
        yield by_state
        yield work


_registered = False


def register_collectors() -> None:
    global _registered
    if not _registered:
        REGISTRY.register(QueueDepthCollector())
        REGISTRY.register(ReplicationCollector())
        _registered = True


class ReplicationCollector(Collector):
    """Replication lag and replica states per region, read from the database at scrape time."""

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Without describe() the registry would call collect() at start-up, before the database is ready.
        yield GaugeMetricFamily("media_replication_lag_seconds", "", labels=["region"])
        yield GaugeMetricFamily("media_replicas", "", labels=["region", "state"])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            lag = replication_lag_seconds()
            counts = list(
                VersionReplica.objects.values("region", "state")
                .annotate(n=Count("pk"))
                .values_list("region", "state", "n")
            )
        except Exception:  # noqa: BLE001 - a scrape must not fail because the database is down
            return
        lag_family = GaugeMetricFamily(
            "media_replication_lag_seconds",
            "Age of the oldest published version not yet complete in the region (0 when all are)",
            labels=["region"],
        )
        for region, seconds in sorted(lag.items()):
            lag_family.add_metric([region], seconds)
        yield lag_family
        states = GaugeMetricFamily("media_replicas", "Version copies per region and state", labels=["region", "state"])
        for region, state, count in sorted(counts):
            states.add_metric([region, state], count)
        yield states
