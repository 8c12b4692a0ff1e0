"""Benchmark: the playback-session endpoint against a trivial authenticated DRF endpoint.

    .venv/bin/python tests/harness.py -- .venv/bin/python bench/playback_session.py [--seconds 10]

Runs inside the test harness (real PostgreSQL and Redis, started and stopped by it). Creates an
enrolled learner with an API token and a published lesson, starts one web process (the
production web server, `python -m config.serve`) on 127.0.0.1, and drives it with `wrk` at 64 connections: alternately
`POST /bench/whoami/` (token authentication, IsAuthenticated, a JSON answer: the baseline) and
`POST /api/v1/lessons/<id>/playback/` (entitlement, region choice, signing). Prints requests per
second and p99 latency for both, medians over the rounds, and the ratios; also the database queries
one playback session costs, counted in-process.

Targets (issue 5): throughput ratio and p99 ratio (baseline p99 / ours) at least 0.6; at most 3 queries.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.qoe_ingest import free_port, wait_port  # noqa: E402


def _found(pattern: str, text: str) -> re.Match[str]:
    """The first match of ``pattern`` in wrk's output; ValueError if wrk did not print it."""
    match = re.search(pattern, text)
    if match is None:
        raise ValueError(f"no {pattern!r} in:\n{text}")
    return match


def _seconds(text: str) -> float:
    number, unit = _found(r"^([\d.]+)(us|ms|s|m)$", text).groups()
    return float(number) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def run_wrk(
    url: str, token: str, *, seconds: int, connections: int, workdir: Path, lua: str = ""
) -> tuple[float, float, int]:
    """(requests per second, p99 seconds, non-2xx responses) of token-authenticated POSTs; ``lua`` adds
    to wrk's script (a body, a request function)."""
    script = workdir / "post.lua"
    script.write_text(f'wrk.method = "POST"\nwrk.headers["Authorization"] = "Token {token}"\n{lua}')
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    ).stdout  # fmt: skip
    rate = float(_found(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = _seconds(_found(r"\s99%\s+([\d.]+\w+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rate, p99, int(non2xx.group(1)) if non2xx else 0


def arrange() -> tuple[str, str, int]:
    """A learner's API token and a published lesson; the queries one session costs."""
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from courses.models import Course, Enrollment, Lesson
    from media_pipeline.models import MediaAsset

    course = Course.objects.create(slug="bench-course", title="Bench course", published=True)
    lesson = Lesson.objects.create(course=course, title="Bench lesson")
    lesson.asset = MediaAsset.objects.create(
        key_prefix=f"lessons/{lesson.public_id}", status="ready", published_version=1, building_version=1,
        duration_seconds=600.0,
    )  # fmt: skip
    lesson.save()
    learner = User.objects.create_user("bench-learner", password="bench-pw-123")
    Enrollment.objects.create(user=learner, course=course)
    token = Token.objects.create(user=learner).key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    url = f"/api/v1/lessons/{lesson.public_id}/playback/"
    assert client.post(url).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert client.post(url, SERVER_NAME="127.0.0.1").status_code == 200
    return token, url, len(queries.captured_queries)


def medians(results: dict[str, list[tuple[float, float, int]]]) -> dict[str, tuple[float, float, int]]:
    """Per endpoint: the median rate, the median p99 and the non-2xx responses of every round."""
    return {
        name: (
            statistics.median(rate for rate, _, _ in rows),
            statistics.median(p99 for _, p99, _ in rows),
            sum(bad for _, _, bad in rows),
        )
        for name, rows in results.items()
    }


def bench_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_args()


def bench_setup(script: str) -> dict[str, str] | None:
    """The production settings for one load client, a migrated database and Django set up in this
    process (for arranging data); None, with the reason printed, when wrk or the harness is missing."""
    if not shutil.which("wrk"):
        print("wrk is missing: apt-get install wrk", file=sys.stderr)
        return None
    if "DATABASE_URL" not in os.environ:
        print(f"run inside the harness: python tests/harness.py -- python bench/{script}", file=sys.stderr)
        return None
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings_bench",
        "ALLOWED_HOSTS": "127.0.0.1,testserver",
        "LOG_LEVEL": "WARNING",
        "DB_POOL": "1",  # the production default (the harness turns it off for the test suite)
        # One client machine makes every request: lift per-client limits for the run.
        "THROTTLE_PLAYBACK_SESSION": "100000000/min",
    }
    os.environ.update(env)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    import django

    django.setup()
    return env


def web_start(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    """One production web process on a free port of 127.0.0.1 (its log: BENCH_SERVER_LOG)."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "config.serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(os.environ.get("BENCH_SERVER_LOG", os.devnull), "w"),
    )  # fmt: skip
    return server, port


def web_stop(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()


def main() -> int:
    args = bench_arguments()
    env = bench_setup("playback_session.py")
    if env is None:
        return 2
    token, url, queries = arrange()
    workdir = Path(tempfile.mkdtemp(prefix="bench-session-"))
    server, port = web_start(env)
    try:
        wait_port(port)
        base = f"http://127.0.0.1:{port}"
        results: dict[str, list[tuple[float, float, int]]] = {"baseline": [], "session": []}
        targets = {"baseline": f"{base}/bench/whoami/", "session": base + url}
        run_wrk(targets["session"], token, seconds=2, connections=args.connections, workdir=workdir)  # warm up
        for _ in range(args.rounds):
            for name, target in targets.items():
                results[name].append(
                    run_wrk(target, token, seconds=args.seconds, connections=args.connections, workdir=workdir)
                )
        summary = medians(results)
        print(f"{args.connections} connections, {args.rounds} alternating rounds of {args.seconds} s, one web process")
        for name, label in (("baseline", "trivial authenticated DRF"), ("session", "playback session")):
            rate, p99, bad = summary[name]
            print(f"{label:26}: {rate:7.0f} req/s, p99 {p99 * 1000:6.1f} ms ({bad} non-2xx)")
        rate_ratio = summary["session"][0] / summary["baseline"][0]
        p99_ratio = summary["baseline"][1] / summary["session"][1]
        print(f"throughput ratio (session / baseline) : {rate_ratio:.2f}")
        print(f"p99 ratio (baseline p99 / session p99): {p99_ratio:.2f}")
        print(f"database queries per playback session : {queries}")
        met = rate_ratio >= 0.6 and p99_ratio >= 0.6 and queries <= 3 and summary["session"][2] == 0
        print(f"targets (ratios >= 0.6, <= 3 queries, no errors): {'met' if met else 'NOT met'}")
        return 0
    finally:
        web_stop(server)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
