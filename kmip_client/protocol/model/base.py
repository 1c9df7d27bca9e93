"""Typed KMIP structures and the one walker that maps them to and from TTLV item trees.

A KMIP structure is declared once, as a frozen dataclass whose fields carry metadata
(``kfield``): the tag, the item type or nested structure class, whether it repeats and the
protocol versions it exists in. ``from_item``/``to_item`` walk any such class generically,
with the per-class plan compiled once. Children the class does not declare (vendor
extensions, tags from a newer version, a duplicated field) are kept in ``extras`` with their
position, so decode then encode gives back the same items. The hot paths, bytes to instances
and back, use readers and writers generated from the same plans (:mod:`.reader`,
:mod:`.writer`); this walker is their reference and their fallback.

Value conventions: enumerations decode to the spec's IntEnum members (unknown values, such
as vendor extensions 0x8xxxxxxx, stay plain ints), masks to IntFlag, Date-Time to aware UTC
``datetime``; everything else keeps its TTLV Python value. Placeholders pass through untouched.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
import struct
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import IntEnum, IntFlag
from typing import Any, ClassVar, TypeVar, dataclass_transform

from ..errors import ProtocolError
from ..placeholders import Placeholder
from ..spec import enum_for_tag, tag_name
from ..ttlv import (
    DEFAULT_MAX_DEPTH,
    Item,
    ItemType,
    decode,
    encode,
    leaf_writer,
    open_structure,
    write_items,
)
from .assembly import assembling_init

__all__ = [
    "Struct",
    "kfield",
    "kchoice",
    "decode_struct",
    "decode_fields",
    "structure",
    "from_item",
    "to_item",
    "Version",
    "Kind",
    "decode_primitive",
    "encode_primitive",
    "version_conflicts",
    "to_bytes",
    "EnumValue",
    "write_struct",
    "write_generic",
    "write_value",
    "WRITERS",
]

Version = tuple[int, int]
#: What a field holds: a primitive item type, a structure class, or a tuple of those when
#: the spec allows several encodings (a Key Value is a Structure, or a Byte String when
#: wrapped; a 2.x Unique Identifier is a Text String, an Enumeration or an Integer).
Kind = Any

S = TypeVar("S", bound="Struct")
_UTC = UTC
_STRUCT_HEADER = struct.Struct(">II").pack  # a Structure's tag and type, its length filled in last
_STRUCT_LENGTH_INTO = struct.Struct(">I").pack_into
_STRUCTURE = ItemType.STRUCTURE


@dataclasses.dataclass(frozen=True, slots=True)
class Struct:
    """Base of every typed KMIP structure."""

    #: Children this class does not model, as (position, item) so that encoding puts them back.
    extras: tuple[tuple[int, Item], ...] = dataclasses.field(default=(), kw_only=True, repr=False)

    TAG: ClassVar[int] = 0

    @classmethod
    def from_item(cls: type[S], item: Item) -> S:
        return from_item(cls, item)

    def to_item(self, tag: int | None = None) -> Item:
        return to_item(self, tag)


def kfield(
    tag: int,
    kind: Kind,
    *,
    repeated: bool = False,
    min_version: Version | None = None,
    max_version: Version | None = None,
    default: Any = None,
    secret: bool = False,
) -> Any:
    """Declare a dataclass field mapped to the child item ``tag``.

    Repeated fields default to an empty tuple, others to None (absent). Versions say in which
    KMIP versions the field exists (checked by :func:`version_conflicts`). ``secret`` marks
    key material, passwords and plaintext: kept out of ``repr``.
    """
    meta = {"kmip": (tag, kind, repeated, min_version, max_version), "secret": secret}
    return dataclasses.field(default=() if repeated else default, metadata=meta, repr=not secret)


def kchoice(
    choices: Mapping[int, Kind],
    *,
    repeated: bool = False,
    min_version: Version | None = None,
    max_version: Version | None = None,
    secret: bool = False,
) -> Any:
    """Declare a field holding one of several tags (``{tag: kind}``), e.g. "the managed object".

    Decoding picks the kind by the child's tag; encoding a structure uses the tag its class is
    listed under (or its own ``TAG``), an :class:`Item` is emitted as it is.
    """
    meta = {"kmip": (None, dict(choices), repeated, min_version, max_version), "secret": secret}
    return dataclasses.field(default=() if repeated else None, metadata=meta, repr=not secret)


# Tells type checkers that @structure makes dataclasses (frozen, fields positional or by
# keyword). kfield/kchoice are deliberately not field specifiers: a checker takes a field
# made by a specifier to be required unless the call passes ``default=``, yet both always
# give one (None, or () when repeated). Unlisted, ``x: T = kfield(...)`` reads as a plain
# default, which is what it is; they take none of init/kw_only/alias a specifier could declare.
@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def structure(tag: int) -> Callable[[type[S]], type[S]]:
    """Class decorator: make a frozen, slotted dataclass for the structure ``tag``."""

    def wrap(cls: type[S]) -> type[S]:
        cls.TAG = tag
        cls = dataclasses.dataclass(frozen=True, slots=True)(cls)
        cls.__init__ = assembling_init(cls)  # type: ignore[method-assign]  # the same, faster (see .assembly)
        return cls

    return wrap


# --------------------------------------------------------------------------- primitives

_new_item = tuple.__new__  # Item(...) without the NamedTuple's Python-level __new__


class EncodedItem(bytes):
    """The TTLV bytes of one whole item, already encoded (its tag included).

    A structure field (including a choice field, such as a Get response's managed object)
    may be given one; :func:`to_bytes` copies it verbatim. A server that keeps objects in
    their TTLV form saves decoding and re-encoding them on every read.
    """

    __slots__ = ()


class EnumValue(int):
    """An Enumeration value without a name here (vendor extensions, newer versions).

    Still an ``int``, but it remembers that it came as an Enumeration, so a field that also
    accepts Integers (a 2.x Unique Identifier, say) encodes it back as what it was.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"EnumValue(0x{int(self):08X})"


def _decode_enum_value(value: Any) -> Any:
    return EnumValue(value) if type(value) is int else value


@functools.lru_cache(maxsize=4096)
def _primitive_decoder(tag: int, typ: ItemType) -> Callable[[Item], Any] | None:
    """How a field turns a primitive item into its Python value; None means "as it is"."""
    enum = enum_for_tag(tag)
    if typ == ItemType.ENUMERATION:
        known = enum._value2member_map_ if enum is not None else {}  # type: ignore[attr-defined]

        def decode_enum(item: Item) -> Any:
            member = known.get(item.value, _MISSING)
            return _decode_enum_value(item.value) if member is _MISSING else member

        return decode_enum
    if typ == ItemType.INTEGER and enum is not None and issubclass(enum, IntFlag):
        # A negative mask (top bit set) stays a plain int: as a flag it would change value.
        return lambda item: enum(item.value) if isinstance(item.value, int) and item.value >= 0 else item.value
    if typ == ItemType.DATE_TIME:
        return _decode_datetime
    return None


def _decode_datetime(item: Item) -> Any:
    value = item.value
    if isinstance(value, Placeholder):
        return value
    try:
        return datetime.fromtimestamp(value, _UTC)
    except (OverflowError, OSError, ValueError):
        raise ProtocolError(f"date-time {value} is outside the years 1 to 9999") from None


def decode_primitive(tag: int, item: Item) -> Any:
    """The Python value of a primitive item (enumerations and masks made typed)."""
    decoder = _primitive_decoder(tag, item.type)
    return item.value if decoder is None else decoder(item)


def encode_primitive(tag: int, typ: ItemType, value: Any) -> Item:
    """The item for a Python value of a primitive field."""
    if typ == ItemType.DATE_TIME and isinstance(value, datetime):
        return Item(tag, typ, int(value.timestamp()))
    return Item(tag, typ, value)


# --------------------------------------------------------------------------- the walker

_MISSING: Any = object()

#: Decoder marker: keep the child as the raw Item.
_KEEP_ITEM: Callable[[Item], Any] = lambda item: item  # noqa: E731


def _struct_decoder(cls: type[Struct]) -> Callable[[Item], Any]:
    return lambda item: _from_item(cls, item)


class _Field:
    """One compiled field: how to turn its items into values and back."""

    __slots__ = (
        "name",
        "tag",
        "kinds",
        "decoders",
        "repeated",
        "min_version",
        "max_version",
        "encode",
        "secret",
        "_leaf_writers",
    )

    def __init__(self, name: str, meta: tuple[Any, ...], secret: bool = False) -> None:
        tag, kind, repeated, min_version, max_version = meta
        self.name = name
        self.secret = secret
        # Python type of a value → the leaf writer of its kind (None: the general path).
        self._leaf_writers: dict[type, Callable[[bytearray, Any], None] | None] = {}
        self.tag = tag
        self.repeated = repeated
        self.min_version = min_version
        self.max_version = max_version
        kinds = kind if isinstance(kind, tuple) else (kind,)
        self.kinds: dict[ItemType, Any] = {}
        # Item type → decoder (None: the item's value as it is).
        self.decoders: dict[int, Callable[[Item], Any] | None] = {}
        for k in kinds:
            if k is Item:
                self.kinds[_STRUCTURE] = k
                self.decoders[_STRUCTURE] = _KEEP_ITEM
            elif isinstance(k, ItemType):
                self.kinds[k] = k
                self.decoders[k] = _primitive_decoder(tag, k)
            else:  # a Struct class
                self.kinds[_STRUCTURE] = k
                self.decoders[_STRUCTURE] = _struct_decoder(k)
        self.encode = self._compile_encoder(kinds)

    def _compile_encoder(self, kinds: tuple[Any, ...]) -> Callable[[Any], Item]:
        tag = self.tag
        if len(kinds) == 1:
            kind = kinds[0]
            if isinstance(kind, ItemType):
                if kind == ItemType.DATE_TIME:
                    return lambda value: encode_primitive(tag, kind, value)
                return lambda value: _new_item(Item, (tag, kind, value))
            if kind is not Item:
                return lambda value: to_item(value, tag)
        return self._encode_any

    def _encode_any(self, value: Any) -> Item:
        if isinstance(value, Struct):
            return to_item(value, self.tag)
        if isinstance(value, Item):
            return value
        return encode_primitive(self.tag, _kind_for_value(self, value), value)

    def tag_for(self, value: Struct) -> int:
        return self.tag  # type: ignore[no-any-return]

    def leaf_writer_for(self, value: Any) -> Callable[[bytearray, Any], None] | None:
        """The leaf writer for ``value`` of a field with several primitive kinds (a 2.x Unique
        Identifier: Text String, Enumeration or Integer), by the value's type: the kind follows
        from the type alone, so it is picked once per type instead of per value."""
        cls = type(value)
        try:
            return self._leaf_writers[cls]
        except KeyError:
            pass
        try:
            kind = _kind_for_value(self, value)
        except TypeError:
            return None  # the general path reports it
        writer = None if kind in (ItemType.DATE_TIME, _STRUCTURE) else leaf_writer(self.tag, kind)
        self._leaf_writers[cls] = writer
        return writer

    def wrong_type(self, item: Item) -> ProtocolError:
        expected = " or ".join(t.name for t in self.kinds)
        return ProtocolError(f"expected {expected}, got {ItemType(item.type).name}")


def _kind_for_value(field: _Field, value: Any) -> ItemType:
    """Pick the item type of a field from the Python value (for multi-kind fields)."""
    kinds = field.kinds
    if len(kinds) == 1:
        return next(iter(kinds))
    if isinstance(value, (IntEnum, EnumValue)) and ItemType.ENUMERATION in kinds:
        return ItemType.ENUMERATION
    if isinstance(value, datetime) and ItemType.DATE_TIME in kinds:
        return ItemType.DATE_TIME
    if isinstance(value, bool) and ItemType.BOOLEAN in kinds:
        return ItemType.BOOLEAN
    if isinstance(value, str) and ItemType.TEXT_STRING in kinds:
        return ItemType.TEXT_STRING
    if isinstance(value, (bytes, bytearray)) and ItemType.BYTE_STRING in kinds:
        return ItemType.BYTE_STRING
    if isinstance(value, int) and ItemType.INTEGER in kinds:
        return ItemType.INTEGER
    for kind in kinds:
        if kind != _STRUCTURE:
            return kind
    raise TypeError(f"field {field.name}: cannot encode {type(value).__name__}")


class _ChoiceField:
    """A field whose child may carry any of several tags, each with its own kind."""

    __slots__ = ("name", "tag", "choices", "tag_of", "repeated", "min_version", "max_version", "secret")

    def __init__(self, name: str, meta: tuple[Any, ...], secret: bool = False) -> None:
        _, choices, repeated, min_version, max_version = meta
        self.name = name
        self.tag = None
        self.secret = secret
        self.choices = {tag: _Field(name, (tag, kind, repeated, None, None)) for tag, kind in choices.items()}
        self.tag_of = {kind: tag for tag, kind in choices.items() if isinstance(kind, type)}
        self.repeated = repeated
        self.min_version = min_version
        self.max_version = max_version

    def tag_for(self, value: Struct) -> int:
        tag: int = self.tag_of.get(type(value), value.TAG)
        return tag

    def encode(self, value: Any) -> Item:
        if isinstance(value, Item):
            return value
        if isinstance(value, Struct):
            return to_item(value, self.tag_for(value))
        if isinstance(value, EncodedItem):
            return decode(value)
        raise TypeError(f"field {self.name}: cannot encode {type(value).__name__} without its tag")


def _simple_kind(field: Any) -> tuple[int, ItemType] | None:
    if isinstance(field, _Field) and len(field.kinds) == 1:
        kind = next(iter(field.kinds.values()))
        if isinstance(kind, ItemType) and kind != ItemType.DATE_TIME:
            return (field.tag, kind)
    return None


class _Plan:
    __slots__ = (
        "fields",
        "by_tag",
        "custom_decode",
        "custom_encode",
        "custom_write",
        "repeated_names",
        "encoders",
        "getter",
        "writers",
    )

    def __init__(self, cls: type[Struct]) -> None:
        self.fields: list[Any] = []
        # Child tag → (field name, item type → decoder, repeated, the field).
        self.by_tag: dict[int, tuple[str, dict[int, Any], bool, _Field]] = {}
        for f in dataclasses.fields(cls):
            meta = f.metadata.get("kmip")
            if meta is None:
                continue
            secret = bool(f.metadata.get("secret"))
            if meta[0] is None:
                choice = _ChoiceField(f.name, meta, secret)
                self.fields.append(choice)
                for tag, sub in choice.choices.items():
                    self.by_tag.setdefault(tag, (f.name, sub.decoders, sub.repeated, sub))
            else:
                field = _Field(f.name, meta, secret)
                self.fields.append(field)
                self.by_tag.setdefault(field.tag, (f.name, field.decoders, field.repeated, field))
        self.repeated_names = [f.name for f in self.fields if f.repeated]
        # ((tag, item type) when the field is one primitive kind other than Date-Time, field)
        self.encoders = [(_simple_kind(f), f) for f in self.fields]
        # (leaf writer or None, repeated, the child tag when it does not depend on the value, field)
        self.writers = [
            (leaf_writer(*simple) if simple else None, f.repeated, f.tag if isinstance(f, _Field) else None, f)
            for simple, f in self.encoders
        ]
        # One C call fetches every field value (a tuple, even for a single field).
        names = [f.name for f in self.fields]
        self.getter = (
            operator.attrgetter(*names)
            if len(names) > 1
            else ((lambda obj, n=names[0]: (getattr(obj, n),)) if names else (lambda obj: ()))
        )
        self.custom_decode = getattr(cls, "decode_item", None)
        self.custom_encode = getattr(cls, "encode_item", None) is not None
        self.custom_write = getattr(cls, "write_into", None)


_PLANS: dict[type, _Plan] = {}


def _plan(cls: type[Struct]) -> _Plan:
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = _Plan(cls)
    return plan


def from_item(cls: type[S], item: Item) -> S:
    """Decode ``item`` (a Structure) into an instance of ``cls``.

    A :class:`ProtocolError` names the path of the offending element from ``item`` down.
    """
    try:
        return _from_item(cls, item)
    except ProtocolError as exc:
        raise exc.within(tag_name(item.tag)) from None


def _from_item(cls: type[S], item: Item) -> S:
    plan = _PLANS.get(cls) or _plan(cls)
    if plan.custom_decode is not None:
        return plan.custom_decode(item)  # type: ignore[no-any-return]
    return cls(**_decode_fields(plan, item))


def decode_struct(cls: type[S], item: Item, path: str = "") -> S:
    """Decode a child structure from inside a custom decoder (errors gain their path)."""
    return _from_item(cls, item)


def decode_fields(cls: type[Struct], item: Item, path: str = "") -> dict[str, Any]:
    """The constructor arguments of ``cls`` for ``item``; custom decoders build on this."""
    return _decode_fields(_PLANS.get(cls) or _plan(cls), item)


def _decode_fields(plan: _Plan, item: Item) -> dict[str, Any]:
    if item.type != _STRUCTURE:
        raise ProtocolError(f"expected a Structure, got {ItemType(item.type).name}")
    by_tag = plan.by_tag
    values: dict[str, Any] = {}
    extras: list[tuple[int, Item]] | None = None
    for index, child in enumerate(item.value):
        tag, typ, raw = child
        entry = by_tag.get(tag)
        if entry is None:
            if extras is None:
                extras = []
            extras.append((index, child))
            continue
        name, decoders, repeated, field = entry
        decoder = decoders.get(typ, _MISSING)
        if decoder is None:
            value = raw
        elif decoder is _MISSING:
            raise field.wrong_type(child).within(tag_name(tag))
        else:
            try:
                value = decoder(child)
            except ProtocolError as exc:
                raise exc.within(tag_name(tag)) from None
        if repeated:
            if name in values:
                values[name].append(value)
            else:
                values[name] = [value]
        elif name in values:
            if extras is None:
                extras = []
            extras.append((index, child))  # a duplicate of a single field: keep it, don't guess
        else:
            values[name] = value
    for name in plan.repeated_names:
        if name in values:
            values[name] = tuple(values[name])
    if extras:
        values["extras"] = tuple(extras)
    return values


def to_item(obj: Struct, tag: int | None = None) -> Item:
    """Encode a structure instance; ``tag`` overrides the class's own tag."""
    cls = type(obj)
    plan = _PLANS.get(cls) or _plan(cls)
    if plan.custom_encode:
        return obj.encode_item(obj.TAG if tag is None else tag)  # type: ignore[attr-defined,no-any-return]
    children: list[Item] = []
    append = children.append
    for value, (simple, field) in zip(plan.getter(obj), plan.encoders, strict=True):
        if value is None:
            continue
        if simple is not None:  # a single primitive kind: build the item inline (hot path)
            if field.repeated:
                for v in value:
                    append(_new_item(Item, (simple[0], simple[1], v)))
            else:
                append(_new_item(Item, (simple[0], simple[1], value)))
        elif field.repeated:
            encode = field.encode
            children.extend([encode(v) for v in value])
        else:
            append(field.encode(value))
    if obj.extras:
        for index, extra in obj.extras:
            children.insert(index, extra)
    return _new_item(Item, (obj.TAG if tag is None else tag, _STRUCTURE, tuple(children)))


def to_bytes(obj: Struct, tag: int | None = None) -> bytes:
    """TTLV bytes of a structure instance: the same as ``encode(to_item(obj))``, but written
    straight from the dataclasses, without building the intermediate item tree."""
    out = bytearray()
    try:
        (WRITERS.get(type(obj)) or write_struct)(obj, obj.TAG if tag is None else tag, out, 0)
    except (TypeError, ValueError, AttributeError, OverflowError, struct.error):
        # The fast writers trust value types; the item path checks each one and raises a
        # ProtocolError that says which item was wrong.
        return encode(to_item(obj, tag))
    return bytes(out)


#: Per class, the function that writes its instances: generated by :mod:`.writer` on the
#: class's first use, or :func:`write_generic`.
WRITERS: dict[type, Callable[[Any, int, bytearray, int], None]] = {}


def write_struct(obj: Struct, tag: int, out: bytearray, depth: int) -> None:
    """Append the TTLV of ``obj`` under ``tag`` at nesting ``depth`` (see :func:`to_bytes`)."""
    writer = WRITERS.get(type(obj))
    if writer is None:
        from .writer import writer_for  # noqa: PLC0415 - the writer module builds on this one

        writer = writer_for(type(obj))
    writer(obj, tag, out, depth)


def write_generic(obj: Struct, tag: int, out: bytearray, depth: int) -> None:
    """:func:`write_struct` for any class, walking its compiled plan: for the classes that
    encode themselves, instances with kept-aside children, and bad tags or depths."""
    cls = type(obj)
    plan = _PLANS.get(cls) or _plan(cls)
    if plan.custom_write is not None:
        plan.custom_write(obj, out, tag, depth)
        return
    if plan.custom_encode or obj.extras:
        # Custom encoders and kept-aside children need the item form; they are rare.
        write_items((to_item(obj, tag),), out, depth)
        return
    if depth >= DEFAULT_MAX_DEPTH or (tag >> 16 != 0x42 and tag >> 16 != 0x54):
        open_structure(out, tag, depth)  # raises the error that says which
    start = len(out)
    out += _STRUCT_HEADER((tag << 8) | 1, 0)
    depth += 1
    for value, (writer, repeated, child_tag, field) in zip(plan.getter(obj), plan.writers, strict=True):
        if value is None:
            continue
        if writer is not None:
            if repeated:
                for v in value:
                    writer(out, v)
            else:
                writer(out, value)
            continue
        for v in value if repeated else (value,):
            write_value(field, child_tag, v, out, depth)
    _STRUCT_LENGTH_INTO(out, start + 4, len(out) - start - 8)


def write_value(field: Any, child_tag: int | None, value: Any, out: bytearray, depth: int) -> None:
    """Append one value of ``field`` (a structure, encoded bytes, or a primitive of any of the
    field's kinds); ``child_tag`` is the field's tag unless it depends on the value."""
    if isinstance(value, Struct):
        write_struct(value, child_tag if child_tag is not None else field.tag_for(value), out, depth)
    elif type(value) is EncodedItem:
        out += value
    else:
        leaf = field.leaf_writer_for(value) if child_tag is not None else None
        if leaf is not None:
            leaf(out, value)
        else:
            write_items((field.encode(value),), out, depth)


def version_conflicts(obj: Struct, version: Version, path: str = "") -> list[str]:
    """Paths of fields set in ``obj`` (recursively) that do not exist in KMIP ``version``."""
    found: list[str] = []
    _add_version_conflicts(obj, version, path or type(obj).__name__, found)
    return found


def _add_version_conflicts(obj: Struct, version: Version, path: str, found: list[str]) -> None:
    # Run on every request payload: the plan's getter fetches all the values in one call.
    plan = _PLANS.get(type(obj)) or _plan(type(obj))
    for field, value in zip(plan.fields, plan.getter(obj), strict=True):
        if value is None or (field.repeated and not value):
            continue
        if (field.min_version and version < field.min_version) or (field.max_version and version > field.max_version):
            found.append(f"{path}.{field.name}")
        for element in value if field.repeated else (value,):
            # (A class with a custom encoder keeps its own version rules.) The plan says so
            # without a failed attribute lookup, whose exception costs more than the check.
            if isinstance(element, Struct) and not (_PLANS.get(type(element)) or _plan(type(element))).custom_encode:
                _add_version_conflicts(element, version, f"{path}.{field.name}", found)
