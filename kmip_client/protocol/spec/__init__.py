"""KMIP specification tables (tags, enumerations, bit masks, attributes) and name helpers.

The tables live in the generated modules ``tags``, ``enums`` and ``attributes``
(regenerate with ``python tools/gen_spec.py SPEC_DIR``); this module is hand-written.
"""
from __future__ import annotations

import re
from enum import IntFlag
from typing import Any

from .attributes import ATTRIBUTE_NAMES, ATTRIBUTE_TAGS
from .enums import ENUM_BY_NAME, ENUM_XML_NAMES, TAG_ENUMERATION
from .naming import normalize_name
from .tags import TAG_BY_NAME, TAG_SPEC_NAMES, TAG_XML_NAMES, TAGS_1X, TAGS_2X, Tag

__all__ = [
    "ATTRIBUTE_NAMES", "ATTRIBUTE_TAGS", "ENUM_BY_NAME", "ENUM_XML_NAMES", "TAG_BY_NAME",
    "TAG_ENUMERATION", "TAG_SPEC_NAMES", "TAG_XML_NAMES", "TAGS_1X", "TAGS_2X", "Tag",
    "enum_for_tag", "enum_value_from_name", "enum_value_name", "mask_from_names",
    "mask_to_names", "normalize_name", "tag_from_name", "tag_name",
]

_HEX = re.compile(r"0[xX][0-9A-Fa-f]+")


def _index(by_name: dict[str, int]) -> dict[str, int]:
    """Add normalized and case-insensitive keys to a name -> value map."""
    out = dict(by_name)
    for name, value in by_name.items():
        out.setdefault(normalize_name(name), value)
    for name, value in list(out.items()):
        out.setdefault(name.lower(), value)
    return out


_TAG_INDEX: dict[str, int] = _index(TAG_BY_NAME)
_ENUM_INDEX: dict[Any, dict[str, int]] = {cls: _index(d) for cls, d in ENUM_BY_NAME.items()}
for _cls, _d in _ENUM_INDEX.items():  # Python member names ("SHA_256", "PRE_ACTIVE") too
    for _m_name, _member in _cls.__members__.items():
        _d.setdefault(_m_name, int(_member))
_ATTR_INDEX: dict[str, int] = _index(ATTRIBUTE_TAGS)


def _lookup(index: dict[str, int], name: str) -> int | None:
    value = index.get(name)
    return value if value is not None else index.get(name.lower())


def tag_name(tag: int) -> str:
    """Normalized (XML) name of a tag, or "0x42XXXX" for unknown/extension tags."""
    return TAG_XML_NAMES.get(tag) or f"0x{tag:06X}"


def tag_from_name(name: str) -> int:
    """Tag value from a normalized/spec/alias name or a "0x......" hex string."""
    name = name.strip()
    if _HEX.fullmatch(name):
        return int(name, 16)
    value = _lookup(_TAG_INDEX, name)
    if value is None:
        raise KeyError(f"unknown KMIP tag name {name!r}")
    return value


def attribute_tag(attribute_name: str) -> int | None:
    """Tag of a KMIP 1.x attribute name ("Cryptographic Algorithm"); None if unknown."""
    return _lookup(_ATTR_INDEX, attribute_name.strip())


def enum_for_tag(tag: int) -> type | None:
    """The IntEnum/IntFlag class of a tag's value, or None."""
    return TAG_ENUMERATION.get(tag)


def enum_value_name(tag: int, value: int) -> str:
    """Normalized name of an enumeration value, or "0x%08X" for unknown/extension values."""
    cls = TAG_ENUMERATION.get(tag)
    name = ENUM_XML_NAMES.get(cls, {}).get(value) if cls is not None else None
    return name or f"0x{value:08X}"


def enum_value_from_name(tag: int, name: str) -> int:
    """Enumeration value from a normalized/spec/alias name or a hex string."""
    name = name.strip()
    if _HEX.fullmatch(name):
        return int(name, 16)
    cls = TAG_ENUMERATION.get(tag)
    if cls is None:
        raise KeyError(f"tag 0x{tag:06X} has no enumeration (value {name!r})")
    value = _lookup(_ENUM_INDEX[cls], name)
    if value is None:
        raise KeyError(f"{name!r} is not a {cls.__name__} value")
    return value


def mask_to_names(tag: int, value: int) -> str:
    """Space-separated bit names ("Encrypt Decrypt"); leftover bits as one hex word."""
    cls = TAG_ENUMERATION.get(tag)
    names: list[str] = []
    rest = value
    if cls is not None and issubclass(cls, IntFlag):
        for bit, name in sorted(ENUM_XML_NAMES[cls].items()):
            if bit and value & bit == bit:
                names.append(name)
                rest &= ~bit
    if rest or not names:
        names.append(f"0x{rest:08X}")
    return " ".join(names)


def mask_from_names(tag: int, text: str) -> int:
    """Parse "Encrypt Decrypt", "Encrypt|Decrypt", "0x0000000C" or "12" into a mask."""
    cls = TAG_ENUMERATION.get(tag)
    index = _ENUM_INDEX.get(cls, {}) if cls is not None else {}
    value = 0
    for word in re.split(r"[\s|]+", text.strip()):
        if not word:
            continue
        if _HEX.fullmatch(word):
            value |= int(word, 16)
        elif re.fullmatch(r"-?\d+", word):
            value |= int(word)
        else:
            bit = _lookup(index, word)
            if bit is None:
                raise ValueError(f"{word!r} is not a bit of tag 0x{tag:06X}")
            value |= bit
    return value
