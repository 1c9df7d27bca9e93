"""Automatic key rotation (KMIP 2.1 Rotate attributes) on the real token and both stores: who
may set which Rotate attribute in which version; keys due at Initial Date + Rotate Interval,
rotated once on the engine's settable clock, with the Names moved, the links both ways and
Rotate Generation, Latest and Date right on both keys; the Offset; keys that are not due; old
data still decrypting with the replaced key; key pairs; two schedulers racing on one store (the
lease, and the per-key lock without it); the lease itself; the schema migration; and a real
`strongroom serve --workers 2` rotating a key once, with `strongroom rotation status`."""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select, text

from kmip_client.protocol.model import Attribute, Attributes
from kmip_client.protocol.model.attributes import CryptographicParameters, RevocationReason
from kmip_client.protocol.spec import Tag
from kmip_client.protocol.spec.enums import (
    BlockCipherMode,
    LinkType,
    Operation,
    PaddingMethod,
    ResultReason,
    RevocationReasonCode,
    State,
    ValidityIndicator,
)
from kmip_client.protocol.ttlv import Item, ItemType
from kmip_server.engine.dispatcher import Dispatcher
from kmip_server.rotation.scheduler import RotationScheduler
from kmip_server.rotation.status import read_status, render
from kmip_server.rotation_settings import RotationSettings
from kmip_server.storage import rotation as store
from kmip_server.storage.repository import Repository
from kmip_server.storage.schema import SCHEMA_VERSION, rotation_lease, schema_version
from tests.support.server_process import free_port, run_cli, running_server, strongroom_init

from .conftest import postgres_schema_url
from .engine_support import T0, Clock, failure, locate, one, set_attribute
from .kmip_messages import V14, V21, at, create_aes, item, ok, request_bytes
from .test_engine_key_pairs import create_pair, rsa_common, sign, verify
from .test_engine_rekey import RSA_SHA256, _lone_private_key, everything, rekey, replaced, replacement
from .test_server_cli import exchange

R = ResultReason
HOUR = 3600
SETTINGS = RotationSettings(check_seconds=60, batch_size=50)
CBC = CryptographicParameters(block_cipher_mode=BlockCipherMode.CBC, padding_method=PaddingMethod.PKCS5)
IV = bytes(range(16))


def _attr(name: str, value: Any) -> Attribute:
    return Attribute(name=name, value=value)


def rotate_name(value: str) -> Attribute:
    # The client library models no Rotate Name structure: its fields as TTLV.
    fields = [
        Item(Tag.ROTATE_NAME_VALUE, ItemType.TEXT_STRING, value),
        Item(Tag.ROTATE_NAME_TYPE, ItemType.ENUMERATION, 1),
    ]
    return _attr("Rotate Name", Item(Tag.ROTATE_NAME, ItemType.STRUCTURE, fields))


def schedule(interval: int = HOUR, offset: int | None = None, activated: int = T0) -> list[Attribute]:
    found = [
        _attr("Rotate Automatic", True),
        _attr("Rotate Interval", interval),
        _attr("Activation Date", at(activated)),
    ]
    return found + ([_attr("Rotate Offset", offset)] if offset is not None else [])


def rotating_key(engine: Dispatcher, name: str = "payroll", extra: list[Attribute] | None = None, **kwargs: Any) -> str:
    """An Active AES-256 key (2.1 Create) that asks to be rotated every ``interval`` seconds."""
    request = create_aes(V21, name=name, extra=schedule(**kwargs) + list(extra or []))
    return ok(one(engine, V21, request)).unique_identifier


def names(engine: Dispatcher, uid: str) -> list[str]:
    return [n.value for n in everything(engine, V21, uid).get("Name", [])]


def links(engine: Dispatcher, uid: str) -> list[Any]:
    return everything(engine, V21, uid).get("Link", [])


