"""The typed model's own guarantees: secrets out of repr, versions, the direct writer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kmip_client.protocol.errors import ProtocolError
from kmip_client.protocol.model import (
    Attribute,
    CredentialValue,
    KeyBlock,
    KeyValue,
    Name,
    ProtocolVersion,
    RequestBatchItem,
    RequestHeader,
    RequestMessage,
    SymmetricKey,
    TemplateAttribute,
    decode_message,
    encode_message,
    to_item,
    version_conflicts,
)
from kmip_client.protocol.model.payloads.lifecycle import CreateRequest, RegisterRequest
from kmip_client.protocol.spec.enums import CryptographicAlgorithm, KeyFormatType, ObjectType, Operation
from kmip_client.protocol.ttlv import Item, ItemType, encode
from tests.unit.test_ttlv_hostile import TREES

KEY = bytes.fromhex("00112233445566778899aabbccddeeff")


def register(version: tuple[int, int] = (1, 4), **payload: object) -> RequestMessage:
    key = SymmetricKey(
        KeyBlock(
            key_format_type=KeyFormatType.RAW,
            key_value=KeyValue(key_material=KEY),
            cryptographic_algorithm=CryptographicAlgorithm.AES,
            cryptographic_length=128,
        )
    )
    body = RegisterRequest(object_type=ObjectType.SYMMETRIC_KEY, managed_object=key, **payload)  # type: ignore[arg-type]
    return RequestMessage(
        header=RequestHeader(protocol_version=ProtocolVersion(*version), batch_count=1),
        batch_items=(RequestBatchItem(operation=Operation.REGISTER, payload=body),),
    )


def test_key_material_and_passwords_never_appear_in_repr() -> None:
    message = register()
    assert KEY.hex() not in repr(message) and repr(KEY) not in repr(message)
    assert "hunter2" not in repr(CredentialValue(username="admin", password="hunter2"))


def test_direct_writer_matches_the_item_tree_path_and_decodes_back() -> None:
    message = register(template_attribute=TemplateAttribute(attributes=(Attribute("Name", Name("k1")),)))
    wire = encode_message(message)
    assert wire == encode(to_item(message))
    assert decode_message(wire) == message


def test_wrong_value_types_are_reported_with_the_item_that_was_wrong() -> None:
    bad = RequestMessage(header=RequestHeader(protocol_version=ProtocolVersion(major="1", minor=4)))  # type: ignore[arg-type]
    with pytest.raises(ProtocolError, match="0x42006A as INTEGER"):
        encode_message(bad)


def test_version_conflicts_name_fields_the_version_lacks() -> None:
    from kmip_client.protocol.model import Attributes

    v2_only = CreateRequest(object_type=ObjectType.SYMMETRIC_KEY, attributes=Attributes(()))
    assert version_conflicts(v2_only, (1, 4)) == ["CreateRequest.attributes"]
    assert version_conflicts(v2_only, (2, 1)) == []
    v1_only = CreateRequest(object_type=ObjectType.SYMMETRIC_KEY, template_attribute=TemplateAttribute())
    assert version_conflicts(v1_only, (2, 0)) == ["CreateRequest.template_attribute"]


def test_datetimes_are_aware_utc_and_encode_as_seconds() -> None:
    when = datetime(2008, 3, 14, 11, 56, 40, tzinfo=UTC)
    header = RequestHeader(time_stamp=when, batch_count=0)
    item = to_item(header)
    assert Item(0x420092, ItemType.DATE_TIME, 1205495800) in item.value
    assert RequestHeader.from_item(item).time_stamp == when


def test_unknown_enumeration_values_survive_as_plain_ints() -> None:
    header_item = Item(
        0x420077,
        ItemType.STRUCTURE,
        (Item(0x42000E, ItemType.ENUMERATION, 0x8000_0001), Item(0x42000D, ItemType.INTEGER, 1)),
    )
    header = RequestHeader.from_item(header_item)
    assert header.batch_error_continuation_option == 0x8000_0001
    assert to_item(header) == header_item


def test_custom_and_vendor_attributes_of_any_type_survive_unchanged() -> None:
    from kmip_client.protocol.model import Attributes, from_item

    def text(tag: int, value: str) -> Item:
        return Item(tag, ItemType.TEXT_STRING, value)

    vendor_struct = Item(0x42000B, ItemType.STRUCTURE, (Item(0x540010, ItemType.BYTE_STRING, b"\x01\x02"),))
    v1 = Item(
        0x420091,  # Template-Attribute
        ItemType.STRUCTURE,
        (
            Item(0x420008, ItemType.STRUCTURE, (text(0x42000A, "x-vmware-key-id"), Item(0x42000B, ItemType.LONG_INTEGER, 2**40))),
            Item(0x420008, ItemType.STRUCTURE, (text(0x42000A, "y-netapp-blob"), Item(0x420009, ItemType.INTEGER, 2), vendor_struct)),
        ),
    )
    template = from_item(TemplateAttribute, v1)
    first, second = template.attributes
    assert (first.name, first.value, first.type) == ("x-vmware-key-id", 2**40, ItemType.LONG_INTEGER)
    assert (second.name, second.index, second.value) == ("y-netapp-blob", 2, vendor_struct)
    assert to_item(template) == v1

    v2 = Item(
        0x420125,  # Attributes
        ItemType.STRUCTURE,
        (
            Item(0x420028, ItemType.ENUMERATION, 3),
            Item(
                0x420008,
                ItemType.STRUCTURE,
                (text(0x42009D, "VMware"), text(0x42000A, "x-kms-cluster"), text(0x42000B, "prod")),
            ),
            Item(0x540099, ItemType.INTERVAL, 60),
        ),
    )
    attributes = from_item(Attributes, v2)
    assert [(a.name, a.vendor, a.value) for a in attributes.attributes] == [
        ("Cryptographic Algorithm", None, CryptographicAlgorithm.AES),
        ("x-kms-cluster", "VMware", "prod"),
        ("0x540099", None, 60),
    ]
    assert to_item(attributes) == v2


def _corpus_wires() -> list[bytes]:
    from pathlib import Path

    from kmip_client.protocol.placeholders import resolve
    from kmip_client.protocol.xml_codec import items_from_xml_document

    folder = Path(__file__).resolve().parents[1] / "vectors" / "oasis" / "v2.1" / "mandatory"
    bind = {"NOW": 1_600_000_000}
    wires = []
    for path in sorted(folder.glob("*-M-1-21.xml")):
        for item in items_from_xml_document(path.read_bytes(), placeholders=True):
            try:
                wires.append(encode(resolve(item, bind)))
            except KeyError:
                continue  # holds a placeholder other than $NOW; plenty of others remain
    return wires


WIRES = _corpus_wires()


@given(st.sampled_from(WIRES), st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1, max_size=4))
def test_mutated_real_messages_decode_to_models_or_raise_protocol_error(wire: bytes, flips: list[tuple[int, int]]) -> None:
    data = bytearray(wire)
    for position, mask in flips:
        data[position % len(data)] ^= mask
    try:
        message = decode_message(bytes(data))
    except ProtocolError:
        return
    assert decode_message(encode_message(message)) == message


@given(TREES)
def test_arbitrary_trees_under_a_message_tag_decode_or_raise_protocol_error(tree: Item) -> None:
    from kmip_client.protocol.model import message_from_item

    item = Item(0x420078, ItemType.STRUCTURE, tree.value if tree.type == ItemType.STRUCTURE else (tree,))
    try:
        message = message_from_item(item)
    except ProtocolError:
        return
    assert to_item(message) == item


def test_hostile_values_become_protocol_errors_not_crashes() -> None:
    from kmip_client.protocol.model import message_from_item

    far_future = Item(0x420077, ItemType.STRUCTURE, (Item(0x420092, ItemType.DATE_TIME, 2**62),))
    with pytest.raises(ProtocolError, match="RequestMessage/RequestHeader/TimeStamp: date-time"):
        message_from_item(Item(0x420078, ItemType.STRUCTURE, (far_future,)))
    mask = Item(0x42002C, ItemType.INTEGER, -1)
    attrs = Item(0x420125, ItemType.STRUCTURE, (mask,))
    from kmip_client.protocol.model import Attributes, from_item

    decoded = from_item(Attributes, attrs)
    assert decoded.attributes[0].value == -1 and to_item(decoded) == attrs
