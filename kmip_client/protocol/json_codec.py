"""The KMIP JSON message encoding of the OASIS profiles, at the item-tree level.

``{"tag": "ObjectType", "type": "Enumeration", "value": "SymmetricKey"}``: tags by normalized
name (hex "0x540001" for tags without one), ``type`` absent for a Structure, whose ``value``
is the list of its children. Integers, Long Integers and Intervals are JSON numbers (Long
Integers beyond JavaScript's exact range as hex strings), Booleans JSON booleans, masks the
bit names joined by ``|``; every other value is the text form of :mod:`.textual`. Several
messages are wrapped as ``{"tag": "KMIP", "value": [...]}``, mirroring the XML ``<KMIP>``
root of the test-case files; a bare JSON array is accepted too.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from .errors import ProtocolError
from .placeholders import Placeholder
from .spec import tag_from_name, tag_name
from .textual import (
    TYPE_NAMES,
    TYPES_BY_NAME,
    int_from_text,
    meaning_tag,
    settle_children,
    value_from_text,
    value_to_text,
)
from .ttlv import DEFAULT_MAX_DEPTH, Item, ItemType

__all__ = ["item_from_json", "item_to_json", "items_from_json_document", "items_to_json_document"]

_DOCUMENT_TAG = "KMIP"
_JS_SAFE = 2**53 - 1
_NUMBER_TYPES = (ItemType.INTEGER, ItemType.LONG_INTEGER, ItemType.INTERVAL)


def _load(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise ProtocolError(f"JSON nested deeper than {DEFAULT_MAX_DEPTH} structures") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"not valid JSON: {exc}") from None


def items_from_json_document(text: str | bytes, *, placeholders: bool = False) -> list[Item]:
    """The messages of a document: one message object, a ``KMIP`` wrapper, or an array.

    ``placeholders=True`` reads ``$NAME`` values as :class:`Placeholder` (test-case files).
    """
    data = _load(text)
    if isinstance(data, dict) and data.get("tag") == _DOCUMENT_TAG:
        data = data.get("value")
        if not isinstance(data, list):
            raise ProtocolError(f"{_DOCUMENT_TAG}: value must be a list of messages")
    if isinstance(data, list):
        return [_to_item(node, f"[{n}]", placeholders) for n, node in enumerate(data)]
    return [_to_item(data, "", placeholders)]


def item_from_json(text: str | bytes, *, placeholders: bool = False) -> Item:
    """One item (normally a message) from its JSON object."""
    return _to_item(_load(text), "", placeholders)


def _header(node: Any, path: str) -> tuple[int, ItemType, str]:
    if not isinstance(node, dict) or "tag" not in node:
        raise ProtocolError(f"{path or '/'}: expected an object with a tag")
    name = node["tag"]
    if not isinstance(name, str):
        raise ProtocolError(f"{path or '/'}: tag must be a string")
    path = f"{path}/{name}" if path else name
    try:
        tag = tag_from_name(name)
    except (KeyError, ValueError):
        raise ProtocolError(f"{path}: unknown tag {name!r}") from None
    type_name = node.get("type", "Structure")
    typ = TYPES_BY_NAME.get(type_name) if isinstance(type_name, str) else None
    if typ is None:
        raise ProtocolError(f"{path}: unknown type {type_name!r}")
    if "value" not in node:
        raise ProtocolError(f"{path}: missing value")
    return tag, typ, path


def _leaf_value(
    tag: int, typ: ItemType, raw: Any, path: str, siblings: list[Any], placeholders: bool = False
) -> Any:
    meaning = meaning_tag(tag, siblings)
    try:
        if isinstance(raw, bool):
            if typ != ItemType.BOOLEAN:
                raise ProtocolError(f"a JSON boolean is not a {TYPE_NAMES[typ]}")
            return raw
        if isinstance(raw, int):
            if typ not in _NUMBER_TYPES and typ != ItemType.ENUMERATION:
                raise ProtocolError(f"a JSON number is not a {TYPE_NAMES[typ]}")
            return int_from_text(str(raw), typ)
        if isinstance(raw, str):
            return value_from_text(meaning, typ, raw, placeholders)
        raise ProtocolError(f"a JSON {type(raw).__name__} is not a {TYPE_NAMES[typ]}")
    except ProtocolError as exc:
        raise ProtocolError(f"{path}: {exc.detail}") from None


def _to_item(node: Any, path: str, placeholders: bool) -> Item:
    # Iterative, bottom-up per structure so that an AttributeValue sees its AttributeName.
    tag, typ, path = _header(node, path)
    if typ != ItemType.STRUCTURE:
        return Item(tag, typ, _leaf_value(tag, typ, node["value"], path, [], placeholders))
    parse = functools.partial(_leaf_value, placeholders=placeholders)
    frames: list[tuple[int, str, list[Any], list[Any]]] = [(tag, path, list(_children(node, path)), [])]
    while True:
        frame_tag, frame_path, pending, done = frames[-1]
        if len(done) < len(pending):
            child = pending[len(done)]
            child_tag, child_type, child_path = _header(child, f"{frame_path}[{len(done)}]")
            if child_type == ItemType.STRUCTURE:
                if len(frames) >= DEFAULT_MAX_DEPTH:
                    raise ProtocolError(f"{child_path}: structures nested deeper than {DEFAULT_MAX_DEPTH}")
                frames.append((child_tag, child_path, list(_children(child, child_path)), []))
                done.append(None)  # filled when the structure closes
            else:
                done.append((child_tag, child_type, child["value"], child_path))
            continue
        frames.pop()
        item = Item(frame_tag, ItemType.STRUCTURE, settle_children(done, parse))
        if not frames:
            return item
        parent_done = frames[-1][3]
        parent_done[parent_done.index(None)] = item


def _children(node: dict[str, Any], path: str) -> list[Any]:
    value = node["value"]
    if not isinstance(value, list):
        raise ProtocolError(f"{path}: a Structure's value must be a list")
    return value


def item_to_json(item: Item, indent: int | None = 2) -> str:
    """The JSON object of one item (normally a message)."""
    return json.dumps(_to_node(item, ()), indent=indent)


def items_to_json_document(items: list[Item], indent: int | None = 2) -> str:
    """One message as its object; several wrapped as ``{"tag": "KMIP", "value": [...]}``."""
    if len(items) == 1:
        return item_to_json(items[0], indent) + "\n"
    nodes = [_to_node(item, ()) for item in items]
    return json.dumps({"tag": _DOCUMENT_TAG, "value": nodes}, indent=indent) + "\n"


def _to_node(item: Item, siblings: tuple[Item, ...]) -> dict[str, Any]:
    name = tag_name(item.tag)
    if item.type == ItemType.STRUCTURE:
        return {"tag": name, "value": [_to_node(child, item.value) for child in item.value]}
    value = item.value
    node: dict[str, Any] = {"tag": name, "type": TYPE_NAMES[item.type]}
    if isinstance(value, Placeholder):
        node["value"] = str(value)
    elif item.type == ItemType.BOOLEAN:
        node["value"] = bool(value)
    elif item.type in _NUMBER_TYPES and abs(value) <= _JS_SAFE:
        text = value_to_text(meaning_tag(item.tag, siblings), item.type, value)
        node["value"] = value if text == str(value) else text.replace(" ", "|")
    elif item.type in _NUMBER_TYPES:
        node["value"] = "0x" + (value & (2**64 - 1)).to_bytes(8, "big").hex().upper()
    else:
        node["value"] = value_to_text(meaning_tag(item.tag, siblings), item.type, value)
    return node
