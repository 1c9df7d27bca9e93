"""Payloads of the object lifecycle operations: Create, Register, Re-key, Get, Revoke, Destroy ...

Each payload declares both encodings: the 1.x Template-Attribute (``max_version=(1, 4)``) and
the 2.x Attributes (``min_version=(2, 0)``); a message uses whichever its version has.
"""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum

from ...spec import Tag
from ...spec.enums import Operation
from ...ttlv import ItemType
from ..attributes import Attribute, Attributes, ProtectionStorageMasks, RevocationReason, TemplateAttribute
from ..base import Struct, kchoice, kfield
from ..messages import request_payload, response_payload
from ..objects import MANAGED_OBJECTS, Certificate, CertificateRequest, KeyWrappingSpecification
from .structures import (
    V1,
    V2,
    DerivationParameters,
    attribute_list,
    attributes,
    storage_masks,
    template_attribute,
    uid,
)

_TEXT = ItemType.TEXT_STRING
_BYTES = ItemType.BYTE_STRING
_INT = ItemType.INTEGER
_LONG = ItemType.LONG_INTEGER
_BIG = ItemType.BIG_INTEGER
_ENUM = ItemType.ENUMERATION
_BOOL = ItemType.BOOLEAN
_DT = ItemType.DATE_TIME
_INTERVAL = ItemType.INTERVAL


# --------------------------------------------------------------------------- creation


@request_payload(Operation.CREATE)
class CreateRequest(Struct):
    object_type: IntEnum | None = kfield(Tag.OBJECT_TYPE, _ENUM)
    template_attribute: TemplateAttribute | None = template_attribute()
    attributes: Attributes | None = attributes()
    protection_storage_masks: ProtectionStorageMasks | None = storage_masks()


@response_payload(Operation.CREATE)
class CreateResponse(Struct):
    object_type: IntEnum | None = kfield(Tag.OBJECT_TYPE, _ENUM)
    unique_identifier: str | None = uid()
    template_attribute: TemplateAttribute | None = template_attribute()


@request_payload(Operation.CREATE_KEY_PAIR)
class CreateKeyPairRequest(Struct):
    common_template_attribute: TemplateAttribute | None = template_attribute(Tag.COMMON_TEMPLATE_ATTRIBUTE)
    private_key_template_attribute: TemplateAttribute | None = template_attribute(Tag.PRIVATE_KEY_TEMPLATE_ATTRIBUTE)
    public_key_template_attribute: TemplateAttribute | None = template_attribute(Tag.PUBLIC_KEY_TEMPLATE_ATTRIBUTE)
    common_attributes: Attributes | None = attributes(Tag.COMMON_ATTRIBUTES)
    private_key_attributes: Attributes | None = attributes(Tag.PRIVATE_KEY_ATTRIBUTES)
    public_key_attributes: Attributes | None = attributes(Tag.PUBLIC_KEY_ATTRIBUTES)
    common_protection_storage_masks: ProtectionStorageMasks | None = storage_masks(Tag.COMMON_PROTECTION_STORAGE_MASKS)
    private_protection_storage_masks: ProtectionStorageMasks | None = storage_masks(
        Tag.PRIVATE_PROTECTION_STORAGE_MASKS
    )
    public_protection_storage_masks: ProtectionStorageMasks | None = storage_masks(Tag.PUBLIC_PROTECTION_STORAGE_MASKS)


@response_payload(Operation.CREATE_KEY_PAIR)
class CreateKeyPairResponse(Struct):
    private_key_unique_identifier: str | None = uid(Tag.PRIVATE_KEY_UNIQUE_IDENTIFIER)
    public_key_unique_identifier: str | None = uid(Tag.PUBLIC_KEY_UNIQUE_IDENTIFIER)
    private_key_template_attribute: TemplateAttribute | None = template_attribute(Tag.PRIVATE_KEY_TEMPLATE_ATTRIBUTE)
    public_key_template_attribute: TemplateAttribute | None = template_attribute(Tag.PUBLIC_KEY_TEMPLATE_ATTRIBUTE)


@request_payload(Operation.REGISTER)
class RegisterRequest(Struct):
    object_type: IntEnum | None = kfield(Tag.OBJECT_TYPE, _ENUM)
    template_attribute: TemplateAttribute | None = template_attribute()
    attributes: Attributes | None = attributes()
    managed_object: Struct | None = kchoice(MANAGED_OBJECTS, secret=True)
    protection_storage_masks: ProtectionStorageMasks | None = storage_masks()


