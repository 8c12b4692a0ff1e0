"""Benchmark: a 2-minute source encoded in chunks by one worker, then by two (issue 3: two workers limited
to one encoder thread each finish in at most 0.6 of the time one takes).

    .venv/bin/python tests/harness.py -- .venv/bin/python bench/chunked_scaleout.py [--seconds 120] [--chunk 10] \
        [--rounds 3] [--no-pin]

Runs under the test harness (PostgreSQL, Redis, SeaweedFS S3 on loopback). The source is the lecture-like
video of bench/lecture_source.py (slides and a talking head, 1280x720 30 fps, cached under var/bench/).
Each run starts fresh production workers (``manage.py rundramatiq --processes 1 --threads 1 --queues
quick ladder``) with ENCODE_THREADS=1 (x264 and the decoder on one thread), MEDIA_CHUNK_MIN_SECONDS below the
source length and MEDIA_CHUNK_SECONDS = --chunk, uploads the source through ``services.asset_upload_source``
and times from the end of the upload until the lesson is published (probe, chunks, join, packaging,
upload, publish: everything the workers do).

The build's one-time split of the source (docs/adr/0029: the source downloaded whole, its video and
audio stream-copied into the split files, which are uploaded with their index) is timed on its own
within that: from the build's creation (its row's timestamp) to its index appearing in storage (polled
every 50 ms, so to within about 0.05 s), with the bytes it read (the source) and wrote (the split files).

ffmpeg 7+ runs every output's encoder in a thread of its own, so one ffmpeg with four rungs at
``-threads 1`` still keeps several cores busy. With ``--pin`` (default) each worker and everything it
starts is pinned to one core of its own with ``taskset`` (worker 1 on CPU 0, worker 2 on CPU 1): "a
worker limited to one core", the case the target describes. ``--no-pin`` shows the unpinned figures.
The machine is shared: run it when `uptime` shows little else running, and report the load.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.lecture_source import lecture_source  # noqa: E402

TARGET_RATIO = 0.6


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def watch_split(*, asset_id: int, timeout: float) -> dict | None:
    """The build's split (docs/adr/0029), seen from outside: seconds from the build's creation to its
    index in storage, bytes read (the whole source) and written (split video, audio and index). None when
    the asset finished without one (not chunked, or a source that could not be split)."""
    from media_pipeline import storage
    from media_pipeline.models import AssetStatus, ChunkedBuild, MediaAsset
    from media_pipeline.steps.chunked import SPLIT_AUDIO, SPLIT_INDEX, SPLIT_VIDEO

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        build = ChunkedBuild.objects.select_related("asset").filter(asset_id=asset_id).first()
        if build is not None and storage.exists(build.work_prefix() + SPLIT_INDEX):
            seen = time.time()
            written = [storage.size(build.work_prefix() + name) for name in (SPLIT_VIDEO, SPLIT_INDEX)]
            if storage.exists(build.work_prefix() + SPLIT_AUDIO):
                written.append(storage.size(build.work_prefix() + SPLIT_AUDIO))
            return {
                "seconds": seen - build.created_at.timestamp(),
                "read": storage.size(build.asset.source_key),
                "written": sum(written),
            }
        status = MediaAsset.objects.filter(pk=asset_id).values_list("status", flat=True).first()
        if status in (AssetStatus.READY, AssetStatus.FAILED):
            return None
        time.sleep(0.05)
    return None


def run(source: Path, *, workers: int, chunk_seconds: int, pin: bool, log_dir: Path, timeout: float) -> dict:
    import dramatiq
    from django.utils import timezone

    from media_pipeline import services
    from media_pipeline.models import AssetStatus, ChunkedBuild

    broker = dramatiq.get_broker()
    broker.flush_all()
    env = {
        **os.environ,
        "ENCODE_THREADS": "1",
        "MEDIA_CHUNK_MIN_SECONDS": "30",
        "MEDIA_CHUNK_SECONDS": str(chunk_seconds),
        # Each worker holds only the message it runs; the others stay queued for whichever is free.
        "dramatiq_queue_prefetch": "1",
    }
    processes = []
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for number in range(workers):
        log = (log_dir / f"scaleout-{workers}-{number}.log").open("wb")
        command = [
            sys.executable,
            "manage.py",
            "rundramatiq",
            "--processes",
            "1",
            "--threads",
            "1",
            "--queues",
            "quick",
            "ladder",
        ]
        if pin:
            command = ["taskset", "-c", str(number % (os.cpu_count() or 1)), *command]
        processes.append(
            subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        )
    try:
        time.sleep(6)  # the workers import Django and the actors and connect to the broker
        load_before = _load()
        asset = services.asset_create(key_prefix=f"bench/scaleout-{uuid.uuid4().hex[:8]}")
        with source.open("rb") as stream:
            services.asset_upload_source(asset=asset, stream=stream, source_name=source.name)
        started = time.monotonic()
        uploaded = timezone.now()
        split = watch_split(asset_id=asset.pk, timeout=timeout)
        asset = services.asset_wait(asset_id=asset.pk, timeout=timeout, poll_seconds=0.2)
        seconds = time.monotonic() - started
        if asset.status != AssetStatus.READY:
            raise SystemExit(f"asset ended {asset.status}: {asset.failure_reason}")
        build = ChunkedBuild.objects.get(asset=asset)
        chunks = list(build.chunks.values_list("kind", "encodes"))
        # Where the time went, from the rows' timestamps (same clock: this machine's PostgreSQL).
        last_chunk = max(build.chunks.values_list("updated_at", flat=True))
        phases = {
            "probe": (build.created_at - uploaded).total_seconds(),
            "chunks": (last_chunk - build.created_at).total_seconds(),
            "join": (build.updated_at - last_chunk).total_seconds(),
            "publish": (asset.published_at - build.updated_at).total_seconds(),
        }
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
    # CPU of the workers and every tool they ran (each level waits for its children): the same work
    # either way, so a ratio near 1 here and a wall ratio near 0.5 mean the second core was really used.
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return {
        "cpu": cpu,
        "seconds": seconds,
        "chunks": chunks,
        "phases": phases,
        "split": split,
        "load_before": load_before,
        "load_after": _load(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--chunk", type=int, default=10, help="MEDIA_CHUNK_SECONDS (a multiple of 2)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--rounds", type=int, default=3, help="one-worker and two-worker runs, alternated")
    args = parser.parse_args()
    if "S3_ENDPOINT_URL" not in os.environ:
        print("run under the harness: .venv/bin/python tests/harness.py -- .venv/bin/python bench/chunked_scaleout.py")
        return 2
    _setup_django()
    from django.conf import settings

    source = lecture_source(ffmpeg=settings.FFMPEG_BIN, seconds=args.seconds, width=args.width, height=args.height)
    log_dir = Path(os.environ.get("VAR_DIR", "/tmp"))
    log_dir.mkdir(parents=True, exist_ok=True)  # the harness names a VAR_DIR it does not make
    pinning = "pinned one core per worker" if args.pin else "not pinned"
    print(f"source {source.name} ({source.stat().st_size / 1e6:.1f} MB), chunks of {args.chunk} s, {pinning}; "
          f"load before {_load()}", flush=True)  # fmt: skip
    results: dict[int, list[float]] = {1: [], 2: []}
    cpu: dict[int, list[float]] = {1: [], 2: []}
    splits: list[dict] = []
    for round_number in range(1, args.rounds + 1):
        # Alternated, so load from other work on the machine falls on both sides alike.
        for workers in (1, 2):
            r = run(source, workers=workers, chunk_seconds=args.chunk, pin=args.pin, log_dir=log_dir, timeout=3600)
            results[workers].append(r["seconds"])
            cpu[workers].append(r["cpu"])
            video = sum(1 for kind, _ in r["chunks"] if kind == "video")
            split = r["split"]
            if split is not None:
                splits.append(split)
                within = (f" (the split first: {split['seconds']:.2f} s, read {split['read'] / 1e6:.1f} MB, "
                          f"wrote {split['written'] / 1e6:.1f} MB)")  # fmt: skip
            else:
                within = " (no split: each chunk read the whole source)"
            phases = ", ".join(
                f"{name} {value:.1f} s" + (within if name == "chunks" else "") for name, value in r["phases"].items()
            )
            print(f"round {round_number}, {workers} worker(s): published in {r['seconds']:.1f} s ({video} video "
                  f"chunks + audio, encodes per chunk {sorted({n for _, n in r['chunks']})}; {phases}; "
                  f"CPU {r['cpu']:.1f} s); "
                  f"load {r['load_before']} -> {r['load_after']}", flush=True)  # fmt: skip
    one, two = statistics.median(results[1]), statistics.median(results[2])
    ratio = two / one
    verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
    print(f"median of {args.rounds}: one worker {one:.1f} s, two workers {two:.1f} s; "
          f"ratio {ratio:.2f} (target <= {TARGET_RATIO}): {verdict}; per round "
          + ", ".join(f"{b / a:.2f}" for a, b in zip(results[1], results[2], strict=True)))  # fmt: skip
    print(
        f"CPU seconds, median: one worker {statistics.median(cpu[1]):.1f}, two workers {statistics.median(cpu[2]):.1f}"
    )
    if splits:
        # Once per build, before any chunk is sent: it adds to every build's time whatever the worker count.
        seconds = [split["seconds"] for split in splits]
        print(
            f"split (once per build, {len(splits)} builds): median {statistics.median(seconds):.2f} s "
            f"(range {min(seconds):.2f}-{max(seconds):.2f} s); "
            f"read {splits[0]['read'] / 1e6:.1f} MB, wrote {splits[0]['written'] / 1e6:.1f} MB"
        )
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
