"""Managed objects and their key blocks."""

from __future__ import annotations

from enum import IntEnum

from ..spec import Tag
from ..ttlv import ItemType
from .attributes import IDENTIFIER, Attribute, Attributes, CryptographicParameters
from .base import Struct, kfield, structure

_TEXT = ItemType.TEXT_STRING
_BYTES = ItemType.BYTE_STRING
_INT = ItemType.INTEGER
_BIG = ItemType.BIG_INTEGER
_ENUM = ItemType.ENUMERATION


@structure(Tag.KEY_MATERIAL)
class TransparentKeyMaterial(Struct):
    """Key Material in a Transparent format: the union of the transparent key structures."""

    # One order that is the spec order of every transparent key structure (RSA: Modulus ...
    # CRT Coefficient; DSA/DH: P, Q, G, J, X/Y; EC: Recommended Curve, D/Q String).
    key: bytes | None = kfield(Tag.KEY, _BYTES, secret=True)
    modulus: int | None = kfield(Tag.MODULUS, _BIG)
    private_exponent: int | None = kfield(Tag.PRIVATE_EXPONENT, _BIG, secret=True)
    public_exponent: int | None = kfield(Tag.PUBLIC_EXPONENT, _BIG)
    p: int | None = kfield(Tag.P, _BIG, secret=True)
    q: int | None = kfield(Tag.Q, _BIG, secret=True)
    g: int | None = kfield(Tag.G, _BIG)
    j: int | None = kfield(Tag.J, _BIG)
    x: int | None = kfield(Tag.X, _BIG, secret=True)
    y: int | None = kfield(Tag.Y, _BIG)
    prime_exponent_p: int | None = kfield(Tag.PRIME_EXPONENT_P, _BIG, secret=True)
    prime_exponent_q: int | None = kfield(Tag.PRIME_EXPONENT_Q, _BIG, secret=True)
    crt_coefficient: int | None = kfield(Tag.CRT_COEFFICIENT, _BIG, secret=True)
    recommended_curve: IntEnum | None = kfield(Tag.RECOMMENDED_CURVE, _ENUM)
    d: int | None = kfield(Tag.D, _BIG, secret=True)
    q_string: bytes | None = kfield(Tag.Q_STRING, _BYTES)


@structure(Tag.KEY_VALUE)
class KeyValue(Struct):
    key_material: bytes | TransparentKeyMaterial | None = kfield(
        Tag.KEY_MATERIAL, (_BYTES, TransparentKeyMaterial), secret=True
    )
    attributes_v1: tuple[Attribute, ...] = kfield(Tag.ATTRIBUTE, Attribute, repeated=True, max_version=(1, 4))
    attributes: Attributes | None = kfield(Tag.ATTRIBUTES, Attributes, min_version=(2, 0))


@structure(Tag.ENCRYPTION_KEY_INFORMATION)
class EncryptionKeyInformation(Struct):
    unique_identifier: str | None = kfield(Tag.UNIQUE_IDENTIFIER, IDENTIFIER)
    cryptographic_parameters: CryptographicParameters | None = kfield(
        Tag.CRYPTOGRAPHIC_PARAMETERS, CryptographicParameters
    )


@structure(Tag.MAC_SIGNATURE_KEY_INFORMATION)
class MACSignatureKeyInformation(Struct):
    unique_identifier: str | None = kfield(Tag.UNIQUE_IDENTIFIER, IDENTIFIER)
    cryptographic_parameters: CryptographicParameters | None = kfield(
        Tag.CRYPTOGRAPHIC_PARAMETERS, CryptographicParameters
    )


@structure(Tag.KEY_WRAPPING_DATA)
class KeyWrappingData(Struct):
    wrapping_method: IntEnum | None = kfield(Tag.WRAPPING_METHOD, _ENUM)
    encryption_key_information: EncryptionKeyInformation | None = kfield(
        Tag.ENCRYPTION_KEY_INFORMATION, EncryptionKeyInformation
    )
    mac_signature_key_information: MACSignatureKeyInformation | None = kfield(
        Tag.MAC_SIGNATURE_KEY_INFORMATION, MACSignatureKeyInformation
    )
    mac_signature: bytes | None = kfield(Tag.MAC_SIGNATURE, _BYTES)
    iv_counter_nonce: bytes | None = kfield(Tag.IV_COUNTER_NONCE, _BYTES)
    encoding_option: IntEnum | None = kfield(Tag.ENCODING_OPTION, _ENUM)


@structure(Tag.KEY_WRAPPING_SPECIFICATION)
class KeyWrappingSpecification(Struct):
    wrapping_method: IntEnum | None = kfield(Tag.WRAPPING_METHOD, _ENUM)
    encryption_key_information: EncryptionKeyInformation | None = kfield(
        Tag.ENCRYPTION_KEY_INFORMATION, EncryptionKeyInformation
    )
    mac_signature_key_information: MACSignatureKeyInformation | None = kfield(
        Tag.MAC_SIGNATURE_KEY_INFORMATION, MACSignatureKeyInformation
    )
    attribute_names: tuple[str, ...] = kfield(Tag.ATTRIBUTE_NAME, _TEXT, repeated=True)
    encoding_option: IntEnum | None = kfield(Tag.ENCODING_OPTION, _ENUM)


