"""Checking the trail: in the database (:func:`verify`) and in an export (:func:`verify_export`).

Both walk the records in order and stop at the first that is wrong, naming it: a seq out of
run (a deletion, insertion or reordering), a prev_hash that is not the previous hash, a hash
that does not match the record (an edit), a MAC the token does not reproduce (a forged
record, or hashes recomputed without the token), or an end that is not the sealed end (the
head row in the database, the seal line in an export: a truncation).
"""

from __future__ import annotations

import dataclasses
import hmac
import json
from collections.abc import Callable, Iterable, Iterator

from sqlalchemy import Connection, select

from ..custody import KeyCustody
from .records import GENESIS, AuditRecord, audit_head, audit_records, chained_hash, mac_input, row_to_record


@dataclasses.dataclass(frozen=True, slots=True)
class VerifyReport:
    ok: bool
    checked: int
    first_bad: int | None  # the seq (database) or line number (export) of the first bad record
    message: str


@dataclasses.dataclass(frozen=True, slots=True)
class _End:
    seq: int
    hash: bytes
    mac: bytes | None


class _Broken(Exception):
    def __init__(self, where: int | None, message: str) -> None:
        super().__init__(message)
        self.where = where
        self.message = message


def verify(conn: Connection, custody: KeyCustody, batch: int = 2000) -> VerifyReport:
    """Check the whole trail in the database (streamed: memory stays flat)."""
    head = conn.execute(
        select(audit_head.c.seq, audit_head.c.hash, audit_head.c.mac).where(audit_head.c.id == 1)
    ).first()
    end = None if head is None else _End(int(head.seq), bytes(head.hash), None if head.mac is None else bytes(head.mac))

    def records() -> Iterator[tuple[int, AuditRecord]]:
        after = 0
        while True:
            statement = (
                select(audit_records).where(audit_records.c.seq > after).order_by(audit_records.c.seq).limit(batch)
            )
            rows = conn.execute(statement).all()
            if not rows:
                return
            for row in rows:
                record = row_to_record(row)
                yield record.seq, record
            after = int(rows[-1].seq)

    return _check(records(), lambda: end, custody, "record")


def verify_export(lines: Iterable[str], custody: KeyCustody) -> VerifyReport:
    """Check an export written by :func:`kmip_server.audit.export.write_jsonl`: its records
    and its last line, the seal (``{"seal": {...}}``) made by the token when it was written."""
    end: _End | None = None

    def records() -> Iterator[tuple[int, AuditRecord]]:
        nonlocal end
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            if end is not None:
                raise _Broken(number, f"line {number} follows the seal line")
            try:
                data = json.loads(line)
                if isinstance(data, dict) and set(data) == {"seal"}:
                    seal = data["seal"]
                    end = _End(int(seal["seq"]), bytes.fromhex(seal["hash"]), bytes.fromhex(seal["mac"]))
                    continue
                record = AuditRecord.from_json(data)
            except (ValueError, KeyError, TypeError) as exc:
                raise _Broken(number, f"line {number} is not an audit record: {exc}") from None
            yield number, record

    return _check(records(), lambda: end, custody, "line")


def _check(
    records: Iterator[tuple[int, AuditRecord]],
    end_of: Callable[[], _End | None],
    custody: KeyCustody,
    unit: str,
) -> VerifyReport:
    checked = 0
    prev_hash = GENESIS
    last_seq = 0
    where: int | None = None
    try:
        for where, record in records:
            expected = last_seq + 1
            label = f"{unit} {where}" if unit == "line" else f"record {record.seq}"
            if record.seq != expected:
                raise _Broken(
                    where,
                    f"{label}: seq {record.seq} where {expected} was expected (records deleted, inserted or reordered)",
                )
            if record.prev_hash != prev_hash:
                raise _Broken(where, f"{label}: prev_hash does not match the hash of the record before it")
            computed = chained_hash(record.prev_hash, record)
            if not hmac.compare_digest(computed, record.hash):
                raise _Broken(where, f"{label}: its hash does not match its contents (it was edited)")
            if record.mac is not None and not _mac_ok(custody, record.seq, record.hash, record.mac):
                raise _Broken(
                    where, f"{label}: its MAC is not the token's (forged, or hashes recomputed without the token)"
                )
            prev_hash, last_seq = record.hash, record.seq
            checked += 1
        end = end_of()  # known once the records are read (an export's seal is its last line)
        if end is None:
            if unit == "line":
                raise _Broken(None, "the export has no seal line (truncated)")
            if checked:
                raise _Broken(None, "the trail has records but no head")
            return VerifyReport(True, 0, None, "audit trail intact: 0 records")
        if end.seq != last_seq or not hmac.compare_digest(end.hash, prev_hash if last_seq else GENESIS):
            raise _Broken(
                last_seq + 1 if end.seq > last_seq else end.seq,
                f"the trail ends at seq {last_seq} but its sealed end is seq {end.seq} (records missing or cut off)",
            )
        if last_seq and (end.mac is None or not _mac_ok(custody, end.seq, end.hash, end.mac)):
            raise _Broken(end.seq, "the sealed end's MAC is not the token's")
    except _Broken as broken:
        return VerifyReport(False, checked, broken.where, broken.message)
    return VerifyReport(True, checked, None, f"audit trail intact: {checked} records")


def _mac_ok(custody: KeyCustody, seq: int, hash_: bytes, mac: bytes) -> bool:
    return hmac.compare_digest(custody.audit_mac(mac_input(seq, hash_)), mac)
