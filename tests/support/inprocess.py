"""An in-process transport: a client joined to a server dispatcher without sockets or TLS."""

from __future__ import annotations

from kmip_server.engine.dispatcher import Dispatcher
from kmip_server.engine.identity import ClientIdentity


class DispatcherTransport:
    """Hands each request message to ``dispatcher`` as ``identity`` (what TLS would prove)."""

    def __init__(self, dispatcher: Dispatcher, identity: str = "admin") -> None:
        self.dispatcher = dispatcher
        self.identity = ClientIdentity(identity)
        self.sent = 0

    def exchange(self, request: bytes, *, idempotent: bool) -> bytes:
        self.sent += 1
        return self.dispatcher.handle(request, self.identity)


class AsyncDispatcherTransport(DispatcherTransport):
    """The same for :class:`kmip_client.aio.AsyncClient`."""

    async def exchange(self, request: bytes, *, idempotent: bool) -> bytes:  # type: ignore[override]
        return DispatcherTransport.exchange(self, request, idempotent=idempotent)
