"""Payloads of the attribute operations: Get Attributes, Get Attribute List, Add / Modify /
Delete / Set / Adjust Attribute.

KMIP 1.x carries one ``Attribute`` (name, index, value); 2.x a ``New Attribute`` / ``Current
Attribute`` holding the attribute in its tagged form, or an ``Attribute Reference``. Each class
declares both, versioned, so either form decodes to typed :class:`Attribute` values.
"""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum
from typing import Any

from ...spec import Tag
from ...spec.enums import Operation
from ...ttlv import ItemType
from ..attributes import Attribute, Attributes
from ..base import Struct, kfield
from ..messages import request_payload, response_payload
from .structures import ATTRIBUTE_REFERENCE, V1, V2, AttributeReference, attribute_list, attributes, uid

_TEXT = ItemType.TEXT_STRING
_INT = ItemType.INTEGER
_LONG = ItemType.LONG_INTEGER
_BIG = ItemType.BIG_INTEGER
_ENUM = ItemType.ENUMERATION
_DT = ItemType.DATE_TIME
_INTERVAL = ItemType.INTERVAL


def _attribute_v1() -> Any:
    return kfield(Tag.ATTRIBUTE, Attribute, max_version=V1)


def _attribute_names() -> Any:
    return kfield(Tag.ATTRIBUTE_NAME, _TEXT, repeated=True, max_version=V1)


def _attribute_references() -> Any:
    return kfield(Tag.ATTRIBUTE_REFERENCE, ATTRIBUTE_REFERENCE, repeated=True, min_version=V2)


@request_payload(Operation.GET_ATTRIBUTES)
class GetAttributesRequest(Struct):
    unique_identifier: str | None = uid()
    attribute_names: tuple[str, ...] = _attribute_names()
    attribute_references: tuple[IntEnum | AttributeReference, ...] = _attribute_references()


@response_payload(Operation.GET_ATTRIBUTES)
class GetAttributesResponse(Struct):
    unique_identifier: str | None = uid()
    attribute_list: tuple[Attribute, ...] = attribute_list()
    attributes: Attributes | None = attributes()


@request_payload(Operation.GET_ATTRIBUTE_LIST)
class GetAttributeListRequest(Struct):
    unique_identifier: str | None = uid()


@response_payload(Operation.GET_ATTRIBUTE_LIST)
class GetAttributeListResponse(Struct):
    unique_identifier: str | None = uid()
    attribute_names: tuple[str, ...] = _attribute_names()
    attribute_references: tuple[IntEnum | AttributeReference, ...] = _attribute_references()


@request_payload(Operation.ADD_ATTRIBUTE)
class AddAttributeRequest(Struct):
    unique_identifier: str | None = uid()
    attribute: Attribute | None = _attribute_v1()
    new_attribute: Attributes | None = attributes(Tag.NEW_ATTRIBUTE)


@response_payload(Operation.ADD_ATTRIBUTE)
class AddAttributeResponse(Struct):
    unique_identifier: str | None = uid()
    attribute: Attribute | None = _attribute_v1()


@request_payload(Operation.MODIFY_ATTRIBUTE)
class ModifyAttributeRequest(Struct):
    unique_identifier: str | None = uid()
    attribute: Attribute | None = _attribute_v1()
    current_attribute: Attributes | None = attributes(Tag.CURRENT_ATTRIBUTE)
    new_attribute: Attributes | None = attributes(Tag.NEW_ATTRIBUTE)


@response_payload(Operation.MODIFY_ATTRIBUTE)
class ModifyAttributeResponse(AddAttributeResponse):
    pass


@request_payload(Operation.DELETE_ATTRIBUTE)
class DeleteAttributeRequest(Struct):
    unique_identifier: str | None = uid()
    attribute_name: str | None = kfield(Tag.ATTRIBUTE_NAME, _TEXT, max_version=V1)
    attribute_index: int | None = kfield(Tag.ATTRIBUTE_INDEX, _INT, max_version=V1)
    current_attribute: Attributes | None = attributes(Tag.CURRENT_ATTRIBUTE)
    attribute_reference: IntEnum | AttributeReference | None = kfield(
        Tag.ATTRIBUTE_REFERENCE, ATTRIBUTE_REFERENCE, min_version=V2
    )


@response_payload(Operation.DELETE_ATTRIBUTE)
class DeleteAttributeResponse(AddAttributeResponse):
    pass


@request_payload(Operation.SET_ATTRIBUTE)
class SetAttributeRequest(Struct):
    unique_identifier: str | None = uid()
    new_attribute: Attributes | None = attributes(Tag.NEW_ATTRIBUTE)


@response_payload(Operation.SET_ATTRIBUTE)
class SetAttributeResponse(Struct):
    unique_identifier: str | None = uid()


@request_payload(Operation.ADJUST_ATTRIBUTE)
class AdjustAttributeRequest(Struct):
    unique_identifier: str | None = uid()
    attribute_reference: IntEnum | AttributeReference | None = kfield(Tag.ATTRIBUTE_REFERENCE, ATTRIBUTE_REFERENCE)
    adjustment_type: IntEnum | None = kfield(Tag.ADJUSTMENT_TYPE, _ENUM)
    # The value's type follows the attribute being adjusted.
    adjustment_value: int | datetime | None = kfield(Tag.ADJUSTMENT_VALUE, (_INT, _LONG, _BIG, _INTERVAL, _DT))


@response_payload(Operation.ADJUST_ATTRIBUTE)
class AdjustAttributeResponse(SetAttributeResponse):
    pass
