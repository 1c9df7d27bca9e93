"""The generated per-class writers against the generic walker and the checked item path."""

from __future__ import annotations

import pytest

from kmip_client.protocol.errors import ProtocolError
from kmip_client.protocol.model.base import WRITERS, EncodedItem, to_bytes, to_item, write_generic
from kmip_client.protocol.model.messages import (
    ProtocolVersion,
    RequestBatchItem,
    RequestHeader,
    RequestMessage,
    message_from_item,
)
from kmip_client.protocol.model.objects import KeyBlock, KeyValue, SymmetricKey
from kmip_client.protocol.model.payloads.lifecycle import GetRequest, GetResponse
from kmip_client.protocol.model.writer import writer_for
from kmip_client.protocol.spec import Tag
from kmip_client.protocol.spec.enums import (
    CryptographicAlgorithm,
    KeyFormatType,
    ObjectType,
    Operation,
    UniqueIdentifier,
)
from kmip_client.protocol.ttlv import Item, ItemType, decode, encode
from tests.unit.test_model_reader import CORPUS


def _generic_bytes(obj: RequestMessage) -> bytes:
    out = bytearray()
    write_generic(obj, obj.TAG, out, 0)
    return bytes(out)


def test_generated_writers_write_every_oasis_message_as_the_generic_walker_does() -> None:
    for where, data in CORPUS:
        message = message_from_item(decode(data))
        assert to_bytes(message) == data, where
        assert _generic_bytes(message) == data, where  # type: ignore[arg-type]
    assert WRITERS[RequestMessage].__name__ == "write_RequestMessage"  # generated, not the walker


def _get(uid: object) -> RequestMessage:
    header = RequestHeader(protocol_version=ProtocolVersion(major=1, minor=4), batch_count=1)
    item = RequestBatchItem(operation=Operation.GET, payload=GetRequest(unique_identifier=uid))
    return RequestMessage(header=header, batch_items=(item,))


def test_a_text_unique_identifier_is_written_in_place_and_others_by_kind() -> None:
    text = decode(to_bytes(_get("key-1")))
    assert text.find(Tag.BATCH_ITEM).find(Tag.REQUEST_PAYLOAD).value == (  # type: ignore[union-attr]
        Item(Tag.UNIQUE_IDENTIFIER, ItemType.TEXT_STRING, "key-1"),
    )
    # 2.x: a Unique Identifier may be an Enumeration (the ID Placeholder) or an Integer.
    placeholder = decode(to_bytes(_get(UniqueIdentifier.ID_PLACEHOLDER)))
    payload = placeholder.find(Tag.BATCH_ITEM).find(Tag.REQUEST_PAYLOAD)  # type: ignore[union-attr]
    assert payload.value[0].type == ItemType.ENUMERATION  # type: ignore[union-attr]
    assert to_bytes(_get(7)) == encode(to_item(_get(7)))


@pytest.mark.parametrize(
    ("bad", "where"),
    [
        (ProtocolVersion(major="1", minor=4), "0x42006A as INTEGER"),  # type: ignore[arg-type]
        (ProtocolVersion(major=2**40, minor=4), "0x42006A as INTEGER"),
        (KeyBlock(key_format_type="raw"), "0x420042 as ENUMERATION"),  # type: ignore[arg-type]
        (KeyBlock(key_format_type=-1), "0x420042 as ENUMERATION"),
        (KeyValue(key_material="not bytes"), "0x420043 as BYTE_STRING"),
    ],
)
def test_wrong_values_are_reported_as_protocol_errors(bad: object, where: str) -> None:
    with pytest.raises(ProtocolError) as raised:
        to_bytes(bad)  # type: ignore[arg-type]
    assert where in str(raised.value)


def test_bytes_where_a_structure_belongs_fail_as_on_the_item_path() -> None:
    bad = SymmetricKey(key_block=b"\x00" * 8)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        to_item(bad)
    with pytest.raises(TypeError):
        to_bytes(bad)


def test_kept_aside_children_and_encoded_items_are_written_where_they_belong() -> None:
    vendor = Item(0x54FF01, ItemType.TEXT_STRING, "vendor")
    block = KeyBlock(
        key_format_type=KeyFormatType.RAW,
        key_value=KeyValue(key_material=bytes(32)),
        cryptographic_algorithm=CryptographicAlgorithm.AES,
        cryptographic_length=256,
        extras=((1, vendor),),
    )
    assert to_bytes(block) == encode(to_item(block))
    assert decode(to_bytes(block)).value[1] == vendor
    key = SymmetricKey(key_block=block)
    encoded = EncodedItem(to_bytes(key))
    inline = GetResponse(object_type=ObjectType.SYMMETRIC_KEY, unique_identifier="k", managed_object=key)
    given = GetResponse(object_type=ObjectType.SYMMETRIC_KEY, unique_identifier="k", managed_object=encoded)
    assert to_bytes(given) == to_bytes(inline)


def test_only_structure_classes_get_writers() -> None:
    with pytest.raises(TypeError):
        writer_for(Item)  # type: ignore[arg-type]