@pytest.fixture
def scheduler(engine: Dispatcher, store_url: str, clock: Clock) -> Iterator[RotationScheduler]:
    """A scheduler as a worker runs it: a Repository of its own, the engine's token and clock."""
    repository = Repository(store_url)
    yield RotationScheduler(repository, engine.custody, SETTINGS, clock=clock, holder="node-a")
    repository.dispose()


# ---- the attributes


def test_clients_set_the_schedule_once_and_the_server_the_lineage(engine: Dispatcher) -> None:
    uid = rotating_key(engine, offset=600, extra=[rotate_name("payroll-keys")])
    got = everything(engine, V21, uid)
    assert got["Rotate Automatic"] == [True] and got["Rotate Interval"] == [HOUR] and got["Rotate Offset"] == [600]
    assert got["Rotate Name"][0].value[0].value == "payroll-keys"
    assert not {"Rotate Generation", "Rotate Latest", "Rotate Date"} & got.keys()  # set when it is rotated
    # The schedule: set once (at creation or later), never changed or deleted by a client.
    for attribute in (_attr("Rotate Interval", 60), _attr("Rotate Automatic", False), _attr("Rotate Offset", 0)):
        failure(set_attribute(engine, uid, attribute), R.ATTRIBUTE_READ_ONLY)
        request = item(
            Operation.MODIFY_ATTRIBUTE, unique_identifier=uid, new_attribute=Attributes(attributes=(attribute,))
        )
        failure(one(engine, V21, request), R.ATTRIBUTE_READ_ONLY)
    delete = item(Operation.DELETE_ATTRIBUTE, unique_identifier=uid, attribute_reference=Tag.ROTATE_INTERVAL)
    failure(one(engine, V21, delete), R.ATTRIBUTE_READ_ONLY)
    # Rotate Name is the client's to change and delete.
    ok(set_attribute(engine, uid, rotate_name("renamed")))
    assert everything(engine, V21, uid)["Rotate Name"][0].value[0].value == "renamed"
    delete = item(Operation.DELETE_ATTRIBUTE, unique_identifier=uid, attribute_reference=Tag.ROTATE_NAME)
    ok(one(engine, V21, delete))
    assert "Rotate Name" not in everything(engine, V21, uid)
    # A key without a schedule may be given one later.
    plain = ok(one(engine, V21, create_aes(V21))).unique_identifier
    ok(set_attribute(engine, plain, _attr("Rotate Automatic", True)))
    ok(set_attribute(engine, plain, _attr("Rotate Interval", 60)))
    assert everything(engine, V21, plain)["Rotate Interval"] == [60]
    # What the server records, no client sets.
    for attribute in (_attr("Rotate Generation", 3), _attr("Rotate Latest", True), _attr("Rotate Date", at(T0))):
        failure(one(engine, V21, create_aes(V21, extra=[attribute])), R.ATTRIBUTE_READ_ONLY)
        failure(set_attribute(engine, plain, attribute), R.ATTRIBUTE_READ_ONLY)
    message = failure(one(engine, V21, create_aes(V21, extra=[_attr("Rotate Interval", 0)])), R.INVALID_ATTRIBUTE_VALUE)
    assert "at least one second" in message


def test_1x_clients_neither_set_nor_see_the_rotate_attributes(engine: Dispatcher, scheduler, clock) -> None:
    message = failure(one(engine, V14, create_aes(V14, extra=[_attr("Rotate Interval", HOUR)])), R.INVALID_FIELD)
    assert "from KMIP 2.1" in message
    v20 = (2, 0)
    message = failure(
        one(engine, v20, create_aes(v20, extra=[_attr("Rotate Automatic", True)])), R.UNSUPPORTED_ATTRIBUTE
    )
    assert "not in 2.0" in message
    uid = rotating_key(engine)
    clock.now = T0 + HOUR
    (rotated,) = scheduler.check()
    for key in (uid, *rotated.new_uids):
        assert not [name for name in everything(engine, V14, key) if name.startswith("Rotate")]
        request = item(Operation.ADD_ATTRIBUTE, unique_identifier=key, attribute=_attr("Rotate Name", "x"))
        failure(one(engine, V14, request), R.INVALID_FIELD)
    # The 1.4 client still sees the replacement itself: the links and the Name that moved.
    assert replacement(rotated.new_uids[0]) in everything(engine, V14, uid)["Link"]



