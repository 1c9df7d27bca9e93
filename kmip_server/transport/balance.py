"""Spreading connections evenly over the worker processes.

All workers accept from one listening socket, and the kernel wakes every one of them for a
new connection; whichever calls accept() first wins. That favours a worker that happens to be
idle at the moment, so a burst of connections often splits 24/40 rather than 32/32. Under
load that matters: a worker answers everything it has received in one batch, so the clients
of the busier worker wait for a longer batch, and its extra work sits on one core while the
other has time to spare.

So each worker publishes how many connections it holds, in a small table of shared memory
the parent creates before forking, and one that holds more than a sibling lets a connection
pass for a moment: the sibling was woken by the same connection and takes it. The table only
steers; it never decides alone. A worker lets connections pass a few times in a row at most
(a sibling may be stuck in a long request, or its entry stale), then accepts anyway.
"""

from __future__ import annotations

import mmap
import struct

__all__ = ["ConnectionTable", "AcceptBalancer"]

_SLOT = struct.Struct("=i")  # 4 aligned bytes: read and written whole on every platform we run on
# A worker that is not accepting (starting, stopping, dead): never a reason for a sibling to wait.
_NOT_ACCEPTING = -1
# Connections let pass in a row before accepting regardless.
_MAX_PASSES = 4


class ConnectionTable:
    """Open connections per worker index, in anonymous shared memory inherited across fork."""

    def __init__(self, workers: int) -> None:
        self._workers = workers
        self._memory = mmap.mmap(-1, _SLOT.size * max(workers, 1))
        for index in range(workers):
            self.withdraw(index)

    @property
    def workers(self) -> int:
        return self._workers

    def publish(self, index: int, connections: int) -> None:
        _SLOT.pack_into(self._memory, index * _SLOT.size, connections)

    def withdraw(self, index: int) -> None:
        """Worker ``index`` is not accepting (not started yet, stopping, or dead)."""
        _SLOT.pack_into(self._memory, index * _SLOT.size, _NOT_ACCEPTING)

    def fewest_elsewhere(self, index: int) -> int | None:
        """The fewest connections any other accepting worker holds; None if none accepts."""
        fewest: int | None = None
        for other in range(self._workers):
            if other == index:
                continue
            (count,) = _SLOT.unpack_from(self._memory, other * _SLOT.size)
            if count != _NOT_ACCEPTING and (fewest is None or count < fewest):
                fewest = count
        return fewest

    def accepting(self) -> list[int | None]:
        """Each worker's open connections, None for one not accepting (the admin listener's view)."""
        counts: list[int | None] = []
        for index in range(self._workers):
            (count,) = _SLOT.unpack_from(self._memory, index * _SLOT.size)
            counts.append(None if count == _NOT_ACCEPTING else count)
        return counts

    def close(self) -> None:
        self._memory.close()


class AcceptBalancer:
    """One worker's view of the table: publishes its count and says when to let a
    connection pass to a sibling that holds fewer."""

    __slots__ = ("_table", "_index", "_passes")

    def __init__(self, table: ConnectionTable, index: int) -> None:
        self._table = table
        self._index = index
        self._passes = 0

    def publish(self, connections: int) -> None:
        self._table.publish(self._index, connections)

    def withdraw(self) -> None:
        self._table.withdraw(self._index)

    def should_pass(self, connections: int) -> bool:
        """Whether to leave the waiting connection to a sibling worker (and not accept now)."""
        fewest = self._table.fewest_elsewhere(self._index)
        if fewest is None or connections <= fewest or self._passes >= _MAX_PASSES:
            self._passes = 0
            return False
        self._passes += 1
        return True
