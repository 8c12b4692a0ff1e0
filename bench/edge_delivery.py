"""Benchmark: segment delivery through the nginx edge against nginx serving the same files statically.

    .venv/bin/python tests/harness.py -- .venv/bin/python bench/edge_delivery.py [--seconds 10]

Runs inside the test harness (SeaweedFS S3 holds the version, PostgreSQL for Django). Writes a
version of N segments to storage and the same bytes to a folder, starts one web process as the origin, the
shipped edge config (deploy/nginx: secure_link check, slice, proxy_cache) in one nginx and two
plain static servers over the folder, with and without sendfile (one worker each, all writing an
access log as a stock nginx does). Warms the edge by fetching every segment once, then drives all
three with `wrk` over the same paths, alternating rounds. Prints throughput (requests/s and MB/s),
the ratio of the edge to the faster static server, and the edge's cache-hit ratio during the
measured rounds, from its JSON access log.

Targets (issue 5): edge throughput at least 0.8 of static; hit ratio at least 99 %.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.qoe_ingest import free_port, wait_port  # noqa: E402
from tests.nginx_edge import run_edge  # noqa: E402

EDGE_SECRET, ORIGIN_SECRET = "bench-edge-secret", "bench-origin-secret"


def run_wrk(base: str, paths: list[str], *, seconds: int, connections: int, workdir: Path) -> tuple[float, float]:
    """(requests per second, bytes per second) fetching ``paths`` under ``base`` round-robin."""
    parts = urlsplit(base)
    server, base = f"{parts.scheme}://{parts.netloc}/", parts.path
    script = workdir / "paths.lua"
    listing = ", ".join(json.dumps(path) for path in paths)
    script.write_text(
        f"local paths = {{{listing}}}\nlocal i = 0\n"
        "request = function()\n  i = i + 1\n"
        f'  return wrk.format("GET", {json.dumps(base)} .. paths[(i % #paths) + 1])\nend\n'
    )
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script), server],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    ).stdout  # fmt: skip
    rate_match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    transfer_match = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    if rate_match is None or transfer_match is None:
        raise RuntimeError(f"wrk printed no rate or transfer:\n{out}")
    rate = float(rate_match.group(1))
    number, unit = transfer_match.groups()
    scale = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}[unit]
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        raise RuntimeError(f"errors during the run:\n{out}")
    return rate, float(number) * scale


def static_nginx(*, folder: Path, workdir: Path, sendfile: bool) -> tuple[subprocess.Popen, int]:
    port = free_port()
    name = f"static-sendfile-{'on' if sendfile else 'off'}"
    temp = "".join(f"{n}_temp_path {workdir / n};\n" for n in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (workdir / f"{name}.conf").write_text(
        f"""daemon off;
