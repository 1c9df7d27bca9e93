"""Checking the trail: in the database (:func:`verify`) and in an export (:func:`verify_export`).

Both walk the records in order and stop at the first that is wrong, naming it: a seq out of
run (a deletion, insertion or reordering), a prev_hash that is not the previous hash, a hash
that does not match the record (an edit), a MAC that does not check under the token's key for its epoch, or an end that
is not the sealed end (the head row in the database, the seal line in an export: a truncation,
or records added past the end).

What ``first_bad`` names when a MAC fails: the first record after the last one a valid MAC
covers. Someone who recomputed the hashes after inserting or editing a record leaves a chain
that links, so the MAC that fails is the next one the token made, which may be many records
later; everything from the last good MAC on is what cannot be trusted, and the forgery is
somewhere in it (its first record, for an insertion or edit and a rehash from there).
"""

from __future__ import annotations

import dataclasses
import hmac
import json
from collections.abc import Iterable, Iterator

from sqlalchemy import Connection, select

from ..custody import KeyCustody
from .records import (
    GENESIS,
    HEAD,
    RECORD,
    SEAL,
    AuditRecord,
    audit_head,
    audit_records,
    chained_hash,
    mac_input,
    row_to_record,
)
from .seal import SealChecker


@dataclasses.dataclass(frozen=True, slots=True)
class VerifyReport:
    ok: bool
    checked: int
    first_bad: int | None  # the seq (database) or line number (export) of the first bad record
    message: str


class TrailBroken(Exception):
    """Raised by an export of a trail that does not verify: the token will not seal it."""

    def __init__(self, report: VerifyReport) -> None:
        super().__init__(report.message)
        self.report = report


@dataclasses.dataclass(frozen=True, slots=True)
class End:
    """Where the trail is sealed to end: the head row, or an export's seal line."""

    seq: int
    hash: bytes
    mac: bytes | None


class _Broken(Exception):
    def __init__(self, where: int | None, message: str) -> None:
        super().__init__(message)
        self.where = where
        self.message = message


class Checker:
    """The checks, fed one record at a time (memory stays flat however long the trail).

    ``where`` is how a record is named in a report: its seq in the database, its line number
    in an export. ``end_domain`` is the MAC domain of the end: :data:`HEAD` or :data:`SEAL`.
    """

    def __init__(self, custody: KeyCustody, end_domain: bytes, unit: str) -> None:
        self.seals = SealChecker(custody)
        self.end_domain = end_domain
        self.unit = unit
        self.checked = 0
        self.prev_hash = GENESIS
        self.last_seq = 0
        self.last_where = 0
        self.unsealed_from: int | None = None  # where the records after the last good MAC start

    def _label(self, where: int, record: AuditRecord) -> str:
        return f"line {where} (record {record.seq})" if self.unit == "line" else f"record {record.seq}"

    def feed(self, where: int, record: AuditRecord) -> None:
        """Check the next record; raises _Broken."""
        label = self._label(where, record)
        expected = self.last_seq + 1
        if record.seq != expected:
            raise _Broken(
                where,
                f"{label}: seq {record.seq} where {expected} was expected (records deleted, inserted or reordered)",
            )
        if record.prev_hash != self.prev_hash:
            raise _Broken(where, f"{label}: prev_hash does not match the hash of the record before it")
        if not hmac.compare_digest(chained_hash(record.prev_hash, record), record.hash):
            raise _Broken(where, f"{label}: its hash does not match its contents (it was edited)")
        if self.unsealed_from is None:
            self.unsealed_from = where
        if record.mac is not None:
            if not self._mac_ok(RECORD, record.seq, record.hash, record.mac):
                start = self.unsealed_from
                raise _Broken(
                    start,
                    f"{label}: its MAC is not the token's, so nothing from {self._after_sealed()} on can be trusted "
                    "(a forged or edited record, and hashes recomputed without the token)",
                )
            self.unsealed_from = None
        self.prev_hash, self.last_seq, self.last_where = record.hash, record.seq, where
        self.checked += 1

    def _after_sealed(self) -> str:
        return f"{self.unit} {self.unsealed_from}"

    def finish(self, end: End | None) -> None:
        """Check the trail ends where it is sealed to end; raises _Broken."""
        if end is None:
            if self.unit == "line":
                raise _Broken(self.last_where + 1, "the export has no seal line (truncated)")
            if self.checked:
                raise _Broken(1, "the trail has records but no head row")
            return
        if end.seq > self.last_seq:
            raise _Broken(
                self.last_where + 1,
                f"the trail ends at seq {self.last_seq} but its sealed end is seq {end.seq} (records cut off)",
            )
        if end.seq < self.last_seq:
            raise _Broken(
                self.last_where - (self.last_seq - end.seq) + 1,
                f"records {end.seq + 1}-{self.last_seq} lie past the sealed end, seq {end.seq} (added to the trail)",
            )
        if not hmac.compare_digest(end.hash, self.prev_hash):
            raise _Broken(self.last_where, f"the sealed end's hash is not the hash of record {end.seq}")
        if end.seq and (end.mac is None or not self._mac_ok(self.end_domain, end.seq, end.hash, end.mac)):
            what = "seal line" if self.unit == "line" else "head row"
            if self.unsealed_from is None:  # every record is sealed: only the end is forged
                raise _Broken(
                    self.last_where + 1,
                    f"the {what}'s MAC is not the token's: the trail is sealed up to record {end.seq}, "
                    "and records after it may have been cut off",
                )
            raise _Broken(
                self.unsealed_from,
                f"the {what}'s MAC is not the token's: nothing from {self._after_sealed()} on can be trusted",
            )

    def _mac_ok(self, domain: bytes, seq: int, hash_: bytes, mac: bytes) -> bool:
        return self.seals.check(mac_input(domain, seq, hash_), mac)

    def report(self, broken: _Broken | None) -> VerifyReport:
        if broken is not None:
            return VerifyReport(False, self.checked, broken.where, broken.message)
        return VerifyReport(True, self.checked, None, f"audit trail intact: {self.checked} records")


