"""The engine in process — attributes and Locate: real SoftHSM2 custody, real SQLite, the dispatcher fed encoded bytes.

Each test gets a fresh database; the clock is injectable so date rules are tested exactly.
"""

from __future__ import annotations

import pytest

from kmip_client.protocol.model import Attribute, Attributes, Name
from kmip_client.protocol.model.payloads.structures import AttributeReference
from kmip_client.protocol.spec import Tag
from kmip_client.protocol.spec.enums import (
    AdjustmentType,
    NameType,
    ObjectType,
    Operation,
    ResultReason,
    State,
)

from .engine_support import (
    ADMIN,
    BOB,
    T0,
    attributes_of,
    create,
    failure,
    locate,
    one,
    set_attribute,
)
from .kmip_messages import V14, V21, at, create_aes, item, ok

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
    ok(set_attribute(engine, uid, Attribute(name="Contact Information", value="ops")))
    ok(set_attribute(engine, uid, Attribute(name="Deactivation Date", value=at(T0 + 10))))
    adjust = item(
        Operation.ADJUST_ATTRIBUTE,
        unique_identifier=uid,
        attribute_reference=Tag.DEACTIVATION_DATE,
        adjustment_type=AdjustmentType.INCREMENT,
        adjustment_value=90,
    )
    ok(one(engine, V21, adjust))
    got = attributes_of(engine, uid, V21, names=["Contact Information", "Deactivation Date"])
    assert got == {"Contact Information": "ops", "Deactivation Date": at(T0 + 100)}
    length = Attribute(name="Cryptographic Length", value=128)
    failure(set_attribute(engine, uid, length), ResultReason.ATTRIBUTE_READ_ONLY)
    failure(
        set_attribute(engine, uid, Attribute(name="Name", value=Name(value="n"))), ResultReason.MULTI_VALUED_ATTRIBUTE
    )
    wrong_type = Attributes(attributes=(Attribute(name="Cryptographic Length", value="wrong type"),))
    failure(
        one(engine, V21, item(Operation.ADD_ATTRIBUTE, unique_identifier=uid, new_attribute=wrong_type)),
        ResultReason.INVALID_ATTRIBUTE_VALUE,
    )


def test_wrong_value_type_is_refused(engine):
    failure(
        one(engine, V14, create_aes(V14, extra=[Attribute(name="Activation Date", value=5)])),
        ResultReason.INVALID_FIELD,
    )


# --------------------------------------------------------------------------- locate


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


def test_modify_and_delete_by_current_attribute_2x(engine):
    uid = create(engine, V21, name="first")
    second = Attribute(name="Name", value=Name(value="second", type=NameType.UNINTERPRETED_TEXT_STRING))
    ok(
        one(
            engine,
            V21,
            item(Operation.ADD_ATTRIBUTE, unique_identifier=uid, new_attribute=Attributes(attributes=(second,))),
        )
    )
    first = Attribute(name="Name", value=Name(value="first", type=NameType.UNINTERPRETED_TEXT_STRING))
    renamed = Attribute(name="Name", value=Name(value="renamed", type=NameType.UNINTERPRETED_TEXT_STRING))
    modify = item(
        Operation.MODIFY_ATTRIBUTE,
        unique_identifier=uid,
        current_attribute=Attributes(attributes=(first,)),
        new_attribute=Attributes(attributes=(renamed,)),
    )
    ok(one(engine, V21, modify))
    names = ok(
        one(engine, V21, item(Operation.GET_ATTRIBUTES, unique_identifier=uid, attribute_references=(Tag.NAME,)))
    )
    assert [a.value.value for a in names.attributes.attributes] == ["renamed", "second"]
    # The old value is gone: modifying it again names an instance that does not exist.
    failure(one(engine, V21, modify), ResultReason.ATTRIBUTE_INSTANCE_NOT_FOUND)
    # Several names and no Current Attribute: which one is meant is not known.
    ambiguous = item(Operation.MODIFY_ATTRIBUTE, unique_identifier=uid, new_attribute=Attributes(attributes=(first,)))
    failure(one(engine, V21, ambiguous), ResultReason.INVALID_FIELD)
    delete = item(Operation.DELETE_ATTRIBUTE, unique_identifier=uid, current_attribute=Attributes(attributes=(second,)))
    ok(one(engine, V21, delete))
    names = ok(
        one(engine, V21, item(Operation.GET_ATTRIBUTES, unique_identifier=uid, attribute_references=(Tag.NAME,)))
    )
    assert [a.value.value for a in names.attributes.attributes] == ["renamed"]
    failure(one(engine, V21, delete), ResultReason.ATTRIBUTE_INSTANCE_NOT_FOUND)
    # Server-set attributes cannot be deleted.
    state = item(Operation.DELETE_ATTRIBUTE, unique_identifier=uid, attribute_reference=Tag.INITIAL_DATE)
    failure(one(engine, V21, state), ResultReason.ATTRIBUTE_READ_ONLY)


def test_set_attribute_on_a_custom_attribute_replaces_its_single_value(engine):
    uid = create(engine, V21)
    tenant = Attribute(name="tenant", vendor="x", value="blue")
    ok(set_attribute(engine, uid, tenant))
    ok(set_attribute(engine, uid, Attribute(name="tenant", vendor="x", value="red")))
    assert attributes_of(engine, uid, V14, names=["x-tenant"]) == {"x-tenant": "red"}
    second = Attributes(attributes=(Attribute(name="tenant", vendor="x", value="green"),))
    ok(one(engine, V21, item(Operation.ADD_ATTRIBUTE, unique_identifier=uid, new_attribute=second)))
    failure(set_attribute(engine, uid, tenant), ResultReason.MULTI_VALUED_ATTRIBUTE)
