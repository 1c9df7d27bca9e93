"""Objects the specification allows that Register and Create used to refuse: 1.x Templates
(the SASED-M-2/3 conversation registers one and names it), key objects registered for their
attributes alone (no Key Value), and KMIP 2.x Create of Secret Data. In process, on a real
SoftHSM2 token, each case on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from kmip_client.protocol.model import Attribute, Attributes, Name, TemplateAttribute
from kmip_client.protocol.model.objects import KeyBlock, SecretData, SymmetricKey, Template
from kmip_client.protocol.spec.enums import (
    CryptographicAlgorithm,
    CryptographicUsageMask,
    KeyFormatType,
    NameType,
    ObjectType,
    Operation,
    ResultReason,
    SecretDataType,
    State,
)

from .engine_support import BOB, attributes_of, failure, locate, one
from .kmip_messages import V14, V21, item, ok

V13 = (1, 3)
R = ResultReason


def name(text: str) -> Name:
    return Name(value=text, type=NameType.UNINTERPRETED_TEXT_STRING)


def name_attribute(text: str) -> Attribute:
    return Attribute(name="Name", value=name(text))


def register_template(engine, contents, template_name="tpl", version=V13, identity=None):
    request = item(
        Operation.REGISTER,
        object_type=ObjectType.TEMPLATE,
        template_attribute=TemplateAttribute(attributes=(name_attribute(template_name),)),
        managed_object=Template(attributes=tuple(contents)),
    )
    return one(engine, version, request, **({"identity": identity} if identity else {}))


def create_from(engine, template_names, attributes=(), version=V13, identity=None):
    template = TemplateAttribute(names=tuple(name(n) for n in template_names), attributes=tuple(attributes))
    request = item(Operation.CREATE, object_type=ObjectType.SYMMETRIC_KEY, template_attribute=template)
    return one(engine, version, request, **({"identity": identity} if identity else {}))


AES_TEMPLATE = [
    Attribute(name="Cryptographic Algorithm", value=CryptographicAlgorithm.AES),
    Attribute(name="Cryptographic Length", value=128),
    Attribute(name="Object Group", value="from-template"),
    Attribute(name="x-Origin", value="template"),
]


def test_a_template_gives_its_attributes_and_the_request_overrides_them(engine):
    template_uid = ok(register_template(engine, AES_TEMPLATE)).unique_identifier
    own = [Attribute(name="Cryptographic Length", value=256), name_attribute("from-tpl-key")]
    uid = ok(create_from(engine, ["tpl"], own)).unique_identifier
    attrs = attributes_of(
        engine, uid, V13, names=["Cryptographic Algorithm", "Cryptographic Length", "Object Group", "x-Origin", "Name"]
    )
    assert attrs["Cryptographic Algorithm"] == CryptographicAlgorithm.AES
    assert attrs["Cryptographic Length"] == 256  # the request's own value wins (KMIP 1.4 §2.2.6)
    assert attrs["Object Group"] == "from-template" and attrs["x-Origin"] == "template"
    assert attrs["Name"] == name("from-tpl-key")
    group = [
        Attribute(name="Object Group", value="from-template"),
        Attribute(name="Object Type", value=ObjectType.SYMMETRIC_KEY),
    ]
    assert locate(engine, V13, group).unique_identifiers == (uid,)
    # The template itself: found by Name and Object Type, its contents returned by Get.
    by_name = [name_attribute("tpl"), Attribute(name="Object Type", value=ObjectType.TEMPLATE)]
    assert locate(engine, V13, by_name).unique_identifiers == (template_uid,)
    got = ok(one(engine, V13, item(Operation.GET, unique_identifier=template_uid)))
    assert got.object_type == ObjectType.TEMPLATE and got.managed_object == Template(attributes=tuple(AES_TEMPLATE))


def test_a_later_template_replaces_an_earlier_ones_attribute(engine):
    ok(register_template(engine, AES_TEMPLATE, "first"))
    ok(register_template(engine, [Attribute(name="Object Group", value="second-group")], "second"))
    uid = ok(create_from(engine, ["first", "second"])).unique_identifier
    assert attributes_of(engine, uid, V13, names=["Object Group"])["Object Group"] == "second-group"


def test_register_with_a_template_as_sased_m_2_does(engine):
    ok(register_template(engine, [Attribute(name="Object Group", value="sased-group")]))
    secret = SecretData(
        secret_data_type=SecretDataType.PASSWORD,
        key_block=KeyBlock(key_format_type=KeyFormatType.OPAQUE, key_value=_key_value(b"*" * 32)),
    )
    template = TemplateAttribute(names=(name("tpl"),), attributes=(Attribute(name="x-Own", value="yes"),))
    request = item(
        Operation.REGISTER, object_type=ObjectType.SECRET_DATA, template_attribute=template, managed_object=secret
    )
    uid = ok(one(engine, V13, request)).unique_identifier
    group = [
        Attribute(name="Object Group", value="sased-group"),
        Attribute(name="Object Type", value=ObjectType.SECRET_DATA),
    ]
    assert locate(engine, V13, group).unique_identifiers == (uid,)


@pytest.mark.parametrize(
    "contents,words",
    [
        ([name_attribute("inner")], "may not hold 'Name'"),
        ([Attribute(name="Unique Identifier", value="x")], "may not hold"),
        ([], "at least one"),
    ],
)
def test_a_template_holds_only_what_a_client_may_give(engine, contents, words):
    assert words in failure(register_template(engine, contents), R.INVALID_FIELD)


def test_templates_are_not_kmip_2(engine):
    """A 2.x message cannot even carry one: the Template's fields are 1.x fields."""
    assert "not defined in KMIP 2.1" in failure(register_template(engine, AES_TEMPLATE, version=V21), R.INVALID_FIELD)


