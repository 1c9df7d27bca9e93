"""Appending to the trail: in the caller's write transaction, just before its commit.

One append takes the head (locked), numbers and chains its events, inserts them in one
statement, and makes two MACs over the new end (the last record's seq and hash), under a
sealing key derived from the token (audit/seal.py): one in the record domain, stored on that
record, and one in the head domain, stored in the head. A fixed cost per append, however many
events: the engine appends a whole group commit's records at once. Why two and not one: a record's MAC stays in
the table for good, so if it were also a valid head MAC, anyone able to write the database
could delete every record after some append and copy that append's MAC into the head; with
a head domain of its own, cutting the tail needs a head MAC the token made for that very end,
which exists only in an old copy of the head row (restoring an old copy of the database, a
rollback, is beyond what a trail kept in that database can detect: ship exports off the host).

Why this is tamper-evident: editing a record changes its hash, which no longer matches the
next record's prev_hash; deleting, inserting or reordering breaks the seq run or the links;
cutting the tail leaves the head pointing past the end. Recomputing every hash after an edit
still fails at the MACs, whose keys only the token can derive: someone who can write the database or
the log files, but not use the token, cannot forge a trail that verifies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import SQLAlchemyError

from ..custody import CustodyError, KeyCustody
from ..storage.driver import DriverStatement
from .records import (
    GENESIS,
    HEAD,
    MAX_DETAIL,
    RECORD,
    AuditEvent,
    audit_head,
    audit_records,
    canonical_fields,
    encode_names,
    mac_input,
)
from .seal import Sealer


class AuditWriteError(Exception):
    """The records could not be written (the token or the database failed): the caller's
    transaction must not commit. The message names the failure, nothing secret."""


# The append's statements run on the driver (storage/driver.py), compiled once per dialect:
# through SQLAlchemy's execution machinery the three cost more than building the records.
_HEAD = select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
_HEAD_SQLITE = DriverStatement(_HEAD)
_HEAD_LOCKED = DriverStatement(_HEAD.with_for_update())
_COLUMNS = tuple(column.name for column in audit_records.columns)
_HASH, _MAC = _COLUMNS.index("hash"), _COLUMNS.index("mac")
_INSERT = DriverStatement(insert(audit_records).values({name: bindparam(name) for name in _COLUMNS}))
_SET_HEAD = DriverStatement(
    update(audit_head)
    .where(audit_head.c.id == 1)
    .values(seq=bindparam("head_seq"), hash=bindparam("head_hash"), mac=bindparam("head_mac"))
)


class AuditTrail:
    """The trail of one store, sealed by ``custody``'s audit key; ``node`` names this server."""

    def __init__(self, custody: KeyCustody, node: str) -> None:
        self.custody = custody
        self.node = node
        self.sealer = Sealer(custody)

    def append(self, conn: Connection, events: Sequence[AuditEvent]) -> None:
        """Add ``events``, in order, in the transaction of ``conn``. Raises AuditWriteError
        (the caller then rolls its transaction back: the change and its record go together)."""
        if not events:
            return
        try:
            seq, prev = _locked_head(conn)
            rows: list[list[Any]] = []
            for event in events:
                seq += 1
                row, canonical = _row(seq, event, prev)
                prev = row[_HASH] = hashlib.sha256(prev + canonical).digest()
                rows.append(row)
            rows[-1][_MAC] = self.sealer.seal(mac_input(RECORD, seq, prev))
            head_mac = self.sealer.seal(mac_input(HEAD, seq, prev))
            _INSERT.many_tuples(conn, _COLUMNS, rows)  # type: ignore[arg-type]
            _SET_HEAD.bound_execute(conn, {"head_seq": seq, "head_hash": prev, "head_mac": head_mac})
        except CustodyError as exc:
            raise AuditWriteError(f"the token could not seal the audit records: {exc}") from exc
        except SQLAlchemyError as exc:
            raise AuditWriteError(f"the audit records could not be stored: {type(exc).__name__}") from exc


def _locked_head(conn: Connection) -> tuple[int, bytes]:
    postgres = conn.dialect.name == "postgresql"
    statement = _HEAD_LOCKED if postgres else _HEAD_SQLITE
    row = statement.first(conn)
    if row is None:
        start = {"id": 1, "seq": 0, "hash": GENESIS, "mac": None}
        if postgres:
            # Two nodes' first appends race to make the row: one makes it, both then lock it.
            conn.execute(pg_insert(audit_head).values(**start).on_conflict_do_nothing())
        else:
            conn.execute(insert(audit_head).values(**start))
        row = statement.first(conn)
        assert row is not None
    return int(row[0]), bytes(row[1])


def _row(seq: int, event: AuditEvent, prev_hash: bytes) -> tuple[list[Any], bytes]:
    """The row of ``event`` at ``seq``, its values in ``_COLUMNS`` order (hash and mac still
    None), and its canonical bytes: built straight from the event, the hot path makes no
    AuditRecord and no dict."""
    detail = event.detail
    if detail is not None and len(detail) > MAX_DETAIL:
        detail = detail[: MAX_DETAIL - 1] + "\u2026"
    time_us = int(round(event.time * 1_000_000))
    fields = (
        seq,
        time_us,
        event.node,
        event.identity,
        event.address,
        event.fingerprint,
        event.operation,
        tuple(event.object_ids),
        tuple(event.attributes),
        event.result,
        event.reason,
        detail,
    )
    canonical = canonical_fields(*fields)
    # The stored row: the same fields, the two name lists as JSON text, then the chain.
    values = [*fields[:7], encode_names(fields[7]), encode_names(fields[8]), *fields[9:], prev_hash, None, None]
    return values, canonical
