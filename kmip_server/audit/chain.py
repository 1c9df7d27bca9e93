"""Appending to the trail: in the caller's write transaction, just before its commit.

One append takes the head (locked), numbers and chains its events, inserts them in one
statement, and asks the token for one HMAC over the new end (the last record's seq and hash),
stored on that record and in the head. One token call per append, however many events: the
engine appends a whole group commit's records at once.

Why this is tamper-evident: editing a record changes its hash, which no longer matches the
next record's prev_hash; deleting, inserting or reordering breaks the seq run or the links;
cutting the tail leaves the head pointing past the end. Recomputing every hash after an edit
still fails at the MACs, which only the token can make: someone who can write the database or
the log files, but not use the token, cannot forge a trail that verifies.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import SQLAlchemyError

from ..custody import CustodyError, KeyCustody
from .records import (
    GENESIS,
    MAX_DETAIL,
    AuditEvent,
    AuditRecord,
    audit_head,
    audit_records,
    chained_hash,
    mac_input,
)


class AuditWriteError(Exception):
    """The records could not be written (the token or the database failed): the caller's
    transaction must not commit. The message names the failure, nothing secret."""


_HEAD = select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
_HEAD_LOCKED = _HEAD.with_for_update()


class AuditTrail:
    """The trail of one store, sealed by ``custody``'s audit key; ``node`` names this server."""

    def __init__(self, custody: KeyCustody, node: str) -> None:
        self.custody = custody
        self.node = node

    def append(self, conn: Connection, events: Sequence[AuditEvent]) -> None:
        """Add ``events``, in order, in the transaction of ``conn``. Raises AuditWriteError."""
        if not events:
            return
        try:
            seq, prev = _locked_head(conn)
            rows: list[dict[str, Any]] = []
            for event in events:
                seq += 1
                record = _record(seq, event, prev)
                prev = chained_hash(record.prev_hash, record)
                rows.append(_row(record, prev))
            mac = self.custody.audit_mac(mac_input(seq, prev))
            rows[-1]["mac"] = mac
            conn.execute(insert(audit_records), rows)
            conn.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=seq, hash=prev, mac=mac))
        except CustodyError as exc:
            raise AuditWriteError(f"the token could not seal the audit records: {exc}") from exc
        except SQLAlchemyError as exc:
            raise AuditWriteError(f"the audit records could not be stored: {type(exc).__name__}") from exc


def _locked_head(conn: Connection) -> tuple[int, bytes]:
    postgres = conn.dialect.name == "postgresql"
    statement = _HEAD_LOCKED if postgres else _HEAD
    row = conn.execute(statement).first()
    if row is None:
        start = {"id": 1, "seq": 0, "hash": GENESIS, "mac": None}
        if postgres:
            # Two nodes' first appends race to make the row: one makes it, both then lock it.
            conn.execute(pg_insert(audit_head).values(**start).on_conflict_do_nothing())
        else:
            conn.execute(insert(audit_head).values(**start))
        row = conn.execute(statement).first()
        assert row is not None
    return int(row.seq), bytes(row.hash)


def _record(seq: int, event: AuditEvent, prev_hash: bytes) -> AuditRecord:
    detail = event.detail
    if detail is not None and len(detail) > MAX_DETAIL:
        detail = detail[: MAX_DETAIL - 1] + "…"
    return AuditRecord(
        seq=seq,
        time_us=int(round(event.time * 1_000_000)),
        node=event.node,
        identity=event.identity,
        address=event.address,
        fingerprint=event.fingerprint,
        operation=event.operation,
        object_ids=tuple(event.object_ids),
        attributes=tuple(event.attributes),
        result=event.result,
        reason=event.reason,
        detail=detail,
        prev_hash=prev_hash,
        hash=b"",
        mac=None,
    )


def _row(record: AuditRecord, hash_: bytes) -> dict[str, Any]:
    return {
        "seq": record.seq,
        "time_us": record.time_us,
        "node": record.node,
        "identity": record.identity,
        "address": record.address,
        "fingerprint": record.fingerprint,
        "operation": record.operation,
        "object_ids": json.dumps(list(record.object_ids)),
        "attributes": json.dumps(list(record.attributes)),
        "result": record.result,
        "reason": record.reason,
        "detail": record.detail,
        "prev_hash": record.prev_hash,
        "hash": hash_,
        "mac": None,
    }
