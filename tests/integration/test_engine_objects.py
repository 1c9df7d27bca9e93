"""The engine in process — objects, lifecycle, batches, bad input: real SoftHSM2 custody, real SQLite, the dispatcher fed encoded bytes.

Each test gets a fresh database; the clock is injectable so date rules are tested exactly.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from kmip_client.protocol.model import Attribute, Name
from kmip_client.protocol.model.attributes import RevocationReason
from kmip_client.protocol.model.base import EnumValue
from kmip_client.protocol.model.objects import KeyBlock, KeyValue, OpaqueObject, PrivateKey, SecretData
from kmip_client.protocol.model.payloads.harness import InteropResponse, LogResponse
from kmip_client.protocol.model.payloads.lifecycle import CheckResponse
from kmip_client.protocol.model.payloads.structures import ServerInformation
from kmip_client.protocol.spec.enums import (
    BatchErrorContinuationOption,
    CryptographicAlgorithm,
    KeyFormatType,
    ObjectType,
    Operation,
    QueryFunction,
    ResultReason,
    ResultStatus,
    RevocationReasonCode,
    SecretDataType,
    State,
    UniqueIdentifier,
)
from kmip_server.engine.registry import HANDLERS, supported_operations

from .engine_support import (
    ADMIN,
    ALICE,
    BOB,
    T0,
    attributes_of,
    create,
    failure,
    locate,
    one,
    run,
    set_attribute,
    state_of,
)
from .kmip_messages import V14, V21, aes_attributes, at, attrs_for, create_aes, item, ok, request_bytes, response
from .test_engine_registration import PKCS8, RSA_NUMBERS

V20 = (2, 0)

# --------------------------------------------------------------------------- server information


@pytest.mark.parametrize("version", [(1, 0), V14, (2, 0), V21])
def test_answers_in_the_clients_version(engine, version):
    result = run(engine, version, item(Operation.DISCOVER_VERSIONS))
    assert result.header.protocol_version.as_tuple() == version
    versions = [v.as_tuple() for v in ok(result.batch_items[0]).protocol_versions]
    assert versions == [(2, 1), (2, 0), (1, 4), (1, 3), (1, 2), (1, 1), (1, 0)]


def test_response_headers_carry_the_time_version_and_count_of_each_answer(engine):
    # Encoded headers are reused within a second: each must still be the right one.
    for version, count in [(V14, 1), (V14, 2), (V21, 2), (V14, 1)]:
        before = int(time.time())
        result = run(engine, version, *[item(Operation.DISCOVER_VERSIONS)] * count)
        after = int(time.time())
        assert result.header.protocol_version.as_tuple() == version
        assert result.header.batch_count == len(result.batch_items) == count
        assert before <= result.header.time_stamp.timestamp() <= after


def test_query_profiles_names_the_conformant_profiles_in_each_version(engine):
    from kmip_client.protocol.spec.enums import ProfileName

    profiles = item(Operation.QUERY, query_functions=(QueryFunction.QUERY_PROFILES,))
    v14 = {p.profile_name for p in ok(one(engine, V14, profiles)).profile_information}
    assert ProfileName.SYMMETRIC_KEY_LIFECYCLE_SERVER_KMIP_V1_4 in v14
    assert ProfileName.BASELINE_SERVER_BASIC_KMIP_V1_4 not in v14  # not shown by its test cases
    v21 = ok(one(engine, V21, profiles)).profile_information
    lifecycle = next(p for p in v21 if p.profile_name == ProfileName.SYMMETRIC_KEY_LIFECYCLE_SERVER)
    assert (lifecycle.profile_version.major, lifecycle.profile_version.minor) == (2, 1)
    v12 = item(Operation.QUERY, query_functions=(QueryFunction.QUERY_PROFILES,))
    failure(one(engine, (1, 2), v12), ResultReason.INVALID_FIELD)  # Query Profiles came in 1.3


def test_interop_answers_only_a_server_run_for_testing(engine):
    begin = item(Operation.INTEROP, interop_function=EnumValue(1), interop_identifier="BL-M-1-21")
    failure(one(engine, V21, begin), ResultReason.OPERATION_NOT_SUPPORTED)
    query = item(Operation.QUERY, query_functions=(QueryFunction.QUERY_OPERATIONS,))
    assert Operation.INTEROP not in ok(one(engine, V21, query)).operations
    engine.test_harness = True
    for function in (1, 2, 3):  # Begin, End, Reset
        request = item(Operation.INTEROP, interop_function=EnumValue(function), interop_identifier="BL-M-1-21")
        assert ok(one(engine, V21, request)) == InteropResponse()
    assert Operation.INTEROP in ok(one(engine, V21, query)).operations
    bad = item(Operation.INTEROP, interop_function=EnumValue(9), interop_identifier="x")
    assert "Begin, End or Reset" in failure(one(engine, V21, bad), ResultReason.INVALID_FIELD)


def test_log_writes_the_message_to_the_server_log_printably(engine, caplog):
    with caplog.at_level(logging.INFO, logger="strongroom.client_log"):
        assert ok(one(engine, V21, item(Operation.LOG, log_message="hello\nforged line"))) == LogResponse()
    assert "identity=alice message=hello\\x0aforged line" in caplog.text
    failure(one(engine, V14, item(Operation.LOG, log_message="x")), ResultReason.OPERATION_NOT_SUPPORTED)  # 2.x


def test_query_reports_only_what_is_registered(engine):
    payload = ok(
        one(
            engine,
            V21,
            item(
                Operation.QUERY,
                query_functions=(
                    QueryFunction.QUERY_OPERATIONS,
                    QueryFunction.QUERY_OBJECTS,
                    QueryFunction.QUERY_SERVER_INFORMATION,
                ),
            ),
        )
    )
    ops = set(payload.operations)
    assert {Operation.CREATE, Operation.GET, Operation.LOCATE, Operation.SET_ATTRIBUTE, Operation.ENCRYPT} <= ops
    assert ops == set(supported_operations((2, 1)))
    assert {Operation.CREATE_KEY_PAIR, Operation.RE_KEY, Operation.RE_KEY_KEY_PAIR} <= ops
    assert Operation.CERTIFY in ops and Operation.ARCHIVE not in ops
    assert set(payload.object_types) == {
        ObjectType.SYMMETRIC_KEY,
        ObjectType.PUBLIC_KEY,
        ObjectType.PRIVATE_KEY,
        ObjectType.CERTIFICATE,
        ObjectType.SECRET_DATA,
        ObjectType.OPAQUE_OBJECT,
        ObjectType.SPLIT_KEY,
    }
    assert payload.vendor_identification == "Strongroom"
    assert payload.server_information.server_name == "Strongroom"
    v14 = ok(one(engine, V14, item(Operation.QUERY, query_functions=(QueryFunction.QUERY_OPERATIONS,))))
    assert Operation.SET_ATTRIBUTE not in set(v14.operations)  # a 2.x operation
    assert v14.server_information is None  # not asked for
    info = QueryFunction.QUERY_SERVER_INFORMATION
    v14 = ok(one(engine, V14, item(Operation.QUERY, query_functions=(info,))))
    # 1.x names no fields of Server Information: present and empty, as the OASIS cases show.
    assert v14.vendor_identification == "Strongroom" and v14.server_information == ServerInformation()


# --------------------------------------------------------------------------- create / get


@pytest.mark.parametrize("version", [V14, V21])
@pytest.mark.parametrize("length", [128, 192, 256])
def test_create_then_get_raw_and_transparent(engine, version, length):
    uid = create(engine, version, length=length)
    got = ok(one(engine, version, item(Operation.GET, unique_identifier=uid)))
    block = got.managed_object.key_block
    assert got.object_type == ObjectType.SYMMETRIC_KEY and got.unique_identifier == uid
    assert block.key_format_type == KeyFormatType.RAW
    assert block.cryptographic_algorithm == CryptographicAlgorithm.AES and block.cryptographic_length == length
    key = block.key_value.key_material
    assert isinstance(key, bytes) and len(key) == length // 8
    transparent = ok(
        one(
            engine,
            version,
            item(Operation.GET, unique_identifier=uid, key_format_type=KeyFormatType.TRANSPARENT_SYMMETRIC_KEY),
        )
    )
    tblock = transparent.managed_object.key_block
    assert tblock.key_format_type == KeyFormatType.TRANSPARENT_SYMMETRIC_KEY
    assert tblock.key_value.key_material.key == key


def test_two_keys_differ_and_hmac_keys_work(engine):
    a = ok(one(engine, V14, item(Operation.GET, unique_identifier=create(engine))))
    b = ok(one(engine, V14, item(Operation.GET, unique_identifier=create(engine))))
    assert a.managed_object.key_block.key_value.key_material != b.managed_object.key_block.key_value.key_material
    hmac = [
        Attribute(name="Cryptographic Algorithm", value=CryptographicAlgorithm.HMAC_SHA256),
        Attribute(name="Cryptographic Length", value=512),
    ]
    uid = ok(one(engine, V21, item(Operation.CREATE, object_type=ObjectType.SYMMETRIC_KEY, **attrs_for(V21, hmac))))
    key = ok(one(engine, V21, item(Operation.GET, unique_identifier=uid.unique_identifier)))
    assert len(key.managed_object.key_block.key_value.key_material) == 64


@pytest.mark.parametrize("length,size", [(168, 24), (112, 16)])
def test_triple_des_keys_have_odd_parity_and_their_length(engine, length, size):
    des3 = [
        Attribute(name="Cryptographic Algorithm", value=CryptographicAlgorithm.DES3),
        Attribute(name="Cryptographic Length", value=length),
    ]
    uid = ok(one(engine, V14, item(Operation.CREATE, object_type=ObjectType.SYMMETRIC_KEY, **attrs_for(V14, des3))))
    block = ok(one(engine, V14, item(Operation.GET, unique_identifier=uid.unique_identifier))).managed_object.key_block
    key = block.key_value.key_material
    assert len(key) == size and block.cryptographic_length == length
    assert all(bin(byte).count("1") % 2 == 1 for byte in key)  # each byte: 7 key bits and odd parity
    for bad in (128, 192):
        des3[1] = Attribute(name="Cryptographic Length", value=bad)
        request = item(Operation.CREATE, object_type=ObjectType.SYMMETRIC_KEY, **attrs_for(V14, des3))
        assert "112 or 168" in failure(one(engine, V14, request), ResultReason.INVALID_FIELD)


@pytest.mark.parametrize(
    "algorithm,length,safe",
    [
        (CryptographicAlgorithm.AES, 128, False),
        (CryptographicAlgorithm.AES, 256, True),
        (CryptographicAlgorithm.DES3, 168, False),
        (CryptographicAlgorithm.HMAC_SHA256, 256, True),
    ],
)
def test_a_quantum_safe_key_needs_256_bits(engine, algorithm, length, safe):
    attributes = [
        Attribute(name="Cryptographic Algorithm", value=algorithm),
        Attribute(name="Cryptographic Length", value=length),
        Attribute(name="Quantum Safe", value=True),
    ]
    request = item(Operation.CREATE, object_type=ObjectType.SYMMETRIC_KEY, **attrs_for(V21, attributes))
    if safe:
        uid = ok(one(engine, V21, request)).unique_identifier
        assert attributes_of(engine, uid, V21, names=["Quantum Safe"])["Quantum Safe"] is True
    else:
        assert "not quantum safe" in failure(one(engine, V21, request), ResultReason.GENERAL_FAILURE)
    attributes[2] = Attribute(name="Quantum Safe", value=False)  # not asked for: any length will do
    ok(one(engine, V21, item(Operation.CREATE, object_type=ObjectType.SYMMETRIC_KEY, **attrs_for(V21, attributes))))


@pytest.mark.parametrize(
    "version,attribute,value,reason",
    [
        (V21, "Extractable", False, ResultReason.NOT_EXTRACTABLE),
        (V21, "Sensitive", True, ResultReason.SENSITIVE),
        # KMIP 1.4 defines both reasons (Table 317: 0x16, 0x17) along with both attributes.
        (V14, "Extractable", False, ResultReason.NOT_EXTRACTABLE),
        (V14, "Sensitive", True, ResultReason.SENSITIVE),
        # 1.0-1.3 have neither: a key created so over 2.1 is refused them as Permission Denied.
        ((1, 3), "Extractable", False, ResultReason.PERMISSION_DENIED),
        ((1, 2), "Sensitive", True, ResultReason.PERMISSION_DENIED),
        ((1, 0), "Sensitive", True, ResultReason.PERMISSION_DENIED),
    ],
)
def test_get_withholds_non_extractable_and_sensitive_values(engine, version, attribute, value, reason):
    uid = create(engine, max(version, V14), extra=[Attribute(name=attribute, value=value)])
    message = failure(one(engine, version, item(Operation.GET, unique_identifier=uid)), reason)
    assert uid in message and ("not extractable" in message or "sensitive" in message)
    assert attributes_of(engine, uid, max(version, V14), names=[attribute])[attribute] is value  # still visible
    # The opposite values release it; both are modifiable by the client (KMIP 2.1 4.23, 4.55).
    ok(set_attribute(engine, uid, Attribute(name=attribute, value=not value)))
    key = ok(one(engine, version, item(Operation.GET, unique_identifier=uid))).managed_object
    assert len(key.key_block.key_value.key_material) == 32


def test_get_releases_values_marked_extractable_and_not_sensitive(engine):
    extra = [Attribute(name="Extractable", value=True), Attribute(name="Sensitive", value=False)]
    uid = create(engine, V21, extra=extra)
    ok(one(engine, V21, item(Operation.GET, unique_identifier=uid)))


@pytest.mark.parametrize(
    "version,length,reason",
    [
        (V14, 100, ResultReason.INVALID_FIELD),
        (V21, 100, ResultReason.INVALID_ATTRIBUTE_VALUE),
    ],
)
def test_create_rejects_bad_lengths(engine, version, length, reason):
    failure(one(engine, version, create_aes(version, length=length)), reason)


def test_create_refuses_other_object_types_and_missing_algorithm(engine):
    failure(
        one(
            engine, V14, item(Operation.CREATE, object_type=ObjectType.PRIVATE_KEY, **attrs_for(V14, aes_attributes()))
        ),
        ResultReason.INVALID_FIELD,
    )
    failure(
        one(
            engine,
            V21,
            item(
                Operation.CREATE,
                object_type=ObjectType.SYMMETRIC_KEY,
                **attrs_for(V21, [Attribute(name="Cryptographic Length", value=128)]),
            ),
        ),
        ResultReason.MISSING_DATA,
    )


def test_create_refuses_server_only_attributes(engine):
    extra = [Attribute(name="State", value=State.ACTIVE)]
    failure(one(engine, V14, create_aes(V14, extra=extra)), ResultReason.PERMISSION_DENIED)
    failure(one(engine, V21, create_aes(V21, extra=extra)), ResultReason.ATTRIBUTE_READ_ONLY)


@pytest.mark.parametrize("version", [V14, V21])
def test_register_secret_data_and_opaque_object_round_trip(engine, version):
    secret = SecretData(
        secret_data_type=SecretDataType.PASSWORD,
        key_block=KeyBlock(
            key_format_type=KeyFormatType.OPAQUE, key_value=KeyValue(key_material=b"correct horse battery staple")
        ),
    )
    uid = ok(
        one(
            engine,
            version,
            item(
                Operation.REGISTER, object_type=ObjectType.SECRET_DATA, managed_object=secret, **attrs_for(version, [])
            ),
        )
    ).unique_identifier
    got = ok(one(engine, version, item(Operation.GET, unique_identifier=uid)))
    assert got.object_type == ObjectType.SECRET_DATA
    assert got.managed_object.secret_data_type == SecretDataType.PASSWORD
    assert got.managed_object.key_block.key_value.key_material == b"correct horse battery staple"
    opaque = OpaqueObject(opaque_data_type=EnumValue(0x80000001), opaque_data_value=b"\x00\x01opaque blob")
    uid = ok(
        one(
            engine,
            version,
            item(
                Operation.REGISTER,
                object_type=ObjectType.OPAQUE_OBJECT,
                managed_object=opaque,
                **attrs_for(version, []),
            ),
        )
    ).unique_identifier
    assert ok(one(engine, version, item(Operation.GET, unique_identifier=uid))).managed_object == opaque


def test_register_symmetric_key_checks_length(engine):
    key = bytes(range(32))
    from kmip_client.protocol.model.objects import SymmetricKey

    sym = SymmetricKey(
        key_block=KeyBlock(
            key_format_type=KeyFormatType.RAW,
            key_value=KeyValue(key_material=key),
            cryptographic_algorithm=CryptographicAlgorithm.AES,
            cryptographic_length=256,
        )
    )
    uid = ok(
        one(
            engine,
            V14,
            item(Operation.REGISTER, object_type=ObjectType.SYMMETRIC_KEY, managed_object=sym, template_attribute=None),
        )
    ).unique_identifier
    got = ok(one(engine, V14, item(Operation.GET, unique_identifier=uid)))
    assert got.managed_object.key_block.key_value.key_material == key
    bad = SymmetricKey(
        key_block=KeyBlock(
            key_format_type=KeyFormatType.RAW,
            key_value=KeyValue(key_material=key[:20]),
            cryptographic_algorithm=CryptographicAlgorithm.AES,
        )
    )
    failure(
        one(engine, V14, item(Operation.REGISTER, object_type=ObjectType.SYMMETRIC_KEY, managed_object=bad)),
        ResultReason.INVALID_FIELD,
    )


def stored_bytes(engine) -> bytes:
    """Everything the store holds: on SQLite the database files themselves (WAL included),
    on PostgreSQL every column of every row of the server's tables."""
    sql_engine = engine.repository.engine
    if sql_engine.dialect.name == "sqlite":
        db = Path(sql_engine.url.database)
        files = [p for p in db.parent.iterdir() if p.name.startswith(db.name)]
        assert len(files) >= 2  # the database and its WAL
        return b"".join(p.read_bytes() for p in files)
    found = []
    with sql_engine.connect() as conn:
        for table in ("managed_objects", "object_attributes"):
            for row in conn.execute(text(f"SELECT * FROM {table}")):
                found.extend(v if isinstance(v, bytes) else str(v).encode() for v in row if v is not None)
    return b"\x00".join(found)


