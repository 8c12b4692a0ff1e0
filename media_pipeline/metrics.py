"""Prometheus metrics of the media pipeline: failures by step, and the depth of the work queue."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

ASSET_FAILURES = Counter("media_asset_failures_total", "Assets that ended in the failed state", ["step"])


class QueueDepthCollector(Collector):
    """Messages waiting in each Dramatiq queue, read from the broker at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        import dramatiq

        family = GaugeMetricFamily("dramatiq_queue_depth", "Messages waiting in a Dramatiq queue", labels=["queue"])
        try:
            broker = dramatiq.get_broker()
            client = broker.client  # type: ignore[attr-defined]
            for queue in sorted(broker.get_declared_queues()):
                family.add_metric([queue], client.llen(f"{broker.namespace}:{queue}"))  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - a scrape must not fail because the broker is down
            return
        yield family


_registered = False


def register_collectors() -> None:
    global _registered
    if not _registered:
        REGISTRY.register(QueueDepthCollector())
        _registered = True
