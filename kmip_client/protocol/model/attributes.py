"""Attributes in both KMIP encodings, and the structured attribute values.

KMIP 1.x sends an attribute as ``Attribute{Attribute Name, Attribute Index, Attribute Value}``
inside a Template-Attribute; KMIP 2.x sends it as an item tagged by the attribute itself
inside an ``Attributes`` structure (custom attributes keep the name/value form with a Vendor
Identification). Both decode to the same :class:`Attribute`, so handlers never care which
form a client used; the container decides the form on the way out.
"""

from __future__ import annotations

import dataclasses
import functools
from datetime import datetime
from enum import IntEnum, IntFlag
from typing import Any

from ..errors import ProtocolError
from ..spec import Tag, tag_name
from ..spec.attributes import ATTRIBUTE_NAMES, ATTRIBUTE_TAGS
from ..ttlv import Item, ItemType, close_structure, leaf_writer, open_structure, write_items
from .base import (
    Struct,
    decode_primitive,
    decode_struct,
    encode_primitive,
    kfield,
    structure,
    to_item,
    write_struct,
)

_S = ItemType.STRUCTURE
_TEXT = ItemType.TEXT_STRING
_BYTES = ItemType.BYTE_STRING
_INT = ItemType.INTEGER
_LONG = ItemType.LONG_INTEGER
_ENUM = ItemType.ENUMERATION
_BOOL = ItemType.BOOLEAN
_DT = ItemType.DATE_TIME
_INTERVAL = ItemType.INTERVAL
# Plain-int tags for the hot encode path (an IntEnum member lookup costs more than a global).
_ATTRIBUTE = int(Tag.ATTRIBUTE)
_ATTRIBUTE_NAME = int(Tag.ATTRIBUTE_NAME)
_ATTRIBUTE_INDEX = int(Tag.ATTRIBUTE_INDEX)
_ATTRIBUTE_VALUE = int(Tag.ATTRIBUTE_VALUE)
_VENDOR_IDENTIFICATION = int(Tag.VENDOR_IDENTIFICATION)
_new_item = tuple.__new__
_write_name = leaf_writer(_ATTRIBUTE_NAME, ItemType.TEXT_STRING)
_write_index = leaf_writer(_ATTRIBUTE_INDEX, ItemType.INTEGER)
_value_writer = functools.lru_cache(maxsize=None)(lambda typ: leaf_writer(_ATTRIBUTE_VALUE, typ))
#: A 2.x identifier: a Text String, an ID-placeholder Enumeration, or an Integer index.
IDENTIFIER = (_TEXT, _ENUM, _INT)


@structure(Tag.NAME)
class Name(Struct):
    value: str | None = kfield(Tag.NAME_VALUE, _TEXT)
    type: IntEnum | None = kfield(Tag.NAME_TYPE, _ENUM)


@structure(Tag.LINK)
class Link(Struct):
    link_type: IntEnum | None = kfield(Tag.LINK_TYPE, _ENUM)
    linked_object_identifier: str | None = kfield(Tag.LINKED_OBJECT_IDENTIFIER, IDENTIFIER)


@structure(Tag.DIGEST)
class Digest(Struct):
    hashing_algorithm: IntEnum | None = kfield(Tag.HASHING_ALGORITHM, _ENUM)
    digest_value: bytes | None = kfield(Tag.DIGEST_VALUE, _BYTES)
    key_format_type: IntEnum | None = kfield(Tag.KEY_FORMAT_TYPE, _ENUM)