def wrapped_value(engine, uid: str) -> bytes | None:
    with engine.repository.engine.connect() as conn:
        return conn.execute(text("SELECT wrapped_value FROM managed_objects WHERE uid = :uid"), {"uid": uid}).scalar()


def test_no_key_material_in_the_store(engine):
    keys = []
    for _ in range(5):
        got = ok(one(engine, V14, item(Operation.GET, unique_identifier=create(engine))))
        keys.append(got.managed_object.key_block.key_value.key_material)
    secret = b"plaintext-secret-never-stored-0123456789"
    ok(
        one(
            engine,
            V14,
            item(
                Operation.REGISTER,
                object_type=ObjectType.OPAQUE_OBJECT,
                managed_object=OpaqueObject(opaque_data_type=EnumValue(0x80000001), opaque_data_value=secret),
            ),
        )
    )
    # A registered private key (PKCS#8 DER): neither the encoding nor its private exponent.
    pkcs8 = PKCS8
    private = PrivateKey(
        key_block=KeyBlock(
            key_format_type=KeyFormatType.PKCS_8,
            key_value=KeyValue(key_material=pkcs8),
            cryptographic_algorithm=CryptographicAlgorithm.RSA,
            cryptographic_length=1024,
        )
    )
    ok(one(engine, V21, item(Operation.REGISTER, object_type=ObjectType.PRIVATE_KEY, managed_object=private)))
    exponent = RSA_NUMBERS.d.to_bytes((RSA_NUMBERS.d.bit_length() + 7) // 8, "big")
    blob = stored_bytes(engine)
    assert len(blob) > 1000
    for key in [*keys, secret, pkcs8, exponent]:
        assert key not in blob and key.hex().encode() not in blob


@pytest.mark.parametrize(
    ("version", "reason"),
    [(V14, ResultReason.ITEM_NOT_FOUND), (V20, ResultReason.OBJECT_NOT_FOUND), (V21, ResultReason.OBJECT_NOT_FOUND)],
)
@pytest.mark.parametrize("operation", [Operation.GET, Operation.GET_ATTRIBUTES, Operation.DESTROY, Operation.REVOKE])
def test_unknown_uid_is_object_not_found_in_2x(engine, version, reason, operation):
    """KMIP 2.x has Object Not Found (v2.1 BL-M-4 step 6); 1.x only Item Not Found."""
    fields = {"unique_identifier": "AAABBBCCC"}
    if operation == Operation.REVOKE:
        fields["revocation_reason"] = RevocationReason(code=RevocationReasonCode.UNSPECIFIED)
    failure(one(engine, version, item(operation, **fields)), reason)


def test_another_owners_object_is_answered_as_a_missing_one(engine):
    missing = failure(one(engine, V14, item(Operation.GET, unique_identifier="no-such-object")), ResultReason.ITEM_NOT_FOUND)
    uid = create(engine, identity=ALICE)
    for operation in (Operation.GET, Operation.DESTROY):
        hidden = failure(one(engine, V14, item(operation, unique_identifier=uid), BOB), ResultReason.ITEM_NOT_FOUND)
        assert hidden == missing.replace("no-such-object", uid)  # nothing tells the two apart
    failure(one(engine, V21, item(Operation.GET, unique_identifier=uid), BOB), ResultReason.OBJECT_NOT_FOUND)
    ok(one(engine, V14, item(Operation.GET, unique_identifier=uid), ADMIN))


def test_a_policy_option_restores_permission_denied_for_hidden_objects(engine):
    from kmip_server.policy import parse_policy

    uid = create(engine, identity=ALICE)
    engine.reload_policy(parse_policy({"settings": {"hidden_objects": "permission-denied"}}, "test"))
    failure(one(engine, V14, item(Operation.GET, unique_identifier=uid), BOB), ResultReason.PERMISSION_DENIED)
    failure(one(engine, V14, item(Operation.GET, unique_identifier="no-such"), BOB), ResultReason.ITEM_NOT_FOUND)


# --------------------------------------------------------------------------- lifecycle


@pytest.mark.parametrize(
    "version,denied", [(V14, ResultReason.PERMISSION_DENIED), (V21, ResultReason.WRONG_KEY_LIFECYCLE_STATE)]
)
def test_lifecycle_compromise_path(engine, version, denied):
    uid = create(engine, version)
    assert state_of(engine, uid, version) == State.PRE_ACTIVE
    ok(one(engine, version, item(Operation.ACTIVATE, unique_identifier=uid)))
    assert state_of(engine, uid, version) == State.ACTIVE
    failure(one(engine, version, item(Operation.ACTIVATE, unique_identifier=uid)), denied)
    failure(one(engine, version, item(Operation.DESTROY, unique_identifier=uid)), denied)
    ok(
        one(
            engine,
            version,
            item(
                Operation.REVOKE,
                unique_identifier=uid,
                revocation_reason=RevocationReason(code=RevocationReasonCode.KEY_COMPROMISE),
                compromise_occurrence_date=at(6),
            ),
        )
    )
    got = attributes_of(engine, uid, version, names=["State", "Compromise Occurrence Date", "Compromise Date"])
    assert got["State"] == State.COMPROMISED
    assert got["Compromise Occurrence Date"] == at(6) and got["Compromise Date"] == at(T0)
    ok(one(engine, version, item(Operation.DESTROY, unique_identifier=uid)))
    assert state_of(engine, uid, version) == State.DESTROYED_COMPROMISED
    reason = ResultReason.OBJECT_DESTROYED if version >= (2, 0) else ResultReason.ITEM_NOT_FOUND
    failure(one(engine, version, item(Operation.GET, unique_identifier=uid)), reason)
    assert wrapped_value(engine, uid) is None


def test_revoke_active_key_deactivates_and_destroy_then_works(engine):
    uid = create(engine)
    ok(one(engine, V14, item(Operation.ACTIVATE, unique_identifier=uid)))
    ok(
        one(
            engine,
            V14,
            item(
                Operation.REVOKE,
                unique_identifier=uid,
                revocation_reason=RevocationReason(code=RevocationReasonCode.CESSATION_OF_OPERATION),
            ),
        )
    )
    got = attributes_of(engine, uid, names=["State", "Deactivation Date", "Revocation Reason"])
    assert got["State"] == State.DEACTIVATED and got["Deactivation Date"] == at(T0)
    assert got["Revocation Reason"].code == RevocationReasonCode.CESSATION_OF_OPERATION
    ok(one(engine, V14, item(Operation.DESTROY, unique_identifier=uid)))
    assert state_of(engine, uid) == State.DESTROYED
    failure(one(engine, V14, item(Operation.REVOKE, unique_identifier=uid)), ResultReason.INVALID_FIELD)


def test_future_activation_and_deactivation_dates(engine, clock):
    extra = [
        Attribute(name="Activation Date", value=at(T0 + 100)),
        Attribute(name="Deactivation Date", value=at(T0 + 200)),
    ]
    uid = create(engine, extra=extra)
    assert state_of(engine, uid) == State.PRE_ACTIVE
    clock.now = T0 + 100
    assert state_of(engine, uid) == State.ACTIVE
    clock.now = T0 + 250
    assert state_of(engine, uid) == State.DEACTIVATED
    failure(one(engine, V14, item(Operation.ACTIVATE, unique_identifier=uid)), ResultReason.PERMISSION_DENIED)
    # A past activation date on create makes the key Active at once.
    past = create(engine, extra=[Attribute(name="Activation Date", value=at(T0))])
    assert state_of(engine, past) == State.ACTIVE


def test_check_enforces_usage_mask_and_state(engine):
    from kmip_client.protocol.spec.enums import CryptographicUsageMask as M

    uid = create(engine, V21)
    failure(
        one(engine, V21, item(Operation.CHECK, unique_identifier=uid, cryptographic_usage_mask=int(M.ENCRYPT))),
        ResultReason.WRONG_KEY_LIFECYCLE_STATE,
    )
    ok(one(engine, V21, item(Operation.ACTIVATE, unique_identifier=uid)))
    passed = ok(one(engine, V21, item(Operation.CHECK, unique_identifier=uid, cryptographic_usage_mask=int(M.ENCRYPT))))
    assert passed == CheckResponse(unique_identifier=uid)  # the mask only comes back when refused
    failure(
        one(engine, V21, item(Operation.CHECK, unique_identifier=uid, cryptographic_usage_mask=int(M.SIGN))),
        ResultReason.INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK,
    )


# --------------------------------------------------------------------------- batches


def test_id_placeholder_carries_between_items(engine):
    result = run(
        engine,
        V14,
        create_aes(V14),
        item(Operation.ACTIVATE),
        item(Operation.GET_ATTRIBUTES, attribute_names=("State",)),
    )
    uid = ok(result.batch_items[0]).unique_identifier
    assert ok(result.batch_items[1]).unique_identifier == uid
    assert ok(result.batch_items[2]).attribute_list[0].value == State.ACTIVE
    v2 = run(engine, V21, create_aes(V21), item(Operation.ACTIVATE, unique_identifier=UniqueIdentifier.ID_PLACEHOLDER))
    assert ok(v2.batch_items[1]).unique_identifier == ok(v2.batch_items[0]).unique_identifier


def test_batch_ids_are_echoed_and_continue_runs_everything(engine):
    uid = create(engine)
    result = run(
        engine,
        V14,
        item(Operation.ACTIVATE, b"\x01", unique_identifier=uid),
        item(Operation.GET, b"\x02", unique_identifier="missing"),
        item(Operation.ADD_ATTRIBUTE, b"\x03", unique_identifier=uid, attribute=Attribute(name="x-after", value="yes")),
        batch_error_continuation_option=BatchErrorContinuationOption.CONTINUE,
    )
    assert [i.unique_batch_item_id for i in result.batch_items] == [b"\x01", b"\x02", b"\x03"]
    assert [i.result_status for i in result.batch_items] == [
        ResultStatus.SUCCESS,
        ResultStatus.OPERATION_FAILED,
        ResultStatus.SUCCESS,
    ]
    assert attributes_of(engine, uid, names=["State", "x-after"]) == {"State": State.ACTIVE, "x-after": "yes"}


def test_batch_stop_keeps_earlier_items_and_skips_later(engine):
    uid = create(engine)
    result = run(
        engine,
        V14,
        item(Operation.ACTIVATE, unique_identifier=uid),
        item(Operation.GET, unique_identifier="missing"),
        item(Operation.ADD_ATTRIBUTE, unique_identifier=uid, attribute=Attribute(name="x-after", value="no")),
    )
    assert [i.result_status for i in result.batch_items] == [ResultStatus.SUCCESS, ResultStatus.OPERATION_FAILED]
    assert attributes_of(engine, uid, names=["State", "x-after"]) == {"State": State.ACTIVE}


def test_batch_undo_rolls_everything_back(engine):
    before = locate(engine, V14, []).unique_identifiers
    result = run(
        engine,
        V14,
        create_aes(V14),
        item(Operation.ACTIVATE),
        item(Operation.GET, unique_identifier="missing"),
        batch_error_continuation_option=BatchErrorContinuationOption.UNDO,
    )
    assert [i.result_status for i in result.batch_items] == [
        ResultStatus.OPERATION_UNDONE,
        ResultStatus.OPERATION_UNDONE,
        ResultStatus.OPERATION_FAILED,
    ]
    assert locate(engine, V14, []).unique_identifiers == before
    # An undone item keeps its payload (what it did before it was undone), as v2.1 BL-M-2 shows.
    undone_uid = result.batch_items[0].payload.unique_identifier
    assert result.batch_items[1].payload.unique_identifier == undone_uid
    failure(one(engine, V14, item(Operation.GET, unique_identifier=undone_uid)), ResultReason.ITEM_NOT_FOUND)


# --------------------------------------------------------------------------- bad input


def test_garbage_and_header_errors(engine):
    for data in (b"", b"\x00" * 8, b"\x42\x00\x78\x01\x00\x00\x00\x20" + b"\xff" * 32):
        result = response(engine.handle(data, ALICE))
        assert result.batch_items[0].result_reason == ResultReason.INVALID_MESSAGE
    wrong_count = run(engine, V14, item(Operation.DISCOVER_VERSIONS), batch_count=3)
    failure(wrong_count.batch_items[0], ResultReason.INVALID_MESSAGE)
    future = run(engine, (3, 0), item(Operation.DISCOVER_VERSIONS))
    failure(future.batch_items[0], ResultReason.UNSUPPORTED_PROTOCOL_VERSION)


def test_unsupported_operation_and_version_mismatched_fields(engine):
    failure(one(engine, V14, item(Operation.ARCHIVE)), ResultReason.OPERATION_NOT_SUPPORTED)
    failure(
        one(engine, V14, item(Operation.SET_ATTRIBUTE, unique_identifier="x")), ResultReason.OPERATION_NOT_SUPPORTED
    )
    # 2.x Attributes inside a 1.4 request.
    failure(
        one(
            engine,
            V14,
            item(Operation.CREATE, object_type=ObjectType.SYMMETRIC_KEY, **attrs_for(V21, aes_attributes())),
        ),
        ResultReason.INVALID_FIELD,
    )


def test_maximum_response_size(engine):
    uid = create(engine)
    result = run(engine, V14, item(Operation.GET, unique_identifier=uid), maximum_response_size=40)
    failure(result.batch_items[0], ResultReason.RESPONSE_TOO_LARGE)


def test_failed_item_leaves_data_intact(engine):
    uid = create(engine)
    before = attributes_of(engine, uid)
    failure(
        one(
            engine,
            V14,
            item(
                Operation.MODIFY_ATTRIBUTE,
                unique_identifier=uid,
                attribute=Attribute(name="Cryptographic Length", value=128),
            ),
        ),
        ResultReason.PERMISSION_DENIED,
    )
    assert attributes_of(engine, uid) == before


# --------------------------------------------------------------------------- group commit


def test_the_engine_not_the_transport_decides_group_commits(engine):
    # Every message commits (its audit records at least), so the listener gathers them all;
    # it no longer scans request bytes for the Operation tag.
    from kmip_server.transport.workers import group_commits_of

    assert group_commits_of(engine.handle) and group_commits_of(engine)
    assert not group_commits_of(lambda data, identity: data)


def test_handle_many_commits_writers_together_and_isolates_failures(engine):
    uid = create(engine)
    requests = [
        (request_bytes(V14, create_aes(V14, name="g1")), ALICE),
        (request_bytes(V14, item(Operation.GET, unique_identifier=uid)), ALICE),
        # Fails after its first item wrote: Undo must roll back only this message.
        (
            request_bytes(
                V14,
                create_aes(V14, name="g2"),
                item(Operation.GET, unique_identifier="missing"),
                batch_error_continuation_option=BatchErrorContinuationOption.UNDO,
            ),
            ALICE,
        ),
        (request_bytes(V21, create_aes(V21, name="g3")), BOB),
        (b"garbage", ALICE),
    ]
    answers = [response(data) for data in engine.handle_many(requests)]
    g1 = ok(answers[0].batch_items[0]).unique_identifier
    assert ok(answers[1].batch_items[0]).unique_identifier == uid
    assert [i.result_status for i in answers[2].batch_items] == [
        ResultStatus.OPERATION_UNDONE,
        ResultStatus.OPERATION_FAILED,
    ]
    g3 = ok(answers[3].batch_items[0]).unique_identifier
    assert answers[3].header.protocol_version.as_tuple() == V21
    assert answers[4].batch_items[0].result_reason == ResultReason.INVALID_MESSAGE
    names = {
        n: locate(engine, V14, [Attribute(name="Name", value=Name(value=n))], identity=ADMIN).unique_identifiers
        for n in ("g1", "g2", "g3")
    }
    assert names == {"g1": (g1,), "g2": (), "g3": (g3,)}


def test_handle_many_runs_readers_in_one_read_transaction(engine, monkeypatch):
    uids = [create(engine) for _ in range(3)]
    opened = []
    read = engine.repository.read
    monkeypatch.setattr(engine.repository, "read", lambda: opened.append(1) or read())
    requests = [(request_bytes(V14, item(Operation.GET, unique_identifier=uid)), ALICE) for uid in uids]
    requests.append((request_bytes(V14, item(Operation.GET, unique_identifier=uids[0])), BOB))
    answers = [response(data) for data in engine.handle_many(requests)]
    assert [ok(a.batch_items[0]).unique_identifier for a in answers[:3]] == uids
    failure(answers[3].batch_items[0], ResultReason.ITEM_NOT_FOUND)  # each message keeps its identity (hidden from bob)
    assert len(opened) == 1


def test_a_failed_statement_in_one_reader_does_not_fail_the_others(engine, monkeypatch):
    # A database error in one read message spoils a PostgreSQL transaction for every
    # statement after it; the readers sharing it must then run again, each on its own.
    uids = [create(engine) for _ in range(2)]
    spec = HANDLERS[Operation.GET_ATTRIBUTE_LIST]

    def poisoned(ctx, payload):
        if payload.unique_identifier == "poison":
            ctx.session.connection.execute(text("SELECT * FROM no_such_table"))
        return spec.handler(ctx, payload)

    monkeypatch.setitem(HANDLERS, Operation.GET_ATTRIBUTE_LIST, dataclasses.replace(spec, handler=poisoned))
    requests = [
        (request_bytes(V14, item(Operation.GET, unique_identifier=uids[0])), ALICE),
        (request_bytes(V14, item(Operation.GET_ATTRIBUTE_LIST, unique_identifier="poison")), ALICE),
        (request_bytes(V14, item(Operation.GET, unique_identifier=uids[1])), ALICE),
        (request_bytes(V14, item(Operation.GET_ATTRIBUTE_LIST, unique_identifier=uids[1])), ALICE),
    ]
    answers = [response(data) for data in engine.handle_many(requests)]
    assert ok(answers[0].batch_items[0]).unique_identifier == uids[0]
    failure(answers[1].batch_items[0], ResultReason.GENERAL_FAILURE)
    assert ok(answers[2].batch_items[0]).unique_identifier == uids[1]
    assert ok(answers[3].batch_items[0]).unique_identifier == uids[1]


def test_a_token_failure_is_an_error_and_stores_nothing(engine, softhsm_token):
    uid = create(engine)
    before = locate(engine, V14, [], identity=ADMIN).unique_identifiers
    broken = softhsm_token.open()
    broken.close()  # every call on it now fails, as a token that went away would
    engine.custody = broken
    for request in (create_aes(V14), item(Operation.GET, unique_identifier=uid)):
        message = failure(one(engine, V14, request), ResultReason.GENERAL_FAILURE)
        assert "custody" in message
    engine.custody = softhsm_token.open()
    try:
        assert locate(engine, V14, [], identity=ADMIN).unique_identifiers == before
        assert ok(one(engine, V14, item(Operation.GET, unique_identifier=uid))).unique_identifier == uid
    finally:
        engine.custody.close()