def audit_records(engine):
    from kmip_server.audit import tail

    with engine.repository.read() as s:
        return tail(s.connection, 10_000)


# ---- rotating


def test_a_due_key_is_rotated_once_with_its_name_links_and_lineage(engine, scheduler, clock, caplog) -> None:
    old = rotating_key(engine, extra=[rotate_name("payroll-keys")])
    clock.now = T0 + HOUR - 1
    assert scheduler.check() == []  # not yet: Initial Date + Rotate Interval is a second away
    clock.now = T0 + HOUR
    before = len(audit_records(engine))
    (rotated,) = scheduler.check()
    assert scheduler.check() == []  # once: the replacement is due an interval later
    (new,) = rotated.new_uids
    assert (rotated.old_uid, rotated.due_since, rotated.rotated) == (old, T0 + HOUR, T0 + HOUR)
    (record,) = audit_records(engine)[before:]  # in the audit trail, with the rotation's transaction
    assert (record.identity, record.operation, record.object_ids, record.result, record.detail) == (
        "alice",
        "Re-key",
        (old, new),
        "Success",
        "automatic rotation",
    )
    got_new, got_old = everything(engine, V21, new), everything(engine, V21, old)
    assert names(engine, new) == ["payroll"] and "Name" not in got_old  # the Name moved
    assert got_new["Link"] == [replaced(old)] and got_old["Link"] == [replacement(new)]
    assert got_new["Rotate Generation"] == [1] and got_new["Rotate Latest"] == [True]
    assert "Rotate Date" not in got_new and got_new["Initial Date"] == [at(T0 + HOUR)]
    assert got_old["Rotate Latest"] == [False] and got_old["Rotate Date"] == [at(T0 + HOUR)]
    assert "Rotate Generation" not in got_old  # generation 0, never written
    # The schedule moved on with the key: the old one is no longer rotated.
    assert got_new["Rotate Automatic"] == [True] and got_new["Rotate Interval"] == [HOUR]
    assert got_new["Rotate Name"][0].value[0].value == "payroll-keys"
    assert got_old["Rotate Automatic"] == [False]
    # No Offset: the replacement keeps the old key's Activation Date, so it is Active at once,
    # and the old key stays Active (Re-key leaves its state).
    assert got_new["Activation Date"] == [at(T0)] and got_new["State"] == [State.ACTIVE]
    assert got_old["State"] == [State.ACTIVE]
    # An interval later the chain goes on: generation 2, the Name moved again.
    clock.now = T0 + 2 * HOUR + 30
    (second,) = scheduler.check()
    assert second.old_uid == new and second.due_since == T0 + 2 * HOUR
    (newest,) = second.new_uids
    assert everything(engine, V21, newest)["Rotate Generation"] == [2] and names(engine, newest) == ["payroll"]
    assert everything(engine, V21, new)["Rotate Latest"] == [False]
    assert everything(engine, V21, newest)["Initial Date"] == [at(T0 + 2 * HOUR + 30)]
    # Locate finds the chain by its Rotate Name, and its newest key with Rotate Latest.
    chain = locate(engine, V21, [rotate_name("payroll-keys")]).unique_identifiers
    assert sorted(chain) == sorted([old, new, newest])
    latest = locate(engine, V21, [rotate_name("payroll-keys"), _attr("Rotate Latest", True)])
    assert latest.unique_identifiers == (newest,)


