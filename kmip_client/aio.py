"""The asyncio KMIP client: :class:`AsyncClient`, the twin of :class:`kmip_client.Client`.

    from kmip_client.aio import AsyncClient

    async with AsyncClient("kms:5696", ca="ca.crt", cert="app.crt", key="app.key") as kmip:
        uid = await kmip.create("AES", 256, name="orders-db")
        key = (await kmip.get(uid)).value

Same operations, arguments and results as the blocking client (both build their requests with
:mod:`kmip_client.calls`); the transport is an asyncio pool of mutual-TLS connections, safe to
share between tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import IntEnum
from typing import Any, Protocol

from . import operations as ops
from .calls import Call, Calls, wrapping_of
from .crypto_aio import AsyncCryptoMethods
from .crypto_calls import CryptoOptions
from .operations import BatchResult, KeyPair, ManagedObject, OperationPending, ServerInfo, Version
from .protocol.errors import KmipError
from .protocol.spec.enums import (
    AdjustmentType,
    BatchErrorContinuationOption,
    CancellationResult,
    CertificateRequestType,
    CryptographicAlgorithm,
    EncodingOption,
    KeyFormatType,
    ObjectType,
    RecommendedCurve,
    RevocationReasonCode,
    SecretDataType,
    State,
    ValidityIndicator,
)

__all__ = ["AsyncClient", "AsyncTransport"]


class AsyncTransport(Protocol):
    """What moves a request message to a server and its response back, asynchronously."""

    async def exchange(self, request: bytes, *, idempotent: bool) -> bytes: ...


class AsyncClient(AsyncCryptoMethods):
    """A KMIP client for asyncio; see :class:`kmip_client.Client` for the arguments (and
    :mod:`kmip_client.crypto_aio` for the cryptographic services)."""

    def __init__(
        self,
        servers: str | Sequence[Any] = "127.0.0.1:5696",
        *,
        ca: Any = None,
        cert: Any = None,
        key: Any = None,
        key_password: str | bytes | None = None,
        ssl_context: Any = None,
        timeout: float = 10.0,
        retries: int = 2,
        version: Version | None = None,
        transport: AsyncTransport | None = None,
    ) -> None:
        if transport is None:
            from .aio_transport import AsyncConnectionPool
            from .tls import client_ssl_context
            from .transport import parse_servers

            context = ssl_context or client_ssl_context(ca=ca, cert=cert, key=key, key_password=key_password)
            transport = AsyncConnectionPool(parse_servers(servers), context, timeout=timeout, retries=retries)
        self._transport = transport
        self._version = version
        self._negotiating = asyncio.Lock()

    async def aclose(self) -> None:
        """Close the pooled connections."""
        close = getattr(self._transport, "aclose", None)
        if close is not None:
            await close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def version(self) -> Version:
        """The protocol version requests use (negotiated on first use unless given)."""
        if self._version is None:
            async with self._negotiating:
                if self._version is None:
                    try:
                        offered = await self._discover((1, 1), ops.CLIENT_VERSIONS)
                    except KmipError:
                        offered = []
                    self._version = offered[0] if offered else (1, 0)
        return self._version

    async def _calls(self) -> Calls:
        return Calls(await self.version())

    async def _exchange(self, version: Version, call: Call) -> Any:
        request = ops.encode_request(version, [call.item], asynchronous=ops.allows_asynchronous(self))
        data = await self._transport.exchange(request, idempotent=call.idempotent)
        return ops.call_result(call, ops.decode_response(data))

    async def _run(self, make: Any, *args: Any, **kwargs: Any) -> Any:
        calls = await self._calls()
        return await self._exchange(calls.version, make(calls, *args, **kwargs))

    async def _send(self, call: Call) -> Any:
        """Send a call built without :class:`Calls` (a stream's part) in the negotiated version."""
        return await self._exchange(await self.version(), call)

    async def _send_batch(self, calls: Sequence[Call], option: BatchErrorContinuationOption) -> list[BatchResult]:
        version = await self.version()
        request = ops.encode_request(
            version, [call.item for call in calls], batch_option=option, asynchronous=ops.allows_asynchronous(self)
        )
        data = await self._transport.exchange(request, idempotent=all(call.idempotent for call in calls))
        return ops.batch_results(ops.decode_response(data), [call.parse for call in calls])

    async def _discover(self, version: Version, versions: Sequence[Version]) -> list[Version]:
        result: list[Version] = await self._exchange(version, Calls(version).discover_versions(versions))
        return result

    # ------------------------------------------------------------------ operations

    async def discover_versions(self, versions: Sequence[Version] = ops.CLIENT_VERSIONS) -> list[Version]:
        """The protocol versions the server supports among ``versions``, its preferred first."""
        return await self._discover(self._version or (1, 1), versions)

    async def query(self) -> ServerInfo:
        """The operations and object types the server supports, and who it is."""
        result: ServerInfo = await self._run(Calls.query)
        return result

    async def create(
        self,
        algorithm: CryptographicAlgorithm | str = CryptographicAlgorithm.AES,
        length: int = 256,
        *,
        name: str | Sequence[str] | None = None,
        usage_mask: int | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> str:
        """Create a symmetric key on the server; returns its Unique Identifier."""
        return str(await self._run(Calls.create, algorithm, length, name, usage_mask, attributes))

    async def create_key_pair(
        self,
        algorithm: CryptographicAlgorithm | str = CryptographicAlgorithm.RSA,
        length: int | None = None,
        *,
        curve: RecommendedCurve | str | None = None,
        private_name: str | Sequence[str] | None = None,
        public_name: str | Sequence[str] | None = None,
        private_usage_mask: int | None = None,
        public_usage_mask: int | None = None,
        attributes: Mapping[str, Any] | None = None,
        private_attributes: Mapping[str, Any] | None = None,
        public_attributes: Mapping[str, Any] | None = None,
    ) -> KeyPair:
        """Create a linked private and public key on the server (see ``Client.create_key_pair``)."""
        result: KeyPair = await self._run(
            Calls.create_key_pair,
            algorithm,
            length,
            curve,
            (private_name, public_name),
            (private_usage_mask, public_usage_mask),
            (attributes, private_attributes, public_attributes),
        )
        return result

    async def register_key(
        self,
        key: bytes,
        algorithm: CryptographicAlgorithm | str = CryptographicAlgorithm.AES,
        *,
        name: str | Sequence[str] | None = None,
        usage_mask: int | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> str:
        """Register an existing symmetric key (raw bytes); returns its Unique Identifier."""
        return str(await self._run(Calls.register_key, key, algorithm, name, usage_mask, attributes))

    async def register_wrapped_key(
        self,
        wrapped: bytes,
        algorithm: CryptographicAlgorithm | str,
        length: int,
        *,
        wrapped_by: str,
        wrap_options: CryptoOptions | None = None,
        wrap_encoding: EncodingOption | str | None = None,
        iv: bytes | None = None,
        name: str | Sequence[str] | None = None,
        usage_mask: int | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> str:
        """Register a symmetric key sent wrapped (see ``Client.register_wrapped_key``)."""
        wrapping = wrapping_of(wrapped_by, wrap_options, wrap_encoding)
        assert wrapping is not None
        return str(
            await self._run(
                Calls.register_wrapped_key, wrapped, algorithm, length, wrapping, iv, name, usage_mask, attributes
            )
        )

    async def register_secret(
        self,
        data: bytes,
        secret_type: SecretDataType = SecretDataType.PASSWORD,
        *,
        name: str | Sequence[str] | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> str:
        """Register Secret Data (a password, a seed); returns its Unique Identifier."""
        return str(await self._run(Calls.register_secret, data, secret_type, name, attributes))

    async def register_opaque(
        self,
        data: bytes,
        data_type: IntEnum | int = 0x80000000,
        *,
        name: str | Sequence[str] | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> str:
        """Register an Opaque Object (bytes the server does not interpret)."""
        return str(await self._run(Calls.register_opaque, data, data_type, name, attributes))

    async def get(
        self,
        uid: str,
        *,
        key_format: KeyFormatType | None = None,
        wrap_with: str | None = None,
        wrap_options: CryptoOptions | None = None,
        wrap_encoding: EncodingOption | str | None = None,
    ) -> ManagedObject:
        """The object ``uid`` with its value, wrapped under ``wrap_with`` if given (see ``Client.get``)."""
        wrapping = wrapping_of(wrap_with, wrap_options, wrap_encoding)
        result: ManagedObject = await self._run(Calls.get, uid, key_format, wrapping)
        return result

    async def certify(
        self,
        public_key: str,
        *,
        issuer: str | None = None,
        request: bytes | None = None,
        request_type: CertificateRequestType | None = None,
        name: str | Sequence[str] | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> str:
        """An X.509 certificate for ``public_key`` (see ``Client.certify``); its identifier."""
        return str(await self._run(Calls.certify, public_key, issuer, request, request_type, name, attributes))

    async def recertify(
        self, certificate: str, *, offset: int | None = None, attributes: Mapping[str, Any] | None = None
    ) -> str:
        """Renew ``certificate`` for the same key (see ``Client.recertify``)."""
        return str(await self._run(Calls.recertify, certificate, offset, attributes))

    async def validate(
        self, certificates: Sequence[bytes] = (), *, uids: Sequence[str] = (), when: datetime | None = None
    ) -> ValidityIndicator:
        """Whether a certificate chain is valid (see ``Client.validate``)."""
        result: ValidityIndicator = await self._run(Calls.validate, certificates, uids, when)
        return result

    async def rekey(self, uid: str, *, offset: int | None = None, attributes: Mapping[str, Any] | None = None) -> str:
        """Re-key symmetric key ``uid`` (see ``Client.rekey``); the replacement's identifier."""
        return str(await self._run(Calls.rekey, uid, offset, attributes))

    async def rekey_key_pair(
        self,
        private_uid: str,
        *,
        offset: int | None = None,
        attributes: Mapping[str, Any] | None = None,
        private_attributes: Mapping[str, Any] | None = None,
        public_attributes: Mapping[str, Any] | None = None,
    ) -> KeyPair:
        """Re-key the key pair of private key ``private_uid`` (see ``Client.rekey_key_pair``)."""
        extras = (attributes, private_attributes, public_attributes)
        result: KeyPair = await self._run(Calls.rekey_key_pair, private_uid, offset, extras)
        return result

    async def locate(
        self,
        *,
        name: str | None = None,
        object_type: ObjectType | None = None,
        algorithm: CryptographicAlgorithm | str | None = None,
        length: int | None = None,
        state: State | None = None,
        attributes: Mapping[str, Any] | None = None,
        max_items: int | None = None,
        offset: int | None = None,
    ) -> list[str]:
        """Unique Identifiers of the objects matching every given condition, newest first."""
        found = await self._run(
            Calls.locate,
            name=name,
            object_type=object_type,
            algorithm=algorithm,
            length=length,
            state=state,
            extra=attributes,
            max_items=max_items,
            offset=offset,
        )
        return list(found)

    async def activate(self, uid: str) -> None:
        """Make the object Active."""
        await self._run(Calls.activate, uid)

    async def revoke(
        self,
        uid: str,
        reason: RevocationReasonCode = RevocationReasonCode.UNSPECIFIED,
        *,
        message: str | None = None,
        compromise_date: datetime | None = None,
    ) -> None:
        """Revoke the object: Deactivated, or Compromised for a compromise reason."""
        await self._run(Calls.revoke, uid, reason, message, compromise_date)

    async def destroy(self, uid: str) -> None:
        """Destroy the object's value (its attributes remain)."""
        await self._run(Calls.destroy, uid)

    async def check(self, uid: str, *, usage_mask: int | None = None) -> None:
        """Raise unless the object may be used for ``usage_mask`` now."""
        await self._run(Calls.check, uid, usage_mask)

    async def get_attributes(self, uid: str, names: Sequence[str] | None = None) -> dict[str, list[Any]]:
        """Attribute name → values (all attributes when ``names`` is None)."""
        return dict(await self._run(Calls.get_attributes, uid, names))

    async def add_attribute(self, uid: str, name: str, value: Any) -> None:
        """Add an instance of attribute ``name`` (custom names: "x-...")."""
        await self._run(Calls.add_attribute, uid, name, value)

    async def set_attribute(self, uid: str, name: str, value: Any) -> None:
        """Give single-valued attribute ``name`` this value (see :meth:`Client.set_attribute`)."""
        calls = await self._calls()
        exists = not calls.v2 and bool(await self.get_attributes(uid, [name]))
        await self._exchange(calls.version, calls.set_attribute(uid, name, value, exists=exists))

    async def modify_attribute(self, uid: str, name: str, value: Any, *, current: Any = None, index: int = 0) -> None:
        """Change an instance of ``name``: the one holding ``current`` (2.x) or at ``index`` (1.x)."""
        await self._run(Calls.modify_attribute, uid, name, value, current, index)

    async def delete_attribute(self, uid: str, name: str, *, value: Any = None, index: int | None = None) -> None:
        """Delete ``name``: the instance holding ``value`` (2.x), at ``index`` (1.x), else all."""
        await self._run(Calls.delete_attribute, uid, name, value, index)

    async def adjust_attribute(
        self, uid: str, name: str, by: int, how: AdjustmentType = AdjustmentType.INCREMENT
    ) -> None:
        """Add ``by`` to a numeric or date attribute (KMIP 2.x)."""
        await self._run(Calls.adjust_attribute, uid, name, by, how)

    # ------------------------------------------------------------------ asynchronous answers

    def asynchronous(self) -> contextlib.AbstractContextManager[None]:
        """Within ``with kmip.asynchronous():`` this task's requests allow asynchronous answers
        (see :meth:`kmip_client.Client.asynchronous`); other tasks are not affected."""
        return ops.asynchronous_scope(self)

    async def poll(self, pending: OperationPending | bytes) -> Any:
        """The result of a held operation once run (see :meth:`kmip_client.Client.poll`)."""
        return await self._run(Calls.poll, pending)

    async def cancel(self, pending: OperationPending | bytes) -> CancellationResult:
        """Withdraw a held operation (see :meth:`kmip_client.Client.cancel`)."""
        result: CancellationResult = await self._run(Calls.cancel, pending)
        return result

    async def wait(self, pending: OperationPending, timeout: float = 300.0, interval: float = 2.0) -> Any:
        """Poll every ``interval`` seconds until the held operation has run (see
        :meth:`kmip_client.Client.wait`)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"still pending after {timeout} s: {pending}") from pending
            await asyncio.sleep(min(interval, remaining))
            try:
                return await self.poll(pending)
            except OperationPending as still:
                pending = still
