"""The audit trail on a real token and real stores: appends, verify, and every kind of tampering
(in the database and in an export) caught at the right record."""

from __future__ import annotations

import dataclasses
import hmac
import io
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete, select, text, update

from kmip_server.audit import (
    AuditEvent,
    AuditRecord,
    AuditTrail,
    AuditWriteError,
    TrailBroken,
    VerifyReport,
    search,
    syslog_line,
    tail,
    verify,
    verify_export,
    write_jsonl,
)
from kmip_server.audit.records import MAX_DETAIL, audit_head, audit_records, chained_hash, row_to_record
from kmip_server.custody import CustodyError, KeyCustody, Pkcs11Custody
from kmip_server.storage.repository import Repository

from .engine_support import DelegatingCustody


def event(n: int, identity: str = "alice", operation: str = "Get") -> AuditEvent:
    return AuditEvent(
        time=1_700_000_000 + n / 8,
        node="node-1",
        identity=identity,
        address="127.0.0.1:5000",
        fingerprint="ab" * 32,
        operation=operation,
        object_ids=(f"uid-{n}",),
        attributes=("State",) if operation == "Activate" else (),
        result="Success",
        reason=None,
        detail=None,
    )


@pytest.fixture
def repo(store_url: str) -> Iterator[Repository]:
    import kmip_server.audit  # noqa: F401  (declares the tables)

    repository = Repository(store_url)
    repository.create_schema()
    yield repository
    repository.dispose()


def fill(
    repo: Repository, trail: AuditTrail, batches: tuple[tuple[int, ...], ...] = ((1, 2), (3, 4, 5), (6,), (7, 8))
) -> None:
    for batch in batches:
        with repo.write() as s:
            trail.append(s.connection, [event(n) for n in batch])


def check(repo: Repository, custody: KeyCustody) -> VerifyReport:
    with repo.read() as s:
        return verify(s.connection, custody)


def test_an_intact_trail_verifies_and_each_append_is_sealed_once(repo: Repository, custody: Pkcs11Custody) -> None:
    fill(repo, AuditTrail(custody, "node-1"))
    report = check(repo, custody)
    assert (report.ok, report.checked, report.first_bad) == (True, 8, None)
    with repo.read() as s:
        macs = [seq for seq, mac in s.connection.execute(select(audit_records.c.seq, audit_records.c.mac)) if mac]
        assert macs == [2, 5, 6, 8]  # the last record of each append
        assert [r.seq for r in tail(s.connection, 3)] == [6, 7, 8]


def _edit(repo: Repository, seq: int, **values: object) -> None:
    with repo.write() as s:
        s.connection.execute(update(audit_records).where(audit_records.c.seq == seq).values(**values))


def test_an_edited_record_is_named(repo: Repository, custody: Pkcs11Custody) -> None:
    fill(repo, AuditTrail(custody, "node-1"))
    _edit(repo, 3, identity="mallory")
    report = check(repo, custody)
    assert not report.ok and report.first_bad == 3 and "edited" in report.message


def test_a_deleted_record_is_named(repo: Repository, custody: Pkcs11Custody) -> None:
    fill(repo, AuditTrail(custody, "node-1"))
    with repo.write() as s:
        s.connection.execute(delete(audit_records).where(audit_records.c.seq == 4))
    report = check(repo, custody)
    assert not report.ok and report.first_bad == 5 and "seq 5 where 4" in report.message


def test_reordered_records_are_caught(repo: Repository, custody: Pkcs11Custody) -> None:
    fill(repo, AuditTrail(custody, "node-1"))
    with repo.write() as s:
        conn = s.connection
        conn.execute(update(audit_records).where(audit_records.c.seq == 2).values(seq=-2))
        conn.execute(update(audit_records).where(audit_records.c.seq == 3).values(seq=2))
        conn.execute(update(audit_records).where(audit_records.c.seq == -2).values(seq=3))
    report = check(repo, custody)
    assert not report.ok and report.first_bad == 2


def _rechain_from(repo: Repository, seq: int) -> None:
    """What an attacker with database access but no token can do: recompute every hash."""
    with repo.write() as s:
        conn = s.connection
        rows = [row_to_record(r) for r in conn.execute(select(audit_records).order_by(audit_records.c.seq))]
        prev = rows[seq - 2].hash if seq > 1 else bytes(32)
        for record in rows[seq - 1 :]:
            fixed = chained_hash(prev, record)
            conn.execute(
                update(audit_records).where(audit_records.c.seq == record.seq).values(prev_hash=prev, hash=fixed)
            )
            prev = fixed
        conn.execute(update(audit_head).values(hash=prev, seq=rows[-1].seq))


