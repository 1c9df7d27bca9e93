"""One worker's KMIP listener: binary TTLV over mutual TLS, on asyncio protocols.

The worker accepts from a listening socket it shares with its sibling processes, runs the TLS
handshake (an :class:`ssl.SSLObject` per connection, see :class:`_Connection`), names the
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

from kmip_client.protocol.errors import KmipError, ProtocolError
from kmip_client.protocol.framing import Framer
from kmip_client.protocol.spec.enums import ResultReason

from ..config import ListenerSettings
from ..engine.identity import ClientIdentity
from ..engine.responses import error_response, invalid_message_response
from .admission import Admission, Waiting, source_of
from .balance import AcceptBalancer
from .large import LargeMessages, is_large
from .tls import identity_from_certificate

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
# How long a closing connection may take to hand its last output to the client.
_CLOSE_TIMEOUT = 10.0
# Waits of group_commit_wait a batch of writes may take while connections of the last batch
# have not sent yet: under load their requests trail in over a millisecond or two (their
# clients are reading the last answers), and one that misses the batch waits a whole batch
# more. Measured at 64 connections: 1 wait, p99 21.5-26 ms; 4 waits, 21.3-22.3 ms.
_MAX_GATHER_WAITS = 4
# Most messages given to the batch handler at once: bounds the wait of the first in a batch.
_MAX_BATCH = 128
# Plaintext asked of OpenSSL per read (it returns at most one 16 KiB record at a time anyway).
_READ_SIZE = 64 * 1024


def _internal_error_response() -> bytes:
    return error_response(KmipError("internal server error", ResultReason.GENERAL_FAILURE))


def _tls_error_text(exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"certificate verify failed: {exc.verify_message}"
    return str(exc.reason or exc)


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


class _Connection(asyncio.Protocol):
    """One client connection: TLS over a plain TCP transport, then KMIP messages.

    TLS runs here, on an :class:`ssl.SSLObject` over memory BIOs, rather than in asyncio's
    SSL transport, for how connections end: asyncio's transport holds every server-initiated
    close open until the peer answers our close_notify (up to ``ssl_shutdown_timeout``), and
    a pooled client that is not reading never answers, so a graceful stop would wait out the
    timeout for every idle client. Here a close sends close_notify and closes the socket once
    our output is flushed, as TLS permits. It also saves a layer of Python per request.
    """

    __slots__ = (
        "_listener",
        "_peer",
        "_transport",
        "_incoming",
        "_outgoing",
        "_tls",
        "_handshaking",
        "_framer",
        "_identity",
        "_closing",
        "_said_close_notify",
        "_draining",
        "_awaiting",
        "_close_pending",
        "_final",
        "_deadline",
        "_timer",
        "_answered_in",
        "_queued_for",
        "_backlog",
        "_large_running",
    )

    def __init__(self, listener: Listener, peer: str) -> None:
        self._listener = listener
        self._peer = peer
        self._transport: asyncio.Transport | None = None
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = listener.ssl_context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._handshaking = True
        self._framer = Framer(listener.settings.max_message_size)
        self._identity: ClientIdentity | None = None
        self._closing = False
        self._said_close_notify = False
        self._draining = False  # shutting down: close as soon as no message is half received
        self._awaiting = 0  # messages handed to the batch handler and not yet answered
        self._close_pending = False  # close once they are answered...
        self._final = b""  # ...after sending this
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._answered_in = -1  # the listener's batch that last answered this connection
        self._queued_for = -1  # the batch this connection last queued messages for
        # Received messages held back behind a large one, in order (see _pump); counted in
        # _awaiting like those handed to the batch handler.
        self._backlog: list[bytes] = []
        self._large_running = False

    # ---- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        listener = self._listener
        listener.connections.add(self)
        if self._closing or listener.stopping:  # displaced by a newer connection already, or stopping
            self.abort()
            return
        # Past this much unsent output, stop reading: a client that sends but never reads
        # cannot make us buffer an unbounded amount of responses.
        transport.set_write_buffer_limits(high=max(256 * 1024, 2 * listener.settings.max_message_size))
        self._set_deadline(listener.settings.handshake_timeout)

    def data_received(self, data: bytes) -> None:
        if self._closing or self._close_pending:
            return
        self._incoming.write(data)
        if self._handshaking and not self._handshake():
            return
        try:
            plaintext = self._read_tls()
        except ssl.SSLError as exc:
            log.info("TLS error from %s (%s): %s", self._peer, self._name, _tls_error_text(exc))
            self._flush()  # the alert, if OpenSSL queued one
            self._close_socket()
            return
        if plaintext is None:  # the client sent close_notify
            self._close_after_answers()
            return
        if plaintext:
            self._received(plaintext)
        if self._draining and not self._closing and self._quiet:
            self._close()

    def eof_received(self) -> bool | None:
        # The peer's half-close: TLS has no use for one, so close our side too, once what it
        # sent before is answered.
        if self._awaiting:
            self._close_after_answers()
            return True  # keep the transport until then
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._cancel_timer()
        self._listener._connection_closed(self)

    def pause_writing(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None and not self._closing and not self._close_pending:
            self._transport.resume_reading()

    # ---- TLS

    def _handshake(self) -> bool:
        """Advance the handshake; True once it is complete and the client has an identity."""
        self._listener.admission.heard(self)
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return False
        except ssl.SSLError as exc:
            log.info("TLS handshake with %s failed: %s", self._peer, _tls_error_text(exc))
            self._flush()  # the alert tells the client why
            self._close_socket()
            return False
        self._flush()
        self._handshaking = False
        self._listener.admission.established(self)
        der = self._tls.getpeercert(binary_form=True)
        if not der:  # CERT_REQUIRED makes this unreachable, but an identity must never be guessed
            log.warning("closing connection from %s: no client certificate", self._peer)
            self._close()
            return False
        try:
            self._identity = identity_from_certificate(der, self._listener.identity_mode)
        except ValueError as exc:
            log.warning("closing connection from %s: %s", self._peer, exc)
            self._close()
            return False
        log.debug("connection from %s as %r (%s)", self._peer, self._identity.name, self._tls.version())
        self._set_deadline(self._listener.settings.idle_timeout)
        return True

    def _read_tls(self) -> bytes | None:
        """The plaintext available now (b"" for none yet), or None once the peer has closed."""
        chunks: list[bytes] = []
        closed = False
        try:
            while True:
                chunk = self._tls.read(_READ_SIZE)
                if not chunk:
                    closed = True
                    break
                chunks.append(chunk)
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            closed = True
        if self._outgoing.pending:  # a TLS 1.3 key update, say
            self._flush()
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if closed:
            if data:
                self._received(data)
            return None
        return data

    def _send(self, data: bytes) -> None:
        if self._closing or self._transport is None:
            return
        view = memoryview(data)
        while view:
            view = view[self._tls.write(view) :]
        self._flush()

    def _flush(self) -> None:
        if self._outgoing.pending and self._transport is not None and not self._transport.is_closing():
            self._transport.write(self._outgoing.read())

    # ---- the work

    def _received(self, data: bytes) -> None:
        try:
            messages = self._framer.feed(data)
        except ProtocolError as exc:
            # Framing is lost: nothing after this point can be trusted to start a message.
            log.info("invalid message framing from %s (%s): %s", self._peer, self._name, exc)
            self._close_after_answers(invalid_message_response(str(exc)))
            return
        if messages:
            self._deadline = self._listener.loop.time() + self._listener.settings.idle_timeout
            if self._backlog or self._large_running or any(is_large(message) for message in messages):
                self._awaiting += len(messages)
                self._backlog.extend(messages)
                self._pump()
            elif self._listener.batch_handler is not None:
                self._awaiting += len(messages)
                self._listener._enqueue(self, messages)
            else:
                self._handle(messages)

    def _handle(self, messages: list[bytes]) -> None:
        # The handler runs inline on the event loop thread. It is CPU-bound (~100 µs to decode,
        # run and encode) plus a ~150 µs database commit; handing it to a thread would cost a
        # wake-up and the GIL round trip each way, more than it saves. Parallelism comes from
        # the worker processes instead. Inline also keeps responses in request order for free.
        handler = self._listener.handler
        identity = self._identity
        assert identity is not None
        responses: list[bytes] = []
        for message in messages:
            try:
                responses.append(handler(message, identity))
            except Exception:
                # A bug in the engine, not bad input. The traceback helps find it; the request
                # itself is not logged (it may carry key material). The connection is closed:
                # whatever state the failed request left behind is not worth building on.
                log.exception("request handler failed for %s (%s); closing the connection", self._peer, identity.name)
                responses.append(_internal_error_response())
                self._send(b"".join(responses))
                self._close()
                return
        self._send(responses[0] if len(responses) == 1 else b"".join(responses))

    def _pump(self) -> None:
        """Hand on the backlog in order, one step at a time: a large message alone, to the
        listener's thread for them (see large.py); the messages up to the next large one, the
        usual way. A step starts once everything before it is answered, so the answers keep
        the order of the requests (the batch handler may answer the messages of one step in
        the same call as other connections' ones, as ever)."""
        listener = self._listener
        while self._backlog and not self._closing and self._awaiting == len(self._backlog):
            if is_large(self._backlog[0]):
                assert self._identity is not None
                self._large_running = True
                listener.large.submit(listener.loop, self._backlog.pop(0), self._identity, self._large_answered)
                return
            step = 1
            while step < len(self._backlog) and not is_large(self._backlog[step]):
                step += 1
            messages, self._backlog = self._backlog[:step], self._backlog[step:]
            if listener.batch_handler is not None:
                listener._enqueue(self, messages)
                return
            self._awaiting -= len(messages)  # answered at once, or the connection is closed
            self._handle(messages)

    def _large_answered(self, response: bytes | None) -> None:
        self._large_running = False
        if response is None:
            self._answer_failed(1)
            return
        self._awaiting -= 1
        self._send(response)
        self._after_answers()

    def _answer(self, responses: list[bytes]) -> None:
        """Responses from the batch handler to this connection's queued messages, in order."""
        self._awaiting -= len(responses)
        self._send(responses[0] if len(responses) == 1 else b"".join(responses))
        self._after_answers()

    def _answer_failed(self, count: int) -> None:
        self._awaiting -= count
        self._send(_internal_error_response())
        self._close()

    def _after_answers(self) -> None:
        if self._backlog:
            self._pump()
        if self._awaiting or self._closing:
            return
        if self._close_pending:
            final, self._final = self._final, b""
            if final:
                self._send(final)
            self._close()
        elif self._draining and self._quiet:
            self._close()

    @property
    def _quiet(self) -> bool:
        """No request half received and none waiting for its answer."""
        return self._framer.buffered == 0 and self._awaiting == 0

    def _close_after_answers(self, final: bytes = b"") -> None:
        """Close, sending ``final`` last, once every queued message has been answered."""
        if self._close_pending:
            return  # the first reason to close stands
        if self._awaiting:
            self._close_pending = True
            self._final = final
            if self._transport is not None:
                self._transport.pause_reading()  # nothing more will be taken from this client
            return
        if final:
            self._send(final)
        self._close()

    # ---- time-outs

    def _set_deadline(self, seconds: float) -> None:
        loop = self._listener.loop
        self._deadline = loop.time() + seconds
        if self._timer is None or self._timer.when() > self._deadline:
            # An earlier deadline than the timer's (the idle time-out replacing a longer
            # handshake time-out): reschedule. A later one is picked up when the timer fires.
            self._cancel_timer()
            self._timer = loop.call_at(self._deadline, self._check_deadline)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check_deadline(self) -> None:
        self._timer = None
        if self._transport is None:
            return
        loop = self._listener.loop
        if loop.time() < self._deadline:
            # Rescheduled here rather than on every message: a request costs one float store.
            self._timer = loop.call_at(self._deadline, self._check_deadline)
            return
        if self._closing:
            log.info("aborting %s (%s): its output was not taken in time", self._peer, self._name)
        elif self._handshaking:
            log.info("TLS handshake with %s timed out", self._peer)
        elif not self._quiet:
            log.info("dropping %s (%s): message incomplete after %g s", self._peer, self._name, self._idle_timeout)
        else:
            log.info("closing idle connection from %s (%s) after %g s", self._peer, self._name, self._idle_timeout)
        # A client that stopped reading would keep a graceful close waiting on its buffer.
        if self._closing or self._handshaking or self._transport.get_write_buffer_size():
            self.abort()
        else:
            self._close()

    @property
    def _idle_timeout(self) -> float:
        return self._listener.settings.idle_timeout

    @property
    def _name(self) -> str:
        return self._identity.name if self._identity is not None else "no identity yet"

    # ---- closing

    def _close(self) -> None:
        """Say close_notify and close once our output is flushed. Not waiting for the peer's
        close_notify is allowed (RFC 8446 6.1) and keeps an idle client from holding us."""
        if self._closing:
            return
        if not self._handshaking:
            self._say_close_notify()
        self._close_socket()

    def _say_close_notify(self) -> None:
        """Send our close_notify (once): the client then knows the last answer is whole."""
        if self._said_close_notify:
            return
        self._said_close_notify = True
        try:
            self._tls.unwrap()
        except ssl.SSLError:
            pass  # SSLWantReadError (ours is queued; the peer's is not awaited) or a broken session
        self._flush()

    def _close_socket(self) -> None:
        self._closing = True
        if self._transport is not None:
            self._transport.close()  # plain TCP: closes when the write buffer is empty
        # ...which a client that does not read could postpone for ever.
        self._cancel_timer()
        self._set_deadline(_CLOSE_TIMEOUT)

    def drain(self) -> None:
        """For shutdown: close once no request is half received (a whole one already received
        was answered); a connection still in its handshake has nothing in flight."""
        if self._closing:
            return
        if self._handshaking:
            self.abort()
            return
        self._draining = True
        if self._quiet:
            self._close()

    def abort(self) -> None:
        self._closing = True
        self._cancel_timer()
        if self._transport is not None:
            self._transport.abort()


class Listener:
    """Serves one listening socket in the current process's event loop."""

    #: The protocol of each accepted connection (the HTTPS listener's speaks HTTP over the TLS).
    connection_class: type[_Connection] = _Connection

    def __init__(
        self,
        sock: socket.socket,
        ssl_context: ssl.SSLContext,
        settings: ListenerSettings,
        handler: MessageHandler,
        *,
        identity_mode: str = "cn",
        batch_handler: BatchHandler | None = None,
        writes: Callable[[bytes], bool] | None = None,
        balancer: AcceptBalancer | None = None,
    ) -> None:
        self.sock = sock
        self.balancer = balancer
        self.ssl_context = ssl_context
        self.settings = settings
        self.handler = handler
        self.batch_handler = batch_handler
        self.writes = writes  # tells messages that write (see _should_gather)
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
        behind (their clients are reading the last answers). So a batch that writes waits
        for its company: the connections the last batch answered, and any newcomer that has
        sent since. It waits when batches usually come from several connections and other
        connections are open, again while that company has not all arrived (up to
        _MAX_GATHER_WAITS waits in all), and runs as soon as it has (see _enqueue). A lone
        client, or one busy among idle ones, never waits.
        """
        if self.writes is None or self.settings.group_commit_wait <= 0:
            return False
        if self._arrived >= self._expected:
            return False
        if self._gathered:
            return self._gathered < _MAX_GATHER_WAITS
        if self._batch_width < 1.5 or len(self.connections) <= self._arrived:
            return False
        writes = self.writes
        return any(writes(message) for _, messages in self._queue for message in messages)

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