@structure(Tag.CRYPTOGRAPHIC_PARAMETERS)
class CryptographicParameters(Struct):
    block_cipher_mode: IntEnum | None = kfield(Tag.BLOCK_CIPHER_MODE, _ENUM)
    padding_method: IntEnum | None = kfield(Tag.PADDING_METHOD, _ENUM)
    hashing_algorithm: IntEnum | None = kfield(Tag.HASHING_ALGORITHM, _ENUM)
    key_role_type: IntEnum | None = kfield(Tag.KEY_ROLE_TYPE, _ENUM)
    digital_signature_algorithm: IntEnum | None = kfield(Tag.DIGITAL_SIGNATURE_ALGORITHM, _ENUM)
    cryptographic_algorithm: IntEnum | None = kfield(Tag.CRYPTOGRAPHIC_ALGORITHM, _ENUM)
    random_iv: bool | None = kfield(Tag.RANDOM_IV, _BOOL)
    iv_length: int | None = kfield(Tag.IV_LENGTH, _INT)
    tag_length: int | None = kfield(Tag.TAG_LENGTH, _INT)
    fixed_field_length: int | None = kfield(Tag.FIXED_FIELD_LENGTH, _INT)
    invocation_field_length: int | None = kfield(Tag.INVOCATION_FIELD_LENGTH, _INT)
    counter_length: int | None = kfield(Tag.COUNTER_LENGTH, _INT)
    initial_counter_value: int | None = kfield(Tag.INITIAL_COUNTER_VALUE, _INT)
    salt_length: int | None = kfield(Tag.SALT_LENGTH, _INT)
    mask_generator: IntEnum | None = kfield(Tag.MASK_GENERATOR, _ENUM)
    mask_generator_hashing_algorithm: IntEnum | None = kfield(Tag.MASK_GENERATOR_HASHING_ALGORITHM, _ENUM)
    p_source: bytes | None = kfield(Tag.P_SOURCE, _BYTES)
    trailer_field: int | None = kfield(Tag.TRAILER_FIELD, _INT)


@structure(Tag.CRYPTOGRAPHIC_DOMAIN_PARAMETERS)
class CryptographicDomainParameters(Struct):
    q_length: int | None = kfield(Tag.QLENGTH, _INT)
    recommended_curve: IntEnum | None = kfield(Tag.RECOMMENDED_CURVE, _ENUM)


@structure(Tag.APPLICATION_SPECIFIC_INFORMATION)
class ApplicationSpecificInformation(Struct):
    application_namespace: str | None = kfield(Tag.APPLICATION_NAMESPACE, _TEXT)
    application_data: str | None = kfield(Tag.APPLICATION_DATA, _TEXT)


@structure(Tag.USAGE_LIMITS)
class UsageLimits(Struct):
    total: int | None = kfield(Tag.USAGE_LIMITS_TOTAL, _LONG)
    count: int | None = kfield(Tag.USAGE_LIMITS_COUNT, _LONG)
    unit: IntEnum | None = kfield(Tag.USAGE_LIMITS_UNIT, _ENUM)


@structure(Tag.REVOCATION_REASON)
class RevocationReason(Struct):
    code: IntEnum | None = kfield(Tag.REVOCATION_REASON_CODE, _ENUM)
    message: str | None = kfield(Tag.REVOCATION_MESSAGE, _TEXT)


@structure(Tag.ALTERNATIVE_NAME)
class AlternativeName(Struct):
    value: str | None = kfield(Tag.ALTERNATIVE_NAME_VALUE, _TEXT)
    type: IntEnum | None = kfield(Tag.ALTERNATIVE_NAME_TYPE, _ENUM)


@structure(Tag.KEY_VALUE_LOCATION)
class KeyValueLocation(Struct):
    value: str | None = kfield(Tag.KEY_VALUE_LOCATION_VALUE, _TEXT)
    type: IntEnum | None = kfield(Tag.KEY_VALUE_LOCATION_TYPE, _ENUM)


@structure(Tag.X_509_CERTIFICATE_IDENTIFIER)
class X509CertificateIdentifier(Struct):
    issuer_distinguished_name: bytes | None = kfield(Tag.ISSUER_DISTINGUISHED_NAME, _BYTES)
    certificate_serial_number: bytes | None = kfield(Tag.CERTIFICATE_SERIAL_NUMBER, _BYTES)


@structure(Tag.X_509_CERTIFICATE_SUBJECT)
class X509CertificateSubject(Struct):
    subject_distinguished_name: bytes | None = kfield(Tag.SUBJECT_DISTINGUISHED_NAME, _BYTES)
    subject_alternative_names: tuple[bytes, ...] = kfield(Tag.SUBJECT_ALTERNATIVE_NAME, _BYTES, repeated=True)


@structure(Tag.X_509_CERTIFICATE_ISSUER)
class X509CertificateIssuer(Struct):
    issuer_distinguished_name: bytes | None = kfield(Tag.ISSUER_DISTINGUISHED_NAME, _BYTES)
    issuer_alternative_names: tuple[bytes, ...] = kfield(Tag.ISSUER_ALTERNATIVE_NAME, _BYTES, repeated=True)


