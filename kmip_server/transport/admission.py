"""Which connections a worker keeps: the handshake budget, and each source address's share.

A connection takes one of a worker's ``max_connections`` slots from accept() on, but until
its TLS handshake completes nobody knows who is on the other end, and opening TCP connections
that never send a byte costs a peer nothing. Counted like any other connection, a few
thousand silent sockets filled every slot and locked legitimate clients out until the
handshake time-out, and a peer that reconnects that often keeps them out for good.

So connections still in their handshake have a budget of their own (``max_handshakes`` per
worker), and when it is full, or every slot is taken, a new connection *takes the place* of
one of them rather than being refused: a silent one (not a byte received yet) first, then
one of those that have started; of the source address holding the most handshakes, the
oldest first. A real client sends its ClientHello as soon as it has connected, so a flood of
silent sockets only ever displaces itself, and one of half-done handshakes from one address
displaces its own before anyone else's. A connection whose handshake has completed leaves
the budget and is never displaced; only when every slot holds one are new connections
refused. Nor is a connection displaced in its first ``_SETTLED`` seconds, the time a real
handshake takes with plenty to spare: while the budget holds none older, a newcomer is let
in beyond it (up to ``max_connections``), so a legitimate burst of clients, a thousand pooled
connections reopened at once, say, is not turned against itself.

Before any of that, a connection that has not sent a byte when it is accepted waits in
:class:`Waiting`, at the cost of its descriptor and a timer: no TLS session, no transport,
no place in the budget. Its first bytes (a real client's ClientHello, usually there before
accept() anyway) bring it to the budget; ``max_handshakes`` of them wait at most, the oldest
closed to make room, each for ``handshake_timeout`` at most. Setting up and tearing down a
TLS session and a transport for each silent socket was what kept the worker slow to drain a
flood from its accept queue, where real clients wait behind it.

No source address (an IPv4 address, or an IPv6 /64, what one subscriber is typically given)
may hold more than ``max_source_share`` of the worker's slots either: established
connections from one address cannot fill the worker, and neither can its handshakes.

The listener accepts, reports what happens to each connection, and closes or aborts what it
is told to; this module keeps the books, decides, and logs the decisions once per episode
rather than once per connection (a flood must not become a flood of log lines). Every
operation is O(1) except choosing whom to displace, which looks at each source address that
holds connections.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["Admission", "Waiting", "source_of"]

log = logging.getLogger("strongroom.transport")

# Seconds a connection's handshake is safe from newcomers (see the module notes).
_SETTLED = 2.0

C = TypeVar("C", bound=Hashable)


def source_of(address: object) -> str:
    """The source a peer address counts against: its IPv4 address, or its IPv6 /64 (an
    IPv4-mapped IPv6 address counts as the IPv4 address)."""
    if not isinstance(address, tuple) or not address:
        return str(address)  # a Unix socket, say: all one source
    host = str(address[0])
    if ":" not in host:
        return host
    try:
        ip = ipaddress.IPv6Address(host.split("%", 1)[0])  # without a link-local scope
    except ValueError:
        return host
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, 64), strict=False))


class _Source(Generic[C]):
    """One source address's connections."""

    __slots__ = ("address", "connections", "silent", "talking", "refused")

    def __init__(self, address: str) -> None:
        self.address = address
        self.connections = 0  # all of them, in their handshake or not
        # In their handshake, with when each was accepted, oldest first (dicts keep insertion
        # order): nothing received yet...
        self.silent: dict[C, float] = {}
        # ...and some of the handshake received.
        self.talking: dict[C, float] = {}
        self.refused = 0  # new connections refused since it reached its share

    @property
    def handshakes(self) -> int:
        return len(self.silent) + len(self.talking)


