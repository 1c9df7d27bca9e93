"""Decode TTLV bytes straight into the typed model, without the intermediate item tree.

:func:`~kmip_client.protocol.model.messages.decode_message` is on the hot path of both the
client and the server. Decoding in two steps (bytes → :class:`Item` tree → dataclasses) makes
and walks every item twice; this reader makes one pass, each class compiled once into a table
keyed by the item's tag and type together (so a type check is a dictionary hit).

It makes every check :func:`~kmip_client.protocol.ttlv.decode` makes (lengths against the
enclosing structure, fixed lengths, zero padding, UTF-8, nesting depth, trailing bytes) but
does not describe what it finds: it only declines, by raising :class:`Decline`, and the caller
decodes the same bytes the two-step way, which reports the problem with its path and offset
exactly as before (and gives the answer, should it accept what this reader declined). Rare
shapes decline too: a batch item whose payload comes before its operation. Items of rarer
types, and structures with their own decoder (attributes, key values), are decoded by the
two-step code for that item alone. A differential test holds both ways to the same results.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from datetime import UTC, datetime
from enum import IntFlag
from typing import Any

from ..spec import enum_for_tag
from ..ttlv import DEFAULT_MAX_DEPTH, Item, ItemType, decode_item
from .base import EnumValue, Struct, _plan

__all__ = ["Decline", "read_struct"]


class Decline(Exception):
    """The bytes are not something this reader decodes; decode them the two-step way."""


_DECLINE = Decline()  # raised often on bad input; one instance spares building a traceback chain

# How a (tag, type) child is read. Plain ints compared with ``is``-free ``==`` in one chain,
# commonest first.
_ENUM, _INTEGER, _TEXT, _BYTES, _STRUCT, _DATETIME, _PAYLOAD, _VIA_ITEM = range(8)

_HEADER = struct.Struct(">II").unpack_from
_I32_PAD = struct.Struct(">iI").unpack_from
_U32_PAD = struct.Struct(">II").unpack_from
_I64 = struct.Struct(">q").unpack_from
_ZEROS = bytes(8)
_UTC = UTC

#: (tag << 8 | type) → (field name, how to read it, repeated, what the reader needs)
_Table = dict[int, tuple[str, int, bool, Any]]
#: Per class: its table, the tags of its fields, its repeated fields, how to build an instance.
_Compiled = tuple[_Table, frozenset[int], tuple[str, ...], Callable[[dict[str, Any]], Any]]
_TABLES: dict[type, _Compiled] = {}


def read_struct(cls: type[Struct], data: bytes) -> Any:
    """``data`` (exactly one whole structure, e.g. a message) decoded as ``cls``.

    :raises Decline: the bytes are invalid, or of a shape left to the two-step decoder.
    """
    if len(data) < 8:
        raise _DECLINE
    tt, length = _HEADER(data, 0)
    if tt != (cls.TAG << 8 | 1) or length + 8 != len(data) or length & 7:
        raise _DECLINE
    return _read(cls, data, 8, len(data), 1)


def _table(cls: type[Struct]) -> _Compiled:
    compiled = _TABLES.get(cls)
    if compiled is None:
        compiled = _TABLES[cls] = _compile(cls)
    return compiled


def _compile(cls: type[Struct]) -> _Compiled:
    plan = _plan(cls)
    table: _Table = {}
    payload_class = getattr(cls, "payload_class", None)
    for tag, (name, decoders, repeated, field) in plan.by_tag.items():
        for typ, kind in field.kinds.items():
            how: int
            need: Any = None
            if typ == ItemType.STRUCTURE:
                if kind is Item and payload_class is not None and name == "payload":
                    how, need = _PAYLOAD, payload_class
                elif isinstance(kind, type) and issubclass(kind, Struct) and _plain(kind):
                    how, need = _STRUCT, kind
                else:  # a raw Item, or a structure with its own decoder
                    how, need = _VIA_ITEM, decoders[typ]
            elif typ == ItemType.ENUMERATION:
                enum = enum_for_tag(tag)
                how, need = _ENUM, (dict(enum._value2member_map_) if enum is not None else {})  # type: ignore[attr-defined]
            elif typ == ItemType.INTEGER and not _is_mask(tag):
                how = _INTEGER
            elif typ == ItemType.TEXT_STRING:
                how = _TEXT
            elif typ == ItemType.BYTE_STRING:
                how = _BYTES
            elif typ == ItemType.DATE_TIME:
                how = _DATETIME
            else:  # masks, Boolean, Long and Big Integer, Interval, Date-Time Extended: rare
                how, need = _VIA_ITEM, decoders[typ]
            table[tag << 8 | typ] = (name, how, repeated, need)
    return table, frozenset(plan.by_tag), tuple(plan.repeated_names), _builder(cls)


def _builder(cls: type[Struct]) -> Callable[[dict[str, Any]], Any]:
    """A function that makes an instance of ``cls`` from its field values (the others take
    their defaults), as ``cls(**values)`` does but in about half the time: it sets the slots
    through their descriptors, without the frozen class's ``object.__setattr__`` per field
    and without the keyword-argument parsing. Generated, as dataclasses generate ``__init__``."""
    fields = dataclasses.fields(cls)
    if hasattr(cls, "__post_init__") or any(f.default is dataclasses.MISSING or not f.init for f in fields):
        return lambda values: cls(**values)
    scope: dict[str, Any] = {"new": object.__new__, "cls": cls}
    lines = ["def build(values):", "    obj = new(cls)"]
    for number, field in enumerate(fields):
        scope[f"set{number}"] = getattr(cls, field.name).__set__  # the slot's member descriptor
        scope[f"default{number}"] = field.default
        lines.append(f"    set{number}(obj, values.get({field.name!r}, default{number}))")
    lines.append("    return obj")
    exec("\n".join(lines), scope)  # noqa: S102 - source built above from field names only
    return scope["build"]  # type: ignore[no-any-return]


def _plain(cls: type[Struct]) -> bool:
    """Whether this reader reads ``cls`` itself: it has no decoder of its own, or is a batch
    item (whose decoder only picks the payload's class, which the reader does too)."""
    return _plan(cls).custom_decode is None or hasattr(cls, "payload_class")


def _is_mask(tag: int) -> bool:
    enum = enum_for_tag(tag)
    return enum is not None and issubclass(enum, IntFlag)


def _read(cls: type[Struct], data: bytes, pos: int, end: int, depth: int) -> Any:
    """The instance of ``cls`` whose children are ``data[pos:end]``; ``depth`` structures are open."""
    table, known_tags, repeated_names, build = _TABLES.get(cls) or _table(cls)
    values: dict[str, Any] = {}
    extras: list[tuple[int, Item]] | None = None
    index = -1
    while pos < end:
        index += 1
        if pos + 8 > end:
            raise _DECLINE
        tt, length = _HEADER(data, pos)
        entry = table.get(tt)
        if entry is None:
            if tt >> 8 in known_tags:
                raise _DECLINE  # a field's tag with a type the field cannot have
            # A child the class does not model: kept aside as an item, checked by decode_item.
            item, pos = decode_item(data, pos, end, max_depth=DEFAULT_MAX_DEPTH - depth)
            if extras is None:
                extras = []
            extras.append((index, item))
            continue
        name, how, repeated, need = entry
        start = pos
        vpos = pos + 8
        if how == _ENUM or how == _INTEGER:
            pos = vpos + 8
            if length != 4 or pos > end:
                raise _DECLINE
            value, pad = (_U32_PAD if how == _ENUM else _I32_PAD)(data, vpos)
            if pad:
                raise _DECLINE
            if how == _ENUM:
                member = need.get(value)
                value = EnumValue(value) if member is None else member
        elif how == _TEXT or how == _BYTES:
            pos = vpos + ((length + 7) & ~7)
            if pos > end:
                raise _DECLINE
            stop = vpos + length
            if pos != stop:
                if data[stop:pos] != _ZEROS[: pos - stop]:
                    raise _DECLINE
            elif pos + 8 <= end and data[pos : pos + 8] == _ZEROS:
                pos += 8  # PyKMIP's eight extra zero bytes after such a string (see ttlv.decode)
            if how == _TEXT:
                try:
                    value = data[vpos:stop].decode("utf-8")
                except UnicodeDecodeError:
                    raise _DECLINE from None
            else:
                value = data[vpos:stop]
        elif how == _STRUCT:
            pos = vpos + length
            if pos > end or length & 7 or depth >= DEFAULT_MAX_DEPTH:
                raise _DECLINE
            value = _read(need, data, vpos, pos, depth + 1)
        elif how == _DATETIME:
            pos = vpos + 8
            if length != 8 or pos > end:
                raise _DECLINE
            try:
                value = datetime.fromtimestamp(_I64(data, vpos)[0], _UTC)
            except (OverflowError, OSError, ValueError):
                raise _DECLINE from None
        elif how == _PAYLOAD:
            operation = values.get("operation")
            if operation is None:
                raise _DECLINE  # the payload's class follows from an Operation not seen yet
            pos = vpos + length
            if pos > end or length & 7 or depth >= DEFAULT_MAX_DEPTH:
                raise _DECLINE
            value = _read(need(operation), data, vpos, pos, depth + 1)
        else:  # _VIA_ITEM
            item, pos = decode_item(data, start, end, max_depth=DEFAULT_MAX_DEPTH - depth)
            decoder: Callable[[Item], Any] | None = need
            value = item.value if decoder is None else decoder(item)
        if repeated:
            found = values.get(name)
            if found is None:
                values[name] = [value]
            else:
                found.append(value)
        elif name in values:
            # A second instance of a single field is kept aside as it came, not guessed at.
            item, _ = decode_item(data, start, end, max_depth=DEFAULT_MAX_DEPTH - depth)
            if extras is None:
                extras = []
            extras.append((index, item))
        else:
            values[name] = value
    for name in repeated_names:
        if name in values:
            values[name] = tuple(values[name])
    if extras:
        values["extras"] = tuple(extras)
    return build(values)
