"""Prometheus metrics of the media pipeline: failures by step, and the depth of the work queue."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count
from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from media_pipeline.models import VersionReplica
from media_pipeline.replication import replication_lag_seconds

ASSET_FAILURES = Counter("media_asset_failures_total", "Assets that ended in the failed state", ["step"])


class QueueDepthCollector(Collector):
    """Messages waiting in each Dramatiq queue, read from the broker at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        import dramatiq
        from dramatiq.brokers.redis import RedisBroker

        family = GaugeMetricFamily("dramatiq_queue_depth", "Messages waiting in a Dramatiq queue", labels=["queue"])
        try:
            broker = dramatiq.get_broker()
            if not isinstance(broker, RedisBroker):  # the queues are Redis lists only on the Redis broker
                return
            for queue in sorted(broker.get_declared_queues()):
                family.add_metric([queue], broker.client.llen(f"{broker.namespace}:{queue}"))
        except Exception:  # noqa: BLE001 - a scrape must not fail because the broker is down
            return
        yield family


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
