"""Benchmark: playback sessions per second through nginx, two web processes against one.

    .venv/bin/python tests/harness.py -- .venv/bin/python bench/web_scaleout.py [--seconds 10] [--force]

Runs inside the test harness (PostgreSQL, Redis). Two web processes (`python -m config.serve`, the
production settings, DB_POOL=1), each pinned to a core of its own, behind nginx
(tests/web_cluster.py); `wrk` posts playback-session requests (`POST /api/v1/lessons/<id>/playback/`
with a learner's token, as bench/playback_session.py does) through nginx, first with one process in
nginx's upstream, then with both. nginx, wrk, PostgreSQL and Redis are not pinned: they share the
machine's cores with the web processes.

Adding a web process adds a core, but the requests also cost CPU elsewhere. With r = the CPU time
that wrk, nginx, PostgreSQL and Redis spend relative to the web processes' (read from /proc for
each process and its children, over the two-process run), two processes on two cores can at best
reach 2/(1+r) times one process's rate: the ceiling. Prints both rates, r, the ceiling, the measured
ratio and ratio/ceiling (target: at least 0.85), measured at a 1-minute load average below 1 before
the run; it refuses to run above that unless --force (and then says so).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.playback_session import run_wrk  # noqa: E402
from tests.web_cluster import Balancer, Web, free_port, make_world, web_env  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and of its children it has reaped; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return (utime + stime + cutime + cstime) / TICKS


def _tree(pid: int) -> list[int]:
    """``pid`` and its live descendants."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    found, frontier = [pid], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def _listener_pid(port: int) -> int:
    """The process listening on 127.0.0.1:port (PostgreSQL's postmaster, Redis)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            if int(parts[1].rsplit(":", 1)[1], 16) == port and parts[3] == "0A":  # LISTEN
                inodes.add(parts[9])
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return int(entry.name)
        except OSError:
            continue
    raise RuntimeError(f"no process listens on port {port}")


@dataclass
class Group:
    name: str
    roots: list[int]

    def cpu(self) -> float:
        return sum(_cpu_seconds(pid) for root in self.roots for pid in _tree(root))


@dataclass
class Run:
    rate: float
    p99: float
    errors: int
    cpu: dict[str, float]


def measure(url: str, token: str, groups: list[Group], *, seconds: int, connections: int, work: Path) -> Run:
    before = {group.name: group.cpu() for group in groups}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    rate, p99, errors = run_wrk(url, token, seconds=seconds, connections=connections, workdir=work)
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = {group.name: group.cpu() - before[group.name] for group in groups}
    # wrk is our only child that exits meanwhile: its CPU time is what the reaped children gained.
    cpu["wrk"] = (after_children.ru_utime + after_children.ru_stime) - (children.ru_utime + children.ru_stime)
    return Run(rate, p99, errors, cpu)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--force", action="store_true", help="run even at a load average of 1 or more")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is missing: apt-get install wrk", file=sys.stderr)
        return 2
    if "DATABASE_URL" not in os.environ:
        print("run inside the harness: python tests/harness.py -- python bench/web_scaleout.py", file=sys.stderr)
        return 2
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        print(f"needs two cores, has {len(cores)}", file=sys.stderr)
        return 2
    load = os.getloadavg()[0]
    if load >= 1:
        print(f"1-minute load average {load:.2f} >= 1: other work shares the cores, the figures would mislead")
        if not args.force:
            return 3
        print("--force: running anyway; read the figures as a functional check, not a measurement")
    env = web_env(DB_POOL="1")
    os.environ.update(env)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True)
    import django

    django.setup()
    world = make_world(slug="scaleout-bench")
    work = Path(tempfile.mkdtemp(prefix="web-scaleout-"))
    (work / "nginx").mkdir()
    webs = [Web(port=free_port(), env=env, log=work / f"web-{i}.log", cpu=cores[i]) for i in range(2)]
    balancer = Balancer(work / "nginx", [web.port for web in webs])
    database, redis = urlparse(os.environ["DATABASE_URL"]).port, urlparse(os.environ["REDIS_URL"]).port
    try:
        for web in webs:
            web.start()
        for web in webs:
            web.wait_readiness(200)
        balancer.start()
        others = [
            Group("nginx", [balancer.pids()[0]]),
            Group("postgresql", [_listener_pid(database or 5432)]),
            Group("redis", [_listener_pid(redis or 6379)]),
        ]
        url = f"{balancer.base}/api/v1/lessons/{world.lesson_id}/playback/"
        print(f"1-minute load average before the run: {load:.2f}; web processes pinned to cores {cores[:2]}")
        runs: dict[int, Run] = {}
        for count in (1, 2):
            balancer.route([web.port for web in webs[:count]])
            groups = [Group("web", [web.pid for web in webs[:count]]), *others]
            run_wrk(url, world.token, seconds=2, connections=args.connections, workdir=work)  # warm up
            runs[count] = measure(
                url, world.token, groups, seconds=args.seconds, connections=args.connections, work=work
            )
            run = runs[count]
            spent = ", ".join(f"{name} {seconds:.1f}" for name, seconds in run.cpu.items())
            print(
                f"{count} web process{'es' if count > 1 else '  '}: {run.rate:7.0f} sessions/s, p99 "
                f"{run.p99 * 1000:6.1f} ms, {run.errors} non-2xx; CPU s: {spent}"
            )
        two = runs[2]
        r = sum(seconds for name, seconds in two.cpu.items() if name != "web") / two.cpu["web"]
        ceiling = 2 / (1 + r)
        ratio = two.rate / runs[1].rate
        print(f"r (wrk + nginx + PostgreSQL + Redis CPU / web CPU, two-process run): {r:.2f}")
        print(f"ceiling 2/(1+r): {ceiling:.2f}; measured ratio (two / one): {ratio:.2f}")
        verdict = "met" if ratio / ceiling >= 0.85 else "NOT met"
        print(f"ratio / ceiling: {ratio / ceiling:.2f} (target >= 0.85: {verdict})")
        return 0
    finally:
        balancer.stop()
        for web in webs:
            web.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
