"""Decode TTLV bytes straight into the typed model, without the intermediate item tree.

:func:`~kmip_client.protocol.model.messages.decode_message` is on the hot path of both the
client and the server. Decoding in two steps (bytes → :class:`Item` tree → dataclasses) makes
and walks every item twice. Here each structure class gets a reader generated for it on first
use, as :mod:`dataclasses` generates ``__init__``: one function whose loop finds each child's
field from its tag-and-type word, reads the value in place into a local variable, and at the
end fills a new instance (through its assembly twin, :mod:`.assembly`).

A reader makes every check :func:`~kmip_client.protocol.ttlv.decode` makes (lengths against
the enclosing structure, fixed lengths, zero padding, UTF-8, nesting depth) but does not
describe what it finds: it only declines, by raising :class:`Decline`, and the caller decodes
the same bytes the two-step way, which reports the problem with its path and offset exactly
as before (and gives the answer, should it accept what a reader declined). Rare shapes
decline too: a batch item whose payload comes before its operation. Items of rarer types and
structures with a decoder of their own (attributes) are decoded the two-step way for that
item alone. A differential test holds both ways to the same results.

A structure class marked ``RECURRING`` (message headers, protocol versions: the same bytes
message after message) keeps the last instance read with its bytes, and hands it out again
for the same bytes: the instances are immutable, so sharing one is safe.
"""

from __future__ import annotations

import dataclasses
import struct
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from enum import IntFlag
from typing import Any

from ..spec import enum_for_tag
from ..ttlv import DEFAULT_MAX_DEPTH, Item, ItemType, decode_item
from .assembly import assembly_class
from .base import EnumValue, Struct, _plan

__all__ = ["Decline", "read_struct", "reader_for"]


class Decline(Exception):
    """The bytes are not something the reader decodes; decode them the two-step way."""


#: A generated reader: (data, offset of the first child, offset just past the last, how many
#: structures are open) → the instance.
Reader = Callable[[bytes, int, int, int], Any]
_READERS: dict[type, Reader] = {}
_PENDING: dict[type, Reader] = {}  # stand-ins for the readers being generated, seen by that thread only
# Held while generating (re-entered for the classes a class contains): a reader is published
# in _READERS only once whole, so that no other thread ever calls a stand-in for one.
_GENERATING = threading.RLock()

_HEADER = struct.Struct(">II").unpack_from
_UNSET = object()  # a field not met yet (None is a value a field may be given)


def read_struct(cls: type[Struct], data: bytes) -> Any:
    """``data`` (exactly one whole structure, e.g. a message) decoded as ``cls``.

    :raises Decline: the bytes are invalid, or of a shape left to the two-step decoder.
    """
    if len(data) < 8:
        raise Decline
    tt, length = _HEADER(data, 0)
    if tt != (cls.TAG << 8 | 1) or length + 8 != len(data) or length & 7:
        raise Decline
    try:
        return (_READERS.get(cls) or reader_for(cls))(data, 8, len(data), 1)
    except struct.error:
        raise Decline from None  # a header cut short by the end of the data


def reader_for(cls: type[Struct]) -> Reader:
    """The reader of ``cls``, generated on first use (by one thread; the others wait)."""
    reader = _READERS.get(cls)
    if reader is None:
        with _GENERATING:
            reader = _READERS.get(cls) or _PENDING.get(cls)
            if reader is None:
                # A stand-in while generating, for a structure that contains itself at any
                # depth; it finds the real reader when called, waiting if it is not there yet.
                _PENDING[cls] = lambda data, pos, end, depth: (_READERS.get(cls) or reader_for(cls))(
                    data, pos, end, depth
                )
                try:
                    reader = _READERS[cls] = _generate(cls) if _readable(cls) else _decline
                finally:
                    del _PENDING[cls]
    return reader


def _decline(data: bytes, pos: int, end: int, depth: int) -> Any:
    raise Decline


def _readable(cls: type[Struct]) -> bool:
    """Whether a reader is generated for ``cls``: its decoding is the generic one (or a batch
    item's, which only picks the payload's class, as the reader does too), and its instances
    can be filled slot by slot (no ``__post_init__``, a default for every field)."""
    if _plan(cls).custom_decode is not None and not hasattr(cls, "payload_class"):
        return False
    return not hasattr(cls, "__post_init__") and all(
        f.init and f.default is not dataclasses.MISSING for f in dataclasses.fields(cls)
    )


def _is_mask(tag: int) -> bool:
    enum = enum_for_tag(tag)
    return enum is not None and issubclass(enum, IntFlag)


