"""KMIP operations as the client sends them: request building and response reading (sans-I/O).

Both clients (:mod:`kmip_client.client`, :mod:`kmip_client.aio`) build their requests and read
their responses here, so the blocking and the asyncio client cannot drift apart. Nothing here
touches a socket. Requests are built in the form of the negotiated protocol version: a
Template-Attribute for KMIP 1.x, Attributes for 2.x.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from enum import IntEnum
from typing import Any

from .protocol.errors import KmipError, error_for_reason
from .protocol.model import (
    Attribute,
    Attributes,
    ProtocolVersion,
    RequestBatchItem,
    RequestHeader,
    ResponseBatchItem,
    ResponseMessage,
    Struct,
    TemplateAttribute,
)
from .protocol.model.assembly import assembling_init
from .protocol.model.attributes import Name, attribute_for_version, attribute_name
from .protocol.model.base import to_bytes
from .protocol.model.messages import REQUEST_PAYLOADS, decode_message
from .protocol.model.objects import (
    Certificate,
    KeyBlock,
    KeyValue,
    KeyWrappingData,
    OpaqueObject,
    SecretData,
    SymmetricKey,
)
from .protocol.model.payloads.structures import attribute_reference
from .protocol.spec import Tag
from .protocol.spec.enums import (
    BatchErrorContinuationOption,
    CryptographicAlgorithm,
    KeyFormatType,
    NameType,
    ObjectType,
    Operation,
    ResultReason,
    ResultStatus,
    UniqueIdentifier,
)

Version = tuple[int, int]
V2: Version = (2, 0)
#: The versions this library speaks, most preferred first.
CLIENT_VERSIONS: tuple[Version, ...] = ((2, 1), (2, 0), (1, 4), (1, 3), (1, 2), (1, 1), (1, 0))

#: Operations that change nothing: safe to send again after a connection failed mid-way.
IDEMPOTENT = frozenset(
    {
        Operation.DISCOVER_VERSIONS,
        Operation.QUERY,
        Operation.GET,
        Operation.GET_ATTRIBUTES,
        Operation.GET_ATTRIBUTE_LIST,
        Operation.LOCATE,
        Operation.CHECK,
    }
)


# --------------------------------------------------------------------------- results


@dataclasses.dataclass(frozen=True, slots=True)
class ManagedObject:
    """An object returned by Get: its value and what describes it.

    ``value`` is the key bytes (symmetric keys, secret data; the encoded key of an asymmetric
    key), the opaque data or a certificate's DER; ``data_type`` the Secret Data Type, Opaque
    Data Type or Certificate Type; ``raw`` the typed KMIP object as received.
    """

    unique_identifier: str
    object_type: ObjectType
    value: bytes = dataclasses.field(repr=False)
    key_format: KeyFormatType | None = None
    algorithm: CryptographicAlgorithm | None = None
    length: int | None = None
    data_type: IntEnum | int | None = None  # Opaque Data Types: mostly vendor values
    raw: Struct | None = dataclasses.field(default=None, repr=False)


ManagedObject.__init__ = assembling_init(ManagedObject)  # type: ignore[method-assign]  # the same, faster


@dataclasses.dataclass(frozen=True, slots=True)
class KeyPair:
    """What Create Key Pair made: the two objects' Unique Identifiers."""

    private_key: str
    public_key: str


@dataclasses.dataclass(frozen=True)
class ServerInfo:
    """What a Query told about the server."""

    operations: tuple[Operation, ...] = ()
    object_types: tuple[ObjectType, ...] = ()
    vendor_identification: str | None = None


@dataclasses.dataclass(frozen=True)
class BatchResult:
    """The outcome of one batch item: ``payload`` on success, ``error`` otherwise.

    ``value`` is what the client method of the same operation returns (an
    :class:`~kmip_client.crypto_calls.EncryptResult`, a Unique Identifier ...), for a
    successful item whose reading is known; None otherwise.
    """

    operation: Operation | None
    status: ResultStatus
    payload: Struct | None = None
    error: KmipError | None = None
    value: Any = None
    #: Set when the server held the item (Operation Pending): Poll it with this.
    pending: OperationPending | None = None

    @property
    def ok(self) -> bool:
        return self.status == ResultStatus.SUCCESS


