"""The rotation attributes of KMIP 2.1 (§4.48-4.54): when a key is due, and what replacing it
records on both keys.

When a key is due (Rotate Interval, §4.51: "automatic rotation ... is performed by the server
when the difference between the Initial Date of the Managed Object and the current server
time reaches or exceeds this value", if Rotate Automatic, §4.48, is True): at Initial Date +
Rotate Interval. Each replacement has a new Initial Date, the time it was made, so a chain of
keys is rotated once per interval. The server rotates only what it can use and replace: a
Symmetric Key or the Private Key of a pair, Active now (not before its Activation Date, not
after its Deactivation Date), with its value on the server and not already replaced.

What a replacement records, by the scheduler or by a client's Re-key and Re-key Key Pair
(kmip_server/operations/rekey.py calls :func:`succeed` and :func:`retire`):

* the new key: Rotate Generation (§4.50, "the count from zero of the number of automatic
  rotates or ReKey, ReKeyKeyPair, or ReCertify operations that have occurred in order to
  create this Managed Object") one more than the old key's (a key never replaced is
  generation 0, stored or not); Rotate Latest (§4.52) True. Rotate Automatic, Interval,
  Offset and Name are copied from the old key as Re-key copies what a client may give.
* the old key: Rotate Latest False; Rotate Date (§4.49, "the time when the Managed Object was
  rotated") now; Rotate Automatic False if it was True (the server may modify it, and the key
  will not be rotated again: its successor carries the schedule).

Rotate Offset (§4.54) is the Offset the server's Re-key uses: the replacement's Activation
Date is the rotation time plus the Offset (Pre-Active until then, while the old key stays
Active); without one the replacement takes the old key's dates, as Re-key without an Offset.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kmip_client.protocol.model.attributes import Link
from kmip_client.protocol.spec.enums import LinkType
from kmip_client.protocol.ttlv import ItemType

from ..objects import lifecycle
from ..objects.attribute_set import AttributeSet
from ..storage.rotation import ROTATED_TYPES


def _seconds(value: Any) -> int | None:
    if value is None:
        return None
    return int(value.timestamp()) if isinstance(value, datetime) else int(value)


def replaced(attrs: AttributeSet) -> bool:
    """Whether the object has a Replacement Object Link (a successor)."""
    return any(
        isinstance(attr.value, Link) and attr.value.link_type == LinkType.REPLACEMENT_OBJECT_LINK
        for _, attr in attrs.instances("Link")
    )


def due_since(object_type: int, state: int, has_value: bool, attrs: AttributeSet, now: int) -> int | None:
    """Since when (POSIX seconds) an object in ``state`` now (its dates applied) is due for
    rotation at ``now``; None when it is not due (this module's docstring). The SQL form of the
    rule, which finds the candidates, is kmip_server/storage/rotation.py's ``due_keys``."""
    if object_type not in ROTATED_TYPES or not has_value or state != lifecycle.ACTIVE:
        return None
    interval = attrs.first("Rotate Interval")
    initial = _seconds(attrs.first("Initial Date"))
    if attrs.first("Rotate Automatic") is not True or not interval or initial is None or replaced(attrs):
        return None
    due = initial + int(interval)
    if due > now:
        return None
    return max(due, _seconds(attrs.first("Activation Date")) or due)


def generation(attrs: AttributeSet) -> int:
    """The object's Rotate Generation (0 for one never made by a replacement)."""
    value = attrs.first("Rotate Generation")
    return int(value) if value is not None else 0


def succeed(old: AttributeSet, new: AttributeSet) -> None:
    """Record on ``new`` (a replacement's attributes, before it is stored) that it replaces ``old``."""
    new.set("Rotate Generation", generation(old) + 1, ItemType.INTEGER)
    new.set("Rotate Latest", True, ItemType.BOOLEAN)


def retire(old: AttributeSet, now: int) -> None:
    """Record on ``old`` that it was replaced at ``now``."""
    old.set("Rotate Latest", False, ItemType.BOOLEAN)
    old.set("Rotate Date", datetime.fromtimestamp(now, UTC), ItemType.DATE_TIME)
    if old.first("Rotate Automatic") is True:
        old.set("Rotate Automatic", False, ItemType.BOOLEAN)
