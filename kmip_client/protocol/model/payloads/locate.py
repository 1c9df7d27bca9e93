"""Payloads of Locate: the search criteria (1.x repeated Attribute, 2.x Attributes) and hits."""

from __future__ import annotations

from enum import IntEnum, IntFlag

from ...spec import Tag
from ...spec.enums import Operation
from ...ttlv import ItemType
from ..attributes import Attribute, Attributes
from ..base import Struct, kfield
from ..messages import request_payload, response_payload
from .structures import attribute_list, attributes, uid

_INT = ItemType.INTEGER
_ENUM = ItemType.ENUMERATION


@request_payload(Operation.LOCATE)
class LocateRequest(Struct):
    maximum_items: int | None = kfield(Tag.MAXIMUM_ITEMS, _INT)
    offset_items: int | None = kfield(Tag.OFFSET_ITEMS, _INT, min_version=(1, 3))
    storage_status_mask: IntFlag | int | None = kfield(Tag.STORAGE_STATUS_MASK, _INT)
    object_group_member: IntEnum | None = kfield(Tag.OBJECT_GROUP_MEMBER, _ENUM, min_version=(1, 1))
    attribute_list: tuple[Attribute, ...] = attribute_list()
    attributes: Attributes | None = attributes()


@response_payload(Operation.LOCATE)
class LocateResponse(Struct):
    located_items: int | None = kfield(Tag.LOCATED_ITEMS, _INT, min_version=(1, 3))
    unique_identifiers: tuple[str, ...] = uid(repeated=True)
