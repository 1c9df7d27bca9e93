"""KMIP over HTTPS (the OASIS HTTPS profile): each request message is POSTed to ``/kmip``.

The body is TTLV (``application/octet-stream``), JSON (``application/json``) or XML
(``text/xml``); the transport speaks TTLV to the client above it either way, converting on the
way out and back, so :class:`~kmip_client.Client` works over HTTPS unchanged::

    Client(transport=HttpsTransport("https://kms:5696/kmip", ssl_context, encoding="json"))

One kept-alive HTTP/1.1 connection per thread at a time (pooled); an idempotent request is sent
once more on a fresh connection after a connection failure, as the TLS pool does.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import urllib.parse

from .protocol.errors import ProtocolError
from .protocol.message_encodings import CONTENT_TYPES, from_ttlv, to_ttlv
from .transport import ConnectionLost, Endpoint, InvalidResponse, KmipTimeout, ServerUnavailable

__all__ = ["HttpsTransport", "CONTENT_TYPES"]

#: The body encodings of the KMIP HTTPS profile and their media types.


class HttpsTransport:
    """POSTs KMIP messages to ``url`` over mutual TLS; ``encoding`` is ttlv, json or xml."""

    def __init__(
        self,
        url: str,
        ssl_context: ssl.SSLContext,
        *,
        encoding: str = "ttlv",
        timeout: float = 10.0,
        max_message_size: int = 1 << 20,
    ) -> None:
        if encoding not in CONTENT_TYPES:
            raise ValueError(f"encoding must be one of {', '.join(CONTENT_TYPES)}, not {encoding!r}")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"not an https:// URL: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 443
        self.path = parts.path or "/kmip"
        self.encoding = encoding
        self.timeout = timeout
        self.max_message_size = max_message_size
        self._context = ssl_context
        self._idle: list[http.client.HTTPSConnection] = []
        self._lock = threading.Lock()
        self._closed = False

    def _ttlv(self, body: bytes) -> bytes:
        if len(body) > self.max_message_size:
            raise InvalidResponse(f"the response is larger than {self.max_message_size} bytes")
        try:
            return to_ttlv(body, self.encoding)
        except (ProtocolError, ValueError) as error:
            raise InvalidResponse(f"the server's {self.encoding} response is not a KMIP message: {error}") from error

    def _connection(self) -> tuple[http.client.HTTPSConnection, bool]:
        with self._lock:
            if self._closed:
                raise ConnectionLost("the HTTPS transport is closed", request_sent=False)
            if self._idle:
                return self._idle.pop(), True
        return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self._context), False

    def exchange(self, request: bytes, *, idempotent: bool) -> bytes:
        """POST one request message and return the response message as TTLV."""
        body = from_ttlv(request, self.encoding)
        headers = {"Content-Type": CONTENT_TYPES[self.encoding], "Accept": CONTENT_TYPES[self.encoding]}
        attempts = 2 if idempotent else 1
        for attempt in range(attempts):
            conn, reused = self._connection()
            sent = False
            try:
                conn.request("POST", self.path, body=body, headers=headers)
                sent = True
                answer = conn.getresponse()
                data = answer.read(self.max_message_size + 1)
                status = answer.status
            except TimeoutError as error:
                conn.close()
                raise KmipTimeout(f"no response from {self.host}:{self.port} within {self.timeout} s") from error
            except (OSError, http.client.HTTPException) as error:
                conn.close()
                if not sent and not reused:
                    raise ServerUnavailable([(Endpoint(self.host, self.port), error)]) from error
                # A kept-alive connection the server had closed, or a failure after sending: try a
                # fresh connection when that cannot run the request twice.
                if (reused and not sent) or (idempotent and attempt + 1 < attempts):
                    continue
                raise ConnectionLost(
                    f"HTTPS exchange with {self.host}:{self.port} failed: {error}", request_sent=True
                ) from error
            if status != 200:
                conn.close()
                raise InvalidResponse(f"the server answered HTTP {status} {answer.reason}")
            with self._lock:
                if not self._closed and not answer.will_close:
                    self._idle.append(conn)
                else:
                    conn.close()
            return self._ttlv(data)
        raise ConnectionLost(f"HTTPS exchange with {self.host}:{self.port} failed")

    def close(self) -> None:
        """Close the kept-alive connections."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
