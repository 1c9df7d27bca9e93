"""The plain records exchanged between the engine and the repository.

The repository stores and searches these; it does not interpret KMIP. Attribute values are
opaque bytes (the engine's TTLV encoding of the attribute) plus the two search keys the engine
derives from them, so Locate can filter in SQL.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class StoredAttribute:
    """One instance of an attribute of an object.

    ``name`` is the KMIP 1.x attribute name ("Name", "Cryptographic Algorithm", "x-owner" ...);
    ``index`` orders the instances of one name (0, 1, ...). ``value`` is the engine's encoding,
    returned exactly as given. ``text`` / ``number`` are search keys: ``text`` for text-like
    values (a Name's value, an Object Group, a text custom attribute), ``number`` for enums,
    integers, booleans (0/1) and dates (POSIX seconds). Either may be None. ``number`` must fit
    a signed 64-bit integer (a BIGINT column); ``text`` is matched exactly (case-sensitive).
    """

    name: str
    index: int
    value: bytes
    text: str | None = None
    number: int | None = None


@dataclasses.dataclass(slots=True)
class ObjectRecord:
    """A managed object's row. ``wrapped_value`` is the custody blob of the object's value
    (key bytes, secret data, opaque data); None once the object is destroyed.

    ``algorithm``, ``length`` and ``value_format`` repeat what the object's attributes and
    key block say, so the hot Get path reads one row. ``created`` is POSIX seconds.
    ``sequence`` is assigned by the repository on insert (monotonic per store, never reused)
    and orders Locate results; on PostgreSQL it follows insert order, which under concurrency
    may differ slightly from commit order. The repository returns ``attributes`` ordered by
    name (code-point order), then index.
    """

    uid: str
    object_type: int
    owner: str
    state: int
    created: int
    algorithm: int | None = None
    length: int | None = None
    value_format: int | None = None  # Key Format Type / Secret Data Type / Opaque Data Type
    wrapped_value: bytes | None = dataclasses.field(default=None, repr=False)
    custody_key: str | None = None  # master_key_id of the key that wrapped the value
    attributes: list[StoredAttribute] = dataclasses.field(default_factory=list)
    sequence: int | None = None
    # Set by Repository.get_for_release only: "Extractable" (False) or "Sensitive" (True) when
    # that attribute forbids returning the value in the clear, else None.
    withheld_by: str | None = None
    # Set by Repository.get_for_release only: whether the object is still Fresh (KMIP's Fresh
    # attribute: never served by Get). None when not read.
    fresh: bool | None = None
    # The tenant the object belongs to (policy: other tenants cannot see or touch it).
    tenant: str = "default"


@dataclasses.dataclass(frozen=True, slots=True)
class AttributeFilter:
    """One Locate condition on an attribute: an object matches when at least one instance of
    attribute ``name`` satisfies every condition given here (None = no condition).
    ``text_prefix`` matches text values that start with it (a trailing ``*`` wildcard); it is
    taken literally (``%`` and ``_`` are not wildcards) and is case-sensitive."""

    name: str
    text: str | None = None
    text_prefix: str | None = None
    number: int | None = None
    number_min: int | None = None  # inclusive
    number_max: int | None = None  # inclusive
    number_all_bits: int | None = None  # the number has at least these bits set (usage masks)
    value: bytes | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class LocateQuery:
    """A Locate search: all given conditions must hold (AND). Empty ``object_types`` /
    ``states`` mean any. ``owners`` None means any owner (an administrator); otherwise the
    object's owner must be one of them, so ``()`` matches nothing. Results are ordered by
    ``sequence`` (newest first by default), then ``offset_items`` are skipped and at most
    ``max_items`` returned (None: no limit, 0: none). ``now`` (POSIX seconds), when given,
    makes ``states`` match the state an object is in at that time, its Activation and
    Deactivation Dates applied; None matches the stored state."""

    object_types: tuple[int, ...] = ()
    states: tuple[int, ...] = ()
    owners: tuple[str, ...] | None = None
    tenants: tuple[str, ...] | None = None  # None: any tenant; else the object's must be one of them
    algorithm: int | None = None
    length: int | None = None
    attributes: tuple[AttributeFilter, ...] = ()
    max_items: int | None = None
    offset_items: int = 0
    newest_first: bool = True
    now: int | None = None
