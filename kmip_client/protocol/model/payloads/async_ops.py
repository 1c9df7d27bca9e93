"""Payloads of the asynchronous and server-to-client operations: Poll, Cancel, Query
Asynchronous Requests, Process, Notify and Put.

A Poll answer carries the payload of the operation being polled, so Poll declares no response
class: it is decoded by the original operation's class when the batch item names it, or kept
as a :class:`~..messages.RawPayload`. Notify and Put are sent by the server as requests; the
client's response has no payload.
"""

from __future__ import annotations

from enum import IntEnum

from ...spec import Tag
from ...spec.enums import Operation
from ...ttlv import ItemType
from ..attributes import Attribute, Attributes
from ..base import Struct, kchoice, kfield
from ..messages import request_payload, response_payload
from ..objects import MANAGED_OBJECTS
from .structures import (
    ATTRIBUTE_REFERENCE,
    V2,
    AsynchronousCorrelationValues,
    AsynchronousRequest,
    AttributeReference,
    Operations,
    attribute_list,
    attributes,
    uid,
)

_BYTES = ItemType.BYTE_STRING
_ENUM = ItemType.ENUMERATION


@request_payload(Operation.POLL)
class PollRequest(Struct):
    asynchronous_correlation_value: bytes | None = kfield(Tag.ASYNCHRONOUS_CORRELATION_VALUE, _BYTES)


@request_payload(Operation.CANCEL)
class CancelRequest(Struct):
    asynchronous_correlation_value: bytes | None = kfield(Tag.ASYNCHRONOUS_CORRELATION_VALUE, _BYTES)


@response_payload(Operation.CANCEL)
class CancelResponse(Struct):
    asynchronous_correlation_value: bytes | None = kfield(Tag.ASYNCHRONOUS_CORRELATION_VALUE, _BYTES)
    cancellation_result: IntEnum | None = kfield(Tag.CANCELLATION_RESULT, _ENUM)


@request_payload(Operation.QUERY_ASYNCHRONOUS_REQUESTS)
class QueryAsynchronousRequestsRequest(Struct):
    asynchronous_correlation_values: AsynchronousCorrelationValues | None = kfield(
        Tag.ASYNCHRONOUS_CORRELATION_VALUES, AsynchronousCorrelationValues
    )
    operations: Operations | None = kfield(Tag.OPERATIONS, Operations)


@response_payload(Operation.QUERY_ASYNCHRONOUS_REQUESTS)
class QueryAsynchronousRequestsResponse(Struct):
    asynchronous_requests: tuple[AsynchronousRequest, ...] = kfield(
        Tag.ASYNCHRONOUS_REQUEST, AsynchronousRequest, repeated=True
    )


@request_payload(Operation.PROCESS)
class ProcessRequest(Struct):
    asynchronous_correlation_value: bytes | None = kfield(Tag.ASYNCHRONOUS_CORRELATION_VALUE, _BYTES)


@response_payload(Operation.PROCESS)
class ProcessResponse(Struct):
    pass


@request_payload(Operation.NOTIFY)
class NotifyRequest(Struct):
    unique_identifier: str | None = uid()
    attribute_list: tuple[Attribute, ...] = attribute_list()
    attributes: Attributes | None = attributes()
    attribute_references: tuple[IntEnum | AttributeReference, ...] = kfield(
        Tag.ATTRIBUTE_REFERENCE, ATTRIBUTE_REFERENCE, repeated=True, min_version=V2
    )


@response_payload(Operation.NOTIFY)
class NotifyResponse(Struct):
    pass


@request_payload(Operation.PUT)
class PutRequest(Struct):
    unique_identifier: str | None = uid()
    put_function: IntEnum | None = kfield(Tag.PUT_FUNCTION, _ENUM)
    replaced_unique_identifier: str | None = uid(Tag.REPLACED_UNIQUE_IDENTIFIER)
    managed_object: Struct | None = kchoice(MANAGED_OBJECTS, secret=True)
    attribute_list: tuple[Attribute, ...] = attribute_list()
    attributes: Attributes | None = attributes()


@response_payload(Operation.PUT)
class PutResponse(Struct):
    pass
