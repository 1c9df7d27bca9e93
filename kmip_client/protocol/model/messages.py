"""Request and response messages: headers, batch items, and payload selection by operation."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from enum import IntEnum
from typing import Any, ClassVar, TypeVar, dataclass_transform

from ..errors import ProtocolError
from ..spec import Tag
from ..spec.enums import Operation
from ..ttlv import Item, ItemType, decode
from .base import Struct, decode_fields, decode_struct, from_item, kfield, structure, to_bytes
from .reader import Decline, read_struct

S = TypeVar("S", bound=Struct)

_TEXT = ItemType.TEXT_STRING
_BYTES = ItemType.BYTE_STRING
_INT = ItemType.INTEGER
_ENUM = ItemType.ENUMERATION
_BOOL = ItemType.BOOLEAN
_DT = ItemType.DATE_TIME

#: Operation → payload class, filled by the payload modules' decorators.
REQUEST_PAYLOADS: dict[int, type[Struct]] = {}
RESPONSE_PAYLOADS: dict[int, type[Struct]] = {}


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))  # as structure()
def request_payload(operation: Operation) -> Callable[[type[S]], type[S]]:
    """Class decorator: declare the request payload of ``operation``."""

    def wrap(cls: type[S]) -> type[S]:
        cls = structure(Tag.REQUEST_PAYLOAD)(cls)
        REQUEST_PAYLOADS[operation] = cls
        return cls

    return wrap


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))  # as structure()
def response_payload(operation: Operation) -> Callable[[type[S]], type[S]]:
    """Class decorator: declare the response payload of ``operation``."""

    def wrap(cls: type[S]) -> type[S]:
        cls = structure(Tag.RESPONSE_PAYLOAD)(cls)
        RESPONSE_PAYLOADS[operation] = cls
        return cls

    return wrap


@structure(Tag.REQUEST_PAYLOAD)
class RawPayload(Struct):
    """The payload of an operation without a declared class: every child kept as it came."""


@structure(Tag.PROTOCOL_VERSION)
class ProtocolVersion(Struct):
    major: int | None = kfield(Tag.PROTOCOL_VERSION_MAJOR, _INT)
    minor: int | None = kfield(Tag.PROTOCOL_VERSION_MINOR, _INT)

    #: The same bytes message after message: decoders may hand out the last instance again.
    RECURRING: ClassVar[bool] = True

    def as_tuple(self) -> tuple[int, int]:
        return (self.major or 0, self.minor or 0)


@structure(Tag.NONCE)
class Nonce(Struct):
    nonce_id: bytes | None = kfield(Tag.NONCE_ID, _BYTES)
    nonce_value: bytes | None = kfield(Tag.NONCE_VALUE, _BYTES, secret=True)


@structure(Tag.CREDENTIAL_VALUE)
class CredentialValue(Struct):
    """The union of the credential value forms (user/password, device, attestation, OTP ...)."""

    username: str | None = kfield(Tag.USERNAME, _TEXT)
    password: str | None = kfield(Tag.PASSWORD, _TEXT, secret=True)
    device_serial_number: str | None = kfield(Tag.DEVICE_SERIAL_NUMBER, _TEXT)
    device_identifier: str | None = kfield(Tag.DEVICE_IDENTIFIER, _TEXT)
    network_identifier: str | None = kfield(Tag.NETWORK_IDENTIFIER, _TEXT)
    machine_identifier: str | None = kfield(Tag.MACHINE_IDENTIFIER, _TEXT)
    media_identifier: str | None = kfield(Tag.MEDIA_IDENTIFIER, _TEXT)
    nonce: Nonce | None = kfield(Tag.NONCE, Nonce)
    attestation_type: IntEnum | None = kfield(Tag.ATTESTATION_TYPE, _ENUM)
    attestation_measurement: bytes | None = kfield(Tag.ATTESTATION_MEASUREMENT, _BYTES)
    attestation_assertion: bytes | None = kfield(Tag.ATTESTATION_ASSERTION, _BYTES)
    one_time_password: str | None = kfield(Tag.ONE_TIME_PASSWORD, _TEXT, secret=True, min_version=(2, 0))
    timestamp: datetime | None = kfield(Tag.TIME_STAMP, _DT, min_version=(2, 0))
    hashing_algorithm: IntEnum | None = kfield(Tag.HASHING_ALGORITHM, _ENUM, min_version=(2, 0))
    hashed_password: bytes | None = kfield(Tag.HASHED_PASSWORD, _BYTES, secret=True, min_version=(2, 0))
    ticket_type: IntEnum | None = kfield(Tag.TICKET_TYPE, _ENUM, min_version=(2, 0))
    ticket_value: bytes | None = kfield(Tag.TICKET_VALUE, _BYTES, secret=True, min_version=(2, 0))


@structure(Tag.CREDENTIAL)
class Credential(Struct):
    credential_type: IntEnum | None = kfield(Tag.CREDENTIAL_TYPE, _ENUM)
    credential_value: CredentialValue | None = kfield(Tag.CREDENTIAL_VALUE, CredentialValue)


@structure(Tag.AUTHENTICATION)
class Authentication(Struct):
    credentials: tuple[Credential, ...] = kfield(Tag.CREDENTIAL, Credential, repeated=True)


@structure(Tag.MESSAGE_EXTENSION)
class MessageExtension(Struct):
    vendor_identification: str | None = kfield(Tag.VENDOR_IDENTIFICATION, _TEXT)
    criticality_indicator: bool | None = kfield(Tag.CRITICALITY_INDICATOR, _BOOL)
    vendor_extension: Item | None = kfield(Tag.VENDOR_EXTENSION, Item)


@structure(Tag.REQUEST_HEADER)
class RequestHeader(Struct):
    protocol_version: ProtocolVersion | None = kfield(Tag.PROTOCOL_VERSION, ProtocolVersion)
    maximum_response_size: int | None = kfield(Tag.MAXIMUM_RESPONSE_SIZE, _INT)
    client_correlation_value: str | None = kfield(Tag.CLIENT_CORRELATION_VALUE, _TEXT, min_version=(1, 4))
    server_correlation_value: str | None = kfield(Tag.SERVER_CORRELATION_VALUE, _TEXT, min_version=(1, 4))
    asynchronous_indicator: bool | None = kfield(Tag.ASYNCHRONOUS_INDICATOR, _BOOL)
    attestation_capable_indicator: bool | None = kfield(Tag.ATTESTATION_CAPABLE_INDICATOR, _BOOL)
    attestation_types: tuple[IntEnum, ...] = kfield(Tag.ATTESTATION_TYPE, _ENUM, repeated=True)
    authentication: Authentication | None = kfield(Tag.AUTHENTICATION, Authentication)
    batch_error_continuation_option: IntEnum | None = kfield(Tag.BATCH_ERROR_CONTINUATION_OPTION, _ENUM)
    batch_order_option: bool | None = kfield(Tag.BATCH_ORDER_OPTION, _BOOL)
    time_stamp: datetime | None = kfield(Tag.TIME_STAMP, _DT)
    batch_count: int | None = kfield(Tag.BATCH_COUNT, _INT)

    #: A client sends the same header request after request.
    RECURRING: ClassVar[bool] = True


@structure(Tag.RESPONSE_HEADER)
class ResponseHeader(Struct):
    protocol_version: ProtocolVersion | None = kfield(Tag.PROTOCOL_VERSION, ProtocolVersion)
    time_stamp: datetime | None = kfield(Tag.TIME_STAMP, _DT)
    nonce: Nonce | None = kfield(Tag.NONCE, Nonce)
    server_hashed_password: bytes | None = kfield(Tag.SERVER_HASHED_PASSWORD, _BYTES, min_version=(2, 0))
    attestation_types: tuple[IntEnum, ...] = kfield(Tag.ATTESTATION_TYPE, _ENUM, repeated=True)
    client_correlation_value: str | None = kfield(Tag.CLIENT_CORRELATION_VALUE, _TEXT, min_version=(1, 4))
    server_correlation_value: str | None = kfield(Tag.SERVER_CORRELATION_VALUE, _TEXT, min_version=(1, 4))
    batch_count: int | None = kfield(Tag.BATCH_COUNT, _INT)

    #: A server's responses carry the same header for as long as their time stamp's second.
    RECURRING: ClassVar[bool] = True


@dataclasses.dataclass(frozen=True, slots=True)
class _BatchItem(Struct):
    """Shared decoding of batch items: the payload's class follows from the Operation."""

    PAYLOADS: ClassVar[dict[int, type[Struct]]]
    PAYLOAD_NAME: ClassVar[str]

    @classmethod
    def payload_class(cls, operation: Any) -> type[Struct]:
        """The payload structure of ``operation`` (:class:`RawPayload` for one not declared)."""
        return cls.PAYLOADS.get(operation, RawPayload)

    @classmethod
    def decode_item(cls, item: Item, path: str = "") -> Any:
        values = decode_fields(cls, item)
        raw = values.get("payload")
        if raw is not None:
            payload_cls = cls.payload_class(values.get("operation"))
            try:
                values["payload"] = decode_struct(payload_cls, raw)
            except ProtocolError as exc:
                raise exc.within(cls.PAYLOAD_NAME) from None
        return cls(**values)


