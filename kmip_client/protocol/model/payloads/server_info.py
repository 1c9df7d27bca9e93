"""Payloads of the operations that describe a peer: Discover Versions and Query.

Both are also server-to-client operations (a server may query a client); the payloads are the
same in either direction.
"""

from __future__ import annotations

from enum import IntEnum

from ...spec import Tag
from ...spec.enums import Operation
from ...ttlv import ItemType
from ..attributes import ProtectionStorageMasks, RandomNumberGenerator
from ..base import Struct, kfield
from ..messages import ProtocolVersion, request_payload, response_payload
from .structures import (
    V2,
    CapabilityInformation,
    DefaultsInformation,
    ExtensionInformation,
    ObjectGroups,
    ProfileInformation,
    ServerInformation,
    ValidationInformation,
)

_TEXT = ItemType.TEXT_STRING
_ENUM = ItemType.ENUMERATION
_V13 = (1, 3)


@request_payload(Operation.DISCOVER_VERSIONS)
class DiscoverVersionsRequest(Struct):
    protocol_versions: tuple[ProtocolVersion, ...] = kfield(Tag.PROTOCOL_VERSION, ProtocolVersion, repeated=True)


@response_payload(Operation.DISCOVER_VERSIONS)
class DiscoverVersionsResponse(Struct):
    protocol_versions: tuple[ProtocolVersion, ...] = kfield(Tag.PROTOCOL_VERSION, ProtocolVersion, repeated=True)


@request_payload(Operation.QUERY)
class QueryRequest(Struct):
    query_functions: tuple[IntEnum, ...] = kfield(Tag.QUERY_FUNCTION, _ENUM, repeated=True)
    object_groups: ObjectGroups | None = kfield(Tag.OBJECT_GROUPS, ObjectGroups, min_version=(2, 1))


@response_payload(Operation.QUERY)
class QueryResponse(Struct):
    operations: tuple[IntEnum, ...] = kfield(Tag.OPERATION, _ENUM, repeated=True)
    object_types: tuple[IntEnum, ...] = kfield(Tag.OBJECT_TYPE, _ENUM, repeated=True)
    vendor_identification: str | None = kfield(Tag.VENDOR_IDENTIFICATION, _TEXT)
    server_information: ServerInformation | None = kfield(Tag.SERVER_INFORMATION, ServerInformation)
    application_namespaces: tuple[str, ...] = kfield(Tag.APPLICATION_NAMESPACE, _TEXT, repeated=True)
    extension_information: tuple[ExtensionInformation, ...] = kfield(
        Tag.EXTENSION_INFORMATION, ExtensionInformation, repeated=True, min_version=(1, 1)
    )
    attestation_types: tuple[IntEnum, ...] = kfield(Tag.ATTESTATION_TYPE, _ENUM, repeated=True, min_version=(1, 2))
    # RNG Parameters has the fields of the Random Number Generator attribute.
    rng_parameters: tuple[RandomNumberGenerator, ...] = kfield(
        Tag.RNG_PARAMETERS, RandomNumberGenerator, repeated=True, min_version=_V13
    )
    profile_information: tuple[ProfileInformation, ...] = kfield(
        Tag.PROFILE_INFORMATION, ProfileInformation, repeated=True, min_version=_V13
    )
    validation_information: tuple[ValidationInformation, ...] = kfield(
        Tag.VALIDATION_INFORMATION, ValidationInformation, repeated=True, min_version=_V13
    )
    capability_information: tuple[CapabilityInformation, ...] = kfield(
        Tag.CAPABILITY_INFORMATION, CapabilityInformation, repeated=True, min_version=_V13
    )
    client_registration_methods: tuple[IntEnum, ...] = kfield(
        Tag.CLIENT_REGISTRATION_METHOD, _ENUM, repeated=True, min_version=_V13
    )
    defaults_information: DefaultsInformation | None = kfield(
        Tag.DEFAULTS_INFORMATION, DefaultsInformation, min_version=V2
    )
    protection_storage_masks: ProtectionStorageMasks | None = kfield(
        Tag.PROTECTION_STORAGE_MASKS, ProtectionStorageMasks, min_version=V2
    )
