"""Discover Versions and Query: what this server speaks and supports — only what is real."""

from __future__ import annotations

from typing import Any

import kmip_server
from kmip_client.protocol.model import ProtocolVersion, Struct
from kmip_client.protocol.model.payloads.server_info import (
    DiscoverVersionsRequest,
    DiscoverVersionsResponse,
    QueryRequest,
    QueryResponse,
)
from kmip_client.protocol.model.payloads.structures import ProfileInformation, ProfileVersion, ServerInformation
from kmip_client.protocol.spec.enums import ObjectType, Operation, ProfileName
from kmip_client.protocol.spec.enums import QueryFunction as Q

from ..engine.context import RequestContext
from ..engine.registry import operation, supported_operations
from ..engine.versions import SUPPORTED_VERSIONS
from .query import (
    CLIENT_REGISTRATION_METHODS,
    STORAGE_PROTECTION_MASKS,
    capability_information,
    defaults_information,
    requested_functions,
    rng_parameters,
)

VENDOR = "Strongroom"
#: The server profiles whose mandatory OASIS test cases all pass, by profile and KMIP version:
#: what Query Profiles reports. tests/conformance checks every entry against a replay of the
#: test cases, so the list cannot claim more than is true.
CONFORMANT_PROFILES: dict[str, tuple[str, ...]] = {
    "SYMMETRIC_KEY_LIFECYCLE_SERVER": ("1.3", "1.4", "2.1"),
    "SYMMETRIC_KEY_FOUNDRY_SERVER": ("1.4", "2.0", "2.1"),
    "QUANTUM_SAFE_SERVER": ("2.0", "2.1"),
    "BASELINE_SERVER": ("2.1",),
    "OPAQUE_MANAGED_OBJECT_STORE_SERVER": ("1.3", "1.4", "2.0", "2.1"),
    "HTTPS_SERVER": ("1.3", "1.4", "2.1"),
    "JSON_SERVER": ("1.3", "1.4", "2.1"),
    "XML_SERVER": ("1.3", "1.4", "2.1"),
    "STORAGE_ARRAY_WITH_SELF_ENCRYPTING_DRIVE_SERVER": ("1.3", "1.4", "2.0", "2.1"),
    # Not the Suite B profiles, though their test cases (a Query) pass: minLOS_192 asks for
    # P-384 certificates and the AES-256 suites alone, and the default server key is P-256.
    # Not Basic Cryptographic in 1.3: CS-BC-M-6-13's expected ciphertext is wrong
    # (docs/conformance.md), so one of its mandatory cases fails.
    "BASIC_CRYPTOGRAPHIC_SERVER": ("1.4", "2.0", "2.1"),
    "ADVANCED_CRYPTOGRAPHIC_SERVER": ("1.3", "1.4", "2.0", "2.1"),
    "RNG_CRYPTOGRAPHIC_SERVER": ("1.3", "1.4", "2.0", "2.1"),
    "PKCS_11_SERVER": ("2.0", "2.1"),
    "ASYMMETRIC_KEY_LIFECYCLE_SERVER": ("1.3", "1.4", "2.0", "2.1"),
}
#: The object types Create (Symmetric Key; in 2.x Secret Data too), Register and Get handle.
#: Public and Private Keys are also made by Create Key Pair, Certificates by Certify;
#: Split Keys are registered and returned; Templates exist in 1.x only.
SUPPORTED_OBJECT_TYPES = (
    ObjectType.SYMMETRIC_KEY,
    ObjectType.PUBLIC_KEY,
    ObjectType.PRIVATE_KEY,
    ObjectType.CERTIFICATE,
    ObjectType.SECRET_DATA,
    ObjectType.OPAQUE_OBJECT,
    ObjectType.SPLIT_KEY,
)
_V1_OBJECT_TYPES = (*SUPPORTED_OBJECT_TYPES, ObjectType.TEMPLATE)


