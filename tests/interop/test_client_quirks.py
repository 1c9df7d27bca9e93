"""The named quirks of real clients (kmip_server/engine/quirks.py, docs/compatibility.md), each
replayed against a real ``strongroom serve`` over mutual TLS.

Where the client is installed here (PyKMIP) the client itself sends the request. The others are
replayed byte for byte: the messages below are what each client's encoder writes, field for
field in its order (libkmip: ``kmip_bio_locate``, as Percona's kmippp and pg_tde call it, with
its 8,192-byte Maximum Response Size and a Time Stamp; MySQL's keyring_okv and vCenter as their
traffic shows the fields, since neither is open source), with fixed values where they send
their own (the Time Stamp is 2026-12-02T00:00:00Z).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import keywrap
from kmip.core import enums
from kmip.pie import exceptions
from kmip.pie import objects as pie_objects

from kmip_client.protocol.model import Attribute, ProtocolVersion, ResponseMessage
from kmip_client.protocol.model.messages import decode_message
from kmip_client.protocol.spec.enums import ObjectGroupMember, Operation, ResultReason, ResultStatus, SecretDataType
from kmip_client.protocol.ttlv import ItemType
from kmip_client.tls import client_ssl_context
from kmip_client.transport import ConnectionPool, parse_servers
from kmip_server.engine.quirks import QUIRKS
from tests.integration.kmip_messages import V14, create_aes, item, ok, request_bytes

from .conftest import ClientFactory, InteropServer, open_pykmip

ROOT = Path(__file__).resolve().parents[2]

# libkmip's kmip_bio_locate(bio, attributes, 2, &result, 16, offset) in KMIP 1.0 (libkmip's
# default), with Object Type Symmetric Key and Object Group "percona-keyring", as kmippp's
# op_locate_by_group pages: offset 0 (libkmip then leaves Offset Items out) and offset 16.
LIBKMIP_LOCATE_PAGE_1 = bytes.fromhex(
    "42007801000000f84200770100000058420069010000002042006a0200000004000000010000000042006b0200"
    "0000040000000000000000420050020000000400002000000000004200920900000008000000006b0f5f804200"
    "0d0200000004000000010000000042000f010000009042005c050000000400000008000000004200790100000"
    "07842004f02000000040000001000000000420008010000002842000a070000000b4f626a6563742054797065"
    "000000000042000b05000000040000000200000000420008010000003042000a070000000c4f626a656374204"
    "7726f75700000000042000b070000000f706572636f6e612d6b657972696e6700"
)
LIBKMIP_LOCATE_PAGE_2 = bytes.fromhex(
    "42007801000001084200770100000058420069010000002042006a0200000004000000010000000042006b0200"
    "0000040000000000000000420050020000000400002000000000004200920900000008000000006b0f5f804200"
    "0d0200000004000000010000000042000f01000000a042005c050000000400000008000000004200790100000"
    "08842004f020000000400000010000000004200d402000000040000001000000000420008010000002842000a"
    "070000000b4f626a6563742054797065000000000042000b0500000004000000020000000042000801000000"
    "3042000a070000000c4f626a6563742047726f75700000000042000b070000000f706572636f6e612d6b65797"
    "2696e6700"
)
# MySQL Enterprise keyring_okv's Create (KMIP 1.1): AES-256, Encrypt|Decrypt, a Name, and a
# "Storage Status Mask" of 1 (On-line) among the Template-Attribute's attributes.
KEYRING_OKV_CREATE = bytes.fromhex(
    "42007801000001a84200770100000038420069010000002042006a0200000004000000010000000042006b0200"
    "000004000000010000000042000d0200000004000000010000000042000f010000016042005c050000000400"
    "000001000000004200790100000148420057050000000400000002000000004200910100000130420008010000"
    "003042000a070000001743727970746f6772617068696320416c676f726974686d0042000b050000000400000"
    "00300000000420008010000003042000a070000001443727970746f67726170686963204c656e677468000000"
    "0042000b02000000040000010000000000420008010000003042000a070000001843727970746f677261706869"
    "63205573616765204d61736b42000b02000000040000000c00000000420008010000003042000a07000000135"
    "3746f7261676520537461747573204d61736b000000000042000b020000000400000001000000004200080100"
    "00004842000a07000000044e616d650000000042000b010000003042005507000000154d7953514c5265706c6"
    "9636174696f6e4b65795f3100000042005405000000040000000100000000"
)
# vCenter's Create (KMIP 1.1) with its Authentication: a Username and Password Credential
# (user "vcenter", password "not-checked") in the request header.
VCENTER_CREATE_WITH_CREDENTIAL = bytes.fromhex(
    "42007801000001704200770100000088420069010000002042006a0200000004000000010000000042006b0200"
    "000004000000010000000042000c0100000048420023010000004042002405000000040000000100000000420"
    "025010000002842009907000000077663656e746572004200a1070000000b6e6f742d636865636b6564000000"
    "000042000d0200000004000000010000000042000f01000000d842005c05000000040000000100000000420079"
    "01000000c04200570500000004000000020000000042009101000000a8420008010000003042000a07000000"
    "1743727970746f6772617068696320416c676f726974686d0042000b0500000004000000030000000042000801"
    "0000003042000a070000001443727970746f67726170686963204c656e6774680000000042000b0200000004"
    "0000010000000000420008010000003042000a070000001843727970746f67726170686963205573616765204d"
    "61736b42000b02000000040000000c00000000"
)


# MongoDB's libmongocrypt (kms-message, kms_kmip_request_register_secretdata_new): its
# key-encryption key as a 96-byte Secret Data of type Seed, Opaque, Cryptographic Usage Mask 0,
# in KMIP 1.0 with nothing in the header but the version and Batch Count (the bytes 00..5f here).
MONGODB_REGISTER_KEK = bytes.fromhex(
    "42007801000001504200770100000038420069010000002042006a0200000004000000010000000042006b0200"
    "000004000000000000000042000d0200000004000000010000000042000f010000010842005c050000000400"
    "0000030000000042007901000000f0420057050000000400000007000000004200910100000038420008010000"
    "003042000a070000001843727970746f67726170686963205573616765204d61736b42000b02000000040000"
    "000000000000420085010000009842008605000000040000000200000000420040010000008042004205000000"
    "04000000020000000042004501000000684200430800000060" + bytes(range(96)).hex()
)


@pytest.fixture
def pool(interop_server: InteropServer) -> Iterator[ConnectionPool]:
    """Raw KMIP over one mutual-TLS connection as the admin identity."""
    files = interop_server.admin
    context = client_ssl_context(ca=str(files.ca), cert=str(files.cert), key=str(files.key))
    connections = ConnectionPool(parse_servers(f"{interop_server.host}:{interop_server.port}"), context, retries=0)
    yield connections
    connections.close()


def replay(pool: ConnectionPool, request: bytes) -> ResponseMessage:
    response = decode_message(pool.exchange(request, idempotent=False))
    assert isinstance(response, ResponseMessage)
    return response


def _create(pool: ConnectionPool, **kwargs: object) -> str:
    return ok(replay(pool, request_bytes(V14, create_aes(V14, **kwargs))).batch_items[0]).unique_identifier


def test_libkmip_pages_a_1_0_locate_with_offset_items(pool: ConnectionPool) -> None:
    group = [Attribute(name="Object Group", value="percona-keyring")]
    created = {_create(pool, extra=group) for _ in range(20)}
    pages = []
    for request in (LIBKMIP_LOCATE_PAGE_1, LIBKMIP_LOCATE_PAGE_2):
        response = replay(pool, request)
        assert response.header is not None and response.header.protocol_version == ProtocolVersion(major=1, minor=0)
        payload = ok(response.batch_items[0])
        assert payload.located_items is None  # a 1.3 field: never sent to a 1.0 client
        pages.append(payload.unique_identifiers)
    assert [len(page) for page in pages] == [16, 4]
    assert set(pages[0]) | set(pages[1]) == created


def test_fields_of_later_versions_stay_refused_unless_named(pool: ConnectionPool) -> None:
    """Only the named field is tolerated: Object Group Member (KMIP 1.1) in a 1.0 Locate is not."""
    request = request_bytes((1, 0), item(Operation.LOCATE, object_group_member=ObjectGroupMember.GROUP_MEMBER_FRESH))
    result = replay(pool, request).batch_items[0]
    assert result.result_status == ResultStatus.OPERATION_FAILED
    assert result.result_reason == ResultReason.INVALID_FIELD and "object_group_member" in result.result_message


def _warnings(interop_server: InteropServer, quirk: str) -> list[str]:
    return [line for line in interop_server.process.stderr_text(10**7).splitlines() if f"quirk {quirk}" in line]


def test_keyring_okv_create_with_storage_status_mask(pool: ConnectionPool, interop_server: InteropServer) -> None:
    uids = [ok(replay(pool, KEYRING_OKV_CREATE).batch_items[0]).unique_identifier for _ in range(2)]
    for uid in uids:
        listed = ok(
            replay(pool, request_bytes((1, 1), item(Operation.GET_ATTRIBUTE_LIST, unique_identifier=uid))).batch_items[
                0
            ]
        )
        assert "Storage Status Mask" not in listed.attribute_names and "Name" in listed.attribute_names
        key = ok(replay(pool, request_bytes((1, 1), item(Operation.GET, unique_identifier=uid))).batch_items[0])
        assert len(key.managed_object.key_block.key_value.key_material) == 32
    # One WARNING for the identity (both Creates went over one connection, so to one worker).
    logged = _warnings(interop_server, "create-storage-status-mask")
    assert len(logged) == 1 and "WARNING" in logged[0]
    assert "'admin'" in logged[0] and "'Storage Status Mask'" in logged[0]


def test_storage_status_mask_of_another_type_is_still_refused(pool: ConnectionPool) -> None:
    bad = [Attribute(name="Storage Status Mask", value="on-line", type=ItemType.TEXT_STRING)]
    result = replay(pool, request_bytes((1, 1), create_aes((1, 1), extra=bad))).batch_items[0]
    assert result.result_status == ResultStatus.OPERATION_FAILED and result.result_reason == ResultReason.INVALID_FIELD


def test_header_credential_is_accepted(pool: ConnectionPool) -> None:
    uid = ok(replay(pool, VCENTER_CREATE_WITH_CREDENTIAL).batch_items[0]).unique_identifier
    key = ok(replay(pool, request_bytes((1, 1), item(Operation.GET, unique_identifier=uid))).batch_items[0])
    assert len(key.managed_object.key_block.key_value.key_material) == 32


def test_pykmip_credential_does_not_change_the_identity(interop_server: InteropServer) -> None:
    """PyKMIP sends its configured username and password in every request header. Bob's
    certificate with the username "admin" is still bob: admin's keys stay out of reach."""
    admin = open_pykmip(interop_server, "admin", enums.KMIPVersion.KMIP_1_2)
    bob = open_pykmip(interop_server, "bob", enums.KMIPVersion.KMIP_1_2, username="admin", password="guess")
    try:
        mine = bob.create(enums.CryptographicAlgorithm.AES, 256)
        assert len(bob.get(mine).value) == 32
        theirs = admin.create(enums.CryptographicAlgorithm.AES, 256)
        with pytest.raises(exceptions.KmipOperationFailure) as refused:
            bob.get(theirs)
        assert refused.value.reason == enums.ResultReason.ITEM_NOT_FOUND  # hidden: as if missing
    finally:
        admin.close()
        bob.close()


