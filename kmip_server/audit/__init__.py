"""The tamper-evident audit trail: one record per batch item (and per message refused whole,
per approval step, per automatic rotation), written in the transaction of the change it
describes, chained by SHA-256 and sealed by HMACs under keys that only the token can derive (seal.py).

Importing the package declares its tables on the storage schema's MetaData.
"""

from __future__ import annotations

from .chain import AuditTrail, AuditWriteError
from .export import after, search, syslog_line, tail, write_jsonl, write_syslog
from .records import AuditEvent, AuditRecord
from .verify import TrailBroken, VerifyReport, verify, verify_export

__all__ = [
    "AuditEvent",
    "AuditRecord",
    "AuditTrail",
    "AuditWriteError",
    "TrailBroken",
    "VerifyReport",
    "after",
    "search",
    "syslog_line",
    "tail",
    "verify",
    "verify_export",
    "write_jsonl",
    "write_syslog",
]
