"""asyncio KMIP transport: :class:`AsyncConnectionPool`, the counterpart of
:class:`kmip_client.transport.ConnectionPool` with the same constructor, the same retry and
failover rules (see :mod:`kmip_client.transport`) and the same errors.

A pool belongs to the event loop it is first used on. Any number of tasks may call
:meth:`AsyncConnectionPool.exchange` concurrently; each gets a connection to itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl

from .protocol.framing import Framer
from .transport import (
    Endpoint,
    KmipTransportError,
    PoolStats,
    ServerUnavailable,
    _Attempts,
    _Failure,
    _PoolBase,
    frame_response,
)

__all__ = ["AsyncConnectionPool"]

_READ_SIZE = 65536
_CLOSE_WAIT = 1.0  # seconds to wait for a polite TLS close before giving up on it


class _AsyncConnection:
    """One TLS stream, used by one exchange at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, endpoint: Endpoint) -> None:
        self.reader = reader
        self.writer = writer
        self.endpoint = endpoint
        self.reusable = True

    async def roundtrip(self, request: bytes, timeout: float, max_message_size: int) -> bytes:
        stage: str = "send"
        received = 0
        framer = Framer(max_message_size)
        try:
            async with asyncio.timeout(timeout):
                self.writer.write(request)
                await self.writer.drain()
                # drain() only means the bytes left our buffer, so from here on the server may
                # have the request: failures count as "after sending".
                stage = "receive"
                while True:
                    chunk = await self.reader.read(_READ_SIZE)
                    if not chunk:
                        raise EOFError(f"the server closed the connection after {received} bytes of the response")
                    received += len(chunk)
                    messages = frame_response(framer, chunk)
                    if messages:
                        if len(messages) > 1 or framer.buffered:
                            self.reusable = False  # unsolicited bytes: the stream is out of step
                        return messages[0]
        except TimeoutError as error:
            cause = TimeoutError(f"no complete response within {timeout} s")
            raise _Failure("send" if stage == "send" else "receive", received, cause) from error
        except (OSError, EOFError) as error:
            raise _Failure("send" if stage == "send" else "receive", received, error) from error

    def alive(self) -> bool:
        """False if the server closed the idle connection (the stream reader has seen it)."""
        return not (self.reader.at_eof() or self.writer.is_closing() or self.reader.exception() is not None)

    def abort(self) -> None:
        """Drop a broken connection at once (no TLS close_notify exchange)."""
        self.writer.transport.abort()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
            await asyncio.wait_for(self.writer.wait_closed(), _CLOSE_WAIT)


class AsyncConnectionPool(_PoolBase["_AsyncConnection"]):
    """An asyncio pool of TLS connections to KMIP servers, with failover and retries.

    Parameters are those of :class:`kmip_client.transport.ConnectionPool`.
    """

    async def exchange(self, request: bytes, *, idempotent: bool) -> bytes:
        """Send one whole KMIP request message and return the whole response message.

        Same contract and errors as :meth:`kmip_client.transport.ConnectionPool.exchange`.
        Cancelling the task discards the connection it was using.
        """
        attempts = _Attempts()
        while True:
            connection, reused = await self._acquire(attempts)
            ok = False
            try:
                response = await connection.roundtrip(bytes(request), self._core.timeout, self._core.max_message_size)
                ok = True
            except _Failure as failure:
                self._core.after_failure(
                    failure, connection.endpoint, reused=reused, idempotent=idempotent, attempts=attempts
                )
                continue
            finally:
                if not ok:
                    connection.abort()
            self._core.mark_up(connection.endpoint)
            await self._release(connection)
            return response

    async def _acquire(self, attempts: _Attempts) -> tuple[_AsyncConnection, bool]:
        core = self._core
        for endpoint in core.candidates():
            if core.closed:
                break
            if not attempts.fresh_only:
                connection = self._pop_idle(endpoint)
                if connection is not None:
                    core.count("reused")
                    return connection, True
            try:
                connection = await self._connect(endpoint)
            except (OSError, TimeoutError) as error:  # refused, unreachable, timed out, TLS failure
                core.count("failed_connects")
                core.mark_down(endpoint)
                attempts.failures.append((endpoint, error))
                continue
            core.count("opened")
            return connection, False
        if core.closed:
            raise KmipTransportError("the connection pool is closed")
        raise ServerUnavailable(attempts.failures)

    def _pop_idle(self, endpoint: Endpoint) -> _AsyncConnection | None:
        idle = self._idle[endpoint]
        while idle:
            connection = idle.pop()  # LIFO: the most recently used is the least likely stale
            if connection.alive():
                return connection
            self._core.count("stale")
            connection.abort()
        return None

    async def _connect(self, endpoint: Endpoint) -> _AsyncConnection:
        timeout = self._core.connect_timeout
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                endpoint.host,
                endpoint.port,
                ssl=self._ssl_context,
                server_hostname=endpoint.host,
                ssl_handshake_timeout=timeout,
            )
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small requests, latency matters
        return _AsyncConnection(reader, writer, endpoint)

    async def _release(self, connection: _AsyncConnection) -> None:
        idle = self._idle[connection.endpoint]
        if not self._core.closed and connection.reusable and len(idle) < self._core.max_idle:
            idle.append(connection)
            return
        await connection.close()

    def stats(self) -> PoolStats:
        """A snapshot of the pool's counters."""
        return self._core.stats(sum(len(d) for d in self._idle.values()))

    async def aclose(self) -> None:
        """Close the idle connections; connections in use close when their exchange ends.
        Further exchanges raise :class:`KmipTransportError`. Idempotent."""
        self._core.closed = True
        connections = [c for d in self._idle.values() for c in d]
        for d in self._idle.values():
            d.clear()
        await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)

    async def __aenter__(self) -> AsyncConnectionPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
