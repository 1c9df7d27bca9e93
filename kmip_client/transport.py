"""Blocking KMIP transport: a thread-safe pool of mutual-TLS connections to one or more servers.

No KMIP semantics live here: :meth:`ConnectionPool.exchange` sends one whole request message
and returns one whole response message, as bytes. What it adds is what a client library needs
around a socket: connection reuse, failover across servers, and retries that never re-send a
request the server may already have processed.

Retry and failover rules (shared by :class:`kmip_client.aio_transport.AsyncConnectionPool`):

* **Connecting** (TCP connect and TLS handshake) sends nothing, so a failure there always moves
  on to the next endpoint, for any request. Endpoints are tried in the order given; one that
  fails is *marked down* for ``backoff`` seconds and tried only after every endpoint that is
  up. When every endpoint has failed, :class:`ServerUnavailable` lists each one and why.
* **Sending**: a failure while writing the request means the server never received the whole
  message (it cannot act on part of one), so this too is retried for any request.
* **A stale pooled connection**: a *reused* idle connection that reports end-of-file or a
  reset before *any* byte of the response arrived is taken to have been closed by the server
  while idle (its idle timeout), and the request is re-sent once on a *fresh* connection, even
  when it is not idempotent. Idle connections are also probed before reuse, which catches
  almost all of these before anything is sent. The residual risk of this rule: a server that
  processes a request and then dies without writing a byte, exactly on a reused connection.
  A timeout is never treated as stale.
* **Any other failure after sending** (end-of-file or reset mid-response or on a fresh
  connection, a timeout) discards the connection and marks its endpoint down. An idempotent
  request is then retried on a fresh connection, up to ``retries`` times; a non-idempotent one
  is not, and :class:`ConnectionLost` or :class:`KmipTimeout` is raised with
  ``request_sent=True``: the server may or may not have processed it.
* A response that does not frame as a KMIP message (or exceeds ``max_message_size``) is
  raised as :class:`InvalidResponse`, never retried: a server that sent it once would again.
"""

from __future__ import annotations

import dataclasses
import ssl
import struct
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Generic, Literal, TypeVar

from .protocol.errors import ProtocolError
from .protocol.framing import Framer
from .tls_channel import TlsChannel

__all__ = [
    "DEFAULT_PORT",
    "ConnectionLost",
    "ConnectionPool",
    "Endpoint",
    "InvalidResponse",
    "KmipTimeout",
    "KmipTransportError",
    "PoolStats",
    "ServerUnavailable",
    "parse_servers",
]

#: The IANA-registered KMIP port.
DEFAULT_PORT = 5696
_RECV_SIZE = 65536
_HEADER = struct.Struct(">II")  # a message's tag and type, and its length


# ------------------------------------------------------------------------------- endpoints


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """A KMIP server address. ``host`` is a name or an IP address (IPv6 without brackets)."""

    host: str
    port: int = DEFAULT_PORT

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("an endpoint needs a host")
        if not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise ValueError(f"invalid port {self.port!r} for {self.host}")

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def _parse_one(text: str) -> Endpoint:
    text = text.strip()
    if not text:
        raise ValueError("empty server address")
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"invalid server address {text!r}: expected [IPv6]:port")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:  # a bare host, or a bare IPv6 address (several colons, no brackets, so no port)
        host, port_text = text, ""
    if not port_text:
        return Endpoint(host)
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"invalid port in server address {text!r}") from None
    return Endpoint(host, port)


def parse_servers(spec: str | Sequence[str | tuple[str, int] | Endpoint]) -> list[Endpoint]:
    """Endpoints from ``"host:port,host2:port2"``, ``"[::1]:5696"``, a bare host (port 5696),
    or a sequence of such strings, ``(host, port)`` tuples and :class:`Endpoint` objects.

    :raises ValueError: an address does not parse, or there is none.
    """
    items: Sequence[str | tuple[str, int] | Endpoint] = spec.split(",") if isinstance(spec, str) else spec
    endpoints: list[Endpoint] = []
    for item in items:
        if isinstance(item, Endpoint):
            endpoints.append(item)
        elif isinstance(item, str):
            endpoints.append(_parse_one(item))
        elif isinstance(item, tuple) and len(item) == 2:
            endpoints.append(Endpoint(str(item[0]), int(item[1])))
        else:
            raise ValueError(f"not a server address: {item!r}")
    if not endpoints:
        raise ValueError("no server address given")
    return endpoints


