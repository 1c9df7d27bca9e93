"""The audit trail's tables, its events and records, and the canonical form its hashes cover.

``audit_records``: one row per event, numbered ``seq`` 1, 2, 3 ... in commit order. Each row
carries ``prev_hash`` (the previous row's ``hash``; 32 zero bytes for the first) and
``hash`` = SHA-256(prev_hash || canonical(row)); the last row of each append also carries
``mac``, a MAC over :func:`mac_input` of its seq and hash under a sealing key that only the
token can derive (audit/seal.py).

The canonical form of a record (what its hash covers) is the UTF-8 bytes of the compact JSON
array (no spaces, non-ASCII kept as is, Python's ``json`` escaping)::

    [seq, time_us, node, identity, address, fingerprint, operation,
     [object_ids...], [attribute names...], result, reason, detail]

with ``null`` for an absent value: an array, so there is no key order to agree on, and JSON
strings carry their own lengths and escapes, so no two records encode alike.

Three MACs, each over ``domain || seq (8 bytes, big-endian) || hash``, with a domain of its
own (:data:`RECORD`, :data:`HEAD`, :data:`SEAL`) so that none can stand in for another: a
record's MAC, kept in the database for good, must not be a valid head or seal, or anyone able
to write the database could cut the trail back to any append's end and "seal" the head with
the MAC found on that record.

``audit_head``: one row (id 1) saying where the trail ends: its last seq, hash and mac. Appends
lock it (SELECT ... FOR UPDATE on PostgreSQL; SQLite's write lock serialises them anyway), so
several nodes sharing one store append one chain.

What a record holds: names, never values. The attributes are the names of those an item
changed; the detail is a short, secret-free description the engine writes.

Both tables are declared on the storage schema's MetaData: importing this package is enough
for ``Repository.create_schema`` to make them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, Table, Text

from ..storage.schema import metadata

GENESIS = bytes(32)
#: The longest detail a record keeps: a description, not a payload.
MAX_DETAIL = 500
#: MAC domains: the last record of an append, the head row, an export's seal line.
RECORD = b"strongroom audit v1 record\x00"
HEAD = b"strongroom audit v1 head\x00"
SEAL = b"strongroom audit v1 seal\x00"
# json's own string escaper (C), as json.dumps(..., ensure_ascii=False) applies it.
_string = json.encoder.encode_basestring

audit_records = Table(
    "audit_records",
    metadata,
    # On SQLite, INTEGER PRIMARY KEY makes seq the rowid: one b-tree fewer to write on every
    # append (a trail made before keeps its separate seq index and works the same).
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False),
    Column("time_us", BigInteger, nullable=False),  # POSIX microseconds
    Column("node", Text, nullable=False),
    Column("identity", Text, nullable=False),
    Column("address", Text),
    Column("fingerprint", Text),
    Column("operation", Text, nullable=False),
    Column("object_ids", Text, nullable=False),  # JSON list
    Column("attributes", Text, nullable=False),  # JSON list of names
    Column("result", Text, nullable=False),
    Column("reason", Text),
    Column("detail", Text),
    Column("prev_hash", LargeBinary(32), nullable=False),
    Column("hash", LargeBinary(32), nullable=False),
    Column("mac", LargeBinary(48)),  # audit/seal.py: epoch (16) || HMAC-SHA256 (32)
    Index("ix_audit_records_identity", "identity"),
    Index("ix_audit_records_time", "time_us"),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", LargeBinary(32), nullable=False),
    Column("mac", LargeBinary(48)),  # audit/seal.py: epoch (16) || HMAC-SHA256 (32)
)


@dataclasses.dataclass(frozen=True, slots=True)
class AuditEvent:
    """What happened, as the engine reports it: one batch item, one message refused as a
    whole, or one approval step."""

    time: float
    node: str
    identity: str
    address: str | None
    fingerprint: str | None
    operation: str
    object_ids: tuple[str, ...]
    attributes: tuple[str, ...]
    result: str
    reason: str | None
    detail: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class AuditRecord:
    """A stored event: its place in the chain and its hashes."""

    seq: int
    time_us: int
    node: str
    identity: str
    address: str | None
    fingerprint: str | None
    operation: str
    object_ids: tuple[str, ...]
    attributes: tuple[str, ...]
    result: str
    reason: str | None
    detail: str | None
    prev_hash: bytes
    hash: bytes
    mac: bytes | None

    @property
    def time(self) -> float:
        return self.time_us / 1_000_000

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["object_ids"] = list(self.object_ids)
        data["attributes"] = list(self.attributes)
        for name in ("prev_hash", "hash", "mac"):
            value = data[name]
            data[name] = None if value is None else value.hex()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AuditRecord:
        """A record read back from an export line (KeyError/TypeError/ValueError if malformed)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        if set(data) != fields:
            raise ValueError(f"fields {sorted(set(data) ^ fields)} missing or unexpected")
        values = dict(data)
        values["object_ids"] = tuple(data["object_ids"])
        values["attributes"] = tuple(data["attributes"])
        for name in ("prev_hash", "hash", "mac"):
            values[name] = None if data[name] is None else bytes.fromhex(data[name])
        if values["prev_hash"] is None or values["hash"] is None:
            raise ValueError("a record needs prev_hash and hash")
        return cls(**values)


