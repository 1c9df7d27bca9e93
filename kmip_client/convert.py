"""Conversion of KMIP messages between binary TTLV, hex TTLV, JSON and XML.

Works on whole documents: one message, or several (concatenated in TTLV, wrapped the way
the OASIS test-case files are in XML and JSON). Placeholders of test-case files survive
XML↔JSON unchanged; a binary encoding needs concrete values, so text placeholders are kept
as their ``$NAME`` text and the others are bound from :class:`Bindings`.

Hex input (:func:`hex_to_bytes`) is read the way people paste it: digits in groups separated
by white space, line breaks, ``|``, ``:`` or ``,``, each group optionally ``0x``-prefixed
(``42 00 78 01``, ``420078``, ``0x42, 0x00``, ``42:00:78``), the plain lines of ``xxd -p``, and
``xxd`` dumps (``00000000: 4200 7801 ...  B.x.....``), whose offsets and character column are
dropped. A group holds whole bytes: an odd number of digits in one is an error, as is any
other character, and the error names the line and column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .protocol.errors import ProtocolError
from .protocol.json_codec import items_from_json_document, items_to_json_document
from .protocol.placeholders import Placeholder
from .protocol.spec import tag_name
from .protocol.textual import meaning_tag, value_from_text
from .protocol.ttlv import Item, ItemType, decode_item, encode
from .protocol.xml_codec import items_from_xml_document, items_to_xml_document

__all__ = ["FORMATS", "Bindings", "read_messages", "write_messages", "convert", "hex_to_bytes"]

FORMATS = ("ttlv", "hex", "json", "xml")
_HEX_GROUP = re.compile(r"[^\s|:,]+")  # what lies between the separators
# An xxd line: an offset of 8 or more hex digits, ": ", groups of hex digits separated by single
# spaces, then (after two or more spaces) the character column, which is dropped.
_XXD_LINE = re.compile(r"\s*([0-9a-fA-F]{8,}): ((?:[0-9a-fA-F]{2})+(?: (?:[0-9a-fA-F]{2})+)*)(?:  .*| )?")
_NOT_HEX = re.compile(r"[^0-9a-fA-F]")


@dataclass
class Bindings:
    """Values for placeholders when writing TTLV: ``now`` for $NOW±s, ``values`` by name."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    values: dict[str, str] = field(default_factory=dict)


def read_messages(data: bytes, fmt: str) -> list[Item]:
    """Parse a document in ``fmt`` into its messages."""
    if fmt == "ttlv":
        return _read_ttlv(data)
    if fmt == "hex":
        return _read_ttlv(hex_to_bytes(data))
    # Test-case files use placeholders; in real traffic a "$..." value of a non-text type
    # would be an error anyway, and text placeholders are written back as the same text.
    if fmt == "json":
        return items_from_json_document(data, placeholders=True)
    if fmt == "xml":
        return items_from_xml_document(data, placeholders=True)
    raise ValueError(f"unknown format {fmt!r}")


def write_messages(items: list[Item], fmt: str, bindings: Bindings | None = None) -> bytes:
    """Render messages in ``fmt``."""
    if fmt == "json":
        return items_to_json_document(items).encode("utf-8")
    if fmt == "xml":
        return items_to_xml_document(items).encode("utf-8")
    bindings = bindings or Bindings()
    # In a document of several messages, say which message an error is in.
    names = [tag_name(item.tag) + (f"[{n}]" if len(items) > 1 else "") for n, item in enumerate(items)]
    missing: dict[str, str] = {}  # placeholder → where it first appears
    bound = [_bind(item, bindings, name, (), missing) for item, name in zip(items, names, strict=True)]
    if missing:
        first = next(iter(missing.values()))
        needed = " ".join(f"--bind {name}=..." for name in missing)
        raise ProtocolError(f"{first}: placeholders need values for a binary encoding: {needed}")
    if fmt == "ttlv":
        return b"".join(encode(item) for item in bound)
    if fmt == "hex":
        return b"".join(encode(item).hex().encode("ascii") + b"\n" for item in bound)
    raise ValueError(f"unknown format {fmt!r}")


