"""Benchmark: replicating a version between two S3 servers, ours (verified) versus a plain boto3 copy.

    .venv/bin/python tests/harness.py -- .venv/bin/python bench/replication.py [--size-mb 1024] [--object-mb 2]

Runs under the test harness, which starts PostgreSQL and three SeaweedFS S3 servers on loopback.
A synthetic version of --size-mb (random, incompressible objects of --object-mb, plus its
files.json index) is written to the first server. Then, alternating, in the same run:

- baseline: a plain boto3 copy of the same objects to the second server (get_object streamed into
  upload_fileobj), with the same number of objects in flight as ours, and no verification;
- ours: `replication.replica_sync`, the code the replication actor runs: lists the target, streams
  each object through a SHA-256 check against the index, uploads it with its checksum in metadata,
  verifies size and checksum where it landed, writes the index last and records progress.

Prints MB/s for both and the ratio ours/baseline (target at least 0.8, issue 4).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _setup_django(target_endpoint: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    primary = {**settings.STORAGE_REGIONS[0], "name": "source", "primary": True}
    target = {**primary, "name": "target", "primary": False, "endpoint_url": target_endpoint}
    settings.STORAGE_REGIONS = [primary, target]


def _write_version(store: Any, prefix: str, *, size_mb: int, object_mb: int) -> int:
    count = max(1, size_mb // object_mb)
    files: dict[str, dict[str, object]] = {}

    def one(n: int) -> None:
        data = os.urandom(object_mb * 1024 * 1024)
        digest = hashlib.sha256(data).hexdigest()
        name = f"video_1080p/{n}.m4s"
        store.client.put_object(
            Bucket=store.bucket, Key=prefix + name, Body=data, ContentType="video/mp4", Metadata={"sha256": digest}
        )
        files[name] = {"size": len(data), "sha256": digest}

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(count)))
    index = json.dumps({"files": files}, sort_keys=True).encode()
    store.client.put_object(Bucket=store.bucket, Key=prefix + "files.json", Body=index,
                            Metadata={"sha256": hashlib.sha256(index).hexdigest()})  # fmt: skip
    return sum(int(meta["size"]) for meta in files.values()) + len(index)


def _baseline(source: Any, target: Any, keys: list[str], *, concurrency: int) -> None:
    from boto3.s3.transfer import TransferConfig

    transfer = TransferConfig(max_concurrency=1, use_threads=False, multipart_chunksize=16 * 1024 * 1024)

    def copy(key: str) -> None:
        body = source.client.get_object(Bucket=source.bucket, Key=key)["Body"]
        target.client.upload_fileobj(body, target.bucket, "baseline/" + key, Config=transfer)

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(copy, keys))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--object-mb", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if "TEST_REGION_ENDPOINTS" not in os.environ:
        print("run it under the harness: tests/harness.py -- .venv/bin/python bench/replication.py", file=sys.stderr)
        return 2
    _setup_django(os.environ["TEST_REGION_ENDPOINTS"].split(",")[0])

    from django.conf import settings
    from django.utils import timezone

    from media_pipeline import replication
    from media_pipeline.models import MediaAsset, ReplicaState, VersionReplica
    from media_pipeline.regions import region_get, store_for

    source_region, target_region = region_get("source"), region_get("target")
    if source_region is None or target_region is None:
        raise RuntimeError("STORAGE_REGIONS must name a source and a target region")
    source, target = store_for(source_region), store_for(target_region)
    key_prefix = f"lessons/{uuid.uuid4()}"
    prefix = key_prefix + "/v1/"
    started = time.perf_counter()
    total = _write_version(source, prefix, size_mb=args.size_mb, object_mb=args.object_mb)
    keys = sorted(source.list(prefix))
    print(f"version: {len(keys)} objects, {total / 1e6:.0f} MB written in {time.perf_counter() - started:.1f} s")
    asset = MediaAsset.objects.create(key_prefix=key_prefix, status="ready", published_version=1, building_version=1)
    VersionReplica.objects.create(asset=asset, prefix=prefix, region="source", state=ReplicaState.COMPLETE,
                                  available_at=timezone.now())  # fmt: skip
    replica = VersionReplica.objects.create(asset=asset, prefix=prefix, region="target", available_at=timezone.now())
    concurrency = settings.REPLICATION_CONCURRENCY

    def run_baseline() -> float:
        target.delete_prefix("baseline/")
        began = time.perf_counter()
        _baseline(source, target, keys, concurrency=concurrency)
        return time.perf_counter() - began

    def run_ours() -> float:
        target.delete_prefix(prefix)
        VersionReplica.objects.filter(pk=replica.pk).update(state=ReplicaState.PENDING, bytes_copied=0)
        began = time.perf_counter()
        replication.replica_sync(replica_id=replica.pk)
        elapsed = time.perf_counter() - began
        replica.refresh_from_db()
        assert replica.state == ReplicaState.COMPLETE, replica.last_error
        assert replica.bytes_copied == total and replica.objects_copied == len(keys)
        return elapsed

    baseline_times, our_times = [], []
    for round_number in range(args.rounds):
        # Alternate the order so neither side always runs on a warmer server.
        order = [("baseline", run_baseline), ("ours", run_ours)]
        for name, run in order if round_number % 2 == 0 else reversed(order):
            elapsed = run()
            (baseline_times if name == "baseline" else our_times).append(elapsed)
            print(f"round {round_number + 1} {name:8s} {elapsed:6.2f} s  {total / 1e6 / elapsed:6.1f} MB/s")

    baseline, ours = statistics.median(baseline_times), statistics.median(our_times)
    print(f"\nconcurrency {concurrency}, {len(keys)} objects of {args.object_mb} MB, {total / 1e6:.0f} MB")
    print(f"baseline plain boto3 copy: {total / 1e6 / baseline:.1f} MB/s (median of {len(baseline_times)})")
    print(f"ours, verified:            {total / 1e6 / ours:.1f} MB/s (median of {len(our_times)})")
    ratio = baseline / ours
    print(f"ratio ours/baseline: {ratio:.2f} (target >= 0.8: {'met' if ratio >= 0.8 else 'NOT met'})")
    target.delete_prefix("baseline/")
    target.delete_prefix(prefix)
    source.delete_prefix(prefix)
    return 0 if ratio >= 0.8 else 1


if __name__ == "__main__":
    sys.exit(main())