def _nothing(payload: Any) -> None:
    return None


#: The reading of operations whose method returns nothing (Activate, Destroy ...).
no_result = _nothing


@dataclasses.dataclass(frozen=True, slots=True)
class Call:
    """One operation: the batch item, and ``parse`` turning the response payload into the result.

    ``resend`` overrides whether the request may be sent again after a connection failed
    mid-way (by default: whether its operation is in :data:`IDEMPOTENT`).
    """

    item: RequestBatchItem
    parse: Callable[[Any], Any] = _nothing
    resend: bool | None = None
    #: The operation an Operation Pending answer stands for (Poll: the held one), when not the item's.
    pending_as: Operation | None = None

    @property
    def idempotent(self) -> bool:
        if self.resend is not None:
            return self.resend
        return self.item.operation in IDEMPOTENT


class OperationPending(Exception):
    """The server holds the operation (KMIP Result Status Operation Pending): for M-of-N
    approval, say. ``correlation_value`` is what Poll and Cancel name it by; ``operation`` the
    operation held; ``message`` what the server said (how many approvals it awaits).

    Not a :class:`KmipError`: nothing failed (yet). Raised only by requests sent in
    ``client.asynchronous()``; the client's ``poll(pending)`` returns what the operation's own
    method would have, once the server has run it.
    """

    def __init__(
        self,
        correlation_value: bytes,
        operation: Operation | None,
        message: str | None = None,
        parse: Callable[[Any], Any] | None = None,
    ) -> None:
        name = getattr(operation, "name", operation)
        super().__init__(message or f"the server holds {name} (Operation Pending)")
        self.correlation_value = correlation_value
        self.operation = operation
        self.message = message
        # How the held operation's answer is read; None: the generic reading (poll_result).
        self.parse = parse

    def __repr__(self) -> str:
        name = getattr(self.operation, "name", self.operation)
        return f"OperationPending({name}, correlation_value={self.correlation_value.hex()!r})"


# The clients whose requests, in the current thread or task, allow asynchronous answers: a
# context variable, so that ``with client.asynchronous():`` in one thread or asyncio task never
# changes the requests another sends through the same (shared) client.
_ASYNCHRONOUS: contextvars.ContextVar[tuple[object, ...]] = contextvars.ContextVar(
    "kmip_client_asynchronous", default=()
)


@contextlib.contextmanager
def asynchronous_scope(client: object) -> Iterator[None]:
    """While inside, ``client``'s requests from this thread or task carry Asynchronous Indicator true."""
    token = _ASYNCHRONOUS.set((*_ASYNCHRONOUS.get(), client))
    try:
        yield
    finally:
        _ASYNCHRONOUS.reset(token)


def allows_asynchronous(client: object) -> bool:
    """Whether ``client``'s requests sent now may be answered asynchronously (see asynchronous_scope)."""
    return any(entry is client for entry in _ASYNCHRONOUS.get())


# --------------------------------------------------------------------------- attributes


def name_attribute(name: str) -> Name:
    return Name(value=name, type=NameType.UNINTERPRETED_TEXT_STRING)


def attribute_set(version: Version, given: Sequence[Attribute]) -> dict[str, TemplateAttribute | Attributes]:
    """The Create/Register/Locate attribute field for ``version``."""
    if version >= V2:
        return {"attributes": Attributes(attributes=tuple(given))}
    return {"template_attribute": TemplateAttribute(attributes=tuple(given))}


def attributes_from(version: Version, values: Mapping[str, Any] | None, **standard: Any) -> list[Attribute]:
    """Attributes from keyword values (None skipped) then a name → value mapping; a list value
    gives several instances."""
    found: list[Attribute] = []
    for name, value in [*standard.items(), *(values or {}).items()]:
        if value is None:
            continue
        for one in value if isinstance(value, (list, tuple)) else (value,):
            found.append(
                attribute_for_version(
                    name, name_attribute(one) if name == "Name" and isinstance(one, str) else one, version
                )
            )
    return found