@structure(Tag.CERTIFICATE_IDENTIFIER)
class CertificateIdentifier(Struct):
    issuer: str | None = kfield(Tag.ISSUER, _TEXT)
    serial_number: str | None = kfield(Tag.SERIAL_NUMBER, _TEXT)


@structure(Tag.CERTIFICATE_SUBJECT)
class CertificateSubject(Struct):
    distinguished_name: str | None = kfield(Tag.CERTIFICATE_SUBJECT_DISTINGUISHED_NAME, _TEXT)
    alternative_names: tuple[str, ...] = kfield(Tag.CERTIFICATE_SUBJECT_ALTERNATIVE_NAME, _TEXT, repeated=True)


@structure(Tag.CERTIFICATE_ISSUER)
class CertificateIssuer(Struct):
    distinguished_name: str | None = kfield(Tag.CERTIFICATE_ISSUER_DISTINGUISHED_NAME, _TEXT)
    alternative_names: tuple[str, ...] = kfield(Tag.CERTIFICATE_ISSUER_ALTERNATIVE_NAME, _TEXT, repeated=True)


@structure(Tag.RANDOM_NUMBER_GENERATOR)
class RandomNumberGenerator(Struct):
    rng_algorithm: IntEnum | None = kfield(Tag.RNG_ALGORITHM, _ENUM)
    cryptographic_algorithm: IntEnum | None = kfield(Tag.CRYPTOGRAPHIC_ALGORITHM, _ENUM)
    cryptographic_length: int | None = kfield(Tag.CRYPTOGRAPHIC_LENGTH, _INT)
    hashing_algorithm: IntEnum | None = kfield(Tag.HASHING_ALGORITHM, _ENUM)
    drbg_algorithm: IntEnum | None = kfield(Tag.DRBG_ALGORITHM, _ENUM)
    recommended_curve: IntEnum | None = kfield(Tag.RECOMMENDED_CURVE, _ENUM)
    fips186_variation: IntEnum | None = kfield(Tag.FIPS186_VARIATION, _ENUM)
    prediction_resistance: bool | None = kfield(Tag.PREDICTION_RESISTANCE, _BOOL)


@structure(Tag.PROTECTION_STORAGE_MASKS)
class ProtectionStorageMasks(Struct):
    masks: tuple[int, ...] = kfield(Tag.PROTECTION_STORAGE_MASK, _INT, repeated=True)


#: Attribute tag → class of its structured value.
ATTRIBUTE_STRUCTS: dict[int, type[Struct]] = {
    cls.TAG: cls
    for cls in (
        Name,
        Link,
        Digest,
        CryptographicParameters,
        CryptographicDomainParameters,
        ApplicationSpecificInformation,
        UsageLimits,
        RevocationReason,
        AlternativeName,
        KeyValueLocation,
        X509CertificateIdentifier,
        X509CertificateSubject,
        X509CertificateIssuer,
        CertificateIdentifier,
        CertificateSubject,
        CertificateIssuer,
        RandomNumberGenerator,
        ProtectionStorageMasks,
    )
}

#: Integer-valued attributes whose item type a Python int cannot tell apart.
_INT_ATTRIBUTE_TYPES: dict[int, ItemType] = {
    Tag.LEASE_TIME: _INTERVAL,
    Tag.PROTECTION_PERIOD: _INTERVAL,
    Tag.ROTATE_INTERVAL: _INTERVAL,
    Tag.ROTATE_OFFSET: _INTERVAL,
}


def attribute_tag(name: str) -> int | None:
    """The tag of the attribute called ``name`` (1.x name, or "0x54xxxx"); None for custom."""
    tag = ATTRIBUTE_TAGS.get(name)
    if tag is None and name.startswith("0x"):
        try:
            tag = int(name, 16)
        except ValueError:
            return None
    return tag


def _value_from_item(attr_tag: int | None, item: Item) -> Any:
    if item.type == _S:
        cls = ATTRIBUTE_STRUCTS.get(attr_tag) if attr_tag is not None else None
        # A structure we cannot type (a vendor's) stays an Item and is re-emitted as is.
        return decode_struct(cls, item) if cls is not None else item
    return decode_primitive(attr_tag or 0, item)


