"""SQLite-only machinery of the repository: connection set-up, the cross-process writer lock,
the per-thread read connections, and erasing destroyed values from the write-ahead log.

Set on every new connection (:func:`on_connect`):

* WAL journal, so readers never block the writer nor the writer the readers;
* ``synchronous=FULL``: a commit is on disk before ``write()`` returns, so a Unique
  Identifier handed to a client survives a power cut;
* ``secure_delete=ON``: deleted or overwritten content (a destroyed object's wrapped value,
  a freed page) is overwritten with zeros in the page instead of lingering as free space;
* ``foreign_keys=ON`` (attribute rows go with their object) and a busy timeout;
* ``case_sensitive_like=ON``, so a Locate prefix is case-sensitive as on PostgreSQL;
* Python's sqlite3 transaction handling is switched off and the repository emits BEGIN itself:
  ``BEGIN IMMEDIATE`` for ``write()``, which takes the write lock up front. A deferred BEGIN
  would take it at the first write, and two processes that both read first and then try to
  write would deadlock, one of them failing with "database is locked" whatever the timeout.

secure_delete covers the database file; the write-ahead log is the other place a value
lives on. Every commit appends whole pages to it, so the page that held a value before its
Destroy stays in the log (and stale frames of earlier log cycles stay in the file's tail)
until the log is rewritten. A write transaction that erased a value therefore ends with a
TRUNCATE checkpoint (:func:`erase_log`), before the writer lock is released and before the
caller acknowledges anything: every page goes back into the (secure-deleted) database file
and the log file is cut to zero bytes.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from .driver import driver_execute

log = logging.getLogger("strongroom.storage")

__all__ = [
    "BACKGROUND_CHECKPOINT_INTERVAL",
    "FileLock",
    "LogEraser",
    "LogNotErased",
    "backup_lock_path",
    "backup_reading",
    "ThreadConnections",
    "begin",
    "checkpoint_lock_path",
    "erase_log",
    "on_connect",
    "validate_url",
]

BUSY_TIMEOUT_MS = 5000
# Pages of WAL before a commit copies them back into the database file. SQLite's default of
# 1000 checkpoints every few hundred Creates; with time-ordered identifiers the same pages are
# written again and again, so a larger interval folds many writes of a page into one copy.
# With background checkpoints (see checkpoint.py) this is only the fallback.
WAL_CHECKPOINT_PAGES = 10000
# Seconds between background checkpoints: a few hundred commits' worth of pages each.
BACKGROUND_CHECKPOINT_INTERVAL = 0.2
# How long erase_log keeps trying. Each attempt already waits up to the busy timeout for
# readers to leave the log; a retry is for another connection's checkpoint in progress
# (SQLite refuses a second checkpointer at once instead of waiting for it).
_ERASE_DEADLINE = 10.0


def checkpoint_lock_path(database: str) -> str:
    """The lock file that keeps background checkpoints out of :func:`erase_log`'s way."""
    return f"{database}.checkpoint-lock"


def backup_lock_path(database: str) -> str:
    """The lock file ``strongroom backup`` holds (shared) while it reads one snapshot of the
    store: meanwhile the log cannot be cut, so :class:`LogEraser` waits for the backup's end
    instead of for its deadline on every write."""
    return f"{database}.backup-lock"