@structure(Tag.BATCH_ITEM)
class RequestBatchItem(_BatchItem):
    operation: IntEnum | None = kfield(Tag.OPERATION, _ENUM)
    ephemeral: bool | None = kfield(Tag.EPHEMERAL, _BOOL, min_version=(2, 0))
    unique_batch_item_id: bytes | None = kfield(Tag.UNIQUE_BATCH_ITEM_ID, _BYTES)
    payload: Any = kfield(Tag.REQUEST_PAYLOAD, Item)
    message_extensions: tuple[MessageExtension, ...] = kfield(Tag.MESSAGE_EXTENSION, MessageExtension, repeated=True)

    PAYLOADS = REQUEST_PAYLOADS
    PAYLOAD_NAME = "RequestPayload"


@structure(Tag.BATCH_ITEM)
class ResponseBatchItem(_BatchItem):
    operation: IntEnum | None = kfield(Tag.OPERATION, _ENUM)
    unique_batch_item_id: bytes | None = kfield(Tag.UNIQUE_BATCH_ITEM_ID, _BYTES)
    result_status: IntEnum | None = kfield(Tag.RESULT_STATUS, _ENUM)
    result_reason: IntEnum | None = kfield(Tag.RESULT_REASON, _ENUM)
    result_message: str | None = kfield(Tag.RESULT_MESSAGE, _TEXT)
    asynchronous_correlation_value: bytes | None = kfield(Tag.ASYNCHRONOUS_CORRELATION_VALUE, _BYTES)
    payload: Any = kfield(Tag.RESPONSE_PAYLOAD, Item)
    message_extensions: tuple[MessageExtension, ...] = kfield(Tag.MESSAGE_EXTENSION, MessageExtension, repeated=True)

    PAYLOADS = RESPONSE_PAYLOADS
    PAYLOAD_NAME = "ResponsePayload"


