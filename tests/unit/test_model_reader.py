"""The one-pass reader (bytes → typed model) against the two-step decoder (bytes → items → model).

The reader must give exactly the two-step answer for every valid message, and must never
accept bytes the two-step decoder rejects: on those it declines, and ``decode_message`` then
reports the two-step decoder's error. Checked on every OASIS message and on thousands of
corruptions of them (flipped bytes, bad lengths, truncations, unknown tags).
"""

from __future__ import annotations

import random
import struct

import pytest

from kmip_client.protocol.errors import ProtocolError
from kmip_client.protocol.model import ResponseMessage
from kmip_client.protocol.model.base import to_bytes
from kmip_client.protocol.model.messages import RequestMessage, decode_message, message_from_item
from kmip_client.protocol.model.reader import Decline, read_struct
from kmip_client.protocol.placeholders import resolve
from kmip_client.protocol.spec import Tag
from kmip_client.protocol.ttlv import Item, ItemType, decode, encode
from tests.unit.test_model_vectors import BINDINGS, FILES, VECTORS, _items

_CLASSES = {Tag.REQUEST_MESSAGE: RequestMessage, Tag.RESPONSE_MESSAGE: ResponseMessage}


def _corpus() -> list[tuple[str, bytes]]:
    found = []
    for path in FILES:
        for number, message in enumerate(_items(path)):
            item = resolve(message, BINDINGS)
            found.append((f"{path.relative_to(VECTORS)}#{number}", encode(item)))
    return found


CORPUS = _corpus()


def _two_step(data: bytes) -> object:
    try:
        return message_from_item(decode(data))
    except ProtocolError as exc:
        return exc


def _one_pass(data: bytes) -> object:
    cls = _CLASSES.get(int.from_bytes(data[:3], "big"), RequestMessage)
    try:
        return read_struct(cls, data)
    except (Decline, ProtocolError) as exc:
        return exc


def test_every_oasis_message_reads_the_same_in_one_pass() -> None:
    assert len(CORPUS) >= 3676
    differing = []
    for where, data in CORPUS:
        expected, got = _two_step(data), _one_pass(data)
        if isinstance(got, Exception) or got != expected or to_bytes(got) != data:  # type: ignore[arg-type]
            differing.append(f"{where}: {got!r:.200}")
    # Not even a decline: every real message takes the one-pass path.
    assert not differing, f"{len(differing)} messages differ:\n" + "\n".join(differing[:20])


def _mutations(data: bytes, rng: random.Random) -> list[bytes]:
    size = len(data)
    flipped = bytearray(data)
    flipped[rng.randrange(size)] ^= 1 << rng.randrange(8)
    header_at = rng.randrange(0, size - 8, 8)  # most items start on 8-byte boundaries
    relength = bytearray(data)
    old = struct.unpack_from(">I", relength, header_at + 4)[0]
    struct.pack_into(">I", relength, header_at + 4, max(0, old + rng.choice((-8, -4, -1, 1, 4, 8, 1 << 20))))
    retyped = bytearray(data)
    retyped[header_at + 3] = rng.randrange(0, 16)
    retagged = bytearray(data)
    retagged[header_at : header_at + 3] = rng.choice((b"\x42\xff\xff", b"\x54\x00\x01", b"\x00\x00\x00"))
    cut = rng.randrange(8, size)
    truncated = data[:cut]
    outer = struct.pack(">II", struct.unpack_from(">I", data)[0], cut - 8) + data[8:cut]  # length fixed up too
    return [bytes(flipped), bytes(relength), bytes(retyped), bytes(retagged), truncated, outer, data + bytes(8)]


def test_one_pass_never_accepts_what_the_two_step_decoder_rejects() -> None:
    rng = random.Random(20261129)
    accepted = declined_valid = rejected = 0
    for where, data in rng.sample(CORPUS, 600):
        for number, mutated in enumerate(_mutations(data, rng)):
            expected, got = _two_step(mutated), _one_pass(mutated)
            context = f"{where} mutation {number}: {mutated.hex()}"
            if isinstance(expected, Exception):
                assert isinstance(got, Exception), f"{context}: accepted what the two-step decoder rejects"
                # What callers see: the two-step decoder's error, word for word.
                with pytest.raises(ProtocolError) as raised:
                    decode_message(mutated)
                assert str(raised.value) == str(expected), context
                rejected += 1
            elif isinstance(got, Exception):
                declined_valid += 1  # allowed (a rare shape); decode_message falls back
                assert decode_message(mutated) == expected, context
            else:
                assert got == expected, context
                assert to_bytes(got) == to_bytes(expected), context  # type: ignore[arg-type]
                accepted += 1
    print(
        f"\n{accepted} corruptions still valid and read alike, {rejected} rejected by both, {declined_valid} declined"
    )
    assert rejected > 2000 and accepted > 200  # the mutations exercise both outcomes