def test_an_inserted_record_with_a_recomputed_chain_fails_at_the_mac(repo: Repository, custody: Pkcs11Custody) -> None:
    fill(repo, AuditTrail(custody, "node-1"))
    with repo.write() as s:
        conn = s.connection
        for seq in range(8, 2, -1):  # make room after record 2
            conn.execute(update(audit_records).where(audit_records.c.seq == seq).values(seq=seq + 1))
        forged = row_to_record(conn.execute(select(audit_records).where(audit_records.c.seq == 4)).one())
        values = {c.name: getattr(forged, c.name, None) for c in audit_records.columns}
        values.update(seq=3, identity="mallory", object_ids='["uid-x"]', attributes="[]", mac=None)
        conn.execute(audit_records.insert().values(**values))
    _rechain_from(repo, 3)
    report = check(repo, custody)
    # Every hash now links, so what fails is the next MAC the token made (on record 6, the
    # old 5); what it names is the first record after the last good MAC (2): the forgery.
    assert not report.ok and report.first_bad == 3, report
    assert "record 6: its MAC is not the token's" in report.message and "from record 3 on" in report.message


def test_a_forgery_sealed_under_a_key_of_the_forgers_own_fails_at_its_first_mac(
    repo: Repository, custody: Pkcs11Custody
) -> None:
    """Sealing keys are derived by the token; a forger who writes well-formed MACs (an epoch
    and an HMAC) under a key of their own, recomputing every hash, is caught at the first."""

    class ForgersKey(DelegatingCustody):
        def audit_mac(self, data: bytes) -> bytes:
            return hmac.digest(b"mallory's key", data, "sha256")

    fill(repo, AuditTrail(custody, "node-1"), batches=((1, 2), (3,)))
    with repo.write() as s:  # the forger's own records, appended with their own "token"
        AuditTrail(ForgersKey(custody), "node-1").append(s.connection, [event(4, "mallory"), event(5, "mallory")])
    with repo.read() as s:
        mac = s.connection.execute(select(audit_records.c.mac).where(audit_records.c.seq == 5)).scalar_one()
    assert len(mac) == 48  # well formed: epoch and tag
    report = check(repo, custody)
    assert not report.ok and report.first_bad == 4 and "record 5: its MAC is not the token's" in report.message


def test_the_token_is_asked_once_per_epoch_not_once_per_append(repo: Repository, custody: Pkcs11Custody) -> None:
    """Appends seal in memory (a token call per append queued every answer behind slow token
    work, such as an RSA generation); the verifier derives each epoch's key once."""

    class Counting(DelegatingCustody):
        calls = 0

        def audit_mac(self, data: bytes) -> bytes:
            Counting.calls += 1
            return super().audit_mac(data)

    fill(repo, AuditTrail(Counting(custody), "node-1"))  # four appends, one epoch
    assert Counting.calls == 1
    fill(repo, AuditTrail(Counting(custody), "node-2"), batches=((9,), (10,)))  # a second process: a new epoch
    assert Counting.calls == 2
    with repo.read() as s:
        report = verify(s.connection, Counting(custody))
    assert report.ok and report.checked == 10 and Counting.calls == 4


def test_an_edit_rehashed_with_every_mac_dropped_fails_at_the_head(repo: Repository, custody: Pkcs11Custody) -> None:
    fill(repo, AuditTrail(custody, "node-1"))
    _edit(repo, 4, result="Operation Failed")
    with repo.write() as s:
        s.connection.execute(update(audit_records).where(audit_records.c.seq >= 3).values(mac=None))
    _rechain_from(repo, 4)
    report = check(repo, custody)
    # Record 2 is the last the token sealed; the head's MAC no longer matches the end.
    assert not report.ok and report.first_bad == 3 and "head row's MAC" in report.message, report


def test_a_truncated_tail_is_caught_even_with_the_head_rewritten(repo: Repository, custody: Pkcs11Custody) -> None:
    fill(repo, AuditTrail(custody, "node-1"))
    with repo.write() as s:
        s.connection.execute(delete(audit_records).where(audit_records.c.seq > 6))
    report = check(repo, custody)
    assert not report.ok and "ends at seq 6" in report.message and report.first_bad == 7
    with repo.write() as s:  # point the head at the new end, without the token
        last = s.connection.execute(select(audit_records.c.hash).where(audit_records.c.seq == 6)).scalar_one()
        s.connection.execute(update(audit_head).values(seq=6, hash=last))
    report = check(repo, custody)
    assert not report.ok and report.first_bad == 7 and "head row's MAC" in report.message, report