def _keep(extras: list[tuple[int, Item]] | None, data: bytes, first: int, start: int, end: int, depth: int) -> Any:
    """Keep the item at ``start`` aside (an undeclared child, or a second instance of a single
    field): ``extras`` with it appended, and the offset just past it. ``first`` is where the
    structure's children begin: the item's position among them is counted only here, as
    this is rare."""
    max_depth = DEFAULT_MAX_DEPTH - depth
    index, pos = 0, first
    while pos < start:
        pos = decode_item(data, pos, end, max_depth=max_depth)[1]
        index += 1
    item, pos = decode_item(data, start, end, max_depth=max_depth)
    if extras is None:
        extras = []
    extras.append((index, item))
    return extras, pos


# The code read for each kind of child: it leaves the value in ``v`` and ``pos`` past the
# item. ``start`` is the item's offset, ``length`` its declared length. {n} numbers the
# field's own constants in the generated function's scope.
_FIXED_4 = """\
pos = start + 16
if length != 4 or pos > end:
    raise DECLINE
v, pad = {unpack}(data, start + 8)
if pad:
    raise DECLINE
"""
_ENUM = _FIXED_4.replace("{unpack}", "U32PAD") + "m = MEMBERS{n}.get(v)\nv = EnumValue(v) if m is None else m\n"
_INTEGER = _FIXED_4.replace("{unpack}", "I32PAD")
_STRING = """\
stop = start + 8 + length
pos = start + 8 + ((length + 7) & -8)
if pos > end:
    raise DECLINE
if pos != stop:
    if data[stop:pos] != ZEROS[: pos - stop]:
        raise DECLINE
elif pos + 8 <= end and data[pos : pos + 8] == ZEROS:
    pos += 8  # PyKMIP's eight extra zero bytes after such a string (see ttlv.decode)
"""
_BYTES = _STRING + "v = data[start + 8 : stop]\n"
_TEXT = (
    _STRING
    + """\
try:
    v = data[start + 8 : stop].decode("utf-8")
except UnicodeDecodeError:
    raise DECLINE from None
"""
)
_NESTED = """\
pos = start + 8 + length
if pos > end or length & 7 or depth >= MAX_DEPTH:
    raise DECLINE
"""
_STRUCT = _NESTED + "v = READER{n}(data, start + 8, pos, depth + 1)\n"
# A recurring structure: the last one read, kept as one (bytes, instance) tuple so that
# another thread never sees the bytes of one with the instance of another.
_RECURRING = (
    _NESTED
    + """\
raw = data[start:pos]
last = LAST{n}[0]
if raw == last[0]:
    v = last[1]
else:
    v = READER{n}(data, start + 8, pos, depth + 1)
    LAST{n}[0] = (raw, v)
"""
)
_PAYLOAD = (
    "if {operation} is {unset}:\n    raise DECLINE  # the payload's class follows from an Operation not seen yet\n"
    + _NESTED
    + "v = reader_for(payload_class({operation}))(data, start + 8, pos, depth + 1)\n"
)
_DATETIME = """\
pos = start + 16
if length != 8 or pos > end:
    raise DECLINE
try:
    v = fromtimestamp(I64(data, start + 8)[0], UTC)
except (OverflowError, OSError, ValueError):
    raise DECLINE from None
"""
_VIA_ITEM = "item, pos = decode_item(data, start, end, max_depth=MAX_DEPTH - depth)\nv = {decode}\n"
_SINGLE = "if {var} is {unset}:\n    {var} = v\nelse:\n    extras, pos = keep(extras, data, first, start, end, depth)\n"
_REPEATED = "if {var} is None:\n    {var} = [v]\nelse:\n    {var}.append(v)\n"


