"""Structures that only appear inside operation payloads (KMIP 2.1 chapter 7, 1.4 §2.1).

Also the small field helpers the payload modules share, so that a Unique Identifier or the
1.x/2.x attribute pair is declared the same way everywhere.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from ...spec import Tag
from ...spec.attributes import ATTRIBUTE_NAMES, ATTRIBUTE_TAGS
from ...ttlv import ItemType
from ..attributes import (
    IDENTIFIER,
    Attribute,
    Attributes,
    CryptographicParameters,
    ProtectionStorageMasks,
    TemplateAttribute,
    UsageLimits,
)
from ..base import Struct, kfield, structure

_TEXT = ItemType.TEXT_STRING
_BYTES = ItemType.BYTE_STRING
_INT = ItemType.INTEGER
_ENUM = ItemType.ENUMERATION
_BOOL = ItemType.BOOLEAN
_DTX = ItemType.DATE_TIME_EXTENDED

V1 = (1, 4)  # the last 1.x version: fields that KMIP 2.0 removed
V2 = (2, 0)  # the first 2.x version: fields that KMIP 2.0 introduced


# --------------------------------------------------------------------------- field helpers


def uid(tag: int = Tag.UNIQUE_IDENTIFIER, *, repeated: bool = False, **versions: Any) -> Any:
    """A Unique Identifier field (a 2.x identifier may also be an ID-placeholder enum or index)."""
    return kfield(tag, IDENTIFIER, repeated=repeated, **versions)


def template_attribute(tag: int = Tag.TEMPLATE_ATTRIBUTE) -> Any:
    """The 1.x Template-Attribute (or Common/Private/Public Key Template-Attribute)."""
    return kfield(tag, TemplateAttribute, max_version=V1)


def attributes(tag: int = Tag.ATTRIBUTES) -> Any:
    """The 2.x Attributes (or Common/Private/Public Key Attributes, New/Current Attribute)."""
    return kfield(tag, Attributes, min_version=V2)


def attribute_list() -> Any:
    """The 1.x repeated Attribute (name/index/value) form."""
    return kfield(Tag.ATTRIBUTE, Attribute, repeated=True, max_version=V1)


def storage_masks(tag: int = Tag.PROTECTION_STORAGE_MASKS) -> Any:
    return kfield(tag, ProtectionStorageMasks, min_version=V2)


# --------------------------------------------------------------------------- structures


@structure(Tag.ATTRIBUTE_REFERENCE)
class AttributeReference(Struct):
    """A 2.x reference to an attribute by name (a vendor's) — the standard ones use an enum."""

    vendor_identification: str | None = kfield(Tag.VENDOR_IDENTIFICATION, _TEXT)
    attribute_name: str | None = kfield(Tag.ATTRIBUTE_NAME, _TEXT)


#: Attribute Reference is an Enumeration (the attribute's tag) or the structure above.
ATTRIBUTE_REFERENCE = (_ENUM, AttributeReference)


@structure(Tag.DERIVATION_PARAMETERS)
class DerivationParameters(Struct):
    cryptographic_parameters: CryptographicParameters | None = kfield(
        Tag.CRYPTOGRAPHIC_PARAMETERS, CryptographicParameters
    )
    initialization_vector: bytes | None = kfield(Tag.INITIALIZATION_VECTOR, _BYTES)
    derivation_data: bytes | None = kfield(Tag.DERIVATION_DATA, _BYTES, secret=True)
    salt: bytes | None = kfield(Tag.SALT, _BYTES)
    iteration_count: int | None = kfield(Tag.ITERATION_COUNT, _INT)


@structure(Tag.OBJECT_GROUPS)
class ObjectGroups(Struct):
    object_groups: tuple[str, ...] = kfield(Tag.OBJECT_GROUP, _TEXT, repeated=True)


@structure(Tag.OBJECT_TYPES)
class ObjectTypes(Struct):
    object_types: tuple[IntEnum, ...] = kfield(Tag.OBJECT_TYPE, _ENUM, repeated=True)


@structure(Tag.OBJECTS)
class Objects(Struct):
    unique_identifiers: tuple[str, ...] = uid(repeated=True)


@structure(Tag.OPERATIONS)
class Operations(Struct):
    operations: tuple[IntEnum, ...] = kfield(Tag.OPERATION, _ENUM, repeated=True)


@structure(Tag.ASYNCHRONOUS_CORRELATION_VALUES)
class AsynchronousCorrelationValues(Struct):
    values: tuple[bytes, ...] = kfield(Tag.ASYNCHRONOUS_CORRELATION_VALUE, _BYTES, repeated=True)


@structure(Tag.ASYNCHRONOUS_REQUEST)
class AsynchronousRequest(Struct):
    asynchronous_correlation_value: bytes | None = kfield(Tag.ASYNCHRONOUS_CORRELATION_VALUE, _BYTES)
    operation: IntEnum | None = kfield(Tag.OPERATION, _ENUM)
    submission_date: int | None = kfield(Tag.SUBMISSION_DATE, _DTX)
    processing_stage: IntEnum | None = kfield(Tag.PROCESSING_STAGE, _ENUM)


@structure(Tag.RIGHT)
class Right(Struct):
    usage_limits: UsageLimits | None = kfield(Tag.USAGE_LIMITS, UsageLimits)
    operations: Operations | None = kfield(Tag.OPERATIONS, Operations)
    objects: Objects | None = kfield(Tag.OBJECTS, Objects)
    object_groups: ObjectGroups | None = kfield(Tag.OBJECT_GROUPS, ObjectGroups)


@structure(Tag.RIGHTS)
class Rights(Struct):
    rights: tuple[Right, ...] = kfield(Tag.RIGHT, Right, repeated=True)


@structure(Tag.TICKET)
class Ticket(Struct):
    ticket_type: IntEnum | None = kfield(Tag.TICKET_TYPE, _ENUM)
    ticket_value: bytes | None = kfield(Tag.TICKET_VALUE, _BYTES, secret=True)


@structure(Tag.CONSTRAINT)
class Constraint(Struct):
    object_types: ObjectTypes | None = kfield(Tag.OBJECT_TYPES, ObjectTypes)
    object_groups: ObjectGroups | None = kfield(Tag.OBJECT_GROUPS, ObjectGroups)
    attributes: Attributes | None = kfield(Tag.ATTRIBUTES, Attributes)


@structure(Tag.CONSTRAINTS)
class Constraints(Struct):
    constraints: tuple[Constraint, ...] = kfield(Tag.CONSTRAINT, Constraint, repeated=True)


@structure(Tag.OBJECT_DEFAULTS)
class ObjectDefaults(Struct):
    object_type: IntEnum | None = kfield(Tag.OBJECT_TYPE, _ENUM)
    attributes: Attributes | None = kfield(Tag.ATTRIBUTES, Attributes)
    object_groups: ObjectGroups | None = kfield(Tag.OBJECT_GROUPS, ObjectGroups)


@structure(Tag.DEFAULTS_INFORMATION)
class DefaultsInformation(Struct):
    object_defaults: tuple[ObjectDefaults, ...] = kfield(Tag.OBJECT_DEFAULTS, ObjectDefaults, repeated=True)


@structure(Tag.EXTENSION_INFORMATION)
class ExtensionInformation(Struct):
    extension_name: str | None = kfield(Tag.EXTENSION_NAME, _TEXT)
    extension_tag: int | None = kfield(Tag.EXTENSION_TAG, _INT)
    # An Integer in 1.x; 2.x calls it an Enumeration of Item Types.
    extension_type: int | None = kfield(Tag.EXTENSION_TYPE, (_INT, _ENUM))
    extension_enumeration: int | None = kfield(Tag.EXTENSION_ENUMERATION, _INT, min_version=V2)
    extension_attribute: bool | None = kfield(Tag.EXTENSION_ATTRIBUTE, _BOOL, min_version=V2)
    extension_parent_structure_tag: int | None = kfield(Tag.EXTENSION_PARENT_STRUCTURE_TAG, _INT, min_version=V2)
    extension_description: str | None = kfield(Tag.EXTENSION_DESCRIPTION, _TEXT, min_version=V2)


@structure(Tag.PROFILE_VERSION)
class ProfileVersion(Struct):
    major: int | None = kfield(Tag.PROFILE_VERSION_MAJOR, _INT)
    minor: int | None = kfield(Tag.PROFILE_VERSION_MINOR, _INT)


@structure(Tag.PROFILE_INFORMATION)
class ProfileInformation(Struct):
    profile_name: IntEnum | None = kfield(Tag.PROFILE_NAME, _ENUM)
    profile_version: ProfileVersion | None = kfield(Tag.PROFILE_VERSION, ProfileVersion, min_version=V2)
    server_uri: str | None = kfield(Tag.SERVER_URI, _TEXT)
    server_port: int | None = kfield(Tag.SERVER_PORT, _INT)


@structure(Tag.VALIDATION_INFORMATION)
class ValidationInformation(Struct):
    validation_authority_type: IntEnum | None = kfield(Tag.VALIDATION_AUTHORITY_TYPE, _ENUM)
    validation_authority_country: str | None = kfield(Tag.VALIDATION_AUTHORITY_COUNTRY, _TEXT)
    validation_authority_uri: str | None = kfield(Tag.VALIDATION_AUTHORITY_URI, _TEXT)
    validation_version_major: int | None = kfield(Tag.VALIDATION_VERSION_MAJOR, _INT)
    validation_version_minor: int | None = kfield(Tag.VALIDATION_VERSION_MINOR, _INT)
    validation_type: IntEnum | None = kfield(Tag.VALIDATION_TYPE, _ENUM)
    validation_level: int | None = kfield(Tag.VALIDATION_LEVEL, _INT)
    validation_certificate_identifier: str | None = kfield(Tag.VALIDATION_CERTIFICATE_IDENTIFIER, _TEXT)
    validation_certificate_uri: str | None = kfield(Tag.VALIDATION_CERTIFICATE_URI, _TEXT)
    validation_vendor_uri: str | None = kfield(Tag.VALIDATION_VENDOR_URI, _TEXT)
    validation_profiles: tuple[str, ...] = kfield(Tag.VALIDATION_PROFILE, _TEXT, repeated=True)


@structure(Tag.CAPABILITY_INFORMATION)
class CapabilityInformation(Struct):
    streaming_capability: bool | None = kfield(Tag.STREAMING_CAPABILITY, _BOOL)
    asynchronous_capability: bool | None = kfield(Tag.ASYNCHRONOUS_CAPABILITY, _BOOL)
    attestation_capability: bool | None = kfield(Tag.ATTESTATION_CAPABILITY, _BOOL)
    batch_undo_capability: bool | None = kfield(Tag.BATCH_UNDO_CAPABILITY, _BOOL, min_version=(1, 4))
    batch_continue_capability: bool | None = kfield(Tag.BATCH_CONTINUE_CAPABILITY, _BOOL, min_version=(1, 4))
    unwrap_mode: IntEnum | None = kfield(Tag.UNWRAP_MODE, _ENUM)
    destroy_action: IntEnum | None = kfield(Tag.DESTROY_ACTION, _ENUM)
    shredding_algorithm: IntEnum | None = kfield(Tag.SHREDDING_ALGORITHM, _ENUM)
    rng_mode: IntEnum | None = kfield(Tag.RNG_MODE, _ENUM)
    quantum_safe_capability: bool | None = kfield(Tag.QUANTUM_SAFE_CAPABILITY, _BOOL, min_version=(2, 1))


@structure(Tag.SERVER_INFORMATION)
class ServerInformation(Struct):
    """Server details (named fields from 2.0); anything vendor-specific stays in ``extras``."""

    server_name: str | None = kfield(Tag.SERVER_NAME, _TEXT, min_version=V2)
    server_serial_number: str | None = kfield(Tag.SERVER_SERIAL_NUMBER, _TEXT, min_version=V2)
    server_version: str | None = kfield(Tag.SERVER_VERSION, _TEXT, min_version=V2)
    server_load: str | None = kfield(Tag.SERVER_LOAD, _TEXT, min_version=V2)
    product_name: str | None = kfield(Tag.PRODUCT_NAME, _TEXT, min_version=V2)
    build_level: str | None = kfield(Tag.BUILD_LEVEL, _TEXT, min_version=V2)
    build_date: str | None = kfield(Tag.BUILD_DATE, _TEXT, min_version=V2)
    cluster_info: str | None = kfield(Tag.CLUSTER_INFO, _TEXT, min_version=V2)
    alternate_failover_endpoints: tuple[str, ...] = kfield(
        Tag.ALTERNATE_FAILOVER_ENDPOINTS, _TEXT, repeated=True, min_version=V2
    )


def attribute_reference(name: str) -> IntEnum | AttributeReference:
    """The 2.x Attribute Reference to the attribute called ``name`` (its 1.x name): the
    attribute's tag, or Vendor Identification and Attribute Name for a custom one."""
    tag = ATTRIBUTE_TAGS.get(name)
    if tag is not None:
        return Tag(tag)
    vendor, _, short = name.partition("-")
    return AttributeReference(vendor_identification=vendor, attribute_name=short)


def reference_name(reference: IntEnum | int | AttributeReference) -> str:
    """The 1.x name of the attribute a 2.x Attribute Reference means (inverse of
    :func:`attribute_reference`); an unknown tag is named by its number."""
    if isinstance(reference, AttributeReference):
        if reference.vendor_identification:
            return f"{reference.vendor_identification}-{reference.attribute_name}"
        return reference.attribute_name or ""
    name = ATTRIBUTE_NAMES.get(int(reference))
    return name if name is not None else f"0x{int(reference):06X}"


__all__ = [
    "V1",
    "V2",
    "uid",
    "template_attribute",
    "attributes",
    "attribute_list",
    "storage_masks",
    "ATTRIBUTE_REFERENCE",
    "AttributeReference",
    "attribute_reference",
    "reference_name",
    "DerivationParameters",
    "ObjectGroups",
    "ObjectTypes",
    "Objects",
    "Operations",
    "AsynchronousCorrelationValues",
    "AsynchronousRequest",
    "Right",
    "Rights",
    "Ticket",
    "Constraint",
    "Constraints",
    "ObjectDefaults",
    "DefaultsInformation",
    "ExtensionInformation",
    "ProfileVersion",
    "ProfileInformation",
    "ValidationInformation",
    "CapabilityInformation",
    "ServerInformation",
]