@contextlib.contextmanager
def backup_reading(database: str) -> Iterator[None]:
    """Hold the backup lock of ``database`` (shared: backups may overlap) while reading it."""
    fd = os.open(backup_lock_path(database), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock


class LogNotErased(Exception):
    """The write-ahead log could not be truncated in time (a reader held it for seconds)."""


def validate_url(url: URL) -> None:
    database = url.database or ""
    if database in ("", ":memory:") or url.query.get("mode") == "memory":
        raise ValueError("Strongroom needs an SQLite database file (several processes share it), not an in-memory one")


def on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    """SQLAlchemy "connect" listener: the pragmas of the module docstring."""
    # Take transaction control from Python's sqlite3 module: begin() emits BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # busy_timeout first: switching to WAL itself may have to wait for another process.
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA secure_delete = ON")
        cursor.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA case_sensitive_like = ON")
    finally:
        cursor.close()


def begin(conn: Connection, statement: str) -> None:
    """Open the SQLite transaction that SQLAlchemy's begin() only records.

    SQLAlchemy's documented recipe emits BEGIN from a "begin" event listener. Any connection
    event listener, though, makes SQLAlchemy dispatch events around every statement of the
    engine, and running BEGIN through the full execution path costs as much again: together
    they doubled the cost of a Get. So the statement goes straight to the driver, with its
    errors (a busy timeout, say) wrapped as SQLAlchemy's are everywhere else.
    """
    driver_execute(conn, statement)


def erase_log(conn: Connection, checkpoint_lock: FileLock) -> None:
    """Copy the whole write-ahead log into the database file and truncate it to zero bytes.

    Call it outside a transaction, holding the writer lock (so no writer of ours appends
    meanwhile). ``checkpoint_lock`` keeps the background checkpointers of every process off
    (they skip a round while it is held): SQLite lets one checkpoint run at a time and
    refuses the others rather than queueing them. Readers still in the log are waited for by
    SQLite's busy handler; new readers start from the database file once it is complete.
    Raises LogNotErased if the log still holds frames at the deadline.
    """
    deadline = time.monotonic() + _ERASE_DEADLINE
    with checkpoint_lock:
        while True:
            busy, frames, _ = driver_execute(conn, "PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy == 0 and frames == 0:
                return
            if time.monotonic() >= deadline:
                raise LogNotErased(f"the write-ahead log still holds {frames} frames (busy={busy})")
            time.sleep(0.005)


class LogEraser:
    """Runs :func:`erase_log` after the write transactions that erased a value.

    Should the log not be erased in time (a reader holding it for seconds), the Destroy has
    still been committed, and so have the writes grouped with it: failing them now would tell
    their clients otherwise. The erasure stays ``pending`` instead, logged, and the next write
    transaction of this process tries again.

    While a backup reads its snapshot (:func:`backup_reading`) the log cannot be cut at all:
    the erasure waits, pending, for the first write after the backup, so writes never stall on
    it. The backup's snapshot, taken before the Destroy, holds the value (wrapped) anyway.
    """

    __slots__ = ("_lock", "_backup", "pending")

    def __init__(self, checkpoint_lock_path: str, backup_lock_path: str | None = None) -> None:
        self._lock = FileLock(checkpoint_lock_path)
        self._backup = FileLock(backup_lock_path) if backup_lock_path is not None else None
        self.pending = False

    def _backup_running(self) -> bool:
        if self._backup is None:
            return False
        if not self._backup.try_acquire():
            return True
        self._backup.release()
        return False

    def erase(self, conn: Connection) -> None:
        if self._backup_running():
            if not self.pending:
                log.warning("a backup is reading the store: a destroyed value leaves the write-ahead log after it")
            self.pending = True
            return
        try:
            erase_log(conn, self._lock)
        except (LogNotErased, DBAPIError) as exc:
            self.pending = True
            log.error("a destroyed value may remain in the write-ahead log until the next write: %s", exc)
            return
        self.pending = False


class ThreadConnections:
    """One SQLite connection per thread kept open for its transactions, reads and writes.

    A read is one short transaction; taking a connection from the pool and building its
    SQLAlchemy wrapper cost as much as the query (a Get's read went from 33 to 17 µs
    without it), and as much again for the write transaction that records a batch of reads
    in the audit trail. Connections are per thread because SQLAlchemy connections are not
    shared. A transaction opened inside another on the same thread (the kept connection
    busy) gets a pooled connection of its own, closed when it ends (see :meth:`kept`).
    """

    __slots__ = ("_engine", "_local")

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._local = threading.local()

    def connect(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._local.conn = self._engine.connect()
        elif conn.in_transaction():
            return self._engine.connect()
        return conn

    def kept(self, conn: Connection) -> bool:
        """Whether ``conn`` is this thread's kept connection (not to be closed after use)."""
        return conn is getattr(self._local, "conn", None)

    def discard(self) -> None:
        """Stop using this thread's connection (closing it if still open)."""
        conn: Connection | None = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None and not conn.closed:
            conn.close()

    def forget(self) -> None:
        """After fork: the parent owns the open connections; leave them alone."""
        self._local = threading.local()


class FileLock:
    """An exclusive ``flock`` on ``path``, shared by all processes of a store.

    As the writer lock it serialises the SQLite writers of all processes. BEGIN IMMEDIATE
    alone serialises them too, but a writer that finds the database locked waits in SQLite's
    busy handler, which sleeps 1, 2, 5 ... 100 ms between attempts: under a steady write load
    that turned a 1 ms transaction into a 100 ms p99. A blocked ``flock`` wakes as soon as the
    holder releases it, so writers queue instead of polling. As the checkpoint lock it keeps
    background checkpoints out of the way of :func:`erase_log`.
    """

    __slots__ = ("_path", "_fd", "_pid")

    def __init__(self, path: str) -> None:
        self._path = path
        self._fd: int | None = None
        self._pid = 0

    def _descriptor(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            # A descriptor inherited across fork shares the parent's lock: open our own.
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        return self._fd

    def acquire(self) -> None:
        fcntl.flock(self._descriptor(), fcntl.LOCK_EX)

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; whether it was taken."""
        try:
            fcntl.flock(self._descriptor(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
