"""Database behaviour the apps rely on that the two backends do not share: a case-insensitive
"contains" that folds case beyond ASCII.

Django's ``icontains`` is ``LIKE`` on SQLite, which folds ASCII letters only ("ÉTÉ" never finds "été"
in the embedded default), and ``UPPER(...) LIKE UPPER(...)`` on PostgreSQL, which folds by the
database's ctype (ASCII only again under the C locale). The ``ucontains`` lookup lowercases both
sides by Unicode's rules on both: PostgreSQL's ``lower()`` under a UTF-8 ctype, and on SQLite a
``unicode_lower`` function (Python's ``str.lower``) registered on every new connection.

On PostgreSQL it is ``lower(col) LIKE '%text%'`` with "\\", "%" and "_" escaped in the text (they stay
plain characters): a ``pg_trgm`` GIN index on ``lower(col)`` serves that form (``strpos`` it cannot),
so a search of a large table reads the index instead of lowering every row (courses migration 0010
builds those indexes for the lesson picker). On SQLite it is ``instr``: nothing to escape, no index.

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


def like_escape(text: str) -> str:
    """``text`` as a literal inside a LIKE pattern whose ESCAPE character is a backslash."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class UnicodeContains(Lookup):
    """``field__ucontains=text``: the field holds ``text``, case not mattering in any script."""

    lookup_name = "ucontains"

    def as_sql(self, compiler: Any, connection: BaseDatabaseWrapper) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        if self.rhs_is_direct_value() and rhs_params and isinstance(rhs_params[0], str):
            # The pattern is a parameter (never SQL text), its wildcards escaped; lower() on both sides in
            # SQL, so the left side is exactly the indexed expression ``lower(col)``.
            pattern = f"%{like_escape(rhs_params[0])}%"
            return f"lower({lhs}::text) LIKE lower({rhs}::text) ESCAPE '\\'", [*lhs_params, pattern]
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