def _value_to_item(tag: int, attr_tag: int | None, attr: Attribute) -> Item:
    value = attr.value
    typ = attr.type
    if typ is not None and typ != _S and typ != _DT:
        return _new_item(Item, (tag, typ, value))
    if isinstance(value, Struct):
        return to_item(value, tag)
    if isinstance(value, Item):
        return _new_item(Item, (tag, value.type, value.value))
    typ = typ or _infer_type(attr_tag, value)
    if typ == _DT:
        return encode_primitive(tag, typ, value)
    return _new_item(Item, (tag, typ, value))


def _infer_type(attr_tag: int | None, value: Any) -> ItemType:
    if isinstance(value, bool):
        return _BOOL
    if isinstance(value, IntFlag):
        return _INT
    if isinstance(value, IntEnum):
        return _ENUM
    if isinstance(value, int):
        return _INT_ATTRIBUTE_TYPES.get(attr_tag or 0, _INT)
    if isinstance(value, str):
        return _TEXT
    if isinstance(value, (bytes, bytearray)):
        return _BYTES
    if isinstance(value, datetime):
        return _DT
    raise TypeError(f"cannot tell the KMIP item type of a {type(value).__name__} attribute value")


@dataclasses.dataclass(frozen=True, slots=True)
class Attribute(Struct):
    """One attribute, whichever encoding carried it.

    ``value`` is a Python value, a structure (:class:`Name`, :class:`Link` ...) or, for a
    structured value of an attribute we do not model, the raw :class:`Item`. ``type`` is the
    item type it arrived as (kept so custom attributes re-encode exactly; not compared).
    """

    name: str = ""
    value: Any = None
    index: int | None = None
    vendor: str | None = None
    type: ItemType | None = dataclasses.field(default=None, compare=False, repr=False)

    TAG = Tag.ATTRIBUTE

    def __post_init__(self) -> None:
        # Settle the item type of a primitive value once, not on every encode.
        if self.type is None and self.value is not None and not isinstance(self.value, (Struct, Item)):
            object.__setattr__(self, "type", _infer_type(ATTRIBUTE_TAGS.get(self.name), self.value))

    @classmethod
    def decode_item(cls, item: Item, path: str = "") -> Attribute:
        """Decode the name/index/value form (1.x, and 2.x vendor attributes)."""
        if item.type != _S:
            raise ProtocolError("expected a Structure")
        name = index = vendor = None
        value_item: Item | None = None
        extras: list[tuple[int, Item]] = []
        for position, child in enumerate(item.value):
            tag = child.tag
            if tag == _ATTRIBUTE_NAME and child.type == _TEXT and name is None:
                name = child.value
            elif tag == _ATTRIBUTE_VALUE and value_item is None:
                value_item = child
            elif tag == _ATTRIBUTE_INDEX and child.type == _INT and index is None:
                index = child.value
            elif tag == _VENDOR_IDENTIFICATION and child.type == _TEXT and vendor is None:
                vendor = child.value
            else:
                extras.append((position, child))
        if name is None:
            raise ProtocolError("missing AttributeName")
        try:
            value = None if value_item is None else _value_from_item(ATTRIBUTE_TAGS.get(name), value_item)
        except ProtocolError as exc:
            raise exc.within("AttributeValue") from None
        return cls(
            name=name,
            value=value,
            index=index,
            vendor=vendor,
            type=None if value_item is None else value_item.type,
            extras=tuple(extras),
        )

    def write_into(self, out: bytearray, tag: int, depth: int) -> None:
        """Append this attribute's TTLV (the name/index/value form) to ``out``."""
        value = self.value
        if self.extras or self.vendor is not None or isinstance(value, Item):
            write_items((self.encode_item(tag),), out, depth)
            return
        start = open_structure(out, tag, depth)
        _write_name(out, self.name)
        if self.index is not None:
            _write_index(out, self.index)
        if isinstance(value, Struct):
            write_struct(value, _ATTRIBUTE_VALUE, out, depth + 1)
        elif value is not None:
            typ = self.type or _infer_type(ATTRIBUTE_TAGS.get(self.name), value)
            if typ == _DT and isinstance(value, datetime):
                value = int(value.timestamp())
            _value_writer(typ)(out, value)
        close_structure(out, start)

    def encode_item(self, tag: int) -> Item:
        children = [_new_item(Item, (_ATTRIBUTE_NAME, _TEXT, self.name))]
        if self.vendor is not None:
            children.insert(0, _new_item(Item, (_VENDOR_IDENTIFICATION, _TEXT, self.vendor)))
        if self.index is not None:
            children.append(_new_item(Item, (_ATTRIBUTE_INDEX, _INT, self.index)))
        if self.value is not None:
            children.append(_value_to_item(_ATTRIBUTE_VALUE, ATTRIBUTE_TAGS.get(self.name), self))
        for position, extra in self.extras:
            children.insert(position, extra)
        return _new_item(Item, (tag, _S, tuple(children)))


