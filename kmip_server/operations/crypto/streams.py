"""Streamed cryptographic operations: Init Indicator, Final Indicator and Correlation Value.

A client may send Encrypt, Decrypt, Sign, Signature Verify, MAC, MAC Verify or Hash in parts
(KMIP 1.3 onward): the first part carries Init Indicator True, the server answers with a
Correlation Value, and each further part carries that value until one has Final Indicator
True. The parts may come on other connections, so to another worker process or (PostgreSQL)
another node: the state of a stream therefore lives in the store (``crypto_streams``), not in
a process.

What a stream keeps: the key's identifier and the Cryptographic Parameters from its first
part, the handler's own values (IV, additional data) and the input received so far. Input is
kept rather than a cipher context because the contexts of the ``cryptography`` package cannot
be serialized: each part runs the operation again over all input and returns the output not
yet returned. Before it reaches the store the state is sealed by custody (AES-GCM under the
HSM master key, the stream's id, owner and operation as authenticated data), so plaintext,
keys and IVs are never written anywhere in the clear.

Bounded three ways (``[crypto]`` settings): ``streams_per_identity`` open streams per client
identity, ``stream_idle_seconds`` between parts (a stream left idle is gone; expired rows are
deleted whenever a stream opens) and ``stream_max_bytes`` of input per stream.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from typing import Any

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.model.attributes import CryptographicParameters
from kmip_client.protocol.model.base import decode_struct, to_bytes
from kmip_client.protocol.spec.enums import Operation, ResultReason
from kmip_client.protocol.ttlv import decode

from ...crypto_settings import CryptoSettings
from ...custody import CustodyError
from ...engine.context import RequestContext, WriteNeeded
from ...storage import streams as table

R = ResultReason

_settings = CryptoSettings()


def configure(settings: CryptoSettings) -> None:
    """Set this process's stream bounds (called once per worker at start)."""
    global _settings
    _settings = settings


def _unknown(ctx: RequestContext, what: str) -> KmipError:
    """The same answer for a value that never existed, expired, or belongs to someone else:
    Invalid Correlation Value, which KMIP 2.x lists among the errors of the streamed operations;
    1.x has no such reason and gets Invalid Field."""
    return KmipError(
        f"Correlation Value {what}: no such stream is open (unknown, finished or expired)",
        ctx.defined_reason(R.INVALID_CORRELATION_VALUE, R.INVALID_FIELD),
    )


@dataclasses.dataclass(slots=True)
class Stream:
    """One streamed operation between its parts. See the module docstring."""

    correlation_value: bytes
    operation: int
    owner: str
    final: bool
    new: bool
    key_uid: str | None = None
    parameters: CryptographicParameters | None = None
    values: dict[str, bytes] = dataclasses.field(default_factory=dict, repr=False)
    data: bytes = dataclasses.field(default=b"", repr=False)
    emitted: int = 0

    @property
    def _id(self) -> str:
        return self.correlation_value.hex()

    def _context(self) -> bytes:
        return f"strongroom/v1/stream/{self._id}/{self.operation}/{self.owner}".encode()

    def save(self, ctx: RequestContext) -> None:
        """Keep the stream for its next part (sealed); refused past ``stream_max_bytes``."""
        if len(self.data) > _settings.stream_max_bytes:
            raise KmipError(
                f"a stream may gather at most {_settings.stream_max_bytes} bytes of input; "
                "send less or use a whole operation",
                R.ILLEGAL_OPERATION,
            )
        state = {
            "key": self.key_uid,
            "params": _b64(to_bytes(self.parameters)) if self.parameters is not None else None,
            "values": {name: _b64(value) for name, value in self.values.items()},
            "data": _b64(self.data),
            "emitted": self.emitted,
        }
        sealed = ctx.custody.wrap(json.dumps(state).encode(), self._context())
        expires = ctx.now + _settings.stream_idle_seconds
        table.put(ctx.session.connection, self._id, self.owner, self.operation, expires, sealed, new=self.new)
        self.new = False

    def close(self, ctx: RequestContext) -> None:
        """The final part is done: forget the stream."""
        if not self.new:
            table.remove(ctx.session.connection, self._id)


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def _unb64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def stream_of(ctx: RequestContext, operation: Operation, request: Any) -> Stream | None:
    """The stream ``request`` is a part of, or None for a whole operation.

    A new stream at Init Indicator True (unless Final Indicator is True too: one part is a
    whole operation); the saved one for a Correlation Value. Raises :class:`WriteNeeded` in a
    read transaction, since a stream part writes its state.
    """
    correlation = request.correlation_value
    init = bool(request.init_indicator)
    final = bool(request.final_indicator)
    if correlation is None and (not init or final):
        return None
    if not ctx.session.writable:
        raise WriteNeeded(f"streamed {operation.name}")
    owner = ctx.identity.name
    if correlation is None:
        return _opened(ctx, operation, owner)
    if init:
        raise KmipError(
            "a part with a Correlation Value continues a stream: Init Indicator must not be True", R.INVALID_FIELD
        )
    return _resumed(ctx, operation, owner, bytes(correlation), final)


def _opened(ctx: RequestContext, operation: Operation, owner: str) -> Stream:
    conn = ctx.session.connection
    table.purge_expired(conn, ctx.now)
    if table.open_count(conn, owner, ctx.now) >= _settings.streams_per_identity:
        raise KmipError(
            f"{owner!r} has {_settings.streams_per_identity} streams open, the limit: "
            "finish one (Final Indicator) or let it expire",
            R.ILLEGAL_OPERATION,
        )
    return Stream(os.urandom(16), int(operation), owner, final=False, new=True)


def _resumed(ctx: RequestContext, operation: Operation, owner: str, correlation: bytes, final: bool) -> Stream:
    shown = correlation.hex()[:8] + "..."
    row = table.load(ctx.session.connection, correlation.hex())
    if row is None:
        raise _unknown(ctx, shown)
    stored_owner, stored_operation, expires, sealed = row
    if stored_owner != owner or expires <= ctx.now:
        raise _unknown(ctx, shown)
    if stored_operation != int(operation):
        raise KmipError(
            f"Correlation Value {shown} belongs to a {Operation(stored_operation).name} stream, not {operation.name}",
            ctx.defined_reason(R.INVALID_CORRELATION_VALUE, R.INVALID_FIELD),
        )
    stream = Stream(correlation, int(operation), owner, final=final, new=False)
    try:
        state = json.loads(ctx.custody.unwrap(sealed, stream._context()))
    except CustodyError:
        raise _unknown(ctx, shown) from None
    stream.key_uid = state["key"]
    if state["params"] is not None:
        stream.parameters = decode_struct(CryptographicParameters, decode(_unb64(state["params"])))
    stream.values = {name: _unb64(value) for name, value in state["values"].items()}
    stream.data = _unb64(state["data"])
    stream.emitted = state["emitted"]
    return stream