def convert(data: bytes, source: str, target: str, bindings: Bindings | None = None) -> bytes:
    """Convert a whole document from ``source`` to ``target`` format."""
    return write_messages(read_messages(data, source), target, bindings)


def hex_to_bytes(data: bytes) -> bytes:
    """The bytes that hex text ``data`` spells (the forms are in the module's doc string); a
    :class:`ProtocolError` naming the line and column of the first thing that is not hex."""
    text = data.decode("ascii", errors="replace")
    out = bytearray()
    xxd_base: int | None = None  # where the xxd dump starts: its first offset, less the bytes before it
    for number, line in enumerate(text.splitlines(), 1):
        start, end = 0, len(line)
        xxd = _XXD_LINE.fullmatch(line)
        if xxd:
            start, end = xxd.span(2)
            offset = int(xxd.group(1), 16)
            if xxd_base is None:
                xxd_base = offset - len(out)
            elif offset != xxd_base + len(out):
                raise ProtocolError(
                    f"xxd offset {xxd.group(1)} at line {number}, where {xxd_base + len(out):0{len(xxd.group(1))}x} "
                    "follows: a line is missing or repeated"
                )
        for group in _HEX_GROUP.finditer(line, start, end):
            digits, column = group.group(), group.start() + 1
            where = f"line {number}, column {column}"
            if digits[:2] in ("0x", "0X"):
                digits, column = digits[2:], column + 2
                if not digits:
                    raise ProtocolError(f"not hex: '0x' without digits at {where}")
            bad = _NOT_HEX.search(digits)
            if bad:
                raise ProtocolError(f"not hex: {bad.group()!r} at line {number}, column {column + bad.start()}")
            if len(digits) % 2:
                shown = digits if len(digits) <= 16 else digits[:16] + "..."
                raise ProtocolError(
                    f"odd number of hex digits ({len(digits)}) in {shown!r} at {where}: a byte's two digits belong together"
                )
            out += bytes.fromhex(digits)
    return bytes(out)


def _read_ttlv(data: bytes) -> list[Item]:
    items: list[Item] = []
    offset = 0
    while offset < len(data):
        item, offset = decode_item(data, offset)
        items.append(item)
    if not items:
        raise ProtocolError("no message in the input")
    return items


def _bind(item: Item, bindings: Bindings, path: str, siblings: tuple[Item, ...], missing: dict[str, str]) -> Item:
    """Replace placeholders that a binary encoding cannot carry as text."""
    if item.type == ItemType.STRUCTURE:
        children = tuple(
            _bind(child, bindings, f"{path}/{tag_name(child.tag)}", item.value, missing) for child in item.value
        )
        return Item(item.tag, item.type, children)
    placeholder = item.value
    if not isinstance(placeholder, Placeholder):
        return item
    if placeholder.name in bindings.values:
        text = bindings.values[placeholder.name]
        try:
            value = value_from_text(meaning_tag(item.tag, siblings), ItemType(item.type), text)
        except ProtocolError as exc:
            raise ProtocolError(f"{path}: --bind {placeholder.name}: {exc.detail}") from None
        return Item(item.tag, item.type, value)
    if item.type == ItemType.TEXT_STRING:
        return Item(item.tag, item.type, str(placeholder))
    if placeholder.name == "NOW" and item.type == ItemType.DATE_TIME:
        return Item(item.tag, item.type, int(bindings.now.timestamp()) + placeholder.offset)
    if placeholder.name == "NOW" and item.type == ItemType.DATE_TIME_EXTENDED:
        micros = int(bindings.now.timestamp() * 1_000_000)
        return Item(item.tag, item.type, micros + placeholder.offset * 1_000_000)
    missing.setdefault(placeholder.name, path)
    return item
