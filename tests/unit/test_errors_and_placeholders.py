"""The error hierarchy keyed by Result Reason, and test-case placeholders."""

from __future__ import annotations

import pytest

from kmip_client.protocol.errors import (
    CryptographicFailure,
    GeneralFailure,
    InvalidMessage,
    ItemNotFound,
    KmipError,
    PermissionDenied,
    ProtocolError,
    error_for_reason,
)
from kmip_client.protocol.placeholders import Placeholder, contains_placeholders, parse_placeholder, resolve
from kmip_client.protocol.spec.enums import ResultReason
from kmip_client.protocol.ttlv import Item, ItemType


def test_each_error_carries_its_result_reason() -> None:
    assert ItemNotFound("no such key").reason is ResultReason.ITEM_NOT_FOUND
    assert PermissionDenied("not yours").reason is ResultReason.PERMISSION_DENIED
    assert ProtocolError("bad length").reason is ResultReason.INVALID_MESSAGE
    assert isinstance(ProtocolError("x"), InvalidMessage)
    assert KmipError("x", ResultReason.CRYPTOGRAPHIC_FAILURE).reason is ResultReason.CRYPTOGRAPHIC_FAILURE


def test_error_for_reason_picks_the_specific_class() -> None:
    error = error_for_reason(ResultReason.ITEM_NOT_FOUND, "gone")
    assert type(error) is ItemNotFound and error.message == "gone"
    missing = error_for_reason(ResultReason.OBJECT_NOT_FOUND, "no such object")  # the 2.x reason
    assert type(missing) is ItemNotFound and missing.reason is ResultReason.OBJECT_NOT_FOUND
    failed = error_for_reason(ResultReason.CRYPTOGRAPHIC_FAILURE, "bad tag")
    assert type(failed) is CryptographicFailure and failed.reason is ResultReason.CRYPTOGRAPHIC_FAILURE
    other = error_for_reason(ResultReason.ILLEGAL_OPERATION, "not now")
    assert type(other) is KmipError and other.reason is ResultReason.ILLEGAL_OPERATION
    vendor = error_for_reason(0x80000001, "vendor says no")
    assert type(vendor) is GeneralFailure and "0x80000001" in vendor.message


def test_protocol_error_builds_its_path_from_the_inside_out() -> None:
    error = ProtocolError("expected ENUMERATION, got TEXT_STRING").within("ObjectType")
    error.within("RequestPayload").within("BatchItem")
    assert str(error) == "BatchItem/RequestPayload/ObjectType: expected ENUMERATION, got TEXT_STRING"
    assert error.message == str(error)
    assert str(ProtocolError("truncated", offset=12)) == "truncated (at byte offset 12)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$NOW", Placeholder("NOW")),
        ("$NOW-3600", Placeholder("NOW", -3600)),
        ("$NOW+3600", Placeholder("NOW", 3600)),
        ("$UNIQUE_IDENTIFIER_12", Placeholder("UNIQUE_IDENTIFIER_12")),
        ("UNIQUE_IDENTIFIER_0", None),
        ("$now", None),
        ("$NOW-", None),
        ("cost $5", None),
    ],
)
def test_parse_placeholder(text: str, expected: Placeholder | None) -> None:
    assert parse_placeholder(text) == expected
    if expected is not None:
        assert str(expected) == text


def test_resolve_binds_values_and_applies_offsets() -> None:
    tree = Item(
        0x420078,
        ItemType.STRUCTURE,
        (
            Item(0x420092, ItemType.DATE_TIME, Placeholder("NOW", -3600)),
            Item(0x420094, ItemType.TEXT_STRING, Placeholder("UNIQUE_IDENTIFIER_0")),
            Item(0x42000D, ItemType.INTEGER, 1),
        ),
    )
    assert contains_placeholders(tree)
    resolved = resolve(tree, {"NOW": 1_000_000, "UNIQUE_IDENTIFIER_0": lambda p, item: f"uid-{p.name[-1]}"})
    assert [child.value for child in resolved.value] == [996_400, "uid-0", 1]
    assert not contains_placeholders(resolved)


def test_resolve_refuses_unbound_placeholders() -> None:
    item = Item(0x420094, ItemType.TEXT_STRING, Placeholder("UNIQUE_IDENTIFIER_3"))
    with pytest.raises(KeyError, match="UNIQUE_IDENTIFIER_3"):
        resolve(item, {})