class Admission(Generic[C]):
    """One listener's books: every connection from accept() to its end, by source address."""

    def __init__(self, max_connections: int, max_handshakes: int, source_share: float) -> None:
        self.max_connections = max_connections
        self.max_handshakes = min(max_handshakes, max_connections)
        self.per_source = max(1, int(source_share * max_connections))
        self.handshakes = 0
        self._sources: dict[str, _Source[C]] = {}
        self._source: dict[C, _Source[C]] = {}
        self._refused = 0  # new connections refused in the current episode at the limit
        self._displaced = 0  # connections displaced in their handshake in the current episode

    def __len__(self) -> int:
        """Open connections, in their handshake or not."""
        return len(self._source)

    # ---- deciding on a new connection

    def admit(self, source: str) -> tuple[bool, C | None]:
        """Whether to serve a connection just accepted from ``source``, and the connection in
        its handshake that it displaces, if any (already out of the books; the caller aborts it)."""
        if self.full and self.victim()[0] is None:
            return self._at_limit()
        refused = self.refuse(source)
        if refused:
            if refused == 1:  # and not again until the source is down to half its share
                log.warning("%s holds its share of %d connections; closing its new ones", source, self.per_source)
            return False, None
        displaced = None
        if self.full:
            displaced, accepted = self.victim()
            assert displaced is not None  # see above
            if time.monotonic() - accepted < _SETTLED:  # the one to make way is young: a burst, say
                if len(self._source) < self.max_connections:
                    return True, None
                return self._at_limit()
            if not self._displaced:
                log.warning(
                    "%d connections in their TLS handshake (%d open): new connections take their place",
                    self.handshakes,
                    len(self._source),
                )
            self._displaced += 1
            self.remove(displaced)
        elif self._displaced and self.handshakes * 2 < self.max_handshakes:
            # Down to half the budget, not merely a free place: a flood at the budget's edge
            # would otherwise log a warning and a recovery per connection.
            log.info("room for handshakes again (%d dropped in theirs for newer connections)", self._displaced)
            self._displaced = 0
        if self._refused:
            log.info("accepting connections again (%d refused while at the limit)", self._refused)
            self._refused = 0
        return True, displaced

    def _at_limit(self) -> tuple[bool, C | None]:
        """Refuse a new connection: every place is taken and none can be given up."""
        if self._refused == 0:
            log.warning("connection limit of %d reached; refusing new connections", self.max_connections)
        self._refused += 1
        return False, None

    def refuse(self, source: str) -> int:
        """0 when ``source`` may open another connection; otherwise it holds its share, and
        this is the number of its connections refused since it did (1: the first)."""
        entry = self._sources.get(source)
        if entry is None or entry.connections < self.per_source:
            return 0
        entry.refused += 1
        return entry.refused

    @property
    def full(self) -> bool:
        """Whether a new connection needs another's place: the handshake budget or every slot is taken."""
        return self.handshakes >= self.max_handshakes or len(self._source) >= self.max_connections

    def victim(self) -> tuple[C | None, float]:
        """The connection in its handshake that a new one should replace (see the module
        notes) and when it was accepted; None when every connection has completed its handshake."""
        for silent in (True, False):
            best: dict[C, float] | None = None
            most = 0
            for entry in self._sources.values():
                handshakes = entry.silent if silent else entry.talking
                if handshakes and entry.handshakes > most:
                    best, most = handshakes, entry.handshakes
            if best is not None:
                return next(iter(best.items()))
        return None, 0.0

    # ---- what happens to a connection

    def add(self, connection: C, source: str) -> None:
        """A connection accepted from ``source``, its handshake ahead of it."""
        entry = self._sources.get(source)
        if entry is None:
            entry = self._sources[source] = _Source(source)
        entry.connections += 1
        entry.silent[connection] = time.monotonic()
        self._source[connection] = entry
        self.handshakes += 1

    def heard(self, connection: C) -> None:
        """The connection's first handshake bytes have arrived."""
        entry = self._source.get(connection)
        if entry is not None and connection in entry.silent:
            entry.talking[connection] = entry.silent.pop(connection)

    def established(self, connection: C) -> None:
        """The connection's handshake is complete: it leaves the budget for good."""
        entry = self._source.get(connection)
        if entry is not None and self._leave_handshake(entry, connection):
            self.handshakes -= 1

    def remove(self, connection: C) -> None:
        """The connection is closed (or about to be). Removing one twice is harmless."""
        entry = self._source.pop(connection, None)
        if entry is None:
            return
        if self._leave_handshake(entry, connection):
            self.handshakes -= 1
        entry.connections -= 1
        if entry.refused and entry.connections * 2 < self.per_source:
            # Half its share, not merely a free place: a source at the edge of its share
            # would otherwise log a warning and this per connection.
            address, count = entry.address, entry.connections
            log.info("%s is down to %d connections (%d closed over its share)", address, count, entry.refused)
            entry.refused = 0
        if not entry.connections:
            del self._sources[entry.address]

    @staticmethod
    def _leave_handshake(entry: _Source[C], connection: C) -> bool:
        """Take the connection out of its source's handshakes; whether it was in one."""
        for handshakes in (entry.silent, entry.talking):
            if connection in handshakes:
                del handshakes[connection]
                return True
        return False