# ---------------------------------------------------------------------------------- errors


class KmipTransportError(Exception):
    """Base class of the transport's errors: the exchange did not produce a response."""


class ServerUnavailable(KmipTransportError):
    """No endpoint could be reached. ``failures`` holds each ``(endpoint, error)`` in the
    order tried (an endpoint may appear twice if it failed mid-exchange and then on connect)."""

    def __init__(self, failures: Sequence[tuple[Endpoint, BaseException]]) -> None:
        self.failures = list(failures)
        details = "; ".join(f"{endpoint}: {_describe(error)}" for endpoint, error in self.failures)
        super().__init__(f"no KMIP server available ({details or 'no endpoint to try'})")


class ConnectionLost(KmipTransportError):
    """The connection failed after the request was (at least partly) sent and no retry was
    allowed or left. ``request_sent`` says whether the server may have processed it."""

    def __init__(self, message: str, *, endpoint: Endpoint | None = None, request_sent: bool = True) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.request_sent = request_sent


class KmipTimeout(ConnectionLost):
    """No complete response within the pool's ``timeout``; the server may have processed the
    request (``request_sent``). A subclass of :class:`ConnectionLost`, which it is too."""


class InvalidResponse(KmipTransportError):
    """The server's bytes are not a KMIP message (bad framing, or over ``max_message_size``)."""


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return f"timed out ({error})" if str(error) else "timed out"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {error.verify_message or error}"
    return f"{type(error).__name__}: {error}"


# ---------------------------------------------------------------------- shared bookkeeping


@dataclasses.dataclass(frozen=True)
class PoolStats:
    """Counters since the pool was created (a snapshot; see :meth:`ConnectionPool.stats`)."""

    opened: int  #: connections established (TCP + TLS handshake)
    reused: int  #: exchanges sent on an idle pooled connection
    stale: int  #: idle connections found closed by the server (on probe or on first use)
    retries: int  #: exchanges re-sent after a failure (stale re-sends included)
    failed_connects: int  #: connection attempts that failed
    idle: int  #: connections idle in the pool right now


class _Failure(Exception):
    """Internal: one attempt on one connection failed. ``stage`` is where: while sending the
    request, or while waiting for the response (after which it may have been processed)."""

    def __init__(self, stage: Literal["send", "receive"], received: int, cause: BaseException) -> None:
        super().__init__(stage, received, cause)
        self.stage = stage
        self.received = received
        self.cause = cause


class _Attempts:
    """One exchange's history: what failed where, and how many retries it has used."""

    def __init__(self) -> None:
        self.failures: list[tuple[Endpoint, BaseException]] = []
        self.retries = 0
        self.fresh_only = False  # after any failure, never hand this exchange a pooled connection


