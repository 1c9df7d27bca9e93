"""One worker's KMIP listener: binary TTLV over mutual TLS, on asyncio protocols.

The worker accepts from a listening socket it shares with its sibling processes, completes
the TLS handshake, names the client from its certificate, and then for each whole message the
:class:`~kmip_client.protocol.framing.Framer` yields calls the :data:`MessageHandler` and
writes what it returns. Protocol callbacks rather than streams: no task and no awaits per
request, which is most of the per-request overhead streams would add.

Message bytes are never logged: requests and responses carry key material.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
from collections.abc import Callable

from kmip_client.protocol.errors import KmipError, ProtocolError
from kmip_client.protocol.framing import Framer
from kmip_client.protocol.model import ResponseMessage
from kmip_client.protocol.model.base import to_bytes
from kmip_client.protocol.spec.enums import ResultReason

from ..config import ListenerSettings
from ..engine.identity import ClientIdentity
from ..engine.responses import failure_item, invalid_message_response, response_header
from .tls import identity_from_certificate

__all__ = ["MessageHandler", "Listener"]

log = logging.getLogger("strongroom.transport")

#: Decodes one whole request message, runs it and returns the whole encoded response. It is
#: expected to turn every bad input into a KMIP failure response rather than raise.
MessageHandler = Callable[[bytes, ClientIdentity], bytes]

# Accepting in small batches lets a sibling worker that is less busy take its share of a burst
# (all workers wait on the same socket); asyncio's own accept loop takes up to 100 at a time.
_ACCEPT_BATCH = 16
# After EMFILE and the like, stop accepting briefly instead of spinning on a readable socket.
_ACCEPT_PAUSE = 0.5
# How long a closing connection may take to exchange close_notify with its peer.
_SSL_SHUTDOWN_TIMEOUT = 5.0


def _internal_error_response() -> bytes:
    error = KmipError("internal server error", ResultReason.GENERAL_FAILURE)
    return to_bytes(ResponseMessage(header=response_header((1, 0), 1), batch_items=(failure_item(error),)))


def _peer_text(peer: object) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = str(peer[0])
        return f"[{host}]:{peer[1]}" if ":" in host else f"{host}:{peer[1]}"
    return str(peer)


class _Connection(asyncio.Protocol):
    """One client connection, from the completed handshake until it is closed."""

    __slots__ = (
        "_listener",
        "_peer",
        "_transport",
        "_framer",
        "_identity",
        "_closing",
        "_draining",
        "_deadline",
        "_timer",
    )

    def __init__(self, listener: Listener, peer: str) -> None:
        self._listener = listener
        self._peer = peer
        self._transport: asyncio.Transport | None = None
        self._framer = Framer(listener.settings.max_message_size)
        self._identity: ClientIdentity | None = None
        self._closing = False
        self._draining = False  # shutting down: close as soon as no message is half received
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None

    # ---- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        listener = self._listener
        listener.connections.add(self)
        # Responses larger than this pause reading, so a client that sends but never reads
        # cannot make us buffer an unbounded amount of output.
        transport.set_write_buffer_limits(high=max(256 * 1024, 2 * listener.settings.max_message_size))
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der:
            log.warning("closing connection from %s: no client certificate", self._peer)
            self._close(abort=True)
            return
        try:
            self._identity = identity_from_certificate(der, listener.identity_mode)
        except ValueError as exc:
            log.warning("closing connection from %s: %s", self._peer, exc)
            self._close(abort=True)
            return
        log.debug("connection from %s as %r", self._peer, self._identity.name)
        self._deadline = listener.loop.time() + listener.settings.idle_timeout
        self._timer = listener.loop.call_at(self._deadline, self._check_idle)
        if listener.stopping:  # the handshake finished just as the worker began to stop
            self.drain()

    def data_received(self, data: bytes) -> None:
        if self._closing or self._identity is None:
            return
        try:
            messages = self._framer.feed(data)
        except ProtocolError as exc:
            # Framing is lost: nothing after this point can be trusted to start a message.
            log.info("invalid message framing from %s (%s): %s", self._peer, self._identity.name, exc)
            self._write(invalid_message_response(str(exc)))
            self._close()
            return
        if messages:
            self._deadline = self._listener.loop.time() + self._listener.settings.idle_timeout
            self._handle(messages)
        if self._draining and not self._closing and self._framer.buffered == 0:
            self._close()

    def eof_received(self) -> bool | None:
        return None  # the client finished sending: close our side too (TLS cannot half-close)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._listener._connection_closed(self)

    def pause_writing(self) -> None:
        if self._transport is not None and not self._closing:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None and not self._closing:
            self._transport.resume_reading()

    # ---- the work

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
                self._write(b"".join(responses))
                self._close()
                return
        self._write(responses[0] if len(responses) == 1 else b"".join(responses))

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _check_idle(self) -> None:
        self._timer = None
        if self._closing:
            return
        now = self._listener.loop.time()
        if now < self._deadline:
            # Rescheduling here, rather than on every message, keeps the per-request cost to
            # one float store.
            self._timer = self._listener.loop.call_at(self._deadline, self._check_idle)
            return
        identity = self._identity.name if self._identity is not None else "?"
        if self._framer.buffered:
            log.info("dropping %s (%s): message incomplete after %.0f s", self._peer, identity, self._timeout)
        else:
            log.info("closing idle connection from %s (%s) after %.0f s", self._peer, identity, self._timeout)
        # A client that stopped reading would keep a graceful close waiting on its buffer.
        transport = self._transport
        self._close(abort=transport is not None and transport.get_write_buffer_size() > 0)

    @property
    def _timeout(self) -> float:
        return self._listener.settings.idle_timeout

    def _close(self, *, abort: bool = False) -> None:
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None:
            if abort:
                self._transport.abort()
            else:
                self._transport.close()  # flushes queued responses, then close_notify

    # ---- shutdown

    def drain(self) -> None:
        """Close once no request is half received; a whole one already received was answered."""
        if self._closing:
            return
        self._draining = True
        if self._framer.buffered == 0:
            self._close()

    def abort(self) -> None:
        self._close(abort=True)


class Listener:
    """Serves one listening socket in the current process's event loop."""

    def __init__(
        self,
        sock: socket.socket,
        ssl_context: ssl.SSLContext,
        settings: ListenerSettings,
        handler: MessageHandler,
        *,
        identity_mode: str = "cn",
    ) -> None:
        self.sock = sock
        self.ssl_context = ssl_context
        self.settings = settings
        self.handler = handler
        self.identity_mode = identity_mode
        self.connections: set[_Connection] = set()
        self._handshakes: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._accepting = False
        self._resume_handle: asyncio.TimerHandle | None = None
        self._refused = 0  # connections refused in the current burst over the limit
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
        """Established connections plus those still in their handshake."""
        return len(self.connections) + len(self._handshakes)

    def start(self) -> None:
        """Start accepting; call from the running event loop."""
        self._loop = asyncio.get_running_loop()
        self.sock.setblocking(False)
        self._accepting = True
        self._loop.add_reader(self.sock.fileno(), self._accept)

    # ---- accepting

    def _accept(self) -> None:
        # Our own accept loop rather than loop.create_server(): it lets a connection over the
        # limit be closed before it costs a TLS handshake, and it accepts in small batches.
        limit = self.settings.max_connections
        for _ in range(_ACCEPT_BATCH):
            try:
                conn, address = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return  # a sibling worker took it, or the backlog is empty
            except OSError as exc:
                if exc.errno == errno.ECONNABORTED:
                    continue
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.warning("cannot accept connections (%s); pausing for %.1f s", exc.strerror, _ACCEPT_PAUSE)
                    self._pause_accepting(_ACCEPT_PAUSE)
                    return
                raise
            if self.open_connections >= limit:
                if self._refused == 0:
                    log.warning("connection limit of %d reached; refusing new connections", limit)
                self._refused += 1
                conn.close()
                continue
            if self._refused:
                log.info("accepting connections again (%d refused while at the limit)", self._refused)
                self._refused = 0
            self._start_handshake(conn, _peer_text(address))

    def _start_handshake(self, conn: socket.socket, peer: str) -> None:
        conn.setblocking(False)
        task = self.loop.create_task(self._handshake(conn, peer))
        self._handshakes.add(task)  # the loop holds tasks weakly
        task.add_done_callback(self._handshakes.discard)

    async def _handshake(self, conn: socket.socket, peer: str) -> None:
        try:
            await self.loop.connect_accepted_socket(
                lambda: _Connection(self, peer),
                conn,
                ssl=self.ssl_context,
                ssl_handshake_timeout=self.settings.handshake_timeout,
                ssl_shutdown_timeout=_SSL_SHUTDOWN_TIMEOUT,
            )
        except ssl.SSLError as exc:
            log.info("TLS handshake with %s failed: %s", peer, exc.reason or exc)
        except (OSError, EOFError) as exc:  # includes the handshake timeout and resets
            log.info("TLS handshake with %s failed: %s", peer, exc or type(exc).__name__)

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
        if self._resume_handle is not None:
            self._resume_handle.cancel()
            self._resume_handle = None
        else:
            self.loop.remove_reader(self.sock.fileno())
        # This process's copy only: the parent and the other workers keep theirs.
        self.sock.close()

    # ---- connections ending

    def _connection_closed(self, connection: _Connection) -> None:
        self.connections.discard(connection)
        if not self.connections and self._all_closed is not None:
            self._all_closed.set()

    async def shutdown(self, grace: float) -> None:
        """Stop accepting, let requests already received be answered, close every connection,
        and abort whatever has not closed after ``grace`` seconds."""
        self.stop_accepting()
        # Connections still in the handshake have no request in flight.
        for task in list(self._handshakes):
            task.cancel()
        self._all_closed = asyncio.Event()
        for connection in list(self.connections):
            connection.drain()
        if self.connections:
            try:
                await asyncio.wait_for(self._all_closed.wait(), grace)
            except TimeoutError:
                log.warning("%d connections still open after %.1f s; aborting them", len(self.connections), grace)
                for connection in list(self.connections):
                    connection.abort()
        if self._handshakes:
            await asyncio.gather(*self._handshakes, return_exceptions=True)
        # Let aborted transports run their connection_lost callbacks before the loop ends.
        await asyncio.sleep(0)