class Waiting:
    """Accepted connections that have sent nothing yet, waiting for their first bytes with
    nothing but a descriptor, a reader and a timer (see the module notes).

    ``spoke(conn, address)`` is called, once each, for those whose first bytes arrive (or
    their end: the transport it goes on to finds that out). The others are closed after
    ``timeout`` seconds, or sooner when ``limit`` newer ones are waiting and they are no
    longer young (``_SETTLED``), or ``hard_limit`` are: a burst of real clients, accepted
    faster than they send their ClientHellos, is not turned against itself.
    """

    def __init__(
        self, limit: int, hard_limit: int, timeout: float, spoke: Callable[[socket.socket, object], None]
    ) -> None:
        self._limit = limit
        self._hard_limit = max(limit, hard_limit)
        self._timeout = timeout
        self._spoke = spoke
        self._loop: asyncio.AbstractEventLoop | None = None
        # By descriptor, oldest first: the socket, its peer address, its time-out, when it came.
        self._waiting: dict[int, tuple[socket.socket, object, asyncio.TimerHandle, float]] = {}
        self._dropped = 0  # closed to make room, in the current episode

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, conn: socket.socket, address: object) -> None:
        """Wait for the first bytes of ``conn`` (non-blocking, just accepted)."""
        loop = self._loop = self._loop or asyncio.get_running_loop()
        now = time.monotonic()
        if len(self._waiting) >= self._limit and (
            len(self._waiting) >= self._hard_limit or now - next(iter(self._waiting.values()))[3] >= _SETTLED
        ):
            if not self._dropped:
                log.warning("%d connections have sent nothing; closing the oldest for newer ones", self._limit)
            self._dropped += 1
            self._close(next(iter(self._waiting)))
        elif self._dropped and len(self._waiting) * 2 < self._limit:
            log.info("fewer connections sending nothing (%d closed for newer ones)", self._dropped)
            self._dropped = 0
        fd = conn.fileno()
        self._waiting[fd] = (conn, address, loop.call_later(self._timeout, self._close, fd), now)
        loop.add_reader(fd, self._readable, fd)

    def close(self) -> None:
        """Close every waiting connection (the listener is stopping)."""
        for fd in list(self._waiting):
            self._close(fd)

    def _take(self, fd: int) -> tuple[socket.socket, object] | None:
        entry = self._waiting.pop(fd, None)
        if entry is None:
            return None
        conn, address, timer, _ = entry
        timer.cancel()
        assert self._loop is not None
        self._loop.remove_reader(fd)
        return conn, address

    def _readable(self, fd: int) -> None:
        taken = self._take(fd)
        if taken is not None:
            self._spoke(*taken)

    def _close(self, fd: int) -> None:
        taken = self._take(fd)
        if taken is not None:
            taken[0].close()
