"""PyKMIP 0.11's client (an independent KMIP implementation) asks a real ``strongroom serve``
Query with several Query Functions at once, and decodes the answers with its own payload
classes: operations and objects through its ``query`` call, the later functions (RNGs,
Capabilities, Client Registration Methods ...) through ``send_request_payload``, since its
QueryResult drops them; a 1.2 client asking a 1.3 function gets Invalid Field.

Not asked in 2.0, because PyKMIP 0.11 cannot decode the answer KMIP 2.0 defines: Query
Profiles (its Profile Information has no Profile Version, which every 2.x Profile Information
carries), Query Defaults Information (its Attributes reader knows no Sensitive or Extractable,
the defaults reported) and Query Storage Protection Masks (it reads bare Protection Storage
Mask items where 2.0 has a Protection Storage Masks structure). Profiles are asked in 1.4; the
engine tests (tests/integration/test_engine_query.py) check all three answers.
"""

from __future__ import annotations

import pytest
from kmip.core import enums
from kmip.core import exceptions as core_exceptions
from kmip.core.messages import payloads

from kmip_server.operations.server_info import profiles_for

from .conftest import ClientFactory

Q = enums.QueryFunction
V1_2, V1_4, V2_0 = enums.KMIPVersion.KMIP_1_2, enums.KMIPVersion.KMIP_1_4, enums.KMIPVersion.KMIP_2_0
SEVERAL = [
    Q.QUERY_OPERATIONS,
    Q.QUERY_OBJECTS,
    Q.QUERY_SERVER_INFORMATION,
    Q.QUERY_EXTENSION_LIST,
    Q.QUERY_ATTESTATION_TYPES,
    Q.QUERY_RNGS,
    Q.QUERY_VALIDATIONS,
    Q.QUERY_CAPABILITIES,
    Q.QUERY_CLIENT_REGISTRATION_METHODS,
]


@pytest.mark.parametrize("kmip_version", [V1_4, V2_0], ids=["kmip1.4", "kmip2.0"])
def test_query_with_several_functions(connect: ClientFactory, kmip_version: enums.KMIPVersion) -> None:
    client = connect()
    result = client.proxy.query(query_functions=[Q.QUERY_OPERATIONS, Q.QUERY_OBJECTS, Q.QUERY_SERVER_INFORMATION])
    assert result.result_status.value == enums.ResultStatus.SUCCESS
    assert {enums.Operation.CREATE, enums.Operation.GET, enums.Operation.QUERY} <= set(result.operations)
    assert enums.ObjectType.SYMMETRIC_KEY in result.object_types
    assert result.vendor_identification == "Strongroom"

    # Profiles only in 1.4 (see the module's docstring).
    functions = SEVERAL + ([Q.QUERY_PROFILES] if kmip_version < V2_0 else [])
    answer = client.proxy.send_request_payload(enums.Operation.QUERY, payloads.QueryRequestPayload(functions))
    assert answer.vendor_identification == "Strongroom"
    # No extensions, attestation types or validations.
    assert not answer.extension_information and answer.attestation_types is None
    assert not answer.validation_information
    (rng,) = answer.rng_parameters  # the token's generator: SoftHSM2 on OpenSSL's CTR-DRBG
    assert rng.rng_algorithm == enums.RNGAlgorithm.DRBG and rng.drbg_algorithm == enums.DRBGAlgorithm.CTR
    assert rng.cryptographic_algorithm == enums.CryptographicAlgorithm.AES and rng.cryptographic_length == 256
    if kmip_version < V2_0:
        # Exactly the conformant profiles the server claims (1.x names carry the version).
        names = [p.profile_name.value for p in answer.profile_information]
        assert names == [int(p.profile_name) for p in profiles_for((1, 4))] != []
    (capability,) = answer.capability_information
    assert (capability.streaming_capability, capability.asynchronous_capability) == (False, False)
    assert capability.attestation_capability is False
    # PyKMIP 0.11 reads Batch Undo Capability into its batch_continue_capability (and then
    # overwrites it with Batch Continue's): both are True here, and only the second shows.
    assert capability.batch_continue_capability is True
    assert capability.unwrap_mode is None
    assert capability.destroy_action == enums.DestroyAction.KEY_MATERIAL_SHREDDED  # the interop server is on SQLite
    assert capability.shredding_algorithm == enums.ShreddingAlgorithm.UNSPECIFIED
    assert capability.rng_mode == enums.RNGMode.SHARED_INSTANTIATION
    assert answer.client_registration_methods == [enums.ClientRegistrationMethod.SERVER_PREGENERATED]


@pytest.mark.parametrize("kmip_version", [V1_2], ids=["kmip1.2"])
def test_a_1_3_query_function_from_a_1_2_client_is_invalid_field(connect: ClientFactory) -> None:
    client = connect()
    request = payloads.QueryRequestPayload([Q.QUERY_OPERATIONS, Q.QUERY_CAPABILITIES])
    with pytest.raises(core_exceptions.OperationFailure) as failed:
        client.proxy.send_request_payload(enums.Operation.QUERY, request)
    assert failed.value.status == enums.ResultStatus.OPERATION_FAILED
    assert failed.value.reason == enums.ResultReason.INVALID_FIELD
    assert "not defined in KMIP 1.2" in str(failed.value)
