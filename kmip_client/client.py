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

import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import IntEnum
from typing import Any, Protocol

from . import operations as ops
from .operations import BatchResult, ManagedObject, ServerInfo, Version
from .protocol.errors import KmipError
from .protocol.model import Attribute, Attributes, RevocationReason, Struct
from .protocol.model.payloads.server_info import QueryResponse
from .protocol.spec.enums import (
    AdjustmentType,
    BatchErrorContinuationOption,
    CryptographicAlgorithm,
    KeyFormatType,
    ObjectType,
    Operation,
    QueryFunction,
    RevocationReasonCode,
    SecretDataType,
    State,
)

__all__ = ["Client", "Batch", "Transport"]


class Transport(Protocol):
    """What moves a request message to a server and its response back."""

    def exchange(self, request: bytes, *, idempotent: bool) -> bytes: ...


def _algorithm(value: CryptographicAlgorithm | str) -> CryptographicAlgorithm:
    if isinstance(value, str):
        try:
            return CryptographicAlgorithm[value.upper().replace("-", "_")]
        except KeyError:
            raise ValueError(f"unknown cryptographic algorithm {value!r}") from None
    return value


class Client:
    """A KMIP client over mutual TLS (blocking; safe to share between threads).

    ``servers`` is "host:port[,host:port...]" or a list; several servers mean failover.
    TLS comes from ``ssl_context`` or from ``ca``/``cert``/``key``/``key_password``.
    ``version`` fixes the protocol version; by default the first request negotiates it with
    Discover Versions. ``transport`` replaces the TLS connection pool (tests, in-process use).
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

    def _call(self, item: Any, version: Version | None = None) -> Any:
        version = version or self.version
        data = self._transport.exchange(
            ops.encode_request(version, [item]), idempotent=item.operation in ops.IDEMPOTENT
        )
        return ops.single_payload(ops.decode_response(data))

    def _discover(self, version: Version, versions: Sequence[Version]) -> list[Version]:
        payload = self._call(ops.discover_versions(versions), version)
        return [pv.as_tuple() for pv in payload.protocol_versions]

    # ------------------------------------------------------------------ server

    def discover_versions(self, versions: Sequence[Version] = ops.CLIENT_VERSIONS) -> list[Version]:
        """The protocol versions the server supports among ``versions``, its preferred first."""
        return self._discover(self._version or (1, 1), versions)

    def query(self) -> ServerInfo:
        """The operations and object types the server supports, and who it is."""
        functions = (
            QueryFunction.QUERY_OPERATIONS,
            QueryFunction.QUERY_OBJECTS,
            QueryFunction.QUERY_SERVER_INFORMATION,
        )
        payload: QueryResponse = self._call(ops.request(Operation.QUERY, query_functions=functions))
        return ServerInfo(tuple(payload.operations), tuple(payload.object_types), payload.vendor_identification)  # type: ignore[arg-type]

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
        given = self._create_attributes(algorithm, length, name, usage_mask, attributes)
        payload = self._call(ops.create_symmetric_key(self.version, given))
        return str(payload.unique_identifier)

    def _create_attributes(
        self, algorithm: Any, length: int | None, name: Any, usage_mask: int | None, attributes: Any
    ) -> list[Attribute]:
        standard: dict[str, Any] = {
            "Cryptographic Algorithm": _algorithm(algorithm) if algorithm is not None else None,
            "Cryptographic Length": length,
            "Cryptographic Usage Mask": usage_mask,
            "Name": name,
        }
        return ops.attributes_from(self.version, attributes, **standard)

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
        given = self._create_attributes(None, None, name, usage_mask, attributes)
        managed = ops.symmetric_key(key, _algorithm(algorithm))
        return self._register(managed, ObjectType.SYMMETRIC_KEY, given)

    def register_secret(
        self,
        data: bytes,
        secret_type: SecretDataType = SecretDataType.PASSWORD,
        *,
        name: str | Sequence[str] | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> str:
        """Register Secret Data (a password, a seed); returns its Unique Identifier."""
        given = self._create_attributes(None, None, name, None, attributes)
        return self._register(ops.secret_data(data, secret_type), ObjectType.SECRET_DATA, given)

    def register_opaque(
        self,
        data: bytes,
        data_type: IntEnum | int = 0x80000000,
        *,
        name: str | Sequence[str] | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> str:
        """Register an Opaque Object (bytes the server does not interpret)."""
        given = self._create_attributes(None, None, name, None, attributes)
        return self._register(ops.opaque_object(data, data_type), ObjectType.OPAQUE_OBJECT, given)

    def _register(self, managed: Struct, object_type: ObjectType, given: list[Attribute]) -> str:
        payload = self._call(ops.register(self.version, managed, object_type, given))
        return str(payload.unique_identifier)

    def get(self, uid: str, *, key_format: KeyFormatType | None = None) -> ManagedObject:
        """The object ``uid`` with its value (``.value``: key bytes, secret or opaque data)."""
        return ops.managed_object(
            self._call(ops.request(Operation.GET, unique_identifier=uid, key_format_type=key_format))
        )

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
        """Unique Identifiers of the objects matching every given condition."""
        standard: dict[str, Any] = {
            "Object Type": object_type,
            "Name": name,
            "Cryptographic Algorithm": _algorithm(algorithm) if algorithm is not None else None,
            "Cryptographic Length": length,
            "State": state,
        }
        given = ops.attributes_from(self.version, attributes, **standard)
        payload = self._call(ops.locate(self.version, given, max_items=max_items, offset=offset))
        return [str(uid) for uid in payload.unique_identifiers]

    # ------------------------------------------------------------------ lifecycle

    def activate(self, uid: str) -> None:
        """Make the object Active."""
        self._call(ops.request(Operation.ACTIVATE, unique_identifier=uid))

    def revoke(
        self,
        uid: str,
        reason: RevocationReasonCode = RevocationReasonCode.UNSPECIFIED,
        *,
        message: str | None = None,
        compromise_date: datetime | None = None,
    ) -> None:
        """Revoke the object: Deactivated, or Compromised for a compromise reason."""
        self._call(
            ops.request(
                Operation.REVOKE,
                unique_identifier=uid,
                revocation_reason=RevocationReason(code=reason, message=message),
                compromise_occurrence_date=compromise_date,
            )
        )

    def destroy(self, uid: str) -> None:
        """Destroy the object's value (its attributes remain)."""
        self._call(ops.request(Operation.DESTROY, unique_identifier=uid))

    def check(self, uid: str, *, usage_mask: int | None = None) -> None:
        """Raise unless the object may be used for ``usage_mask`` now."""
        self._call(ops.request(Operation.CHECK, unique_identifier=uid, cryptographic_usage_mask=usage_mask))

    # ------------------------------------------------------------------ attributes

    def get_attributes(self, uid: str, names: Sequence[str] | None = None) -> dict[str, list[Any]]:
        """Attribute name → values (all attributes when ``names`` is None)."""
        return ops.attribute_values(self._call(ops.get_attributes(self.version, uid, names)))

    def add_attribute(self, uid: str, name: str, value: Any) -> None:
        """Add an instance of attribute ``name`` (custom names: "x-...")."""
        attr = ops.attribute(name, value, self.version)
        if self.version >= ops.V2:
            item = ops.request(
                Operation.ADD_ATTRIBUTE, unique_identifier=uid, new_attribute=Attributes(attributes=(attr,))
            )
        else:
            item = ops.request(Operation.ADD_ATTRIBUTE, unique_identifier=uid, attribute=attr)
        self._call(item)

    def set_attribute(self, uid: str, name: str, value: Any) -> None:
        """Give single-valued attribute ``name`` this value (2.x Set Attribute; in 1.x Modify,
        or Add when the object does not have it yet)."""
        attr = ops.attribute(name, value, self.version)
        if self.version >= ops.V2:
            self._call(
                ops.request(
                    Operation.SET_ATTRIBUTE, unique_identifier=uid, new_attribute=Attributes(attributes=(attr,))
                )
            )
            return
        operation = Operation.MODIFY_ATTRIBUTE if self.get_attributes(uid, [name]) else Operation.ADD_ATTRIBUTE
        self._call(ops.request(operation, unique_identifier=uid, attribute=attr))

    def modify_attribute(self, uid: str, name: str, value: Any, *, current: Any = None, index: int = 0) -> None:
        """Change an instance of ``name``: the one holding ``current`` (2.x) or at ``index`` (1.x)."""
        attr = ops.attribute(name, value, self.version)
        if self.version >= ops.V2:
            fields: dict[str, Any] = {"new_attribute": Attributes(attributes=(attr,))}
            if current is not None:
                fields["current_attribute"] = Attributes(attributes=(ops.attribute(name, current, self.version),))
            self._call(ops.request(Operation.MODIFY_ATTRIBUTE, unique_identifier=uid, **fields))
            return
        attr = Attribute(name=name, value=value, index=index or None)
        self._call(ops.request(Operation.MODIFY_ATTRIBUTE, unique_identifier=uid, attribute=attr))

    def delete_attribute(self, uid: str, name: str, *, value: Any = None, index: int | None = None) -> None:
        """Delete ``name``: the instance holding ``value`` (2.x), at ``index`` (1.x), else all."""
        if self.version >= ops.V2:
            if value is not None:
                fields: dict[str, Any] = {
                    "current_attribute": Attributes(attributes=(ops.attribute(name, value, self.version),))
                }
            else:
                fields = {"attribute_reference": ops.reference(name)}
            self._call(ops.request(Operation.DELETE_ATTRIBUTE, unique_identifier=uid, **fields))
            return
        self._call(
            ops.request(Operation.DELETE_ATTRIBUTE, unique_identifier=uid, attribute_name=name, attribute_index=index)
        )

    def adjust_attribute(self, uid: str, name: str, by: int, how: AdjustmentType = AdjustmentType.INCREMENT) -> None:
        """Add ``by`` to a numeric or date attribute (KMIP 2.x)."""
        self._call(
            ops.request(
                Operation.ADJUST_ATTRIBUTE,
                unique_identifier=uid,
                attribute_reference=ops.reference(name),
                adjustment_type=how,
                adjustment_value=by,
            )
        )

    # ------------------------------------------------------------------ batches

    def batch(self, option: BatchErrorContinuationOption = BatchErrorContinuationOption.STOP) -> Batch:
        """A batch builder: several operations in one message (see :class:`Batch`)."""
        return Batch(self, option)

    def _send_batch(self, items: list[Any], option: BatchErrorContinuationOption) -> list[BatchResult]:
        idempotent = all(item.operation in ops.IDEMPOTENT for item in items)
        data = self._transport.exchange(
            ops.encode_request(self.version, items, batch_option=option), idempotent=idempotent
        )
        return ops.batch_results(ops.decode_response(data))


