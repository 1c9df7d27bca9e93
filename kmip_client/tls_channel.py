"""A client TLS connection driven through memory BIOs over a blocking socket.

The blocking pool (:mod:`kmip_client.transport`) used :class:`ssl.SSLSocket` with a socket
timeout. For that, Python waits in ``poll`` before every write and after every read that
finds nothing, and OpenSSL reads each record in two system calls (its header, then the rest):
six system calls per request and response. Here OpenSSL works on memory buffers
(:class:`ssl.SSLObject` with two :class:`ssl.MemoryBIO`) and this module moves the bytes
itself on a blocking socket whose waits are bounded by ``SO_SNDTIMEO`` and ``SO_RCVTIMEO``:
one ``send`` and usually one ``recv`` per exchange. Each socket call's bound is what is left
of the caller's time, so the time limits stay exact (a blocking :class:`ssl.SSLSocket` with
those options would not do: Python retries a read that timed out, forever).

Errors are the socket's and the ssl module's (:class:`OSError` subclasses); a wait that ran out
is a :class:`TimeoutError`.
"""

from __future__ import annotations

import socket
import ssl
import struct
import time

__all__ = ["TlsChannel"]

_RECV_SIZE = 65536
_TIMEVAL = struct.Struct("@ll")  # struct timeval: seconds, microseconds


class TlsChannel:
    """One TLS connection (client side). Not thread-safe: one exchange at a time."""

    def __init__(self, raw: socket.socket, tls: ssl.SSLObject, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO):
        self._raw = raw
        self._tls = tls
        self._incoming = incoming
        self._outgoing = outgoing
        self._send_timeout: float | None = None  # the SO_SNDTIMEO / SO_RCVTIMEO now set
        self._recv_timeout: float | None = None

    @classmethod
    def connect(cls, host: str, port: int, context: ssl.SSLContext, timeout: float) -> TlsChannel:
        """TCP connection and TLS handshake (server certificate and host name checked as
        ``context`` says), both within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        raw = socket.create_connection((host, port), timeout=timeout)
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # requests are small, latency matters
            raw.settimeout(None)  # blocking from here: the waits are bounded by the socket options
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            channel = cls(raw, context.wrap_bio(incoming, outgoing, server_hostname=host), incoming, outgoing)
            channel._handshake(deadline)
        except BaseException:
            raw.close()
            raise
        return channel

    def _handshake(self, deadline: float) -> None:
        while True:
            try:
                self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush(_left(deadline, "the TLS handshake"))
                if not self._fill(_left(deadline, "the TLS handshake")):
                    raise ConnectionResetError("the server closed the connection during the TLS handshake") from None
        self._flush(_left(deadline, "the TLS handshake"))  # the client's last handshake message

    def send(self, data: bytes, timeout: float) -> None:
        """Encrypt and send all of ``data``; each wait for the socket at most ``timeout``."""
        self._tls.write(data)
        self._flush(timeout)

    def receive(self, timeout: float) -> bytes:
        """The application bytes that arrive next (at least one), or b"" at the end of the
        stream (the server closed the connection, or sent TLS close_notify); within ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            if not self._fill(timeout):
                return b""
            try:
                data = self._tls.read(_RECV_SIZE)
            except ssl.SSLWantReadError:
                # Only records without application data so far (TLS 1.3 session tickets, or
                # part of a record): read on, in what is left of the time.
                timeout = _left(deadline, "the response")
                if self._outgoing.pending:  # OpenSSL answered something (a key update, a renegotiation)
                    self._flush(timeout)
                continue
            except ssl.SSLZeroReturnError:
                return b""
            if self._tls.pending() or self._incoming.pending:  # several records in one read
                data += self._drain()
            return data

    def _drain(self) -> bytes:
        parts = []
        while True:
            try:
                parts.append(self._tls.read(_RECV_SIZE))
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                return b"".join(parts)

    def _fill(self, timeout: float) -> bool:
        """One read from the socket into OpenSSL's input; False at end of stream."""
        if self._recv_timeout != timeout:  # a system call, so only when it changes
            self._raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(timeout))
            self._recv_timeout = timeout
        try:
            data = self._raw.recv(_RECV_SIZE)
        except BlockingIOError:
            raise TimeoutError(f"nothing received within {timeout:g} s") from None
        if not data:
            return False
        self._incoming.write(data)
        return True

    def _flush(self, timeout: float) -> None:
        """Send what OpenSSL has written."""
        data = self._outgoing.read()
        if not data:
            return
        if self._send_timeout != timeout:
            self._raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(timeout))
            self._send_timeout = timeout
        try:
            self._raw.sendall(data)
        except BlockingIOError:
            raise TimeoutError(f"could not send within {timeout:g} s") from None

    def probe(self) -> bool:
        """Whether an idle connection is still usable, without waiting: False if the server
        closed it or sent something unasked (the stream would be out of step)."""
        if self._tls.pending():
            return False
        try:
            data = self._raw.recv(_RECV_SIZE, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True  # nothing to read
        except OSError:
            return False
        if not data:
            return False
        self._incoming.write(data)
        try:
            self._tls.read(_RECV_SIZE)
        except ssl.SSLWantReadError:
            return True  # TLS 1.3 session tickets only: consumed
        except ssl.SSLError:
            return False  # close_notify or another alert
        return False  # application data nobody asked for

    def close(self) -> None:
        """Close the socket (best effort: it may be broken already)."""
        try:
            self._raw.close()
        except OSError:
            pass


def _timeval(seconds: float) -> bytes:
    # At least a microsecond: zero would mean "wait for ever".
    micros = max(int(seconds * 1_000_000), 1)
    return _TIMEVAL.pack(micros // 1_000_000, micros % 1_000_000)


def _left(deadline: float, what: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(f"{what} did not complete in time")
    return left
