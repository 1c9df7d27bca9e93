"""Query: every Query Function of KMIP 2.1 and 1.4 answered, each with the truth about this
server (its token's generator, its stores' Destroy, the defaults Create applies), and a
function the client's KMIP version lacks refused with Invalid Field. In-process engine, each
test on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from kmip_client.protocol.model import Attributes, version_conflicts
from kmip_client.protocol.model.attributes import ProtectionStorageMasks, RandomNumberGenerator
from kmip_client.protocol.model.base import EnumValue
from kmip_client.protocol.model.payloads.server_info import QueryResponse
from kmip_client.protocol.model.payloads.structures import CapabilityInformation, ServerInformation
from kmip_client.protocol.spec.enums import (
    ClientRegistrationMethod,
    CryptographicAlgorithm,
    DestroyAction,
    DRBGAlgorithm,
    ObjectType,
    Operation,
    ProfileName,
    ProtectionStorageMask,
    QueryFunction,
    ResultReason,
    RNGAlgorithm,
    RNGMode,
    ShreddingAlgorithm,
)
from kmip_server.operations.server_info import SUPPORTED_OBJECT_TYPES, profiles_for

from .engine_support import attributes_of, create, failure, one
from .kmip_messages import V14, V21, item, ok

Q = QueryFunction
V10, V11, V12, V13, V20 = (1, 0), (1, 1), (1, 2), (1, 3), (2, 0)
#: The Query Functions of each KMIP version (the Query Function enumeration; 2.1 added none).
FUNCTIONS_14 = tuple(f for f in Q if f <= Q.QUERY_CLIENT_REGISTRATION_METHODS)
FUNCTIONS_21 = tuple(Q)
#: SoftHSM2 on OpenSSL 3 (the test token): a CTR-DRBG on AES-256.
TOKEN_RNG = RandomNumberGenerator(
    rng_algorithm=RNGAlgorithm.DRBG,
    cryptographic_algorithm=CryptographicAlgorithm.AES,
    cryptographic_length=256,
    drbg_algorithm=DRBGAlgorithm.CTR,
)


def query(engine, version, *functions):
    payload = ok(one(engine, version, item(Operation.QUERY, query_functions=functions)))
    assert version_conflicts(payload, version) == []  # only fields the client's version has
    return payload


def defaults_by_type(payload) -> dict:
    """Defaults Information as {object type: {attribute name: value}}."""
    found = {}
    for defaults in payload.defaults_information.object_defaults:
        assert defaults.object_type not in found  # one Object Defaults per type
        found[defaults.object_type] = {a.name: a.value for a in defaults.attributes.attributes}
    return found


def capabilities(store_url: str, version) -> CapabilityInformation:
    """What the server says it can do; Destroy as the store does it (README: "Destroy is
    irreversible on SQLite"; PostgreSQL keeps a dead row version until VACUUM)."""
    sqlite = store_url.startswith("sqlite")
    return CapabilityInformation(
        streaming_capability=False,
        asynchronous_capability=False,
        attestation_capability=False,
        batch_undo_capability=True if version >= V14 else None,
        batch_continue_capability=True if version >= V14 else None,
        destroy_action=DestroyAction.KEY_MATERIAL_SHREDDED if sqlite else DestroyAction.KEY_MATERIAL_DELETED,
        shredding_algorithm=ShreddingAlgorithm.UNSPECIFIED if sqlite else ShreddingAlgorithm.UNSUPPORTED,
        rng_mode=RNGMode.SHARED_INSTANTIATION,
        quantum_safe_capability=True if version >= (2, 1) else None,
    )


# --------------------------------------------------------------------------- all at once


@pytest.mark.parametrize("version", [V20, V21])
def test_every_query_function_of_2_x_in_one_query(engine, store_url, version):
    payload = query(engine, version, *FUNCTIONS_21)
    ops = set(payload.operations)
    assert {Operation.CREATE, Operation.GET, Operation.QUERY, Operation.SET_ATTRIBUTE} <= ops
    crypto = {
        Operation.ENCRYPT,
        Operation.DECRYPT,
        Operation.SIGN,
        Operation.SIGNATURE_VERIFY,
        Operation.MAC,
        Operation.MAC_VERIFY,
        Operation.HASH,
        Operation.RNG_RETRIEVE,
        Operation.RNG_SEED,
        Operation.DERIVE_KEY,
        Operation.PKCS_11,
    }
    assert crypto <= ops
    assert Operation.RE_KEY in ops and Operation.RE_KEY_KEY_PAIR in ops
    # Poll and Cancel: the requester's side of M-of-N approval (operations/asynchronous.py).
    assert {Operation.POLL, Operation.CANCEL} <= ops and Operation.ARCHIVE not in ops
    assert {Operation.CERTIFY, Operation.VALIDATE} <= ops
    assert payload.object_types == SUPPORTED_OBJECT_TYPES
    assert payload.vendor_identification == "Strongroom"
    assert payload.server_information.server_name == "Strongroom"
    # Nothing of these: no namespace the server fills in, no extensions, no attestation, no
    # formal validation.
    assert payload.application_namespaces == ()
    assert payload.extension_information == ()
    assert payload.attestation_types == ()
    assert payload.validation_information == ()
    assert payload.rng_parameters == (TOKEN_RNG,)
    assert payload.profile_information == profiles_for(version) != ()
    assert payload.capability_information == (capabilities(store_url, version),)
    assert payload.client_registration_methods == (ClientRegistrationMethod.SERVER_PRE_GENERATED,)
    assert defaults_by_type(payload) == {
        ObjectType.SYMMETRIC_KEY: {"Sensitive": False, "Extractable": True},
        ObjectType.SECRET_DATA: {"Cryptographic Length": 256, "Sensitive": False, "Extractable": True},
    }
    assert payload.protection_storage_masks == ProtectionStorageMasks(masks=(int(ProtectionStorageMask.SOFTWARE),))


def test_every_query_function_of_1_4_in_one_query(engine, store_url):
    payload = query(engine, V14, *FUNCTIONS_14)
    assert Operation.CREATE in payload.operations and Operation.SET_ATTRIBUTE not in payload.operations
    assert payload.object_types == (*SUPPORTED_OBJECT_TYPES, ObjectType.TEMPLATE)  # Templates are 1.x
    assert payload.vendor_identification == "Strongroom" and payload.server_information == ServerInformation()
    assert payload.application_namespaces == payload.extension_information == payload.attestation_types == ()
    assert payload.validation_information == ()
    assert payload.rng_parameters == (TOKEN_RNG,)
    names = {p.profile_name for p in payload.profile_information}
    assert ProfileName.SYMMETRIC_KEY_LIFECYCLE_SERVER_KMIP_V1_4 in names
    assert all(p.profile_version is None for p in payload.profile_information)  # 1.x names carry it
    assert payload.capability_information == (capabilities(store_url, V14),)
    assert payload.client_registration_methods == (ClientRegistrationMethod.SERVER_PRE_GENERATED,)
    # 2.0's functions are not 1.4's: nothing of them in the answer.
    assert payload.defaults_information is None and payload.protection_storage_masks is None


def test_every_query_function_of_1_3_in_one_query(engine, store_url):
    payload = query(engine, V13, *FUNCTIONS_14)
    assert payload.rng_parameters == (TOKEN_RNG,)
    # 1.3's Capability Information has no batch fields (1.4 added them).
    assert payload.capability_information == (capabilities(store_url, V13),)
    assert payload.capability_information[0].batch_undo_capability is None
    assert payload.client_registration_methods == (ClientRegistrationMethod.SERVER_PRE_GENERATED,)
    assert ProfileName.SYMMETRIC_KEY_LIFECYCLE_SERVER_KMIP_V1_3 in {p.profile_name for p in payload.profile_information}


# --------------------------------------------------------------------------- each answer is the server's truth


@pytest.mark.parametrize("version", [V13, V14, V21])
def test_query_rngs_is_the_generator_of_the_keys_the_server_makes(engine, version):
    (rng,) = query(engine, version, Q.QUERY_RNGS).rng_parameters
    uid = create(engine, version)
    assert attributes_of(engine, uid, version, names=["Random Number Generator"]) == {"Random Number Generator": rng}
    assert rng == TOKEN_RNG


@pytest.mark.parametrize("version", [V13, V14, V21])
def test_query_capabilities_in_each_version(engine, store_url, version):
    payload = query(engine, version, Q.QUERY_CAPABILITIES)
    assert payload.capability_information == (capabilities(store_url, version),)
    assert payload.capability_information[0].unwrap_mode is None  # wrapped Register is refused: neither mode
    assert payload == QueryResponse(capability_information=payload.capability_information)


def test_query_defaults_information_is_what_create_applies(engine):
    defaults = defaults_by_type(query(engine, V21, Q.QUERY_DEFAULTS_INFORMATION))
    assert set(defaults) == {ObjectType.SYMMETRIC_KEY, ObjectType.SECRET_DATA}  # what Create makes in 2.x
    key, expected = create(engine, V21), defaults[ObjectType.SYMMETRIC_KEY]  # AES-256, those left out
    assert attributes_of(engine, key, V21, names=list(expected)) == expected
    made = ok(one(engine, V21, item(Operation.CREATE, object_type=ObjectType.SECRET_DATA, attributes=Attributes())))
    secret = defaults[ObjectType.SECRET_DATA]
    assert attributes_of(engine, made.unique_identifier, V21, names=list(secret)) == secret


@pytest.mark.parametrize("version", [V20, V21])
def test_query_storage_protection_masks_is_the_mask_objects_get(engine, version):
    payload = query(engine, version, Q.QUERY_STORAGE_PROTECTION_MASKS)
    uid = create(engine, version)
    mask = attributes_of(engine, uid, version, names=["Protection Storage Mask"])["Protection Storage Mask"]
    assert payload.protection_storage_masks.masks == (mask,) == (ProtectionStorageMask.SOFTWARE,)


def test_extension_list_and_map_both_asked_answer_once(engine):
    payload = query(engine, V21, Q.QUERY_EXTENSION_LIST, Q.QUERY_EXTENSION_MAP, Q.QUERY_RNGS)
    assert payload == QueryResponse(rng_parameters=(TOKEN_RNG,))  # no extensions, listed or mapped


# --------------------------------------------------------------------------- versions


@pytest.mark.parametrize(
    "version, function",
    [
        (V10, Q.QUERY_EXTENSION_LIST),
        (V10, Q.QUERY_EXTENSION_MAP),
        (V11, Q.QUERY_ATTESTATION_TYPES),
        (V12, Q.QUERY_RNGS),
        (V12, Q.QUERY_VALIDATIONS),
        (V12, Q.QUERY_PROFILES),
        (V12, Q.QUERY_CAPABILITIES),
        (V12, Q.QUERY_CLIENT_REGISTRATION_METHODS),
        (V14, Q.QUERY_DEFAULTS_INFORMATION),
        (V14, Q.QUERY_STORAGE_PROTECTION_MASKS),
    ],
)
def test_a_query_function_the_clients_version_lacks_is_invalid_field(engine, version, function):
    request = item(Operation.QUERY, query_functions=(Q.QUERY_OPERATIONS, function))
    message = failure(one(engine, version, request), ResultReason.INVALID_FIELD)
    assert f"not defined in KMIP {version[0]}.{version[1]}" in message


def test_a_query_function_no_version_has_is_invalid_field(engine):
    request = item(Operation.QUERY, query_functions=(EnumValue(0x0F),))
    assert "0x0000000F" in failure(one(engine, V21, request), ResultReason.INVALID_FIELD)


@pytest.mark.parametrize(
    "version, functions",
    [
        (V11, (Q.QUERY_EXTENSION_LIST, Q.QUERY_EXTENSION_MAP)),
        (V12, (Q.QUERY_ATTESTATION_TYPES,)),
        (V13, (Q.QUERY_VALIDATIONS,)),
    ],
)
def test_functions_with_nothing_to_report_are_answered_empty_from_their_first_version(engine, version, functions):
    """No namespaces, extensions, attestation types or validations: Success with an empty
    payload ("the response payload is empty if there are no values to return"), while the
    version before refuses the same function (not answered empty there too)."""
    assert query(engine, version, *functions) == QueryResponse()
    before = (version[0], version[1] - 1)
    failure(one(engine, before, item(Operation.QUERY, query_functions=functions)), ResultReason.INVALID_FIELD)
