"""The engine in process: real SoftHSM2 custody, real SQLite, the dispatcher fed encoded bytes.

Each test gets a fresh database; the clock is injectable so date rules are tested exactly.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from kmip_server.storage.repository import Repository

from kmip_client.protocol.model import Attribute, Attributes, Name
from kmip_client.protocol.model.attributes import RevocationReason
from kmip_client.protocol.model.base import EnumValue
from kmip_client.protocol.model.objects import KeyBlock, KeyValue, OpaqueObject, SecretData
from kmip_client.protocol.model.payloads.structures import AttributeReference
from kmip_client.protocol.spec import Tag
from kmip_client.protocol.spec.attributes import ATTRIBUTE_TAGS
from kmip_client.protocol.spec.enums import (
    AdjustmentType,
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
from kmip_server.engine.dispatcher import Dispatcher
from kmip_server.engine.identity import ClientIdentity
from kmip_server.policy import Policy

from .kmip_messages import V14, V21, aes_attributes, at, attrs_for, create_aes, item, ok, request_bytes, response

ALICE = ClientIdentity("alice")
BOB = ClientIdentity("bob")
ADMIN = ClientIdentity("admin")
T0 = 1_900_000_000


class Clock:
    def __init__(self) -> None:
        self.now = float(T0)

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "engine.db"


@pytest.fixture
def engine(custody, db_path: Path, clock: Clock) -> Dispatcher:
    repository = Repository(f"sqlite:///{db_path}")
    repository.create_schema()
    from kmip_server import operations  # noqa: F401

    yield Dispatcher(repository, custody, Policy(administrators=frozenset({"admin"})), clock=clock)
    repository.dispose()


def run(engine: Dispatcher, version, *items, identity=ALICE, **header):
    return response(engine.handle(request_bytes(version, *items, **header), identity))


def one(engine: Dispatcher, version, batch_item, identity=ALICE):
    result = run(engine, version, batch_item, identity=identity)
    assert len(result.batch_items) == 1
    return result.batch_items[0]


def create(engine, version=V14, identity=ALICE, **kwargs) -> str:
    return ok(one(engine, version, create_aes(version, **kwargs), identity)).unique_identifier


def attributes_of(engine, uid, version=V14, identity=ALICE, names=()):
    if version >= (2, 0):
        refs = tuple(Tag(ATTRIBUTE_TAGS[n]) for n in names)
        payload = ok(
            one(
                engine,
                version,
                item(Operation.GET_ATTRIBUTES, unique_identifier=uid, attribute_references=refs),
                identity,
            )
        )
        return {a.name if a.vendor is None else f"{a.vendor}-{a.name}": a.value for a in payload.attributes.attributes}
    payload = ok(
        one(
            engine,
            version,
            item(Operation.GET_ATTRIBUTES, unique_identifier=uid, attribute_names=tuple(names)),
            identity,
        )
    )
    return {a.name: a.value for a in payload.attribute_list}


def failure(result, reason: ResultReason) -> str:
    assert result.result_status == ResultStatus.OPERATION_FAILED, result
    assert result.result_reason == reason, (result.result_reason, result.result_message)
    assert result.result_message
    return result.result_message


# --------------------------------------------------------------------------- server information


@pytest.mark.parametrize("version", [(1, 0), V14, (2, 0), V21])
def test_answers_in_the_clients_version(engine, version):
    result = run(engine, version, item(Operation.DISCOVER_VERSIONS))
    assert result.header.protocol_version.as_tuple() == version
    versions = [v.as_tuple() for v in ok(result.batch_items[0]).protocol_versions]
    assert versions == [(2, 1), (2, 0), (1, 4), (1, 3), (1, 2), (1, 1), (1, 0)]


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
    assert {Operation.CREATE, Operation.GET, Operation.LOCATE, Operation.SET_ATTRIBUTE} <= ops
    assert Operation.ENCRYPT not in ops and Operation.CREATE_KEY_PAIR not in ops
    assert set(payload.object_types) == {ObjectType.SYMMETRIC_KEY, ObjectType.SECRET_DATA, ObjectType.OPAQUE_OBJECT}
    assert payload.vendor_identification == "Strongroom"
    v14 = ok(one(engine, V14, item(Operation.QUERY, query_functions=(QueryFunction.QUERY_OPERATIONS,))))
    assert Operation.SET_ATTRIBUTE not in set(v14.operations)  # a 2.x operation


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


def test_no_key_material_in_the_database_file(engine, db_path):
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
    files = [p for p in db_path.parent.iterdir() if p.name.startswith(db_path.name)]
    assert files
    blob = b"".join(p.read_bytes() for p in files)
    for key in [*keys, secret]:
        assert key not in blob and key.hex().encode() not in blob


def test_unknown_uid_and_other_owner(engine):
    failure(one(engine, V14, item(Operation.GET, unique_identifier="no-such-object")), ResultReason.ITEM_NOT_FOUND)
    uid = create(engine, identity=ALICE)
    failure(one(engine, V14, item(Operation.GET, unique_identifier=uid), BOB), ResultReason.PERMISSION_DENIED)
    failure(one(engine, V14, item(Operation.DESTROY, unique_identifier=uid), BOB), ResultReason.PERMISSION_DENIED)
    ok(one(engine, V14, item(Operation.GET, unique_identifier=uid), ADMIN))


# --------------------------------------------------------------------------- lifecycle


def state_of(engine, uid, version=V14, identity=ALICE):
    return attributes_of(engine, uid, version, identity, ["State"])["State"]


@pytest.mark.parametrize(
    "version,denied", [(V14, ResultReason.PERMISSION_DENIED), (V21, ResultReason.WRONG_KEY_LIFECYCLE_STATE)]
)
def test_lifecycle_compromise_path(engine, db_path, version, denied):
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
    with sqlite3.connect(db_path) as db:
        assert db.execute("select wrapped_value from managed_objects where uid = ?", (uid,)).fetchone() == (None,)


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
    ok(one(engine, V21, item(Operation.CHECK, unique_identifier=uid, cryptographic_usage_mask=int(M.ENCRYPT))))
    failure(
        one(engine, V21, item(Operation.CHECK, unique_identifier=uid, cryptographic_usage_mask=int(M.SIGN))),
        ResultReason.INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK,
    )


# --------------------------------------------------------------------------- attributes


def test_custom_attributes_of_every_type_1x(engine):
    uid = create(engine)
    values = {
        "x-text": "vCenter cluster 7",
        "x-int": 42,
        "x-bytes": b"\x00\xffraw",
        "y-date": at(T0 - 5),
        "x-bool": True,
    }
    for name, value in values.items():
        added = ok(
            one(
                engine,
                V14,
                item(Operation.ADD_ATTRIBUTE, unique_identifier=uid, attribute=Attribute(name=name, value=value)),
            )
        )
        assert added.attribute.name == name and added.attribute.value == value
    assert attributes_of(engine, uid, names=list(values)) == values
    ok(
        one(
            engine,
            V14,
            item(Operation.ADD_ATTRIBUTE, unique_identifier=uid, attribute=Attribute(name="x-text", value="second")),
        )
    )
    payload = ok(one(engine, V14, item(Operation.GET_ATTRIBUTES, unique_identifier=uid, attribute_names=("x-text",))))
    assert [(a.value, a.index) for a in payload.attribute_list] == [("vCenter cluster 7", None), ("second", 1)]
    ok(
        one(
            engine,
            V14,
            item(
                Operation.MODIFY_ATTRIBUTE,
                unique_identifier=uid,
                attribute=Attribute(name="x-text", value="changed", index=1),
            ),
        )
    )
    ok(
        one(
            engine,
            V14,
            item(Operation.DELETE_ATTRIBUTE, unique_identifier=uid, attribute_name="x-text", attribute_index=0),
        )
    )
    payload = ok(one(engine, V14, item(Operation.GET_ATTRIBUTES, unique_identifier=uid, attribute_names=("x-text",))))
    assert [(a.value, a.index) for a in payload.attribute_list] == [("changed", 1)]
    failure(
        one(
            engine,
            V14,
            item(Operation.DELETE_ATTRIBUTE, unique_identifier=uid, attribute_name="x-text", attribute_index=0),
        ),
        ResultReason.ITEM_NOT_FOUND,
    )
    names = ok(one(engine, V14, item(Operation.GET_ATTRIBUTE_LIST, unique_identifier=uid))).attribute_names
    assert {"Unique Identifier", "State", "Object Type", "x-int", "Digest", "Initial Date"} <= set(names)


def test_vendor_attributes_2x_are_custom_attributes_1x(engine):
    uid = create(engine, V21)
    vendor = Attribute(name="ID", vendor="x", value="BL-M-1-21")
    ok(
        one(
            engine,
            V21,
            item(Operation.ADD_ATTRIBUTE, unique_identifier=uid, new_attribute=Attributes(attributes=(vendor,))),
        )
    )
    assert attributes_of(engine, uid, V14, names=["x-ID"]) == {"x-ID": "BL-M-1-21"}
    refs = (AttributeReference(vendor_identification="x", attribute_name="ID"),)
    payload = ok(one(engine, V21, item(Operation.GET_ATTRIBUTES, unique_identifier=uid, attribute_references=refs)))
    (got,) = payload.attributes.attributes
    assert (got.vendor, got.name, got.value) == ("x", "ID", "BL-M-1-21")
    ok(one(engine, V21, item(Operation.DELETE_ATTRIBUTE, unique_identifier=uid, attribute_reference=refs[0])))
    assert attributes_of(engine, uid, V14, names=["x-ID"]) == {}


def test_set_adjust_and_read_only_2x(engine):
    uid = create(engine, V21)
    ok(
        one(
            engine,
            V21,
            item(
                Operation.SET_ATTRIBUTE,
                unique_identifier=uid,
                new_attribute=Attributes(attributes=(Attribute(name="Contact Information", value="ops"),)),
            ),
        )
    )
    ok(
        one(
            engine,
            V21,
            item(
                Operation.SET_ATTRIBUTE,
                unique_identifier=uid,
                new_attribute=Attributes(attributes=(Attribute(name="Deactivation Date", value=at(T0 + 10)),)),
            ),
        )
    )
    ok(
        one(
            engine,
            V21,
            item(
                Operation.ADJUST_ATTRIBUTE,
                unique_identifier=uid,
                attribute_reference=Tag.DEACTIVATION_DATE,
                adjustment_type=AdjustmentType.INCREMENT,
                adjustment_value=90,
            ),
        )
    )
    got = attributes_of(engine, uid, V21, names=["Contact Information", "Deactivation Date"])
    assert got == {"Contact Information": "ops", "Deactivation Date": at(T0 + 100)}
    failure(
        one(
            engine,
            V21,
            item(
                Operation.SET_ATTRIBUTE,
                unique_identifier=uid,
                new_attribute=Attributes(attributes=(Attribute(name="Cryptographic Length", value=128),)),
            ),
        ),
        ResultReason.ATTRIBUTE_READ_ONLY,
    )
    failure(
        one(
            engine,
            V21,
            item(
                Operation.SET_ATTRIBUTE,
                unique_identifier=uid,
                new_attribute=Attributes(attributes=(Attribute(name="Name", value=Name(value="n")),)),
            ),
        ),
        ResultReason.MULTI_VALUED_ATTRIBUTE,
    )
    failure(
        one(
            engine,
            V21,
            item(
                Operation.ADD_ATTRIBUTE,
                unique_identifier=uid,
                new_attribute=Attributes(attributes=(Attribute(name="Cryptographic Length", value="wrong type"),)),
            ),
        ),
        ResultReason.INVALID_ATTRIBUTE_VALUE,
    )


def test_wrong_value_type_is_refused(engine):
    failure(
        one(engine, V14, create_aes(V14, extra=[Attribute(name="Activation Date", value=5)])),
        ResultReason.INVALID_FIELD,
    )


# --------------------------------------------------------------------------- locate


def locate(engine, version, attributes, identity=ALICE, **kwargs):
    if version >= (2, 0):
        payload = item(Operation.LOCATE, attributes=Attributes(attributes=tuple(attributes)), **kwargs)
    else:
        payload = item(Operation.LOCATE, attribute_list=tuple(attributes), **kwargs)
    return ok(one(engine, version, payload, identity))


@pytest.mark.parametrize("version", [V14, V21])
def test_locate_filters(engine, clock, version):
    a = create(engine, version, name="alpha", length=128)
    clock.now += 10
    b = create(engine, version, name="beta", length=256)
    clock.now += 10
    c = create(engine, version, name="gamma", length=256, extra=[Attribute(name="Object Group", value="g1")])
    d = create(engine, version, name="delta", identity=BOB)

    def uids(attrs, **kw):
        return list(locate(engine, version, attrs, **kw).unique_identifiers)

    assert uids([Attribute(name="Name", value=Name(value="beta"))]) == [b]
    assert uids([Attribute(name="Name", value=Name(value="delta"))]) == []  # Bob's
    assert uids([Attribute(name="Cryptographic Length", value=256)]) == [c, b]
    assert uids([Attribute(name="Object Group", value="g1")]) == [c]
    assert uids([Attribute(name="Object Type", value=ObjectType.SYMMETRIC_KEY)]) == [c, b, a]
    assert uids([Attribute(name="Initial Date", value=at(T0)), Attribute(name="Initial Date", value=at(T0 + 10))]) == [
        b,
        a,
    ]
    assert uids([]) == [c, b, a]
    assert uids([], maximum_items=2) == [c, b]
    page = locate(engine, version, [], maximum_items=1, offset_items=1)
    assert list(page.unique_identifiers) == [b] and page.located_items == 3
    assert d in uids([], identity=ADMIN)
    ok(one(engine, version, item(Operation.ACTIVATE, unique_identifier=a)))
    assert uids([Attribute(name="State", value=State.ACTIVE)]) == [a]
    assert uids([Attribute(name="State", value=State.PRE_ACTIVE)]) == [c, b]


def test_locate_custom_attributes_and_usage_mask(engine):
    from kmip_client.protocol.spec.enums import CryptographicUsageMask as M

    a = create(engine, extra=[Attribute(name="x-tenant", value="blue"), Attribute(name="x-gen", value=3)])
    create(engine, extra=[Attribute(name="x-tenant", value="red")])
    assert locate(engine, V14, [Attribute(name="x-tenant", value="blue")]).unique_identifiers == (a,)
    assert locate(engine, V14, [Attribute(name="x-gen", value=3)]).unique_identifiers == (a,)
    assert (
        len(locate(engine, V14, [Attribute(name="Cryptographic Usage Mask", value=M.ENCRYPT)]).unique_identifiers) == 2
    )
    assert locate(engine, V14, [Attribute(name="Cryptographic Usage Mask", value=M.SIGN)]).unique_identifiers == ()


def test_locate_sees_time_based_activation(engine, clock):
    uid = create(engine, extra=[Attribute(name="Activation Date", value=at(T0 + 60))])
    assert locate(engine, V14, [Attribute(name="State", value=State.ACTIVE)]).unique_identifiers == ()
    clock.now = T0 + 61
    assert locate(engine, V14, [Attribute(name="State", value=State.ACTIVE)]).unique_identifiers == (uid,)


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
    failure(one(engine, V14, item(Operation.CREATE_KEY_PAIR)), ResultReason.OPERATION_NOT_SUPPORTED)
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


def test_handle_many_commits_writers_together_and_isolates_failures(engine):
    uid = create(engine)
    requests = [
        (request_bytes(V14, create_aes(V14, name="g1")), ALICE),
        (request_bytes(V14, item(Operation.GET, unique_identifier=uid)), ALICE),
        # Fails after its first item wrote: Undo must roll back only this message.
        (request_bytes(V14, create_aes(V14, name="g2"), item(Operation.GET, unique_identifier="missing"),
                       batch_error_continuation_option=BatchErrorContinuationOption.UNDO), ALICE),
        (request_bytes(V21, create_aes(V21, name="g3")), BOB),
        (b"garbage", ALICE),
    ]
    answers = [response(data) for data in engine.handle_many(requests)]
    g1 = ok(answers[0].batch_items[0]).unique_identifier
    assert ok(answers[1].batch_items[0]).unique_identifier == uid
    assert [i.result_status for i in answers[2].batch_items] == [ResultStatus.OPERATION_UNDONE,
                                                                ResultStatus.OPERATION_FAILED]
    g3 = ok(answers[3].batch_items[0]).unique_identifier
    assert answers[3].header.protocol_version.as_tuple() == V21
    assert answers[4].batch_items[0].result_reason == ResultReason.INVALID_MESSAGE
    names = {n: locate(engine, V14, [Attribute(name="Name", value=Name(value=n))], identity=ADMIN).unique_identifiers
             for n in ("g1", "g2", "g3")}
    assert names == {"g1": (g1,), "g2": (), "g3": (g3,)}