@structure(Tag.KEY_BLOCK)
class KeyBlock(Struct):
    key_format_type: IntEnum | None = kfield(Tag.KEY_FORMAT_TYPE, _ENUM)
    key_compression_type: IntEnum | None = kfield(Tag.KEY_COMPRESSION_TYPE, _ENUM)
    # A Key Value is a Byte String when the key is wrapped.
    key_value: KeyValue | bytes | None = kfield(Tag.KEY_VALUE, (KeyValue, _BYTES), secret=True)
    cryptographic_algorithm: IntEnum | None = kfield(Tag.CRYPTOGRAPHIC_ALGORITHM, _ENUM)
    cryptographic_length: int | None = kfield(Tag.CRYPTOGRAPHIC_LENGTH, _INT)
    key_wrapping_data: KeyWrappingData | None = kfield(Tag.KEY_WRAPPING_DATA, KeyWrappingData)


@structure(Tag.SYMMETRIC_KEY)
class SymmetricKey(Struct):
    key_block: KeyBlock | None = kfield(Tag.KEY_BLOCK, KeyBlock)


@structure(Tag.PUBLIC_KEY)
class PublicKey(Struct):
    key_block: KeyBlock | None = kfield(Tag.KEY_BLOCK, KeyBlock)


@structure(Tag.PRIVATE_KEY)
class PrivateKey(Struct):
    key_block: KeyBlock | None = kfield(Tag.KEY_BLOCK, KeyBlock)


@structure(Tag.SPLIT_KEY)
class SplitKey(Struct):
    split_key_parts: int | None = kfield(Tag.SPLIT_KEY_PARTS, _INT)
    key_part_identifier: int | None = kfield(Tag.KEY_PART_IDENTIFIER, _INT)
    split_key_threshold: int | None = kfield(Tag.SPLIT_KEY_THRESHOLD, _INT)
    split_key_method: IntEnum | None = kfield(Tag.SPLIT_KEY_METHOD, _ENUM)
    prime_field_size: int | None = kfield(Tag.PRIME_FIELD_SIZE, _BIG)
    key_block: KeyBlock | None = kfield(Tag.KEY_BLOCK, KeyBlock)


@structure(Tag.SECRET_DATA)
class SecretData(Struct):
    secret_data_type: IntEnum | None = kfield(Tag.SECRET_DATA_TYPE, _ENUM)
    key_block: KeyBlock | None = kfield(Tag.KEY_BLOCK, KeyBlock)


@structure(Tag.OPAQUE_OBJECT)
class OpaqueObject(Struct):
    # Opaque Data Types are vendor extensions (0x8xxxxxxx) but for a few: mostly plain ints.
    opaque_data_type: IntEnum | int | None = kfield(Tag.OPAQUE_DATA_TYPE, _ENUM)
    opaque_data_value: bytes | None = kfield(Tag.OPAQUE_DATA_VALUE, _BYTES, secret=True)


@structure(Tag.CERTIFICATE)
class Certificate(Struct):
    certificate_type: IntEnum | None = kfield(Tag.CERTIFICATE_TYPE, _ENUM)
    certificate_value: bytes | None = kfield(Tag.CERTIFICATE_VALUE, _BYTES)


@structure(Tag.CERTIFICATE_REQUEST)
class CertificateRequest(Struct):
    certificate_request_type: IntEnum | None = kfield(Tag.CERTIFICATE_REQUEST_TYPE, _ENUM)
    certificate_request_value: bytes | None = kfield(Tag.CERTIFICATE_REQUEST_VALUE, _BYTES)


@structure(Tag.PGP_KEY)
class PGPKey(Struct):
    pgp_key_version: int | None = kfield(Tag.PGP_KEY_VERSION, _INT)
    key_block: KeyBlock | None = kfield(Tag.KEY_BLOCK, KeyBlock)


@structure(Tag.TEMPLATE)
class Template(Struct):
    """The 1.x Template object (deprecated in 1.3, removed in 2.0)."""

    attributes: tuple[Attribute, ...] = kfield(Tag.ATTRIBUTE, Attribute, repeated=True, max_version=(1, 4))


#: Tag → class of every managed object, for payload fields that carry "the object".
MANAGED_OBJECTS: dict[int, type[Struct]] = {
    cls.TAG: cls
    for cls in (
        SymmetricKey,
        PublicKey,
        PrivateKey,
        SplitKey,
        SecretData,
        OpaqueObject,
        Certificate,
        CertificateRequest,
        PGPKey,
        Template,
    )
}

__all__ = [
    "TransparentKeyMaterial",
    "KeyValue",
    "EncryptionKeyInformation",
    "MACSignatureKeyInformation",
    "KeyWrappingData",
    "KeyWrappingSpecification",
    "KeyBlock",
    "MANAGED_OBJECTS",
    *(cls.__name__ for cls in MANAGED_OBJECTS.values()),
]