def test_a_template_that_is_missing_foreign_or_destroyed_is_not_found(engine):
    assert "no Template is named 'nowhere'" in failure(create_from(engine, ["nowhere"]), R.ITEM_NOT_FOUND)
    template_uid = ok(register_template(engine, AES_TEMPLATE)).unique_identifier
    failure(create_from(engine, ["tpl"], identity=BOB), R.ITEM_NOT_FOUND)  # alice's template
    ok(one(engine, V13, item(Operation.DESTROY, unique_identifier=template_uid)))
    failure(create_from(engine, ["tpl"]), R.ITEM_NOT_FOUND)


def _key_value(data: bytes):
    from kmip_client.protocol.model.objects import KeyValue

    return KeyValue(key_material=data)


def _valueless_key(version=V14, attributes=()):
    block = KeyBlock(
        key_format_type=KeyFormatType.RAW, cryptographic_algorithm=CryptographicAlgorithm.AES, cryptographic_length=256
    )
    form = (
        {"attributes": Attributes(attributes=tuple(attributes))}
        if version >= (2, 0)
        else {"template_attribute": TemplateAttribute(attributes=tuple(attributes))}
    )
    return item(
        Operation.REGISTER, object_type=ObjectType.SYMMETRIC_KEY, managed_object=SymmetricKey(key_block=block), **form
    )


@pytest.mark.parametrize("version", [(1, 2), V14, V21])
def test_a_key_registered_without_a_value_keeps_its_attributes(engine, version):
    location = [Attribute(name="Key Value Location", value=_location())] if version < (2, 0) else []
    uid = ok(
        one(engine, version, _valueless_key(version, [name_attribute("hsm-resident"), *location]))
    ).unique_identifier
    attrs = attributes_of(
        engine, uid, version, names=["Key Value Present", "Cryptographic Algorithm", "Cryptographic Length", "State"]
    )
    assert attrs["Key Value Present"] is False
    assert (attrs["Cryptographic Algorithm"], attrs["Cryptographic Length"]) == (CryptographicAlgorithm.AES, 256)
    assert attrs["State"] == State.PRE_ACTIVE
    message = failure(one(engine, version, item(Operation.GET, unique_identifier=uid)), R.KEY_VALUE_NOT_PRESENT)
    assert "registered without one" in message
    # Its attributes work as any object's: found by Name, activated, destroyed.
    assert locate(engine, version, [name_attribute("hsm-resident")]).unique_identifiers == (uid,)
    ok(one(engine, version, item(Operation.DESTROY, unique_identifier=uid)))


def _location():
    from kmip_client.protocol.model.attributes import KeyValueLocation
    from kmip_client.protocol.spec.enums import KeyValueLocationType

    return KeyValueLocation(value="hsm://partition-1/key-7", type=KeyValueLocationType.URI)


def test_before_1_2_a_key_needs_its_value(engine):
    """KMIP 1.0 and 1.1 have no Key Value Present: a Key Block there carries its value."""
    failure(one(engine, (1, 1), _valueless_key((1, 1))), R.INVALID_FIELD)
    uid = ok(one(engine, V14, _valueless_key(V14))).unique_identifier
    failure(one(engine, (1, 1), item(Operation.GET, unique_identifier=uid)), R.ILLEGAL_OPERATION)


def create_secret(engine, attributes, version=V21):
    form = (
        {"attributes": Attributes(attributes=tuple(attributes))}
        if version >= (2, 0)
        else {"template_attribute": TemplateAttribute(attributes=tuple(attributes))}
    )
    return one(engine, version, item(Operation.CREATE, object_type=ObjectType.SECRET_DATA, **form))


@pytest.mark.parametrize(("given", "size"), [([], 32), ([Attribute(name="Cryptographic Length", value=128)], 16)])
def test_create_makes_secret_data_in_kmip_2(engine, given, size):
    mask = Attribute(name="Cryptographic Usage Mask", value=CryptographicUsageMask.DERIVE_KEY)
    created = ok(create_secret(engine, [*given, mask]))
    assert created.object_type == ObjectType.SECRET_DATA
    got = ok(one(engine, V21, item(Operation.GET, unique_identifier=created.unique_identifier)))
    secret = got.managed_object
    assert isinstance(secret, SecretData) and secret.secret_data_type == SecretDataType.SEED
    assert secret.key_block.key_format_type == KeyFormatType.OPAQUE
    assert len(secret.key_block.key_value.key_material) == size
    attrs = attributes_of(
        engine, created.unique_identifier, V21, names=["Cryptographic Length", "Cryptographic Usage Mask"]
    )
    assert attrs == {"Cryptographic Length": size * 8, "Cryptographic Usage Mask": CryptographicUsageMask.DERIVE_KEY}
    other = ok(create_secret(engine, [*given, mask]))
    second = ok(one(engine, V21, item(Operation.GET, unique_identifier=other.unique_identifier))).managed_object
    assert second.key_block.key_value.key_material != secret.key_block.key_value.key_material


@pytest.mark.parametrize(
    "given",
    [
        [Attribute(name="Cryptographic Length", value=100)],
        [Attribute(name="Cryptographic Length", value=0)],
        [Attribute(name="Cryptographic Algorithm", value=CryptographicAlgorithm.AES)],
    ],
)
def test_create_of_secret_data_checks_what_it_is_given(engine, given):
    failure(create_secret(engine, given), R.INVALID_ATTRIBUTE_VALUE)


def test_create_of_secret_data_is_kmip_2_only(engine):
    """KMIP 1.x Create makes symmetric keys alone (1.4 §4.1)."""
    failure(create_secret(engine, [], V14), R.INVALID_FIELD)
