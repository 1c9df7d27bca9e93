"""HTTP without TLS, for one purpose: the AWS XKS proxy API on 127.0.0.1 for local testing.

With ``[xks] insecure_http = true`` and ``insecure_http_port`` (kmip_server/hyok), every worker
also serves the XKS API, and nothing else, as plain HTTP on ``127.0.0.1:insecure_http_port``,
so that a developer can try it with ``curl --aws-sigv4`` or an XKS test client without a CA
(the issue asks for "plain HTTP only with an explicit insecure_http = true for local testing").
It is never bound to another address: AWS KMS itself only calls an HTTPS endpoint, and a
plaintext port reachable from elsewhere would carry data keys and plaintexts in the clear.
SigV4 still authenticates every request, exactly as on the admin listener.

Why a subclass of the HTTPS connection rather than asyncio's plain server or another HTTP
stack: the XKS route is written against ``_HttpsConnection`` and ``_Request``, and this way the
HTTP parsing and its refusals (request smuggling shapes, head limits, the lingering close
after a refusal), ``max_connections``, the idle time-out and the graceful shutdown are the
very code the TLS ports run. Only what TLS does is taken out: no handshake (the connection is
established as soon as it is made, with the anonymous identity the admin listener gives a
peer without a certificate), bytes go straight between the transport and the HTTP parser,
and closing sends no close_notify.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from ..config import ListenerSettings
from ..engine.identity import ClientIdentity
from .https_listener import HttpsListener, Route, _HttpsConnection
from .listener import MessageHandler

__all__ = ["PlainHttpListener"]


class _PlainHttpConnection(_HttpsConnection):
    """One client connection: HTTP requests straight over TCP."""

    __slots__ = ()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # the books, the write-buffer limits, a deadline
        if self._closing:
            return  # aborted there: displaced already, or the listener is stopping
        # What a completed TLS handshake does (_Connection._handshake), with no certificate.
        self._handshaking = False
        self._listener.admission.established(self)
        self._identity = ClientIdentity("", address=self._peer)
        self._set_deadline(self._listener.settings.idle_timeout)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            self._drop(len(data))  # after a refusal: read and dropped, as on the TLS ports
            return
        if self._closing or self._close_pending:
            return
        self._received(data)
        if self._draining and not self._closing and self._quiet:
            self._close()

    def _send(self, data: bytes) -> None:
        if self._closing or self._transport is None or self._transport.is_closing():
            return
        self._transport.write(data)

    def _say_close_notify(self) -> None:
        pass  # no TLS: the end of the answer is the Content-Length, and then the FIN


class PlainHttpListener(HttpsListener):
    """Serves ``routes`` over plain HTTP on one socket in a worker's event loop."""

    connection_class = _PlainHttpConnection

    def __init__(
        self,
        sock: socket.socket,
        settings: ListenerSettings,
        handler: MessageHandler,
        routes: dict[str, Route],
        *,
        view: Any = None,
    ) -> None:
        super().__init__(sock, None, settings, handler)
        self.routes = routes
        #: What routes that report the server's state read (the admin listener's ServerView,
        #: for XKS GetHealthStatus).
        self.view = view
