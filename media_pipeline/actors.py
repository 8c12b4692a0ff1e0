"""Dramatiq actors: re-fetch by id, call one step, let the error policy decide.

Permanent errors (the input cannot be processed) are recorded on the asset by the steps and
not retried; anything else (storage, network, a killed worker) is retried with backoff. Services and
steps send these by name (core.tasks, media_pipeline.workflow.NEXT_STEP), never by importing this module.

Three queues, so that short work never waits behind long work (docs/adr/0025): `quick` (probe, the
provisional first stream, publish: seconds to minutes), `ladder` (the full ladder and its chunks: up to
hours) and `replication` (copies to other regions, retried for hours while a region is down). Each has
its own workers in production, scaled on the work waiting, running and delayed in it.
"""

from __future__ import annotations

import dramatiq

from core.tasks import ActorOptions
from media_pipeline import replication
from media_pipeline.errors import PermanentError
from media_pipeline.steps import chunked, probe, provisional, publish, transcode

MINUTE_MS = 60_000
QUICK_QUEUE, LADDER_QUEUE, REPLICATION_QUEUE = "quick", "ladder", "replication"
QUICK: ActorOptions = {"queue_name": QUICK_QUEUE, "max_retries": 5, "min_backoff": 2_000,
                       "max_backoff": 5 * MINUTE_MS, "throws": (PermanentError,)}  # fmt: skip
LADDER: ActorOptions = {**QUICK, "queue_name": LADDER_QUEUE}


@dramatiq.actor(time_limit=10 * MINUTE_MS, **QUICK)
def probe_asset(asset_id: int) -> None:
    probe.asset_probe(asset_id=asset_id)


@dramatiq.actor(time_limit=6 * 60 * MINUTE_MS, **QUICK)
def provisional_asset(asset_id: int) -> None:
    provisional.asset_provisional(asset_id=asset_id)


@dramatiq.actor(time_limit=6 * 60 * MINUTE_MS, **LADDER)
def transcode_asset(asset_id: int) -> None:
    transcode.asset_transcode(asset_id=asset_id)


@dramatiq.actor(time_limit=10 * MINUTE_MS, **QUICK)
def publish_asset(asset_id: int) -> None:
    publish.asset_publish(asset_id=asset_id)


# Chunks of a long source (docs/adr/0016). A chunk or join held by another worker is retried after its
# lease, quietly (dramatiq.Retry), as often as it takes that worker to finish or its lease to pass.
CHUNKS: ActorOptions = {**LADDER, "max_retries": 50}


@dramatiq.actor(time_limit=2 * 60 * MINUTE_MS, **CHUNKS)
def encode_chunk(chunk_id: int) -> None:
    try:
        chunked.chunk_encode(chunk_id=chunk_id)
    except chunked.ChunkBusy as busy:
        raise dramatiq.Retry(str(busy), delay=int(busy.retry_after * 1000)) from busy


@dramatiq.actor(time_limit=6 * 60 * MINUTE_MS, **CHUNKS)
def join_chunks(build_id: int) -> None:
    try:
        chunked.chunked_build_join(build_id=build_id)
    except chunked.ChunkBusy as busy:
        raise dramatiq.Retry(str(busy), delay=int(busy.retry_after * 1000)) from busy


# A region that is down is retried for hours with growing pauses; `replicas sync` (run by
# pipeline_resume at start-up, or from cron) picks up whatever outlives the retries.
REPLICATION: ActorOptions = {
    "queue_name": REPLICATION_QUEUE, "max_retries": 20, "min_backoff": 2_000, "max_backoff": 15 * MINUTE_MS,
    "throws": (PermanentError,),
}  # fmt: skip


@dramatiq.actor(time_limit=6 * 60 * MINUTE_MS, **REPLICATION)
def replicate_version(replica_id: int) -> None:
    replication.replica_sync(replica_id=replica_id)


@dramatiq.actor(time_limit=30 * MINUTE_MS, **REPLICATION)
def collect_replica(replica_id: int) -> None:
    replication.replica_collect(replica_id=replica_id)