def test_decline_falls_back_to_the_two_step_answer() -> None:
    # The payload before its Operation: the payload's class is not known when the reader
    # reaches it, so it declines and decode_message reads the message the two-step way.
    header = Item(
        Tag.REQUEST_HEADER,
        ItemType.STRUCTURE,
        (
            Item(
                Tag.PROTOCOL_VERSION,
                ItemType.STRUCTURE,
                (
                    Item(Tag.PROTOCOL_VERSION_MAJOR, ItemType.INTEGER, 1),
                    Item(Tag.PROTOCOL_VERSION_MINOR, ItemType.INTEGER, 4),
                ),
            ),
            Item(Tag.BATCH_COUNT, ItemType.INTEGER, 1),
        ),
    )
    payload = Item(Tag.REQUEST_PAYLOAD, ItemType.STRUCTURE, (Item(Tag.UNIQUE_IDENTIFIER, ItemType.TEXT_STRING, "k1"),))
    batch_item = Item(Tag.BATCH_ITEM, ItemType.STRUCTURE, (payload, Item(Tag.OPERATION, ItemType.ENUMERATION, 10)))
    data = encode(Item(Tag.REQUEST_MESSAGE, ItemType.STRUCTURE, (header, batch_item)))
    with pytest.raises(Decline):
        read_struct(RequestMessage, data)
    message = decode_message(data)
    assert isinstance(message, RequestMessage)
    assert message.batch_items[0].payload.unique_identifier == "k1"
    assert message == message_from_item(decode(data))


@pytest.mark.parametrize("levels", [61, 62, 63])
def test_nesting_depth_is_limited_alike(levels: int) -> None:
    # Unknown structures nested inside a payload, under Message/BatchItem/Payload: 64
    # structures deep in all is the most either decoder accepts.
    inner = b""
    for _ in range(levels):
        inner = struct.pack(">II", 0x54FFFF << 8 | 1, len(inner)) + inner
    payload = struct.pack(">II", Tag.REQUEST_PAYLOAD << 8 | 1, len(inner)) + inner
    operation = struct.pack(">IIII", Tag.OPERATION << 8 | 5, 4, 10, 0)
    batch_item = struct.pack(">II", Tag.BATCH_ITEM << 8 | 1, len(operation + payload)) + operation + payload
    data = struct.pack(">II", Tag.REQUEST_MESSAGE << 8 | 1, len(batch_item)) + batch_item
    expected, got = _two_step(data), _one_pass(data)
    assert isinstance(expected, Exception) == (levels > 61)
    assert isinstance(got, Exception) == isinstance(expected, Exception)
    if not isinstance(expected, Exception):
        assert got == expected


def test_a_recurring_header_is_read_once_for_the_same_bytes() -> None:
    def message(minor: int, stamp: int) -> bytes:
        header = Item(
            Tag.RESPONSE_HEADER,
            ItemType.STRUCTURE,
            (
                Item(
                    Tag.PROTOCOL_VERSION,
                    ItemType.STRUCTURE,
                    (
                        Item(Tag.PROTOCOL_VERSION_MAJOR, ItemType.INTEGER, 1),
                        Item(Tag.PROTOCOL_VERSION_MINOR, ItemType.INTEGER, minor),
                    ),
                ),
                Item(Tag.TIME_STAMP, ItemType.DATE_TIME, stamp),
                Item(Tag.BATCH_COUNT, ItemType.INTEGER, 0),
            ),
        )
        return encode(Item(Tag.RESPONSE_MESSAGE, ItemType.STRUCTURE, (header,)))

    first, again = decode_message(message(4, 1_800_000_000)), decode_message(message(4, 1_800_000_000))
    assert again.header is first.header  # type: ignore[union-attr]
    later = decode_message(message(4, 1_800_000_001))
    assert later.header is not first.header and later.header.time_stamp.timestamp() == 1_800_000_001  # type: ignore[union-attr]
    assert later.header.protocol_version is first.header.protocol_version  # type: ignore[union-attr]
    other = decode_message(message(3, 1_800_000_001))
    assert other.header.protocol_version.minor == 3  # type: ignore[union-attr]
    assert other == message_from_item(decode(message(3, 1_800_000_001)))


def test_threads_meeting_a_class_first_at_once_all_decode_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import threading

    from kmip_client.protocol.model import reader

    monkeypatch.setattr(reader, "_READERS", {})  # every reader is generated anew, in a race
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    data = [wire for _, wire in CORPUS[:40]]
    expected = [_two_step(wire) for wire in data]
    start = threading.Barrier(8)
    failures: list[BaseException] = []

    def decode_all() -> None:
        start.wait()
        try:
            for wire, answer in zip(data, expected, strict=True):
                assert decode_message(wire) == answer
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)

    try:
        threads = [threading.Thread(target=decode_all) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        sys.setswitchinterval(interval)
    assert not failures, failures[:3]
