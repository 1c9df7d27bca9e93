"""The stored form of attribute values, whose scalar encodings are reused (attribute_set)."""

from __future__ import annotations

from datetime import UTC, datetime

from kmip_client.protocol.model import Attribute
from kmip_client.protocol.model.base import to_bytes
from kmip_client.protocol.spec.enums import CryptographicAlgorithm, State
from kmip_client.protocol.ttlv import ItemType, decode
from kmip_server.objects.attribute_set import encode_value, stored


def test_equal_scalars_of_other_types_keep_their_own_encodings():
    # True == 1 == CryptographicAlgorithm.DES (1) == State.PRE_ACTIVE (1): one cache key
    # for all of them would store a Boolean where an Enumeration belongs.
    values = [True, 1, CryptographicAlgorithm.DES, State.PRE_ACTIVE]
    first = [encode_value("x-attr", v) for v in values]
    second = [encode_value("x-attr", v) for v in reversed(values)][::-1]
    assert first == second
    assert first[0] != first[1] != first[2] == first[3]  # two enums of 1: the same TTLV
    types = [decode(b).value[1].type for b in first]
    assert types == [ItemType.BOOLEAN, ItemType.INTEGER, ItemType.ENUMERATION, ItemType.ENUMERATION]


def test_reused_encodings_match_a_fresh_encoding():
    when = datetime(2026, 11, 29, 10, 0, 0, tzinfo=UTC)
    cases = [
        ("Cryptographic Length", 256, None),
        ("Cryptographic Usage Mask", 12, ItemType.INTEGER),
        ("x-big", 12, ItemType.LONG_INTEGER),
        ("Initial Date", when, None),
        ("Name", "not cached but the same", None),
    ]
    for name, value, typ in cases:
        fresh = to_bytes(Attribute(name=name, value=value, type=typ))
        assert encode_value(name, value, typ) == fresh
        assert encode_value(name, value, typ) == fresh  # the second, from the cache
    assert encode_value("x-big", 12, ItemType.LONG_INTEGER) != encode_value("x-big", 12, ItemType.INTEGER)


def test_reused_rows_keep_their_type_index_and_search_keys():
    when = datetime(2026, 11, 29, 10, 0, 0, tzinfo=UTC)
    rows = [stored("x-attr", 0, v) for v in (True, 1, CryptographicAlgorithm.DES)]
    rows += [stored("x-attr", 0, True), stored("x-attr", 1, True), stored("Initial Date", 0, when)]
    assert [decode(r.value).value[1].type for r in rows[:3]] == [
        ItemType.BOOLEAN,
        ItemType.INTEGER,
        ItemType.ENUMERATION,
    ]
    assert rows[3] is rows[0]  # the same row object, reused
    assert (rows[4].index, rows[4].value) == (1, rows[0].value)
    assert (rows[5].text, rows[5].number) == (None, int(when.timestamp()))
    assert stored("x-big", 0, 12, ItemType.LONG_INTEGER) != stored("x-big", 0, 12, ItemType.INTEGER)
