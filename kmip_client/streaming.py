"""Streamed cryptographic operations: data given in parts, one result at the end.

    with kmip.encryptor(uid, mode="GCM", iv=nonce, tag_length=16) as enc:
        out = enc.update(chunk1)
        out += enc.update(chunk2)
        out += enc.finalize()
    tag = enc.tag

KMIP 1.3 streams an operation over several requests: the first carries Init Indicator True
and the server answers with a Correlation Value, which every later part carries; the last
part has Final Indicator True and gets the final result (the tag, the signature, the digest).
The server keeps the stream's state between parts, so parts may travel over different pooled
connections, or reach different servers of a cluster that share a database.

Input is collected into parts of ``part_size`` bytes; a part is sent once more input follows
it, so the last one can carry the Final Indicator. Input that never exceeds one part is sent as
one whole operation at :meth:`finalize` (no stream at all: one round trip, any KMIP version).
``update`` returns the output the server released so far (ciphertext or plaintext; nothing for
Sign, Verify, MAC and Hash), ``finalize`` the rest or the final result. What a decryptor's
``update`` returns in GCM or CCM is authenticated only once ``finalize`` succeeds.

A stream is used by one thread or task at a time. One that fails, or is left without
``finalize``, is abandoned: the server forgets it when it expires.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

from . import operations as ops
from .crypto_calls import crypto_parameters, verify_result
from .operations import Call, Version
from .protocol.errors import KmipError
from .protocol.spec.enums import Operation, ResultReason

__all__ = ["AsyncCryptoStream", "CryptoStream", "StreamPlan", "DEFAULT_PART_SIZE"]

R = TypeVar("R")

#: The first version with streamed operations (Correlation Value, Init and Final Indicator).
STREAMING_VERSION: Version = (1, 3)

#: Bytes of input per streamed part: a part and its answer stay well inside a 1 MiB message.
DEFAULT_PART_SIZE = 256 * 1024


def _bytes_of(field: str) -> Callable[[Any], bytes]:
    def read(payload: Any) -> bytes:
        value = getattr(payload, field)
        if value is None:
            raise KmipError(f"the server's final answer carries no {field}", ResultReason.INVALID_MESSAGE)
        return bytes(value)

    return read


@dataclasses.dataclass(frozen=True)
class StreamPlan(Generic[R]):
    """What one kind of stream sends and reads.

    ``first`` goes only with the first part (IV, additional data), ``last`` only with the final
    one (the tag, signature or MAC to check); ``output`` names the response field each part
    returns bytes in; ``result`` reads the final answer.
    """

    operation: Operation
    uid: str | None
    options: Mapping[str, Any]
    result: Callable[[Any], R]
    first: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    last: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    output: str | None = None
    data_field: str = "data"


# --------------------------------------------------------------------------- the kinds


def encrypt_plan(uid: str, iv: bytes | None, aad: bytes | None, options: Mapping[str, Any]) -> StreamPlan[bytes]:
    first = {"iv_counter_nonce": iv, "authenticated_encryption_additional_data": aad}
    return StreamPlan(Operation.ENCRYPT, uid, options, _bytes_of("data"), first=first, output="data")


def decrypt_plan(
    uid: str, iv: bytes | None, aad: bytes | None, tag: bytes | None, options: Mapping[str, Any]
) -> StreamPlan[bytes]:
    first = {"iv_counter_nonce": iv, "authenticated_encryption_additional_data": aad}
    last = {"authenticated_encryption_tag": tag}
    return StreamPlan(Operation.DECRYPT, uid, options, _bytes_of("data"), first=first, last=last, output="data")


def sign_plan(uid: str, digested: bool, options: Mapping[str, Any]) -> StreamPlan[bytes]:
    field = "digested_data" if digested else "data"
    return StreamPlan(Operation.SIGN, uid, options, _bytes_of("signature_data"), data_field=field)


def verify_plan(uid: str, signature: bytes, digested: bool, options: Mapping[str, Any]) -> StreamPlan[Any]:
    field = "digested_data" if digested else "data"
    last = {"signature_data": bytes(signature)}
    return StreamPlan(Operation.SIGNATURE_VERIFY, uid, options, verify_result, last=last, data_field=field)


def mac_plan(uid: str, options: Mapping[str, Any]) -> StreamPlan[bytes]:
    return StreamPlan(Operation.MAC, uid, options, _bytes_of("mac_data"))


def mac_verify_plan(uid: str, mac: bytes, options: Mapping[str, Any]) -> StreamPlan[Any]:
    return StreamPlan(Operation.MAC_VERIFY, uid, options, verify_result, last={"mac_data": bytes(mac)})


def hash_plan(options: Mapping[str, Any]) -> StreamPlan[bytes]:
    return StreamPlan(Operation.HASH, None, options, _bytes_of("data"))


# --------------------------------------------------------------------------- sans-I/O core


class _StreamCore(Generic[R]):
    """The requests of one stream and what their answers leave behind (no I/O)."""

    def __init__(self, plan: StreamPlan[R], part_size: int) -> None:
        if part_size <= 0:
            raise ValueError("part_size must be positive")
        self.plan = plan
        self.part_size = part_size
        self.parameters = crypto_parameters(plan.options)  # checked now, not at the first send
        self.pending = bytearray()
        self.correlation: bytes | None = None
        self.parts = 0
        self.closed = False
        self.finished = False
        self.iv: bytes | None = plan.first.get("iv_counter_nonce")
        self.tag: bytes | None = None

    def check_open(self) -> None:
        if self.closed:
            raise ValueError(
                "this stream has ended (finalized, or failed)" if not self.finished else "already finalized"
            )

    def take_parts(self) -> list[bytes]:
        """The full parts that can go now: all but what may still be the last part."""
        found = []
        while len(self.pending) > self.part_size:
            found.append(bytes(self.pending[: self.part_size]))
            del self.pending[: self.part_size]
        return found

    def _item(self, data: bytes, **fields: Any) -> Any:
        plan = self.plan
        if plan.uid is not None:
            fields["unique_identifier"] = plan.uid
        fields[plan.data_field] = data
        return ops.request(plan.operation, cryptographic_parameters=self.parameters, **fields)

    def part(self, data: bytes) -> Call:
        """A part that is not the last: the first opens the stream."""
        if self.correlation is None:
            item = self._item(data, init_indicator=True, **self.plan.first)
        else:
            item = self._item(data, correlation_value=self.correlation)
        return Call(item, self._read_part)

    def _read_part(self, payload: Any) -> bytes:
        correlation = payload.correlation_value
        if correlation is None:
            raise KmipError(
                "the server did not continue the stream (its answer has no Correlation Value)",
                ResultReason.INVALID_MESSAGE,
            )
        self.correlation = bytes(correlation)
        self.parts += 1
        self._note(payload)
        output = getattr(payload, self.plan.output) if self.plan.output else None
        return bytes(output or b"")

    def final(self) -> Call:
        """The last part, or the whole operation when no part has gone yet."""
        data = bytes(self.pending)
        self.pending.clear()
        if self.correlation is None:
            item = self._item(data, **self.plan.first, **self.plan.last)
        else:
            item = self._item(data, correlation_value=self.correlation, final_indicator=True, **self.plan.last)
        return Call(item, self._read_final)

    def _read_final(self, payload: Any) -> R:
        self.parts += 1
        self._note(payload)
        self.finished = True
        return self.plan.result(payload)

    def _note(self, payload: Any) -> None:
        iv = getattr(payload, "iv_counter_nonce", None)
        if iv is not None:
            self.iv = bytes(iv)
        tag = getattr(payload, "authenticated_encryption_tag", None)
        if tag is not None:
            self.tag = bytes(tag)


def _left_open(core: _StreamCore[Any]) -> None:
    if not core.closed:
        core.closed = True
        raise ValueError(f"the {core.plan.operation.name} stream was left without finalize(): its result is lost")


class _Stream(Generic[R]):
    """What the blocking and the asyncio stream share."""

    def __init__(self, plan: StreamPlan[R], part_size: int) -> None:
        self._core = _StreamCore(plan, part_size)

    @property
    def iv(self) -> bytes | None:
        """The IV/Counter/Nonce in use: the server's when it generated one, else the one given."""
        return self._core.iv

    @property
    def tag(self) -> bytes | None:
        """The Authenticated Encryption Tag of an encryption, once finalized."""
        return self._core.tag

    @property
    def parts(self) -> int:
        """How many requests the stream has sent and had answered."""
        return self._core.parts


