"""Statements run straight on the database driver's connection, inside a SQLAlchemy
transaction: the few hot statements whose SQLAlchemy execution cost more than the query."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

__all__ = ["DriverStatement", "driver_execute"]


class DriverStatement:
    """A statement compiled once per dialect and run straight on the driver's connection.

    For the hot paths only (a Get's read, a Create's inserts): SQLAlchemy's execution
    machinery (context, per-row parameter processing, result wrapper) cost three times the
    query itself there. The statement still comes from the same table definitions and runs
    in the session's transaction; its result columns need no type processing (integers,
    text, bytes) on either backend.
    """

    __slots__ = ("_statement", "_compiled")

    def __init__(self, statement: Any) -> None:
        self._statement = statement
        self._compiled: dict[str, tuple[str, dict[str, Any], tuple[str, ...] | None]] = {}

    def first(self, conn: Connection, **values: Any) -> Any:
        """The first result row (a tuple) or None."""
        sql, defaults, order = self._compiled.get(conn.dialect.name) or self._compile(conn)
        params = {**defaults, **values}
        return driver_execute(conn, sql, tuple(params[n] for n in order) if order is not None else params).fetchone()

    def many(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Execute once per row (an executemany); each row gives every parameter."""
        sql, _, order = self._compiled.get(conn.dialect.name) or self._compile(conn)
        params = [tuple(row[n] for n in order) for row in rows] if order is not None else rows
        driver_execute(conn, sql, params, many=True)

    def _compile(self, conn: Connection) -> tuple[str, dict[str, Any], tuple[str, ...] | None]:
        compiled = self._statement.compile(dialect=conn.dialect)
        # The literals' bound values; the caller's (required) parameters are filled per call.
        callers = {name: None for name, bind in compiled.binds.items() if bind.required}
        order = tuple(compiled.positiontup) if compiled.positional else None
        self._compiled[conn.dialect.name] = (compiled.string, dict(compiled.construct_params(callers)), order)
        return self._compiled[conn.dialect.name]


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