def test_a_tail_cut_back_to_an_append_cannot_borrow_that_appends_mac_for_the_head(
    repo: Repository, custody: Pkcs11Custody
) -> None:
    """Record 6 ends an append and carries the token's MAC over (6, hash 6): the same end the
    head would seal. The head's MAC has a domain of its own, so copying it there fails."""
    fill(repo, AuditTrail(custody, "node-1"))
    with repo.write() as s:
        conn = s.connection
        last = conn.execute(select(audit_records).where(audit_records.c.seq == 6)).one()
        assert last.mac is not None
        conn.execute(delete(audit_records).where(audit_records.c.seq > 6))
        conn.execute(update(audit_head).values(seq=6, hash=last.hash, mac=last.mac))
    report = check(repo, custody)
    assert not report.ok and report.first_bad == 7 and "head row's MAC" in report.message, report


def test_a_record_added_past_the_head_is_caught(repo: Repository, custody: Pkcs11Custody) -> None:
    fill(repo, AuditTrail(custody, "node-1"))
    with repo.read() as s:
        last = row_to_record(s.connection.execute(select(audit_records).where(audit_records.c.seq == 8)).one())
    # A copy of record 8 as record 9, with its hashes fixed up (no token needed for those).
    values = {
        c.name: getattr(last, c.name) for c in audit_records.columns if c.name not in ("object_ids", "attributes")
    }
    values.update(seq=9, prev_hash=last.hash, object_ids='["uid-x"]', attributes="[]", mac=None)
    with repo.write() as s:
        s.connection.execute(audit_records.insert().values(**values))
    _rechain_from(repo, 9)
    with repo.write() as s:  # _rechain_from moved the head too: put it back where the token left it
        s.connection.execute(update(audit_head).values(seq=8, hash=last.hash))
    report = check(repo, custody)
    assert not report.ok and report.first_bad == 9 and "past the sealed end" in report.message, report


def _export(repo: Repository, custody: KeyCustody) -> list[str]:
    out = io.StringIO()
    with repo.read() as s:
        assert write_jsonl(s.connection, custody, out) == 8
    return out.getvalue().splitlines()


def test_an_export_verifies_and_each_kind_of_tampering_is_caught(repo: Repository, custody: Pkcs11Custody) -> None:
    fill(repo, AuditTrail(custody, "node-1"))
    lines = _export(repo, custody)
    assert json.loads(lines[-1])["seal"]["seq"] == 8
    assert verify_export(lines, custody).ok

    edited = list(lines)
    record = json.loads(edited[2])
    record["result"] = "Operation Failed"
    edited[2] = json.dumps(record)
    deleted = lines[:3] + lines[4:]
    reordered = [lines[0], lines[2], lines[1], *lines[3:]]
    truncated = lines[:5]  # records 1-5, seal gone: missing from line 6
    truncated_resealed = [*lines[:5], lines[-1]]  # the old seal no longer matches the end
    inserted = [*lines[:2], lines[2], *lines[2:]]
    for tampered, line in (
        (edited, 3),
        (deleted, 4),
        (reordered, 2),
        (inserted, 4),
        (truncated, 6),
        (truncated_resealed, 6),
    ):
        report = verify_export(tampered, custody)
        assert not report.ok and report.first_bad == line, (line, report)


def _rehash_lines(records: list[dict[str, Any]]) -> list[str]:
    """Renumber and rechain exported records as someone holding the file but not the token can."""
    prev = bytes(32)
    lines = []
    for seq, data in enumerate(records, 1):
        record = AuditRecord.from_json({**data, "seq": seq, "prev_hash": prev.hex()})
        prev = chained_hash(prev, record)
        lines.append(json.dumps({**data, "seq": seq, "prev_hash": record.prev_hash.hex(), "hash": prev.hex()}))
    return lines


def test_an_export_rehashed_around_a_forged_record_fails_at_the_mac(repo: Repository, custody: Pkcs11Custody) -> None:
    fill(repo, AuditTrail(custody, "node-1"))
    lines = _export(repo, custody)
    records = [json.loads(line) for line in lines[:-1]]
    forged = {**records[2], "identity": "mallory", "object_ids": ["uid-x"], "mac": None}
    rehashed = _rehash_lines([*records[:2], forged, *records[2:]])
    last = json.loads(rehashed[-1])
    seal = {"seal": {"seq": last["seq"], "hash": last["hash"], "mac": json.loads(lines[-1])["seal"]["mac"]}}
    report = verify_export([*rehashed, json.dumps(seal)], custody)
    assert not report.ok and report.first_bad == 3 and "line 6 (record 6): its MAC is not the token's" in report.message


def test_an_export_cut_back_to_an_append_cannot_borrow_its_mac_for_the_seal(
    repo: Repository, custody: Pkcs11Custody
) -> None:
    fill(repo, AuditTrail(custody, "node-1"))
    lines = _export(repo, custody)
    sixth = json.loads(lines[5])
    assert sixth["seq"] == 6 and sixth["mac"]
    borrowed = {"seal": {"seq": 6, "hash": sixth["hash"], "mac": sixth["mac"]}}
    report = verify_export([*lines[:6], json.dumps(borrowed)], custody)
    assert not report.ok and report.first_bad == 7 and "seal line's MAC" in report.message, report


