"""Typed KMIP structures and the one walker that maps them to and from TTLV item trees.

A KMIP structure is declared once, as a frozen dataclass whose fields carry metadata
(``kfield``): the tag, the item type or nested structure class, whether it repeats and the
protocol versions it exists in. ``from_item``/``to_item`` walk any such class generically,
with the per-class plan compiled once. Children the class does not declare (vendor
extensions, tags from a newer version, a duplicated field) are kept in ``extras`` with their
position, so decode then encode gives back the same items.

Value conventions: enumerations decode to the spec's IntEnum members (unknown values, such
as vendor extensions 0x8xxxxxxx, stay plain ints), masks to IntFlag, Date-Time to aware UTC
``datetime``; everything else keeps its TTLV Python value. Placeholders pass through untouched.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from ..errors import ProtocolError
from ..placeholders import Placeholder
from ..spec import enum_for_tag, tag_name
from ..ttlv import Item, ItemType

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
]

Version = tuple[int, int]
#: What a field holds: a primitive item type, a structure class, or a tuple of those when
#: the spec allows several encodings (a Key Value is a Structure, or a Byte String when
#: wrapped; a 2.x Unique Identifier is a Text String, an Enumeration or an Integer).
Kind = Any

S = TypeVar("S", bound="Struct")
_UTC = UTC
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

    Repeated fields default to an empty tuple, others to None (absent). Versions document in
    which KMIP versions the field exists; :func:`to_item` checks them when given a version.
    ``secret`` marks key material, passwords and plaintext: kept out of ``repr``.
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


def structure(tag: int) -> Callable[[type[S]], type[S]]:
    """Class decorator: make a frozen, slotted dataclass for the structure ``tag``."""

    def wrap(cls: type[S]) -> type[S]:
        cls.TAG = tag
        return dataclasses.dataclass(frozen=True, slots=True)(cls)

    return wrap


# --------------------------------------------------------------------------- primitives


def decode_primitive(tag: int, item: Item) -> Any:
    """The Python value of a primitive item (enumerations and masks made typed)."""
    value = item.value
    if isinstance(value, Placeholder):
        return value
    typ = item.type
    if typ == ItemType.ENUMERATION or typ == ItemType.INTEGER:
        enum = enum_for_tag(tag)
        if enum is not None:
            return enum._value2member_map_.get(value, value) if typ == ItemType.ENUMERATION else enum(value)
        return value
    if typ == ItemType.DATE_TIME:
        return datetime.fromtimestamp(value, _UTC)
    return value


def encode_primitive(tag: int, typ: ItemType, value: Any) -> Item:
    """The item for a Python value of a primitive field."""
    if typ == ItemType.DATE_TIME and isinstance(value, datetime):
        return Item(tag, typ, int(value.timestamp()))
    return Item(tag, typ, value)


# --------------------------------------------------------------------------- the walker


class _Field:
    """One compiled field: how to turn its items into values and back."""

    __slots__ = ("name", "tag", "kinds", "repeated", "min_version", "max_version", "single_kind", "secret")

    def __init__(self, name: str, meta: tuple[Any, ...], secret: bool = False) -> None:
        tag, kind, repeated, min_version, max_version = meta
        self.name = name
        self.secret = secret
        self.tag = tag
        kinds = kind if isinstance(kind, tuple) else (kind,)
        self.kinds: dict[ItemType, Any] = {}
        for k in kinds:
            self.kinds[_STRUCTURE if isinstance(k, type) and issubclass(k, Struct) or k is Item else k] = k
        self.single_kind = kinds[0] if len(kinds) == 1 else None
        self.repeated = repeated
        self.min_version = min_version
        self.max_version = max_version

    def decode(self, item: Item, path: str) -> Any:
        kind = self.kinds.get(item.type)
        if kind is None:
            expected = " or ".join(t.name for t in self.kinds)
            raise ProtocolError(f"{path}/{tag_name(item.tag)}: expected {expected}, got {ItemType(item.type).name}")
        if kind is Item:
            return item
        if not isinstance(kind, ItemType):  # a Struct class
            return _from_item(kind, item, f"{path}/{tag_name(item.tag)}")
        return decode_primitive(self.tag, item)

    def encode(self, value: Any) -> Item:
        if isinstance(value, Struct):
            return to_item(value, self.tag)
        if isinstance(value, Item):
            return value
        kind = self.single_kind
        if kind is None:
            kind = _kind_for_value(self, value)
        return encode_primitive(self.tag, kind, value)


def _kind_for_value(field: _Field, value: Any) -> ItemType:
    """Pick the item type of a multi-kind field from the Python value."""
    from enum import IntEnum

    if isinstance(value, IntEnum) and ItemType.ENUMERATION in field.kinds:
        return ItemType.ENUMERATION
    if isinstance(value, datetime) and ItemType.DATE_TIME in field.kinds:
        return ItemType.DATE_TIME
    if isinstance(value, bool) and ItemType.BOOLEAN in field.kinds:
        return ItemType.BOOLEAN
    if isinstance(value, str) and ItemType.TEXT_STRING in field.kinds:
        return ItemType.TEXT_STRING
    if isinstance(value, (bytes, bytearray)) and ItemType.BYTE_STRING in field.kinds:
        return ItemType.BYTE_STRING
    if isinstance(value, int) and ItemType.INTEGER in field.kinds:
        return ItemType.INTEGER
    for kind in field.kinds:
        if isinstance(kind, ItemType) and kind != _STRUCTURE:
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

    def decode(self, item: Item, path: str) -> Any:
        return self.choices[item.tag].decode(item, path)

    def encode(self, value: Any) -> Item:
        if isinstance(value, Item):
            return value
        if isinstance(value, Struct):
            return to_item(value, self.tag_of.get(type(value), value.TAG))
        raise TypeError(f"field {self.name}: cannot encode {type(value).__name__} without its tag")


class _Plan:
    __slots__ = ("fields", "by_tag")

    def __init__(self, cls: type[Struct]) -> None:
        self.fields: list[Any] = []
        self.by_tag: dict[int, Any] = {}
        for f in dataclasses.fields(cls):
            meta = f.metadata.get("kmip")
            if meta is None:
                continue
            secret = bool(f.metadata.get("secret"))
            field = _ChoiceField(f.name, meta, secret) if meta[0] is None else _Field(f.name, meta, secret)
            self.fields.append(field)
            for tag in field.choices if isinstance(field, _ChoiceField) else (field.tag,):
                self.by_tag.setdefault(tag, field)


_PLANS: dict[type, _Plan] = {}


def _plan(cls: type[Struct]) -> _Plan:
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = _Plan(cls)
    return plan


def from_item(cls: type[S], item: Item) -> S:
    """Decode ``item`` (a Structure) into an instance of ``cls``."""
    return _from_item(cls, item, "")


def _from_item(cls: type[S], item: Item, path: str) -> S:
    custom = getattr(cls, "decode_item", None)
    if custom is not None:
        return custom(item, path)  # type: ignore[no-any-return]
    return cls(**decode_fields(cls, item, path))


def decode_struct(cls: type[S], item: Item, path: str) -> S:
    """Like :func:`from_item`, with the path of ``item`` for error messages."""
    return _from_item(cls, item, path)


def decode_fields(cls: type[Struct], item: Item, path: str = "") -> dict[str, Any]:
    """The constructor arguments of ``cls`` for ``item``; custom decoders build on this."""
    path = path or tag_name(item.tag)
    if item.type != _STRUCTURE:
        raise ProtocolError(f"{path}: expected a Structure, got {ItemType(item.type).name}")
    plan = _plan(cls)
    by_tag = plan.by_tag
    values: dict[str, Any] = {}
    extras: list[tuple[int, Item]] = []
    for index, child in enumerate(item.value):
        field = by_tag.get(child.tag)
        if field is None:
            extras.append((index, child))
            continue
        value = field.decode(child, path)
        if field.repeated:
            values.setdefault(field.name, []).append(value)
        elif field.name in values:
            extras.append((index, child))  # a duplicate of a single field: keep it, don't guess
        else:
            values[field.name] = value
    for field in plan.fields:
        if field.repeated and field.name in values:
            values[field.name] = tuple(values[field.name])
    if extras:
        values["extras"] = tuple(extras)
    return values


def to_item(obj: Struct, tag: int | None = None) -> Item:
    """Encode a structure instance; ``tag`` overrides the class's own tag."""
    custom = getattr(obj, "encode_item", None)
    if custom is not None:
        return custom(tag if tag is not None else obj.TAG)  # type: ignore[no-any-return]
    children: list[Item] = []
    for field in _plan(type(obj)).fields:
        value = getattr(obj, field.name)
        if value is None or (field.repeated and not value):
            continue
        if field.repeated:
            children.extend(field.encode(v) for v in value)
        else:
            children.append(field.encode(value))
    for index, extra in obj.extras:
        children.insert(index, extra)
    return Item(obj.TAG if tag is None else tag, _STRUCTURE, tuple(children))


def version_conflicts(obj: Struct, version: Version, path: str = "") -> list[str]:
    """Paths of fields set in ``obj`` (recursively) that do not exist in KMIP ``version``."""
    found: list[str] = []
    path = path or type(obj).__name__
    for field in _plan(type(obj)).fields:
        value = getattr(obj, field.name)
        if value is None or (field.repeated and not value):
            continue
        if (field.min_version and version < field.min_version) or (
            field.max_version and version > field.max_version
        ):
            found.append(f"{path}.{field.name}")
        for element in value if field.repeated else (value,):
            if isinstance(element, Struct) and getattr(element, "encode_item", None) is None:
                found.extend(version_conflicts(element, version, f"{path}.{field.name}"))
    return found