class Batch:
    """Operations sent together in one request message, run by the server in order.

    Leave ``uid`` out to mean "the object of an earlier item" (the ID Placeholder)::

        batch = kmip.batch()
        batch.create("AES", 256, name="k1")
        batch.activate()
        results = batch.send()          # one BatchResult per item
    """

    def __init__(self, client: Client, option: BatchErrorContinuationOption) -> None:
        self._client = client
        self._option = option
        self._items: list[Any] = []

    def _uid(self, uid: str | None) -> Any:
        return uid if uid is not None else ops.placeholder(self._client.version)

    def create(self, algorithm: CryptographicAlgorithm | str = "AES", length: int = 256, **kwargs: Any) -> Batch:
        given = self._client._create_attributes(
            algorithm, length, kwargs.get("name"), kwargs.get("usage_mask"), kwargs.get("attributes")
        )
        self._items.append(ops.create_symmetric_key(self._client.version, given))
        return self

    def activate(self, uid: str | None = None) -> Batch:
        self._items.append(ops.request(Operation.ACTIVATE, unique_identifier=self._uid(uid)))
        return self

    def get(self, uid: str | None = None) -> Batch:
        self._items.append(ops.request(Operation.GET, unique_identifier=self._uid(uid)))
        return self

    def get_attributes(self, uid: str | None = None, names: Sequence[str] | None = None) -> Batch:
        self._items.append(ops.get_attributes(self._client.version, self._uid(uid), names))
        return self

    def destroy(self, uid: str | None = None) -> Batch:
        self._items.append(ops.request(Operation.DESTROY, unique_identifier=self._uid(uid)))
        return self

    def send(self) -> list[BatchResult]:
        """Send the batch; one :class:`BatchResult` per item (errors are not raised)."""
        if not self._items:
            raise ValueError("the batch is empty")
        return self._client._send_batch(self._items, self._option)
