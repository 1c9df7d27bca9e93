"""The typed model against every message of the OASIS KMIP test cases.

For each Request/Response Message of each ``tests/vectors/oasis/**/*.xml`` file: XML → item
tree → placeholders resolved to fixed values → typed model → item tree → TTLV bytes → item
tree → typed model → item tree. The trees and the two models must be equal, and the model
must declare every field the vectors use: no structure anywhere keeps unknown children in
``extras`` and no payload falls back to :class:`RawPayload`.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from kmip_client.protocol import model  # noqa: F401  (registers every payload class)
from kmip_client.protocol.errors import KmipError, ProtocolError
from kmip_client.protocol.model.attributes import Attribute, Attributes, Name
from kmip_client.protocol.model.base import Struct
from kmip_client.protocol.model.messages import (
    REQUEST_PAYLOADS,
    RESPONSE_PAYLOADS,
    RawPayload,
    RequestMessage,
    encode_message,
    message_from_item,
)
from kmip_client.protocol.model.payloads.lifecycle import CreateRequest
from kmip_client.protocol.placeholders import Placeholder, resolve
from kmip_client.protocol.spec import Tag
from kmip_client.protocol.spec.enums import CryptographicAlgorithm, Operation
from kmip_client.protocol.ttlv import Item, ItemType, decode, encode
from kmip_client.protocol.xml_codec import item_from_xml, item_to_xml, items_from_xml_document

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "oasis"
FILES = sorted(VECTORS.rglob("*.xml"))
FIXED_NOW = 1_600_000_000  # 2020-09-13T12:26:40Z

_S = ItemType.STRUCTURE
_MESSAGE_TAGS = {Tag.REQUEST_MESSAGE, Tag.RESPONSE_MESSAGE}


# --------------------------------------------------------------------------- placeholders


class _FixedBindings(Mapping[str, Any]):
    """Binds every placeholder name to a value that fits the item it sits in."""

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str)

    def __getitem__(self, name: str) -> Any:
        return self._value

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    @staticmethod
    def _value(placeholder: Placeholder, item: Item) -> Any:
        typ = item.type
        if typ == ItemType.TEXT_STRING:
            return f"${placeholder.name}"
        if typ == ItemType.BYTE_STRING:
            return hashlib.sha256(placeholder.name.encode()).digest()[:16]
        if typ in (ItemType.DATE_TIME, ItemType.DATE_TIME_EXTENDED):
            return FIXED_NOW if placeholder.name == "NOW" else FIXED_NOW + 86_400
        if typ == ItemType.BOOLEAN:
            return True
        return 1


BINDINGS = _FixedBindings()


def _items(path: Path) -> list[Item]:
    items = items_from_xml_document(path.read_text(encoding="utf-8"), placeholders=True)
    return [item for item in items if item.tag in _MESSAGE_TAGS]


# --------------------------------------------------------------------------- model walking


def _uncovered(obj: Any, path: str) -> Iterator[str]:
    """Paths of structures with extras, and of payloads nobody declared."""
    if isinstance(obj, RawPayload):
        yield f"{path}: RawPayload"
    if isinstance(obj, Struct):
        for index, extra in obj.extras:
            yield f"{path}[{index}]: undeclared 0x{extra.tag:06X} {ItemType(extra.type).name}"
        for field in dataclasses.fields(obj):
            if field.name != "extras":
                yield from _uncovered(getattr(obj, field.name), f"{path}.{field.name}")
    elif isinstance(obj, tuple) and not isinstance(obj, Item):
        for i, element in enumerate(obj):
            yield from _uncovered(element, f"{path}[{i}]")


def _check_message(original: Item, where: str) -> None:
    resolved = resolve(original, BINDINGS)
    first = message_from_item(resolved)
    item = first.to_item()
    wire = encode(item)
    assert encode_message(first) == wire, f"{where}: direct encoding differs from the item-tree path"
    second = message_from_item(decode(wire))
    final = second.to_item()
    assert final == resolved, f"{where}: item tree changed in the round trip"
    # Text placeholders were bound to their own "$NAME" text, so reading the XML back gives
    # the placeholders again; binding them again must give the same tree.
    again = resolve(item_from_xml(item_to_xml(final), placeholders=True), BINDINGS)
    assert again == resolved, f"{where}: XML output does not read back"
    assert first == second, f"{where}: model changed in the round trip"
    problems = list(_uncovered(second, type(second).__name__))
    assert not problems, f"{where}: model does not declare: " + "; ".join(problems[:10])


def test_every_oasis_message_round_trips_with_full_coverage() -> None:
    assert len(FILES) == 309, "the OASIS vectors belong in tests/vectors/oasis"
    checked = 0
    failures: list[str] = []
    for path in FILES:
        for number, message in enumerate(_items(path)):
            where = f"{path.relative_to(VECTORS)}#{number}"
            try:
                _check_message(message, where)
            except AssertionError as exc:
                failures.append(str(exc).splitlines()[0])
            except (KmipError, KeyError, TypeError, ValueError) as exc:  # report every message's crash
                failures.append(f"{where}: {type(exc).__name__}: {exc}")
            checked += 1
    print(f"\nchecked {checked} messages in {len(FILES)} files")
    assert checked >= 3676
    assert not failures, f"{len(failures)} of {checked} messages failed:\n" + "\n".join(failures[:40])


# --------------------------------------------------------------------------- focused tests


def _request(operation: Operation, payload: tuple[Item, ...], minor: int = 4, major: int = 1) -> Item:
    header = Item(
        Tag.REQUEST_HEADER,
        _S,
        (
            Item(
                Tag.PROTOCOL_VERSION,
                _S,
                (
                    Item(Tag.PROTOCOL_VERSION_MAJOR, ItemType.INTEGER, major),
                    Item(Tag.PROTOCOL_VERSION_MINOR, ItemType.INTEGER, minor),
                ),
            ),
            Item(Tag.BATCH_COUNT, ItemType.INTEGER, 1),
        ),
    )
    batch_item = Item(
        Tag.BATCH_ITEM,
        _S,
        (
            Item(Tag.OPERATION, ItemType.ENUMERATION, int(operation)),
            Item(Tag.REQUEST_PAYLOAD, _S, payload),
        ),
    )
    return Item(Tag.REQUEST_MESSAGE, _S, (header, batch_item))


def _v1_attribute(name: str, value: Item) -> Item:
    return Item(
        Tag.ATTRIBUTE,
        _S,
        (Item(Tag.ATTRIBUTE_NAME, ItemType.TEXT_STRING, name), Item(Tag.ATTRIBUTE_VALUE, value.type, value.value)),
    )


_NAME_VALUE = (
    Item(Tag.NAME_VALUE, ItemType.TEXT_STRING, "key-1"),
    Item(Tag.NAME_TYPE, ItemType.ENUMERATION, 1),
)


def _create_v1() -> Item:
    attrs = (
        _v1_attribute("Cryptographic Algorithm", Item(0, ItemType.ENUMERATION, int(CryptographicAlgorithm.AES))),
        _v1_attribute("Cryptographic Length", Item(0, ItemType.INTEGER, 256)),
        _v1_attribute("Name", Item(0, _S, _NAME_VALUE)),
    )
    payload = (
        Item(Tag.OBJECT_TYPE, ItemType.ENUMERATION, 2),
        Item(Tag.TEMPLATE_ATTRIBUTE, _S, attrs),
    )
    return _request(Operation.CREATE, payload)


def _create_v2() -> Item:
    attrs = (
        Item(Tag.CRYPTOGRAPHIC_ALGORITHM, ItemType.ENUMERATION, int(CryptographicAlgorithm.AES)),
        Item(Tag.CRYPTOGRAPHIC_LENGTH, ItemType.INTEGER, 256),
        Item(Tag.NAME, _S, _NAME_VALUE),
    )
    payload = (
        Item(Tag.OBJECT_TYPE, ItemType.ENUMERATION, 2),
        Item(Tag.ATTRIBUTES, _S, attrs),
    )
    return _request(Operation.CREATE, payload, minor=0, major=2)


def test_v1_create_template_attribute_decodes_to_typed_attributes() -> None:
    message = message_from_item(_create_v1())
    assert isinstance(message, RequestMessage)
    payload = message.batch_items[0].payload
    assert isinstance(payload, CreateRequest)
    attrs = payload.template_attribute.attributes
    assert [a.name for a in attrs] == ["Cryptographic Algorithm", "Cryptographic Length", "Name"]
    assert attrs[0].value is CryptographicAlgorithm.AES
    assert attrs[1].value == 256
    assert attrs[2].value == Name(value="key-1", type=attrs[2].value.type)
    assert int(attrs[2].value.type) == 1
    assert message.to_item() == _create_v1()


def test_v2_create_attributes_give_the_same_attribute_list() -> None:
    v1 = message_from_item(_create_v1()).batch_items[0].payload
    v2 = message_from_item(_create_v2()).batch_items[0].payload
    assert isinstance(v2.attributes, Attributes)
    assert v2.attributes.attributes == v1.template_attribute.attributes
    assert all(isinstance(a, Attribute) for a in v2.attributes.attributes)
    assert message_from_item(_create_v2()).to_item() == _create_v2()


def test_unknown_extension_tag_in_payload_survives_at_its_position() -> None:
    vendor = Item(0x540001, ItemType.TEXT_STRING, "vendor data")
    payload = (
        Item(Tag.UNIQUE_IDENTIFIER, ItemType.TEXT_STRING, "uid-1"),
        vendor,
        Item(Tag.KEY_FORMAT_TYPE, ItemType.ENUMERATION, 1),
    )
    original = _request(Operation.GET, payload)
    message = message_from_item(decode(encode(original)))
    get = message.batch_items[0].payload
    assert get.unique_identifier == "uid-1"
    assert get.extras == ((1, vendor),)
    assert message.to_item() == original
    assert decode(encode(message.to_item())) == original


def test_type_mismatch_raises_protocol_error_naming_the_path() -> None:
    payload = (Item(Tag.UNIQUE_IDENTIFIER, ItemType.BOOLEAN, True),)
    with pytest.raises(ProtocolError) as caught:
        message_from_item(_request(Operation.ACTIVATE, payload))
    text = str(caught.value)
    assert "RequestPayload/UniqueIdentifier" in text
    assert "BOOLEAN" in text


def test_every_operation_has_payload_classes() -> None:
    missing_requests = [op.name for op in Operation if op not in REQUEST_PAYLOADS]
    # A Poll answer carries the polled operation's payload: no class of its own.
    missing_responses = [op.name for op in Operation if op not in RESPONSE_PAYLOADS and op != Operation.POLL]
    assert missing_requests == [] and missing_responses == []
