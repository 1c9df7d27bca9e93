"""The audit trail on a real token and real stores: appends, verify, and every kind of tampering
(in the database and in an export) caught at the right record."""

from __future__ import annotations

import io
import json
import threading

import pytest
from sqlalchemy import delete, select, text, update

from kmip_server.audit import (
    AuditEvent,
    AuditTrail,
    AuditWriteError,
    search,
    syslog_line,
    tail,
    verify,
    verify_export,
    write_jsonl,
)
from kmip_server.audit.records import audit_head, audit_records, chained_hash, row_to_record
from kmip_server.custody import CustodyError
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
def repo(store_url: str):
    import kmip_server.audit  # noqa: F401  (declares the tables)

    repository = Repository(store_url)
    repository.create_schema()
    yield repository
    repository.dispose()


def fill(repo: Repository, trail: AuditTrail, batches=((1, 2), (3, 4, 5), (6,), (7, 8))) -> None:
    for batch in batches:
        with repo.write() as s:
            trail.append(s.connection, [event(n) for n in batch])


def check(repo: Repository, custody):
    with repo.read() as s:
        return verify(s.connection, custody)


def test_an_intact_trail_verifies_and_each_append_is_sealed_once(repo, custody) -> None:
    fill(repo, AuditTrail(custody, "node-1"))
    report = check(repo, custody)
    assert (report.ok, report.checked, report.first_bad) == (True, 8, None)
    with repo.read() as s:
        macs = [seq for seq, mac in s.connection.execute(select(audit_records.c.seq, audit_records.c.mac)) if mac]
        assert macs == [2, 5, 6, 8]  # the last record of each append
        assert [r.seq for r in tail(s.connection, 3)] == [6, 7, 8]


def _edit(repo: Repository, seq: int, **values) -> None:
    with repo.write() as s:
        s.connection.execute(update(audit_records).where(audit_records.c.seq == seq).values(**values))


def test_an_edited_record_is_named(repo, custody) -> None:
    fill(repo, AuditTrail(custody, "node-1"))
    _edit(repo, 3, identity="mallory")
    report = check(repo, custody)
    assert not report.ok and report.first_bad == 3 and "edited" in report.message


def test_a_deleted_record_is_named(repo, custody) -> None:
    fill(repo, AuditTrail(custody, "node-1"))
    with repo.write() as s:
        s.connection.execute(delete(audit_records).where(audit_records.c.seq == 4))
    report = check(repo, custody)
    assert not report.ok and report.first_bad == 5 and "seq 5 where 4" in report.message


def test_reordered_records_are_caught(repo, custody) -> None:
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


def test_an_inserted_record_with_a_recomputed_chain_fails_at_the_mac(repo, custody) -> None:
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
    # Every hash now links, so the first record the token sealed is what fails.
    assert not report.ok and report.first_bad == 6 and "MAC" in report.message


def test_a_truncated_tail_is_caught_even_with_the_head_rewritten(repo, custody) -> None:
    fill(repo, AuditTrail(custody, "node-1"))
    with repo.write() as s:
        s.connection.execute(delete(audit_records).where(audit_records.c.seq > 6))
    report = check(repo, custody)
    assert not report.ok and "ends at seq 6" in report.message and report.first_bad == 7
    with repo.write() as s:  # point the head at the new end, without the token
        last = s.connection.execute(select(audit_records.c.hash).where(audit_records.c.seq == 6)).scalar_one()
        s.connection.execute(update(audit_head).values(seq=6, hash=last))
    report = check(repo, custody)
    assert not report.ok and report.first_bad == 6 and "sealed end's MAC" in report.message


def _export(repo: Repository, custody) -> list[str]:
    out = io.StringIO()
    with repo.read() as s:
        assert write_jsonl(s.connection, custody, out) == 8
    return out.getvalue().splitlines()


def test_an_export_verifies_and_each_kind_of_tampering_is_caught(repo, custody) -> None:
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
    truncated = lines[:5]  # records 1-5, seal gone
    truncated_resealed = [*lines[:5], lines[-1]]  # the old seal no longer matches the end
    inserted = [*lines[:2], lines[2], *lines[2:]]
    for tampered, line in (
        (edited, 3),
        (deleted, 4),
        (reordered, 2),
        (inserted, 4),
        (truncated, None),
        (truncated_resealed, 6),
    ):
        report = verify_export(tampered, custody)
        assert not report.ok and report.first_bad == line, (line, report)


def test_a_token_that_cannot_seal_refuses_the_append_and_nothing_is_written(repo, custody) -> None:
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


def test_search_filters_by_identity_object_operation_and_time(repo, custody) -> None:
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
    from kmip_server.audit.records import AuditRecord

    record = AuditRecord(
        seq=7, time_us=1_700_000_000_250_000, node="n1", identity='ev"il]\\', address=None, fingerprint=None,
        operation="Destroy", object_ids=("a", "b"), attributes=(), result="Operation Failed",
        reason="Permission Denied", detail="refused", prev_hash=bytes(32), hash=b"\x01" * 32, mac=None,
    )  # fmt: skip
    line = syslog_line(record, "host-1")
    assert line.startswith('<37>1 2023-11-14T22:13:20.250000Z host-1 strongroom - AUDIT [strongroom@32473 seq="7"')
    assert 'identity="ev\\"il\\]\\\\"' in line and 'objects="a,b"' in line and line.endswith("] refused")


def test_two_nodes_appending_at_once_make_one_chain(store_url: str, custody) -> None:
    import kmip_server.audit  # noqa: F401

    nodes = [Repository(store_url), Repository(store_url)]
    nodes[0].create_schema()
    errors: list[BaseException] = []

    def run(repository: Repository, name: str) -> None:
        trail = AuditTrail(custody, name)
        try:
            for n in range(25):
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
        assert report.ok and report.checked == count == 100
    finally:
        for r in nodes:
            r.dispose()
