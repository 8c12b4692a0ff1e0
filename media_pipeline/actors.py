"""Dramatiq actors: re-fetch by id, call one service, let the error policy decide.

Permanent errors (the input cannot be processed) are recorded on the asset by the services and
not retried; anything else (storage, network, a killed worker) is retried with backoff.
"""

from __future__ import annotations

import dramatiq

from media_pipeline import provisional, replication, services
from media_pipeline.errors import PermanentError

MINUTE_MS = 60_000
COMMON = {"queue_name": "media", "max_retries": 5, "min_backoff": 2_000, "max_backoff": 5 * MINUTE_MS,
          "throws": (PermanentError,)}  # fmt: skip


@dramatiq.actor(time_limit=10 * MINUTE_MS, **COMMON)
def probe_asset(asset_id: int) -> None:
    services.asset_probe(asset_id=asset_id)


@dramatiq.actor(time_limit=6 * 60 * MINUTE_MS, **COMMON)
def provisional_asset(asset_id: int) -> None:
    provisional.asset_provisional(asset_id=asset_id)


@dramatiq.actor(time_limit=6 * 60 * MINUTE_MS, **COMMON)
def transcode_asset(asset_id: int) -> None:
    services.asset_transcode(asset_id=asset_id)


@dramatiq.actor(time_limit=10 * MINUTE_MS, **COMMON)
def publish_asset(asset_id: int) -> None:
    services.asset_publish(asset_id=asset_id)


# A region that is down is retried for hours with growing pauses; `replicas sync` (run by
# pipeline_resume at start-up, or from cron) picks up whatever outlives the retries.
REPLICATION = {"queue_name": "replication", "max_retries": 20, "min_backoff": 2_000, "max_backoff": 15 * MINUTE_MS,
               "throws": (PermanentError,)}  # fmt: skip


@dramatiq.actor(time_limit=6 * 60 * MINUTE_MS, **REPLICATION)
def replicate_version(replica_id: int) -> None:
    replication.replica_sync(replica_id=replica_id)


@dramatiq.actor(time_limit=30 * MINUTE_MS, **REPLICATION)
def collect_replica(replica_id: int) -> None:
    replication.replica_collect(replica_id=replica_id)