def test_a_tampered_trail_is_not_exported_under_a_new_seal(repo: Repository, custody: Pkcs11Custody) -> None:
    """Otherwise the next export would launder a database rewritten without the token."""
    fill(repo, AuditTrail(custody, "node-1"))
    _edit(repo, 4, identity="mallory")
    with repo.write() as s:
        s.connection.execute(update(audit_records).values(mac=None))
    _rechain_from(repo, 4)
    with repo.read() as s, pytest.raises(TrailBroken) as caught:
        write_jsonl(s.connection, custody, io.StringIO())
    assert caught.value.report.first_bad == 1 and "head row's MAC" in caught.value.report.message


def test_records_hold_names_and_a_capped_detail(repo: Repository, custody: Pkcs11Custody) -> None:
    long = dataclasses.replace(event(1, operation="Activate"), detail="x" * 5000)
    with repo.write() as s:
        AuditTrail(custody, "node-1").append(s.connection, [long])
    with repo.read() as s:
        (record,) = tail(s.connection, 5)
    assert record.detail is not None and len(record.detail) == MAX_DETAIL and record.detail.endswith("…")
    assert record.attributes == ("State",) and record.object_ids == ("uid-1",)
    assert check(repo, custody).ok  # the hash covers the detail as stored


def test_a_token_that_cannot_seal_refuses_the_append_and_nothing_is_written(
    repo: Repository, custody: Pkcs11Custody
) -> None:
    class Broken(DelegatingCustody):
        def audit_mac(self, data: bytes) -> bytes:
            raise CustodyError("token gone")

    fill(repo, AuditTrail(custody, "node-1"), batches=((1,),))
    with pytest.raises(AuditWriteError, match="token gone"):
        with repo.write() as s:
            AuditTrail(Broken(custody), "node-1").append(s.connection, [event(2)])
    with repo.read() as s:
        assert [r.seq for r in tail(s.connection, 10)] == [1]
    assert check(repo, custody).ok


def test_search_filters_by_identity_object_operation_and_time(repo: Repository, custody: Pkcs11Custody) -> None:
    trail = AuditTrail(custody, "node-1")
    with repo.write() as s:
        trail.append(s.connection, [event(1, "alice", "Create"), event(2, "bob", "Get"), event(3, "alice", "Activate")])
    with repo.read() as s:
        conn = s.connection
        assert [r.seq for r in search(conn, identity="alice")] == [3, 1]
        assert [r.seq for r in search(conn, object_id="uid-2")] == [2]
        assert [r.seq for r in search(conn, operation="activate")] == [3]
        assert [r.seq for r in search(conn, since=1_700_000_000 + 2 / 8, newest_first=False)] == [2, 3]
        assert search(conn, operation="Activate")[0].attributes == ("State",)


def test_syslog_lines_follow_rfc_5424_and_escape_structured_data() -> None:
    record = AuditRecord(
        seq=7, time_us=1_700_000_000_250_000, node="n1", identity='ev"il]\\', address=None, fingerprint=None,
        operation="Destroy", object_ids=("a", "b"), attributes=(), result="Operation Failed",
        reason="Permission Denied", detail="refused", prev_hash=bytes(32), hash=b"\x01" * 32, mac=None,
    )  # fmt: skip
    line = syslog_line(record, "host-1")
    assert line.startswith('<37>1 2023-11-14T22:13:20.250000Z host-1 strongroom - AUDIT [strongroom@32473 seq="7"')
    assert 'identity="ev\\"il\\]\\\\"' in line and 'objects="a,b"' in line and line.endswith("] refused")


def test_two_nodes_appending_at_once_make_one_chain(store_url: str, custody: Pkcs11Custody) -> None:
    import kmip_server.audit  # noqa: F401

    nodes = [Repository(store_url), Repository(store_url)]
    nodes[0].create_schema()
    errors: list[BaseException] = []

    def run(repository: Repository, name: str) -> None:
        trail = AuditTrail(custody, name)
        try:
            for n in range(50):
                with repository.write() as s:
                    trail.append(s.connection, [event(n, name), event(n + 100, name)])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(r, f"node-{i}")) for i, r in enumerate(nodes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    try:
        with nodes[0].read() as s:
            report = verify(s.connection, custody)
            count = s.connection.execute(text("SELECT COUNT(*) FROM audit_records")).scalar()
            records = tail(s.connection, 200)
        assert report.ok and report.checked == count == 200, report
        # Each append's two records are adjacent: appends never interleave inside the chain.
        assert all(a.identity == b.identity for a, b in zip(records[::2], records[1::2], strict=True))
        assert {r.identity for r in records} == {"node-0", "node-1"}
    finally:
        for r in nodes:
            r.dispose()
