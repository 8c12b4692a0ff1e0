"""Benchmark: the Deep Linking lesson picker with a shared library of 100 against thousands of lessons.

    .venv/bin/python tests/harness.py -- .venv/bin/python bench/lti_picker.py [--lessons 100,10000] [--trigram]

Issue 17 asks the picker to stay usable on libraries of thousands of lessons. Runs inside the test
harness (real PostgreSQL and Redis). For each size N, an LMS of its own (the platform emulator of
tests/lti, on loopback over HTTP) is registered and its instructor opens the picker by a real OIDC
login and Deep Linking launch, as in tests/lti; they teach a small course of 5 lessons, and one course
shared with that LMS (not theirs) holds N lessons, made with bulk_create, every hundredth with
"refraction" in its title. Every size lives in the same database (the lesson table holds them all, as a
site's would) and the tables are ANALYZEd once filled, as autovacuum would do on a live database.

Measured in-process with Django's test Client (the full middleware stack, sessions in the database,
template rendering; no HTTP server, so the figures are the view's own cost). The requests: the shared
library's first page, a search matching 1 % of the lessons, a search matching nothing, a page in the
middle (page N/40), and the POST that keeps a selection of two lessons and moves to the next page (its
redirect only). After a warm-up, R rounds each run every request at every size in turn, so a loaded
machine slows all sizes alike; printed are the median wall-clock milliseconds, the median milliseconds
spent in the database (summed over the request's queries), the query count (constant whatever N), the
ratio to the same request at the smallest size (target, issue 17: at most 2x at 10,000 lessons), the
slowest queries at the largest size and PostgreSQL's plan of both searches' page of rows.

``--trigram`` then times the proposal for the search at the largest size: the count of the library's
lessons whose title or description holds the word, with today's ``strpos`` and with ``LIKE``, before
and after pg_trgm GIN indexes on lower(title) and lower(description) (made on the bench database only).
"""

from __future__ import annotations

import argparse
import os
import re
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
    parser.add_argument(
        "--trigram", action="store_true", help="then time the search's match with pg_trgm GIN indexes and LIKE"
    )
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
    per_query: list[tuple[float, str]]  # median ms of each query, in order, with what it reads


def query_label(sql: str) -> str:
    """A few words for a query: what it counts or the table it reads."""
    table = re.search(r'FROM "(\w+)"', sql)
    kind = "count" if "COUNT(" in sql else sql.split(None, 1)[0].lower()
    return f"{kind} {table.group(1) if table else ''}".strip()


@contextmanager
def db_timer() -> Iterator[list[tuple[float, str]]]:
    """Collects the seconds each query of the block spends in the database, with its SQL."""
    from django.db import connection

    spent: list[tuple[float, str]] = []

    def wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spent.append((time.perf_counter() - start, sql))

    with connection.execute_wrapper(wrapper):
        yield spent


def once(request: Callable[[], Any], *, status: int) -> tuple[float, list[tuple[float, str]]]:
    """One call's wall-clock seconds and its queries' (seconds, SQL)."""
    with db_timer() as spent:
        start = time.perf_counter()
        response = request()
        total = time.perf_counter() - start
    assert response.status_code == status, response.status_code
    return total, spent


def summary(calls: list[tuple[float, list[tuple[float, str]]]]) -> Timing:
    """Medians of the calls of one request: wall clock, database, and each query in order."""
    counts = {len(spent) for _, spent in calls}
    assert len(counts) == 1, f"the query count varied between rounds: {sorted(counts)}"
    per_query = [
        (statistics.median(spent[index][0] for _, spent in calls) * 1000, query_label(calls[0][1][index][1]))
        for index in range(counts.pop())
    ]
    return Timing(
        total_ms=statistics.median(total for total, _ in calls) * 1000,
        db_ms=statistics.median(sum(seconds for seconds, _ in spent) for _, spent in calls) * 1000,
        queries=len(per_query),
        per_query=per_query,
    )


