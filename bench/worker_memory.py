"""Benchmark: the pipeline worker's own peak RSS while it processes a short and a long source.

    .venv/bin/python tests/harness.py -- .venv/bin/python bench/worker_memory.py [--short-minutes 1] [--long-minutes 20]

Runs under the test harness (PostgreSQL, Redis, SeaweedFS S3 on loopback). For each source (a
cheap 426x240 test pattern with a tone, so the encode is quick; bench/lecture_source.py, cached under
var/bench/) a fresh production worker is started (``manage.py rundramatiq --processes 1 --threads 1
--queues quick ladder``), the source is uploaded through ``services.asset_upload_source`` and the worker
probes, transcodes (encode, package, poster, upload of every segment) and publishes it.

The worker's own memory is read from /proc: the peak RSS (VmHWM) of the Dramatiq worker process,
which runs the actors, and of its parent; ffmpeg, ffprobe and the packager are separate processes
and not counted. VmRSS is also sampled every 100 ms as a cross-check. Target (issue 3): the
worker's own RSS stays under 300 MB whatever the source length; the long source's peak is also
compared with the short one's (the ratio shows whether memory grows with length).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.lecture_source import test_pattern_source  # noqa: E402

TARGET_MB = 300
PYTHON = os.path.realpath(sys.executable)


def _status(pid: int) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_status(int(entry.name)).get("PPid", "0")) == pid:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def python_tree(pid: int) -> list[int]:
    """``pid`` and its descendants that run Python (the CLI parent and its worker processes); the
    tools they start (ffmpeg, ffprobe, packager) are other executables and are left out."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        todo.extend(_children(current))
        try:
            if os.path.realpath(f"/proc/{current}/exe") == PYTHON:
                tree.append(current)
        except OSError:
            continue
    return tree


def _kb(value: str) -> float:
    return int(value.split()[0]) / 1024


class Sampler(threading.Thread):
    """Every 100 ms: VmRSS and VmHWM (the kernel's own peak) of the worker's Python processes.

    Only the processes present once the worker is up: a child that shows up later as Python is a
    fork on its way to exec'ing ffmpeg or the packager, sharing the worker's pages for an instant."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.pids, self.running = pids, True
        self.peak_rss: dict[int, float] = {}
        self.hwm: dict[int, float] = {}

    def run(self) -> None:
        while self.running:
            self.sample()
            time.sleep(0.1)

    def sample(self) -> None:
        for pid in self.pids:
            try:
                status = _status(pid)
            except OSError:
                continue
            self.peak_rss[pid] = max(self.peak_rss.get(pid, 0.0), _kb(status["VmRSS"]))
            self.hwm[pid] = max(self.hwm.get(pid, 0.0), _kb(status["VmHWM"]))

    def stop(self) -> None:
        self.sample()
        self.running = False
        self.join(timeout=5)


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def run_one(source: Path, log_dir: Path, timeout: float) -> dict[str, Any]:
    from media_pipeline import services
    from media_pipeline.models import AssetStatus

    log = (log_dir / f"bench-worker-{source.stem}.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "rundramatiq", "--processes", "1", "--threads", "1",
         "--queues", "quick", "ladder"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while len(python_tree(worker.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)  # the worker process imports the actors and connects to the broker
        sampler = Sampler(python_tree(worker.pid))
        sampler.start()
        idle = {pid: _kb(_status(pid)["VmRSS"]) for pid in sampler.pids}
        started = time.monotonic()
        asset = services.asset_create(key_prefix=f"bench/memory-{uuid.uuid4().hex[:8]}")
        with source.open("rb") as stream:
            services.asset_upload_source(asset=asset, stream=stream, source_name=source.name)
        asset = services.asset_wait(asset_id=asset.pk, timeout=timeout, poll_seconds=1.0)
        seconds = time.monotonic() - started
        sampler.stop()
        if asset.status != AssetStatus.READY:
            raise SystemExit(f"{source.name}: asset ended {asset.status}: {asset.failure_reason}")
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        log.close()
    # The process that ran the actor is the one whose memory moved the most; report every one.
    pids = sorted(sampler.hwm, key=lambda pid: sampler.hwm[pid])
    return {
        "seconds": seconds,
        "idle": max(idle.values()),
        "hwm": max(sampler.hwm.values()),
        "rss": max(sampler.peak_rss.values()),
        "processes": len(pids),
        "detail": ", ".join(f"pid {p}: idle {idle.get(p, 0):.0f} MB, peak {sampler.hwm[p]:.0f} MB" for p in pids),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short-minutes", type=float, default=1)
    parser.add_argument("--long-minutes", type=float, default=20)
    args = parser.parse_args()
    if "S3_ENDPOINT_URL" not in os.environ:
        print("run under the harness: .venv/bin/python tests/harness.py -- .venv/bin/python bench/worker_memory.py")
        return 2
    _setup_django()
    from django.conf import settings

    results = {}
    for label, minutes in (("short", args.short_minutes), ("long", args.long_minutes)):
        source = test_pattern_source(ffmpeg=settings.FFMPEG_BIN, seconds=int(minutes * 60), width=426, height=240)
        print(f"{label}: {source.name} ({source.stat().st_size / 1e6:.1f} MB), through a fresh worker", flush=True)
        results[label] = run_one(source, Path(os.environ.get("VAR_DIR", "/tmp")), timeout=3600 + minutes * 120)
        r = results[label]
        print(f"  published in {r['seconds']:.0f} s; worker Python processes: {r['detail']}", flush=True)

    print()
    ok = True
    for label, minutes in (("short", args.short_minutes), ("long", args.long_minutes)):
        r = results[label]
        met = r["hwm"] < TARGET_MB
        ok &= met
        verdict = "met" if met else "MISSED"
        print(f"{label:5s} {minutes:g} min: worker peak RSS {r['hwm']:.0f} MB (VmHWM; sampled VmRSS peak "
              f"{r['rss']:.0f} MB, idle {r['idle']:.0f} MB): target < {TARGET_MB} MB: {verdict}")  # fmt: skip
    print(f"ratio long/short peak: {results['long']['hwm'] / results['short']['hwm']:.2f} "
          f"for a source {args.long_minutes / args.short_minutes:g} times longer")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