@response_payload(Operation.REGISTER)
class RegisterResponse(Struct):
    unique_identifier: str | None = uid()
    template_attribute: TemplateAttribute | None = template_attribute()


@request_payload(Operation.RE_KEY)
class ReKeyRequest(Struct):
    unique_identifier: str | None = uid()
    offset: int | None = kfield(Tag.OFFSET, _INTERVAL)
    template_attribute: TemplateAttribute | None = template_attribute()
    attributes: Attributes | None = attributes()
    protection_storage_masks: ProtectionStorageMasks | None = storage_masks()


@response_payload(Operation.RE_KEY)
class ReKeyResponse(Struct):
    unique_identifier: str | None = uid()
    template_attribute: TemplateAttribute | None = template_attribute()


@request_payload(Operation.RE_KEY_KEY_PAIR)
class ReKeyKeyPairRequest(Struct):
    private_key_unique_identifier: str | None = uid(Tag.PRIVATE_KEY_UNIQUE_IDENTIFIER)
    offset: int | None = kfield(Tag.OFFSET, _INTERVAL)
    common_template_attribute: TemplateAttribute | None = template_attribute(Tag.COMMON_TEMPLATE_ATTRIBUTE)
    private_key_template_attribute: TemplateAttribute | None = template_attribute(Tag.PRIVATE_KEY_TEMPLATE_ATTRIBUTE)
    public_key_template_attribute: TemplateAttribute | None = template_attribute(Tag.PUBLIC_KEY_TEMPLATE_ATTRIBUTE)
    common_attributes: Attributes | None = attributes(Tag.COMMON_ATTRIBUTES)
    private_key_attributes: Attributes | None = attributes(Tag.PRIVATE_KEY_ATTRIBUTES)
    public_key_attributes: Attributes | None = attributes(Tag.PUBLIC_KEY_ATTRIBUTES)
    common_protection_storage_masks: ProtectionStorageMasks | None = storage_masks(Tag.COMMON_PROTECTION_STORAGE_MASKS)
    private_protection_storage_masks: ProtectionStorageMasks | None = storage_masks(
        Tag.PRIVATE_PROTECTION_STORAGE_MASKS
    )
    public_protection_storage_masks: ProtectionStorageMasks | None = storage_masks(Tag.PUBLIC_PROTECTION_STORAGE_MASKS)


@response_payload(Operation.RE_KEY_KEY_PAIR)
class ReKeyKeyPairResponse(CreateKeyPairResponse):
    pass


@request_payload(Operation.DERIVE_KEY)
class DeriveKeyRequest(Struct):
    object_type: IntEnum | None = kfield(Tag.OBJECT_TYPE, _ENUM)
    unique_identifiers: tuple[str, ...] = uid(repeated=True)
    derivation_method: IntEnum | None = kfield(Tag.DERIVATION_METHOD, _ENUM)
    derivation_parameters: DerivationParameters | None = kfield(Tag.DERIVATION_PARAMETERS, DerivationParameters)
    template_attribute: TemplateAttribute | None = template_attribute()
    attributes: Attributes | None = attributes()


@response_payload(Operation.DERIVE_KEY)
class DeriveKeyResponse(Struct):
    unique_identifier: str | None = uid()
    template_attribute: TemplateAttribute | None = template_attribute()


@request_payload(Operation.CERTIFY)
class CertifyRequest(Struct):
    unique_identifier: str | None = uid()
    certificate_request_type: IntEnum | None = kfield(Tag.CERTIFICATE_REQUEST_TYPE, _ENUM)
    # 1.x sends the request as a Byte String tagged Certificate Request; 2.x as its Value.
    certificate_request: bytes | None = kfield(Tag.CERTIFICATE_REQUEST, _BYTES, max_version=V1)
    certificate_request_value: bytes | None = kfield(Tag.CERTIFICATE_REQUEST_VALUE, _BYTES, min_version=V2)
    template_attribute: TemplateAttribute | None = template_attribute()
    attributes: Attributes | None = attributes()
    protection_storage_masks: ProtectionStorageMasks | None = storage_masks()


