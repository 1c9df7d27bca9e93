"""Facts about the generated KMIP specification tables (kmip_client.protocol.spec)."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from enum import IntEnum, IntFlag
from pathlib import Path

import pytest

from kmip_client.protocol.spec import (
    ATTRIBUTE_NAMES,
    ATTRIBUTE_TAGS,
    ENUM_BY_NAME,
    ENUM_XML_NAMES,
    TAG_BY_NAME,
    TAG_ENUMERATION,
    TAG_SPEC_NAMES,
    TAG_XML_NAMES,
    TAGS_1X,
    TAGS_2X,
    Tag,
    attribute_tag,
    enum_for_tag,
    enum_value_from_name,
    enum_value_name,
    mask_from_names,
    mask_to_names,
    normalize_name,
    tag_from_name,
    tag_name,
)
from kmip_client.protocol.spec.enums import (
    BatchErrorContinuationOption,
    CryptographicAlgorithm,
    CryptographicUsageMask,
    HashingAlgorithm,
    KeyFormatType,
    MaskGenerator,
    NameType,
    ObjectType,
    Operation,
    ProtectionStorageMask,
    QueryFunction,
    ResultReason,
    ResultStatus,
    State,
    StorageStatusMask,
    UniqueIdentifier,
)

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "oasis"


def test_tags() -> None:
    assert Tag.ACTIVATION_DATE == 0x420001
    assert Tag.REQUEST_MESSAGE == 0x420078
    assert Tag.RESPONSE_MESSAGE == 0x42007B
    assert Tag.ATTRIBUTE_VALUE == 0x42000B
    assert Tag.PKCS_11_FUNCTION in TAGS_2X
    assert TAG_XML_NAMES[Tag.ACTIVATION_DATE] == "ActivationDate"
    assert TAG_XML_NAMES[Tag.PKCS_11_FUNCTION] == "PKCS_11Function"
    assert TAG_SPEC_NAMES[0x420001] == "Activation Date"
    assert TAG_BY_NAME["Activation Date"] == TAG_BY_NAME["ActivationDate"] == 0x420001
    # 1.x-only tags (reserved in 2.x) are kept
    assert Tag.TEMPLATE_ATTRIBUTE == 0x420091 and 0x420091 in TAGS_1X - TAGS_2X
    assert Tag.ATTRIBUTE_INDEX in TAGS_1X and Tag.ATTRIBUTE_INDEX not in TAGS_2X
    assert 0x420001 in TAGS_1X & TAGS_2X


def test_tag_helpers() -> None:
    assert tag_name(0x420001) == "ActivationDate"
    assert tag_name(0x540001) == "0x540001"
    assert tag_from_name("RequestMessage") == 0x420078
    assert tag_from_name("Request Message") == 0x420078
    assert tag_from_name("0x540001") == 0x540001
    with pytest.raises(KeyError):
        tag_from_name("NoSuchTag")


def test_enums() -> None:
    assert ObjectType.SYMMETRIC_KEY == 2
    assert CryptographicAlgorithm.AES == 3
    assert CryptographicAlgorithm.DES3 == 2
    assert ResultReason.ITEM_NOT_FOUND == 1
    assert ResultStatus.SUCCESS == 0 and ResultStatus.OPERATION_FAILED == 1
    assert State.PRE_ACTIVE == 1 and State.DESTROYED_COMPROMISED == 6
    assert NameType.UNINTERPRETED_TEXT_STRING == 1
    assert KeyFormatType.RAW == 1 and KeyFormatType.PKCS_12 == 0x16
    assert HashingAlgorithm.SHA_256 == 6
    assert HashingAlgorithm.SHA3_256 == HashingAlgorithm.SHA_3_256 == 0x0F  # 2.1 / 1.4 names
    assert QueryFunction.QUERY_OPERATIONS == 1
    assert BatchErrorContinuationOption.UNDO == 3
    assert MaskGenerator.MGF1 == 1
    assert UniqueIdentifier.ID_PLACEHOLDER == 1
    ops = {Operation.CREATE: 1, Operation.CREATE_KEY_PAIR: 2, Operation.REGISTER: 3,
           Operation.LOCATE: 8, Operation.GET: 0x0A, Operation.GET_ATTRIBUTES: 0x0B,
           Operation.DESTROY: 0x14, Operation.QUERY: 0x18, Operation.DISCOVER_VERSIONS: 0x1E,
           Operation.ENCRYPT: 0x1F, Operation.MAC_VERIFY: 0x24, Operation.RNG_SEED: 0x26,
           Operation.JOIN_SPLIT_KEY: 0x29, Operation.IMPORT: 0x2A, Operation.EXPORT: 0x2B,
           Operation.LOG: 0x2C, Operation.LOGIN: 0x2D, Operation.SET_ATTRIBUTE: 0x31,
           Operation.PKCS_11: 0x33, Operation.INTEROP: 0x34, Operation.PING: 0x3B}
    for member, value in ops.items():
        assert member == value, member
    assert CryptographicUsageMask.ENCRYPT == 4 and CryptographicUsageMask.DECRYPT == 8
    assert issubclass(CryptographicUsageMask, IntFlag)
    assert issubclass(StorageStatusMask, IntFlag) and StorageStatusMask.ARCHIVAL_STORAGE == 2
    assert ProtectionStorageMask.SOFTWARE == 1
    assert ENUM_XML_NAMES[ObjectType][2] == "SymmetricKey"
    assert ENUM_XML_NAMES[State][1] == "PreActive"
    assert ENUM_XML_NAMES[Operation][0x33] == "PKCS_11"
    assert ENUM_XML_NAMES[Operation][0x26] == "RNGSeed"
    assert ENUM_XML_NAMES[CryptographicAlgorithm][9] == "HMAC_SHA256"
    assert ENUM_BY_NAME[CryptographicAlgorithm]["HMACSHA256"] == 9
    assert ENUM_BY_NAME[State]["Pre-Active"] == 1


def test_tag_enumeration() -> None:
    assert enum_for_tag(Tag.OBJECT_TYPE) is ObjectType
    assert enum_for_tag(Tag.MASK_GENERATOR_HASHING_ALGORITHM) is HashingAlgorithm
    assert enum_for_tag(Tag.CRYPTOGRAPHIC_USAGE_MASK) is CryptographicUsageMask
    assert enum_for_tag(Tag.STORAGE_STATUS_MASK) is StorageStatusMask
    assert enum_for_tag(Tag.PROTECTION_STORAGE_MASK) is ProtectionStorageMask
    assert enum_for_tag(Tag.ATTRIBUTE_REFERENCE) is Tag
    assert enum_for_tag(Tag.UNIQUE_IDENTIFIER) is UniqueIdentifier
    assert enum_for_tag(Tag.ACTIVATION_DATE) is None
    for tag, cls in TAG_ENUMERATION.items():
        assert cls is Tag or issubclass(cls, (IntEnum, IntFlag)), tag
    assert enum_value_name(Tag.OBJECT_TYPE, 2) == "SymmetricKey"
    assert enum_value_name(Tag.OPAQUE_DATA_TYPE, 0x80000001) == "0x80000001"
    assert enum_value_name(Tag.ATTRIBUTE_REFERENCE, 0x42008D) == "State"
    assert enum_value_from_name(Tag.OBJECT_TYPE, "SymmetricKey") == 2
    assert enum_value_from_name(Tag.OBJECT_TYPE, "Symmetric Key") == 2
    assert enum_value_from_name(Tag.ATTRIBUTE_REFERENCE, "State") == Tag.STATE
    assert enum_value_from_name(Tag.OPAQUE_DATA_TYPE, "0x80123456") == 0x80123456
    with pytest.raises(KeyError):
        enum_value_from_name(Tag.OBJECT_TYPE, "NoSuchThing")


def test_masks() -> None:
    tag = Tag.CRYPTOGRAPHIC_USAGE_MASK
    assert mask_to_names(tag, 12) == "Encrypt Decrypt"
    assert mask_to_names(tag, 0x80000004) == "Encrypt 0x80000000"
    assert mask_to_names(tag, 0) == "0x00000000"
    assert mask_from_names(tag, "Encrypt Decrypt") == 12
    assert mask_from_names(tag, "Encrypt|Decrypt") == 12
    assert mask_from_names(tag, "0x0000000C") == 12
    assert mask_from_names(tag, "12") == 12
    assert mask_from_names(tag, "MACGenerate MACVerify") == 0x180
    with pytest.raises(ValueError):
        mask_from_names(tag, "Encrypt Nonsense")


def test_attributes() -> None:
    assert ATTRIBUTE_TAGS["Cryptographic Algorithm"] == Tag.CRYPTOGRAPHIC_ALGORITHM
    assert ATTRIBUTE_TAGS["Object Group"] == Tag.OBJECT_GROUP
    assert ATTRIBUTE_TAGS["Cryptographic Usage Mask"] == Tag.CRYPTOGRAPHIC_USAGE_MASK
    assert ATTRIBUTE_TAGS["Protection Storage Mask"] == Tag.PROTECTION_STORAGE_MASK  # 2.1 only
    assert ATTRIBUTE_NAMES[Tag.STATE] == "State"
    assert attribute_tag("x-custom") is None
    assert not any(n.startswith(("x-", "y-")) for n in ATTRIBUTE_TAGS)


@pytest.mark.parametrize("spec, xml", [
    ("Activation Date", "ActivationDate"), ("SHA-256", "SHA_256"), ("Pre-Active", "PreActive"),
    ("PKCS#11", "PKCS_11"), ("MAC Verify", "MACVerify"), ("3DES", "DES3"), ("X.509", "X_509"),
    ("PKCS#11 Function", "PKCS_11Function"), ("RNG Seed", "RNGSeed"),
    ("Uninterpreted Text String", "UninterpretedTextString"), ("P-256", "P_256"),
    ("Content Commitment (Non Repudiation)", "ContentCommitmentNonRepudiation"),
    ("MAC/sign", "MACSign"), ("ANSI X9.31", "ANSIX9_31"),
])
def test_normalize_name(spec: str, xml: str) -> None:
    assert normalize_name(spec) == xml


def _check_element(el: ET.Element, attribute_name: str | None, counts: dict[str, int],
                   errors: list[str]) -> None:
    counts["elements"] += 1
    if el.tag != "KMIP":
        try:
            tag = tag_from_name(el.tag)
        except KeyError:
            errors.append(f"tag {el.tag}")
            tag = None
        vtype, value = el.get("type"), el.get("value")
        if tag is not None and value is not None and not value.startswith("$"):
            etag = tag
            if el.tag == "AttributeValue" and attribute_name is not None:
                etag = attribute_tag(attribute_name) or tag
            if vtype == "Enumeration":
                counts["enumerations"] += 1
                try:
                    enum_value_from_name(etag, value)
                except KeyError:
                    errors.append(f"enumeration {el.tag}={value} ({attribute_name})")
            elif vtype == "Integer" and not re.fullmatch(r"-?\d+", value):
                counts["masks"] += 1
                try:
                    mask_from_names(etag, value)
                except ValueError:
                    errors.append(f"mask {el.tag}={value} ({attribute_name})")
    names = [c.get("value") for c in el if c.tag == "AttributeName"]
    for child in el:
        _check_element(child, names[0] if names else None, counts, errors)


def test_oasis_vectors_resolve() -> None:
    files = sorted(VECTORS.rglob("*.xml"))
    assert len(files) > 300
    counts = {"files": len(files), "elements": 0, "enumerations": 0, "masks": 0}
    errors: list[str] = []
    for path in files:
        _check_element(ET.parse(path).getroot(), None, counts, errors)
    print(counts)
    assert not errors, sorted(set(errors))[:20]


def test_oasis_names_are_canonical() -> None:
    """Every element name / enumeration value used by the test cases is exactly our XML name."""
    xml_tags = set(TAG_XML_NAMES.values())
    for path in sorted(VECTORS.rglob("*.xml")):
        for el in ET.parse(path).getroot().iter():
            if el.tag != "KMIP":
                assert el.tag in xml_tags, (path.name, el.tag)
            value = el.get("value", "")
            cls = TAG_ENUMERATION.get(TAG_BY_NAME.get(el.tag, 0))
            if (el.get("type") == "Enumeration" and cls is not None and el.tag != "AttributeValue"
                    and not value.startswith(("0x", "$"))):
                assert value in ENUM_XML_NAMES[cls].values(), (path.name, el.tag, value)