@structure(Tag.REQUEST_MESSAGE)
class RequestMessage(Struct):
    header: RequestHeader | None = kfield(Tag.REQUEST_HEADER, RequestHeader)
    batch_items: tuple[RequestBatchItem, ...] = kfield(Tag.BATCH_ITEM, RequestBatchItem, repeated=True)

    @property
    def protocol_version(self) -> tuple[int, int]:
        pv = self.header.protocol_version if self.header else None
        return pv.as_tuple() if pv else (1, 0)


@structure(Tag.RESPONSE_MESSAGE)
class ResponseMessage(Struct):
    header: ResponseHeader | None = kfield(Tag.RESPONSE_HEADER, ResponseHeader)
    batch_items: tuple[ResponseBatchItem, ...] = kfield(Tag.BATCH_ITEM, ResponseBatchItem, repeated=True)


Message = RequestMessage | ResponseMessage


def message_from_item(item: Item) -> Message:
    """Decode a Request Message or Response Message item into its typed form."""
    if item.tag == Tag.REQUEST_MESSAGE:
        return from_item(RequestMessage, item)
    if item.tag == Tag.RESPONSE_MESSAGE:
        return from_item(ResponseMessage, item)
    raise ProtocolError(f"expected a RequestMessage or ResponseMessage, got tag 0x{item.tag:06X}")


def decode_message(data: bytes) -> Message:
    """Decode TTLV bytes of one whole message."""
    if type(data) is not bytes:
        data = bytes(data)
    try:
        # (Bytes that start as neither message are declined at once by the tag check.)
        return read_struct(_MESSAGE_CLASSES.get(data[:4], RequestMessage), data)  # type: ignore[no-any-return]
    except (Decline, ProtocolError):
        # Invalid, or a rare shape: the two-step decoder gives the answer, or the error with
        # its path and offset.
        return message_from_item(decode(data))


_MESSAGE_CLASSES: dict[bytes, type[Struct]] = {
    (cls.TAG << 8 | ItemType.STRUCTURE).to_bytes(4, "big"): cls for cls in (RequestMessage, ResponseMessage)
}


def encode_message(message: Struct) -> bytes:
    """Encode a message (or any structure) to TTLV bytes."""
    return to_bytes(message)


__all__ = [
    "REQUEST_PAYLOADS",
    "RESPONSE_PAYLOADS",
    "request_payload",
    "response_payload",
    "RawPayload",
    "ProtocolVersion",
    "Nonce",
    "CredentialValue",
    "Credential",
    "Authentication",
    "MessageExtension",
    "RequestHeader",
    "ResponseHeader",
    "RequestBatchItem",
    "ResponseBatchItem",
    "RequestMessage",
    "ResponseMessage",
    "Message",
    "message_from_item",
    "decode_message",
    "encode_message",
]