# --------------------------------------------------------------------------- messages


def request(operation: Operation, **payload: Any) -> RequestBatchItem:
    """One batch item of ``operation`` with its request payload fields."""
    return RequestBatchItem(operation=operation, payload=REQUEST_PAYLOADS[operation](**payload))


def encode_request(
    version: Version,
    items: Sequence[RequestBatchItem],
    *,
    batch_option: BatchErrorContinuationOption | None = None,
    asynchronous: bool = False,
) -> bytes:
    """The TTLV of a request message carrying ``items``; several items get batch item ids.
    ``asynchronous``: the header's Asynchronous Indicator is true (the server may answer
    Operation Pending)."""
    if len(items) > 1:
        items = [
            dataclasses.replace(it, unique_batch_item_id=index.to_bytes(4, "big")) for index, it in enumerate(items)
        ]
    # The message is its header (the same for every request of a version and batch size,
    # so encoded once) and the batch items, inside the Request Message structure's header.
    header = _header_bytes(version, len(items), batch_option, asynchronous)
    if len(items) == 1:
        body = header + to_bytes(items[0], _BATCH_ITEM)
    else:
        body = header + b"".join([to_bytes(it, _BATCH_ITEM) for it in items])
    return _REQUEST_MESSAGE + len(body).to_bytes(4, "big") + body


_REQUEST_MESSAGE = (int(Tag.REQUEST_MESSAGE) << 8 | 0x01).to_bytes(4, "big")  # tag + Structure type
_BATCH_ITEM = int(Tag.BATCH_ITEM)


@functools.lru_cache(maxsize=64)
def _header_bytes(
    version: Version, count: int, batch_option: BatchErrorContinuationOption | None, asynchronous: bool = False
) -> bytes:
    header = RequestHeader(
        protocol_version=ProtocolVersion(major=version[0], minor=version[1]),
        asynchronous_indicator=True if asynchronous else None,
        batch_error_continuation_option=batch_option,
        batch_count=count,
    )
    return to_bytes(header)


def decode_response(data: bytes) -> ResponseMessage:
    """The response message in ``data`` (a ProtocolError if it is not one)."""
    message = decode_message(data)
    if not isinstance(message, ResponseMessage):
        raise KmipError(
            "the server answered with something other than a Response Message", ResultReason.INVALID_MESSAGE
        )
    return message


def error_of(item: ResponseBatchItem) -> KmipError:
    """The exception a failed batch item stands for, carrying its Result Reason and message."""
    reason = item.result_reason if item.result_reason is not None else ResultReason.GENERAL_FAILURE
    text = item.result_message or f"the server reported result reason {getattr(reason, 'name', reason)}"
    return error_for_reason(reason, text)


def batch_results(message: ResponseMessage, parses: Sequence[Callable[[Any], Any]] = ()) -> list[BatchResult]:
    """One :class:`BatchResult` per response item; ``parses`` (one per request item, in order)
    read each successful payload into its ``value``."""
    found = []
    for index, item in enumerate(message.batch_items):
        status = item.result_status if item.result_status is not None else ResultStatus.OPERATION_FAILED
        if status == ResultStatus.OPERATION_PENDING:
            parse = parses[index] if index < len(parses) else None
            held = pending_of(item, parse)
            found.append(BatchResult(item.operation, status, item.payload, pending=held))  # type: ignore[arg-type]
            continue
        error = None if status == ResultStatus.SUCCESS else error_of(item)
        value = parses[index](item.payload) if error is None and index < len(parses) else None
        found.append(BatchResult(item.operation, status, item.payload, error, value))  # type: ignore[arg-type]
    return found


