"""Building KMIP requests and reading responses in tests (the typed model, no shortcuts)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kmip_client.protocol.model import (
    Attribute,
    Attributes,
    Name,
    ProtocolVersion,
    RequestBatchItem,
    RequestHeader,
    RequestMessage,
    ResponseBatchItem,
    ResponseMessage,
    TemplateAttribute,
)
from kmip_client.protocol.model.base import to_bytes
from kmip_client.protocol.model.messages import REQUEST_PAYLOADS, decode_message
from kmip_client.protocol.spec.enums import (
    CryptographicAlgorithm,
    CryptographicUsageMask,
    NameType,
    ObjectType,
    Operation,
    ResultStatus,
)

V14 = (1, 4)
V21 = (2, 1)


def request_bytes(version: tuple[int, int], *items: RequestBatchItem, **header: Any) -> bytes:
    message = RequestMessage(
        header=RequestHeader(
            protocol_version=ProtocolVersion(major=version[0], minor=version[1]),
            **{"batch_count": len(items), **header},
        ),
        batch_items=items,
    )
    return to_bytes(message)


def item(operation: Operation, batch_id: bytes | None = None, **payload: Any) -> RequestBatchItem:
    return RequestBatchItem(
        operation=operation, unique_batch_item_id=batch_id, payload=REQUEST_PAYLOADS[operation](**payload)
    )


def response(data: bytes) -> ResponseMessage:
    message = decode_message(data)
    assert isinstance(message, ResponseMessage)
    return message


def ok(result: ResponseBatchItem) -> Any:
    assert result.result_status == ResultStatus.SUCCESS, (result.result_reason, result.result_message)
    return result.payload


def attrs_for(version: tuple[int, int], attributes: list[Attribute]) -> dict[str, Any]:
    """The Create/Register attribute fields of ``version``'s request form."""
    if version >= (2, 0):
        return {"attributes": Attributes(attributes=tuple(attributes))}
    return {"template_attribute": TemplateAttribute(attributes=tuple(attributes))}


def aes_attributes(length: int = 256, name: str | None = None, extra: list[Attribute] | None = None) -> list[Attribute]:
    found = [
        Attribute(name="Cryptographic Algorithm", value=CryptographicAlgorithm.AES),
        Attribute(name="Cryptographic Length", value=length),
        Attribute(
            name="Cryptographic Usage Mask", value=CryptographicUsageMask.ENCRYPT | CryptographicUsageMask.DECRYPT
        ),
    ]
    if name is not None:
        found.append(Attribute(name="Name", value=Name(value=name, type=NameType.UNINTERPRETED_TEXT_STRING)))
    return found + list(extra or [])


def create_aes(version: tuple[int, int] = V14, **kwargs: Any) -> RequestBatchItem:
    return item(Operation.CREATE, object_type=ObjectType.SYMMETRIC_KEY, **attrs_for(version, aes_attributes(**kwargs)))


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(int(seconds), UTC)
