"""The KMIP XML and JSON encodings: value forms, context, placeholders, errors, whole corpus."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given

from kmip_client.protocol.errors import ProtocolError
from kmip_client.protocol.json_codec import (
    item_from_json,
    item_to_json,
    items_from_json_document,
    items_to_json_document,
)
from kmip_client.protocol.placeholders import Placeholder
from kmip_client.protocol.ttlv import Item, ItemType, encode
from kmip_client.protocol.xml_codec import (
    XML_ILLEGAL,
    item_from_xml,
    item_to_xml,
    items_from_xml_document,
    items_to_xml_document,
)
from tests.unit.test_ttlv import EXPECTED_ITEMS, golden_examples
from tests.unit.test_ttlv_hostile import TREES

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "oasis"


@pytest.mark.parametrize("index", range(10))
def test_golden_examples_survive_xml_and_json_byte_exact(index: int) -> None:
    item = EXPECTED_ITEMS[index]
    wire = golden_examples()[index][1]
    assert encode(item_from_xml(item_to_xml(item))) == wire
    assert encode(item_from_json(item_to_json(item))) == wire


@pytest.mark.parametrize(
    ("xml", "item"),
    [
        ('<CompromiseDate type="Integer" value="8"/>', Item(0x420020, ItemType.INTEGER, 8)),
        ('<CompromiseDate type="Integer" value="0xFFFFFFFF"/>', Item(0x420020, ItemType.INTEGER, -1)),
        ('<CryptographicUsageMask type="Integer" value="Encrypt Decrypt"/>', Item(0x42002C, ItemType.INTEGER, 12)),
        ('<CryptographicUsageMask type="Integer" value="0x0000000C"/>', Item(0x42002C, ItemType.INTEGER, 12)),
        ('<ObjectType type="Enumeration" value="SymmetricKey"/>', Item(0x420057, ItemType.ENUMERATION, 2)),
        ('<OpaqueDataType type="Enumeration" value="0x80000001"/>', Item(0x420059, ItemType.ENUMERATION, 0x80000001)),
        ('<State type="Enumeration" value="PreActive"/>', Item(0x42008D, ItemType.ENUMERATION, 1)),
        ('<Fresh type="Boolean" value="true"/>', Item(0x4200A8, ItemType.BOOLEAN, True)),
        ('<KeyMaterial type="ByteString" value="0a0B"/>', Item(0x420043, ItemType.BYTE_STRING, b"\x0a\x0b")),
        ('<P type="BigInteger" value="00000000000000ff"/>', Item(0x42005E, ItemType.BIG_INTEGER, 255)),
        ('<P type="BigInteger" value="ffffffffffffff01"/>', Item(0x42005E, ItemType.BIG_INTEGER, -255)),
        ('<LeaseTime type="Interval" value="3600"/>', Item(0x420049, ItemType.INTERVAL, 3600)),
        ('<UsageLimitsTotal type="LongInteger" value="-16"/>', Item(0x420097, ItemType.LONG_INTEGER, -16)),
        (
            '<ActivationDate type="DateTime" value="2008-03-14T11:56:40+00:00"/>',
            Item(0x420001, ItemType.DATE_TIME, 1205495800),
        ),
        ('<ActivationDate type="DateTime" value="2008-03-14T11:56:40Z"/>', Item(0x420001, ItemType.DATE_TIME, 1205495800)),
        ('<TTLV tag="0x540001" type="TextString" value="vendor"/>', Item(0x540001, ItemType.TEXT_STRING, "vendor")),
        ('<ActivationDate type="DateTime" value="$NOW-3600"/>', Item(0x420001, ItemType.DATE_TIME, Placeholder("NOW", -3600))),
    ],
)
def test_xml_value_forms(xml: str, item: Item) -> None:
    assert item_from_xml(xml, placeholders=True) == item
    assert item_from_xml(item_to_xml(item), placeholders=True) == item  # our own output reads back the same


def test_unknown_tags_are_written_as_ttlv_elements() -> None:
    item = Item(0x420078, ItemType.STRUCTURE, (Item(0x540001, ItemType.STRUCTURE, (Item(0x540002, ItemType.INTEGER, 7),)),))
    xml = item_to_xml(item)
    assert '<TTLV tag="0x540001">' in xml and '<TTLV tag="0x540002" type="Integer" value="7"/>' in xml
    assert item_from_xml(xml) == item
    assert item_from_json(item_to_json(item)) == item


def attribute(name: str, value_xml: str) -> str:
    return f'<Attribute><AttributeName type="TextString" value="{name}"/>{value_xml}</Attribute>'


def test_attribute_value_names_follow_the_attribute_name() -> None:
    algorithm = item_from_xml(attribute("Cryptographic Algorithm", '<AttributeValue type="Enumeration" value="AES"/>'))
    assert algorithm.value[1] == Item(0x42000B, ItemType.ENUMERATION, 3)
    mask = item_from_xml(attribute("Cryptographic Usage Mask", '<AttributeValue type="Integer" value="Sign Verify"/>'))
    assert mask.value[1].value == 0x1 | 0x2
    assert 'value="Sign Verify"' in item_to_xml(mask)
    custom = item_from_xml(attribute("x-custom", '<AttributeValue type="Enumeration" value="0x00000003"/>'))
    assert custom.value[1].value == 3
    with pytest.raises(ProtocolError, match=r"Attribute/AttributeValue\[1\]: 'AES' is not a valid Enumeration"):
        item_from_xml(attribute("x-custom", '<AttributeValue type="Enumeration" value="AES"/>'))


def test_attribute_reference_names_a_tag() -> None:
    item = item_from_xml('<AttributeReference type="Enumeration" value="CryptographicAlgorithm"/>')
    assert item.value == 0x420028


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ('<RequestMessage><ObjectType type="Enumeration" value="Foo"/></RequestMessage>', r"RequestMessage/ObjectType\[0\]: 'Foo'"),
        ('<RequestMessage><NoSuchTag type="Integer" value="1"/></RequestMessage>', "unknown tag 'NoSuchTag'"),
        ('<RequestMessage><BatchCount type="Number" value="1"/></RequestMessage>', "unknown type 'Number'"),
        ('<RequestMessage><BatchCount type="Integer" value="2147483648"/></RequestMessage>', "out of range"),
        ('<RequestMessage><BatchCount type="Integer"/></RequestMessage>', "missing value"),
        ('<RequestMessage><BatchCount type="Integer" value="1"><X/></BatchCount></RequestMessage>', "cannot have child"),
        ('<RequestMessage type="Structure" value="1"/>', "not a value"),
        ('<RequestMessage><Fresh type="Boolean" value="maybe"/></RequestMessage>', "not a valid"),
        ('<RequestMessage><KeyMaterial type="ByteString" value="abc"/></RequestMessage>', "not a valid ByteString"),
        ('<RequestMessage><TTLV type="Integer" value="1"/></RequestMessage>', "needs a tag attribute"),
        ("<RequestMessage>", "not well-formed"),
        ('<!DOCTYPE x [<!ENTITY a "b">]><RequestMessage/>', "DOCTYPE"),
        ("<RequestMessage>" * 100 + "</RequestMessage>" * 100, "nested deeper"),
    ],
)
def test_xml_errors_name_the_element(xml: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        items_from_xml_document(xml)


def test_json_value_forms() -> None:
    item = item_from_json(
        '{"tag": "RequestMessage", "value": ['
        '{"tag": "BatchCount", "type": "Integer", "value": 3},'
        '{"tag": "CryptographicUsageMask", "type": "Integer", "value": "Encrypt|Decrypt"},'
        '{"tag": "Fresh", "type": "Boolean", "value": true},'
        '{"tag": "UsageLimitsTotal", "type": "LongInteger", "value": "0x7FFFFFFFFFFFFFFF"},'
        '{"tag": "0x540001", "type": "TextString", "value": "v"},'
        '{"tag": "ActivationDate", "type": "DateTime", "value": "$NOW"}]}',
        placeholders=True,
    )
    assert [child.value for child in item.value] == [3, 12, True, 2**63 - 1, "v", Placeholder("NOW")]
    text = item_to_json(item)
    assert item_from_json(text, placeholders=True) == item
    assert '"Encrypt|Decrypt"' in text and '"0x7FFFFFFFFFFFFFFF"' in text and '"tag": "0x540001"' in text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ('{"value": 1}', "expected an object with a tag"),
        ('{"tag": "BatchCount", "type": "Integer", "value": true}', "JSON boolean is not a Integer"),
        ('{"tag": "Fresh", "type": "Boolean", "value": 1}', "JSON number is not a Boolean"),
        ('{"tag": "RequestMessage", "value": 5}', "must be a list"),
        ('{"tag": "RequestMessage", "value": [{"tag": "BatchCount", "type": "Integer"}]}', r"RequestMessage\[0\]/BatchCount: missing value"),
        ('{"tag": "KMIP", "value": 3}', "list of messages"),
        ("[" * 100_000 + "]" * 100_000, "nested deeper|not valid JSON"),
    ],
)
def test_json_errors_name_the_element(text: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        items_from_json_document(text)


def test_whole_corpus_survives_xml_and_json_unchanged() -> None:
    files = sorted(VECTORS.rglob("*.xml"))
    messages = 0
    for path in files:
        items = items_from_xml_document(path.read_bytes(), placeholders=True)
        assert items_from_xml_document(items_to_xml_document(items), placeholders=True) == items, path.name
        assert items_from_json_document(items_to_json_document(items), placeholders=True) == items, path.name
        messages += len(items)
    print(f"\n{messages} messages from {len(files)} files through XML and JSON")
    assert (len(files), messages) == (309, 3676)


def _xml_safe(item: Item) -> bool:
    if item.type == ItemType.STRUCTURE:
        return all(_xml_safe(child) for child in item.value)
    return item.type != ItemType.TEXT_STRING or XML_ILLEGAL.search(item.value) is None


@given(TREES)
def test_any_item_tree_survives_json(item: Item) -> None:
    assert item_from_json(item_to_json(item)) == item


@given(TREES)
def test_any_item_tree_survives_xml_or_is_refused_clearly(item: Item) -> None:
    if _xml_safe(item):
        assert item_from_xml(item_to_xml(item)) == item
    else:
        with pytest.raises(ProtocolError, match="cannot be written in XML"):
            item_to_xml(item)


def test_placeholders_are_read_only_when_asked_for() -> None:
    # A peer's Name "$NOW" is text; only test-case files carry placeholders.
    xml = '<RequestMessage><NameValue type="TextString" value="$NOW"/></RequestMessage>'
    assert item_from_xml(xml).value[0].value == "$NOW"
    assert item_from_xml(xml, placeholders=True).value[0].value == Placeholder("NOW")
    with pytest.raises(ProtocolError, match="is not an ISO 8601 date-time"):
        item_from_xml('<ActivationDate type="DateTime" value="$NOW"/>')
    assert item_from_json('{"tag": "NameValue", "type": "TextString", "value": "$X"}').value == "$X"
