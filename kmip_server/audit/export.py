"""Reading the trail out: search and tail, JSON lines sealed by the token, RFC 5424 syslog."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TextIO

from sqlalchemy import Connection, func, select

from ..custody import KeyCustody
from .records import HEAD, SEAL, AuditRecord, audit_records, mac_input, row_to_record
from .seal import Sealer
from .verify import Checker, StoredTrail, TrailBroken, _Broken

#: RFC 5424 SD-ID: a private enterprise number is required; 32473 is the one RFC 5612 reserves for documentation.
SD_ID = "strongroom@32473"
_AUTH = 4  # facility: security/authorization messages
_INFO, _NOTICE = 6, 5


def search(
    conn: Connection,
    *,
    identity: str | None = None,
    object_id: str | None = None,
    operation: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int | None = 100,
    newest_first: bool = True,
) -> list[AuditRecord]:
    """The records matching every filter given (``object_id``: among the record's objects),
    at most ``limit`` (None: all) of them."""
    statement = select(audit_records)
    if identity is not None:
        statement = statement.where(audit_records.c.identity == identity)
    if operation is not None:
        statement = statement.where(func.lower(audit_records.c.operation) == operation.lower())
    if since is not None:
        statement = statement.where(audit_records.c.time_us >= int(since * 1_000_000))
    if until is not None:
        statement = statement.where(audit_records.c.time_us <= int(until * 1_000_000))
    if object_id is not None:
        # A JSON list of strings: the quoted identifier is a substring (LIKE, its wildcards
        # escaped); a record naming it only inside a longer identifier is dropped below.
        statement = statement.where(audit_records.c.object_ids.contains(json.dumps(object_id), autoescape=True))
    order = audit_records.c.seq.desc() if newest_first else audit_records.c.seq
    statement = statement.order_by(order)
    if object_id is None:
        if limit is not None:
            statement = statement.limit(limit)
        return [row_to_record(row) for row in conn.execute(statement)]
    # Paged by seq so memory stays bounded when few of many candidates name the object.
    found: list[AuditRecord] = []
    bound: int | None = None
    while limit is None or len(found) < limit:
        page = statement
        if bound is not None:
            page = page.where(audit_records.c.seq < bound if newest_first else audit_records.c.seq > bound)
        rows = conn.execute(page.limit(500)).all()
        if not rows:
            break
        for row in rows:
            record = row_to_record(row)
            if object_id in record.object_ids:
                found.append(record)
        bound = int(rows[-1].seq)
    return found if limit is None else found[:limit]


def tail(conn: Connection, count: int) -> list[AuditRecord]:
    """The last ``count`` records, oldest first."""
    return list(reversed(search(conn, limit=count)))


def after(conn: Connection, seq: int, limit: int = 1000) -> list[AuditRecord]:
    """The records after ``seq``, oldest first (``tail --follow`` polls with it)."""
    statement = select(audit_records).where(audit_records.c.seq > seq).order_by(audit_records.c.seq).limit(limit)
    return [row_to_record(row) for row in conn.execute(statement)]


def all_records(conn: Connection, batch: int = 2000) -> Iterator[AuditRecord]:
    return iter(StoredTrail(conn, batch))


def write_jsonl(conn: Connection, custody: KeyCustody, out: TextIO) -> int:
    """Every record as a JSON line, then the seal: ``{"seal": {"seq", "hash", "mac"}}``, the
    export's end sealed by the token now (so cutting lines off the file is detected even when
    the cut falls after a record that carries a MAC). The number of records.

    The trail is verified as it is written, and a trail that does not verify is not sealed:
    raises :class:`TrailBroken` (what was written so far is then not a valid export). Sealing
    whatever the table holds would let someone who rewrote the database without the token
    (hashes recomputed, MACs dropped) get a valid seal over the forgery from the next export.
    """
    checker = Checker(custody, HEAD, "record")
    trail = StoredTrail(conn)
    try:
        for record in trail:
            checker.feed(record.seq, record)
            out.write(json.dumps(record.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n")
        checker.finish(trail.end)
    except _Broken as broken:
        raise TrailBroken(checker.report(broken)) from None
    mac = Sealer(custody).seal(mac_input(SEAL, checker.last_seq, checker.prev_hash))
    seal = {"seq": checker.last_seq, "hash": checker.prev_hash.hex(), "mac": mac.hex()}
    out.write(json.dumps({"seal": seal}) + "\n")
    return checker.checked


def write_syslog(conn: Connection, out: TextIO, hostname: str = "-") -> int:
    """Every record as an RFC 5424 line (facility auth; notice for failures, info otherwise)."""
    count = 0
    for record in all_records(conn):
        out.write(syslog_line(record, hostname) + "\n")
        count += 1
    return count


def syslog_line(record: AuditRecord, hostname: str = "-") -> str:
    severity = _INFO if record.result in ("Success", "Operation Pending") else _NOTICE
    stamp = datetime.fromtimestamp(record.time, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    params = [
        ("seq", str(record.seq)),
        ("node", record.node),
        ("identity", record.identity),
        ("address", record.address or ""),
        ("fingerprint", record.fingerprint or ""),
        ("operation", record.operation),
        ("objects", ",".join(record.object_ids)),
        ("attributes", ",".join(record.attributes)),
        ("result", record.result),
        ("reason", record.reason or ""),
        ("hash", record.hash.hex()),
    ]
    data = " ".join(f'{name}="{_sd_escape(value)}"' for name, value in params)
    message = (record.detail or "").replace("\n", " ")
    host = _header_field(hostname or record.node)
    return f"<{_AUTH * 8 + severity}>1 {stamp} {host} strongroom - AUDIT [{SD_ID} {data}]" + (
        f" {message}" if message else ""
    )


def _sd_escape(value: str) -> str:
    # RFC 5424 6.3.3: '"', '\' and ']' are escaped with a backslash inside PARAM-VALUE.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _header_field(value: str) -> str:
    printable = "".join(ch for ch in value if 33 <= ord(ch) <= 126)
    return printable[:255] or "-"
