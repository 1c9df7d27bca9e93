"""What a KMIP over HTTPS body may become: XML refuses DTDs and entities in every encoding
expat reads, and both text encodings are bounded by ``max_size`` as TTLV."""

from __future__ import annotations

import pytest

from kmip_client.protocol.errors import ProtocolError
from kmip_client.protocol.message_encodings import from_ttlv, to_ttlv
from kmip_client.protocol.spec import Tag
from kmip_client.protocol.ttlv import Item, ItemType, encode
from kmip_client.protocol.xml_codec import item_from_xml, items_from_xml_document

NAME = '<NameValue type="TextString" value="{}"/>'
# Python codec -> the encoding the declaration names (utf-16 and utf-32 write a byte order mark)
CODECS = {"utf-8": "UTF-8", "utf-16": "UTF-16", "utf-16-le": "UTF-16", "utf-16-be": "UTF-16", "utf-32": "UTF-32"}


def names(count: int, text: str = "x") -> Item:
    leaf = Item(Tag.NAME_VALUE, ItemType.TEXT_STRING, text)
    return Item(Tag.NAME, ItemType.STRUCTURE, (leaf,) * count)


@pytest.mark.parametrize("codec", list(CODECS))
@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE NameValue [<!ENTITY a "aaaa">]>',
        "<!DOCTYPE NameValue>",
        '<!DOCTYPE NameValue SYSTEM "file:///etc/passwd">',
    ],
)
def test_a_dtd_is_refused_in_every_encoding(codec: str, doctype: str) -> None:
    text = f'<?xml version="1.0" encoding="{CODECS[codec]}"?>{doctype}' + NAME.format("&a;")
    with pytest.raises(ProtocolError):
        item_from_xml(text.encode(codec))


@pytest.mark.parametrize("codec", ["utf-8", "utf-16", "utf-16-le", "utf-16-be"])
def test_xml_without_a_dtd_reads_in_utf8_and_utf16(codec: str) -> None:
    text = f'<?xml version="1.0" encoding="{CODECS[codec]}"?>'
    item = item_from_xml((text + NAME.format("caf\u00e9 &amp; &#x4E00;")).encode(codec))
    assert item == Item(Tag.NAME_VALUE, ItemType.TEXT_STRING, "caf\u00e9 & \u4e00")


@pytest.mark.parametrize("encoding", ["xml", "json"])
def test_max_size_is_the_ttlv_length(encoding: str) -> None:
    wire = encode(names(10))
    body = from_ttlv(wire, encoding)
    assert to_ttlv(body, encoding, max_size=len(wire)) == wire
    with pytest.raises(ProtocolError, match=f"longer than {len(wire) - 1} bytes"):
        to_ttlv(body, encoding, max_size=len(wire) - 1)


def test_xml_max_size_stops_at_the_first_element_past_it() -> None:
    xml = from_ttlv(encode(names(1000)), "xml")
    with pytest.raises(ProtocolError) as refused:
        item_from_xml(xml, max_size=8 + 16 * 10)
    assert refused.value.detail.startswith("Name/NameValue[10]:")  # the eleventh, not the last


def test_xml_a_single_text_value_is_bounded_as_utf8() -> None:
    text = "\u4e00" * 100  # 200 bytes in UTF-16, 300 in UTF-8
    body = NAME.format(text).encode("utf-16")
    with pytest.raises(ProtocolError, match="longer than 250 bytes"):
        item_from_xml(body, max_size=250)
    assert item_from_xml(body, max_size=312).value == text


def test_xml_documents_are_bounded_as_a_whole() -> None:
    document = "<KMIP>" + NAME.format("a") * 3 + "</KMIP>"
    assert len(items_from_xml_document(document, max_size=48)) == 3
    with pytest.raises(ProtocolError):
        items_from_xml_document(document, max_size=47)


def test_ttlv_bodies_obey_max_size_too() -> None:
    wire = encode(names(2))
    assert to_ttlv(wire, "ttlv", max_size=len(wire)) == wire
    with pytest.raises(ProtocolError):
        to_ttlv(wire, "ttlv", max_size=len(wire) - 8)


@pytest.mark.parametrize(
    "xml",
    [
        "",
        "<NameValue",
        NAME.format("a") + NAME.format("b"),
        '<Name><NameValue type="TextString" value="a"><Name/></NameValue></Name>',
        '<Name value="x"/>',
        '<NameValue type="TextString"/>',
        '<TTLV type="TextString" value="a"/>',
    ],
)
def test_malformed_xml_is_a_protocol_error(xml: str) -> None:
    with pytest.raises(ProtocolError):
        item_from_xml(xml)
