"""Decoding hostile input: every failure is the one ProtocolError, quickly, never a crash.

Also property-based round trips of arbitrary item trees.
"""

from __future__ import annotations

import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kmip_client.protocol.errors import ProtocolError
from kmip_client.protocol.ttlv import DEFAULT_MAX_DEPTH, Item, ItemType, decode, encode


def header(tag: int, typ: int, length: int) -> bytes:
    return struct.pack(">II", (tag << 8) | typ, length)


def nested(depth: int) -> bytes:
    """``depth`` structures, each holding the next; the innermost is empty."""
    wire = header(0x420020, 1, 0)
    for _ in range(depth - 1):
        wire = header(0x420020, 1, len(wire)) + wire
    return wire


GOOD = encode(
    Item(
        0x420078,
        ItemType.STRUCTURE,
        (
            Item(0x420077, ItemType.STRUCTURE, (Item(0x42000D, ItemType.INTEGER, 1),)),
            Item(0x420094, ItemType.TEXT_STRING, "abc"),
        ),
    )
)

MALFORMED = {
    "empty": b"",
    "short header": b"\x42\x00\x20\x02",
    "truncated value": header(0x420020, 2, 4) + b"\x00\x00",
    "truncated padding": header(0x420020, 7, 3) + b"abc",
    "truncated message": GOOD[:-1],
    "huge declared structure length": header(0x420078, 1, 0xFFFFFFF8),
    "huge declared text length": header(0x420020, 7, 0xFFFFFFFF) + b"abc",
    "child longer than parent": header(0x420078, 1, 16) + header(0x420020, 7, 16) + b"x" * 16,
    "structure length not a multiple of 8": header(0x420078, 1, 12) + bytes(16),
    "non-zero padding": header(0x420020, 7, 3) + b"abc\x00\x00\x01\x00\x00",
    "non-zero padding after an integer": header(0x420020, 2, 4) + b"\x00\x00\x00\x01\x00\x00\x00\x01",
    "wrong integer length": header(0x420020, 2, 8) + bytes(8),
    "wrong enumeration length": header(0x420020, 5, 2) + bytes(8),
    "wrong boolean length": header(0x420020, 6, 4) + bytes(8),
    "boolean not 0 or 1": header(0x420020, 6, 8) + b"\x00" * 7 + b"\x02",
    "wrong date-time length": header(0x420020, 9, 4) + bytes(8),
    "big integer length not a multiple of 8": header(0x420020, 4, 4) + bytes(8),
    "empty big integer": header(0x420020, 4, 0),
    "unknown item type 0x00": header(0x420020, 0, 0),
    "unknown item type 0x0C": header(0x420020, 0x0C, 4) + bytes(8),
    "unknown item type 0xFF": header(0x420020, 0xFF, 4) + bytes(8),
    "tag outside the KMIP ranges": header(0x000001, 2, 4) + bytes(8),
    "invalid UTF-8": header(0x420020, 7, 2) + b"\xc3\x28" + bytes(6),
    "UTF-8 surrogate": header(0x420020, 7, 3) + b"\xed\xa0\x80" + bytes(5),
    "nesting too deep": nested(DEFAULT_MAX_DEPTH + 1),
    "extremely deep nesting": nested(100_000),
    "trailing garbage": GOOD + b"\x42",
    "random garbage": bytes(range(256)) * 4,
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_input_raises_protocol_error_quickly(name: str) -> None:
    started = time.perf_counter()
    with pytest.raises(ProtocolError) as info:
        decode(MALFORMED[name])
    assert time.perf_counter() - started < 1.0
    assert str(info.value)  # a message a person can act on


def test_nesting_up_to_the_limit_is_accepted() -> None:
    item = decode(nested(DEFAULT_MAX_DEPTH))
    depth = 0
    while item.value:
        item = item.value[0]
        depth += 1
    assert depth == DEFAULT_MAX_DEPTH - 1


def test_the_error_names_the_offending_offset() -> None:
    with pytest.raises(ProtocolError) as info:
        decode(MALFORMED["non-zero padding"])
    assert info.value.offset == 11
    assert "offset 11" in str(info.value)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_random_bytes_either_decode_or_raise_protocol_error(data: bytes) -> None:
    try:
        item = decode(data)
    except ProtocolError:
        return
    assert decode(encode(item)) == item  # anything accepted re-encodes to the same tree


@given(st.binary(min_size=1, max_size=len(GOOD) - 1).filter(lambda b: b != GOOD))
def test_mutated_valid_messages_never_crash(mutation: bytes) -> None:
    data = bytearray(GOOD)
    for i, byte in enumerate(mutation):
        data[(i * 7) % len(data)] ^= byte
    try:
        decode(bytes(data))
    except ProtocolError:
        pass  # rejecting is the expected outcome for most mutations; crashing is not


TAGS = st.one_of(st.integers(0x420000, 0x42FFFF), st.integers(0x540000, 0x54FFFF))
PRIMITIVES = st.one_of(
    st.builds(Item, TAGS, st.just(ItemType.INTEGER), st.integers(-(2**31), 2**31 - 1)),
    st.builds(Item, TAGS, st.just(ItemType.LONG_INTEGER), st.integers(-(2**63), 2**63 - 1)),
    st.builds(Item, TAGS, st.just(ItemType.BIG_INTEGER), st.integers(-(2**300), 2**300)),
    st.builds(Item, TAGS, st.just(ItemType.ENUMERATION), st.integers(0, 2**32 - 1)),
    st.builds(Item, TAGS, st.just(ItemType.BOOLEAN), st.booleans()),
    st.builds(Item, TAGS, st.just(ItemType.TEXT_STRING), st.text(max_size=40)),
    st.builds(Item, TAGS, st.just(ItemType.BYTE_STRING), st.binary(max_size=40)),
    st.builds(Item, TAGS, st.just(ItemType.DATE_TIME), st.integers(-(2**63), 2**63 - 1)),
    st.builds(Item, TAGS, st.just(ItemType.INTERVAL), st.integers(0, 2**32 - 1)),
    st.builds(Item, TAGS, st.just(ItemType.DATE_TIME_EXTENDED), st.integers(-(2**63), 2**63 - 1)),
)
TREES = st.recursive(
    PRIMITIVES,
    lambda children: st.builds(
        Item, TAGS, st.just(ItemType.STRUCTURE), st.lists(children, max_size=6).map(tuple)
    ),
    max_leaves=40,
)


@given(TREES)
def test_any_item_tree_round_trips(item: Item) -> None:
    wire = encode(item)
    assert len(wire) % 8 == 0
    assert decode(wire) == item


def test_pykmip_extra_zero_padding_after_8_multiple_strings_is_tolerated() -> None:
    # PyKMIP 0.11 encodes a 16-byte Text String as 16 bytes plus 8 zero bytes, counted in the
    # enclosing structure's length. No item starts with a zero tag, so the bytes are skipped.
    name = struct.pack(">II", 0x42005507, 16) + b"sixteen-chars-ab" + bytes(8)
    value = struct.pack(">II", 0x42005405, 4) + struct.pack(">ii", 7, 0)
    body = name + value
    quirky = struct.pack(">II", 0x42000801, len(body)) + body
    item = decode(quirky)
    assert item == Item(0x420008, ItemType.STRUCTURE, (
        Item(0x420055, ItemType.TEXT_STRING, "sixteen-chars-ab"), Item(0x420054, ItemType.ENUMERATION, 7)))
    # Anything but exactly 8 zero bytes there is still an error.
    with pytest.raises(ProtocolError):
        decode(quirky[:-16] + b"\x00" * 4 + quirky[-12:])
