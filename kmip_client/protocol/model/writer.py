"""Encode typed structures straight to TTLV bytes with a writer generated per class.

:func:`~kmip_client.protocol.model.base.to_bytes` is on the hot path of both the client
(every request) and the server (every response). The generic walker visits every declared
field of a class through tuples of plans and a writer call per value; here each class gets,
on first use, one function (generated, as :mod:`dataclasses` generates ``__init__``) that
reads each field from its slot, skips it when absent, and appends the commonest kinds
(enumerations, integers, strings, nested structures) in place.

Like the generic writers, a generated writer trusts value types: a value of the wrong type
raises TypeError, AttributeError, ValueError, OverflowError or struct.error, and
:func:`~kmip_client.protocol.model.base.to_bytes` then encodes the object the checked way,
which reports the problem as a ProtocolError. Everything else (Booleans, Big Integers,
Date-Times, fields of several kinds, choices, kept-aside children, classes that encode
themselves) goes through :func:`~kmip_client.protocol.model.base.write_value` or
:func:`~kmip_client.protocol.model.base.write_generic`, so the two ways cannot disagree on it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from ..ttlv import DEFAULT_MAX_DEPTH, Item, ItemType
from .base import WRITERS, EncodedItem, Struct, _Field, _plan, write_generic, write_value

__all__ = ["writer_for"]

Writer = Callable[[Any, int, bytearray, int], None]

# The code that appends one value ``x`` of a field; ``depth`` is already the children's.
_FIXED = "out += {pack}({tt:#x}, {size}, x)\n"
_STRING = """\
n = len(raw)
out += HEADER({tt:#x}, n)
out += raw
if n & 7:
    out += ZEROS[: 8 - (n & 7)]
"""
_TEXT = 'raw = x.encode("utf-8")\n' + _STRING
_BYTES = "raw = x\n" + _STRING
_STRUCT = """\
if type(x) is EncodedItem:
    out += x
else:
    (WRITERS.get(type(x)) or writer_for(type(x)))(x, {tag:#x}, out, depth)
"""
_OTHER = "write_value(FIELD{n}, {child_tag}, x, out, depth)\n"


def writer_for(cls: type[Struct]) -> Writer:
    """The writer of ``cls``, generated on first use."""
    writer = WRITERS.get(cls)
    if writer is None:
        if not (isinstance(cls, type) and issubclass(cls, Struct)):
            raise TypeError(f"cannot encode a {cls.__name__} as a structure")
        plan = _plan(cls)
        plain = plan.custom_write is None and not plan.custom_encode
        writer = WRITERS[cls] = _generate(cls) if plain else write_generic
    return writer


def _generate(cls: type[Struct]) -> Writer:
    plan = _plan(cls)
    scope: dict[str, Any] = {
        "HEADER": struct.Struct(">II").pack,
        "LENGTH_INTO": struct.Struct(">I").pack_into,
        "PACK_U32": struct.Struct(">III4x").pack,
        "PACK_I32": struct.Struct(">IIi4x").pack,
        "PACK_I64": struct.Struct(">IIq").pack,
        "ZEROS": bytes(8),
        "MAX_DEPTH": DEFAULT_MAX_DEPTH,
        "EncodedItem": EncodedItem,
        "WRITERS": WRITERS,
        "writer_for": writer_for,
        "write_value": write_value,
        "write_generic": write_generic,
    }
    body = []
    for n, field in enumerate(plan.fields):
        code = _value_code(field, n, scope)
        if field.repeated:
            body.append(f"v = obj.{field.name}\nif v:\n    for x in v:\n" + _indent(_indent(code)))
        else:
            body.append(f"x = obj.{field.name}\nif x is not None:\n" + _indent(code))
    source = f"def write_{cls.__name__}(obj, tag, out, depth):\n" + _indent(
        # Kept-aside children need the item form; a bad tag or depth, the generic error.
        "if obj.extras or depth >= MAX_DEPTH or (tag >> 16 != 0x42 and tag >> 16 != 0x54):\n"
        "    return write_generic(obj, tag, out, depth)\n"
        "start = len(out)\n"
        "out += HEADER(tag << 8 | 1, 0)\n"
        "depth += 1\n" + "".join(body) + "LENGTH_INTO(out, start + 4, len(out) - start - 8)\n"
    )
    exec(compile(source, f"<writer of {cls.__qualname__}>", "exec"), scope)  # noqa: S102 - built above
    return scope[f"write_{cls.__name__}"]  # type: ignore[no-any-return]


def _value_code(field: Any, n: int, scope: dict[str, Any]) -> str:
    """The code appending one value ``x`` of ``field`` (number ``n`` among the class's fields)."""
    only = next(iter(field.kinds.values())) if isinstance(field, _Field) and len(field.kinds) == 1 else None
    if only is not None:
        tt = field.tag << 8 | (ItemType.STRUCTURE if isinstance(only, type) else only)
        if only in (ItemType.ENUMERATION, ItemType.INTERVAL):
            return _FIXED.format(pack="PACK_U32", tt=tt, size=4)
        if only == ItemType.INTEGER:
            return _FIXED.format(pack="PACK_I32", tt=tt, size=4)
        if only in (ItemType.LONG_INTEGER, ItemType.DATE_TIME_EXTENDED):
            return _FIXED.format(pack="PACK_I64", tt=tt, size=8)
        if only == ItemType.TEXT_STRING:
            return _TEXT.format(tt=tt)
        if only == ItemType.BYTE_STRING:
            return _BYTES.format(tt=tt)
        if isinstance(only, type) and issubclass(only, Struct):
            return _STRUCT.format(tag=field.tag)
    # Booleans (checked to be bools), Big Integers, Date-Times (datetime or seconds), fields of
    # several kinds, choices and raw items: the generic code for one value.
    scope[f"FIELD{n}"] = field
    other = _OTHER.format(n=n, child_tag=field.tag if isinstance(field, _Field) else None)
    if only is Item:
        # A raw-item field (a batch item's payload, whose class depends on the operation):
        # nearly always given a structure instance.
        fast = f"writer(x, {field.tag:#x}, out, depth)\n"
        return "writer = WRITERS.get(type(x))\nif writer is not None:\n" + _indent(fast) + "else:\n" + _indent(other)
    if isinstance(field, _Field) and ItemType.TEXT_STRING in field.kinds:
        # A 2.x Unique Identifier (Text String, Enumeration or Integer) is nearly always text.
        text = _TEXT.format(tt=field.tag << 8 | ItemType.TEXT_STRING)
        return "if type(x) is str:\n" + _indent(text) + "else:\n" + _indent(other)
    return other


def _indent(code: str) -> str:
    return "".join(f"    {line}\n" if line else "\n" for line in code.splitlines())
