"""Import and Export (KMIP 2.1 §6.1.25, §6.1.18) through the engine on both stores, in 2.0 and
2.1: an object exported from one store and imported into another comes back byte for byte with
the same attributes; an existing Unique Identifier with and without Replace Existing; wrapped
key blocks; Export's Get semantics (wrapping, Sensitive, Extractable, destroyed); every refusal
with its Result Reason; 1.x clients have neither operation."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import keywrap

from kmip_client.protocol.model import Attribute, Attributes, Name
from kmip_client.protocol.model.attributes import CryptographicParameters, Digest, Link
from kmip_client.protocol.model.objects import (
    EncryptionKeyInformation,
    KeyBlock,
    KeyValue,
    KeyWrappingData,
    KeyWrappingSpecification,
    OpaqueObject,
    SymmetricKey,
    Template,
)
from kmip_client.protocol.spec.enums import (
    BlockCipherMode,
    CryptographicAlgorithm,
    CryptographicUsageMask,
    EncodingOption,
    HashingAlgorithm,
    KeyFormatType,
    KeyWrapType,
    LinkType,
    NameType,
    ObjectType,
    Operation,
    QueryFunction,
    ResultReason,
    State,
    WrappingMethod,
)
from kmip_server.engine.dispatcher import Dispatcher
from kmip_server.policy import Policy
from kmip_server.storage.repository import Repository

from .conftest import postgres_schema_url
from .engine_support import ADMIN, BOB, T0, failure, one, register
from .kmip_messages import V14, V21, item, ok

V20 = (2, 0)
VERSIONS = [V20, V21]
A = CryptographicAlgorithm
F = KeyFormatType
R = ResultReason
Usage = CryptographicUsageMask
ACTIVE = Attribute(name="Activation Date", value=datetime.fromtimestamp(T0 - 3600, UTC))
USAGE = Attribute(name="Cryptographic Usage Mask", value=int(Usage.ENCRYPT | Usage.DECRYPT))
KEK_USAGE = Attribute(name="Cryptographic Usage Mask", value=int(Usage.WRAP_KEY | Usage.UNWRAP_KEY))
KW = Attribute(
    name="Cryptographic Parameters", value=CryptographicParameters(block_cipher_mode=BlockCipherMode.NISTKEYWRAP)
)


def _name(text: str) -> Attribute:
    return Attribute(name="Name", value=Name(value=text, type=NameType.UNINTERPRETED_TEXT_STRING))


@pytest.fixture
def other(custody, store_url, tmp_path, clock) -> Iterator[Dispatcher]:
    """A second server's engine on a store of its own, of the same kind as ``engine``'s."""
    from kmip_server import operations  # noqa: F401

    def serve(url: str) -> Iterator[Dispatcher]:
        repository = Repository(url)
        repository.create_schema()
        yield Dispatcher(repository, custody, Policy(administrators=frozenset({"admin"})), clock=clock)
        repository.dispose()

    if store_url.startswith("sqlite"):
        yield from serve(f"sqlite:///{tmp_path / 'other.db'}")
    else:
        with postgres_schema_url() as url:
            yield from serve(url)


def aes_key(material: bytes) -> SymmetricKey:
    block = KeyBlock(
        key_format_type=F.RAW,
        key_value=KeyValue(key_material=material),
        cryptographic_algorithm=A.AES,
        cryptographic_length=8 * len(material),
    )
    return SymmetricKey(key_block=block)


def aes(engine, version, material: bytes, extra=()) -> str:
    return register(engine, version, ObjectType.SYMMETRIC_KEY, aes_key(material), [USAGE, ACTIVE, *extra])


def export(engine, version, uid, identity=None, **fields) -> Any:
    request = item(Operation.EXPORT, unique_identifier=uid, **fields)
    return one(engine, version, request) if identity is None else one(engine, version, request, identity)


def import_(engine, version, uid, managed, attributes, identity=None, object_type=ObjectType.SYMMETRIC_KEY, **fields):
    request = item(
        Operation.IMPORT,
        unique_identifier=uid,
        object_type=object_type,
        attributes=Attributes(attributes=tuple(attributes)),
        managed_object=managed,
        **fields,
    )
    return one(engine, version, request) if identity is None else one(engine, version, request, identity)


def material_of(engine, version, uid) -> bytes:
    payload = ok(one(engine, version, item(Operation.GET, unique_identifier=uid)))
    return payload.managed_object.key_block.key_value.key_material


def named(attributes, name: str) -> list[Any]:
    return [a.value for a in attributes if a.name == name]


def without(attributes, *names: str) -> list[Attribute]:
    return [a for a in attributes if a.name not in names]


# ----------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("version", VERSIONS)
def test_export_then_import_elsewhere_gives_the_same_object_and_attributes(engine, other, clock, version):
    material = os.urandom(32)
    uid = aes(engine, version, material, [_name("moved")])
    exported = ok(export(engine, version, uid))
    assert (exported.unique_identifier, exported.object_type) == (uid, ObjectType.SYMMETRIC_KEY)
    assert exported.managed_object.key_block.key_value.key_material == material
    attributes = exported.attributes.attributes
    assert named(attributes, "Unique Identifier") == [uid]
    assert named(attributes, "State") == [State.ACTIVE]
    assert named(attributes, "Name")[0].value == "moved"
    assert named(attributes, "Fresh") == [False]  # Export served the value, as Get does
    initial = named(attributes, "Initial Date")
    assert initial == [datetime.fromtimestamp(T0, UTC)]
    # The other server imports it an hour later: the dates and Digest are the exported ones.
    clock.now = T0 + 3600
    assert ok(import_(other, version, uid, exported.managed_object, attributes)).unique_identifier == uid
    assert material_of(other, version, uid) == material
    again = ok(export(other, version, uid))
    assert again.attributes.attributes == attributes
    assert again.managed_object == exported.managed_object
    # The importer owns it.
    failure(export(other, version, uid, BOB), hidden(version))


@pytest.mark.parametrize("version", VERSIONS)
def test_import_keeps_the_given_state_and_server_set_attributes(engine, version):
    uid = "imported-key-1"
    initial = datetime.fromtimestamp(T0 - 86400, UTC)
    given = [
        Attribute(name="Cryptographic Algorithm", value=A.AES),
        Attribute(name="Cryptographic Length", value=128),
        USAGE,
        Attribute(name="State", value=State.DEACTIVATED),
        Attribute(name="Initial Date", value=initial),
        Attribute(name="Last Change Date", value=initial),
        Attribute(name="Fresh", value=False),
        Attribute(name="Lease Time", value=5),  # this server's, not kept
    ]
    material = os.urandom(16)
    ok(import_(engine, version, uid, aes_key(material), given))
    attributes = ok(export(engine, version, uid)).attributes.attributes
    assert named(attributes, "State") == [State.DEACTIVATED]
    assert named(attributes, "Initial Date") == named(attributes, "Last Change Date") == [initial]
    assert named(attributes, "Lease Time") == [3600]
    digest = named(attributes, "Digest")[0]
    assert digest.digest_value == hashlib.sha256(material).digest()
    # A Deactivated key does not encrypt.
    encrypt = item(Operation.ENCRYPT, unique_identifier=uid, data=b"x" * 16)
    failure(one(engine, version, encrypt), R.WRONG_KEY_LIFECYCLE_STATE if version >= V21 else R.PERMISSION_DENIED)


# ----------------------------------------------------------------------------- an existing identifier


@pytest.mark.parametrize("version", VERSIONS)
def test_an_existing_identifier_is_replaced_only_with_replace_existing(engine, version):
    old, new = os.urandom(32), os.urandom(32)
    uid = aes(engine, version, old, [_name("old name")])
    given = [USAGE, _name("new name")]
    message = failure(import_(engine, version, uid, aes_key(new), given), R.OBJECT_ALREADY_EXISTS)
    assert "Replace Existing" in message
    failure(import_(engine, version, uid, aes_key(new), given, replace_existing=False), R.OBJECT_ALREADY_EXISTS)
    assert material_of(engine, version, uid) == old
    # Bob may not replace Alice's object; nothing changes.
    failure(import_(engine, version, uid, aes_key(new), given, BOB, replace_existing=True), hidden(version))
    assert material_of(engine, version, uid) == old
    assert ok(import_(engine, version, uid, aes_key(new), given, replace_existing=True)).unique_identifier == uid
    exported = ok(export(engine, version, uid))
    assert exported.managed_object.key_block.key_value.key_material == new
    attributes = exported.attributes.attributes
    assert [n.value for n in named(attributes, "Name")] == ["new name"]
    assert named(attributes, "State") == [State.PRE_ACTIVE]  # the old Activation Date went too
    assert named(attributes, "Activation Date") == []
    # Still Alice's, even replaced by an administrator: Bob cannot read it, Alice can.
    failure(export(engine, version, uid, BOB), hidden(version))
    ok(import_(engine, version, uid, aes_key(old), given, ADMIN, replace_existing=True))
    assert material_of(engine, version, uid) == old
    failure(export(engine, version, uid, BOB), hidden(version))
    # Replace Existing for an identifier not in use: a new object.
    ok(import_(engine, version, "fresh-uid", aes_key(new), given, replace_existing=True))
    assert material_of(engine, version, "fresh-uid") == new


@pytest.mark.parametrize("version", VERSIONS)
def test_replace_existing_may_change_the_object_type(engine, version):
    uid = aes(engine, version, os.urandom(32))
    opaque = OpaqueObject(opaque_data_type=0x80000001, opaque_data_value=b"opaque bytes")
    ok(import_(engine, version, uid, opaque, [], object_type=ObjectType.OPAQUE_OBJECT, replace_existing=True))
    exported = ok(export(engine, version, uid))
    assert exported.object_type == ObjectType.OPAQUE_OBJECT
    assert exported.managed_object.opaque_data_value == b"opaque bytes"


# ----------------------------------------------------------------------------- wrapped key blocks


def _wrapped(kek_uid: str, secret_key: bytes, material: bytes) -> SymmetricKey:
    wrapping = KeyWrappingData(
        wrapping_method=WrappingMethod.ENCRYPT,
        encryption_key_information=EncryptionKeyInformation(unique_identifier=kek_uid),
        encoding_option=EncodingOption.NO_ENCODING,
    )
    block = dataclasses.replace(
        aes_key(material).key_block, key_value=keywrap.aes_key_wrap(secret_key, material), key_wrapping_data=wrapping
    )
    return SymmetricKey(key_block=block)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_wrapped_key_block_is_imported_unwrapped(engine, version):
    secret_key, material = os.urandom(32), os.urandom(32)
    kek_uid = register(engine, version, ObjectType.SYMMETRIC_KEY, aes_key(secret_key), [KEK_USAGE, KW, ACTIVE])
    managed = _wrapped(kek_uid, secret_key, material)
    not_wrapped = {"key_wrap_type": KeyWrapType.NOT_WRAPPED}
    ok(import_(engine, version, "wrapped-1", managed, [USAGE], **not_wrapped))
    assert material_of(engine, version, "wrapped-1") == material
    links = named(ok(export(engine, version, "wrapped-1")).attributes.attributes, "Link")
    assert links == [Link(link_type=LinkType.WRAPPING_KEY_LINK, linked_object_identifier=kek_uid)]
    # Table 238: a Key Wrap Type if and only if the object is wrapped.
    assert "Key Wrap Type" in failure(import_(engine, version, "wrapped-2", managed, [USAGE]), R.INVALID_FIELD)
    plain = aes_key(material)
    failure(import_(engine, version, "wrapped-3", plain, [USAGE], **not_wrapped), R.INVALID_FIELD)
    as_registered = {"key_wrap_type": KeyWrapType.AS_REGISTERED}
    failure(import_(engine, version, "wrapped-4", managed, [USAGE], **as_registered), R.FEATURE_NOT_SUPPORTED)
    # The wrapping key is not on this server.
    elsewhere = _wrapped("no-such-key", secret_key, material)
    failure(import_(engine, version, "wrapped-5", elsewhere, [USAGE], **not_wrapped), R.WRAPPING_OBJECT_NOT_FOUND)
    for uid in ("wrapped-2", "wrapped-3", "wrapped-4", "wrapped-5"):
        failure(export(engine, version, uid), R.OBJECT_NOT_FOUND)


# ----------------------------------------------------------------------------- Export as Get


def _encrypting(kek_uid: str) -> KeyWrappingSpecification:
    return KeyWrappingSpecification(
        wrapping_method=WrappingMethod.ENCRYPT,
        encryption_key_information=EncryptionKeyInformation(unique_identifier=kek_uid),
        encoding_option=EncodingOption.NO_ENCODING,
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_export_wraps_as_get_does_and_withholds_a_sensitive_key(engine, version):
    secret_key, material = os.urandom(32), os.urandom(32)
    kek_uid = register(engine, version, ObjectType.SYMMETRIC_KEY, aes_key(secret_key), [KEK_USAGE, KW, ACTIVE])
    uid = aes(engine, version, material, [Attribute(name="Sensitive", value=True)])
    assert "sensitive" in failure(export(engine, version, uid), R.SENSITIVE)
    failure(export(engine, version, uid, key_wrap_type=KeyWrapType.NOT_WRAPPED), R.SENSITIVE)
    exported = ok(export(engine, version, uid, key_wrapping_specification=_encrypting(kek_uid)))
    block = exported.managed_object.key_block
    assert keywrap.aes_key_unwrap(secret_key, block.key_value) == material
    assert block.key_wrapping_data.encryption_key_information.unique_identifier == kek_uid
    assert named(exported.attributes.attributes, "Sensitive") == [True]
    # Exported wrapped, imported elsewhere unwrapped with the same key: the same bytes.
    ok(import_(engine, version, "copy", exported.managed_object, [USAGE], key_wrap_type=KeyWrapType.NOT_WRAPPED))
    assert material_of(engine, version, "copy") == material
    # Not Extractable: never.
    fixed = aes(engine, version, os.urandom(32), [Attribute(name="Extractable", value=False)])
    failure(export(engine, version, fixed, key_wrapping_specification=_encrypting(kek_uid)), R.NOT_EXTRACTABLE)


@pytest.mark.parametrize("version", VERSIONS)
def test_export_refusals(engine, version):
    uid = aes(engine, version, os.urandom(32))
    failure(export(engine, version, "no-such-object"), R.OBJECT_NOT_FOUND)
    failure(export(engine, version, uid, BOB), hidden(version))
    fields = {"key_compression_type": 1}
    failure(export(engine, version, uid, **fields), R.KEY_COMPRESSION_TYPE_NOT_SUPPORTED)
    failure(export(engine, version, uid, key_wrap_type=KeyWrapType.AS_REGISTERED), R.KEY_WRAP_TYPE_NOT_SUPPORTED)
    missing = _encrypting("no-such-kek")
    failure(export(engine, version, uid, key_wrapping_specification=missing), R.WRAPPING_OBJECT_NOT_FOUND)
    pre_active = register(engine, version, ObjectType.SYMMETRIC_KEY, aes_key(os.urandom(32)), [USAGE])
    ok(one(engine, version, item(Operation.DESTROY, unique_identifier=pre_active)))
    failure(export(engine, version, pre_active), R.OBJECT_DESTROYED)


# ----------------------------------------------------------------------------- Import refusals


@pytest.mark.parametrize("version", VERSIONS)
def test_import_refusals(engine, version):
    material = os.urandom(32)
    key = aes_key(material)

    def refused(reason, attributes=(), uid="refused", managed=key, **fields) -> str:
        message = failure(import_(engine, version, uid, managed, attributes, **fields), reason)
        failure(export(engine, version, uid), R.OBJECT_NOT_FOUND)  # nothing stored
        return message

    assert "Unique Identifier" in refused(R.INVALID_FIELD, uid="")
    failure(
        one(engine, version, item(Operation.IMPORT, unique_identifier="no-attributes", object_type=ObjectType.SYMMETRIC_KEY,
                                  managed_object=key)),
        R.INVALID_FIELD,
    )  # fmt: skip
    refused(R.INVALID_ATTRIBUTE_VALUE, [Attribute(name="Unique Identifier", value="another")])
    refused(R.INVALID_ATTRIBUTE_VALUE, [Attribute(name="Object Type", value=ObjectType.SECRET_DATA)])
    refused(R.INVALID_ATTRIBUTE_VALUE, [Attribute(name="Short Unique Identifier", value=b"\x00" * 32)])
    refused(R.INVALID_ATTRIBUTE_VALUE, [Attribute(name="Key Format Type", value=F.TRANSPARENT_SYMMETRIC_KEY)])
    refused(R.INVALID_ATTRIBUTE_VALUE, [Attribute(name="Key Value Present", value=False)])
    forged = Digest(hashing_algorithm=HashingAlgorithm.SHA_256, digest_value=b"\x01" * 32, key_format_type=F.RAW)
    assert "Digest" in refused(R.INVALID_ATTRIBUTE_VALUE, [Attribute(name="Digest", value=forged)])
    refused(R.INVALID_ATTRIBUTE_VALUE, [Attribute(name="State", value=State.DESTROYED)])
    refused(R.INVALID_ATTRIBUTE_VALUE, [Attribute(name="Cryptographic Length", value=128)])
    refused(R.ATTRIBUTE_SINGLE_VALUED, [USAGE, Attribute(name="Cryptographic Usage Mask", value=int(Usage.ENCRYPT))])
    refused(R.INVALID_FIELD, [], object_type=ObjectType.SECRET_DATA)  # the object is a Symmetric Key
    assert "Import accepts" in refused(R.INVALID_OBJECT_TYPE, [], managed=Template(), object_type=ObjectType.TEMPLATE)
    # A State that is no State.
    refused(R.INVALID_ATTRIBUTE_VALUE, [Attribute(name="State", value=99)])


@pytest.mark.parametrize("version", VERSIONS)
def test_a_destroyed_key_imports_without_its_value(engine, version):
    block = KeyBlock(key_format_type=F.RAW, cryptographic_algorithm=A.AES, cryptographic_length=256)
    given = [USAGE, Attribute(name="State", value=State.DESTROYED)]
    ok(import_(engine, version, "gone", SymmetricKey(key_block=block), given))
    failure(export(engine, version, "gone"), R.OBJECT_DESTROYED)
    get_attributes = item(Operation.GET_ATTRIBUTES, unique_identifier="gone", attribute_references=())
    attributes = ok(one(engine, version, get_attributes)).attributes.attributes
    assert named(attributes, "State") == [State.DESTROYED]
    assert named(attributes, "Key Value Present") == [False]


# ----------------------------------------------------------------------------- versions


def test_1_x_clients_have_neither_operation(engine):
    uid = aes(engine, V21, os.urandom(32))
    failure(one(engine, V14, item(Operation.EXPORT, unique_identifier=uid)), R.OPERATION_NOT_SUPPORTED)
    failure(one(engine, V14, item(Operation.IMPORT, unique_identifier="x")), R.OPERATION_NOT_SUPPORTED)
    for version, listed in ((V14, False), (V20, True), (V21, True)):
        query = item(Operation.QUERY, query_functions=(QueryFunction.QUERY_OPERATIONS,))
        operations = set(ok(one(engine, version, query)).operations)
        assert ({Operation.IMPORT, Operation.EXPORT} <= operations) is listed
        assert operations.isdisjoint({Operation.IMPORT, Operation.EXPORT}) is not listed


def hidden(version) -> R:
    """Another client's object is answered as a missing one (the default policy hides it)."""
    return R.OBJECT_NOT_FOUND if version >= (2, 0) else R.ITEM_NOT_FOUND
