"""core/db.py: the ``ucontains`` lookup (the lesson picker's search) folds case beyond ASCII, the same
on PostgreSQL (the harness) and on SQLite (the embedded default of `make run`), and treats "%" and "_"
as the characters they are."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Q, QuerySet

from config.secret_files import embedded_secrets_create
from core.db import like_escape, unicode_lower
from courses.models import Course, Lesson
from lti.deep_linking import Source, deep_link_lessons
from lti.models import LtiPlatform
from lti.sharing import course_share

ROOT = Path(__file__).resolve().parents[2]

# (query, titles it finds among TITLES): the same table for both backends.
TITLES = [
    "Été indien",
    "L'ÉTÉ",
    "Ça va",
    "ΣΟΦΊΑ",
    "50% off",
    "500 lenses",
    "snake_case",
    "snakeXcase",
    "C:\\dir",
    "C:dir",
]
CASES = [
    ("ÉTÉ", ["L'ÉTÉ", "Été indien"]),
    ("été", ["L'ÉTÉ", "Été indien"]),
    ("çA", ["Ça va"]),
    ("σοφία", ["ΣΟΦΊΑ"]),
    ("50%", ["50% off"]),
    ("e_c", ["snake_case"]),
    ("%", ["50% off"]),
    (":\\d", ["C:\\dir"]),  # PostgreSQL's LIKE pattern escapes with a backslash: one here is a character
]

SQLITE_SCRIPT = f"""
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from courses.models import Course, Lesson
course = Course.objects.create(slug="c", title="C")
for title in {TITLES!r}:
    Lesson.objects.create(course=course, title=title)
for query, expected in {CASES!r}:
    found = sorted(Lesson.objects.filter(title__ucontains=query).values_list("title", flat=True))
    assert found == expected, (query, found)
# Django's own icontains misses them here: the reason for ucontains.
assert not Lesson.objects.filter(title__icontains="ÉTÉ indien").exists()
# The lesson picker's search (lti/deep_linking.py) uses it: the shared library finds "été" for "ÉTÉ".
from django.contrib.auth.models import User
from lti.deep_linking import Source, deep_link_lessons
from lti.models import LtiPlatform
from lti.sharing import course_share
platform = LtiPlatform.objects.create(issuer="https://lms.example", client_id="tool")
course_share(course=course, platform=platform, by=None)
teacher = User.objects.create_user("t")
picked = deep_link_lessons(user=teacher, platform_id=platform.pk, source=Source.SHARED, query="ÉTÉ")
assert sorted(lesson.title for lesson in picked) == ["L'ÉTÉ", "Été indien"], list(picked)
print("sqlite ok")
"""


def test_unicode_lower_folds_every_script_and_keeps_null() -> None:
    assert [unicode_lower(text) for text in ("ÉTÉ", "ΣΟΦΊΑ", "Ça", None)] == ["été", "σοφία", "ça", None]


@pytest.mark.django_db
@pytest.mark.parametrize(("query", "expected"), CASES)
def test_ucontains_on_postgresql(query: str, expected: list[str]) -> None:
    course = Course.objects.create(slug="c", title="C")
    Lesson.objects.bulk_create(Lesson(course=course, title=title) for title in TITLES)
    assert sorted(Lesson.objects.filter(title__ucontains=query).values_list("title", flat=True)) == expected


def test_like_escape_makes_the_wildcards_and_the_escape_plain() -> None:
    assert like_escape("50%_a\\b") == "50\\%\\_a\\\\b"


def plan(query: QuerySet[Any]) -> str:
    with connection.cursor() as cursor:
        # A few rows: the planner would rather read them all, in the table or in an index's order. Left
        # with bitmap scans only, it needs an index that answers the condition.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        text = query.explain()
        cursor.execute("RESET enable_seqscan")
        cursor.execute("RESET enable_indexscan")
    return text


@pytest.mark.django_db
def test_the_pickers_search_reads_the_trigram_indexes_on_postgresql() -> None:
    """courses migration 0010's indexes serve ``ucontains`` (``lower(col) LIKE``, not ``strpos``, which
    no index can serve): the lesson picker's search of a large library reads them, not every row."""
    course = Course.objects.create(slug="c", title="Optics")
    lessons = (Lesson(course=course, title=f"Lens {n}", description=f"Glass number {n}. " * 10) for n in range(2000))
    Lesson.objects.bulk_create(lessons, batch_size=1000)
    lookup = Lesson.objects.filter(Q(title__ucontains="refraction") | Q(description__ucontains="refraction")).order_by()
    searched = plan(lookup)
    assert "courses_lesson_title_trgm" in searched and "courses_lesson_description_trgm" in searched, searched
    assert "BitmapOr" in searched, searched
    platform = LtiPlatform.objects.create(issuer="https://lms.example", client_id="tool")
    course_share(course=course, platform=platform, by=None)
    teacher = User.objects.create_user("t")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE courses_lesson")  # every lesson is the shared course's: its id selects all
    picker = deep_link_lessons(user=teacher, platform_id=platform.pk, source=Source.SHARED, query="refraction")
    picked = plan(picker)
    assert "courses_lesson_title_trgm" in picked and "courses_lesson_description_trgm" in picked, picked
    assert list(picker) == []
    # The course's title is matched in a query of its own, and its lessons come with it.
    by_course = deep_link_lessons(user=teacher, platform_id=platform.pk, source=Source.SHARED, query="OPTICS")
    assert len(by_course) == 2000


def test_ucontains_on_sqlite(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_URL", "DB_")) and key != "DJANGO_SETTINGS_MODULE"
    }
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", DJANGO_SETTINGS_MODULE="config.settings",
        VAR_DIR=str(tmp_path), PYTHONPATH=str(ROOT),
    )  # fmt: skip
    embedded_secrets_create(var_dir=tmp_path)  # what `make run` and the test harness do
    completed = subprocess.run(
        [sys.executable, "-c", SQLITE_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.strip().endswith("sqlite ok")
