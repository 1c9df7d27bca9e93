"""What the dashboard's pages show, read from the store: plain values for the templates.

Read only, in one short read transaction per page. Attribute values are rendered as text and
byte strings never are (only their length): no key material, wrapped value or other byte
value of an object reaches a page. The audit queries are kmip_server/audit/export.py's.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select

from kmip_client.protocol.model.base import Struct
from kmip_client.protocol.spec.enums import CryptographicAlgorithm, CryptographicUsageMask, LinkType, ObjectType
from kmip_client.protocol.ttlv import Item

from ...audit.export import search
from ...audit.records import AuditRecord, audit_records, row_to_record
from ...objects import lifecycle
from ...objects.attribute_set import AttributeSet
from ...rotation.lineage import replaced
from ...storage import rotation as rotation_store
from ...storage.repository import Session
from ...storage.schema import managed_objects, object_attributes

_ACRONYMS = re.compile("Algorithm|Curve|Padding|Hashing")
_o = managed_objects.c
_a = object_attributes.c
DAY = 86400

#: The date attributes a key's timeline shows, in lifecycle order (ties keep this order).
TIMELINE = (
    "Original Creation Date",
    "Initial Date",
    "Activation Date",
    "Process Start Date",
    "Protect Stop Date",
    "Deactivation Date",
    "Compromise Occurrence Date",
    "Compromise Date",
    "Rotate Date",
    "Archive Date",
    "Destroy Date",
    "Last Change Date",
)
#: What the key list reads of each object besides its row.
_LISTED = (
    "Name",
    "Activation Date",
    "Deactivation Date",
    "Initial Date",
    "Rotate Automatic",
    "Rotate Interval",
    "Link",
)


def when(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def enum_name(enum_class: type[enum.IntEnum], value: int | None) -> str:
    if value is None:
        return "-"
    try:
        return enum_class(value).name.replace("_", " ").title()
    except ValueError:
        return f"0x{value:08X}"


def type_name(value: int | None) -> str:
    return enum_name(ObjectType, value)


def algorithm_name(value: int | None) -> str:
    if value is None:
        return "-"
    try:
        return CryptographicAlgorithm(value).name
    except ValueError:
        return f"0x{value:08X}"


def _seconds(value: Any) -> int | None:
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def render_value(name: str, value: Any) -> str:
    """An attribute value as text for a person; byte strings only by their length."""
    if value is None:
        return "-"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"({len(value)} bytes, not shown)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return when(value.timestamp())
    if isinstance(value, enum.IntFlag):
        return " | ".join(m.name.replace("_", " ").title() for m in type(value) if m in value and m.name) or "0"
    if isinstance(value, enum.Enum):
        spelled = str(value.name).replace("_", " ")
        # Algorithms, curves and paddings are acronyms (AES, P 256, OAEP); the rest read as words.
        return spelled if _ACRONYMS.search(type(value).__name__) else spelled.title()
    if name == "Cryptographic Usage Mask" and isinstance(value, int):
        return render_value(name, CryptographicUsageMask(value))
    if name in ("Name", "Alternative Name") and isinstance(getattr(value, "value", None), str):
        return str(value.value)  # its type is nearly always Uninterpreted Text String
    if isinstance(value, Struct) and dataclasses.is_dataclass(value):
        parts = []
        for field in dataclasses.fields(value):
            inner = getattr(value, field.name)
            if inner is None or inner == () or inner == {} or field.name in ("type",):
                continue
            parts.append(f"{field.name.replace('_', ' ')}: {render_value(field.name, inner)}")
        return "; ".join(parts) or "-"
    if isinstance(value, Item):
        return "(a structure not shown here)"
    if isinstance(value, (list, tuple)):
        return ", ".join(render_value(name, v) for v in value)
    return str(value)


# ---------------------------------------------------------------- key list


@dataclasses.dataclass(frozen=True, slots=True)
class KeyRow:
    uid: str
    names: tuple[str, ...]
    object_type: str
    algorithm: str
    length: int | None
    state: str
    owner: str
    tenant: str
    created: str
    activation: str
    deactivation: str
    next_rotation: str


def _effective(state: int, attrs: AttributeSet, now: int) -> int:
    return lifecycle.effective_state(
        state, _seconds(attrs.first("Activation Date")), _seconds(attrs.first("Deactivation Date")), now
    )


def next_rotation(attrs: AttributeSet) -> int | None:
    """When the key is due for rotation (kmip_server/rotation/lineage.py's rule), if it rotates."""
    interval = attrs.first("Rotate Interval")
    initial = _seconds(attrs.first("Initial Date"))
    if attrs.first("Rotate Automatic") is not True or not interval or initial is None or replaced(attrs):
        return None
    due = initial + int(interval)
    return max(due, _seconds(attrs.first("Activation Date")) or due)


def key_rows(
    session: Session,
    *,
    text: str = "",
    uid: str | None = None,
    object_type: int | None = None,
    state: int | None = None,
    limit: int = 200,
) -> tuple[list[KeyRow], bool]:
    """The objects matching the filters, newest first, and whether there were more than ``limit``.
    ``text`` matches a Name (case-insensitive substring) or the unique identifier; ``state`` the
    state the object is in now (its dates applied)."""
    now = int(time.time())
    statement = select(_o.uid, _o.object_type, _o.algorithm, _o.length, _o.state, _o.owner, _o.tenant, _o.created)
    if uid is not None:
        statement = statement.where(_o.uid == uid)
    if object_type is not None:
        statement = statement.where(_o.object_type == object_type)
    if text:
        named = select(_a.uid).where(
            _a.name == "Name",
            _a.text_value.isnot(None),
            func.lower(_a.text_value).contains(text.lower(), autoescape=True),
        )
        statement = statement.where((_o.uid == text) | _o.uid.in_(named))
    statement = statement.order_by(_o.sequence.desc())
    rows: list[KeyRow] = []
    more = False
    # States are filtered after the dates are applied: read in pages until the page is full.
    offset, page = 0, 500
    while not more:
        found = session.connection.execute(statement.limit(page).offset(offset)).all()
        for found_uid, kind, algorithm, length, stored, owner, tenant, created in found:
            attrs = AttributeSet(session.get_attributes(found_uid, _LISTED))
            current = _effective(stored, attrs, now)
            if state is not None and current != state:
                continue
            if len(rows) == limit:
                more = True
                break
            names = tuple(str(attr.value.value) for _, attr in attrs.instances("Name") if hasattr(attr.value, "value"))
            rows.append(
                KeyRow(
                    found_uid,
                    names,
                    type_name(kind),
                    algorithm_name(algorithm),
                    length,
                    lifecycle.state_name(current),
                    owner,
                    tenant,
                    when(created),
                    when(_seconds(attrs.first("Activation Date"))),
                    when(_seconds(attrs.first("Deactivation Date"))),
                    when(next_rotation(attrs)),
                )
            )
        if len(found) < page:
            break
        offset += page
    return rows, more


# ---------------------------------------------------------------- one key


@dataclasses.dataclass(frozen=True, slots=True)
class KeyPage:
    uid: str
    row: KeyRow
    attributes: list[tuple[str, str]]  # (name, value as text), every instance
    links: list[tuple[str, str]]  # (link type, linked uid)
    timeline: list[tuple[str, str, bool]]  # (attribute, when, still to come)
    audit: list[AuditRecord]
    has_value: bool


def key_page(session: Session, uid: str, audit_limit: int = 200) -> KeyPage | None:
    record = session.get(uid, attributes=True)
    if record is None:
        return None
    now = int(time.time())
    attrs = AttributeSet(record.attributes)
    rows, _ = key_rows(session, uid=uid, limit=1)
    row = rows[0]
    listed: list[tuple[str, str]] = []
    links: list[tuple[str, str]] = []
    for name in sorted(attrs.names()):
        for _, attr in attrs.instances(name):
            listed.append((name, render_value(name, attr.value)))
            value = attr.value
            if name == "Link" and getattr(value, "linked_object_identifier", None):
                links.append((enum_name(LinkType, value.link_type), str(value.linked_object_identifier)))
    dated = [(name, _seconds(attrs.first(name))) for name in TIMELINE]
    order = {name: i for i, name in enumerate(TIMELINE)}
    timeline = [
        (name, when(at), at > now)
        for name, at in sorted(((n, a) for n, a in dated if a is not None), key=lambda d: (d[1], order[d[0]]))
    ]
    audit = search(session.connection, object_id=uid, limit=audit_limit)
    return KeyPage(uid, row, listed, links, timeline, audit, record.wrapped_value is not None)


# ---------------------------------------------------------------- overview


@dataclasses.dataclass(frozen=True, slots=True)
class Bar:
    label: str
    count: int
    x: float
    y: float
    width: float
    height: float


@dataclasses.dataclass(frozen=True, slots=True)
class Chart:
    title: str
    bars: list[Bar]
    width: int
    height: int
    top: int  # the largest count


def chart(title: str, days: list[tuple[str, int]], width: int = 720, height: int = 160) -> Chart:
    """A bar chart of ``days`` (label, count), laid out here so the page is plain SVG."""
    top = max((count for _, count in days), default=0)
    slot = width / max(len(days), 1)
    bars = []
    for i, (label, count) in enumerate(days):
        bar_height = 0.0 if top == 0 else (height - 20) * count / top
        bars.append(Bar(label, count, i * slot + 1, height - 16 - bar_height, max(slot - 2, 1), bar_height))
    return Chart(title, bars, width, height, top)


def _per_day(conn: Connection, column: Any, scale: int, since_day: int, days: int) -> list[tuple[str, int]]:
    day = (column // (DAY * scale)).label("day")
    counted: dict[int, int] = dict(
        conn.execute(select(day, func.count()).where(column >= since_day * DAY * scale).group_by(day)).all()
    )
    return [
        (datetime.fromtimestamp((since_day + i) * DAY, UTC).strftime("%m-%d"), int(counted.get(since_day + i, 0)))
        for i in range(days)
    ]


@dataclasses.dataclass(frozen=True, slots=True)
class Overview:
    total: int
    by_state: list[tuple[str, int]]
    by_type: list[tuple[str, int]]
    by_algorithm: list[tuple[str, int]]
    created: Chart
    used: Chart
    due: list[tuple[str, str, str]]  # (uid, owner, due since)
    failures: list[AuditRecord]


def _counts(conn: Connection, column: Any, name: Any) -> list[tuple[str, int]]:
    rows = conn.execute(select(column, func.count()).group_by(column)).all()
    return sorted(((name(value), int(count)) for value, count in rows), key=lambda r: -r[1])


def overview(session: Session, days: int = 30) -> Overview:
    conn = session.connection
    now = int(time.time())
    since = now // DAY - days + 1
    total = int(conn.execute(select(func.count()).select_from(managed_objects)).scalar() or 0)
    due = [(d.uid, d.owner, when(d.due_since)) for d in rotation_store.due_keys(conn, now, 20)]
    failed = (
        select(audit_records).where(audit_records.c.result != "Success").order_by(audit_records.c.seq.desc()).limit(20)
    )
    return Overview(
        total,
        _counts(conn, _o.state, lifecycle.state_name),
        _counts(conn, _o.object_type, type_name),
        _counts(conn, _o.algorithm, algorithm_name),
        chart(f"Objects created per day (last {days} days)", _per_day(conn, _o.created, 1, since, days)),
        chart(
            f"Operations per day in the audit trail (last {days} days)",
            _per_day(conn, audit_records.c.time_us, 1_000_000, since, days),
        ),
        due,
        [row_to_record(row) for row in conn.execute(failed)],
    )


def record_line(record: AuditRecord) -> dict[str, Any]:
    """An audit record as a table row."""
    return {
        "seq": record.seq,
        "time": when(record.time),
        "identity": record.identity,
        "address": record.address or "-",
        "operation": record.operation,
        "objects": list(record.object_ids),
        "result": record.result,
        "reason": record.reason or "",
        "attributes": ", ".join(record.attributes),
        "detail": record.detail or "",
        "ok": record.result == "Success",
    }


def record_lines(records: Iterable[AuditRecord]) -> list[dict[str, Any]]:
    return [record_line(r) for r in records]
