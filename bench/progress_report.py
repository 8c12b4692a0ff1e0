"""Benchmark: the watch-progress report against a trivial authenticated DRF endpoint.

    .venv/bin/python tests/harness.py -- .venv/bin/python bench/progress_report.py [--seconds 10]

A playing learner's player posts its played ranges every 15 s (static/js/player.js), so at any
moment the web tier answers far more progress reports than playback sessions: the capacity model
(bench/capacity.py, docs/scaling.md) needs what one report costs. Runs inside the test harness (real
PostgreSQL and Redis). Creates an enrolled learner with an API token, a published 10-minute lesson and
a playback session (for its view token), starts one web process on 127.0.0.1 and drives it with `wrk`
at 64 connections: alternately `POST /bench/whoami/` (the same baseline as playback_session.py) and
`POST /api/v1/lessons/<id>/progress/` with a report whose played range grows by 15 s per request, as a
player's does (the server credits at most wall-clock time at the fastest rate, so most of the claim
waits: the credit check, the read and the write run on every report). Prints requests per second and
p99 for both, the ratio, and the database queries one report costs, counted in-process.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.playback_session import bench_arguments, bench_setup, medians, run_wrk, web_start, web_stop  # noqa: E402
from bench.qoe_ingest import wait_port  # noqa: E402

LESSON_SECONDS = 600.0
REPORT_EVERY_SECONDS = 15  # static/js/player.js


def growing_report(body: str) -> str:
    """wrk Lua: each request claims 15 s more than the last (wrapping at the lesson's end), as a playing
    player's report does; ``body`` holds ``__END__`` where the range's end goes."""
    prefix, suffix = body.split("__END__")
    lines = [
        'wrk.headers["Content-Type"] = "application/json"',
        "local n = 0",
        "request = function()",
        f"  n = (n % {int(LESSON_SECONDS) // REPORT_EVERY_SECONDS}) + 1",
        f"  local body = {json.dumps(prefix)} .. (n * {REPORT_EVERY_SECONDS}) .. {json.dumps(suffix)}",
        "  return wrk.format(nil, nil, nil, body)",
        "end",
    ]
    return "\n".join(lines) + "\n"


def arrange() -> tuple[str, str, str, int]:
    """A learner's API token, the progress URL, a report body template and the queries one report costs."""
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from courses.models import Course, Enrollment, Lesson
    from media_pipeline.models import MediaAsset

    course = Course.objects.create(slug="bench-progress", title="Bench course", published=True)
    lesson = Lesson.objects.create(course=course, title="Bench lesson")
    lesson.asset = MediaAsset.objects.create(
        key_prefix=f"lessons/{lesson.public_id}", status="ready", published_version=1, building_version=1,
        duration_seconds=LESSON_SECONDS,
    )  # fmt: skip
    lesson.save()
    learner = User.objects.create_user("bench-progress-learner", password="bench-pw-123")
    Enrollment.objects.create(user=learner, course=course)
    token = Token.objects.create(user=learner).key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    session = client.post(f"/api/v1/lessons/{lesson.public_id}/playback/")
    assert session.status_code == 200, session.content
    view_token = session.json()["view_token"]
    url = f"/api/v1/lessons/{lesson.public_id}/progress/"
    body = json.dumps({"ranges": [[0, 12345678]], "view_token": view_token}).replace("12345678", "__END__")
    first = client.post(url, body.replace("__END__", "15"), content_type="application/json")
    assert first.status_code == 200, first.content
    with CaptureQueriesContext(connection) as queries:
        answer = client.post(url, body.replace("__END__", "30"), content_type="application/json")
        assert answer.status_code == 200, answer.content
    return token, url, body, len(queries.captured_queries)


def main() -> int:
    args = bench_arguments()
    env = bench_setup("progress_report.py")
    if env is None:
        return 2
    token, url, body, queries = arrange()
    workdir = Path(tempfile.mkdtemp(prefix="bench-progress-"))
    server, port = web_start(env)
    try:
        wait_port(port)
        base = f"http://127.0.0.1:{port}"
        targets = {"baseline": (f"{base}/bench/whoami/", ""), "progress": (base + url, growing_report(body))}
        results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in targets}

        def measure(target: str, lua: str, seconds: int) -> tuple[float, float, int]:
            return run_wrk(target, token, seconds=seconds, connections=args.connections, workdir=workdir, lua=lua)

        measure(*targets["progress"], seconds=2)  # warm up
        for _ in range(args.rounds):
            for name, (target, lua) in targets.items():
                results[name].append(measure(target, lua, args.seconds))
        summary = medians(results)
        load = os.getloadavg()[0]
        print(f"{args.connections} connections, {args.rounds} alternating rounds of {args.seconds} s, one web process")
        for name, label in (("baseline", "trivial authenticated DRF"), ("progress", "progress report")):
            rate, p99, bad = summary[name]
            print(f"{label:26}: {rate:7.0f} req/s, p99 {p99 * 1000:6.1f} ms ({bad} non-2xx)")
        print(f"throughput ratio (progress / baseline): {summary['progress'][0] / summary['baseline'][0]:.2f}")
        print(f"database queries per progress report  : {queries}")
        print(f"load average (1 min) after the run     : {load:.1f}")
        return 0 if summary["progress"][2] == 0 else 1
    finally:
        web_stop(server)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