def library_fill(*, course: Any, size: int) -> None:
    """``size`` published lessons in the shared course."""
    from courses.models import Lesson

    batch = 5000
    for start in range(0, size, batch):
        Lesson.objects.bulk_create(
            Lesson(
                course=course,
                position=number,
                title=f"Optics {number:06d}" + (f" {MATCH_WORD}" if number % 100 == 7 else ""),
                description=DESCRIPTION,
            )
            for number in range(start, min(start + batch, size))
        )


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


@dataclass
class Library:
    """One size's LMS, its instructor's picker session and what the timed requests need."""

    size: int
    teacher: Any  # django.test.Client with the Deep Linking session
    user: Any
    platform_id: int
    requests: dict[str, tuple[Callable[[], Any], int]]


def library_arrange(*, size: int) -> Library:
    """An LMS of its own (so every size's library is measured in the same database, round by round),
    its instructor launched into the picker, a course they teach, and a shared course of ``size``."""
    from django.contrib.auth.models import User
    from django.test import Client

    from courses.models import Course, Lesson
    from lti.models import LtiPlatform
    from lti.sharing import course_share
    from tests.lti.conftest import full_launch, register, start_emulator

    lms = start_emulator(tool_url="http://testserver")
    lms.client_id = f"bench-client-{size}"
    with lms:
        register(lms)
        teacher = Client()
        lms.launches["dl"] = {"message_type": "LtiDeepLinkingRequest", "accept_multiple": True, "data": "d-1"}
        launched = full_launch(teacher, lms, user="teacher-1", launch="dl")
        assert launched.status_code == 302 and launched["Location"] == PICKER, launched.status_code
    platform = LtiPlatform.objects.get(issuer=lms.issuer, client_id=lms.client_id)
    user = User.objects.get(pk=teacher.session["_auth_user_id"])
    own = Course.objects.create(slug=f"bench-own-{size}", title="Bench own course", published=True)
    own.educators.add(user)
    Lesson.objects.bulk_create(Lesson(course=own, title=f"Own {n}", position=n) for n in range(5))
    shared = Course.objects.create(slug=f"bench-shared-{size}", title="Optics library", published=False)
    course_share(course=shared, platform=platform, by=None)
    library_fill(course=shared, size=size)
    # The instructor keeps a selection, so every page also reads it (as tests/lti's query-count test does).
    keep = [str(value) for value in Lesson.objects.filter(course=own).values_list("public_id", flat=True)[:2]]
    kept = teacher.post(PICKER, {"action": "search", "source": "mine", "lesson": keep})
    assert kept.status_code == 302, kept.status_code
    ordered = Lesson.objects.filter(course=shared).order_by("position").values_list("public_id", flat=True)
    shown = [str(value) for value in ordered[:20]]
    requests = picker_requests(teacher, middle=str(max(size // 40, 1)), shown=shown, selected=shown[:2])
    return Library(size=size, teacher=teacher, user=user, platform_id=platform.pk, requests=requests)


MATCHES = {  # a lesson's title or description holds the word
    "strpos": "strpos(lower(title), %(q)s) > 0 OR strpos(lower(description), %(q)s) > 0",  # ucontains before
    "LIKE": "lower(title) LIKE %(like)s OR lower(description) LIKE %(like)s",  # ucontains now (core/db.py)
}


def trigram_trial(*, course_id: int, rounds: int) -> None:
    """The proposal for the search, measured: counting one library's lessons whose title or description
    holds the 1 % word or the no-match word, with the former strpos and with LIKE, before and after GIN
    trigram indexes on lower(title) and lower(description) (courses migration 0010's, dropped then built
    again here, on the bench database only)."""
    from django.db import connection

    def count_ms(match: str, word: str) -> float:
        sql = f"SELECT count(*) FROM courses_lesson WHERE course_id = %(course)s AND state = 'published' AND ({match})"
        params = {"course": course_id, "q": word, "like": f"%{word}%"}
        spent = []
        with connection.cursor() as cursor:
            for _ in range(rounds + 1):
                start = time.perf_counter()
                cursor.execute(sql, params)
                cursor.fetchone()
                spent.append(time.perf_counter() - start)
        return statistics.median(spent[1:]) * 1000

    def report(label: str) -> None:
        for word in (MATCH_WORD, NO_MATCH):
            figures = ", ".join(f"{name} {count_ms(match, word):.1f} ms" for name, match in MATCHES.items())
            print(f"  {label:16} q={word!r:13} {figures}")

    print("\ncount of the library's matches on title or description (median ms):")
    with connection.cursor() as cursor:
        # courses migration 0010 built the same indexes: dropped here (the bench database only) to measure
        # the library without them first.
        cursor.execute("DROP INDEX IF EXISTS courses_lesson_title_trgm, courses_lesson_description_trgm")
        cursor.execute("ANALYZE courses_lesson")
    report("no index")
    with connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        start = time.perf_counter()
        for column in ("title", "description"):
            cursor.execute(
                f"CREATE INDEX bench_{column}_trgm ON courses_lesson USING gin (lower({column}) gin_trgm_ops)"
            )
        built = time.perf_counter() - start
        cursor.execute("ANALYZE courses_lesson")
        relations = ("bench_title_trgm", "bench_description_trgm", "courses_lesson")
        cursor.execute("SELECT " + ", ".join(f"pg_size_pretty(pg_relation_size('{name}'))" for name in relations))
        sizes = cursor.fetchone()
    print(f"  GIN trigram indexes on lower(title), lower(description): built in {built:.2f} s; sizes {sizes} (table)")
    report("trigram indexes")


def main() -> int:
    args = arguments()
    if not setup():
        return 2
    from django.db import connection

    print(f"load average at start: {' '.join(f'{value:.1f}' for value in os.getloadavg())}")
    print(f"PostgreSQL {connection.cursor().connection.info.server_version}, in-process Django test Client")
    libraries = []
    for size in args.sizes:
        started = time.perf_counter()
        libraries.append(library_arrange(size=size))
        print(f"{size:,} lessons: arranged in {time.perf_counter() - started:.1f} s")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # as autovacuum would on a live database
    names = list(libraries[0].requests)
    calls: dict[tuple[int, str], list[tuple[float, list[tuple[float, str]]]]] = {}
    for library in libraries:  # warm-up
        for call, status in library.requests.values():
            once(call, status=status)
    # Round by round, each request at every size in turn: the machine's load falls on all alike.
    for _ in range(args.rounds):
        for name in names:
            for library in libraries:
                call, status = library.requests[name]
                calls.setdefault((library.size, name), []).append(once(call, status=status))
    results = {size: {name: summary(calls[size, name]) for name in names} for size in args.sizes}
    plans = {
        library.size: {
            query: explain_search(user=library.user, platform_id=library.platform_id, query=query)
            for query in (MATCH_WORD, NO_MATCH)
        }
        for library in libraries
    }

    base = args.sizes[0]
    print(f"\nmedian of {args.rounds} interleaved rounds after a warm-up; ratio to the same request at {base:,}")
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
    largest = args.sizes[-1]
    print(f"\nthe slowest queries of each request at {largest:,} lessons (median ms):")
    for name, timing in results[largest].items():
        slowest = sorted(timing.per_query, reverse=True)[:3]
        print(f"  {name:28} " + "; ".join(f"{label} {ms:.1f}" for ms, label in slowest))
    print("\nEXPLAIN ANALYZE of the search's page of rows:")
    for size in args.sizes:
        for query, plan in plans[size].items():
            print(f"  {size:>8,} lessons, q={query!r}: {plan}")
    if args.trigram:
        from courses.models import Course

        largest_course = Course.objects.get(slug=f"bench-shared-{largest}").pk
        trigram_trial(course_id=largest_course, rounds=args.rounds)
    print(f"\ntarget (at most {TARGET_RATIO:.0f}x at up to 10,000 lessons): {'met' if met else 'NOT met'}")
    print(f"query counts constant across sizes: {'yes' if constant else 'NO'}")
    print(f"load average at end: {' '.join(f'{value:.1f}' for value in os.getloadavg())}")
    return 0 if met and constant else 1


if __name__ == "__main__":
    sys.exit(main())