def test_a_clients_rekey_records_the_lineage_too(engine, scheduler, clock) -> None:
    # Rotate Generation counts "automatic rotates or ReKey, ReKeyKeyPair, or ReCertify
    # operations" (2.1 §4.50): a client's Re-key is a rotation like the scheduler's.
    old = rotating_key(engine)
    clock.now = T0 + 60
    new = rekey(engine, V21, old)
    got_new, got_old = everything(engine, V21, new), everything(engine, V21, old)
    assert got_new["Rotate Generation"] == [1] and got_new["Rotate Latest"] == [True]
    assert got_old["Rotate Latest"] == [False] and got_old["Rotate Date"] == [at(T0 + 60)]
    assert got_old["Rotate Automatic"] == [False] and got_new["Rotate Automatic"] == [True]
    # The scheduler then leaves the old key alone and rotates the new one an interval after it was made.
    clock.now = T0 + HOUR + 59
    assert scheduler.check() == []
    clock.now = T0 + HOUR + 60
    assert [r.old_uid for r in scheduler.check()] == [new]
    # A plain key re-keyed by a client starts a lineage as well.
    plain = ok(one(engine, V21, create_aes(V21))).unique_identifier
    assert everything(engine, V21, rekey(engine, V21, plain))["Rotate Generation"] == [1]
    assert "Rotate Automatic" not in everything(engine, V21, plain)


def test_the_rotate_offset_places_the_replacements_activation(engine, scheduler, clock) -> None:
    old = rotating_key(engine, offset=600, extra=[_attr("Deactivation Date", at(T0 + 10 * HOUR))])
    clock.now = T0 + HOUR + 5
    (rotated,) = scheduler.check()
    got = everything(engine, V21, rotated.new_uids[0])
    # Re-key with the Offset: Activation Date = now + Offset, the Deactivation Date as far after it.
    assert got["Activation Date"] == [at(T0 + HOUR + 605)] and got["State"] == [State.PRE_ACTIVE]
    assert got["Deactivation Date"] == [at(T0 + 11 * HOUR + 605)] and got["Rotate Offset"] == [600]
    assert everything(engine, V21, old)["State"] == [State.ACTIVE]  # in use until the new one is
    # Pre-Active is not due, whatever its interval; once Active, it is due from its Initial Date.
    clock.now = T0 + 2 * HOUR + 4
    assert scheduler.check() == []
    clock.now = T0 + 2 * HOUR + 5
    (again,) = scheduler.check()
    assert again.old_uid == rotated.new_uids[0]


def test_keys_that_are_not_due_stay(engine, scheduler, clock) -> None:
    due = rotating_key(engine, name="due")
    pre_active = ok(one(engine, V21, create_aes(V21, extra=schedule()[:2]))).unique_identifier  # no Activation Date
    no_interval = ok(one(engine, V21, create_aes(V21, extra=[schedule()[0], schedule()[2]]))).unique_identifier
    not_automatic = ok(
        one(engine, V21, create_aes(V21, extra=[_attr("Rotate Automatic", False), *schedule()[1:]]))
    ).unique_identifier
    expired = rotating_key(engine, name="expired", extra=[_attr("Deactivation Date", at(T0 + 60))])
    revoked = rotating_key(engine, name="revoked")
    reason = RevocationReason(code=RevocationReasonCode.CESSATION_OF_OPERATION)
    ok(one(engine, V21, item(Operation.REVOKE, unique_identifier=revoked, revocation_reason=reason)))
    later = rotating_key(engine, name="later", interval=2 * HOUR)
    clock.now = T0 + HOUR
    assert [r.old_uid for r in scheduler.check()] == [due]
    for uid in (pre_active, no_interval, not_automatic, expired, revoked, later):
        assert _replacements_of(engine, uid) == []


