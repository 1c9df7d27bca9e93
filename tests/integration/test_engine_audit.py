"""The engine's audit records: one per batch item, in the transaction of the change, as things
finally ran (rolled back, undone, a group run again); refusals of whole messages; an audit
that cannot be written refuses the operation."""

from __future__ import annotations

import dataclasses

from kmip_client.protocol.model.messages import Authentication, Credential, CredentialValue
from kmip_client.protocol.spec.enums import (
    BatchErrorContinuationOption,
    CredentialType,
    Operation,
    ResultReason,
    ResultStatus,
)
from kmip_server.audit import AuditRecord, tail, verify
from kmip_server.custody import CustodyError
from kmip_server.engine.dispatcher import Dispatcher
from kmip_server.engine.identity import ClientIdentity
from kmip_server.policy import DEFAULT_POLICY, parse_policy
from kmip_server.policy.credentials import CredentialStore

from .engine_support import ALICE, DelegatingCustody, attributes_of, create, failure, one, run
from .kmip_messages import V14, V21, create_aes, item, ok, request_bytes, response

UNDO = BatchErrorContinuationOption.UNDO


def records(engine: Dispatcher, count: int = 100) -> list[AuditRecord]:
    with engine.repository.read() as s:
        return tail(s.connection, count)


def brief(record: AuditRecord) -> tuple[str, str, str | None]:
    return (record.operation, record.result, record.reason)


def test_each_item_is_recorded_with_its_identity_objects_and_changed_attributes(engine) -> None:
    alice = dataclasses.replace(ALICE, address="10.0.0.7:40000", certificate=b"not really DER")
    uid = create(engine, identity=alice, name="payroll")
    ok(one(engine, V14, item(Operation.ACTIVATE, unique_identifier=uid), alice))
    ok(one(engine, V14, item(Operation.GET, unique_identifier=uid), alice))
    created, activated, got = records(engine)
    assert (created.operation, created.identity, created.object_ids, created.result) == (
        "Create",
        "alice",
        (uid,),
        "Success",
    )
    assert "Name" in created.attributes and "Cryptographic Algorithm" in created.attributes
    assert (created.address, created.fingerprint) == ("10.0.0.7:40000", alice.fingerprint)
    assert activated.attributes and "State" in activated.attributes
    assert (got.operation, got.object_ids, got.attributes) == ("Get", (uid,), ())
    assert created.seq < activated.seq < got.seq
    with engine.repository.read() as s:
        assert verify(s.connection, engine.custody).ok


def test_a_refused_or_undone_item_is_never_recorded_as_success(engine) -> None:
    failure(one(engine, V14, item(Operation.ACTIVATE, unique_identifier="missing")), ResultReason.ITEM_NOT_FOUND)
    result = run(
        engine,
        V14,
        create_aes(V14),
        item(Operation.GET, unique_identifier="missing"),
        batch_error_continuation_option=UNDO,
    )
    undone_uid = result.batch_items[0].payload.unique_identifier
    refused, undone, failed = records(engine)
    assert brief(refused) == ("Activate", "Operation Failed", "Item Not Found")
    assert brief(undone) == ("Create", "Operation Undone", None)
    assert undone.object_ids == (undone_uid,) and undone.attributes == ()  # nothing it wrote stands
    assert brief(failed) == ("Get", "Operation Failed", "Item Not Found")


def test_a_group_that_runs_again_is_recorded_once_as_it_finally_ran(engine) -> None:
    requests = [
        (request_bytes(V14, create_aes(V14, name="g1")), ALICE),
        (
            request_bytes(
                V14,
                create_aes(V14, name="g2"),
                item(Operation.GET, unique_identifier="x"),
                batch_error_continuation_option=UNDO,
            ),
            ALICE,
        ),
        (request_bytes(V21, create_aes(V21, name="g3")), ALICE),
        (b"garbage", ALICE),
    ]
    answers = [response(data) for data in engine.handle_many(requests)]
    assert answers[0].batch_items[0].result_status == ResultStatus.SUCCESS
    found = [brief(r) for r in records(engine)]
    assert sorted(found) == sorted(
        [
            ("Create", "Success", None),
            ("Create", "Operation Undone", None),
            ("Get", "Operation Failed", "Item Not Found"),
            ("Create", "Success", None),
            ("(message)", "Operation Failed", "Invalid Message"),
        ]
    )
    with engine.repository.read() as s:
        assert verify(s.connection, engine.custody).checked == 5


def test_a_message_refused_whole_is_recorded(engine) -> None:
    engine.handle(b"\x42\x00\x78\x01\x00\x00\x00\xff", ALICE)
    too_new = request_bytes((3, 0), item(Operation.DISCOVER_VERSIONS))
    answer = response(engine.handle(too_new, ALICE))
    assert answer.batch_items[0].result_reason == ResultReason.INVALID_MESSAGE or answer.batch_items[0].result_status
    first, second = records(engine)
    assert (first.operation, first.result, first.reason) == ("(message)", "Operation Failed", "Invalid Message")
    assert second.operation == "(message)" and second.identity == "alice"