class _PoolCore:
    """Endpoint order, down-marking and counters: everything the blocking and the asyncio pool
    share. The lock is never held across I/O (or an ``await``), so both can use it."""

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        *,
        timeout: float,
        connect_timeout: float | None,
        max_idle_per_endpoint: int,
        max_message_size: int,
        retries: int,
        backoff: float,
    ) -> None:
        if not endpoints:
            raise ValueError("a connection pool needs at least one endpoint")
        if timeout <= 0 or (connect_timeout is not None and connect_timeout <= 0):
            raise ValueError("timeouts must be positive")
        if retries < 0 or max_idle_per_endpoint < 0 or backoff < 0:
            raise ValueError("retries, max_idle_per_endpoint and backoff must not be negative")
        self.endpoints = list(dict.fromkeys(endpoints))  # order kept, duplicates dropped
        self.timeout = timeout
        self.connect_timeout = timeout if connect_timeout is None else connect_timeout
        self.max_idle = max_idle_per_endpoint
        self.max_message_size = max_message_size
        self.retries = retries
        self.backoff = backoff
        self.lock = threading.Lock()
        self.closed = False
        self._down_until: dict[Endpoint, float] = {}
        self.counts = {"opened": 0, "reused": 0, "stale": 0, "retries": 0, "failed_connects": 0}

    def candidates(self) -> list[Endpoint]:
        """Endpoints to try, in order: those up first, then those marked down."""
        if not self._down_until:  # the usual case: every endpoint up (a racy read is harmless)
            return self.endpoints
        now = time.monotonic()
        with self.lock:
            down = {e for e, until in self._down_until.items() if until > now}
        return [e for e in self.endpoints if e not in down] + [e for e in self.endpoints if e in down]

    def mark_down(self, endpoint: Endpoint) -> None:
        with self.lock:
            self._down_until[endpoint] = time.monotonic() + self.backoff

    def mark_up(self, endpoint: Endpoint) -> None:
        if self._down_until and endpoint in self._down_until:  # (a racy first read is harmless)
            with self.lock:
                self._down_until.pop(endpoint, None)

    def count(self, name: str) -> None:
        with self.lock:
            self.counts[name] += 1

    def stats(self, idle: int) -> PoolStats:
        with self.lock:
            return PoolStats(idle=idle, **self.counts)

    def after_failure(
        self, failure: _Failure, endpoint: Endpoint, *, reused: bool, idempotent: bool, attempts: _Attempts
    ) -> None:
        """Apply the module's retry rules: return to retry, or raise the exchange's error."""
        attempts.failures.append((endpoint, failure.cause))
        attempts.fresh_only = True
        timed_out = isinstance(failure.cause, TimeoutError)
        if reused and failure.received == 0 and not timed_out:
            # Stale: closed by the server while idle. Re-sent once: the retry is on a fresh
            # connection, which is never "reused", so this branch cannot repeat.
            self.count("stale")
            self.count("retries")
            return
        self.mark_down(endpoint)
        sent = failure.stage == "receive"
        if sent and not idempotent:
            raise self._give_up(failure, endpoint, sent=True, why="not retried: the request is not idempotent")
        if attempts.retries >= self.retries:
            raise self._give_up(failure, endpoint, sent=sent, why=f"after {attempts.retries} retries")
        attempts.retries += 1
        self.count("retries")

    @staticmethod
    def _give_up(failure: _Failure, endpoint: Endpoint, *, sent: bool, why: str) -> ConnectionLost:
        where = "while sending the request" if failure.stage == "send" else "while waiting for the response"
        cls = KmipTimeout if isinstance(failure.cause, TimeoutError) else ConnectionLost
        error = cls(f"{endpoint}: {_describe(failure.cause)} {where} ({why})", endpoint=endpoint, request_sent=sent)
        error.__cause__ = failure.cause
        return error


def frame_response(framer: Framer, chunk: bytes) -> list[bytes]:
    """Feed ``chunk`` to ``framer``; a framing error becomes :class:`InvalidResponse`."""
    try:
        return framer.feed(chunk)
    except ProtocolError as error:
        raise InvalidResponse(f"the server's response is not a valid KMIP message: {error}") from error


#: Seconds a pooled connection may rest before it is probed for a server-side close on reuse.
_PROBE_AFTER = 1.0
#: How far past its time-out a response may be waited for when sending took a little time.
_SLACK = 0.05

# ------------------------------------------------------------------------ blocking transport


