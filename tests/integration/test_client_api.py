"""The blocking client's API against the real engine in process (SoftHSM2; SQLite and PostgreSQL),
in KMIP 1.4 and 2.1 and with the version negotiated."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from kmip_client import Client
from kmip_client.aio import AsyncClient
from kmip_client.envelope import Envelope, EnvelopeError
from kmip_client.protocol.errors import KmipError, PermissionDenied
from kmip_client.protocol.spec.enums import (
    BatchErrorContinuationOption,
    CryptographicAlgorithm,
    KeyFormatType,
    ObjectType,
    Operation,
    ResultReason,
    ResultStatus,
    RevocationReasonCode,
    SecretDataType,
    State,
)
from kmip_server.policy import parse_policy
from tests.support.inprocess import AsyncDispatcherTransport, DispatcherTransport

VERSIONS = [(1, 4), (2, 1)]


def client_for(engine, version=None, identity="admin") -> Client:
    return Client(transport=DispatcherTransport(engine, identity), version=version)


def test_version_is_negotiated_with_discover_versions(engine):
    transport = DispatcherTransport(engine)
    client = Client(transport=transport)
    assert client.version == (2, 1)
    assert transport.sent == 1
    assert client.discover_versions([(1, 2), (1, 4), (3, 0)]) == [(1, 2), (1, 4)]
    info = client.query()
    assert Operation.CREATE in info.operations and ObjectType.SYMMETRIC_KEY in info.object_types
    assert info.vendor_identification == "Strongroom"


@pytest.mark.parametrize("version", VERSIONS)
def test_key_lifecycle(engine, version):
    client = client_for(engine, version)
    uid = client.create("AES", 256, name="orders-db", attributes={"Object Group": "db", "x-tenant": "blue"})
    key = client.get(uid)
    assert key.unique_identifier == uid and key.object_type == ObjectType.SYMMETRIC_KEY
    assert len(key.value) == 32 and key.algorithm == CryptographicAlgorithm.AES and key.length == 256
    transparent = client.get(uid, key_format=KeyFormatType.TRANSPARENT_SYMMETRIC_KEY)
    assert transparent.value == key.value and transparent.key_format == KeyFormatType.TRANSPARENT_SYMMETRIC_KEY
    attrs = client.get_attributes(uid, ["State", "Name", "Object Group", "x-tenant"])
    assert attrs["State"] == [State.PRE_ACTIVE] and attrs["x-tenant"] == ["blue"]
    assert [n.value for n in attrs["Name"]] == ["orders-db"] and attrs["Object Group"] == ["db"]
    client.activate(uid)
    with pytest.raises(KmipError) as refused:
        client.destroy(uid)
    # Wrong Key Lifecycle State from 2.1; Permission Denied before, as the OASIS test cases show.
    expected = ResultReason.WRONG_KEY_LIFECYCLE_STATE if version >= (2, 1) else ResultReason.PERMISSION_DENIED
    assert refused.value.reason == expected and refused.value.message
    when = datetime(2026, 1, 2, tzinfo=UTC)
    client.revoke(uid, RevocationReasonCode.KEY_COMPROMISE, compromise_date=when)
    assert client.get_attributes(uid, ["State", "Compromise Occurrence Date"]) == {
        "State": [State.COMPROMISED],
        "Compromise Occurrence Date": [when],
    }
    client.destroy(uid)
    with pytest.raises(KmipError):
        client.get(uid)


@pytest.mark.parametrize("version", VERSIONS)
def test_register_locate_and_attributes(engine, version):
    client = client_for(engine, version)
    key_uid = client.register_key(bytes(range(16)), "AES", name="imported")
    secret_uid = client.register_secret(b"hunter2", SecretDataType.PASSWORD, name="db-password")
    opaque_uid = client.register_opaque(b"\x00blob", name="blob")
    assert client.get(key_uid).value == bytes(range(16))
    assert client.get(secret_uid).value == b"hunter2"
    assert client.get(secret_uid).data_type == SecretDataType.PASSWORD
    assert client.get(opaque_uid).value == b"\x00blob"
    assert client.locate(name="db-password") == [secret_uid]
    assert client.locate(object_type=ObjectType.SYMMETRIC_KEY, algorithm="AES", length=128) == [key_uid]
    assert client.locate(max_items=2) == [opaque_uid, secret_uid]
    assert client.locate(max_items=1, offset=2) == [key_uid]
    client.add_attribute(key_uid, "x-owner-team", "payments")
    client.set_attribute(key_uid, "Contact Information", "ops@example.com")
    client.set_attribute(key_uid, "Contact Information", "sec@example.com")
    client.add_attribute(key_uid, "Object Group", "g1")
    client.add_attribute(key_uid, "Object Group", "g2")
    if version >= (2, 0):
        client.modify_attribute(key_uid, "Object Group", "g3", current="g1")
        client.delete_attribute(key_uid, "Object Group", value="g2")
    else:
        client.modify_attribute(key_uid, "Object Group", "g3", index=0)
        client.delete_attribute(key_uid, "Object Group", index=1)
    got = client.get_attributes(key_uid, ["x-owner-team", "Contact Information", "Object Group"])
    assert got == {"x-owner-team": ["payments"], "Contact Information": ["sec@example.com"], "Object Group": ["g3"]}
    assert client.locate(attributes={"x-owner-team": "payments"}) == [key_uid]
    client.delete_attribute(key_uid, "x-owner-team")
    assert "x-owner-team" not in client.get_attributes(key_uid)


def test_errors_carry_the_result_reason(engine):
    alice = client_for(engine, (2, 1), identity="alice")
    bob = client_for(engine, (2, 1), identity="bob")
    uid = alice.create("AES", 128)
    with pytest.raises(KmipError) as hidden:
        bob.get(uid)  # another's object is answered as a missing one
    assert hidden.value.reason == ResultReason.OBJECT_NOT_FOUND and uid in hidden.value.message
    assert bob.locate() == []
    engine.reload_policy(parse_policy({"settings": {"hidden_objects": "permission-denied"}}, "test"))
    with pytest.raises(PermissionDenied) as denied:
        bob.get(uid)
    assert denied.value.reason == ResultReason.PERMISSION_DENIED and uid in denied.value.message
    with pytest.raises(KmipError) as missing:
        alice.get("no-such-key")
    assert missing.value.reason == ResultReason.OBJECT_NOT_FOUND  # 2.x; 1.x says Item Not Found
    with pytest.raises(ValueError, match="unknown cryptographic algorithm"):
        alice.create("ROT13", 128)


@pytest.mark.parametrize("version", VERSIONS)
def test_batch_with_id_placeholder(engine, version):
    client = client_for(engine, version)
    results = client.batch().create("AES", 256, name="batched").activate().get_attributes(names=["State"]).send()
    assert [r.status for r in results] == [ResultStatus.SUCCESS] * 3
    uid = results[0].payload.unique_identifier
    assert results[1].payload.unique_identifier == uid
    assert client.get_attributes(uid, ["State"]) == {"State": [State.ACTIVE]}
    undone = client.batch(BatchErrorContinuationOption.UNDO).create("AES", 128, name="undone").get("missing").send()
    assert [r.status for r in undone] == [ResultStatus.OPERATION_UNDONE, ResultStatus.OPERATION_FAILED]
    not_found = ResultReason.OBJECT_NOT_FOUND if version >= (2, 0) else ResultReason.ITEM_NOT_FOUND
    assert undone[1].error is not None and undone[1].error.reason == not_found
    assert client.locate(name="undone") == []


@pytest.mark.parametrize("version", [None, (1, 4)])
def test_async_client_matches_the_blocking_one(engine, version):
    async def scenario() -> None:
        kmip = AsyncClient(transport=AsyncDispatcherTransport(engine), version=version)
        assert await kmip.version() == (version or (2, 1))
        uids = await asyncio.gather(*(kmip.create("AES", 128, name=f"async-{n}") for n in range(5)))
        assert len(set(uids)) == 5
        await kmip.activate(uids[0])
        key = await kmip.get(uids[0])
        assert len(key.value) == 16
        assert await kmip.locate(name="async-3") == [uids[3]]
        await kmip.set_attribute(uids[0], "Contact Information", "ops")
        assert (await kmip.get_attributes(uids[0], ["State", "Contact Information"])) == {
            "State": [State.ACTIVE],
            "Contact Information": ["ops"],
        }
        with pytest.raises(KmipError) as caught:
            await kmip.destroy(uids[0])
        assert caught.value.reason in (ResultReason.PERMISSION_DENIED, ResultReason.WRONG_KEY_LIFECYCLE_STATE)
        await kmip.aclose()

    asyncio.run(scenario())


def test_envelope_encryption_survives_rotation(engine):
    client = client_for(engine, (2, 1))
    envelope = Envelope(client, "orders-kek")
    with pytest.raises(LookupError):
        envelope.encrypt(b"nothing to seal under yet")
    first_key = envelope.rotate()
    old = envelope.encrypt(b"card 4111", associated_data=b"order:1")
    assert b"card 4111" not in old
    second_key = envelope.rotate()
    assert envelope.current_key() == second_key != first_key
    new = envelope.encrypt(b"card 5500", associated_data=b"order:2")
    assert first_key.encode() in old and second_key.encode() in new
    fresh = Envelope(client_for(engine, (1, 4)), "orders-kek")  # another process, another version
    assert fresh.decrypt(old, associated_data=b"order:1") == b"card 4111"
    assert fresh.decrypt(new, associated_data=b"order:2") == b"card 5500"
    with pytest.raises(EnvelopeError):
        fresh.decrypt(old, associated_data=b"order:2")
    tampered = bytearray(new)
    tampered[-1] ^= 1
    with pytest.raises(EnvelopeError):
        fresh.decrypt(bytes(tampered), associated_data=b"order:2")
    with pytest.raises(EnvelopeError):
        fresh.decrypt(new[:20])
    # The old key revoked (no longer Active) still opens its messages; new ones use the newest key.
    client.revoke(first_key, RevocationReasonCode.SUPERSEDED)
    assert Envelope(client, "orders-kek").decrypt(old, associated_data=b"order:1") == b"card 4111"
