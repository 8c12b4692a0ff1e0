"""Measurement: failed requests when one of two web processes behind nginx is stopped under load.

    .venv/bin/python tests/harness.py -- .venv/bin/python bench/web_drain.py [--threads 4]

Runs inside the test harness (PostgreSQL, Redis, SeaweedFS). Two web processes behind nginx
(tests/web_cluster.py), a load of real requests through it (playback sessions, segment downloads,
the home page; one fresh connection each) and one large download in flight straight to the process
being stopped (a 16 MiB object read through a 16 KiB receive buffer, so it cannot have finished).
Then one process is stopped and started again, three ways:

- daphne, SIGTERM: the server the platform used before docs/adr/0028 (when installed; it is no
  longer in requirements.txt);
- config.serve (uvicorn), SIGTERM alone: stops accepting, finishes in flight, nginx retries refused
  connections elsewhere; no readiness window;
- config.serve, the drain sequence: SIGTERM, /readyz 503, the balancer routes around it (nginx reload,
  and its old workers gone), a second SIGTERM ends the readiness window, the process finishes in flight
  and exits.

Prints, for each, the requests sent, those that failed (by kind), whether the large download arrived
whole, and the stopped process's exit status.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.web_cluster import Balancer, Load, SlowDownload, Web, World, free_port, make_world, web_env  # noqa: E402

LARGE = 16 * 1024 * 1024
EXIT_TIMEOUT = 30.0
WARM = 15  # requests each backend answers before the stop, and after the restart


def scenario(world: World, *, server: str, drain: bool, threads: int, workdir: Path) -> dict[str, object]:
    env = web_env()
    webs = [Web(port=free_port(), env=env, log=workdir / f"web-{i}.log", server=server) for i in range(2)]
    balancer = Balancer(workdir / "nginx", [web.port for web in webs])
    (workdir / "nginx").mkdir()
    victim, other = webs
    upstreams = [f"127.0.0.1:{web.port}" for web in webs]
    try:
        for web in webs:
            web.start()
        for web in webs:
            web.wait_readiness(200)
        balancer.start()
        with Load(balancer.base, world.calls(), threads=threads) as load:
            load.wait_served(0, upstreams, at_least=WARM)
            download = SlowDownload(victim.port, f"/stream/{world.stream_token}/{world.large}")
            load.phase = 1
            victim.signal(signal.SIGTERM)
            if drain:
                victim.wait_readiness(503)
                balancer.route([other.port])
                victim.signal(signal.SIGTERM)
            victim.wait_refusing()  # (or is gone); then the download may go on
            head, body = download.finish()
            try:
                code: int | str = victim.wait_exit(timeout=EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                code = f"none: still running {EXIT_TIMEOUT:.0f} s after the download ended; killed"
                assert victim.process is not None  # started above
                victim.process.kill()
                victim.process.wait()
            victim.start()
            victim.wait_readiness(200)
            if drain:
                balancer.route([web.port for web in webs])
            load.phase = 2
            load.wait_served(2, upstreams, at_least=WARM)
        failures = load.failures()
        return {
            "requests": len(load.outcomes),
            "failed": len(failures),
            "by kind": dict(Counter(f"{o.call}: {o.error.split(':')[0]}" for o in failures)),
            "download whole": head.startswith(b"HTTP/1.1 200") and body == download.expected(LARGE),
            "download bytes": len(body),
            "exit status": code,
        }
    finally:
        balancer.stop()
        for web in webs:
            web.stop()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--only", choices=["daphne", "serve", "drain"], action="append", help="repeatable")
    args = parser.parse_args()
    if "DATABASE_URL" not in os.environ:
        print("run inside the harness: python tests/harness.py -- python bench/web_drain.py", file=sys.stderr)
        return 2
    os.environ.update(web_env())
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True)
    import django

    django.setup()
    runs = {"daphne": ("daphne", False), "serve": ("serve", False), "drain": ("serve", True)}
    for index, name in enumerate(args.only or list(runs)):
        if runs[name][0] == "daphne" and importlib.util.find_spec("daphne") is None:
            print("daphne, SIGTERM: skipped (daphne is not installed; pip install daphne==4.2.3 to compare)")
            continue
        server, drain = runs[name]
        # An object of its own per run: here, after daphne was killed mid-download, the next download
        # of the same object from SeaweedFS stalled (cause not established).
        world = make_world(large_size=LARGE, slug=f"drain-{name}-{index}")
        workdir = Path(tempfile.mkdtemp(prefix=f"web-drain-{name}-"))
        try:
            if os.environ.get("KEEP"):  # KEEP=1: leave the logs (web-N.log, nginx/error.log) for a look
                print(f"logs in {workdir}", flush=True)
            result = scenario(world, server=server, drain=drain, threads=args.threads, workdir=workdir)
        finally:
            if not os.environ.get("KEEP"):
                shutil.rmtree(workdir, ignore_errors=True)
        label = {"daphne": "daphne, SIGTERM", "serve": "config.serve, SIGTERM", "drain": "config.serve, drain"}[name]
        print(
            f"{label:24}: {result['requests']} requests, {result['failed']} failed {result['by kind']}; "
            f"in-flight download {'whole' if result['download whole'] else 'CUT'} ({result['download bytes']} of "
            f"{LARGE} bytes); exit status {result['exit status']}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