def read_head(conn: Connection) -> End | None:
    row = conn.execute(
        select(audit_head.c.seq, audit_head.c.hash, audit_head.c.mac).where(audit_head.c.id == 1)
    ).first()
    if row is None:
        return None
    return End(int(row.seq), bytes(row.hash), None if row.mac is None else bytes(row.mac))


class StoredTrail:
    """The records of a store in seq order, paged, then its head.

    Read to the end, then the head; if the head has moved on meanwhile (another node appended
    on PostgreSQL, whose reads see each commit), read on to it. So a live trail verifies, and
    a record added past the head (without the token to move the head) is still found.
    """

    def __init__(self, conn: Connection, batch: int = 2000) -> None:
        self.conn = conn
        self.batch = batch
        self.end: End | None = None

    def __iter__(self) -> Iterator[AuditRecord]:
        after = 0
        rereading = False
        while True:
            before = after
            while True:
                statement = (
                    select(audit_records)
                    .where(audit_records.c.seq > after)
                    .order_by(audit_records.c.seq)
                    .limit(self.batch)
                )
                rows = self.conn.execute(statement).all()
                if not rows:
                    break
                for row in rows:
                    yield row_to_record(row)
                after = int(rows[-1].seq)
            self.end = read_head(self.conn)
            if self.end is None or self.end.seq <= after or (rereading and after == before):
                return  # at the head, or the head points past records that are not there
            rereading = True


def verify(conn: Connection, custody: KeyCustody, batch: int = 2000) -> VerifyReport:
    """Check the whole trail in the database (streamed: memory stays flat)."""
    checker = Checker(custody, HEAD, "record")
    trail = StoredTrail(conn, batch)
    try:
        for record in trail:
            checker.feed(record.seq, record)
        checker.finish(trail.end)
    except _Broken as broken:
        return checker.report(broken)
    return checker.report(None)


def verify_export(lines: Iterable[str], custody: KeyCustody) -> VerifyReport:
    """Check an export written by :func:`kmip_server.audit.export.write_jsonl`: its records
    and its last line, the seal (``{"seal": {...}}``) made by the token when it was written."""
    checker = Checker(custody, SEAL, "line")
    end: End | None = None
    try:
        for number, line in enumerate(lines, 1):
            if end is not None:
                raise _Broken(number, f"line {number} follows the seal line")
            try:
                data = json.loads(line)
                if isinstance(data, dict) and set(data) == {"seal"}:
                    seal = data["seal"]
                    end = End(int(seal["seq"]), bytes.fromhex(seal["hash"]), bytes.fromhex(seal["mac"]))
                    continue
                if not isinstance(data, dict):
                    raise ValueError("not a JSON object")
                record = AuditRecord.from_json(data)
            except (ValueError, KeyError, TypeError) as exc:
                raise _Broken(number, f"line {number} is not an audit record: {exc}") from None
            checker.feed(number, record)
        checker.finish(end)
    except _Broken as broken:
        return checker.report(broken)
    return checker.report(None)