class CryptoStream(_Stream[R]):
    """A streamed operation over a blocking client (see the module docstring).

    Made by :meth:`kmip_client.Client.encryptor` and its siblings.
    """

    def __init__(
        self,
        run: Callable[[Call], Any],
        version: Callable[[], Version],
        plan: StreamPlan[R],
        part_size: int = DEFAULT_PART_SIZE,
    ) -> None:
        super().__init__(plan, part_size)
        self._send = run
        self._version = version

    def update(self, data: bytes) -> bytes:
        """Add ``data``; returns the output released so far (possibly nothing)."""
        core = self._core
        core.check_open()
        core.pending += data
        out = bytearray()
        try:
            for part in core.take_parts():
                if core.correlation is None:
                    _require_streaming(self._version())
                out += self._send(core.part(part))
        except BaseException:
            core.closed = True  # the server may or may not have taken the part: no way on
            raise
        return bytes(out)

    def finalize(self) -> R:
        """Send what remains; returns the rest of the output, or the final result."""
        core = self._core
        core.check_open()
        core.closed = True  # whatever the answer: a final part is never sent twice
        result: R = self._send(core.final())
        return result

    def __enter__(self) -> CryptoStream[R]:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            _left_open(self._core)
        self._core.closed = True


class AsyncCryptoStream(_Stream[R]):
    """A streamed operation over :class:`kmip_client.aio.AsyncClient` (``async with``)."""

    def __init__(
        self,
        run: Callable[[Call], Awaitable[Any]],
        version: Callable[[], Awaitable[Version]],
        plan: StreamPlan[R],
        part_size: int = DEFAULT_PART_SIZE,
    ) -> None:
        super().__init__(plan, part_size)
        self._send = run
        self._version = version

    async def update(self, data: bytes) -> bytes:
        """Add ``data``; returns the output released so far (possibly nothing)."""
        core = self._core
        core.check_open()
        core.pending += data
        out = bytearray()
        try:
            for part in core.take_parts():
                if core.correlation is None:
                    _require_streaming(await self._version())
                out += await self._send(core.part(part))
        except BaseException:
            core.closed = True  # the server may or may not have taken the part: no way on
            raise
        return bytes(out)

    async def finalize(self) -> R:
        """Send what remains; returns the rest of the output, or the final result."""
        core = self._core
        core.check_open()
        core.closed = True  # whatever the answer: a final part is never sent twice
        result: R = await self._send(core.final())
        return result

    async def __aenter__(self) -> AsyncCryptoStream[R]:
        return self

    async def __aexit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            _left_open(self._core)
        self._core.closed = True


def _require_streaming(version: Version) -> None:
    if version < STREAMING_VERSION:
        raise KmipError(
            f"streamed operations need KMIP 1.3 or later; this client speaks {version[0]}.{version[1]}",
            ResultReason.OPERATION_NOT_SUPPORTED,
        )
