"""Binary TTLV: the specification's golden examples, byte-exact both ways, and edge values."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kmip_client.protocol.errors import ProtocolError
from kmip_client.protocol.ttlv import Item, ItemType, decode, decode_item, encode

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "ttlv-encoding-examples-v1.4.txt"

# The value each golden example describes, in this library's item-tree form.
EXPECTED_ITEMS = [
    Item(0x420020, ItemType.INTEGER, 8),
    Item(0x420020, ItemType.LONG_INTEGER, 123456789000000000),
    Item(0x420020, ItemType.BIG_INTEGER, 1234567890000000000000000000),
    Item(0x420020, ItemType.ENUMERATION, 255),
    Item(0x420020, ItemType.BOOLEAN, True),
    Item(0x420020, ItemType.TEXT_STRING, "Hello World"),
    Item(0x420020, ItemType.BYTE_STRING, b"\x01\x02\x03"),
    Item(0x420020, ItemType.DATE_TIME, 1205495800),  # Friday, March 14, 2008, 11:56:40 GMT
    Item(0x420020, ItemType.INTERVAL, 864000),  # 10 days
    Item(
        0x420020,
        ItemType.STRUCTURE,
        (Item(0x420004, ItemType.ENUMERATION, 254), Item(0x420005, ItemType.INTEGER, 255)),
    ),
]


def golden_examples() -> list[tuple[str, bytes]]:
    examples = []
    for line in VECTORS.read_text().splitlines():
        if not line.strip():
            continue
        description, _, hex_part = line.partition("\t")
        # Only two-digit byte tokens count: the spec's last line has a stray footnote "9".
        tokens = re.findall(r"\b[0-9A-Fa-f]{2}\b", hex_part)
        examples.append((description, bytes(int(t, 16) for t in tokens)))
    return examples


def test_there_are_ten_golden_examples() -> None:
    assert len(golden_examples()) == 10


@pytest.mark.parametrize(("index", "example"), list(enumerate(golden_examples())), ids=lambda v: str(v)[:40])
def test_golden_example_decodes_and_encodes_byte_exact(index: int, example: tuple[str, bytes]) -> None:
    _, wire = example
    assert decode(wire) == EXPECTED_ITEMS[index]
    assert encode(EXPECTED_ITEMS[index]) == wire


@pytest.mark.parametrize(
    ("value", "wire_value"),
    [
        (0, bytes(8)),
        (-1, b"\xff" * 8),
        (2**63 - 1, b"\x7f" + b"\xff" * 7),
        (2**63, bytes(8) + b"\x80" + bytes(7)),  # needs a leading zero byte: padded to 16
        (-(2**63), b"\x80" + bytes(7)),
        (-(2**63) - 1, b"\xff" * 8 + b"\x7f" + b"\xff" * 7),
    ],
)
def test_big_integer_is_sign_extended_to_multiples_of_eight(value: int, wire_value: bytes) -> None:
    item = Item(0x420020, ItemType.BIG_INTEGER, value)
    wire = encode(item)
    assert wire[8:] == wire_value
    assert decode(wire) == item


@pytest.mark.parametrize(
    ("item", "wire"),
    [
        (Item(0x420020, ItemType.INTEGER, -1), "42002002000000 04 ffffffff 00000000"),
        (Item(0x420020, ItemType.INTEGER, 2**31 - 1), "42002002000000 04 7fffffff 00000000"),
        (Item(0x420020, ItemType.LONG_INTEGER, -2), "42002003000000 08 fffffffffffffffe"),
        (Item(0x420020, ItemType.ENUMERATION, 0x80000001), "42002005000000 04 80000001 00000000"),
        (Item(0x420020, ItemType.BOOLEAN, False), "42002006000000 08 0000000000000000"),
        (Item(0x420020, ItemType.TEXT_STRING, ""), "42002007000000 00"),
        (Item(0x420020, ItemType.BYTE_STRING, b"12345678"), "42002008000000 08 3132333435363738"),
        (Item(0x420020, ItemType.DATE_TIME_EXTENDED, 1205495800123456), "4200200b000000 08 000448645cf1d040"),
        (Item(0x420020, ItemType.STRUCTURE, ()), "42002001000000 00"),
        (Item(0x540001, ItemType.TEXT_STRING, "é"), "54000107000000 02 c3a9000000000000"),
    ],
)
def test_edge_values_round_trip_byte_exact(item: Item, wire: str) -> None:
    raw = bytes.fromhex(wire.replace(" ", ""))
    assert encode(item) == raw
    assert decode(raw) == item


def test_decode_item_reports_where_the_next_item_starts() -> None:
    one = encode(Item(0x420020, ItemType.INTEGER, 1))
    two = encode(Item(0x420021, ItemType.TEXT_STRING, "abc"))
    first, offset = decode_item(one + two)
    second, end = decode_item(one + two, offset)
    assert (first.value, second.value, offset, end) == (1, "abc", 16, 32)


def test_trailing_bytes_after_a_message_are_rejected() -> None:
    with pytest.raises(ProtocolError, match="unexpected bytes") as info:
        decode(encode(Item(0x420020, ItemType.INTEGER, 1)) + b"\x00")
    assert info.value.offset == 16


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (Item(0x420020, ItemType.INTEGER, 2**31), "INTEGER"),
        (Item(0x420020, ItemType.INTEGER, "8"), "not of that type"),
        (Item(0x420020, ItemType.TEXT_STRING, b"x"), "not of that type"),
        (Item(0x420020, ItemType.BOOLEAN, 1), "not of that type"),
        (Item(0x123456, ItemType.INTEGER, 1), "not a KMIP tag"),
        (Item(0x420020, ItemType.TEXT_STRING, "\ud800"), "TEXT_STRING"),
    ],
)
def test_unencodable_values_raise_the_protocol_error(item: Item, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        encode(item)


def test_item_find_helpers() -> None:
    a, b, c = (Item(0x420004, ItemType.INTEGER, n) for n in (1, 2, 3))
    s = Item(0x420020, ItemType.STRUCTURE, (a, Item(0x420005, ItemType.INTEGER, 9), b, c))
    assert s.find(0x420004) is a
    assert s.find(0x420099) is None
    assert s.find_all(0x420004) == [a, b, c]