def pending_of(
    item: ResponseBatchItem, parse: Callable[[Any], Any] | None = None, operation: Operation | None = None
) -> OperationPending:
    """The :class:`OperationPending` an Operation Pending batch item stands for."""
    correlation = item.asynchronous_correlation_value
    if not correlation:
        raise KmipError(
            "the server answered Operation Pending without an Asynchronous Correlation Value",
            ResultReason.INVALID_MESSAGE,
        )
    held = operation if operation is not None else item.operation
    return OperationPending(bytes(correlation), held, item.result_message, parse)  # type: ignore[arg-type]


def single_payload(message: ResponseMessage) -> Any:
    """The payload of a one-item response; raises the item's error if it failed."""
    if len(message.batch_items) != 1:
        raise KmipError(f"expected one batch item, got {len(message.batch_items)}", ResultReason.INVALID_MESSAGE)
    item = message.batch_items[0]
    if item.result_status == ResultStatus.OPERATION_PENDING:
        raise pending_of(item)
    if item.result_status != ResultStatus.SUCCESS:
        raise error_of(item)
    return item.payload


def call_result(call: Call, message: ResponseMessage) -> Any:
    """What ``call``'s one-item response says: its parsed payload; raises the item's error, or
    :class:`OperationPending` (which knows how to read the held operation's answer) when held."""
    try:
        payload = single_payload(message)
    except OperationPending as pending:
        if call.pending_as is not None:
            pending.operation = call.pending_as
        pending.parse = call.parse
        raise
    return call.parse(payload)


def poll_result(payload: Any) -> Any:
    """The generic reading of a completed held operation's answer (a Poll of a correlation value
    alone): a Get's :class:`ManagedObject`, else the Unique Identifier the payload names (a
    Destroy, Revoke, Activate, Create ...), else the payload itself."""
    if payload is None:
        return None
    if getattr(payload, "managed_object", None) is not None:
        return managed_object(payload)
    uid = getattr(payload, "unique_identifier", None)
    if uid is not None:
        return str(uid)
    return payload


# --------------------------------------------------------------------------- requests


def placeholder(version: Version) -> Any:
    """The Unique Identifier that means "the ID Placeholder" in ``version``: absent in 1.x."""
    return UniqueIdentifier.ID_PLACEHOLDER if version >= V2 else None


def discover_versions(versions: Sequence[Version] = CLIENT_VERSIONS) -> RequestBatchItem:
    return request(
        Operation.DISCOVER_VERSIONS,
        protocol_versions=tuple(ProtocolVersion(major=v[0], minor=v[1]) for v in versions),
    )


def create_symmetric_key(version: Version, attributes: Sequence[Attribute]) -> RequestBatchItem:
    return request(Operation.CREATE, object_type=ObjectType.SYMMETRIC_KEY, **attribute_set(version, attributes))


def pair_attribute_fields(
    version: Version, common: Sequence[Attribute], private: Sequence[Attribute], public: Sequence[Attribute]
) -> dict[str, Any]:
    """The three attribute groups of Create Key Pair and Re-key Key Pair in ``version``'s form
    (empty groups left out)."""
    if version >= V2:
        names, cls = ("common_attributes", "private_key_attributes", "public_key_attributes"), Attributes
    else:
        names = ("common_template_attribute", "private_key_template_attribute", "public_key_template_attribute")
        cls = TemplateAttribute  # type: ignore[assignment]
    return {
        name: cls(attributes=tuple(group))
        for name, group in zip(names, (common, private, public), strict=True)
        if group
    }


def register(
    version: Version, managed: Struct, object_type: ObjectType, attributes: Sequence[Attribute]
) -> RequestBatchItem:
    return request(
        Operation.REGISTER, object_type=object_type, managed_object=managed, **attribute_set(version, attributes)
    )


def symmetric_key(key: bytes, algorithm: CryptographicAlgorithm, length: int | None = None) -> SymmetricKey:
    return SymmetricKey(
        key_block=KeyBlock(
            key_format_type=KeyFormatType.RAW,
            key_value=KeyValue(key_material=key),
            cryptographic_algorithm=algorithm,
            cryptographic_length=length if length is not None else len(key) * 8,
        )
    )