def test_when_the_audit_record_cannot_be_written_the_operation_fails_and_nothing_changes(engine) -> None:
    class NoSeal(DelegatingCustody):
        def audit_mac(self, data: bytes) -> bytes:
            raise CustodyError("token removed")

    broken = Dispatcher(engine.repository, NoSeal(engine.custody), DEFAULT_POLICY, clock=engine.clock)
    result = one(broken, V14, create_aes(V14, name="lost"))
    failure(result, ResultReason.GENERAL_FAILURE)
    assert records(engine) == []
    with engine.repository.read() as s:
        assert s.connection.exec_driver_sql("SELECT COUNT(*) FROM managed_objects").scalar() == 0
    # Reads too: an answer that cannot be recorded is not given.
    uid = create(engine)
    failure(one(broken, V14, item(Operation.GET, unique_identifier=uid)), ResultReason.GENERAL_FAILURE)


def test_the_first_get_of_a_fresh_object_is_served_once_and_clears_fresh(engine, monkeypatch) -> None:
    uid = create(engine)
    calls = []
    from kmip_server.engine import registry

    spec = registry.HANDLERS[Operation.GET]
    counted = dataclasses.replace(spec, handler=lambda ctx, payload: calls.append(1) or spec.handler(ctx, payload))
    monkeypatch.setitem(registry.HANDLERS, Operation.GET, counted)
    assert attributes_of(engine, uid, V21, names=["Fresh"]) == {"Fresh": True}
    ok(one(engine, V21, item(Operation.GET, unique_identifier=uid)))
    assert calls == [1]  # not run again as a writer
    assert attributes_of(engine, uid, V21, names=["Fresh"]) == {"Fresh": False}


def test_credentials_are_checked_and_a_failed_login_is_recorded(engine, tmp_path) -> None:
    store = CredentialStore(tmp_path / "credentials.json")
    store.set("vcenter", "correct horse")
    policy = parse_policy({"settings": {"require_credential": True}}, "test")
    strict = Dispatcher(engine.repository, engine.custody, policy, clock=engine.clock, credentials=store)

    def with_credential(password: str | None) -> bytes:
        header = {}
        if password is not None:
            value = CredentialValue(username="vcenter", password=password)
            header["authentication"] = Authentication(
                credentials=(Credential(credential_type=CredentialType.USERNAME_AND_PASSWORD, credential_value=value),)
            )
        return request_bytes(V14, item(Operation.DISCOVER_VERSIONS), **header)

    for password in (None, "wrong"):
        answer = response(strict.handle(with_credential(password), ClientIdentity("vcenter")))
        assert answer.batch_items[0].result_reason == ResultReason.AUTHENTICATION_NOT_SUCCESSFUL
    assert (
        response(strict.handle(with_credential("correct horse"), ClientIdentity("vcenter")))
        .batch_items[0]
        .result_status
        == ResultStatus.SUCCESS
    )
    found = [brief(r) for r in records(engine)]
    assert found == [
        ("(message)", "Operation Failed", "Authentication Not Successful"),
        ("(message)", "Operation Failed", "Authentication Not Successful"),
        ("Discover Versions", "Success", None),
    ]
    assert all("correct horse" not in (r.detail or "") and "wrong" not in (r.detail or "") for r in records(engine))


def test_records_of_reads_do_not_wait_for_the_disk_unless_asked_and_changes_always_do(engine, monkeypatch) -> None:
    """A Get's records commit relaxed (Repository.write durable=False); a Create, the first Get
    of a Fresh object (it clears Fresh) and, with sync_read_records, every read wait."""
    uid = create(engine)
    asked: list[bool] = []
    write = engine.repository.write

    def spy(*, durable: bool = True):
        asked.append(durable)
        return write(durable=durable)

    monkeypatch.setattr(engine.repository, "write", spy)
    ok(one(engine, V21, item(Operation.GET, unique_identifier=uid)))  # Fresh cleared: a change
    ok(one(engine, V21, item(Operation.GET, unique_identifier=uid)))
    ok(one(engine, V21, item(Operation.GET_ATTRIBUTES, unique_identifier=uid)))
    create(engine)
    assert asked == [True, False, False, True]
    engine.sync_read_records = True
    ok(one(engine, V21, item(Operation.GET, unique_identifier=uid)))
    assert asked[-1] is True
    assert [r.operation for r in records(engine)][-5:] == ["Get", "Get", "Get Attributes", "Create", "Get"]
    with engine.repository.read() as s:
        assert verify(s.connection, engine.custody).ok