def test_old_data_still_decrypts_with_the_replaced_key(engine, scheduler, clock) -> None:
    from .test_engine_encryption import decrypt, encrypt

    old = rotating_key(engine)
    secret = b"the payroll of March"
    sealed = ok(encrypt(engine, V21, old, secret, CBC, iv_counter_nonce=IV)).data
    clock.now = T0 + HOUR
    (rotated,) = scheduler.check()
    (new,) = rotated.new_uids
    assert ok(decrypt(engine, V21, old, sealed, CBC, iv_counter_nonce=IV)).data == secret
    assert (
        ok(
            decrypt(
                engine,
                V21,
                new,
                ok(encrypt(engine, V21, new, secret, CBC, iv_counter_nonce=IV)).data,
                CBC,
                iv_counter_nonce=IV,
            )
        ).data
        == secret
    )
    assert ok(encrypt(engine, V21, new, secret, CBC, iv_counter_nonce=IV)).data != sealed  # another key


def test_a_key_pair_is_rotated_by_its_private_key(engine, scheduler, clock) -> None:
    common = rsa_common() + schedule()
    old_private, old_public = create_pair(engine, V21, common)
    clock.now = T0 + HOUR
    (rotated,) = scheduler.check()  # the public key is not rotated on its own
    assert rotated.old_uid == old_private
    private, public = rotated.new_uids
    assert everything(engine, V21, private)["Rotate Generation"] == [1]
    assert everything(engine, V21, public)["Rotate Generation"] == [1]
    assert replaced(old_public) in links(engine, public) and replacement(public) in links(engine, old_public)
    assert everything(engine, V21, old_private)["Rotate Latest"] == [False]
    signature = sign(engine, V21, private, RSA_SHA256)
    assert verify(engine, V21, public, RSA_SHA256, signature) == ValidityIndicator.VALID
    assert scheduler.check() == []


def test_a_key_that_cannot_be_rotated_is_logged_and_left_for_an_hour(engine, scheduler, clock, caplog) -> None:
    lone = _lone_private_key(engine, V21)  # no Public Key Link: Re-key Key Pair cannot replace it
    for attribute in schedule():
        ok(set_attribute(engine, lone, attribute))
    due = rotating_key(engine)
    clock.now = T0 + HOUR

    def logged() -> list[str]:
        lines = [r.getMessage() for r in caplog.records if r.name == "strongroom.rotation"]
        caplog.clear()
        return [line for line in lines if lone in line]

    with caplog.at_level(logging.INFO):
        (rotated,) = scheduler.check()  # the other key is rotated all the same
        assert rotated.old_uid == due
        (warning,) = logged()
        assert warning.startswith(f"could not rotate {lone} (due since ") and "no Public Key Link" in warning
        failed = [r for r in audit_records(engine) if r.object_ids == (lone,) and r.detail == "automatic rotation"]
        assert [(r.operation, r.result, r.reason) for r in failed] == [
            ("Re-key Key Pair", "Operation Failed", "Object Not Found")
        ]
        clock.now = T0 + 2 * HOUR - 1
        assert scheduler.check() == [] and logged() == []  # left alone
        clock.now = T0 + 2 * HOUR
        assert [r.old_uid for r in scheduler.check()] == [rotated.new_uids[0]]
        assert len(logged()) == 1  # tried again after the hour
    assert _replacements_of(engine, lone) == []


def test_a_batch_is_bounded_and_longest_due_first(engine, store_url, clock) -> None:
    uids = []
    for i in range(5):
        clock.now = T0 + i
        uids.append(rotating_key(engine, name=f"k{i}"))
    clock.now = T0 + HOUR + 10
    repository = Repository(store_url)
    try:
        small = RotationScheduler(repository, engine.custody, RotationSettings(batch_size=2), clock=clock)
        assert [r.old_uid for r in small.check()] == uids[:2]
        assert [r.old_uid for r in small.check()] == uids[2:4]
        assert [r.old_uid for r in small.check()] == uids[4:]
        assert small.check() == []
    finally:
        repository.dispose()


# ---- several schedulers on one store


def _schedulers(engine: Dispatcher, store_url: str, clock: Clock, count: int = 2) -> list[RotationScheduler]:
    return [
        RotationScheduler(Repository(store_url), engine.custody, SETTINGS, clock=clock, holder=f"node-{i}")
        for i in range(count)
    ]


