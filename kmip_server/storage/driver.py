"""Statements run straight on the database driver's connection, inside a SQLAlchemy
transaction: the few hot statements whose SQLAlchemy execution cost more than the query."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

__all__ = ["DriverStatement", "driver_execute"]

# Host parameters per multi-row INSERT: SQLite's lowest limit (before 3.32), and the rows it holds at most.
_MAX_PARAMETERS = 999
_ROWS_PER_INSERT = 64


class DriverStatement:
    """A statement compiled once per dialect and run straight on the driver's connection.

    For the hot paths only (a Get's read, a Create's inserts): SQLAlchemy's execution
    machinery (context, per-row parameter processing, result wrapper) cost three times the
    query itself there. The statement still comes from the same table definitions and runs
    in the session's transaction; its result columns need no type processing (integers,
    text, bytes) on either backend.
    """

    __slots__ = ("_statement", "_compiled", "_row_getters", "_multi")

    def __init__(self, statement: Any) -> None:
        self._statement = statement
        self._compiled: dict[str, tuple[str, dict[str, Any], tuple[str, ...] | None]] = {}
        # Per positional dialect: a row dict → its parameter tuple, in C (itemgetter).
        self._row_getters: dict[str, Callable[[dict[str, Any]], tuple[Any, ...]]] = {}
        # Per (dialect, width): the multi-row form of an INSERT, by row count (many_tuples).
        self._multi: dict[tuple[str, int], Callable[[int], str]] = {}

    def first(self, conn: Connection, **values: Any) -> Any:
        """The first result row (a tuple) or None."""
        return driver_execute(conn, *self.bound(conn, values)).fetchone()

    def bound_execute(self, conn: Connection, values: dict[str, Any]) -> None:
        """Run it (an UPDATE, say), ignoring any result."""
        driver_execute(conn, *self.bound(conn, values))

    def all(self, conn: Connection, values: dict[str, Any]) -> list[Any]:
        """Every result row (tuples)."""
        rows: list[Any] = driver_execute(conn, *self.bound(conn, values)).fetchall()
        return rows

    def bound(self, conn: Connection, values: dict[str, Any]) -> tuple[str, Any]:
        """The SQL for ``conn``'s dialect and its parameters in the driver's form (for EXPLAIN)."""
        sql, defaults, order = self._compiled.get(conn.dialect.name) or self._compile(conn)
        params = {**defaults, **values}
        return sql, tuple(params[n] for n in order) if order is not None else params

    def many(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Execute once per row (an executemany); each row gives every parameter."""
        sql, _, order = self._compiled.get(conn.dialect.name) or self._compile(conn)
        if order is None:
            driver_execute(conn, sql, rows, many=True)
            return
        getter = self._row_getters.get(conn.dialect.name)
        if getter is None:
            getter = self._row_getters[conn.dialect.name] = _picker(order)
        driver_execute(conn, sql, list(map(getter, rows)), many=True)

    def many_tuples(self, conn: Connection, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        """As :meth:`many` with each row a tuple of the ``columns``' values, which saves
        building a dict per row where the driver takes them in that order anyway. An INSERT
        of several rows on a positional driver (SQLite) runs as multi-row VALUES statements:
        a statement of up to _ROWS_PER_INSERT rows costs about half of an executemany."""
        sql, _, order = self._compiled.get(conn.dialect.name) or self._compile(conn)
        if order == columns and len(rows) > 1:
            multi = self._multi_row(conn.dialect.name, sql, len(columns))
            if multi is not None:
                step = max(1, min(_ROWS_PER_INSERT, _MAX_PARAMETERS // len(columns)))
                for start in range(0, len(rows), step):
                    chunk = rows[start : start + step]
                    driver_execute(conn, multi(len(chunk)), [value for row in chunk for value in row])
                return
        if order == columns:
            params: list[Any] = rows
        elif order is None:
            params = [dict(zip(columns, row, strict=True)) for row in rows]
        else:
            params = list(map(_picker(tuple(columns.index(n) for n in order)), rows))
        driver_execute(conn, sql, params, many=True)

    def _multi_row(self, dialect: str, sql: str, width: int) -> Callable[[int], str] | None:
        """``n`` → this INSERT with ``n`` rows of placeholders, if its SQL ends in one row of
        ``?`` (SQLite's form); None otherwise (the caller uses an executemany)."""
        key = (dialect, width)
        found = self._multi.get(key)
        if found is None:
            group = "(" + ", ".join(["?"] * width) + ")"
            if not (sql.startswith("INSERT ") and sql.endswith(" VALUES " + group)):
                return None
            head = sql[: -len(group)]
            found = self._multi[key] = functools.lru_cache(maxsize=_ROWS_PER_INSERT)(
                lambda n: head + ", ".join([group] * n)
            )
        return found

    def _compile(self, conn: Connection) -> tuple[str, dict[str, Any], tuple[str, ...] | None]:
        compiled = self._statement.compile(dialect=conn.dialect)
        # The literals' bound values; the caller's (required) parameters are filled per call.
        callers = {name: None for name, bind in compiled.binds.items() if bind.required}
        order = tuple(compiled.positiontup) if compiled.positional else None
        self._compiled[conn.dialect.name] = (compiled.string, dict(compiled.construct_params(callers)), order)
        return self._compiled[conn.dialect.name]


def _picker(keys: tuple[Any, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """row → (row[k] for k in keys) as a tuple, in C (itemgetter)."""
    if len(keys) == 1:  # itemgetter of one key returns the value, not a 1-tuple
        (key,) = keys
        return lambda row: (row[key],)
    return operator.itemgetter(*keys)


def driver_execute(conn: Connection, statement: str, params: Any = (), *, many: bool = False) -> Any:
    """Run ``statement`` on the driver connection under ``conn`` (in its transaction); return
    the driver's cursor. Driver errors are wrapped as SQLAlchemy wraps them elsewhere, without
    the parameters (they may be wrapped key values: hide_parameters)."""
    driver = conn.connection.driver_connection
    assert driver is not None
    try:
        cursor = driver.cursor()
        if many:
            cursor.executemany(statement, params)
        else:
            cursor.execute(statement, params)
        return cursor
    except conn.dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(statement, None, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect) from exc