@response_payload(Operation.CERTIFY)
class CertifyResponse(Struct):
    unique_identifier: str | None = uid()
    template_attribute: TemplateAttribute | None = template_attribute()


@request_payload(Operation.RE_CERTIFY)
class ReCertifyRequest(Struct):
    unique_identifier: str | None = uid()
    certificate_request_unique_identifier: str | None = uid(Tag.CERTIFICATE_REQUEST_UNIQUE_IDENTIFIER, min_version=V2)
    certificate_request_type: IntEnum | None = kfield(Tag.CERTIFICATE_REQUEST_TYPE, _ENUM)
    certificate_request: bytes | None = kfield(Tag.CERTIFICATE_REQUEST, _BYTES, max_version=V1)
    certificate_request_value: bytes | None = kfield(Tag.CERTIFICATE_REQUEST_VALUE, _BYTES, min_version=V2)
    offset: int | None = kfield(Tag.OFFSET, _INTERVAL)
    template_attribute: TemplateAttribute | None = template_attribute()
    attributes: Attributes | None = attributes()
    protection_storage_masks: ProtectionStorageMasks | None = storage_masks()


@response_payload(Operation.RE_CERTIFY)
class ReCertifyResponse(CertifyResponse):
    pass


@request_payload(Operation.CREATE_SPLIT_KEY)
class CreateSplitKeyRequest(Struct):
    object_type: IntEnum | None = kfield(Tag.OBJECT_TYPE, _ENUM)
    unique_identifier: str | None = uid()
    split_key_parts: int | None = kfield(Tag.SPLIT_KEY_PARTS, _INT)
    split_key_threshold: int | None = kfield(Tag.SPLIT_KEY_THRESHOLD, _INT)
    split_key_method: IntEnum | None = kfield(Tag.SPLIT_KEY_METHOD, _ENUM)
    prime_field_size: int | None = kfield(Tag.PRIME_FIELD_SIZE, _BIG)
    template_attribute: TemplateAttribute | None = template_attribute()
    attributes: Attributes | None = attributes()
    protection_storage_masks: ProtectionStorageMasks | None = storage_masks()


@response_payload(Operation.CREATE_SPLIT_KEY)
class CreateSplitKeyResponse(Struct):
    unique_identifiers: tuple[str, ...] = uid(repeated=True)
    template_attribute: TemplateAttribute | None = template_attribute()


@request_payload(Operation.JOIN_SPLIT_KEY)
class JoinSplitKeyRequest(Struct):
    object_type: IntEnum | None = kfield(Tag.OBJECT_TYPE, _ENUM)
    unique_identifiers: tuple[str, ...] = uid(repeated=True)
    secret_data_type: IntEnum | None = kfield(Tag.SECRET_DATA_TYPE, _ENUM)
    template_attribute: TemplateAttribute | None = template_attribute()
    attributes: Attributes | None = attributes()
    protection_storage_masks: ProtectionStorageMasks | None = storage_masks()


@response_payload(Operation.JOIN_SPLIT_KEY)
class JoinSplitKeyResponse(Struct):
    unique_identifier: str | None = uid()
    template_attribute: TemplateAttribute | None = template_attribute()


# --------------------------------------------------------------------------- retrieval


@request_payload(Operation.GET)
class GetRequest(Struct):
    unique_identifier: str | None = uid()
    key_format_type: IntEnum | None = kfield(Tag.KEY_FORMAT_TYPE, _ENUM)
    key_wrap_type: IntEnum | None = kfield(Tag.KEY_WRAP_TYPE, _ENUM, min_version=(1, 4))
    key_compression_type: IntEnum | None = kfield(Tag.KEY_COMPRESSION_TYPE, _ENUM)
    key_wrapping_specification: KeyWrappingSpecification | None = kfield(
        Tag.KEY_WRAPPING_SPECIFICATION, KeyWrappingSpecification
    )


@response_payload(Operation.GET)
class GetResponse(Struct):
    object_type: IntEnum | None = kfield(Tag.OBJECT_TYPE, _ENUM)
    unique_identifier: str | None = uid()
    managed_object: Struct | None = kchoice(MANAGED_OBJECTS, secret=True)


@request_payload(Operation.EXPORT)
class ExportRequest(GetRequest):
    pass


