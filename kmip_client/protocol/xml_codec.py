"""The KMIP XML message encoding of the OASIS profiles, at the item-tree level.

``<ObjectType type="Enumeration" value="SymmetricKey"/>``: the element is the tag's
normalized name (``<TTLV tag="0x540001" ...>`` for tags without one), ``type`` the item type
(absent for a Structure, whose children are its elements) and ``value`` the text form of
:mod:`.textual`. A document holding several messages wraps them in ``<KMIP>``, as the
test-case files do. Every error is a ProtocolError naming the element path.

Documents are read with defusedxml, which refuses DTDs and entities whatever the document's
encoding, and built into items as the parser goes (no element tree), each leaf counted at its
TTLV length so that a ``max_size`` stops the reading as soon as it is passed.
"""

from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET
from typing import Any
from xml.sax.saxutils import quoteattr

from defusedxml.common import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

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


def _read(text: str | bytes, document: bool, placeholders: bool, max_size: int | None) -> list[Item]:
    raw = text.encode("utf-8") if isinstance(text, str) else text
    builder = _Builder(document, placeholders, max_size)
    # defusedxml refuses a DTD, entity declarations and external references as the parser
    # meets them, after decoding: a guard on the raw bytes misses UTF-16 and UTF-32 bodies.
    # KMIP XML never needs a DTD, and without one nothing can expand: what is read is at
    # most as long as the body. A target builds items directly, so no element tree is built.
    parser = DefusedXMLParser(target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    try:
        parser.feed(raw)
        parser.close()
    except DefusedXmlException:
        raise ProtocolError("XML with a DOCTYPE, ENTITY or external reference is not accepted") from None
    except ET.ParseError as exc:
        raise ProtocolError(f"not well-formed XML: {exc}") from None
    if not builder.items:
        raise ProtocolError("no XML element")
    return builder.items


def items_from_xml_document(
    text: str | bytes, *, placeholders: bool = False, max_size: int | None = None
) -> list[Item]:
    """The messages of a document: one message element, or several inside ``<KMIP>``.

    ``placeholders=True`` reads ``$NAME`` values as :class:`Placeholder` (test-case files).
    ``max_size`` bounds the TTLV the document becomes, and so each value in it: a ProtocolError
    as soon as what has been read would exceed it.
    """
    return _read(text, True, placeholders, max_size)


def item_from_xml(text: str | bytes, *, placeholders: bool = False, max_size: int | None = None) -> Item:
    """One item (normally a message) from its XML element; ``max_size`` bounds its TTLV
    length as in :func:`items_from_xml_document`."""
    return _read(text, False, placeholders, max_size)[0]


def _element_tag(name: str, attrib: dict[str, str], path: str) -> int:
    tag_text = attrib.get("tag") if name == _UNKNOWN_TAG_ELEMENT else name
    if tag_text is None:
        raise ProtocolError(f"{path}: a TTLV element needs a tag attribute")
    try:
        return tag_from_name(tag_text)
    except (KeyError, ValueError):
        raise ProtocolError(f"{path}: unknown tag {tag_text!r}") from None


def _padded(length: int) -> int:
    return (length + 7) & ~7


def _ttlv_size(typ: ItemType, text: str) -> int:
    """The TTLV length of a leaf with this text form (Big Integers approximately)."""
    if typ == ItemType.TEXT_STRING:
        return 8 + _padded(len(text.encode("utf-8", "surrogatepass")))
    if typ in (ItemType.BYTE_STRING, ItemType.BIG_INTEGER):
        return 8 + max(8, _padded(len(text) // 2))
    return 16


class _Frame:
    """A Structure element being read: its path, tag and children so far."""

    __slots__ = ("path", "tag", "count", "children")

    def __init__(self, path: str, tag: int) -> None:
        self.path = path
        self.tag = tag
        self.count = 0  # child elements started
        # Items, or (tag, type, text, path) leaves whose text is parsed when all siblings
        # are known: an AttributeValue's names depend on the AttributeName beside it.
        self.children: list[Item | PendingLeaf] = []


class _Builder:
    """The parser's target: items straight from start and end events, sized as they come."""

    def __init__(self, document: bool, placeholders: bool, max_size: int | None) -> None:
        self.items: list[Item] = []
        self._document = document
        self._wrapped = False  # the <KMIP> root of a document is open
        self._placeholders = placeholders
        self._parse = functools.partial(_leaf, placeholders=placeholders)
        self._max_size = max_size
        self._size = 0
        self._frames: list[_Frame] = []  # the open Structures, outermost first
        self._leaf: PendingLeaf | None = None  # the open leaf element
        self._closed_root = False

    def start(self, name: str, attrib: dict[str, str]) -> None:
        frames = self._frames
        if self._leaf is not None:
            raise ProtocolError(f"{self._leaf[3]}: a {TYPE_NAMES[self._leaf[1]]} cannot have child elements")
        if frames:
            parent = frames[-1]
            path = f"{parent.path}/{name}[{parent.count}]"
            parent.count += 1
        elif self._wrapped:
            path = f"{_DOCUMENT_ROOT}/{name}[{len(self.items)}]"
        elif self._closed_root:
            raise ProtocolError("junk after the document element")  # expat reports it first
        elif self._document and name == _DOCUMENT_ROOT:
            self._wrapped = True
            return
        else:
            path = name
        tag = _element_tag(name, attrib, path)
        type_name = attrib.get("type", "Structure")
        typ = TYPES_BY_NAME.get(type_name)
        if typ is None:
            raise ProtocolError(f"{path}: unknown type {type_name!r}")
        value = attrib.get("value")
        if typ == ItemType.STRUCTURE:
            if value is not None:
                raise ProtocolError(f"{path}: a Structure has child elements, not a value")
            if len(frames) >= DEFAULT_MAX_DEPTH:
                raise ProtocolError(f"{path}: structures nested deeper than {DEFAULT_MAX_DEPTH}")
            self._grow(8, path)
            frames.append(_Frame(path, tag))
            return
        if value is None:
            raise ProtocolError(f"{path}: missing value attribute")
        self._grow(_ttlv_size(typ, value), path)
        self._leaf = (tag, typ, value, path)

    def _grow(self, size: int, path: str) -> None:
        self._size += size
        if self._max_size is not None and self._size > self._max_size:
            raise ProtocolError(f"{path}: the message would be longer than {self._max_size} bytes as TTLV")

    def end(self, name: str) -> None:
        leaf = self._leaf
        frames = self._frames
        if leaf is not None:
            self._leaf = None
            if frames:
                frames[-1].children.append(leaf)
            else:
                tag, typ, text, path = leaf
                self._done(Item(tag, typ, _leaf(tag, typ, text, path, [], self._placeholders)))
            return
        if not frames:  # the <KMIP> wrapper
            self._wrapped = False
            self._closed_root = True
            return
        frame = frames.pop()
        item = Item(frame.tag, ItemType.STRUCTURE, settle_children(frame.children, self._parse))
        if frames:
            frames[-1].children.append(item)
        else:
            self._done(item)

    def _done(self, item: Item) -> None:
        self.items.append(item)
        if not self._wrapped:
            self._closed_root = True

    def close(self) -> None:
        return None


def _leaf(tag: int, typ: ItemType, text: str, path: str, siblings: list[Item], placeholders: bool = False) -> Any:
    try:
        return value_from_text(meaning_tag(tag, siblings), typ, text, placeholders)
    except ProtocolError as exc:
        raise ProtocolError(f"{path}: {exc.detail}") from None


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
