"""The KMIP listeners: binary TTLV over mutual TLS and, optionally, KMIP over HTTPS, served by
forked worker processes."""

from __future__ import annotations

from .https_listener import HttpsListener
from .listener import BatchHandler, Listener, MessageHandler
from .tls import IDENTITY_MODES, identity_from_certificate, server_ssl_context
from .workers import HandlerFactory, batch_handler_of, bind_listening_socket, raise_file_limit, run_server

__all__ = [
    "IDENTITY_MODES",
    "BatchHandler",
    "HandlerFactory",
    "HttpsListener",
    "Listener",
    "MessageHandler",
    "batch_handler_of",
    "bind_listening_socket",
    "identity_from_certificate",
    "raise_file_limit",
    "run_server",
    "server_ssl_context",
]