def _race(work: list[Any]) -> list[Any]:
    barrier = threading.Barrier(len(work))
    results: list[Any] = [None] * len(work)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work[i]()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    return results


def _replacements_of(engine: Dispatcher, uid: str) -> list[str]:
    return [
        link.linked_object_identifier
        for link in links(engine, uid)
        if link.link_type == LinkType.REPLACEMENT_OBJECT_LINK
    ]


def test_two_schedulers_racing_rotate_each_due_key_once(engine, store_url, clock) -> None:
    uids = [rotating_key(engine, name=f"k{i}") for i in range(6)]
    clock.now = T0 + HOUR
    schedulers = _schedulers(engine, store_url, clock)
    try:
        results = _race([s.check for s in schedulers])
        # The lease: one of the two did the work, the other found it taken.
        assert sorted(len(result) for result in results) == [0, 6]
        assert sorted(r.old_uid for result in results for r in result) == sorted(uids)
        assert all(len(_replacements_of(engine, uid)) == 1 for uid in uids)
        assert _race([s.check for s in schedulers]) == [[], []]
    finally:
        for s in schedulers:
            s.repository.dispose()


def test_without_the_lease_the_row_lock_still_rotates_each_key_once(engine, store_url, clock) -> None:
    # Both schedulers work from the same list of due keys at once, in opposite orders (as
    # when one's lease ran out mid-batch): each key is replaced by exactly one of them.
    uids = [rotating_key(engine, name=f"k{i}") for i in range(6)]
    clock.now = T0 + HOUR
    schedulers = _schedulers(engine, store_url, clock)
    try:
        with schedulers[0].repository.read() as session:
            due = store.due_keys(session.connection, clock.now, 100)
        assert sorted(key.uid for key in due) == sorted(uids)
        forward = lambda: [schedulers[0].rotate(key) for key in due]  # noqa: E731
        backward = lambda: [schedulers[1].rotate(key) for key in reversed(due)]  # noqa: E731
        results = _race([forward, backward])
        done = [r.old_uid for result in results for r in result if r is not None]
        assert sorted(done) == sorted(uids)
        for uid in uids:
            (new,) = _replacements_of(engine, uid)
            assert everything(engine, V21, new)["Rotate Generation"] == [1] and names(engine, new) == [
                f"k{uids.index(uid)}"
            ]
    finally:
        for s in schedulers:
            s.repository.dispose()


def test_the_lease_is_held_renewed_expires_and_is_given_up(engine, store_url, clock) -> None:
    a, b = _schedulers(engine, store_url, clock)
    lease_seconds = 3 * SETTINGS.check_seconds
    try:
        first = rotating_key(engine)
        clock.now = T0 + HOUR - 100
        assert a.check() == []  # nothing due, but a now holds the lease
        clock.now = T0 + HOUR
        assert b.check() == []  # the key is due, and a holds the lease
        assert [r.old_uid for r in a.check()] == [first]  # renewed, and rotated
        with a.repository.read() as session:
            assert store.lease(session.connection) == ("node-0", T0 + HOUR + lease_seconds)
        clock.now = T0 + HOUR + lease_seconds
        assert b.check() == []  # expired: b takes it (nothing is due)
        assert a.check() == []
        b.stop()  # gives it up at once
        with a.repository.read() as session:
            assert store.lease(session.connection) == ("", 0)
        clock.now = T0 + 2 * HOUR
        assert len(a.check()) == 1  # the replacement of the first key, due an hour after it was made
    finally:
        a.repository.dispose()
        b.repository.dispose()


def test_the_thread_checks_at_start_and_stops_giving_up_the_lease(engine, store_url, clock) -> None:
    old = rotating_key(engine)
    clock.now = T0 + HOUR
    repository = Repository(store_url)
    running = RotationScheduler(repository, engine.custody, RotationSettings(check_seconds=1), clock=clock)
    try:
        running.start()
        deadline = time.monotonic() + 30
        while not _replacements_of(engine, old) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(_replacements_of(engine, old)) == 1
        running.stop()
        assert running._thread is not None and not running._thread.is_alive()
        with repository.read() as session:
            assert store.lease(session.connection) == ("", 0)
    finally:
        repository.dispose()