def test_pykmip_locate_does_not_find_destroyed_keys(connect: ClientFactory, kmip_version: enums.KMIPVersion) -> None:
    client = connect()
    name = f"quirk-destroyed-{uuid.uuid4().hex[:10]}"
    uid = client.create(enums.CryptographicAlgorithm.AES, 256, name=name)
    by_name = client.attribute_factory.create_attribute(enums.AttributeType.NAME, name)
    assert client.locate(attributes=[by_name]) == [uid]
    client.destroy(uid)
    assert client.locate(attributes=[by_name]) == []
    # Asking for the state still finds it (the 1.x way to look for destroyed objects).
    destroyed = client.attribute_factory.create_attribute(enums.AttributeType.STATE, enums.State.DESTROYED)
    assert client.locate(attributes=[by_name, destroyed]) == [uid]


@pytest.mark.parametrize(
    "version", [enums.KMIPVersion.KMIP_1_2, enums.KMIPVersion.KMIP_1_4], ids=["kmip1.2", "kmip1.4"]
)
def test_pykmip_modify_and_delete_attribute_get_the_index_back(
    interop_server: InteropServer, version: enums.KMIPVersion
) -> None:
    client = open_pykmip(interop_server, "admin", version)
    try:
        uid = client.create(enums.CryptographicAlgorithm.AES, 256, name=f"quirk-index-{uuid.uuid4().hex[:10]}")
        renamed = client.attribute_factory.create_attribute(
            enums.AttributeType.NAME, f"quirk-renamed-{uuid.uuid4().hex[:10]}", index=0
        )
        returned_uid, modified = client.modify_attribute(uid, attribute=renamed)
        assert returned_uid == uid and modified.attribute_index.value == 0
        assert modified.attribute_value.name_value.value == renamed.attribute_value.name_value.value
        returned_uid, deleted = client.delete_attribute(uid, attribute_name="Name", attribute_index=0)
        assert returned_uid == uid and deleted.attribute_index.value == 0
        assert deleted.attribute_name.value == "Name"
    finally:
        client.close()


