"""The KMIP XML message encoding of the OASIS profiles, at the item-tree level.

``<ObjectType type="Enumeration" value="SymmetricKey"/>``: the element is the tag's
normalized name (``<TTLV tag="0x540001" ...>`` for tags without one), ``type`` the item type
(absent for a Structure, whose children are its elements) and ``value`` the text form of
:mod:`.textual`. A document holding several messages wraps them in ``<KMIP>``, as the
test-case files do. Every error is a ProtocolError naming the element path.
"""

from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET
from typing import Any
from xml.sax.saxutils import quoteattr

from .errors import ProtocolError
from .spec import TAG_XML_NAMES, tag_from_name
from .textual import (
    TYPE_NAMES,
    TYPES_BY_NAME,
    PendingLeaf,
    meaning_tag,
    settle_children,
    value_from_text,
    value_to_text,
)
from .ttlv import DEFAULT_MAX_DEPTH, Item, ItemType

__all__ = ["XML_ILLEGAL", "item_from_xml", "item_to_xml", "items_from_xml_document", "items_to_xml_document"]

_DOCUMENT_ROOT = "KMIP"
#: Characters XML 1.0 cannot carry at all, escaped or not.
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_UNKNOWN_TAG_ELEMENT = "TTLV"


def _parse(text: str | bytes) -> ET.Element:
    raw = text.encode("utf-8") if isinstance(text, str) else text
    # Entity expansion is the classic XML bomb; KMIP XML never needs a DTD.
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise ProtocolError("XML with a DOCTYPE or ENTITY declaration is not accepted")
    try:
        return ET.fromstring(raw)
    except ET.ParseError as exc:
        raise ProtocolError(f"not well-formed XML: {exc}") from None


def items_from_xml_document(text: str | bytes, *, placeholders: bool = False) -> list[Item]:
    """The messages of a document: one message element, or several inside ``<KMIP>``.

    ``placeholders=True`` reads ``$NAME`` values as :class:`Placeholder` (test-case files).
    """
    root = _parse(text)
    if root.tag == _DOCUMENT_ROOT:
        return [
            _element_to_item(child, f"{_DOCUMENT_ROOT}/{child.tag}[{n}]", placeholders)
            for n, child in enumerate(root)
        ]
    return [_element_to_item(root, root.tag, placeholders)]


def item_from_xml(text: str | bytes, *, placeholders: bool = False) -> Item:
    """One item (normally a message) from its XML element."""
    root = _parse(text)
    return _element_to_item(root, root.tag, placeholders)


def _element_tag(element: ET.Element, path: str) -> int:
    name = element.get("tag") if element.tag == _UNKNOWN_TAG_ELEMENT else element.tag
    if name is None:
        raise ProtocolError(f"{path}: a TTLV element needs a tag attribute")
    try:
        return tag_from_name(name)
    except (KeyError, ValueError):
        raise ProtocolError(f"{path}: unknown tag {name!r}") from None


class _Frame:
    """A Structure element being read: its children so far and the next element to visit."""

    __slots__ = ("element", "path", "tag", "elements", "next", "children")

    def __init__(self, element: ET.Element, path: str, tag: int) -> None:
        self.element = element
        self.path = path
        self.tag = tag
        self.elements = list(element)
        self.next = 0
        # Items, or (tag, type, text, path) leaves whose text is parsed when all siblings
        # are known: an AttributeValue's names depend on the AttributeName beside it.
        self.children: list[Item | PendingLeaf] = []


def _header(element: ET.Element, path: str) -> tuple[int, ItemType]:
    tag = _element_tag(element, path)
    type_name = element.get("type", "Structure")
    typ = TYPES_BY_NAME.get(type_name)
    if typ is None:
        raise ProtocolError(f"{path}: unknown type {type_name!r}")
    if typ == ItemType.STRUCTURE:
        if element.get("value") is not None:
            raise ProtocolError(f"{path}: a Structure has child elements, not a value")
    elif len(element):
        raise ProtocolError(f"{path}: a {type_name} cannot have child elements")
    elif element.get("value") is None:
        raise ProtocolError(f"{path}: missing value attribute")
    return tag, typ


def _leaf(tag: int, typ: ItemType, text: str, path: str, siblings: list[Item], placeholders: bool = False) -> Any:
    try:
        return value_from_text(meaning_tag(tag, siblings), typ, text, placeholders)
    except ProtocolError as exc:
        raise ProtocolError(f"{path}: {exc.detail}") from None


def _element_to_item(element: ET.Element, path: str, placeholders: bool) -> Item:
    # Iterative: a hostile document may nest deeper than Python's recursion limit.
    tag, typ = _header(element, path)
    if typ != ItemType.STRUCTURE:
        return Item(tag, typ, _leaf(tag, typ, element.get("value", ""), path, [], placeholders))
    parse = functools.partial(_leaf, placeholders=placeholders)
    frames = [_Frame(element, path, tag)]
    while True:
        frame = frames[-1]
        if frame.next < len(frame.elements):
            child = frame.elements[frame.next]
            child_path = f"{frame.path}/{child.tag}[{frame.next}]"
            frame.next += 1
            child_tag, child_type = _header(child, child_path)
            if child_type == ItemType.STRUCTURE:
                if len(frames) >= DEFAULT_MAX_DEPTH:
                    raise ProtocolError(f"{child_path}: structures nested deeper than {DEFAULT_MAX_DEPTH}")
                frames.append(_Frame(child, child_path, child_tag))
            else:
                frame.children.append((child_tag, child_type, child.get("value", ""), child_path))
            continue
        done = frames.pop()
        item = Item(done.tag, ItemType.STRUCTURE, settle_children(done.children, parse))
        if not frames:
            return item
        frames[-1].children.append(item)


def item_to_xml(item: Item, indent: bool = True) -> str:
    """The XML element of one item (normally a message)."""
    lines: list[str] = []
    _write(item, (), 0, lines, indent)
    return ("\n" if indent else "").join(lines)


def items_to_xml_document(items: list[Item]) -> str:
    """One message as its element; several wrapped in ``<KMIP>`` like the test-case files."""
    if len(items) == 1:
        return item_to_xml(items[0]) + "\n"
    body = "\n\n".join(item_to_xml(item) for item in items)
    return f"<{_DOCUMENT_ROOT}>\n\n{body}\n\n</{_DOCUMENT_ROOT}>\n"


def _write(item: Item, siblings: tuple[Item, ...], depth: int, lines: list[str], indent: bool) -> None:
    pad = "  " * depth if indent else ""
    name = TAG_XML_NAMES.get(item.tag)
    opening = name if name else f'{_UNKNOWN_TAG_ELEMENT} tag="0x{item.tag:06X}"'
    closing = name if name else _UNKNOWN_TAG_ELEMENT
    if item.type == ItemType.STRUCTURE:
        if not item.value:
            lines.append(f"{pad}<{opening}/>")
            return
        lines.append(f"{pad}<{opening}>")
        for child in item.value:
            _write(child, item.value, depth + 1, lines, indent)
        lines.append(f"{pad}</{closing}>")
        return
    text = value_to_text(meaning_tag(item.tag, siblings), item.type, item.value)
    bad = XML_ILLEGAL.search(text)
    if bad:
        raise ProtocolError(f"{name or hex(item.tag)}: character {bad.group()!r} cannot be written in XML")
    lines.append(f'{pad}<{opening} type="{TYPE_NAMES[item.type]}" value={quoteattr(text)}/>')
