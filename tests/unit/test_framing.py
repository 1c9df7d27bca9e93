"""The stream framer: whole messages out of arbitrary chunks, oversized ones refused early."""

from __future__ import annotations

import struct

import pytest

from kmip_client.protocol.errors import ProtocolError
from kmip_client.protocol.framing import Framer
from kmip_client.protocol.ttlv import Item, ItemType, encode

MESSAGE = encode(
    Item(0x420078, ItemType.STRUCTURE, (Item(0x420094, ItemType.TEXT_STRING, "a fairly long text " * 3),))
)


def test_messages_split_across_any_chunk_boundaries() -> None:
    stream = MESSAGE + MESSAGE + MESSAGE
    for chunk in (1, 3, 7, 8, 9, len(MESSAGE) - 1, len(MESSAGE) + 5, len(stream)):
        framer = Framer()
        out: list[bytes] = []
        for start in range(0, len(stream), chunk):
            out.extend(framer.feed(stream[start : start + chunk]))
        assert out == [MESSAGE] * 3
        assert framer.buffered == 0


def test_partial_message_is_held_until_complete() -> None:
    framer = Framer()
    assert framer.feed(MESSAGE[:5]) == []
    assert framer.message_size_needed() == 3
    assert framer.feed(MESSAGE[5:20]) == []
    assert framer.message_size_needed() == len(MESSAGE) - 20
    assert framer.feed(MESSAGE[20:]) == [MESSAGE]


def test_oversized_declared_length_is_rejected_from_the_header_alone() -> None:
    framer = Framer(max_message_size=1024)
    header = struct.pack(">II", (0x420078 << 8) | 1, 10_000_000)
    with pytest.raises(ProtocolError, match="exceeds the maximum") as info:
        framer.feed(header)  # no body bytes were sent, let alone buffered
    assert info.value.offset == 4
    assert framer.buffered == 8


def test_message_exactly_at_the_limit_is_accepted() -> None:
    assert Framer(max_message_size=len(MESSAGE)).feed(MESSAGE) == [MESSAGE]
    with pytest.raises(ProtocolError):
        Framer(max_message_size=len(MESSAGE) - 8).feed(MESSAGE)


def test_a_non_structure_message_is_rejected_and_the_stream_stays_failed() -> None:
    framer = Framer()
    framer.feed(MESSAGE)
    with pytest.raises(ProtocolError, match="must be a Structure") as info:
        framer.feed(encode(Item(0x420078, ItemType.INTEGER, 1)))
    assert info.value.offset == len(MESSAGE) + 3
    with pytest.raises(ProtocolError, match="already failed"):
        framer.feed(MESSAGE)