# ---- the store: schema and status


def test_a_version_3_store_gets_the_lease_table(store_url: str) -> None:
    repository = Repository(store_url)
    try:
        repository.create_schema()
        with repository.engine.begin() as conn:
            conn.execute(text("DROP TABLE rotation_lease"))
            conn.execute(schema_version.update().values(version=3))
        assert "rotation_lease" not in inspect(repository.engine).get_table_names()
        assert read_status(store_url, T0).lease is None  # status still reads such a store
        assert "Rotating: none yet" in render(read_status(store_url, T0))
        repository.create_schema()
        with repository.engine.connect() as conn:
            assert conn.execute(select(schema_version.c.version)).scalar() == SCHEMA_VERSION == 5
            assert conn.execute(select(rotation_lease)).all() == [(1, "", 0)]
        repository.create_schema()  # again: one row still
        with repository.engine.connect() as conn:
            assert conn.execute(select(rotation_lease)).all() == [(1, "", 0)]
    finally:
        repository.dispose()


def test_status_lists_what_is_due_and_what_was_rotated(engine, scheduler, store_url, clock) -> None:
    old = rotating_key(engine, name="payroll")
    ledger = rotating_key(engine, name="ledger", interval=3 * HOUR)
    clock.now = T0 + HOUR + 10
    (rotated,) = scheduler.check()
    (new,) = rotated.new_uids
    status = read_status(store_url, T0 + 2 * HOUR + 20)
    assert [(e.uid, e.name, e.algorithm, e.object_type, e.due_since) for e in status.due] == [
        (new, "payroll", "AES", "Symmetric Key", T0 + 2 * HOUR + 10)
    ]
    assert [(r.old_uid, r.new_uid, r.rotated) for r in status.recent] == [(old, new, T0 + HOUR + 10)]
    assert status.lease == ("node-a", T0 + HOUR + 10 + 3 * SETTINGS.check_seconds)
    assert [e.uid for e in read_status(store_url, T0 + 3 * HOUR).due] == [new, ledger]  # longest due first
    assert [e.uid for e in read_status(store_url, T0 + 3 * HOUR, due_limit=1).due] == [new]
    shown = render(status)
    when = datetime.fromtimestamp(T0 + 2 * HOUR + 20, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert shown.startswith(f"Due for rotation at {when}: 1\n")
    assert f"{old}  ->  {new}" in shown and "payroll" in shown
    assert "Rotating: no server process holds the rotation lease now" in shown  # it expired


# ---- a real server


def _create_over_tls(server: Any, extra: list[Attribute], name: str = "served") -> str:
    response = exchange(server, request_bytes(V21, create_aes(V21, name=name, extra=extra)))
    return ok(response.batch_items[0]).unique_identifier


def _attributes_over_tls(server: Any, uid: str) -> dict[str, list[Any]]:
    response = exchange(server, request_bytes(V21, item(Operation.GET_ATTRIBUTES, unique_identifier=uid)))
    found: dict[str, list[Any]] = {}
    for attr in ok(response.batch_items[0]).attributes.attributes:
        found.setdefault(attr.name, []).append(attr.value)
    return found


def _configure(data_dir: Path, url: str | None = None) -> None:
    """Check every second; and use the store at ``url`` when given."""
    config = data_dir / "strongroom.toml"
    content = config.read_text().replace("\ncheck_seconds = 60\n", "\ncheck_seconds = 1\n")
    if url is not None:
        start = content.index("\nurl = ")
        end = content.index("\n", start + 1)
        content = content[:start] + f'\nurl = "{url}"' + content[end:]
    config.write_text(content)


def _successors(server: Any, uid: str) -> list[str]:
    return [
        link.linked_object_identifier
        for link in _attributes_over_tls(server, uid).get("Link", [])
        if link.link_type == LinkType.REPLACEMENT_OBJECT_LINK
    ]


def _wait_until_rotated(server: Any, uids: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not all(_successors(server, uid) for uid in uids):
        if time.monotonic() > deadline:
            raise AssertionError(f"{uids} were not all rotated within {timeout} s\n{server.stderr_text()}")
        time.sleep(0.2)


def test_a_server_with_two_workers_rotates_a_due_key_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    strongroom_init(data_dir)
    _configure(data_dir)
    interval = 4
    with running_server(data_dir, free_port(), workers=2) as server:
        started = int(time.time())
        old = _create_over_tls(server, schedule(interval=interval, activated=started - 10))
        _wait_until_rotated(server, [old])
        time.sleep(2.5)  # two more checks: nobody rotates it again
        (new,) = _successors(server, old)
        got_new = _attributes_over_tls(server, new)
        assert [n.value for n in got_new["Name"]] == ["served"]
        assert got_new["Rotate Generation"] == [1] and replaced(old) in got_new["Link"]
        assert _attributes_over_tls(server, old)["Rotate Date"][0].timestamp() >= started + interval
        status = run_cli(["rotation", "status", "--data-dir", str(data_dir)]).stdout
        assert f"{old}  ->  {new}" in status
        assert "its lease runs until" in status
    log = server.stderr_text(limit=10**7)
    assert _rotations_recorded(data_dir, old) == 1, log
    assert run_cli(["audit", "verify", "--data-dir", str(data_dir)]).returncode == 0
    assert "(2 workers)" in log and "Traceback" not in log
    # SIGTERM stopped the schedulers, and the holder gave the lease up.
    status = run_cli(["rotation", "status", "--data-dir", str(data_dir)]).stdout
    assert "Rotating: no server process holds the rotation lease now" in status


def _rotations_recorded(data_dir: Path, uid: str) -> int:
    """How many successful automatic rotations of ``uid`` the audit trail records."""
    found = run_cli(["audit", "search", "--data-dir", str(data_dir), "--object", uid, "--json"]).stdout
    records = [json.loads(line) for line in found.splitlines()]
    return sum(
        1
        for r in records
        if r["detail"] == "automatic rotation" and r["object_ids"][0] == uid and r["result"] == "Success"
    )


def test_two_servers_on_one_postgresql_database_rotate_each_due_key_once(tmp_path: Path) -> None:
    # Two nodes (a data directory and its copy: the same token, so the same master key), two
    # workers each, one PostgreSQL database: four schedulers, one rotation per key.
    first, second = tmp_path / "node-1", tmp_path / "node-2"
    strongroom_init(first)
    with postgres_schema_url() as url:
        _configure(first, url)
        shutil.copytree(first, second)
        with (
            running_server(first, free_port(), workers=2) as one_node,
            running_server(second, free_port(), workers=2) as other_node,
        ):
            started = int(time.time())
            nodes = (one_node, other_node, one_node)
            uids = [
                _create_over_tls(node, schedule(interval=3, activated=started), f"k{i}") for i, node in enumerate(nodes)
            ]
            _wait_until_rotated(one_node, uids)
            time.sleep(2.5)
            successors = {uid: _successors(other_node, uid) for uid in uids}
            assert all(len(found) == 1 for found in successors.values()), successors
            for uid, (new,) in successors.items():
                # Each node uses what the other made: the same master key, the same store.
                assert replaced(uid) in _attributes_over_tls(other_node, new)["Link"]
                assert _attributes_over_tls(one_node, new)["Rotate Generation"] == [1]
        logs = one_node.stderr_text(limit=10**7) + other_node.stderr_text(limit=10**7)
        for uid in uids:
            assert _rotations_recorded(first, uid) == 1, logs
        # Four schedulers and two nodes' requests appended to one chain.
        assert run_cli(["audit", "verify", "--data-dir", str(second)]).returncode == 0
        assert "Traceback" not in logs