@operation(Operation.DISCOVER_VERSIONS, writes=False)
def discover_versions(ctx: RequestContext, request: DiscoverVersionsRequest) -> Struct:
    ours = [ProtocolVersion(major=major, minor=minor) for major, minor in SUPPORTED_VERSIONS]
    if request.protocol_versions:
        # The client's list filtered to what we speak, in the client's order of preference.
        wanted = [pv.as_tuple() for pv in request.protocol_versions]
        ours = [ProtocolVersion(major=v[0], minor=v[1]) for v in wanted if v in SUPPORTED_VERSIONS]
    return DiscoverVersionsResponse(protocol_versions=tuple(ours))


@operation(Operation.QUERY, writes=False)
def query(ctx: RequestContext, request: QueryRequest) -> Struct:
    """Every Query Function of the client's version answered (one it lacks: Invalid Field);
    what the server does not have is an empty answer (KMIP: "the response payload is empty if
    there are no values to return")."""
    functions = requested_functions(ctx.version, request.query_functions)
    fields: dict[str, Any] = {}
    if Q.QUERY_OPERATIONS in functions:
        fields["operations"] = tuple(supported_operations(ctx.version, test_harness=ctx.test_harness))
    if Q.QUERY_OBJECTS in functions:
        fields["object_types"] = SUPPORTED_OBJECT_TYPES if ctx.v2 else _V1_OBJECT_TYPES
    if Q.QUERY_SERVER_INFORMATION in functions:
        fields["vendor_identification"] = VENDOR
        # 1.x defines no fields inside Server Information (it is vendor-specific): an empty
        # structure, as the OASIS test cases show; 2.x names its fields.
        fields["server_information"] = (
            ServerInformation(
                server_name=VENDOR, product_name="Strongroom KMIP server", server_version=kmip_server.__version__
            )
            if ctx.v2
            else ServerInformation()
        )
    # Query Application Namespaces: none. The server generates Application Data for no
    # Application Specific Information namespace; a client's are stored as given.
    # Query Extension List / Map: none. The server defines no tags, types or attributes in the
    # Extensions range (custom attributes are the clients', stored as they come).
    # Query Attestation Types: none (no attestation). Query Validations: none (no FIPS 140 or
    # Common Criteria validation of this server; a client must not read the token's as its).
    if Q.QUERY_RNGS in functions:
        fields["rng_parameters"] = rng_parameters(ctx)
    if Q.QUERY_PROFILES in functions:
        fields["profile_information"] = profiles_for(ctx.version)
    if Q.QUERY_CAPABILITIES in functions:
        quantum_safe = "2.1" in CONFORMANT_PROFILES.get("QUANTUM_SAFE_SERVER", ())
        fields["capability_information"] = (capability_information(ctx, quantum_safe=quantum_safe),)
    if Q.QUERY_CLIENT_REGISTRATION_METHODS in functions:
        fields["client_registration_methods"] = CLIENT_REGISTRATION_METHODS
    if Q.QUERY_DEFAULTS_INFORMATION in functions:
        fields["defaults_information"] = defaults_information()
    if Q.QUERY_STORAGE_PROTECTION_MASKS in functions:
        fields["protection_storage_masks"] = STORAGE_PROTECTION_MASKS
    return QueryResponse(**fields)


def profiles_for(version: tuple[int, int]) -> tuple[ProfileInformation, ...]:
    """The Profile Information of the conformant profiles of ``version`` (1.x names carry the
    version; 2.x names a profile and gives its version apart)."""
    text = f"{version[0]}.{version[1]}"
    found = []
    for base, versions in CONFORMANT_PROFILES.items():
        if text not in versions:
            continue
        if version >= (2, 0):
            profile = ProfileVersion(major=version[0], minor=version[1])
            found.append(ProfileInformation(profile_name=ProfileName[base], profile_version=profile))
        else:
            found.append(ProfileInformation(profile_name=ProfileName[f"{base}_KMIP_V{version[0]}_{version[1]}"]))
    return tuple(found)