def wrapped_symmetric_key(
    wrapped: bytes, algorithm: CryptographicAlgorithm, length: int, wrapping: KeyWrappingData
) -> SymmetricKey:
    """A Symmetric Key whose Key Value is ``wrapped`` (a Byte String) as ``wrapping`` says."""
    return SymmetricKey(
        key_block=KeyBlock(
            key_format_type=KeyFormatType.RAW,
            key_value=wrapped,
            cryptographic_algorithm=algorithm,
            cryptographic_length=length,
            key_wrapping_data=wrapping,
        )
    )


def secret_data(data: bytes, secret_type: IntEnum) -> SecretData:
    return SecretData(
        secret_data_type=secret_type,
        key_block=KeyBlock(key_format_type=KeyFormatType.OPAQUE, key_value=KeyValue(key_material=data)),
    )


def opaque_object(data: bytes, data_type: IntEnum | int) -> OpaqueObject:
    return OpaqueObject(opaque_data_type=data_type, opaque_data_value=data)


def locate(
    version: Version,
    attributes: Sequence[Attribute],
    *,
    max_items: int | None = None,
    offset: int | None = None,
) -> RequestBatchItem:
    fields: dict[str, Any] = {"maximum_items": max_items}
    if offset is not None:
        fields["offset_items"] = offset
    if version >= V2:
        fields["attributes"] = Attributes(attributes=tuple(attributes))
    else:
        fields["attribute_list"] = tuple(attributes)
    return request(Operation.LOCATE, **fields)


def get_attributes(version: Version, uid: Any, names: Sequence[str] | None) -> RequestBatchItem:
    if version >= V2:
        return request(
            Operation.GET_ATTRIBUTES,
            unique_identifier=uid,
            attribute_references=tuple(map(attribute_reference, names or ())),
        )
    return request(Operation.GET_ATTRIBUTES, unique_identifier=uid, attribute_names=tuple(names or ()))


def poll(correlation_value: bytes) -> RequestBatchItem:
    return request(Operation.POLL, asynchronous_correlation_value=bytes(correlation_value))


def cancel(correlation_value: bytes) -> RequestBatchItem:
    return request(Operation.CANCEL, asynchronous_correlation_value=bytes(correlation_value))


# --------------------------------------------------------------------------- reading results


def managed_object(payload: Any) -> ManagedObject:
    """The :class:`ManagedObject` of a Get response payload."""
    raw = payload.managed_object
    value: bytes = b""
    key_format = algorithm = length = data_type = None
    if isinstance(raw, OpaqueObject):
        value, data_type = raw.opaque_data_value or b"", raw.opaque_data_type
    elif isinstance(raw, Certificate):
        value, data_type = raw.certificate_value or b"", raw.certificate_type
    else:
        block = getattr(raw, "key_block", None)
        data_type = getattr(raw, "secret_data_type", None)
        if block is not None:
            key_format, algorithm, length = (
                block.key_format_type,
                block.cryptographic_algorithm,
                block.cryptographic_length,
            )
            material = block.key_value.key_material if isinstance(block.key_value, KeyValue) else block.key_value
            if material is not None and not isinstance(material, bytes):
                material = getattr(material, "key", None)  # Transparent Symmetric Key
            value = material or b""
    return ManagedObject(
        unique_identifier=payload.unique_identifier,
        object_type=payload.object_type,
        value=value,
        key_format=key_format,
        algorithm=algorithm,
        length=length,
        data_type=data_type,
        raw=raw,
    )


def attribute_values(payload: Any) -> dict[str, list[Any]]:
    """Get Attributes' answer as name → values (in index order), whichever form it came in."""
    found: dict[str, list[Any]] = {}
    listed = payload.attributes.attributes if payload.attributes is not None else payload.attribute_list
    for attr in listed:
        found.setdefault(attribute_name(attr), []).append(attr.value)
    return found
