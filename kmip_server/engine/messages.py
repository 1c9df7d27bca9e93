"""The message level of the dispatcher: decoding and checking a request, encoding its answer.

A message refused here (undecodable, an unsupported version, too many items, failed
authentication) never reaches a handler; the refusal is still an audit event, which
:class:`Refused` carries.
"""

from __future__ import annotations

import dataclasses

from kmip_client.protocol.errors import KmipError, ProtocolError
from kmip_client.protocol.model import RequestMessage, ResponseBatchItem, ResponseHeader, ResponseMessage
from kmip_client.protocol.model.base import EncodedItem, to_bytes
from kmip_client.protocol.model.messages import decode_message
from kmip_client.protocol.spec.enums import BatchErrorContinuationOption, ResultReason

from .batch_limits import LARGE_MESSAGE_ITEMS, peek_request_header
from .items import reason_title
from .registry import HANDLERS, OperationSpec
from .responses import encoded_response_header, error_response, failure_item, response_header
from .versions import SUPPORTED_VERSIONS

Version = tuple[int, int]
_UNDO = BatchErrorContinuationOption.UNDO


@dataclasses.dataclass(frozen=True, slots=True)
class Prepared:
    message: RequestMessage
    version: Version
    specs: list[OperationSpec | None]
    writes: bool

    @property
    def option(self) -> int:
        # An int, not the enum: a value the enum lacks is the client's, compared like the rest.
        assert self.message.header is not None
        return self.message.header.batch_error_continuation_option or BatchErrorContinuationOption.STOP

    @property
    def chunked(self) -> bool:
        """Whether the message runs in chunks of transactions: a large one, unless under Undo."""
        return len(self.message.batch_items) > LARGE_MESSAGE_ITEMS and self.option != _UNDO

    @property
    def asynchronous(self) -> bool:
        """Whether the client allows asynchronous answers (Operation Pending)."""
        assert self.message.header is not None
        return bool(self.message.header.asynchronous_indicator)


@dataclasses.dataclass(frozen=True, slots=True)
class Refused:
    """A message answered without running: the response, and the reason for the audit trail."""

    response: bytes
    reason: str
    detail: str


def prepare(data: bytes, max_batch_items: int) -> Prepared | Refused:
    """The decoded, checked message with its handlers; or its refusal."""
    version, count = peek_request_header(data)
    if count is not None and count > max_batch_items:
        # Refused before decoding: a message of thousands of items is most of a second's
        # work to decode alone.
        return refuse(version or (1, 0), too_many(count, max_batch_items))
    try:
        message = decode_message(data)
    except ProtocolError as exc:
        return refuse((1, 0), KmipError(f"cannot decode the request: {exc}", ResultReason.INVALID_MESSAGE))
    if not isinstance(message, RequestMessage):
        return refuse((1, 0), KmipError("expected a RequestMessage", ResultReason.INVALID_MESSAGE))
    version = message.protocol_version
    problem = _header_problem(message, version, max_batch_items)
    if problem is not None:
        return refuse(version, problem)
    specs = [HANDLERS.get(item.operation) if item.operation is not None else None for item in message.batch_items]
    return Prepared(message, version, specs, any(spec is not None and spec.writes for spec in specs))


def refuse(version: Version, error: KmipError) -> Refused:
    if version not in SUPPORTED_VERSIONS:
        version = (2, 1) if version >= (2, 0) else (1, 4) if version >= (1, 0) else (1, 0)
    return Refused(error_response(error, version), reason_title(error.reason), error.message[:200])


def encode(prepared: Prepared, items: list[ResponseBatchItem]) -> bytes:
    message, version = prepared.message, prepared.version
    assert message.header is not None
    # A Client Correlation Value is not echoed: the response header has no such duty, and
    # none of the OASIS test cases' responses carries one.
    header: ResponseHeader | EncodedItem = encoded_response_header(version, len(items))
    response = to_bytes(ResponseMessage(header=header, batch_items=tuple(items)))  # type: ignore[arg-type]
    limit = message.header.maximum_response_size
    if limit is not None and len(response) > limit:
        error = KmipError(
            f"the response is {len(response)} bytes, above the Maximum Response Size of {limit}",
            ResultReason.RESPONSE_TOO_LARGE,
        )
        failed = [failure_item(error, item.operation, item.unique_batch_item_id) for item in items]
        response = to_bytes(ResponseMessage(header=response_header(version, len(failed)), batch_items=tuple(failed)))
    return response


def _header_problem(message: RequestMessage, version: Version, max_batch_items: int) -> KmipError | None:
    header = message.header
    if header is None or header.protocol_version is None:
        return KmipError("the request has no Request Header with a Protocol Version", ResultReason.INVALID_MESSAGE)
    if version not in SUPPORTED_VERSIONS:
        return KmipError(
            f"protocol version {version[0]}.{version[1]} is not supported; this server speaks "
            + ", ".join(f"{v[0]}.{v[1]}" for v in reversed(SUPPORTED_VERSIONS)),
            ResultReason.UNSUPPORTED_PROTOCOL_VERSION if version >= (2, 0) else ResultReason.INVALID_MESSAGE,
        )
    if not message.batch_items:
        return KmipError("the request has no Batch Item", ResultReason.INVALID_MESSAGE)
    if header.batch_count is not None and header.batch_count != len(message.batch_items):
        return KmipError(
            f"Batch Count is {header.batch_count} but the message has {len(message.batch_items)} batch items",
            ResultReason.INVALID_MESSAGE,
        )
    if len(message.batch_items) > max_batch_items:
        return too_many(len(message.batch_items), max_batch_items)
    return None


def too_many(count: int, max_batch_items: int) -> KmipError:
    # Invalid Message: every operation of KMIP 1.x and 2.x lists it, for a message the
    # server will not process. Response Too Large is about the response's size (and the
    # client's own Maximum Response Size); Server Limit Exceeded is a 2.x reason of some
    # operations only, about the objects stored.
    return KmipError(
        f"the message has {count} batch items; this server accepts at most {max_batch_items} per "
        "message (listener.max_batch_items): send them in several messages",
        ResultReason.INVALID_MESSAGE,
    )