pid {workdir / f"{name}.pid"};
error_log {workdir / f"{name}-error.log"};
events {{}}
http {{
  {temp}
  access_log {workdir / f"{name}-access.log"};
  sendfile {"on" if sendfile else "off"};
  tcp_nopush {"on" if sendfile else "off"};
  server {{ listen 127.0.0.1:{port}; root {folder}; location / {{ }} }}
}}
"""
    )
    process = subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(workdir / f"{name}.conf")])
    wait_port(port)
    return process, port


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--segments", type=int, default=120)
    parser.add_argument("--segment-kb", type=int, default=512, help="a 2 s segment at about 2 Mbit/s")
    args = parser.parse_args()
    if not shutil.which("wrk") or "DATABASE_URL" not in os.environ:
        print("needs wrk, and the harness: python tests/harness.py -- python bench/edge_delivery.py", file=sys.stderr)
        return 2
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "ALLOWED_HOSTS": "127.0.0.1",
           "EDGE_ORIGIN_SECRET": ORIGIN_SECRET, "LOG_LEVEL": "WARNING", "DB_POOL": "1"}  # fmt: skip
    os.environ.update(env)
    import django

    django.setup()
    from media_pipeline import storage
    from playback.signers.nginx import NginxSecureLinkSigner

    workdir = Path(tempfile.mkdtemp(prefix="bench-edge-"))
    prefix = f"lessons/{uuid.uuid4()}/v1/"
    names = [f"video_720p/{n}.m4s" for n in range(1, args.segments + 1)]
    folder = workdir / "static"
    for name in names:
        data = os.urandom(args.segment_kb * 1024)
        storage.save_stream(key=prefix + name, stream=io.BytesIO(data))
        (folder / prefix / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / prefix / name).write_bytes(data)
    folder.chmod(0o755)
    origin_port = free_port()
    processes: list[subprocess.Popen] = []
    try:
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "config.serve", "--host", "127.0.0.1", "--port", str(origin_port)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))  # fmt: skip
        wait_port(origin_port)
        static_ports = {}
        for sendfile in (True, False):
            static, static_ports[sendfile] = static_nginx(folder=folder, workdir=workdir, sendfile=sendfile)
            processes.append(static)
        edge_dir = workdir / "edge"
        edge_dir.mkdir()
        with run_edge(workdir=edge_dir, origin=f"127.0.0.1:{origin_port}", edge_secret=EDGE_SECRET,
                      origin_secret=ORIGIN_SECRET) as edge_url:  # fmt: skip
            signed = NginxSecureLinkSigner(secret=EDGE_SECRET, base_url=edge_url).sign_prefix(
                prefix=prefix, expires_at=int(time.time()) + 3600
            )
            for name in names:  # warm the cache: every segment fetched once through the edge
                with urllib.request.urlopen(signed + name, timeout=30) as response:
                    assert response.status == 200 and len(response.read()) == args.segment_kb * 1024
            log = edge_dir / "access.json.log"
            warm_lines = len(log.read_text().splitlines())
            targets = {
                "static, sendfile on": f"http://127.0.0.1:{static_ports[True]}/{prefix}",
                "static, sendfile off": f"http://127.0.0.1:{static_ports[False]}/{prefix}",
                "edge": signed,
            }
            results: dict[str, list[tuple[float, float]]] = {name: [] for name in targets}
            for _ in range(args.rounds):
                for name, base in targets.items():
                    results[name].append(
                        run_wrk(base, names, seconds=args.seconds, connections=args.connections, workdir=workdir)
                    )
            time.sleep(0.5)
            measured = [json.loads(line) for line in log.read_text().splitlines()[warm_lines:]]
        hits = sum(1 for entry in measured if entry["cache"] == "HIT")
        hit_ratio = hits / len(measured)
        summary = {name: (statistics.median(r for r, _ in rows), statistics.median(b for _, b in rows))
                   for name, rows in results.items()}  # fmt: skip
        print(f"{args.segments} segments of {args.segment_kb} KB, {args.connections} connections, "
              f"{args.rounds} alternating rounds of {args.seconds} s, one nginx worker each")  # fmt: skip
        for name, (rate, throughput) in summary.items():
            print(f"{name:26}: {rate:8.0f} req/s, {throughput / 2**20:8.1f} MB/s")
        # The baseline is the faster static configuration on this machine.
        baseline = max(summary["static, sendfile on"][1], summary["static, sendfile off"][1])
        ratio = summary["edge"][1] / baseline
        print(f"throughput ratio (edge / faster static): {ratio:.2f}")
        print(f"edge cache hits while measured  : {hits} of {len(measured)} = {hit_ratio * 100:.2f} %")
        met = ratio >= 0.8 and hit_ratio >= 0.99
        print(f"targets (ratio >= 0.8, hits >= 99 %): {'met' if met else 'NOT met'}")
        return 0
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        storage_cleanup(prefix)
        shutil.rmtree(workdir, ignore_errors=True)


def storage_cleanup(prefix: str) -> None:
    from media_pipeline.regions import region_primary, store_for

    try:
        store_for(region_primary()).delete_prefix(prefix)
    except Exception as exc:  # noqa: BLE001 - the harness deletes its whole bucket anyway
        print(f"cleanup: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
