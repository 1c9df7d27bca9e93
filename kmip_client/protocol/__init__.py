"""The sans-I/O KMIP protocol layer shared by the client library and the server.

Nothing here touches sockets, TLS, threads or databases: bytes in, typed values out, and back.
"""

from __future__ import annotations