@response_payload(Operation.EXPORT)
class ExportResponse(Struct):
    object_type: IntEnum | None = kfield(Tag.OBJECT_TYPE, _ENUM)
    unique_identifier: str | None = uid()
    attribute_list: tuple[Attribute, ...] = attribute_list()
    attributes: Attributes | None = attributes()
    managed_object: Struct | None = kchoice(MANAGED_OBJECTS, secret=True)


@request_payload(Operation.IMPORT)
class ImportRequest(Struct):
    unique_identifier: str | None = uid()
    object_type: IntEnum | None = kfield(Tag.OBJECT_TYPE, _ENUM)
    replace_existing: bool | None = kfield(Tag.REPLACE_EXISTING, _BOOL)
    key_wrap_type: IntEnum | None = kfield(Tag.KEY_WRAP_TYPE, _ENUM)
    attribute_list: tuple[Attribute, ...] = attribute_list()
    attributes: Attributes | None = attributes()
    managed_object: Struct | None = kchoice(MANAGED_OBJECTS, secret=True)


@response_payload(Operation.IMPORT)
class ImportResponse(Struct):
    unique_identifier: str | None = uid()


# --------------------------------------------------------------------------- state changes


@request_payload(Operation.ACTIVATE)
class ActivateRequest(Struct):
    unique_identifier: str | None = uid()


@response_payload(Operation.ACTIVATE)
class ActivateResponse(Struct):
    unique_identifier: str | None = uid()


@request_payload(Operation.REVOKE)
class RevokeRequest(Struct):
    unique_identifier: str | None = uid()
    revocation_reason: RevocationReason | None = kfield(Tag.REVOCATION_REASON, RevocationReason)
    compromise_occurrence_date: datetime | None = kfield(Tag.COMPROMISE_OCCURRENCE_DATE, _DT)


@response_payload(Operation.REVOKE)
class RevokeResponse(ActivateResponse):
    pass


@request_payload(Operation.DESTROY)
class DestroyRequest(ActivateRequest):
    pass


@response_payload(Operation.DESTROY)
class DestroyResponse(ActivateResponse):
    pass


@request_payload(Operation.ARCHIVE)
class ArchiveRequest(ActivateRequest):
    pass


@response_payload(Operation.ARCHIVE)
class ArchiveResponse(ActivateResponse):
    pass


@request_payload(Operation.RECOVER)
class RecoverRequest(ActivateRequest):
    pass


@response_payload(Operation.RECOVER)
class RecoverResponse(ActivateResponse):
    pass


# --------------------------------------------------------------------------- usage


@request_payload(Operation.CHECK)
class CheckRequest(Struct):
    unique_identifier: str | None = uid()
    usage_limits_count: int | None = kfield(Tag.USAGE_LIMITS_COUNT, _LONG)
    cryptographic_usage_mask: int | None = kfield(Tag.CRYPTOGRAPHIC_USAGE_MASK, _INT)
    lease_time: int | None = kfield(Tag.LEASE_TIME, _INTERVAL)


@response_payload(Operation.CHECK)
class CheckResponse(CheckRequest):
    pass


@request_payload(Operation.OBTAIN_LEASE)
class ObtainLeaseRequest(ActivateRequest):
    pass


@response_payload(Operation.OBTAIN_LEASE)
class ObtainLeaseResponse(Struct):
    unique_identifier: str | None = uid()
    lease_time: int | None = kfield(Tag.LEASE_TIME, _INTERVAL)
    last_change_date: datetime | None = kfield(Tag.LAST_CHANGE_DATE, _DT)


@request_payload(Operation.GET_USAGE_ALLOCATION)
class GetUsageAllocationRequest(Struct):
    unique_identifier: str | None = uid()
    usage_limits_count: int | None = kfield(Tag.USAGE_LIMITS_COUNT, _LONG)


@response_payload(Operation.GET_USAGE_ALLOCATION)
class GetUsageAllocationResponse(ActivateResponse):
    pass


@request_payload(Operation.RE_PROVISION)
class ReProvisionRequest(Struct):
    certificate_request: CertificateRequest | None = kfield(Tag.CERTIFICATE_REQUEST, CertificateRequest)
    certificate: Certificate | None = kfield(Tag.CERTIFICATE, Certificate)


@response_payload(Operation.RE_PROVISION)
class ReProvisionResponse(ActivateResponse):
    pass
