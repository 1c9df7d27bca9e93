"""The blocking KMIP client.

    from kmip_client import Client

    with Client("kms1:5696,kms2:5696", ca="ca.crt", cert="app.crt", key="app.key") as kmip:
        uid = kmip.create("AES", 256, name="orders-db")
        kmip.activate(uid)
        key = kmip.get(uid).value

Requests and responses are built and read by :mod:`kmip_client.operations`; the transport (a
pool of mutual-TLS connections with failover, :class:`~kmip_client.transport.ConnectionPool`)
only moves bytes. Any object with ``exchange(request: bytes, *, idempotent: bool) -> bytes``
can stand in for it, which is how tests join a client to a server in process. A failed
operation raises the :class:`~kmip_client.protocol.errors.KmipError` subclass of its Result
Reason, with the server's message.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from enum import IntEnum
from typing import Any, Protocol

from . import operations as ops
from .calls import Call, Calls, wrapping_of
from .crypto_calls import CryptoOptions
from .crypto_client import CryptoBatchItems, CryptoMethods
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

__all__ = ["Client", "Batch", "Transport"]


class Transport(Protocol):
    """What moves a request message to a server and its response back."""

    def exchange(self, request: bytes, *, idempotent: bool) -> bytes: ...


class Client(CryptoMethods):
    """A KMIP client over mutual TLS (blocking; safe to share between threads).

    ``servers`` is "host:port[,host:port...]" or a list; several servers mean failover.
    TLS comes from ``ssl_context`` or from ``ca``/``cert``/``key``/``key_password``.
    ``version`` fixes the protocol version; by default the first request negotiates it with
    Discover Versions. ``transport`` replaces the TLS connection pool (tests, in-process use).
    The cryptographic services (encrypt, sign, mac, hash, rng, derive_key, and their streams)
    are described in :mod:`kmip_client.crypto_client`.
    """

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
        transport: Transport | None = None,
    ) -> None:
        if transport is None:
            from .tls import client_ssl_context
            from .transport import ConnectionPool, parse_servers

            context = ssl_context or client_ssl_context(ca=ca, cert=cert, key=key, key_password=key_password)
            transport = ConnectionPool(parse_servers(servers), context, timeout=timeout, retries=retries)
        self._transport = transport
        self._version = version
        self._calls_cache: Calls | None = None  # the requests of the negotiated version
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ plumbing

    def close(self) -> None:
        """Close the pooled connections."""
        close = getattr(self._transport, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def version(self) -> Version:
        """The protocol version requests use (negotiated on first use unless given)."""
        if self._version is None:
            with self._lock:
                if self._version is None:
                    self._version = self._negotiate()
        return self._version

    def _negotiate(self) -> Version:
        # Discover Versions exists from KMIP 1.1; a server that does not know it speaks 1.0.
        try:
            offered = self._discover((1, 1), ops.CLIENT_VERSIONS)
        except KmipError:
            return (1, 0)
        return offered[0] if offered else (1, 0)

    def _discover(self, version: Version, versions: Sequence[Version]) -> list[Version]:
        call = Calls(version).discover_versions(versions)
        data = self._transport.exchange(ops.encode_request(version, [call.item]), idempotent=True)
        result: list[Version] = call.parse(ops.single_payload(ops.decode_response(data)))
        return result

    @property
    def _calls(self) -> Calls:
        calls = self._calls_cache
        if calls is None or calls.version != self._version:
            calls = self._calls_cache = Calls(self.version)
        return calls

    def _run(self, call: Call) -> Any:
        request = ops.encode_request(self.version, (call.item,), asynchronous=ops.allows_asynchronous(self))
        data = self._transport.exchange(request, idempotent=call.idempotent)
        return ops.call_result(call, ops.decode_response(data))

    # ------------------------------------------------------------------ server

    def discover_versions(self, versions: Sequence[Version] = ops.CLIENT_VERSIONS) -> list[Version]:
        """The protocol versions the server supports among ``versions``, its preferred first."""
        return self._discover(self._version or (1, 1), versions)

    def query(self) -> ServerInfo:
        """The operations and object types the server supports, and who it is."""
        result: ServerInfo = self._run(self._calls.query())
        return result

    # ------------------------------------------------------------------ objects

    def create(
        self,
        algorithm: CryptographicAlgorithm | str = CryptographicAlgorithm.AES,
        length: int = 256,
        *,
        name: str | Sequence[str] | None = None,
        usage_mask: int | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> str:
        """Create a symmetric key on the server; returns its Unique Identifier.

        ``attributes`` adds any others by KMIP name ("Object Group", "x-tenant" ...).
        """
        return str(self._run(self._calls.create(algorithm, length, name, usage_mask, attributes)))

    def create_key_pair(
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
        """Create a private and a public key on the server, linked to each other.

        ``algorithm`` RSA (give ``length``, 2048 or more), ECDSA/ECDH/EC (give ``curve``,
        "P-256" ..., or the length 256/384/521), Ed25519 or Ed448. ``attributes`` go to both
        keys, ``private_attributes`` and ``public_attributes`` to one (and win over the common
        ones); without usage masks the server gives each key its usual ones (RSA: sign,
        decrypt, unwrap / verify, encrypt, wrap).
        """
        call = self._calls.create_key_pair(
            algorithm,
            length,
            curve,
            (private_name, public_name),
            (private_usage_mask, public_usage_mask),
            (attributes, private_attributes, public_attributes),
        )
        result: KeyPair = self._run(call)
        return result

    def register_key(
        self,
        key: bytes,
        algorithm: CryptographicAlgorithm | str = CryptographicAlgorithm.AES,
        *,
        name: str | Sequence[str] | None = None,
        usage_mask: int | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> str:
        """Register an existing symmetric key (raw bytes); returns its Unique Identifier."""
        return str(self._run(self._calls.register_key(key, algorithm, name, usage_mask, attributes)))

    def register_wrapped_key(
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
        """Register a symmetric key of ``length`` bits sent wrapped under the server's key
        ``wrapped_by`` (``wrap_options`` and ``wrap_encoding`` as for ``get``; ``iv`` for
        AES-GCM): the server unwraps it and stores it under its master key like any other."""
        wrapping = wrapping_of(wrapped_by, wrap_options, wrap_encoding)
        assert wrapping is not None  # wrapped_by is given
        call = self._calls.register_wrapped_key(wrapped, algorithm, length, wrapping, iv, name, usage_mask, attributes)
        return str(self._run(call))

    def register_secret(
        self,
        data: bytes,
        secret_type: SecretDataType = SecretDataType.PASSWORD,
        *,
        name: str | Sequence[str] | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> str:
        """Register Secret Data (a password, a seed); returns its Unique Identifier."""
        return str(self._run(self._calls.register_secret(data, secret_type, name, attributes)))

    def register_opaque(
        self,
        data: bytes,
        data_type: IntEnum | int = 0x80000000,
        *,
        name: str | Sequence[str] | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> str:
        """Register an Opaque Object (bytes the server does not interpret)."""
        return str(self._run(self._calls.register_opaque(data, data_type, name, attributes)))

    def get(
        self,
        uid: str,
        *,
        key_format: KeyFormatType | None = None,
        wrap_with: str | None = None,
        wrap_options: CryptoOptions | None = None,
        wrap_encoding: EncodingOption | str | None = None,
    ) -> ManagedObject:
        """The object ``uid`` with its value (``.value``: key bytes, secret or opaque data).

        ``wrap_with``: the key is returned wrapped under that key of the server (``.value`` is
        then the wrapped bytes; ``.raw.key_block.key_wrapping_data`` says how), with
        ``wrap_options`` as its Cryptographic Parameters (``{"mode": "NISTKEYWRAP"}``,
        ``{"padding": "OAEP", "hashing": "SHA_256"}`` ...) and ``wrap_encoding`` "none" (the
        key bytes alone) or "ttlv" (the whole Key Value; the server's default).
        """
        wrapping = wrapping_of(wrap_with, wrap_options, wrap_encoding)
        result: ManagedObject = self._run(self._calls.get(uid, key_format, wrapping))
        return result

    def certify(
        self,
        public_key: str,
        *,
        issuer: str | None = None,
        request: bytes | None = None,
        request_type: CertificateRequestType | None = None,
        name: str | Sequence[str] | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> str:
        """An X.509 certificate for Public Key ``public_key``, issued by the server's CA whose
        certificate is ``issuer`` (default: the server's configured one); ``request`` a PKCS#10
        request (DER or PEM) for that key, whose subject and extensions the certificate takes.
        Returns the new Certificate's identifier (``get`` it for the DER)."""
        return str(self._run(self._calls.certify(public_key, issuer, request, request_type, name, attributes)))

    def recertify(
        self, certificate: str, *, offset: int | None = None, attributes: Mapping[str, Any] | None = None
    ) -> str:
        """Renew ``certificate`` for the same key (``offset``: seconds from now until it is valid)."""
        return str(self._run(self._calls.recertify(certificate, offset, attributes)))

    def validate(
        self, certificates: Sequence[bytes] = (), *, uids: Sequence[str] = (), when: datetime | None = None
    ) -> ValidityIndicator:
        """Whether the chain (DER certificates, then those named by ``uids``, from the end entity
        up) is valid at ``when`` (default now) and ends at a certificate the server holds."""
        result: ValidityIndicator = self._run(self._calls.validate(certificates, uids, when))
        return result

    def rekey(self, uid: str, *, offset: int | None = None, attributes: Mapping[str, Any] | None = None) -> str:
        """Re-key symmetric key ``uid``: a replacement with new key material that takes over its
        Names and attributes (``offset`` seconds: when it activates after now); its identifier."""
        return str(self._run(self._calls.rekey(uid, offset, attributes)))

    def rekey_key_pair(
        self,
        private_uid: str,
        *,
        offset: int | None = None,
        attributes: Mapping[str, Any] | None = None,
        private_attributes: Mapping[str, Any] | None = None,
        public_attributes: Mapping[str, Any] | None = None,
    ) -> KeyPair:
        """Re-key the key pair of private key ``private_uid``: a new linked pair replacing both."""
        call = self._calls.rekey_key_pair(private_uid, offset, (attributes, private_attributes, public_attributes))
        result: KeyPair = self._run(call)
        return result

    def locate(
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
        call = self._calls.locate(
            name=name,
            object_type=object_type,
            algorithm=algorithm,
            length=length,
            state=state,
            extra=attributes,
            max_items=max_items,
            offset=offset,
        )
        return list(self._run(call))

    # ------------------------------------------------------------------ lifecycle

    def activate(self, uid: str) -> None:
        """Make the object Active."""
        self._run(self._calls.activate(uid))

    def revoke(
        self,
        uid: str,
        reason: RevocationReasonCode = RevocationReasonCode.UNSPECIFIED,
        *,
        message: str | None = None,
        compromise_date: datetime | None = None,
    ) -> None:
        """Revoke the object: Deactivated, or Compromised for a compromise reason."""
        self._run(self._calls.revoke(uid, reason, message, compromise_date))

    def destroy(self, uid: str) -> None:
        """Destroy the object's value (its attributes remain)."""
        self._run(self._calls.destroy(uid))

    def check(self, uid: str, *, usage_mask: int | None = None) -> None:
        """Raise unless the object may be used for ``usage_mask`` now."""
        self._run(self._calls.check(uid, usage_mask))

    # ------------------------------------------------------------------ attributes

    def get_attributes(self, uid: str, names: Sequence[str] | None = None) -> dict[str, list[Any]]:
        """Attribute name → values (all attributes when ``names`` is None)."""
        return dict(self._run(self._calls.get_attributes(uid, names)))

    def add_attribute(self, uid: str, name: str, value: Any) -> None:
        """Add an instance of attribute ``name`` (custom names: "x-...")."""
        self._run(self._calls.add_attribute(uid, name, value))

    def set_attribute(self, uid: str, name: str, value: Any) -> None:
        """Give single-valued attribute ``name`` this value (2.x Set Attribute; in 1.x Modify,
        or Add when the object does not have it yet)."""
        calls = self._calls
        exists = not calls.v2 and bool(self.get_attributes(uid, [name]))
        self._run(calls.set_attribute(uid, name, value, exists=exists))

    def modify_attribute(self, uid: str, name: str, value: Any, *, current: Any = None, index: int = 0) -> None:
        """Change an instance of ``name``: the one holding ``current`` (2.x) or at ``index`` (1.x)."""
        self._run(self._calls.modify_attribute(uid, name, value, current, index))

    def delete_attribute(self, uid: str, name: str, *, value: Any = None, index: int | None = None) -> None:
        """Delete ``name``: the instance holding ``value`` (2.x), at ``index`` (1.x), else all."""
        self._run(self._calls.delete_attribute(uid, name, value, index))

    def adjust_attribute(self, uid: str, name: str, by: int, how: AdjustmentType = AdjustmentType.INCREMENT) -> None:
        """Add ``by`` to a numeric or date attribute (KMIP 2.x)."""
        self._run(self._calls.adjust_attribute(uid, name, by, how))

    # ------------------------------------------------------------------ asynchronous answers

    def asynchronous(self) -> contextlib.AbstractContextManager[None]:
        """Within ``with kmip.asynchronous():`` this thread's requests allow asynchronous
        answers (the header's Asynchronous Indicator): an operation the server holds, for
        M-of-N approval say, raises :class:`~kmip_client.operations.OperationPending` instead
        of being refused. Other threads sharing the client are not affected."""
        return ops.asynchronous_scope(self)

    def poll(self, pending: OperationPending | bytes) -> Any:
        """The result of a held operation once the server has run it: what the operation's own
        method returns (Destroy, Revoke, Activate: the Unique Identifier). Raises
        OperationPending again while it is held, or the operation's error (a denied or expired
        request: PermissionDenied; an unknown correlation value: KmipError with reason
        Invalid Asynchronous Correlation Value, ItemNotFound in KMIP 1.x)."""
        return self._run(self._calls.poll(pending))

    def cancel(self, pending: OperationPending | bytes) -> CancellationResult:
        """Withdraw a held operation: Canceled, or what had become of it (Completed, Failed),
        or Unavailable for a correlation value that names none of this client's requests."""
        result: CancellationResult = self._run(self._calls.cancel(pending))
        return result

    def wait(self, pending: OperationPending, timeout: float = 300.0, interval: float = 2.0) -> Any:
        """Poll every ``interval`` seconds until the held operation has run; its result (as
        :meth:`poll`). Raises TimeoutError after ``timeout`` seconds still pending."""
        return _wait_for(lambda current: self.poll(current), pending, timeout, interval, time.sleep)

    # ------------------------------------------------------------------ batches

    def batch(self, option: BatchErrorContinuationOption = BatchErrorContinuationOption.STOP) -> Batch:
        """A batch builder: several operations in one message (see :class:`Batch`)."""
        return Batch(self, option)

    def _send_batch(self, calls: Sequence[Call], option: BatchErrorContinuationOption) -> list[BatchResult]:
        items = [call.item for call in calls]
        idempotent = all(call.idempotent for call in calls)
        data = self._transport.exchange(
            ops.encode_request(self.version, items, batch_option=option, asynchronous=ops.allows_asynchronous(self)),
            idempotent=idempotent,
        )
        return ops.batch_results(ops.decode_response(data), [call.parse for call in calls])


def _wait_for(
    poll: Callable[[OperationPending], Any],
    pending: OperationPending,
    timeout: float,
    interval: float,
    sleep: Callable[[float], object],
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"still pending after {timeout} s: {pending}") from pending
        sleep(min(interval, remaining))
        try:
            return poll(pending)
        except OperationPending as still:
            pending = still


class Batch(CryptoBatchItems):
    """Operations sent together in one request message, run by the server in order.

    Leave ``uid`` out to mean "the object of an earlier item" (the ID Placeholder)::

        batch = kmip.batch()
        batch.create("AES", 256, name="k1")
        batch.activate()
        results = batch.send()          # one BatchResult per item

    The cryptographic operations are items too (``batch.encrypt(uid, data, mode="GCM")``,
    :class:`~kmip_client.crypto_client.CryptoBatchItems`); each result's ``value`` is what the
    client method of the same name returns.
    """

    def __init__(self, client: Client, option: BatchErrorContinuationOption) -> None:
        self._client = client
        self._option = option
        self._calls: list[Call] = []

    def _uid(self, uid: str | None) -> Any:
        return uid if uid is not None else ops.placeholder(self._client.version)

    def _add(self, make: Callable[[Calls], Call]) -> Batch:
        self._calls.append(make(self._client._calls))
        return self

    def create(self, algorithm: CryptographicAlgorithm | str = "AES", length: int = 256, **kwargs: Any) -> Batch:
        """Add a Create (arguments as :meth:`Client.create`)."""
        name, usage_mask, extra = kwargs.get("name"), kwargs.get("usage_mask"), kwargs.get("attributes")
        return self._add(lambda calls: calls.create(algorithm, length, name, usage_mask, extra))

    def activate(self, uid: str | None = None) -> Batch:
        """Add an Activate of ``uid`` (default: the ID Placeholder)."""
        return self._add(lambda calls: calls.activate(self._uid(uid)))

    def get(self, uid: str | None = None) -> Batch:
        """Add a Get of ``uid`` (default: the ID Placeholder)."""
        return self._add(lambda calls: calls.get(self._uid(uid), None))

    def get_attributes(self, uid: str | None = None, names: Sequence[str] | None = None) -> Batch:
        """Add a Get Attributes of ``uid`` (default: the ID Placeholder)."""
        return self._add(lambda calls: calls.get_attributes(self._uid(uid), names))

    def destroy(self, uid: str | None = None) -> Batch:
        """Add a Destroy of ``uid`` (default: the ID Placeholder)."""
        return self._add(lambda calls: calls.destroy(self._uid(uid)))

    def send(self) -> list[BatchResult]:
        """Send the batch; one :class:`BatchResult` per item (errors are not raised)."""
        if not self._calls:
            raise ValueError("the batch is empty")
        return self._client._send_batch(self._calls, self._option)
