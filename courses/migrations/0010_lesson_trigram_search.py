"""Trigram indexes for the lesson picker's search (core/db.py ``ucontains``: ``lower(col) LIKE '%q%'``
on PostgreSQL), so a search of a library of thousands of lessons reads an index instead of lowering
every title and description.

PostgreSQL only: SQLite (the embedded default) has no trigram index and its ``ucontains`` is ``instr``.
``pg_trgm`` is a trusted extension since PostgreSQL 13 (a database owner may create it); where the
migrating role may not, a superuser runs ``CREATE EXTENSION pg_trgm;`` in the database first
(docs/operations.md)."""

from django.db import migrations

INDEXES = [
    ("courses_lesson_title_trgm", "courses_lesson", "title"),
    ("courses_lesson_description_trgm", "courses_lesson", "description"),
    ("courses_course_title_trgm", "courses_course", "title"),
]


def indexes_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, table, column in INDEXES:
        # fastupdate off: new rows go straight into the index, not into a pending list that every search
        # reads linearly until a vacuum merges it (and whose pages make the planner prefer reading the
        # whole table). Lessons are written seldom and searched often.
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin (lower({column}) gin_trgm_ops)"
            " WITH (fastupdate = off)"
        )


def indexes_drop(apps, schema_editor):
    # The extension stays: other database objects may use it, and it costs nothing unused.
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _table, _column in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("courses", "0009_lti_models_move_to_lti")]

    operations = [migrations.RunPython(indexes_create, indexes_drop, elidable=False)]