class _Connection:
    """One TLS connection, used by one exchange at a time."""

    def __init__(self, channel: TlsChannel, endpoint: Endpoint, idle: deque[_Connection]) -> None:
        self.channel = channel
        self.endpoint = endpoint
        self.idle = idle  # the pool's idle list for the endpoint (saves hashing the endpoint)
        self.reusable = True
        self.idle_since = 0.0

    def roundtrip(self, request: bytes, timeout: float, max_message_size: int) -> bytes:
        deadline = time.monotonic() + timeout
        try:
            self.channel.send(request, timeout)
        except OSError as error:
            raise _Failure("send", 0, error) from error
        # The first wait is the whole time-out unless sending took a noticeable part of it
        # (changing the socket's limit costs a system call, so it is not trimmed by micro-
        # seconds: the response is due within timeout + _SLACK of the request being sent).
        left = deadline - time.monotonic()
        try:
            chunk = self.channel.receive(timeout if left > timeout - _SLACK else _positive(left))
        except OSError as error:
            raise _Failure("receive", 0, error) from error
        # The usual case: the whole response in one read, handed back without a framer.
        if len(chunk) >= 8:
            tt, length = _HEADER.unpack_from(chunk)
            if tt & 0xFF == 0x01 and length + 8 == len(chunk) <= max_message_size:
                return chunk
        return self._rest_of_response(chunk, deadline, timeout, max_message_size)

    def _rest_of_response(self, chunk: bytes, deadline: float, timeout: float, max_message_size: int) -> bytes:
        framer = Framer(max_message_size)
        received = 0
        while True:
            if not chunk:
                eof = EOFError(f"the server closed the connection after {received} bytes of the response")
                raise _Failure("receive", received, eof)
            received += len(chunk)
            messages = frame_response(framer, chunk)
            if messages:
                if len(messages) > 1 or framer.buffered:
                    self.reusable = False  # bytes we did not ask for: the stream is out of step
                return messages[0]
            try:
                remaining = deadline - time.monotonic()  # a response in several reads: what is left
                if remaining <= 0:
                    raise TimeoutError(f"no complete response within {timeout} s")
                chunk = self.channel.receive(remaining)
            except OSError as error:
                raise _Failure("receive", received, error) from error

    def alive(self) -> bool:
        """Probe an idle connection without blocking: False if the server closed it (or sent
        something unsolicited, which leaves the stream out of step)."""
        return self.channel.probe()

    def close(self) -> None:
        self.channel.close()


def _positive(seconds: float) -> float:
    if seconds <= 0:
        raise TimeoutError("the time-out ran out while sending the request")
    return seconds


_C = TypeVar("_C")


class _PoolBase(Generic[_C]):
    """What the blocking and the asyncio pool share: settings, counters, idle connections."""

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        ssl_context: ssl.SSLContext,
        *,
        timeout: float = 10.0,
        connect_timeout: float | None = None,
        max_idle_per_endpoint: int = 4,
        max_message_size: int = 1 << 20,
        retries: int = 2,
        backoff: float = 5.0,
    ) -> None:
        self._core = _PoolCore(
            endpoints,
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_idle_per_endpoint=max_idle_per_endpoint,
            max_message_size=max_message_size,
            retries=retries,
            backoff=backoff,
        )
        self._ssl_context = ssl_context
        self._idle: dict[Endpoint, deque[_C]] = {e: deque() for e in self._core.endpoints}

    @property
    def endpoints(self) -> list[Endpoint]:
        """The endpoints, in order of preference."""
        return list(self._core.endpoints)


