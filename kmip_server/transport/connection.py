"""One client connection of a listener: TLS on memory BIOs over a plain TCP transport, then
KMIP messages (see :class:`_Connection`). The accept loop, admission and the batch handler's
queue are the listener's (listener.py); the HTTPS listener's connection subclasses this one.

Message bytes are never logged: requests and responses carry key material.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
from typing import TYPE_CHECKING

from kmip_client.protocol.errors import KmipError, ProtocolError
from kmip_client.protocol.framing import Framer
from kmip_client.protocol.spec.enums import ResultReason

from ..engine.identity import ClientIdentity
from ..engine.responses import error_response, invalid_message_response
from .large import runs_apart
from .tls import identity_from_certificate

if TYPE_CHECKING:
    from .listener import Listener

__all__ = ["_Connection", "_internal_error_response"]

log = logging.getLogger("strongroom.transport")

# How long a closing connection may take to hand its last output to the client.
_CLOSE_TIMEOUT = 10.0
# Plaintext asked of OpenSSL per read (it returns at most one 16 KiB record at a time anyway).
_READ_SIZE = 64 * 1024


def _internal_error_response() -> bytes:
    return error_response(KmipError("internal server error", ResultReason.GENERAL_FAILURE))


def _tls_error_text(exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"certificate verify failed: {exc.verify_message}"
    return str(exc.reason or exc)


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
        context = listener.ssl_context
        if context is not None:
            self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        # else a plaintext connection (plain_http.py): it never reaches the TLS methods, and
        # leaving _tls unset makes any that it did fail loudly rather than run TLS half-way.
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
            self._count_handshake_failure()
            self._flush()  # the alert tells the client why
            self._close_socket()
            return False
        self._flush()
        self._handshaking = False
        self._listener.admission.established(self)
        der = self._tls.getpeercert(binary_form=True)
        if der:
            try:
                self._identity = dataclasses.replace(
                    identity_from_certificate(der, self._listener.identity_mode), address=self._peer
                )
            except ValueError as exc:
                return self._refuse_peer(str(exc))
        elif self._listener.anonymous_allowed:
            # The admin listener (CERT_OPTIONAL): its routes decide what an anonymous peer
            # may ask (health probes); the empty name is no principal's and reaches no engine.
            self._identity = ClientIdentity("", address=self._peer)
        else:  # CERT_REQUIRED makes this unreachable, but an identity must never be guessed
            return self._refuse_peer("no client certificate")
        log.debug("connection from %s as %r (%s)", self._peer, self._identity.name, self._tls.version())
        self._set_deadline(self._listener.settings.idle_timeout)
        return True

    def _refuse_peer(self, why: str) -> bool:
        """Close a connection whose peer has no usable identity (counted as a failed handshake)."""
        log.warning("closing connection from %s: %s", self._peer, why)
        self._count_handshake_failure()
        self._close()
        return False

    def _count_handshake_failure(self) -> None:
        events = self._listener.events
        if events is not None:
            events.handshake_failed()

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
            if self._backlog or self._large_running or any(runs_apart(message) for message in messages):
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
            if runs_apart(self._backlog[0]):
                assert self._identity is not None
                self._large_running = True
                listener.large.submit(listener.loop, self._backlog.pop(0), self._identity, self._large_answered)
                return
            step = 1
            while step < len(self._backlog) and not runs_apart(self._backlog[step]):
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
