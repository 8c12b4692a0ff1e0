"""One lesson with its course and asset, fetched by a query written out once per process.

The ORM compiles a query on every call; for the three-model join the playback session makes on every
start, compiling cost more than the database took to answer (docs/adr/0012). Here the SELECT list
and the joins are written once from the models' own metadata, each value goes through the same
converters the ORM would apply (so UUIDs, booleans, dates and JSON come out the same on PostgreSQL
and SQLite), and the rows become model instances with ``Model.from_db``, as the ORM does.
Extra SQL expressions (with their parameters) are fetched in the same row.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any

from django.db import connection, models

from courses.models import Course, Lesson
from media_pipeline.models import MediaAsset

_MODELS: tuple[type[models.Model], ...] = (Lesson, Course, MediaAsset)
_EXTRA = "_lesson_row_extra"
Converter = Callable[[Any, Any, Any], Any]


@functools.cache
def _layout() -> tuple[str, str, list[tuple[list[str], list[tuple[Any, list[Converter]]]]]]:
    """(select list, FROM clause, per model: attnames and converters), from the models' metadata."""
    columns: list[str] = []
    per_model = []
    for model in _MODELS:
        table = model._meta.db_table
        names, converters = [], []
        for field in model._meta.concrete_fields:
            columns.append(f'"{table}"."{field.column}"')
            names.append(field.attname)
            col = field.get_col(table)
            field_converters = field.get_db_converters(connection)  # type: ignore[attr-defined]  # django-stubs 5.2 lack Field.get_db_converters
            converters.append((col, connection.ops.get_db_converters(col) + field_converters))
        per_model.append((names, converters))
    lesson, course, asset = (model._meta.db_table for model in _MODELS)
    source = (
        f'"{lesson}" INNER JOIN "{course}" ON ("{lesson}"."course_id" = "{course}"."id")'
        f' LEFT OUTER JOIN "{asset}" ON ("{lesson}"."asset_id" = "{asset}"."id")'
    )
    return ", ".join(columns), source, per_model


def lesson_fetch(*, public_id: uuid.UUID, extra: dict[str, tuple[str, list[Any]]]) -> Lesson | None:
    """The lesson ``public_id`` with ``lesson.course`` and ``lesson.asset`` loaded, or None.

    ``extra`` maps names to (SQL expression, parameters) evaluated in the same row; read the values
    with ``fetched_extra``. Expressions may refer to the three tables by their table names.
    """
    columns, source, per_model = _layout()
    names = list(extra)
    extra_sql = "".join(f", ({extra[name][0]})" for name in names)
    params: list[Any] = [param for name in names for param in extra[name][1]]
    key_field = Lesson._meta.get_field("public_id")
    params.append(key_field.get_db_prep_value(public_id, connection))
    sql = f'SELECT {columns}{extra_sql} FROM {source} WHERE "{Lesson._meta.db_table}"."public_id" = %s'
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    instances: list[models.Model | None] = []
    offset = 0
    for model, (attnames, converters) in zip(_MODELS, per_model, strict=True):
        values = list(row[offset : offset + len(attnames)])
        offset += len(attnames)
        if values[0] is None:  # the LEFT JOIN found no asset
            instances.append(None)
            continue
        for index, (col, chain) in enumerate(converters):
            for convert in chain:
                values[index] = convert(values[index], col, connection)
        instances.append(model.from_db(connection.alias, attnames, values))
    lesson, course, asset = instances
    assert isinstance(lesson, Lesson) and isinstance(course, Course)
    assert asset is None or isinstance(asset, MediaAsset)
    lesson.course = course
    lesson.asset = asset
    setattr(lesson, _EXTRA, dict(zip(names, row[offset:], strict=True)))
    return lesson


def fetched_extra(lesson: Lesson) -> dict[str, Any]:
    return getattr(lesson, _EXTRA)
