"""Benchmark: the Deep Linking lesson picker with a shared library of 100 against thousands of lessons.

    .venv/bin/python tests/harness.py -- .venv/bin/python bench/lti_picker.py [--lessons 100,10000] [--rounds 20]

Issue 17 asks the picker to stay usable on libraries of thousands of lessons. Runs inside the test
harness (real PostgreSQL and Redis). One LMS (the platform emulator of tests/lti, on loopback over HTTP)
is registered; its instructor opens the picker by a real OIDC login and Deep Linking launch, as in
tests/lti; they teach a small course of 5 lessons, and one shared course (not theirs) holds N lessons,
made with bulk_create, every hundredth with "refraction" in its title. The table is ANALYZEd after each
fill, as autovacuum would do on a live database.

Measured in-process with Django's test Client (the full middleware stack, sessions in the database,
template rendering; no HTTP server, so the figures are the view's own cost): for each request, a
warm-up, then the median wall-clock milliseconds of R rounds, and the milliseconds of those spent in
the database (summed over the request's queries). The requests: the shared library's first page, a
search matching 1 % of the lessons, a search matching nothing, a page in the middle (page N/40), and
the POST that keeps a selection of two lessons and moves to the next page (its redirect only). Each is
printed with its ratio against the same request with the smallest N of the run (target, issue 17: at
most 2x at 10,000 lessons) and its query count (constant whatever N).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PICKER = "/lti/deep-link/"
MATCH_WORD = "refraction"  # in every hundredth lesson's title: the 1 % search
NO_MATCH = "zqxjv"  # in no title, description or course title
TARGET_RATIO = 2.0
DESCRIPTION = (
    "A short lecture from the shared optics library: what the lesson covers, the demonstrations shown "
    "and the exercises that follow, as an instructor would write it for the course page."
)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lessons", default="100,10000", help="library sizes, comma-separated, ascending")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    args.sizes = sorted({int(size) for size in args.lessons.split(",")})
    return args


def setup() -> bool:
    """Settings for in-process launches from the emulator, a migrated database and Django set up."""
    if "DATABASE_URL" not in os.environ:
        print("run inside the harness: python tests/harness.py -- python bench/lti_picker.py", file=sys.stderr)
        return False
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "ALLOWED_HOSTS": "testserver",
        "SITE_URL": "http://testserver",  # the test Client's host, as in tests/lti
        "OUTBOUND_HTTP_ALLOW": "127.0.0.1/32",  # the emulator's JWKS on loopback over plain http
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=os.environ, check=True)
    import django

    django.setup()
    from django.conf import settings

    # As in tests/conftest.py: static URLs without a collected manifest (the hashing is not measured).
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    return True


@dataclass
class Timing:
    total_ms: float
    db_ms: float
    queries: int


@contextmanager
def db_timer() -> Iterator[list[float]]:
    """Collects the seconds each query of the block spends in the database."""
    from django.db import connection

    spent: list[float] = []

    def wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spent.append(time.perf_counter() - start)

    with connection.execute_wrapper(wrapper):
        yield spent


def timed(request: Callable[[], Any], *, rounds: int, status: int) -> Timing:
    """Median wall-clock and database milliseconds of ``rounds`` calls after one warm-up."""
    assert request().status_code == status
    totals, dbs, counts = [], [], set()
    for _ in range(rounds):
        with db_timer() as spent:
            start = time.perf_counter()
            response = request()
            totals.append(time.perf_counter() - start)
        assert response.status_code == status, response.status_code
        dbs.append(sum(spent))
        counts.add(len(spent))
    assert len(counts) == 1, f"the query count varied between rounds: {sorted(counts)}"
    return Timing(statistics.median(totals) * 1000, statistics.median(dbs) * 1000, counts.pop())


def library_fill(*, course: Any, size: int) -> None:
    """Top the shared course up to ``size`` published lessons, then ANALYZE the table."""
    from django.db import connection

    from courses.models import Lesson

    have = Lesson.objects.filter(course=course).count()
    batch = 5000
    for start in range(have, size, batch):
        Lesson.objects.bulk_create(
            Lesson(
                course=course,
                position=number,
                title=f"Optics {number:06d}" + (f" {MATCH_WORD}" if number % 100 == 7 else ""),
                description=DESCRIPTION,
            )
            for number in range(start, min(start + batch, size))
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE courses_lesson")


def explain_search(*, user: Any, platform_id: int, query: str) -> str:
    """PostgreSQL's plan and time for the search's page of rows (EXPLAIN ANALYZE), in one line."""
    from django.db.models import F

    from lti.deep_linking import Source, deep_link_lessons

    lessons = (
        deep_link_lessons(user=user, platform_id=platform_id, source=Source.SHARED, query=query)
        .select_related("course")
        .annotate(video_seconds=F("asset__duration_seconds"))[:20]
    )
    plan = lessons.explain(analyze=True)
    scans = sorted({line.strip().lstrip("-> ").split("  (")[0] for line in plan.splitlines() if "Scan" in line})
    total = [line for line in plan.splitlines() if line.startswith("Execution Time")]
    return f"{'; '.join(scans)}; {total[0] if total else ''}"


def picker_requests(
    teacher: Any, *, middle: str, shown: list[str], selected: list[str]
) -> dict[str, tuple[Callable[[], Any], int]]:
    """The requests timed, by name: a call and the status it must answer."""
    return {
        "first page": (lambda: teacher.get(PICKER, {"source": "shared"}), 200),
        "search, 1 %": (lambda: teacher.get(PICKER, {"source": "shared", "q": MATCH_WORD}), 200),
        "search, no match": (lambda: teacher.get(PICKER, {"source": "shared", "q": NO_MATCH}), 200),
        "page N/40": (lambda: teacher.get(PICKER, {"source": "shared", "page": middle}), 200),
        "POST select + next page": (
            lambda: teacher.post(PICKER, {"action": "page:2", "source": "shared", "shown": shown, "lesson": selected}),
            302,
        ),
    }


def main() -> int:
    args = arguments()
    if not setup():
        return 2
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client

    from courses.models import Course, Lesson
    from lti.models import LtiPlatform
    from lti.sharing import course_share
    from tests.lti.conftest import full_launch, register, start_emulator

    print(f"load average at start: {' '.join(f'{value:.1f}' for value in os.getloadavg())}")
    print(f"PostgreSQL {connection.cursor().connection.info.server_version}, in-process Django test Client")
    with start_emulator(tool_url="http://testserver") as lms:
        register(lms)
        platform = LtiPlatform.objects.get(issuer=lms.issuer, client_id=lms.client_id)
        teacher = Client()
        lms.launches["dl"] = {"message_type": "LtiDeepLinkingRequest", "accept_multiple": True, "data": "d-1"}
        launched = full_launch(teacher, lms, user="teacher-1", launch="dl")
        assert launched.status_code == 302 and launched["Location"] == PICKER, launched.status_code
        user = User.objects.get(pk=teacher.session["_auth_user_id"])
        own = Course.objects.create(slug="bench-own", title="Bench own course", published=True)
        own.educators.add(user)
        Lesson.objects.bulk_create(Lesson(course=own, title=f"Own {n}", position=n) for n in range(5))
        shared = Course.objects.create(slug="bench-shared", title="Optics library", published=False)
        course_share(course=shared, platform=platform, by=None)

        # The instructor keeps a selection from the first size on, so every page also reads it (as
        # tests/lti's query-count test does): the query counts are the same for every size.
        keep = [str(value) for value in Lesson.objects.filter(course=own).values_list("public_id", flat=True)[:2]]
        kept = teacher.post(PICKER, {"action": "search", "source": "mine", "lesson": keep})
        assert kept.status_code == 302, kept.status_code
        results: dict[int, dict[str, Timing]] = {}
        plans: dict[int, dict[str, str]] = {}
        for size in args.sizes:
            started = time.perf_counter()
            library_fill(course=shared, size=size)
            filled = time.perf_counter() - started
            two = [str(value) for value in Lesson.objects.filter(course=shared).order_by("position")
                   .values_list("public_id", flat=True)[:2]]  # fmt: skip
            shown = [str(value) for value in Lesson.objects.filter(course=shared).order_by("position")
                     .values_list("public_id", flat=True)[:20]]  # fmt: skip
            middle = str(max(size // 40, 1))
            requests = picker_requests(teacher, middle=middle, shown=shown, selected=two)
            results[size] = {
                name: timed(call, rounds=args.rounds, status=code) for name, (call, code) in requests.items()
            }
            plans[size] = {
                query: explain_search(user=user, platform_id=platform.pk, query=query)
                for query in (MATCH_WORD, NO_MATCH)
            }
            print(f"{size:,} lessons: filled in {filled:.1f} s; load {os.getloadavg()[0]:.1f}")

    base = args.sizes[0]
    print(f"\nmedian of {args.rounds} rounds after a warm-up; ratio against the same request at {base:,} lessons")
    print(f"{'request':30} {'lessons':>8} {'total ms':>9} {'db ms':>7} {'queries':>7} {'ratio':>6}")
    met = True
    for name in results[base]:
        for size in args.sizes:
            timing = results[size][name]
            ratio = timing.total_ms / results[base][name].total_ms
            if size <= 10_000 and ratio > TARGET_RATIO:
                met = False
            print(f"{name:30} {size:>8,} {timing.total_ms:9.1f} {timing.db_ms:7.1f} {timing.queries:7} {ratio:6.2f}")
    constant = all(len({results[size][name].queries for size in args.sizes}) == 1 for name in results[base])
    print("\nEXPLAIN ANALYZE of the search's page of rows:")
    for size in args.sizes:
        for query, plan in plans[size].items():
            print(f"  {size:>8,} lessons, q={query!r}: {plan}")
    print(f"\ntarget (at most {TARGET_RATIO:.0f}x at up to 10,000 lessons): {'met' if met else 'NOT met'}")
    print(f"query counts constant across sizes: {'yes' if constant else 'NO'}")
    print(f"load average at end: {' '.join(f'{value:.1f}' for value in os.getloadavg())}")
    return 0 if met and constant else 1


if __name__ == "__main__":
    sys.exit(main())