def _generate(cls: type[Struct]) -> Reader:
    plan = _plan(cls)
    fields = dataclasses.fields(cls)
    var_of = {f.name: f"v{number}" for number, f in enumerate(fields)}
    # What a single field's variable holds until the field is met: its default when that is
    # None (no value decodes to None), so that it is the field's value as it stands.
    unset_of = {f.name: "None" if f.default is None else "UNSET" for f in fields}
    scope: dict[str, Any] = {
        "cls": cls,
        "new": object.__new__,
        "HEADER": _HEADER,
        "U32PAD": struct.Struct(">II").unpack_from,
        "I32PAD": struct.Struct(">iI").unpack_from,
        "I64": struct.Struct(">q").unpack_from,
        "ZEROS": bytes(8),
        "DECLINE": Decline,  # the class: a new instance each time (a shared one would keep every traceback)
        "UNSET": _UNSET,
        "UTC": UTC,
        "fromtimestamp": datetime.fromtimestamp,
        "EnumValue": EnumValue,
        "decode_item": decode_item,
        "keep": _keep,
        "reader_for": reader_for,
        "payload_class": getattr(cls, "payload_class", None),
        "MAX_DEPTH": DEFAULT_MAX_DEPTH,
        "KNOWN": frozenset(plan.by_tag),
        "BRANCHES": {},
    }
    branches: list[str] = []
    for tag, (name, decoders, repeated, field) in plan.by_tag.items():
        for typ, kind in field.kinds.items():
            n = len(branches)
            code = _child_code(name, tag, typ, kind, decoders[typ], n, scope, var_of, unset_of)
            store = (_REPEATED if repeated else _SINGLE).format(var=var_of[name], unset=unset_of[name])
            scope["BRANCHES"][tag << 8 | typ] = n + 1
            branches.append(f"{'if' if not branches else 'elif'} branch == {n + 1}:\n" + _indent(code + store))
    unknown = "if tt >> 8 in KNOWN:\n    raise DECLINE  # a field's tag, in a type the field cannot have\n"
    unknown += "extras, pos = keep(extras, data, first, start, end, depth)\n"
    branches.append(("else:\n" if branches else "if True:\n") + _indent(unknown))
    fills = []
    scope["ASSEMBLY"] = assembly_class(cls)
    for number, f in enumerate(fields):
        scope[f"DEFAULT{number}"] = f.default
        var = var_of[f.name]
        if f.name == "extras":
            value = "() if extras is None else tuple(extras)"
        elif f.metadata.get("kmip") is None:
            value = f"DEFAULT{number}"
        elif f.metadata["kmip"][2]:  # repeated
            value = f"DEFAULT{number} if {var} is None else tuple({var})"
        elif f.default is None:
            value = var
        else:
            value = f"DEFAULT{number} if {var} is UNSET else {var}"
        fills.append(f"obj.{f.name} = {value}\n")
    singles = [f.name for f in fields if f.metadata.get("kmip") and not f.metadata["kmip"][2]]
    repeats = [var_of[f.name] for f in fields if f.metadata.get("kmip") and f.metadata["kmip"][2]]
    source = f"def read_{cls.__name__}(data, pos, end, depth):\n" + _indent(
        "".join(f"{var_of[name]} = {unset_of[name]}\n" for name in singles)
        + "".join(f"{var} = None\n" for var in repeats)
        + "extras = None\nfirst = pos\n"
        + "while pos < end:\n"
        + _indent(
            # No check that the header fits before ``end``: every branch below checks
            # that the whole item does (and reading past the data raises struct.error).
            "start = pos\n"
            + "tt, length = HEADER(data, pos)\n"
            # Small numbers: compared faster than the tag-and-type words, which need two digits.
            + "branch = BRANCHES.get(tt, 0)\n"
            + "".join(branches)
        )
        # Filled as the class's assembly twin, then made the frozen class (see .assembly).
        + "obj = new(ASSEMBLY)\n"
        + "".join(fills)
        + "obj.__class__ = cls\n"
        + "return obj\n"
    )
    exec(compile(source, f"<reader of {cls.__qualname__}>", "exec"), scope)  # noqa: S102 - built above
    return scope[f"read_{cls.__name__}"]  # type: ignore[no-any-return]


def _child_code(
    name: str,
    tag: int,
    typ: int,
    kind: Any,
    decoder: Callable[[Item], Any] | None,
    n: int,
    scope: dict[str, Any],
    var_of: dict[str, str],
    unset_of: dict[str, str],
) -> str:
    """The code that reads one (tag, type) child, of field ``name``, into ``v``; adds what it
    needs to ``scope`` under names numbered ``n``."""
    if typ == ItemType.STRUCTURE:
        if kind is Item and name == "payload" and scope["payload_class"] is not None:
            return _PAYLOAD.format(operation=var_of["operation"], unset=unset_of["operation"])
        if isinstance(kind, type) and issubclass(kind, Struct) and _readable(kind):
            scope[f"READER{n}"] = reader_for(kind)
            if getattr(kind, "RECURRING", False):
                scope[f"LAST{n}"] = [(None, None)]
                return _RECURRING.format(n=n)
            return _STRUCT.format(n=n)
    elif typ == ItemType.ENUMERATION:
        enum = enum_for_tag(tag)
        scope[f"MEMBERS{n}"] = dict(enum._value2member_map_) if enum is not None else {}  # type: ignore[attr-defined]
        return _ENUM.format(n=n)
    elif typ == ItemType.INTEGER and not _is_mask(tag):
        return _INTEGER
    elif typ == ItemType.TEXT_STRING:
        return _TEXT
    elif typ == ItemType.BYTE_STRING:
        return _BYTES
    elif typ == ItemType.DATE_TIME:
        return _DATETIME
    # A raw Item, a structure with its own decoder, a mask, or a rarer type: its item first.
    if decoder is None:
        return _VIA_ITEM.format(decode="item.value")
    scope[f"DECODE{n}"] = decoder
    return _VIA_ITEM.format(decode=f"DECODE{n}(item)")


def _indent(code: str) -> str:
    return "".join(f"    {line}\n" if line else "\n" for line in code.splitlines())
