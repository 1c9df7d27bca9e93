"""The repository: transactions over the managed-object store, SQLite or PostgreSQL.

Usage::

    repo = Repository("sqlite:////var/lib/strongroom/objects.db")
    repo.create_schema()
    with repo.write() as s:          # commits durably on normal exit, rolls back on exception
        s.insert(record)
    with repo.read() as s:
        s.get(uid, attributes=False)

Several processes may share one store (one SQLite file on a local file system, or one
PostgreSQL database). Each process must create its own :class:`Repository` *after* forking:
pooled connections must never cross a fork. As a safety net, a Repository used in a process
other than the one that created it drops (without closing) the connections it inherited and
opens new ones.

SQLite's own machinery (pragmas, the writer lock, read connections, erasing the
write-ahead log after a Destroy) is in :mod:`.sqlite`; PostgreSQL needs none of it.

Destroy: a write transaction that sets a ``wrapped_value`` to None or deletes an object
*erases* it. On SQLite the erasure is complete when ``write()`` returns: secure_delete zeroes
the value in its page and the transaction ends by truncating the write-ahead log (see
:mod:`.sqlite`). On PostgreSQL the UPDATE leaves the old row version as a dead tuple until
VACUUM reclaims it (and PostgreSQL's own WAL segments keep it until they are recycled).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    RootTransaction,
    Update,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.engine import make_url

from . import locate as _locate
from . import sqlite as _sqlite
from .checkpoint import WalCheckpointer
from .driver import DriverStatement, driver_execute
from .records import LocateQuery, ObjectRecord, StoredAttribute
from .schema import create_schema, managed_objects, object_attributes, sequence_counter

__all__ = ["Repository", "Session", "TransactionAborted"]

_o = managed_objects.c
_a = object_attributes.c

# libpq's PQTRANS_INERROR: the transaction has failed (psycopg and psycopg2 both report it).
_PQTRANS_INERROR = 3


class TransactionAborted(Exception):
    """A PostgreSQL write transaction could not commit because one of its statements had
    failed (and the error was caught without a savepoint). Everything was rolled back."""


# Columns update() may change; the rest of a row is fixed at insert.
UPDATABLE_COLUMNS = frozenset({"state", "wrapped_value", "custody_key", "algorithm", "length", "value_format"})
# What the audit trail calls a column's change (the KMIP attribute it is, or the value).
_COLUMN_ATTRIBUTES = {
    "state": "State",
    "wrapped_value": "(value)",
    "custody_key": "(value)",
    "algorithm": "Cryptographic Algorithm",
    "length": "Cryptographic Length",
    "value_format": "(value)",
}

# Statements are built once: SQLAlchemy then finds their compiled form in its cache by
# identity of structure, and the hot Get path skips most of the compilation machinery.
# Column order matches ObjectRecord's positional fields (sequence last).
_GET = select(
    _o.uid,
    _o.object_type,
    _o.owner,
    _o.state,
    _o.created,
    _o.algorithm,
    _o.length,
    _o.value_format,
    _o.wrapped_value,
    _o.custody_key,
    _o.sequence,
    _o.tenant,
).where(_o.uid == bindparam("uid"))
_GET_FOR_UPDATE = _GET.with_for_update()


def _attribute_number(name: str) -> Any:
    """The number value of the object's first instance of attribute ``name`` (NULL if none),
    as a scalar subquery of the object read: a look-up under the object's key. Not an
    aggregate: SQLite answers min(number_value) from the (name, number_value) index and
    PostgreSQL, before statistics, scans it by value, both reading that attribute's row of
    every object in the store (1.4 ms a Get at 20,000 objects)."""
    return select(_a.number_value).where(_a.uid == _o.uid, _a.name == name).order_by(_a.idx).limit(1).scalar_subquery()


# Folded into the value read (the Get hot path stays one round trip): what may forbid a
# release in the clear (Extractable false, Sensitive true) and whether the object is still
# Fresh (never served by Get; no "Fresh" row means it is).
_GET_VALUE = _GET.add_columns(
    _attribute_number("Extractable"), _attribute_number("Sensitive"), _attribute_number("Fresh")
)
_JOINED = 15  # where the columns of _release_with's joined attributes start


_DRIVER_GET_VALUE = DriverStatement(_GET_VALUE)
_EXISTS = select(_o.uid).where(_o.uid == bindparam("uid"))

_ATTR_COLUMNS = (_a.name, _a.idx, _a.value, _a.text_value, _a.number_value)
_ATTRS = select(*_ATTR_COLUMNS).where(_a.uid == bindparam("uid"))
_ATTRS_NAMED = _ATTRS.where(_a.name.in_(bindparam("names", expanding=True)))
# PostgreSQL orders text by the database collation, which need not be code-point order;
# "C" makes both backends agree (SQLite's BINARY is code-point order for UTF-8).
_ORDER_SQLITE = (_a.name, _a.idx)
_ORDER_POSTGRESQL = (_a.name.collate("C"), _a.idx)
# Keyed by "is PostgreSQL": (all attributes, named attributes).
_ATTRS_ORDERED = {
    False: (_ATTRS.order_by(*_ORDER_SQLITE), _ATTRS_NAMED.order_by(*_ORDER_SQLITE)),
    True: (_ATTRS.order_by(*_ORDER_POSTGRESQL), _ATTRS_NAMED.order_by(*_ORDER_POSTGRESQL)),
}

_DRIVER_GET = DriverStatement(_GET)
# Per (names, is PostgreSQL): the named attributes' statement, the names as literal binds.
_DRIVER_NAMED: dict[tuple[tuple[str, ...], bool], DriverStatement] = {}


def _named_attributes(names: tuple[str, ...], postgresql: bool) -> DriverStatement:
    statement = _DRIVER_NAMED.get((names, postgresql))
    if statement is None:
        binds: list[Any] = [bindparam(f"name_{i}", name) for i, name in enumerate(names)]
        order = _ORDER_POSTGRESQL if postgresql else _ORDER_SQLITE
        statement = DriverStatement(_ATTRS.where(_a.name.in_(binds)).order_by(*order))
        _DRIVER_NAMED[(names, postgresql)] = statement
    return statement


# Per (names, is PostgreSQL): the value read with those attributes joined in (an alias, so
# that the value read's own subqueries on the attribute table stay correlated to the object).
_RELEASE_WITH: dict[tuple[tuple[str, ...], bool], DriverStatement] = {}


def _release_with(names: tuple[str, ...], postgresql: bool) -> DriverStatement:
    statement = _RELEASE_WITH.get((names, postgresql))
    if statement is None:
        joined = object_attributes.alias("named")
        binds: list[Any] = [bindparam(f"joined_name_{i}", name) for i, name in enumerate(names)]
        order = (joined.c.name.collate("C") if postgresql else joined.c.name, joined.c.idx)
        columns = (joined.c.name, joined.c.idx, joined.c.value, joined.c.text_value, joined.c.number_value)
        select_named = (
            _GET_VALUE.add_columns(*columns)
            .select_from(managed_objects.outerjoin(joined, and_(joined.c.uid == _o.uid, joined.c.name.in_(binds))))
            .order_by(*order)
        )
        statement = _RELEASE_WITH[(names, postgresql)] = DriverStatement(select_named)
    return statement


def _release_record(row: Any) -> ObjectRecord:
    # row[:10] is the first ten fields in order; mypy cannot see a slice's length.
    extractable, sensitive, fresh = row[12:_JOINED]
    # Extractable false is the stronger restriction: nothing releases the value at all.
    withheld_by = "Extractable" if extractable == 0 else "Sensitive" if sensitive == 1 else None
    return ObjectRecord(*row[:10], sequence=row[10], tenant=row[11], withheld_by=withheld_by, fresh=fresh != 0)  # type: ignore[misc]


_NEXT_SEQUENCES = (
    update(sequence_counter)
    .where(sequence_counter.c.id == 1)
    .values(value=sequence_counter.c.value + bindparam("count"))
    .returning(sequence_counter.c.value)
)
_NEXT_SEQUENCES_DRIVER = DriverStatement(_NEXT_SEQUENCES)
# Inserts name every column (the SQLite path supplies ``sequence`` itself): the driver-level
# form binds exactly these.
_INSERT_OBJECT_DRIVER = DriverStatement(
    insert(managed_objects).values({c.name: bindparam(c.name) for c in managed_objects.c})
)
_INSERT_OBJECT_RETURNING = insert(managed_objects).returning(_o.sequence)
_INSERT_ATTRIBUTE = insert(object_attributes)
_INSERT_ATTRIBUTE_DRIVER = DriverStatement(
    insert(object_attributes).values({c.name: bindparam(c.name) for c in object_attributes.c})
)
_ATTRIBUTE_COLUMNS = ("uid", "name", "idx", "value", "text_value", "number_value")
_DELETE_OBJECT = delete(managed_objects).where(_o.uid == bindparam("uid"))
_DELETE_NAME = delete(object_attributes).where(_a.uid == bindparam("uid"), _a.name == bindparam("name"))
_DELETE_INSTANCE = _DELETE_NAME.where(_a.idx == bindparam("idx"))


# PostgreSQL: the object row locked against other writers of its attributes (see
# set_attributes). NO KEY UPDATE, not UPDATE: the attribute rows' foreign key takes KEY SHARE
# locks on this row, which NO KEY UPDATE does not conflict with, so two transactions that
# both inserted attributes of the object cannot deadlock on upgrading to it.
_LOCK_OBJECT = select(_o.uid).where(_o.uid == bindparam("uid")).with_for_update(key_share=True)


@functools.lru_cache(maxsize=64)
def _update_statement(columns: tuple[str, ...]) -> Update:
    # Keyed by the sorted column names so each combination is built (and compiled) once.
    return (
        update(managed_objects).where(_o.uid == bindparam("_uid")).values({name: bindparam(name) for name in columns})
    )


def _attribute_rows(uid: str, values: Sequence[StoredAttribute]) -> list[dict[str, Any]]:
    return [
        {"uid": uid, "name": a.name, "idx": a.index, "value": a.value, "text_value": a.text, "number_value": a.number}
        for a in values
    ]


class Session:
    """One transaction on the store, opened by :meth:`Repository.read` or :meth:`Repository.write`.

    Wraps one SQLAlchemy Core connection; not thread-safe. Database errors (a duplicate uid
    on insert, attributes for an unknown uid) surface as ``sqlalchemy.exc`` exceptions.
    """

    __slots__ = (
        "_connection",
        "_opener",
        "_pending",
        "_writable",
        "_postgresql",
        "_attrs_all",
        "_attrs_named",
        "_locked",
        "erased",
        "changes",
    )

    def __init__(
        self,
        conn: Connection | None,
        *,
        writable: bool,
        postgresql: bool,
        opener: Callable[[], Connection] | None = None,
    ) -> None:
        self._connection = conn
        self._opener = opener
        self._pending: list[ObjectRecord] = []
        self._writable = writable
        self._postgresql = postgresql
        self._attrs_all, self._attrs_named = _ATTRS_ORDERED[postgresql]
        # PostgreSQL: the objects whose rows this transaction has locked (get for_update,
        # set_attributes), so that a second change of the same object skips the round trip.
        self._locked: set[str] = set()
        #: Whether a wrapped value was removed (Destroy) or an object deleted: on SQLite the
        #: transaction then ends by erasing the write-ahead log (see :mod:`.sqlite`).
        self.erased = False
        #: The names of the attributes (and columns) written in this transaction, in order:
        #: the dispatcher records each batch item's share in its audit record.
        self.changes: list[str] = []

    @property
    def _conn(self) -> Connection:
        """The connection, its transaction begun; buffered inserts written first.

        A write session starts its transaction at its first statement, not when it is
        opened, and :meth:`insert` only buffers: so a request that creates objects does all
        its work (key generation, wrapping, encoding) before taking SQLite's write lock, which
        it then holds just for the statements and the commit. That lets worker processes
        overlap their CPU work instead of queueing for the lock with it.
        """
        conn = self._connection
        if conn is None:
            assert self._opener is not None
            conn = self._connection = self._opener()
        if self._pending:
            self._flush_inserts(conn)
        return conn

    @property
    def aborted(self) -> bool:
        """Whether a statement failed in a way that spoiled the transaction: PostgreSQL then
        refuses every further statement until it ends (SQLite keeps a transaction usable)."""
        conn = self._connection
        return self._postgresql and conn is not None and _postgresql_aborted(conn)

    @property
    def started(self) -> bool:
        """Whether a statement has run (so there is a transaction to commit)."""
        return self._connection is not None or bool(self._pending)

    @property
    def connection(self) -> Connection:
        """The SQLAlchemy Core connection, inside this session's transaction (begun now if
        it was not yet)."""
        return self._conn

    @property
    def writable(self) -> bool:
        """Whether this session came from ``write()``."""
        return self._writable

    @property
    def erases_in_place(self) -> bool:
        """Whether a value set to None is gone from every store file once committed (SQLite:
        secure_delete and the log cut); PostgreSQL keeps the old row version until VACUUM."""
        return not self._postgresql

    def _require_writable(self) -> None:
        if not self._writable:
            raise RuntimeError("this session is read-only; open it with Repository.write()")

    # -- reads ---------------------------------------------------------------------------

    def get(self, uid: str, *, attributes: bool = True, for_update: bool = False) -> ObjectRecord | None:
        """The object ``uid`` or None. ``attributes=False`` leaves ``record.attributes`` empty
        and costs one SELECT. ``for_update`` (write sessions only) locks the row until the
        transaction ends on PostgreSQL; SQLite write transactions are already exclusive."""
        if for_update:
            self._require_writable()
            stmt = _GET_FOR_UPDATE
        else:
            stmt = _GET
        row = self._conn.execute(stmt, {"uid": uid}).first()
        if row is None:
            return None
        if for_update:
            self._locked.add(uid)
        record = ObjectRecord(*row[:10], sequence=row[10], tenant=row[11])
        if attributes:
            record.attributes = self.get_attributes(uid)
        return record

    def get_for_release(self, uid: str, names: tuple[str, ...] = ()) -> ObjectRecord | None:
        """The object ``uid`` for releasing its value, with only the attributes ``names``, in
        one SELECT: ``withheld_by`` names the attribute that forbids a release in the clear,
        if any; ``fresh`` says whether the object has never been served (no "Fresh"
        attribute saying otherwise). ``names``: what the access policy reads (joined in,
        rather than a second round trip on every Get)."""
        if not names:
            row = _DRIVER_GET_VALUE.first(self._conn, uid=uid)
            if row is None:
                return None
            return _release_record(row)
        rows = _release_with(names, self._postgresql).all(self._conn, {"uid": uid})
        if not rows:
            return None
        record = _release_record(rows[0])
        record.attributes = [StoredAttribute(*r[_JOINED:]) for r in rows if r[_JOINED] is not None]
        return record

    def get_for_use(self, uid: str, names: tuple[str, ...]) -> ObjectRecord | None:
        """The object ``uid`` with the attributes ``names`` only, or None: what a cryptographic
        operation reads on every call, in two statements run on the driver (see
        :class:`DriverStatement`; SQLAlchemy's expanding IN cost more than the query)."""
        row = _DRIVER_GET.first(self._conn, uid=uid)
        if row is None:
            return None
        record = ObjectRecord(*row[:10], sequence=row[10], tenant=row[11])  # type: ignore[misc]
        record.attributes = self.get_named_attributes(uid, names)
        return record

    def get_named_attributes(self, uid: str, names: tuple[str, ...]) -> list[StoredAttribute]:
        """The instances of the attributes ``names`` of ``uid``, ordered as by
        :meth:`get_attributes`, in one statement run on the driver (the hot path's form)."""
        return [StoredAttribute(*r) for r in _named_attributes(names, self._postgresql).all(self._conn, {"uid": uid})]

    def get_attributes(self, uid: str, names: Sequence[str] | None = None) -> list[StoredAttribute]:
        """The attribute instances of ``uid`` (all, or only those named), ordered by name in
        code-point order, then index. Empty for an unknown uid."""
        if names is None:
            result = self._conn.execute(self._attrs_all, {"uid": uid})
        elif not names:
            return []
        else:
            result = self._conn.execute(self._attrs_named, {"uid": uid, "names": list(names)})
        return [StoredAttribute(*row) for row in result]

    def locate(self, query: LocateQuery) -> list[str]:
        """The uids of the objects matching ``query``, in its order and page."""
        found = _locate.locate_statement(query)
        if found is None:
            return []
        _, statement, params = found
        return [row[0] for row in statement.all(self._conn, params)]

    def count(self, query: LocateQuery) -> int:
        """How many objects match ``query``, ignoring ``max_items`` and ``offset_items``."""
        counted = _locate.count_statement(query)
        if counted is None:
            return 0
        _, statement, params = counted
        return int(statement.all(self._conn, params)[0][0])

    # -- writes --------------------------------------------------------------------------

    def insert(self, record: ObjectRecord) -> None:
        """Insert the object and its attributes; sets ``record.sequence`` once written. Until
        the session's first statement, inserts are buffered and written by that statement or
        at commit (see :attr:`_conn`); database errors then surface there."""
        self._require_writable()
        self.changes.extend(dict.fromkeys(a.name for a in record.attributes))
        self._pending.append(record)
        if self._connection is not None:
            # Past the first statement (inside a savepoint, say) errors must surface here.
            self._flush_inserts(self._connection)

    def _flush_inserts(self, conn: Connection) -> None:
        records, self._pending = self._pending, []
        rows = [
            {
                "uid": r.uid,
                "object_type": r.object_type,
                "owner": r.owner,
                "tenant": r.tenant,
                "state": r.state,
                "created": r.created,
                "algorithm": r.algorithm,
                "length": r.length,
                "value_format": r.value_format,
                "wrapped_value": r.wrapped_value,
                "custody_key": r.custody_key,
            }
            for r in records
        ]
        # Straight to the driver (see DriverStatement): SQLAlchemy's per-row parameter
        # processing of these executemany calls was a tenth of a Create's server time.
        if self._postgresql:
            for record, params in zip(records, rows, strict=True):
                record.sequence = conn.execute(_INSERT_OBJECT_RETURNING, params).scalar_one()
        else:
            (last,) = _NEXT_SEQUENCES_DRIVER.first(conn, count=len(records))
            for offset, (record, params) in enumerate(zip(records, rows, strict=True)):
                params["sequence"] = record.sequence = last - len(records) + 1 + offset
            _INSERT_OBJECT_DRIVER.many(conn, rows)
        attributes = [(r.uid, a.name, a.index, a.value, a.text, a.number) for r in records for a in r.attributes]
        if attributes:
            _INSERT_ATTRIBUTE_DRIVER.many_tuples(conn, _ATTRIBUTE_COLUMNS, attributes)

    def update(self, uid: str, **columns: Any) -> None:
        """Change some of ``state``, ``wrapped_value``, ``custody_key``, ``algorithm``,
        ``length``, ``value_format``. KeyError if there is no object ``uid``; TypeError for
        any other column name."""
        self._require_writable()
        self.changes.extend(_COLUMN_ATTRIBUTES.get(c, c) for c in sorted(columns))
        unknown = columns.keys() - UPDATABLE_COLUMNS
        if unknown:
            raise TypeError(f"cannot update column(s) {sorted(unknown)}; allowed: {sorted(UPDATABLE_COLUMNS)}")
        if not columns:
            if self._conn.execute(_EXISTS, {"uid": uid}).first() is None:
                raise KeyError(uid)
            return
        stmt = _update_statement(tuple(sorted(columns)))
        if self._conn.execute(stmt, {"_uid": uid, **columns}).rowcount == 0:
            raise KeyError(uid)
        if "wrapped_value" in columns and columns["wrapped_value"] is None:
            self.erased = True

    def set_attributes(self, uid: str, name: str, values: Sequence[StoredAttribute]) -> None:
        """Replace every instance of attribute ``name`` with ``values`` (empty: remove them).

        On PostgreSQL the object's row is locked first (until the transaction ends). Without
        it two transactions replacing the same attribute at once (two first Gets of a Fresh
        key, on two workers or two nodes) both deleted nothing, both inserted, and the second
        failed on the primary key: READ COMMITTED's DELETE does not see the other's rows.
        With it the second waits, and its DELETE, a new statement, sees and removes them.
        SQLite's write transactions are already one at a time."""
        self._require_writable()
        self.changes.append(name)
        for value in values:
            if value.name != name:
                raise ValueError(f"set_attributes({name!r}) was given an instance of {value.name!r}")
        if self._postgresql and uid not in self._locked:
            self._conn.execute(_LOCK_OBJECT, {"uid": uid})
            self._locked.add(uid)
        self._conn.execute(_DELETE_NAME, {"uid": uid, "name": name})
        if values:
            self._conn.execute(_INSERT_ATTRIBUTE, _attribute_rows(uid, values))

    def delete_attribute(self, uid: str, name: str, index: int | None = None) -> bool:
        """Delete instance ``index`` of ``name``, or all of them if None; whether any was
        deleted. The other instances keep their indexes (KMIP indexes are stable)."""
        self._require_writable()
        self.changes.append(name)
        if index is None:
            result = self._conn.execute(_DELETE_NAME, {"uid": uid, "name": name})
        else:
            result = self._conn.execute(_DELETE_INSTANCE, {"uid": uid, "name": name, "idx": index})
        return result.rowcount > 0

    def delete(self, uid: str) -> None:
        """Delete the object and (by cascade) its attributes. KeyError if there is none."""
        self._require_writable()
        if self._conn.execute(_DELETE_OBJECT, {"uid": uid}).rowcount == 0:
            raise KeyError(uid)
        self.erased = True

    def savepoint(self) -> AbstractContextManager[None]:
        """A nested transaction: ``with s.savepoint(): ...`` rolls back the block's changes
        if it raises (the exception propagates) and keeps them otherwise."""
        return _Savepoint(self._conn)


class _Savepoint:
    __slots__ = ("_conn", "_nested")

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._nested = self._conn.begin_nested()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self._nested.commit()
        else:
            self._nested.rollback()


# durable=False (Repository.write): SQLite, around the transaction; PostgreSQL, inside it.
_SQLITE_RELAXED = "PRAGMA synchronous = NORMAL"
_SQLITE_DURABLE = "PRAGMA synchronous = FULL"
_POSTGRESQL_RELAXED = "SET LOCAL synchronous_commit = off"


class _Transaction:
    """The context manager behind read() and write(): a class rather than a generator
    because it runs on every Get and the generator machinery costs measurably more."""

    __slots__ = (
        "_engine",
        "_writable",
        "_postgresql",
        "_sqlite_begin",
        "_relaxed",
        "_lock",
        "_eraser",
        "_conn",
        "_tx",
        "_session",
    )

    def __init__(
        self,
        engine: Engine,
        writable: bool,
        postgresql: bool,
        sqlite_begin: str | None,
        lock: _sqlite.FileLock | None = None,
        eraser: _sqlite.LogEraser | None = None,
        *,
        relaxed: bool = False,
    ) -> None:
        self._engine = engine
        self._relaxed = relaxed
        self._writable = writable
        self._postgresql = postgresql
        self._sqlite_begin = sqlite_begin
        self._lock = lock
        self._eraser = eraser

    def __enter__(self) -> Session:
        self._conn: Connection | None = None
        if self._writable:
            # Begun at the session's first statement (see Session._conn).
            self._session = Session(None, writable=True, postgresql=self._postgresql, opener=self._open)
        else:
            self._session = Session(self._open(), writable=False, postgresql=self._postgresql)
        return self._session

    def _open(self) -> Connection:
        if self._lock is not None:
            self._lock.acquire()
        try:
            conn = self._engine.connect()
        except BaseException:
            if self._lock is not None:
                self._lock.release()
            raise
        try:
            if self._relaxed and self._sqlite_begin is not None:
                _sqlite.begin(conn, _SQLITE_RELAXED)  # a connection setting: set outside the transaction
            self._tx: RootTransaction = conn.begin()
            if self._sqlite_begin is not None:
                _sqlite.begin(conn, self._sqlite_begin)
            elif self._relaxed and self._postgresql:
                driver_execute(conn, _POSTGRESQL_RELAXED)
        except BaseException:
            conn.close()
            if self._lock is not None:
                self._lock.release()
            raise
        self._conn = conn
        return conn

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        session = self._session
        if exc_type is None and session.started:
            try:
                session.connection  # noqa: B018  (writes buffered inserts, beginning if needed)
            except BaseException:
                if self._conn is not None:
                    self._finish(commit=False)
                raise
        if self._conn is None:
            return  # nothing ran: no transaction, no lock
        self._finish(commit=exc_type is None)

    def _finish(self, *, commit: bool) -> None:
        conn = self._conn
        assert conn is not None
        connections = self._engine if isinstance(self._engine, _sqlite.ThreadConnections) else None
        kept = connections is not None and connections.kept(conn)
        ended = False
        try:
            if commit:
                if self._postgresql and _postgresql_aborted(conn):
                    self._tx.rollback()
                    raise TransactionAborted(
                        "a statement failed and its error was caught outside a savepoint; nothing was committed"
                    )
                self._tx.commit()
                eraser = self._eraser
                if eraser is not None and (self._session.erased or eraser.pending):
                    # Still under the writer lock, and before anything is acknowledged.
                    eraser.erase(conn)
            else:
                self._tx.rollback()
            if self._relaxed and self._sqlite_begin is not None:
                _sqlite.begin(conn, _SQLITE_DURABLE)  # the kept connection's next writer is durable again
            ended = True
        finally:
            if not (ended and kept):  # a kept connection stays open unless its end failed
                conn.close()
                if kept:
                    assert connections is not None
                    connections.discard()
            if self._lock is not None:
                self._lock.release()


def _postgresql_aborted(conn: Connection) -> bool:
    # After a failed statement PostgreSQL ignores everything up to the end of the transaction,
    # and COMMIT then silently rolls back: the caller would believe its writes durable.
    info = getattr(conn.connection.driver_connection, "info", None)
    return getattr(info, "transaction_status", None) == _PQTRANS_INERROR


class Repository:
    """The store at ``url`` (a SQLAlchemy URL: ``sqlite:///path/to/file.db`` or
    ``postgresql+psycopg://user@host/db``), with a pool of up to ``pool_size`` idle
    connections per process. Safe to share between the threads of one process; create one
    per process, after forking (see the module docstring).

    ``background_checkpoints`` (SQLite only; the server turns it on) runs the WAL checkpoints
    on a thread of this process instead of inside commits; see checkpoint.py."""

    def __init__(self, url: str, *, pool_size: int = 5, background_checkpoints: bool = False) -> None:
        parsed = make_url(url)
        self._sqlite = parsed.get_backend_name() == "sqlite"
        self._postgresql = parsed.get_backend_name() == "postgresql"
        if self._sqlite:
            _sqlite.validate_url(parsed)
        # hide_parameters: database errors end up in logs, and bound values (wrapped keys,
        # attribute values) have no business there.
        engine = create_engine(parsed, pool_size=pool_size, hide_parameters=True)
        read_engine: Engine
        write_engine: Engine
        if self._sqlite:
            event.listen(engine, "connect", _sqlite.on_connect)
            read_engine = write_engine = engine
        elif self._postgresql:
            # A consistent snapshot across the statements of a read (say get() then
            # get_attributes()), and the server refuses any write by mistake. Read-only
            # repeatable-read transactions never fail with serialisation errors.
            read_engine = engine.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            write_engine = engine
        else:
            read_engine = write_engine = engine
        self._engine = engine
        self._read_engine = read_engine
        self._write_engine = write_engine
        self._writer_lock = _sqlite.FileLock(f"{parsed.database}.writer-lock") if self._sqlite else None
        self._eraser = (
            _sqlite.LogEraser(
                _sqlite.checkpoint_lock_path(str(parsed.database)), _sqlite.backup_lock_path(str(parsed.database))
            )
            if self._sqlite
            else None
        )
        self._connections = _sqlite.ThreadConnections(engine) if self._sqlite else None
        self._checkpointer = (
            WalCheckpointer(parsed.database, _sqlite.BACKGROUND_CHECKPOINT_INTERVAL)
            if self._sqlite and background_checkpoints and parsed.database
            else None
        )
        self._pid = os.getpid()

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for diagnostics and tests; use read() and write() to work."""
        return self._engine

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    def _check_fork(self) -> None:
        pid = os.getpid()
        if pid != self._pid:
            # The parent still owns these connections; close=False leaves them alone.
            self._engine.dispose(close=False)
            if self._connections is not None:
                self._connections.forget()
            if self._checkpointer is not None:  # its thread stayed in the parent
                self._checkpointer = WalCheckpointer(self._checkpointer.path, self._checkpointer.interval)
            self._pid = pid

    def create_schema(self) -> None:
        """Create the tables if missing (idempotent; safe from several processes at once)."""
        with self.write() as session:
            create_schema(session.connection)

    def read(self) -> AbstractContextManager[Session]:
        """``with repo.read() as s:`` a read-only transaction (SQLite: a deferred BEGIN;
        PostgreSQL: REPEATABLE READ, READ ONLY). Write methods of ``s`` raise RuntimeError."""
        self._check_fork()
        if self._connections is not None:
            return _Transaction(self._connections, False, False, "BEGIN")  # type: ignore[arg-type]
        return _Transaction(self._read_engine, False, self._postgresql, None)

    def write(self, *, durable: bool = True) -> AbstractContextManager[Session]:
        """``with repo.write() as s:`` a write transaction, committed (durably) when the block
        ends normally and rolled back if it raises. SQLite: BEGIN IMMEDIATE, so write
        transactions of all processes run one at a time; PostgreSQL: READ COMMITTED, lock
        rows with ``s.get(uid, for_update=True)``.

        ``durable=False`` commits without waiting for the disk (SQLite: synchronous=NORMAL for
        this transaction, the log synced by the next checkpoint or durable commit; PostgreSQL:
        synchronous_commit off, the WAL writer flushing it within wal_writer_delay). The
        transaction is as atomic and as ordered as any other, and survives the process
        crashing; only a power cut or an operating system crash can lose it, with whatever
        was committed after it, before the next durable commit. For records of what changed
        nothing (the audit records of reads), never for a change."""
        self._check_fork()
        if self._checkpointer is not None and not self._checkpointer.running:
            self._checkpointer.start()  # at the first write, and again after dispose()
        return _Transaction(
            self._connections or self._write_engine,  # type: ignore[arg-type]
            True,
            self._postgresql,
            "BEGIN IMMEDIATE" if self._sqlite else None,
            self._writer_lock,
            self._eraser,
            relaxed=not durable,
        )

    def dispose(self) -> None:
        """Close all pooled connections and stop background checkpoints; the repository
        reconnects (and resumes them) if used again."""
        if self._checkpointer is not None and self._pid == os.getpid():
            self._checkpointer.stop()
        if self._connections is not None:
            self._connections.discard()
        self._engine.dispose()
