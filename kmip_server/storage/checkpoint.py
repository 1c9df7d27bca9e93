"""Copying SQLite's write-ahead log back into the database file, off the commit path.

Left to itself, SQLite checkpoints inside a commit: the commit that takes the WAL past
``wal_autocheckpoint`` pages copies the log into the database file and syncs it while it
still holds the write lock, and every writer of every worker waits behind it. At full Create
load that was a 30-60 ms stall about once a second, and it set the p99 latency. A thread in
each server process runs PASSIVE checkpoints instead, every fraction of a second: a passive
checkpoint never takes the write lock, so commits go on while pages are copied, and Python's
sqlite3 releases the GIL while SQLite works, so the worker's requests go on too. The commit
path keeps its own threshold as the fallback should this thread fall behind or stop.

After a Destroy the writer truncates the log (``sqlite.erase_log``) under the store's
checkpoint lock; SQLite runs one checkpoint at a time and refuses, rather than queues, a
second, so this thread skips its round while that lock is held.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time

from .sqlite import FileLock, checkpoint_lock_path

__all__ = ["WalCheckpointer"]

log = logging.getLogger("strongroom.storage")

# A failure is logged at most this often (a full disk would otherwise log every interval).
_WARN_EVERY = 60.0


class WalCheckpointer:
    """A daemon thread checkpointing the SQLite file at ``path`` every ``interval`` seconds."""

    def __init__(self, path: str, interval: float) -> None:
        self.path = path
        self.interval = interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_warning = float("-inf")
        self.checkpoints = 0  # completed passes, for tests and diagnostics
        # Its own descriptor (so its own lock, as flock locks belong to open files): the
        # writers' erasures in this same process must exclude it too.
        self._checkpoint_lock = FileLock(checkpoint_lock_path(path))

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread; a checkpoint in progress finishes first (it is safe to interrupt,
        but there is no need to)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        thread.join(timeout)

    def checkpoint_once(self, connection: sqlite3.Connection) -> None:
        """One passive checkpoint; an error is logged (rate-limited), never raised: the commit
        path's own checkpoints still bound the log. Skipped while the log is being erased."""
        if not self._checkpoint_lock.try_acquire():
            return
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:
            now = time.monotonic()
            if now - self._last_warning >= _WARN_EVERY:
                self._last_warning = now
                log.warning("background WAL checkpoint of %s failed: %s", self.path, exc)
            return
        finally:
            self._checkpoint_lock.release()
        self.checkpoints += 1

    def _run(self) -> None:
        try:
            # No transaction is ever open on this connection, so it never holds a reader's
            # place in the log (which would keep the log from being reused).
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        except sqlite3.Error as exc:
            log.warning("cannot open %s for background WAL checkpoints: %s", self.path, exc)
            return
        try:
            while not self._stopping.wait(self.interval):
                self.checkpoint_once(connection)
        finally:
            connection.close()
