"""Building response messages: the one place a failure becomes a KMIP result."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.model import (
    ProtocolVersion,
    ResponseBatchItem,
    ResponseHeader,
    ResponseMessage,
)
from kmip_client.protocol.model.base import EncodedItem, to_bytes
from kmip_client.protocol.spec.enums import ResultReason, ResultStatus

Version = tuple[int, int]


def response_header(version: Version, batch_count: int, now: int | None = None) -> ResponseHeader:
    return ResponseHeader(
        protocol_version=ProtocolVersion(major=version[0], minor=version[1]),
        time_stamp=datetime.fromtimestamp(int(time.time()) if now is None else now, UTC),
        batch_count=batch_count,
    )


_encoded_headers: dict[tuple[Version, int], tuple[int, EncodedItem]] = {}


def encoded_response_header(version: Version, batch_count: int) -> EncodedItem:
    """The TTLV of :func:`response_header`, encoded once per second per version and count:
    encoding the header (its time stamp above all) was half the cost of encoding a whole Get
    response."""
    now = int(time.time())
    key = (version, batch_count)
    cached = _encoded_headers.get(key)
    if cached is not None and cached[0] == now:
        return cached[1]
    encoded = EncodedItem(to_bytes(response_header(version, batch_count, now)))
    if len(_encoded_headers) >= 64:  # versions × batch sizes seen: bounded all the same
        _encoded_headers.clear()
    _encoded_headers[key] = (now, encoded)
    return encoded


def failure_item(error: KmipError, operation: int | None = None, batch_id: bytes | None = None) -> ResponseBatchItem:
    """The batch item reporting ``error`` (its Result Reason and message)."""
    return ResponseBatchItem(
        operation=operation,  # type: ignore[arg-type]
        unique_batch_item_id=batch_id,
        result_status=ResultStatus.OPERATION_FAILED,
        result_reason=error.reason,
        result_message=error.message,
    )


def error_response(error: KmipError, version: Version = (1, 0)) -> bytes:
    """A whole Response Message of one failed batch item: for a request that cannot be run at
    all (undecodable, an unsupported version, a server fault)."""
    return to_bytes(ResponseMessage(header=response_header(version, 1), batch_items=(failure_item(error),)))


def invalid_message_response(message: str, version: Version = (1, 0)) -> bytes:
    """A whole Response Message saying Invalid Message: for input that could not be decoded
    far enough to know its operations (garbage, bad framing, oversized length)."""
    return error_response(KmipError(message, ResultReason.INVALID_MESSAGE), version)