def canonical(record: AuditRecord) -> bytes:
    """The bytes a record's hash covers (the format is in the module's docstring)."""
    return canonical_fields(
        record.seq,
        record.time_us,
        record.node,
        record.identity,
        record.address,
        record.fingerprint,
        record.operation,
        record.object_ids,
        record.attributes,
        record.result,
        record.reason,
        record.detail,
    )


def canonical_fields(
    seq: int,
    time_us: int,
    node: str,
    identity: str,
    address: str | None,
    fingerprint: str | None,
    operation: str,
    object_ids: tuple[str, ...],
    attributes: tuple[str, ...],
    result: str,
    reason: str | None,
    detail: str | None,
) -> bytes:
    # Byte for byte what json.dumps(fields, separators=(",", ":"), ensure_ascii=False) gives,
    # built from json's own string escaper: the encoder object json makes per call cost more
    # than the rest of a record (hot path; tests/unit/test_audit_canonical.py compares them).
    text = ",".join(
        (
            str(seq),
            str(time_us),
            _string(node),
            _string(identity),
            _optional(address),
            _optional(fingerprint),
            _string(operation),
            encode_names(object_ids),
            encode_names(attributes),
            _string(result),
            _optional(reason),
            _optional(detail),
        )
    )
    return f"[{text}]".encode()


def encode_names(names: tuple[str, ...]) -> str:
    """How ``object_ids`` and ``attributes`` are stored: a JSON list of strings."""
    if not names:
        return "[]"  # most items change no attribute
    return "[" + ",".join(map(_string, names)) + "]"


def _optional(value: str | None) -> str:
    return "null" if value is None else _string(value)


def chained_hash(prev_hash: bytes, record: AuditRecord) -> bytes:
    return hashlib.sha256(prev_hash + canonical(record)).digest()


def mac_input(domain: bytes, seq: int, hash_: bytes) -> bytes:
    """What a MAC seals (audit/seal.py): the end of the trail at ``seq`` (its hash), in ``domain``."""
    return domain + seq.to_bytes(8, "big") + hash_


def row_to_record(row: Any) -> AuditRecord:
    m = row._mapping
    return AuditRecord(
        seq=int(m["seq"]),
        time_us=int(m["time_us"]),
        node=m["node"],
        identity=m["identity"],
        address=m["address"],
        fingerprint=m["fingerprint"],
        operation=m["operation"],
        object_ids=tuple(json.loads(m["object_ids"])),
        attributes=tuple(json.loads(m["attributes"])),
        result=m["result"],
        reason=m["reason"],
        detail=m["detail"],
        prev_hash=bytes(m["prev_hash"]),
        hash=bytes(m["hash"]),
        mac=None if m["mac"] is None else bytes(m["mac"]),
    )
