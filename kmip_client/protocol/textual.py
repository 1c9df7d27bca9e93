"""Text forms of item values shared by the KMIP XML and JSON encodings.

The OASIS profiles write enumerations and masks by their normalized names (hex for values
without one), byte strings and big integers in hex, dates in ISO 8601, booleans as
true/false. Names of an enumeration inside a 1.x ``Attribute`` depend on the attribute's
name, so callers pass the *meaning tag*: the item's own tag, or for an ``AttributeValue`` the
tag of the attribute named beside it (:func:`meaning_tag`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from enum import IntFlag
from typing import Any

from .errors import ProtocolError
from .placeholders import Placeholder, parse_placeholder
from .spec import (
    Tag,
    attribute_tag,
    enum_for_tag,
    enum_value_from_name,
    enum_value_name,
    mask_from_names,
    mask_to_names,
)
from .ttlv import Item, ItemType

__all__ = [
    "TYPE_NAMES",
    "TYPES_BY_NAME",
    "meaning_tag",
    "value_to_text",
    "value_from_text",
    "int_from_text",
    "settle_children",
    "PendingLeaf",
]

TYPE_NAMES: dict[ItemType, str] = {
    ItemType.STRUCTURE: "Structure",
    ItemType.INTEGER: "Integer",
    ItemType.LONG_INTEGER: "LongInteger",
    ItemType.BIG_INTEGER: "BigInteger",
    ItemType.ENUMERATION: "Enumeration",
    ItemType.BOOLEAN: "Boolean",
    ItemType.TEXT_STRING: "TextString",
    ItemType.BYTE_STRING: "ByteString",
    ItemType.DATE_TIME: "DateTime",
    ItemType.INTERVAL: "Interval",
    ItemType.DATE_TIME_EXTENDED: "DateTimeExtended",
}
TYPES_BY_NAME: dict[str, ItemType] = {name: typ for typ, name in TYPE_NAMES.items()}

_RANGES = {
    ItemType.INTEGER: (-(2**31), 2**31 - 1),
    ItemType.LONG_INTEGER: (-(2**63), 2**63 - 1),
    ItemType.ENUMERATION: (0, 2**32 - 1),
    ItemType.INTERVAL: (0, 2**32 - 1),
    ItemType.DATE_TIME: (-(2**63), 2**63 - 1),
    ItemType.DATE_TIME_EXTENDED: (-(2**63), 2**63 - 1),
}


def meaning_tag(tag: int, siblings: list[Item] | tuple[Item, ...]) -> int:
    """The tag whose enumeration names apply to an item among ``siblings``.

    An ``AttributeValue`` means what its ``AttributeName`` says ("Cryptographic Algorithm"
    → the Cryptographic Algorithm enumeration); every other item means its own tag.
    """
    if tag != Tag.ATTRIBUTE_VALUE:
        return tag
    for sibling in siblings:
        if sibling.tag == Tag.ATTRIBUTE_NAME and isinstance(sibling.value, str):
            return attribute_tag(sibling.value) or tag
    return tag


#: A leaf read from text whose value is not parsed yet: (tag, type, raw value, path).
PendingLeaf = tuple[int, ItemType, Any, str]
LeafParser = Callable[[int, ItemType, Any, str, list[Item]], Any]


def settle_children(children: list[Item | PendingLeaf], parse: LeafParser) -> tuple[Item, ...]:
    """Parse a structure's pending leaves once all its children are known.

    Text strings go first: an AttributeValue's names depend on the AttributeName beside it
    (``parse`` receives the items settled so far as siblings).
    """
    known = [c for c in children if isinstance(c, Item)]
    for c in children:
        if not isinstance(c, Item) and c[1] == ItemType.TEXT_STRING:
            known.append(Item(c[0], c[1], parse(*c, known)))
    return tuple(c if isinstance(c, Item) else Item(c[0], c[1], parse(*c, known)) for c in children)


def _check_range(typ: ItemType, value: int) -> int:
    low, high = _RANGES.get(typ, (None, None))
    if low is not None and high is not None and not low <= value <= high:
        raise ProtocolError(f"{value} is out of range for {TYPE_NAMES[typ]}")
    return value


def int_from_text(text: str, typ: ItemType) -> int:
    """Decimal, or hex with 0x (the two's complement bits for signed types)."""
    try:
        if text[:2].lower() == "0x":
            raw = bytes.fromhex(text[2:])
            signed = typ in (ItemType.INTEGER, ItemType.LONG_INTEGER, ItemType.DATE_TIME, ItemType.DATE_TIME_EXTENDED)
            return _check_range(typ, int.from_bytes(raw, "big", signed=signed))
        return _check_range(typ, int(text, 10))
    except ValueError:
        raise ProtocolError(f"{text!r} is not a valid {TYPE_NAMES[typ]}") from None


def _datetime_from_text(text: str, typ: ItemType) -> int:
    if text[:2].lower() == "0x":
        return int_from_text(text, typ)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ProtocolError(f"{text!r} is not an ISO 8601 date-time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # the profiles' dates are UTC
    if typ == ItemType.DATE_TIME_EXTENDED:
        delta = when - datetime(1970, 1, 1, tzinfo=UTC)
        return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    return int(when.timestamp())


def _datetime_to_text(value: int, typ: ItemType) -> str:
    try:
        if typ == ItemType.DATE_TIME_EXTENDED:
            when = datetime.fromtimestamp(value // 1_000_000, UTC).replace(microsecond=value % 1_000_000)
            return when.isoformat(timespec="microseconds")
        return datetime.fromtimestamp(value, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        # Outside what datetime can show (years beyond 9999): the profiles allow hex.
        return "0x" + (value & (2**64 - 1)).to_bytes(8, "big").hex().upper()


def value_to_text(meaning: int, typ: ItemType, value: Any) -> str:
    """The profile text of a primitive value (placeholders as their ``$NAME`` text)."""
    if isinstance(value, Placeholder):
        return str(value)
    if typ == ItemType.ENUMERATION:
        return enum_value_name(meaning, value)
    if typ == ItemType.INTEGER:
        enum = enum_for_tag(meaning)
        is_mask = enum is not None and issubclass(enum, IntFlag)
        return mask_to_names(meaning, value) if is_mask and value >= 0 else str(value)
    if typ in (ItemType.LONG_INTEGER, ItemType.INTERVAL):
        return str(value)
    if typ == ItemType.BOOLEAN:
        return "true" if value else "false"
    if typ == ItemType.TEXT_STRING:
        return str(value)
    if typ == ItemType.BYTE_STRING:
        return bytes(value).hex()
    if typ == ItemType.BIG_INTEGER:
        bits = (value if value >= 0 else ~value).bit_length() + 1
        raw: bytes = value.to_bytes(max(8, (bits + 63) // 64 * 8), "big", signed=True)
        return raw.hex()
    if typ in (ItemType.DATE_TIME, ItemType.DATE_TIME_EXTENDED):
        return _datetime_to_text(value, typ)
    raise ProtocolError(f"no text form for item type {typ!r}")


def value_from_text(meaning: int, typ: ItemType, text: str, placeholders: bool = False) -> Any:
    """Parse the profile text of a primitive value.

    With ``placeholders`` (test-case files), ``$NAME`` texts become :class:`Placeholder`
    values. Without it (messages from real peers) a text string "$NOW" is just that text: the
    encodings have no escape, so only the caller knows which kind of document it reads.
    """
    if placeholders and text.startswith("$"):
        placeholder = parse_placeholder(text)
        if placeholder is not None:
            return placeholder
    try:
        if typ == ItemType.TEXT_STRING:
            return text
        if typ == ItemType.ENUMERATION:
            return _check_range(typ, enum_value_from_name(meaning, text))
        if typ == ItemType.INTEGER:
            if text.lstrip("-").isdigit() or text[:2].lower() == "0x":
                return int_from_text(text, typ)
            return _check_range(typ, mask_from_names(meaning, text))
        if typ in (ItemType.LONG_INTEGER, ItemType.INTERVAL):
            return int_from_text(text, typ)
        if typ == ItemType.BOOLEAN:
            lowered = text.lower()
            if lowered in ("true", "false"):
                return lowered == "true"
            flag = int_from_text(text, ItemType.LONG_INTEGER)
            if flag not in (0, 1):
                raise ProtocolError(f"{text!r} is not a Boolean")
            return flag == 1
        if typ == ItemType.BYTE_STRING:
            return bytes.fromhex(text)
        if typ == ItemType.BIG_INTEGER:
            raw = bytes.fromhex(text[2:] if text[:2].lower() == "0x" else text)
            return int.from_bytes(raw, "big", signed=True)
        if typ in (ItemType.DATE_TIME, ItemType.DATE_TIME_EXTENDED):
            return _datetime_from_text(text, typ)
    except (KeyError, ValueError) as exc:
        detail = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
        raise ProtocolError(f"{text!r} is not a valid {TYPE_NAMES[typ]}: {detail}") from None
    raise ProtocolError(f"no text form for item type {typ!r}")
