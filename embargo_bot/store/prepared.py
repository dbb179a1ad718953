"""A Core statement compiled once for the store's dialect, for the hottest path.

One outcome is recorded per message a stage sends, on the event loop that
runs every SMTP session. SQLAlchemy's work around each execution (looking up
the compiled form, processing each parameter, setting up the result) cost
more than SQLite's own, so the statement is compiled here once, from the same
Core statement that states it for every dialect, and run through
``exec_driver_sql`` with its parameters in order: SQLAlchemy still runs it,
in the transaction under way, and wraps any error as it does for any other.
Only for statements whose parameters need no conversion (text, numbers, None).
On SQLite and PostgreSQL alike: the compiled form says how it takes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, CursorResult
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement


class PreparedStatement:
    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if not isinstance(compiled, SQLCompiler) or compiled.escaped_bind_names:
            raise ValueError(f"this statement cannot be run as compiled for {dialect.name}")
        self.sql = str(compiled)
        self._positional = compiled.positiontup is not None
        self._names = tuple(compiled.positiontup or sorted(set(compiled.bind_names.values())))
        # The values the statement itself carries (e.g. ``attempts + 1``).
        self._fixed = {
            name: bind.effective_value
            for bind, name in compiled.bind_names.items()
            if not bind.required
        }

    def arguments(self, params: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        """``params`` and the statement's own values, as ``exec_driver_sql`` takes them."""
        values = {**self._fixed, **params}
        if self._positional:
            return tuple(values[name] for name in self._names)
        return {name: values[name] for name in self._names}

    def execute(self, connection: Connection, params: Mapping[str, Any]) -> CursorResult[Any]:
        return connection.exec_driver_sql(self.sql, self.arguments(params))
