"""An object's attributes in memory, and their stored form.

Each instance is stored as the TTLV of a 1.x ``Attribute`` structure (name, value) — the one
encoding that carries every attribute, typed or custom, exactly — plus the search keys Locate
filters on in SQL (``text`` for text-like values, ``number`` for enums, integers, booleans
and dates). Custom attributes have one canonical name in both KMIP generations: the 1.x
"x-ID" is the 2.x Vendor Identification "x" with Attribute Name "ID".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kmip_client.protocol.model import Attribute
from kmip_client.protocol.model.attributes import (
    AlternativeName,
    ApplicationSpecificInformation,
    Link,
    Name,
    RandomNumberGenerator,
)
from kmip_client.protocol.model.base import to_bytes
from kmip_client.protocol.ttlv import ItemType, decode

from ..storage.records import StoredAttribute

V2 = (2, 0)


def search_keys(value: Any) -> tuple[str | None, int | None]:
    """The (text, number) Locate keys of a value."""
    if isinstance(value, bool):
        return None, int(value)
    if isinstance(value, int):
        return None, int(value)
    if isinstance(value, str):
        return value, None
    if isinstance(value, datetime):
        return None, int(value.timestamp())
    if isinstance(value, (Name, AlternativeName)):
        return value.value, None
    if isinstance(value, Link):
        return value.linked_object_identifier, (int(value.link_type) if value.link_type is not None else None)
    if isinstance(value, ApplicationSpecificInformation):
        return value.application_namespace, None
    return None, None


# Scalar values recur (an algorithm, a length, a mask, this second's dates), and so does the
# Random Number Generator of generated keys: their stored bytes are kept, keyed with the
# value's type too, since True == 1 == an enum member of 1.
_CACHEABLE = (bool, int, datetime, RandomNumberGenerator)
_encoded: dict[tuple[str, type, Any, ItemType | None], bytes] = {}
_ENCODED_LIMIT = 4096


def encode_value(name: str, value: Any, typ: ItemType | None = None) -> bytes:
    """The stored bytes of one value: also the exact-match key for structured values."""
    if not isinstance(value, _CACHEABLE):
        return to_bytes(Attribute(name=name, value=value, type=typ))
    key = (name, type(value), value, typ)
    encoded = _encoded.get(key)
    if encoded is None:
        encoded = to_bytes(Attribute(name=name, value=value, type=typ))
        if len(_encoded) >= _ENCODED_LIMIT:
            _encoded.clear()
        _encoded[key] = encoded
    return encoded


# Whole stored rows of such values too (they are immutable): most rows of a new object are one
# dictionary lookup.
_rows: dict[tuple[str, int, type, Any, ItemType | None], StoredAttribute] = {}


def stored(name: str, index: int, value: Any, typ: ItemType | None = None) -> StoredAttribute:
    if isinstance(value, _CACHEABLE):
        key = (name, index, type(value), value, typ)
        row = _rows.get(key)
        if row is None:
            row = _stored(name, index, value, typ)
            if len(_rows) >= _ENCODED_LIMIT:
                _rows.clear()
            _rows[key] = row
        return row
    return _stored(name, index, value, typ)


def _stored(name: str, index: int, value: Any, typ: ItemType | None) -> StoredAttribute:
    text, number = search_keys(value)
    return StoredAttribute(name=name, index=index, value=encode_value(name, value, typ), text=text, number=number)


# Decoded stored values, by their bytes: attributes are frozen, and the objects a workload uses
# again and again (the key of every Encrypt) carry the same few rows. Bounded like the above.
_decoded: dict[bytes, Attribute] = {}


def _decode_stored(row: StoredAttribute) -> Attribute:
    attr = _decoded.get(row.value)
    if attr is None:
        attr = Attribute.decode_item(decode(row.value))
        if len(_decoded) >= _ENCODED_LIMIT:
            _decoded.clear()
        _decoded[row.value] = attr
    return attr


class AttributeSet:
    """The attributes of one object: name → {index: Attribute}, tracking what changed."""

    __slots__ = ("_values", "_dirty")

    def __init__(self, rows: list[StoredAttribute] | None = None) -> None:
        self._values: dict[str, dict[int, Attribute]] = {}
        self._dirty: set[str] = set()
        for row in rows or ():
            self._values.setdefault(row.name, {})[row.index] = _decode_stored(row)

    def names(self) -> list[str]:
        return list(self._values)

    def __contains__(self, name: str) -> bool:
        return bool(self._values.get(name))

    def instances(self, name: str) -> list[tuple[int, Attribute]]:
        """(index, attribute) pairs of ``name`` in index order."""
        return sorted(self._values.get(name, {}).items())

    def first(self, name: str) -> Any:
        """The value of the lowest-indexed instance of ``name``, or None."""
        found = self.instances(name)
        return found[0][1].value if found else None

    def get(self, name: str, index: int) -> Attribute | None:
        return self._values.get(name, {}).get(index)

    def set(self, name: str, value: Any, typ: ItemType | None = None, index: int = 0) -> None:
        self._values.setdefault(name, {})[index] = Attribute(name=name, value=value, type=typ)
        self._dirty.add(name)

    def default(self, attr: Attribute) -> None:
        """Give the object ``attr`` (a plain attribute) if it has no instance of that name,
        as a value it has without a stored row: not written unless changed afterwards."""
        self._values.setdefault(attr.name, {0: attr})

    def is_dirty(self, name: str) -> bool:
        """Whether ``name`` changed since loading (or since :meth:`changed` was last called)."""
        return name in self._dirty

    def set_from(self, name: str, attr: Attribute) -> None:
        """As :meth:`set` with ``attr``'s value and type, keeping ``attr`` itself when it is
        already in the stored form (a client's plain attribute), instead of building a copy."""
        if attr.name == name and attr.index is None and attr.vendor is None and not attr.extras:
            self._values.setdefault(name, {})[0] = attr
            self._dirty.add(name)
        else:
            self.set(name, attr.value, attr.type)

    def add(self, name: str, value: Any, typ: ItemType | None = None) -> int:
        """Add an instance with the next free index (indexes are never reused while in use)."""
        instances = self._values.setdefault(name, {})
        index = max(instances) + 1 if instances else 0
        instances[index] = Attribute(name=name, value=value, type=typ)
        self._dirty.add(name)
        return index

    def delete(self, name: str, index: int | None = None) -> bool:
        instances = self._values.get(name)
        if not instances:
            return False
        if index is None:
            del self._values[name]
        elif instances.pop(index, None) is None:
            return False
        elif not instances:
            del self._values[name]
        self._dirty.add(name)
        return True

    def has_value(self, name: str, value: Any) -> bool:
        """Whether an instance of ``name`` already holds ``value``."""
        return any(attr.value == value for attr in self._values.get(name, {}).values())

    def rows(self, name: str) -> list[StoredAttribute]:
        return [stored(name, index, attr.value, attr.type) for index, attr in self.instances(name)]

    def all_rows(self) -> list[StoredAttribute]:
        # Insertion order, not index order: these become rows of a table keyed by the index.
        return [
            stored(name, index, attr.value, attr.type)
            for name, instances in self._values.items()
            for index, attr in instances.items()
        ]

    def changed(self) -> list[str]:
        names = sorted(self._dirty)
        self._dirty.clear()
        return names
