"""One worker's KMIP listener: binary TTLV over mutual TLS, on asyncio protocols.

The worker accepts from a listening socket it shares with its sibling processes, runs the TLS
handshake (an :class:`ssl.SSLObject` per connection, see connection.py), names the
client from its certificate, and then for each whole message the
:class:`~kmip_client.protocol.framing.Framer` yields calls the :data:`MessageHandler` and
writes what it returns. With a :data:`BatchHandler`, the messages of one event-loop turn go to
it together instead. Protocol callbacks rather than streams: no task and no awaits per
request, which is most of the per-request overhead streams would add.

Message bytes are never logged: requests and responses carry key material.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import ssl
from collections.abc import Callable, Sequence
from typing import Any

from ..config import ListenerSettings
from ..engine.identity import ClientIdentity
from .admission import Admission, Waiting, source_of
from .balance import AcceptBalancer
from .connection import _Connection
from .large import LargeMessages

__all__ = ["BatchHandler", "MessageHandler", "Listener"]

log = logging.getLogger("strongroom.transport")

#: Decodes one whole request message, runs it and returns the whole encoded response. It is
#: expected to turn every bad input into a KMIP failure response rather than raise.
MessageHandler = Callable[[bytes, ClientIdentity], bytes]
#: The same for several messages, from any connections, answered in order (one response each).
BatchHandler = Callable[[Sequence[tuple[bytes, ClientIdentity]]], list[bytes]]

# Accepting in small batches lets a sibling worker that is less busy take its share of a burst
# (all workers wait on the same socket); asyncio's own accept loop takes up to 100 at a time.
_ACCEPT_BATCH = 16
# After EMFILE and the like, stop accepting briefly instead of spinning on a readable socket.
_ACCEPT_PAUSE = 0.5
# Letting a connection pass to a sibling with fewer (see balance.py): long enough for it to
# take the connection, short enough that a sibling that does not costs little.
_PASS_PAUSE = 0.002
# Waits of group_commit_wait a batch of writes may take while connections of the last batch
# have not sent yet: under load their requests trail in over a millisecond or two (their
# clients are reading the last answers), and one that misses the batch waits a whole batch
# more. Measured at 64 connections: 1 wait, p99 21.5-26 ms; 4 waits, 21.3-22.3 ms.
_MAX_GATHER_WAITS = 4
# Most messages given to the batch handler at once: bounds the wait of the first in a batch.
_MAX_BATCH = 128


def _has_spoken(conn: socket.socket) -> bool:
    """Whether a just accepted (non-blocking) connection has data waiting: a real client's
    ClientHello usually is (see admission.py)."""
    with contextlib.suppress(BlockingIOError, ConnectionError):  # nothing yet; or reset, as _open finds out
        return bool(conn.recv(1, socket.MSG_PEEK))
    return False


def _peer_text(peer: object) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = str(peer[0])
        return f"[{host}]:{peer[1]}" if ":" in host else f"{host}:{peer[1]}"
    return str(peer)


class Listener:
    """Serves one listening socket in the current process's event loop."""

    #: The protocol of each accepted connection (the HTTPS listener's speaks HTTP over the TLS).
    connection_class: type[_Connection] = _Connection
    #: Whether a peer without a client certificate is served (only the admin listener's
    #: health probes; its TLS context asks for a certificate without requiring one).
    anonymous_allowed = False
    #: Where failed TLS handshakes are counted (admin/metrics.py TransportMetrics), if anywhere.
    events: Any = None

    def __init__(
        self,
        sock: socket.socket,
        ssl_context: ssl.SSLContext | None,
        settings: ListenerSettings,
        handler: MessageHandler,
        *,
        identity_mode: str = "cn",
        batch_handler: BatchHandler | None = None,
        group_commits: bool = False,
        balancer: AcceptBalancer | None = None,
    ) -> None:
        self.sock = sock
        self.balancer = balancer
        # None only for plain_http.py's listener (the XKS API without TLS, for local testing).
        self.ssl_context = ssl_context
        self.settings = settings
        self.handler = handler
        self.batch_handler = batch_handler
        # The handler commits every message (the engine: its audit records), so holding a
        # batch back briefly lets one commit serve more of them (see _should_gather).
        self.group_commits = group_commits
        self.large = LargeMessages(handler)  # runs large messages off the event loop
        self._last_width = 0  # connections answered by the last batch
        self._batches = 0  # batches run so far (numbers them)
        self._arrived = 0  # distinct connections in the queue
        self._expected = 0  # connections the queued batch may wait for (see _should_gather)
        self._gathered = 0  # the queued messages already waited for company
        self._gather_timer: asyncio.TimerHandle | None = None  # ends the current wait
        self._batch_width = 1.0  # moving average of the queue entries (a connection's deliveries) per batch
        self.identity_mode = identity_mode
        self._queue: list[tuple[_Connection, list[bytes]]] = []  # for the batch handler
        self.connections: set[_Connection] = set()
        self._opening: set[asyncio.Task[None]] = set()  # sockets becoming transports
        self._loop: asyncio.AbstractEventLoop | None = None
        self._accepting = False
        self._resume_handle: asyncio.TimerHandle | None = None
        self.admission: Admission[_Connection] = Admission(
            settings.max_connections, settings.max_handshakes, settings.max_source_share
        )
        self.waiting = Waiting(
            settings.max_handshakes, settings.max_connections, settings.handshake_timeout, self._admit
        )
        self._accept_failing = False
        self._all_closed: asyncio.Event | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    @property
    def stopping(self) -> bool:
        return self._all_closed is not None

    @property
    def open_connections(self) -> int:
        """Connections, including those in their TLS handshake, waiting to begin it, or closing."""
        return len(self.admission) + len(self.waiting)

    def start(self) -> None:
        """Start accepting; call from the running event loop."""
        self._loop = asyncio.get_running_loop()
        self.sock.setblocking(False)
        self._accepting = True
        self._loop.add_reader(self.sock.fileno(), self._accept)
        self._publish()

    # ---- accepting

    def _accept(self) -> None:
        # Our own accept loop rather than loop.create_server(), which would accept up to the
        # whole backlog per wake-up: small batches let a less busy sibling take its share.
        balancer = self.balancer
        for _ in range(_ACCEPT_BATCH):
            if balancer is not None and balancer.should_pass(self.open_connections):
                self._pause_accepting(_PASS_PAUSE)
                return
            try:
                conn, address = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return  # a sibling worker took it, or the backlog is empty
            except OSError as exc:
                if exc.errno == errno.ECONNABORTED:
                    continue
                # EMFILE and the like; anything else is unexpected but equally no reason to stop.
                # Logged once until an accept succeeds again, not every pause.
                level = logging.DEBUG if self._accept_failing else logging.WARNING
                log.log(level, "cannot accept connections (%s); pausing for %.1f s", exc, _ACCEPT_PAUSE)
                self._accept_failing = True
                self._pause_accepting(_ACCEPT_PAUSE)
                return
            if self._accept_failing:
                log.info("accepting connections again")
                self._accept_failing = False
            conn.setblocking(False)
            if _has_spoken(conn):
                self._admit(conn, address)
            else:
                self.waiting.add(conn, address)  # until it does (admission.py)

    def _admit(self, conn: socket.socket, address: object) -> None:
        # No room: a connection still in its handshake makes way, or this one is closed.
        source = source_of(address)
        admitted, displaced = self.admission.admit(source)
        if displaced is not None:
            log.debug("dropping %s, still in its TLS handshake, for a newer connection", displaced._peer)
            displaced.abort()
        if admitted:
            self._start_connection(conn, _peer_text(address), source)
        else:
            conn.close()

    def _publish(self) -> None:
        if self.balancer is not None:
            self.balancer.publish(self.open_connections)

    def _start_connection(self, conn: socket.socket, peer: str, source: str) -> None:
        # The protocol from the start, not once its transport is made, so that the books (and
        # a newer connection displacing this one meanwhile) have it to go by.
        connection = self.connection_class(self, peer)
        self.admission.add(connection, source)
        self.admission.heard(connection)  # it has sent something (see _accept)
        task = self.loop.create_task(self._open(conn, connection))
        self._opening.add(task)  # the loop holds tasks weakly
        task.add_done_callback(self._opening.discard)
        self._publish()

    async def _open(self, conn: socket.socket, connection: _Connection) -> None:
        try:
            await self.loop.connect_accepted_socket(lambda: connection, conn)
        except OSError as exc:
            log.debug("connection from %s failed at once: %s", connection._peer, exc)
            self.admission.remove(connection)
            conn.close()

    def _pause_accepting(self, delay: float) -> None:
        if self._accepting:
            self.loop.remove_reader(self.sock.fileno())
            self._resume_handle = self.loop.call_later(delay, self._resume_accepting)

    def _resume_accepting(self) -> None:
        self._resume_handle = None
        if self._accepting:
            self.loop.add_reader(self.sock.fileno(), self._accept)

    def stop_accepting(self) -> None:
        if not self._accepting:
            return
        self._accepting = False
        if self.balancer is not None:
            self.balancer.withdraw()
        if self._resume_handle is not None:
            self._resume_handle.cancel()
            self._resume_handle = None
        else:
            self.loop.remove_reader(self.sock.fileno())
        # This process's copy only: the parent and the other workers keep theirs.
        self.sock.close()
        self.waiting.close()  # nothing received on them: nothing to answer

    # ---- the batch handler

    def _enqueue(self, connection: _Connection, messages: list[bytes]) -> None:
        # Everything that arrives in one turn of the event loop, from every connection, is
        # answered by one call after that turn: the engine commits the writers among them
        # with one durable commit (group commit) instead of one each. The wait is the rest of
        # the turn, microseconds; under load, the turn is where the requests pile up anyway.
        if not self._queue:
            self.loop.call_soon(self._run_queue)
            self._arrived = 0
            self._expected = self._last_width
        self._queue.append((connection, messages))
        upcoming = self._batches + 1
        if connection._queued_for != upcoming:
            connection._queued_for = upcoming
            self._arrived += 1
            if connection._answered_in != self._batches:
                self._expected += 1  # not in the last batch: a newcomer, expected as well
        if self._gather_timer is not None and self._arrived >= self._expected:
            # The company the batch waits for has arrived: run it at the end of this turn
            # rather than when the wait is over (on average half a wait later, every batch).
            self._gather_timer.cancel()
            self._gather_timer = None
            self.loop.call_soon(self._run_queue)

    def _run_queue(self) -> None:
        self._gather_timer = None
        if not self._queue:
            return  # a wait ended early and the batch already ran
        if self._should_gather():
            self._gathered += 1
            self._gather_timer = self.loop.call_later(self.settings.group_commit_wait, self._run_queue)
            return
        self._gathered = 0
        queue, self._queue = self._queue, []
        self._batches += 1
        self._last_width = self._arrived
        self._batch_width += 0.2 * (len(queue) - self._batch_width)
        chunk: list[tuple[_Connection, list[bytes]]] = []
        size = 0
        for entry in queue:
            if chunk and size + len(entry[1]) > _MAX_BATCH:
                self._run_batch(chunk)
                chunk, size = [], 0
            chunk.append(entry)
            size += len(entry[1])
        if chunk:
            self._run_batch(chunk)

    def _should_gather(self) -> bool:
        """Whether to hold the queued messages back for group_commit_wait seconds (again).

        Each batch's writes cost one durable commit, and a commit costs several requests' CPU;
        under concurrent load the next requests are typically a fraction of a millisecond
        behind (their clients are reading the last answers). So a batch waits
        for its company: the connections the last batch answered, and any newcomer that has
        sent since. It waits when batches usually come from several connections and other
        connections are open, again while that company has not all arrived (up to
        _MAX_GATHER_WAITS waits in all), and runs as soon as it has (see _enqueue). A lone
        client, or one busy among idle ones, never waits.
        """
        if not self.group_commits or self.settings.group_commit_wait <= 0:
            return False
        if self._arrived >= self._expected:
            return False
        if self._gathered:
            return self._gathered < _MAX_GATHER_WAITS
        return self._batch_width >= 1.5 and len(self.connections) > self._arrived

    def _run_batch(self, chunk: list[tuple[_Connection, list[bytes]]]) -> None:
        assert self.batch_handler is not None
        requests: list[tuple[bytes, ClientIdentity]] = []
        for connection, messages in chunk:
            identity = connection._identity
            assert identity is not None
            requests.extend((message, identity) for message in messages)
        try:
            responses = self.batch_handler(requests)
            if len(responses) != len(requests):
                raise RuntimeError(f"the batch handler answered {len(responses)} of {len(requests)} messages")
        except Exception:
            # As for a single message (see _Connection._handle), but every connection in the
            # batch gets the failure: which message caused it is not known.
            log.exception("request handler failed on %d messages; closing their connections", len(requests))
            for connection, messages in chunk:
                connection._answer_failed(len(messages))
            return
        start = 0
        batch = self._batches
        for connection, messages in chunk:
            connection._answered_in = batch
            connection._answer(responses[start : start + len(messages)])
            start += len(messages)

    # ---- connections ending

    def _connection_closed(self, connection: _Connection) -> None:
        self.connections.discard(connection)
        self.admission.remove(connection)
        if self._accepting:
            self._publish()
        if not self.connections and self._all_closed is not None:
            self._all_closed.set()

    async def shutdown(self, grace: float) -> None:
        """Stop accepting, let requests already received be answered, close every connection,
        and abort whatever has not closed after ``grace`` seconds."""
        self.stop_accepting()
        self._all_closed = asyncio.Event()
        if self._opening:
            await asyncio.gather(*self._opening, return_exceptions=True)
        # Two turns of the loop: requests already in the kernel's buffers when the signal came
        # are read and answered before the connections they arrived on are closed.
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        for connection in list(self.connections):
            connection.drain()
        if self.connections:
            try:
                await asyncio.wait_for(self._all_closed.wait(), grace)
            except TimeoutError:
                log.warning("%d connections still open after %.1f s; aborting them", len(self.connections), grace)
                for connection in list(self.connections):
                    connection.abort()
        # Let aborted transports run their connection_lost callbacks before the loop ends.
        await asyncio.sleep(0)
        # A large message still running (its connection aborted above) must finish before the
        # worker closes the engine under it.
        self.large.close()