class ConnectionPool(_PoolBase["_Connection"]):
    """A thread-safe pool of TLS connections to KMIP servers, with failover and retries.

    Each :meth:`exchange` has a connection to itself for its whole duration; idle connections
    are kept per endpoint (at most ``max_idle_per_endpoint``) and reused most recent first.
    See the module docstring for the exact retry and failover rules.

    :param endpoints: servers in order of preference (see :func:`parse_servers`).
    :param ssl_context: e.g. from :func:`kmip_client.tls.client_ssl_context`; the endpoint's
        host is sent as the TLS server name and checked if the context checks host names.
    :param timeout: seconds allowed for one request to be sent and its whole response received
        (up to 50 ms more: the socket's wait limit is not re-set for less).
    :param connect_timeout: seconds for TCP connect plus TLS handshake (default ``timeout``).
    :param max_message_size: largest response accepted, header included.
    :param retries: how many times an idempotent request is re-sent after a failure that may
        have reached the server.
    :param backoff: seconds an endpoint that failed is tried only after the others.
    """

    def exchange(self, request: bytes, *, idempotent: bool) -> bytes:
        """Send one whole KMIP request message and return the whole response message.

        :param idempotent: whether the request may safely be processed twice (e.g. Get,
            Locate, Discover Versions); only then is it re-sent after a failure that may have
            reached the server.
        :raises ServerUnavailable: no endpoint could be connected to.
        :raises KmipTimeout: no response in time (``request_sent`` tells whether it may have
            been processed).
        :raises ConnectionLost: the connection failed mid-exchange and no retry was allowed.
        :raises InvalidResponse: the response does not frame as a KMIP message.
        :raises KmipTransportError: the pool is closed.
        """
        attempts = _Attempts()
        while True:
            connection, reused = self._acquire(attempts)
            ok = False
            try:
                response = connection.roundtrip(bytes(request), self._core.timeout, self._core.max_message_size)
                ok = True
            except _Failure as failure:
                self._core.after_failure(
                    failure, connection.endpoint, reused=reused, idempotent=idempotent, attempts=attempts
                )
                continue
            finally:
                if not ok:
                    connection.close()
            self._core.mark_up(connection.endpoint)
            self._release(connection)
            return response

    def _acquire(self, attempts: _Attempts) -> tuple[_Connection, bool]:
        core = self._core
        for endpoint in core.candidates():
            if core.closed:
                break
            if not attempts.fresh_only:
                connection = self._pop_idle(endpoint)
                if connection is not None:
                    return connection, True
            try:
                connection = self._connect(endpoint)
            except OSError as error:  # refused, unreachable, timed out, TLS failure (SSLError)
                core.count("failed_connects")
                core.mark_down(endpoint)
                attempts.failures.append((endpoint, error))
                continue
            core.count("opened")
            return connection, False
        if core.closed:
            raise KmipTransportError("the connection pool is closed")
        raise ServerUnavailable(attempts.failures)

    def _pop_idle(self, endpoint: Endpoint) -> _Connection | None:
        """An idle connection to ``endpoint`` that is still open (counted as reused), or None."""
        core = self._core
        while True:
            with core.lock:
                idle = self._idle[endpoint]
                if not idle:
                    return None
                connection = idle.pop()  # LIFO: the most recently used is the least likely stale
                # A connection back in the pool for under a second is not worth a probe (a system
                # call, as costly as a Get's own): servers close idle ones after minutes, and
                # the stale rule still catches the rare close in between.
                if time.monotonic() - connection.idle_since < _PROBE_AFTER:
                    core.counts["reused"] += 1
                    return connection
            if connection.alive():
                core.count("reused")
                return connection
            core.count("stale")
            connection.close()

    def _connect(self, endpoint: Endpoint) -> _Connection:
        channel = TlsChannel.connect(endpoint.host, endpoint.port, self._ssl_context, self._core.connect_timeout)
        return _Connection(channel, endpoint, self._idle[endpoint])

    def _release(self, connection: _Connection) -> None:
        with self._core.lock:
            idle = connection.idle
            if not self._core.closed and connection.reusable and len(idle) < self._core.max_idle:
                connection.idle_since = time.monotonic()
                idle.append(connection)
                return
        connection.close()

    def stats(self) -> PoolStats:
        """A snapshot of the pool's counters."""
        with self._core.lock:
            idle = sum(len(d) for d in self._idle.values())
        return self._core.stats(idle)

    def close(self) -> None:
        """Close the idle connections; connections in use close when their exchange ends.
        Further exchanges raise :class:`KmipTransportError`. Idempotent."""
        with self._core.lock:
            self._core.closed = True
            connections = [c for d in self._idle.values() for c in d]
            for d in self._idle.values():
                d.clear()
        for connection in connections:
            connection.close()

    def __enter__(self) -> ConnectionPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