@dataclasses.dataclass(frozen=True, slots=True)
class Attributes(Struct):
    """The 2.x ``Attributes`` structure (also New/Current Attribute and the key-pair forms)."""

    attributes: tuple[Attribute, ...] = ()

    TAG = Tag.ATTRIBUTES

    @classmethod
    def decode_item(cls, item: Item, path: str = "") -> Attributes:
        if item.type != _S:
            raise ProtocolError("expected a Structure")
        found = []
        for child in item.value:
            if child.tag == Tag.ATTRIBUTE:
                try:
                    found.append(Attribute.decode_item(child))
                except ProtocolError as exc:
                    raise exc.within("Attribute") from None
                continue
            # A tag that is not an attribute keeps its number as its name, so it re-encodes as it came.
            name = ATTRIBUTE_NAMES.get(child.tag) or f"0x{child.tag:06X}"
            try:
                value = _value_from_item(child.tag, child)
            except ProtocolError as exc:
                raise exc.within(tag_name(child.tag)) from None
            found.append(Attribute(name=name, value=value, type=child.type))
        return cls(attributes=tuple(found))

    def encode_item(self, tag: int) -> Item:
        children = []
        for attr in self.attributes:
            attr_tag = attribute_tag(attr.name)
            if attr_tag is None or attr.vendor is not None:
                children.append(attr.encode_item(_ATTRIBUTE))
            else:
                children.append(_value_to_item(attr_tag, attr_tag, attr))
        return _new_item(Item, (tag, _S, tuple(children)))


def attribute_for_version(
    name: str,
    value: Any,
    version: tuple[int, int],
    *,
    index: int | None = None,
    type: ItemType | None = None,  # noqa: A002  (the Attribute field it fills)
) -> Attribute:
    """The attribute called ``name`` (its KMIP 1.x name) in the form of ``version``.

    Custom attributes have one name in both generations: the 1.x "x-ID" is the 2.x Vendor
    Identification "x" with Attribute Name "ID". 2.x has no Attribute Index.
    """
    if version >= (2, 0):
        if name not in ATTRIBUTE_TAGS and "-" in name:
            vendor, _, short = name.partition("-")
            return Attribute(name=short, value=value, vendor=vendor, type=type)
        return Attribute(name=name, value=value, type=type)
    return Attribute(name=name, value=value, index=index, type=type)


def attribute_name(attr: Attribute) -> str:
    """The KMIP 1.x name of an attribute received in either form (vendor attributes joined)."""
    return f"{attr.vendor}-{attr.name}" if attr.vendor is not None else attr.name


@structure(Tag.TEMPLATE_ATTRIBUTE)
class TemplateAttribute(Struct):
    """The 1.x Template-Attribute (also Common/Private Key/Public Key Template-Attribute)."""

    names: tuple[Name, ...] = kfield(Tag.NAME, Name, repeated=True, max_version=(1, 4))
    attributes: tuple[Attribute, ...] = kfield(Tag.ATTRIBUTE, Attribute, repeated=True, max_version=(1, 4))


__all__ = [
    "IDENTIFIER",
    "Attribute",
    "Attributes",
    "TemplateAttribute",
    "ATTRIBUTE_STRUCTS",
    "attribute_tag",
    "attribute_for_version",
    "attribute_name",
    *(cls.__name__ for cls in ATTRIBUTE_STRUCTS.values()),
]
