"""Binary TTLV encoding of a generic KMIP item tree (sans-I/O).

An :class:`Item` is ``(tag, type, value)``; a Structure's value is a tuple of Items. Values
are plain Python: ``int`` for Integer, Long Integer, Big Integer, Enumeration and Interval,
``int`` seconds since the epoch for Date-Time, ``int`` microseconds since the epoch for
Date-Time Extended, ``bool``, ``str`` and ``bytes``.

Decoding treats its input as hostile: it is iterative (no recursion, bounded depth), checks
every length against the enclosing structure, requires zero padding, fixed lengths for the
fixed-size types and valid UTF-8, and reports every problem as one :class:`ProtocolError`
with the byte offset where it was found.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from enum import IntEnum
from typing import Any, NamedTuple

from .errors import ProtocolError

__all__ = [
    "ItemType",
    "Item",
    "encode",
    "decode",
    "decode_item",
    "write_items",
    "write_leaf",
    "leaf_writer",
    "open_structure",
    "close_structure",
    "DEFAULT_MAX_DEPTH",
]

#: Deepest structure nesting accepted when decoding. Real KMIP messages stay below 12.
DEFAULT_MAX_DEPTH = 64


class ItemType(IntEnum):
    """The TTLV item type codes of KMIP 1.0–2.1."""

    STRUCTURE = 0x01
    INTEGER = 0x02
    LONG_INTEGER = 0x03
    BIG_INTEGER = 0x04
    ENUMERATION = 0x05
    BOOLEAN = 0x06
    TEXT_STRING = 0x07
    BYTE_STRING = 0x08
    DATE_TIME = 0x09
    INTERVAL = 0x0A
    DATE_TIME_EXTENDED = 0x0B


class Item(NamedTuple):
    """One TTLV item. A NamedTuple so that building and comparing trees stays cheap."""

    tag: int
    type: ItemType
    value: Any

    def find(self, tag: int) -> Item | None:
        """The first direct child with ``tag``, or None."""
        child: Item
        for child in self.value:
            if child.tag == tag:
                return child
        return None

    def find_all(self, tag: int) -> list[Item]:
        """All direct children with ``tag``, in order."""
        return [child for child in self.value if child.tag == tag]


_STRUCTURE = ItemType.STRUCTURE
_INTEGER = ItemType.INTEGER
_LONG = ItemType.LONG_INTEGER
_BIG = ItemType.BIG_INTEGER
_ENUM = ItemType.ENUMERATION
_BOOL = ItemType.BOOLEAN
_TEXT = ItemType.TEXT_STRING
_BYTES = ItemType.BYTE_STRING
_DATETIME = ItemType.DATE_TIME
_INTERVAL = ItemType.INTERVAL
_DTE = ItemType.DATE_TIME_EXTENDED
_TYPES = {t.value: t for t in ItemType}

_HEADER = struct.Struct(">II")
_LENGTH = struct.Struct(">I")
# Whole-item layouts for the fixed-size types: header, value, padding in one pack call.
_FIXED_LAYOUTS: dict[int, struct.Struct] = {
    _INTEGER: struct.Struct(">IIi4x"),
    _LONG: struct.Struct(">IIq"),
    _ENUM: struct.Struct(">III4x"),
    _BOOL: struct.Struct(">IIQ"),
    _DATETIME: struct.Struct(">IIq"),
    _INTERVAL: struct.Struct(">III4x"),
    _DTE: struct.Struct(">IIq"),
}
_FIXED_LENGTHS: dict[int, int] = {_INTEGER: 4, _LONG: 8, _ENUM: 4, _BOOL: 8, _DATETIME: 8, _INTERVAL: 4, _DTE: 8}
_I32 = struct.Struct(">i")
_I32_PAD = struct.Struct(">iI")
_U32_PAD = struct.Struct(">II")
_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")
_U64 = struct.Struct(">Q")
_ZEROS = bytes(8)


# --------------------------------------------------------------------------- encoding


def encode(item: Item) -> bytes:
    """Encode one item (normally a Request or Response Message) to TTLV bytes."""
    out = bytearray()
    write_items((item,), out, 0)
    return bytes(out)


def write_items(items: Any, out: bytearray, depth: int = 0) -> None:
    """Append the TTLV of ``items`` to ``out``; ``depth`` is their nesting level."""
    for item in items:
        tag, typ, value = item
        if typ == _STRUCTURE:
            start = open_structure(out, tag, depth)
            write_items(value, out, depth + 1)
            close_structure(out, start)
        else:
            write_leaf(out, tag, typ, value)


def open_structure(out: bytearray, tag: int, depth: int) -> int:
    """Start a Structure at ``depth``; returns the offset :func:`close_structure` needs."""
    prefix = tag >> 16
    if prefix != 0x42 and prefix != 0x54:
        raise ProtocolError(f"cannot encode tag 0x{tag:06X}: not a KMIP tag")
    if depth >= DEFAULT_MAX_DEPTH:
        raise ProtocolError(f"structure nesting deeper than {DEFAULT_MAX_DEPTH}")
    start = len(out)
    out += _HEADER.pack((tag << 8) | 1, 0)
    return start


def close_structure(out: bytearray, start: int) -> None:
    """Fill in the length of the Structure opened at ``start`` now that its body is written."""
    _LENGTH.pack_into(out, start + 4, len(out) - start - 8)


def write_leaf(out: bytearray, tag: int, typ: int, value: Any) -> None:
    """Append one primitive item, validating that ``value`` suits ``typ``."""
    prefix = tag >> 16
    if prefix != 0x42 and prefix != 0x54:
        raise ProtocolError(f"cannot encode tag 0x{tag:06X}: not a KMIP tag")
    tt = (tag << 8) | typ
    try:
        if typ == _TEXT:
            if type(value) is not str:
                _bad_value(tag, typ, value)
            raw = value.encode("utf-8")
        elif typ == _BYTES:
            if not isinstance(value, (bytes, bytearray, memoryview)):
                _bad_value(tag, typ, value)
            raw = value
        elif typ == _BIG:
            if not isinstance(value, int) or isinstance(value, bool):
                _bad_value(tag, typ, value)
            # Two's complement needs the magnitude's bits plus a sign bit; ~value is the
            # magnitude of a negative number minus one (-2**63 fits in 64 bits).
            bits = (value if value >= 0 else ~value).bit_length() + 1
            raw = value.to_bytes(max(8, (bits + 63) // 64 * 8), "big", signed=True)
        else:
            layout = _FIXED_LAYOUTS.get(typ)
            if layout is None:
                raise ProtocolError(f"cannot encode tag 0x{tag:06X}: unknown item type {typ!r}")
            if typ == _BOOL:
                if value is not True and value is not False:
                    _bad_value(tag, typ, value)
            elif not isinstance(value, int):
                _bad_value(tag, typ, value)
            out += layout.pack(tt, _FIXED_LENGTHS[typ], value)
            return
    except (struct.error, UnicodeEncodeError, OverflowError) as exc:
        raise ProtocolError(f"cannot encode tag 0x{tag:06X} as {ItemType(typ).name}: {exc}") from None
    length = len(raw)
    out += _HEADER.pack(tt, length)
    out += raw
    if length & 7:
        out += _ZEROS[: 8 - (length & 7)]


def leaf_writer(tag: int, typ: int) -> Callable[[bytearray, Any], None]:
    """A specialised appender for items of one tag and type, for the typed model's encoder.

    It trusts its values: one of the wrong type raises TypeError, AttributeError, ValueError,
    OverflowError or struct.error instead of a ProtocolError, and the caller redoes the
    encoding through :func:`write_leaf` to report it properly. Values it would misencode
    (a non-bool Boolean, a Big Integer) are delegated to :func:`write_leaf` up front.
    """
    prefix = tag >> 16
    if prefix != 0x42 and prefix != 0x54:
        raise ProtocolError(f"cannot encode tag 0x{tag:06X}: not a KMIP tag")
    tt = (tag << 8) | typ
    layout = _FIXED_LAYOUTS.get(typ)
    if layout is not None and typ != _BOOL:
        pack = layout.pack
        size = _FIXED_LENGTHS[typ]

        def write_fixed(out: bytearray, value: Any) -> None:
            out += pack(tt, size, value)

        return write_fixed
    if typ == _TEXT or typ == _BYTES:
        header = _HEADER.pack
        text = typ == _TEXT

        def write_string(out: bytearray, value: Any) -> None:
            raw = value.encode("utf-8") if text else value
            length = len(raw)
            out += header(tt, length)
            out += raw
            if length & 7:
                out += _ZEROS[: 8 - (length & 7)]

        return write_string
    return lambda out, value: write_leaf(out, tag, typ, value)


def _bad_value(tag: int, typ: int, value: Any) -> Any:
    raise ProtocolError(
        f"cannot encode tag 0x{tag:06X} as {ItemType(typ).name}: "
        f"value {type(value).__name__} is not of that type"
    )


# --------------------------------------------------------------------------- decoding


def decode(data: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Item:
    """Decode exactly one item that fills ``data``; trailing bytes are an error."""
    item, end = decode_item(data, 0, max_depth=max_depth)
    if end != len(data):
        raise ProtocolError(f"{len(data) - end} unexpected bytes after the message", end)
    return item


def decode_item(
    data: bytes, offset: int = 0, end: int | None = None, *, max_depth: int = DEFAULT_MAX_DEPTH
) -> tuple[Item, int]:
    """Decode one item starting at ``offset``; return it and the offset just past it."""
    if not isinstance(data, bytes):
        data = bytes(data)
    if end is None:
        end = len(data)
    pos = offset
    unpack_header = _HEADER.unpack_from
    new_item = tuple.__new__  # Item(...) without the NamedTuple's Python-level __new__
    # Open structures: (tag, children so far, offset where the structure ends).
    stack: list[tuple[int, list[Item], int]] = []
    children: list[Item] | None = None
    limit = end
    while True:
        if pos == limit and stack:
            top_tag, top_children, _ = stack.pop()
            done = new_item(Item, (top_tag, _STRUCTURE, tuple(top_children)))
            if not stack:
                return done, pos
            children, limit = stack[-1][1], stack[-1][2]
            children.append(done)
            continue
        if pos + 8 > limit:
            raise ProtocolError("truncated item: an item header needs 8 bytes", pos)
        tt, length = unpack_header(data, pos)
        tag = tt >> 8
        prefix = tag >> 16
        if prefix != 0x42 and prefix != 0x54:
            raise ProtocolError(f"invalid tag 0x{tag:06X}", pos)
        typ = _TYPES.get(tt & 0xFF)
        if typ is None:
            raise ProtocolError(f"invalid item type 0x{tt & 0xFF:02X} for tag 0x{tag:06X}", pos + 3)
        vpos = pos + 8
        if typ is _STRUCTURE:
            struct_end = vpos + length
            if struct_end > limit:
                raise ProtocolError(
                    f"structure 0x{tag:06X} declares {length} bytes but only {limit - vpos} remain",
                    pos + 4,
                )
            if length & 7:
                raise ProtocolError(f"structure 0x{tag:06X} length {length} is not a multiple of 8", pos + 4)
            if len(stack) >= max_depth:
                raise ProtocolError(f"structures nested deeper than {max_depth}", pos)
            children = []
            stack.append((tag, children, struct_end))
            limit = struct_end
            pos = vpos
            continue
        padded = (length + 7) & ~7
        next_pos = vpos + padded
        if next_pos > limit:
            raise ProtocolError(
                f"item 0x{tag:06X} declares {length} bytes but only {max(limit - vpos, 0)} remain",
                pos + 4,
            )
        if typ is _TEXT:
            try:
                value: Any = data[vpos : vpos + length].decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ProtocolError(f"text string 0x{tag:06X} is not valid UTF-8", vpos + exc.start) from None
        elif typ is _ENUM or typ is _INTEGER or typ is _INTERVAL:
            # The commonest items: value and padding in one unpack, padding checked as a number,
            # and none of the string checks below.
            if length != 4:
                raise ProtocolError(f"{typ.name} item 0x{tag:06X} must be 4 bytes long, not {length}", pos + 4)
            value, pad = (_I32_PAD if typ is _INTEGER else _U32_PAD).unpack_from(data, vpos)
            if pad:
                raise ProtocolError(f"non-zero padding after item 0x{tag:06X}", vpos + 4)
            item = new_item(Item, (tag, typ, value))
            if children is None:
                return item, next_pos
            children.append(item)
            pos = next_pos
            continue
        elif typ is _BYTES:
            value = data[vpos : vpos + length]
        elif (typ is _DATETIME or typ is _LONG or typ is _DTE) and length == 8:
            value = _I64.unpack_from(data, vpos)[0]
        else:
            value = _decode_fixed(data, typ, tag, vpos, length, pos)
        if padded != length and typ is not _ENUM and typ is not _INTEGER and typ is not _INTERVAL:
            if data[vpos + length : next_pos] != _ZEROS[: padded - length]:
                raise ProtocolError(f"non-zero padding after item 0x{tag:06X}", vpos + length)
        elif (
            length & 7 == 0
            and (typ is _TEXT or typ is _BYTES)
            and next_pos + 8 <= limit
            and data[next_pos : next_pos + 8] == _ZEROS
        ):
            # PyKMIP (0.10, 0.11) pads a string whose length is a multiple of 8 with 8 zero
            # bytes it counts in the enclosing length. No item starts with a zero tag, so
            # skipping them is unambiguous, and refusing would break every such client.
            next_pos += 8
        item = new_item(Item, (tag, typ, value))
        if children is None:
            return item, next_pos
        children.append(item)
        pos = next_pos


def _decode_fixed(data: bytes, typ: ItemType, tag: int, vpos: int, length: int, pos: int) -> Any:
    """Values of the numeric types: their lengths are fixed (or multiples of 8 for Big Integer)."""
    fixed = _FIXED_LENGTHS.get(typ)
    if fixed is not None and length != fixed:
        raise ProtocolError(f"{typ.name} item 0x{tag:06X} must be {fixed} bytes long, not {length}", pos + 4)
    if typ is _ENUM or typ is _INTERVAL:
        return _U32.unpack_from(data, vpos)[0]
    if typ is _INTEGER:
        return _I32.unpack_from(data, vpos)[0]
    if typ is _DATETIME or typ is _LONG or typ is _DTE:
        return _I64.unpack_from(data, vpos)[0]
    if typ is _BOOL:
        raw = _U64.unpack_from(data, vpos)[0]
        if raw > 1:
            raise ProtocolError(f"boolean 0x{tag:06X} must be 0 or 1, not {raw}", vpos)
        return raw == 1
    # Big Integer: two's complement, big-endian, padded to a multiple of 8 bytes.
    if length == 0 or length & 7:
        raise ProtocolError(f"big integer 0x{tag:06X} length {length} is not a positive multiple of 8", pos + 4)
    return int.from_bytes(data[vpos : vpos + length], "big", signed=True)
