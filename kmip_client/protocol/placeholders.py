"""Placeholders of the OASIS test-case files: ``$UNIQUE_IDENTIFIER_0``, ``$NOW-3600`` ...

The profile test cases write values that vary between runs as ``$NAME`` with an optional
``+seconds``/``-seconds`` offset. The XML and JSON codecs keep them as :class:`Placeholder`
values inside the item tree so that nothing is silently dropped; :func:`resolve` replaces
them with concrete values (a run's bindings, or fixed values for a binary round trip).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .ttlv import Item, ItemType

__all__ = ["Placeholder", "parse_placeholder", "resolve", "contains_placeholders"]

_PATTERN = re.compile(r"\$([A-Z][A-Z0-9_]*)(?:([+-])(\d+))?")


@dataclass(frozen=True, slots=True)
class Placeholder:
    """A named stand-in for a value, with an offset in seconds for time values."""

    name: str
    offset: int = 0

    def __str__(self) -> str:
        if self.offset:
            return f"${self.name}{self.offset:+d}"
        return f"${self.name}"


def parse_placeholder(text: str) -> Placeholder | None:
    """``"$NOW-3600"`` → ``Placeholder("NOW", -3600)``; None when ``text`` is not one."""
    match = _PATTERN.fullmatch(text)
    if match is None:
        return None
    name, sign, digits = match.groups()
    offset = int(digits) * (-1 if sign == "-" else 1) if digits else 0
    return Placeholder(name, offset)


Binding = Any | Callable[[Placeholder, Item], Any]


def resolve(item: Item, bindings: Mapping[str, Binding]) -> Item:
    """Return ``item`` with every placeholder replaced from ``bindings``.

    A binding is a value (offsets are added to numbers, so ``$NOW-3600`` works when NOW is
    bound to seconds) or a callable taking the placeholder and its item. Unbound names raise
    ``KeyError`` naming the placeholder, because a silently kept placeholder would later
    fail far from its cause.
    """
    if item.type == ItemType.STRUCTURE:
        children = tuple(resolve(child, bindings) for child in item.value)
        return item if children == item.value else Item(item.tag, item.type, children)
    value = item.value
    if not isinstance(value, Placeholder):
        return item
    if value.name not in bindings:
        raise KeyError(f"no value bound for placeholder {value}")
    bound = bindings[value.name]
    concrete = bound(value, item) if callable(bound) else bound
    if value.offset and isinstance(concrete, int):
        concrete += value.offset
    return Item(item.tag, item.type, concrete)


def contains_placeholders(item: Item) -> bool:
    """True when any value in the tree is still a placeholder."""
    stack = [item]
    while stack:
        current = stack.pop()
        if current.type == ItemType.STRUCTURE:
            stack.extend(current.value)
        elif isinstance(current.value, Placeholder):
            return True
    return False
