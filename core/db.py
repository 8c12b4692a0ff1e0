"""Database behaviour the apps rely on that the two backends do not share: a case-insensitive
"contains" that folds case beyond ASCII.

Django's ``icontains`` is ``LIKE`` on SQLite, which folds ASCII letters only ("ÉTÉ" never finds "été"
in the embedded default), and ``UPPER(...) LIKE UPPER(...)`` on PostgreSQL, which folds by the
database's ctype (ASCII only again under the C locale). The ``ucontains`` lookup lowercases both
sides by Unicode's rules on both: PostgreSQL's ``lower()`` under a UTF-8 ctype, and on SQLite a
``unicode_lower`` function (Python's ``str.lower``) registered on every new connection. It matches
with ``strpos``/``instr``, not ``LIKE``: "%" and "_" in a query are plain characters, nothing to escape.

``install()`` runs once, from the config app's ready()."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.db.models.lookups import Lookup

SQLITE_LOWER = "unicode_lower"


def unicode_lower(value: str | None) -> str | None:
    """SQLite's built-in lower() folds ASCII only; this folds every letter Python knows."""
    return value.lower() if isinstance(value, str) else value


class UnicodeContains(Lookup):
    """``field__ucontains=text``: the field holds ``text``, case not mattering in any script."""

    lookup_name = "ucontains"

    def as_sql(self, compiler: Any, connection: BaseDatabaseWrapper) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"strpos(lower({lhs}::text), lower({rhs}::text)) > 0", [*lhs_params, *rhs_params]

    def as_sqlite(self, compiler: Any, connection: BaseDatabaseWrapper) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"instr({SQLITE_LOWER}({lhs}), {SQLITE_LOWER}({rhs})) > 0", [*lhs_params, *rhs_params]


def sqlite_functions_register(*, sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """Give each new SQLite connection the functions the lookups above call (a no-op elsewhere)."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(SQLITE_LOWER, 1, unicode_lower, deterministic=True)


def install() -> None:
    """Register the lookup on text fields and the SQLite functions on new connections (idempotent)."""
    models.CharField.register_lookup(UnicodeContains)
    models.TextField.register_lookup(UnicodeContains)
    connection_created.connect(sqlite_functions_register, dispatch_uid="core.db.sqlite_functions")