def test_pykmip_rekey_in_2_0_sends_a_template_attribute(interop_server: InteropServer) -> None:
    client = open_pykmip(interop_server, "admin", enums.KMIPVersion.KMIP_2_0)
    try:
        old = client.create(enums.CryptographicAlgorithm.AES, 256)
        new = client.rekey(old, activation_date=1_900_000_000)  # inside PyKMIP's Template-Attribute
        assert new != old
        dates = client.get_attributes(new, ["Activation Date", "State"])[1]
        found = {a.attribute_name.value: a.attribute_value.value for a in dates}
        assert found == {"Activation Date": 1_900_000_000, "State": enums.State.PRE_ACTIVE}
    finally:
        client.close()


@pytest.mark.parametrize(
    "version", [enums.KMIPVersion.KMIP_1_4, enums.KMIPVersion.KMIP_2_0], ids=["kmip1.4", "kmip2.0"]
)
def test_pykmip_registers_a_wrapped_key_in_its_own_form(
    interop_server: InteropServer, version: enums.KMIPVersion
) -> None:
    client = open_pykmip(interop_server, "admin", version)
    try:
        kek_bytes, key_bytes = os.urandom(32), os.urandom(32)
        masks = [enums.CryptographicUsageMask.WRAP_KEY, enums.CryptographicUsageMask.UNWRAP_KEY]
        kek = client.register(pie_objects.SymmetricKey(enums.CryptographicAlgorithm.AES, 256, kek_bytes, masks=masks))
        client.activate(kek)
        wrapping = {
            "wrapping_method": enums.WrappingMethod.ENCRYPT,
            "encryption_key_information": {
                "unique_identifier": kek,
                "cryptographic_parameters": {"block_cipher_mode": enums.BlockCipherMode.NIST_KEY_WRAP},
            },
            "encoding_option": enums.EncodingOption.NO_ENCODING,
        }
        wrapped = keywrap.aes_key_wrap(kek_bytes, key_bytes)
        uid = client.register(
            pie_objects.SymmetricKey(enums.CryptographicAlgorithm.AES, 256, wrapped, key_wrapping_data=wrapping)
        )
        assert client.get(uid).value == key_bytes  # unwrapped by the server, returned plain
    finally:
        client.close()


def test_the_table_in_code_is_the_table_in_the_docs() -> None:
    """docs/compatibility.md lists every quirk of engine/quirks.py, with its test; each test exists."""
    docs = (ROOT / "docs" / "compatibility.md").read_text()
    rows = [line for line in docs.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == [quirk.key for quirk in QUIRKS]
    for quirk, row in zip(QUIRKS, rows, strict=True):
        path, _, function = quirk.test.partition("::")
        assert f"`{quirk.test}`" in row
        assert f"def {function}(" in (ROOT / path).read_text(), quirk.test


def _mongodb(operation: int, uid: str) -> bytes:
    """kms-message's Activate (0x12) and Get (0x0A): KMIP 1.0, the Unique Identifier alone."""
    text = uid.encode()
    padded = text + bytes(-len(text) % 8)
    field = bytes.fromhex("42009407") + len(text).to_bytes(4, "big") + padded
    payload = bytes.fromhex("42007901") + len(field).to_bytes(4, "big") + field
    op = bytes.fromhex("42005c0500000004") + operation.to_bytes(4, "big") + bytes(4)
    batch = bytes.fromhex("42000f01") + (len(op) + len(payload)).to_bytes(4, "big") + op + payload
    header = bytes.fromhex(
        "4200770100000038420069010000002042006a0200000004000000010000000042006b0200000004000000000000"
        "000042000d02000000040000000100000000"
    )
    body = header + batch
    return bytes.fromhex("42007801") + len(body).to_bytes(4, "big") + body


def test_mongodb_registers_activates_and_gets_its_key_encryption_key(pool: ConnectionPool) -> None:
    """Not a quirk: MongoDB's client-side encryption traffic, replayed to show it needs none."""
    uid = ok(replay(pool, MONGODB_REGISTER_KEK).batch_items[0]).unique_identifier
    ok(replay(pool, _mongodb(0x12, uid)).batch_items[0])
    secret = ok(replay(pool, _mongodb(0x0A, uid)).batch_items[0]).managed_object
    assert secret.secret_data_type == SecretDataType.SEED
    assert secret.key_block.key_value.key_material == bytes(range(96))
