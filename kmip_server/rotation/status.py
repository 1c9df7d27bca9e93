"""``strongroom rotation status``: what is due for rotation and what was rotated, read from the
store directly (no token, no server needed; the server may be running)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import inspect

from kmip_client.protocol.model.attributes import Name
from kmip_client.protocol.spec.enums import CryptographicAlgorithm, ObjectType

from ..objects.attribute_set import AttributeSet
from ..storage import rotation as store
from ..storage.repository import Repository, Session


@dataclasses.dataclass(frozen=True, slots=True)
class DueEntry:
    uid: str
    name: str
    algorithm: str
    object_type: str
    due_since: int


@dataclasses.dataclass(frozen=True, slots=True)
class RotationStatus:
    now: int
    due: list[DueEntry]
    more_due: bool  # more keys are due than listed
    recent: list[store.Rotation]
    lease: tuple[str, int] | None


def _describe(session: Session, key: store.DueKey) -> DueEntry:
    record = session.get(key.uid, attributes=False)
    names = AttributeSet(session.get_attributes(key.uid, ["Name"]))
    name = names.first("Name")
    algorithm = "-"
    if record is not None and record.algorithm is not None:
        try:
            algorithm = CryptographicAlgorithm(record.algorithm).name
        except ValueError:
            algorithm = f"0x{record.algorithm:08X}"
    kind = ObjectType(key.object_type).name.replace("_", " ").title()
    return DueEntry(key.uid, (name.value or "-") if isinstance(name, Name) else "-", algorithm, kind, key.due_since)


def read_status(url: str, now: int, *, due_limit: int = 100, recent_limit: int = 20) -> RotationStatus:
    """The rotation status of the store at ``url`` at ``now`` (POSIX seconds)."""
    repository = Repository(url, pool_size=1)
    try:
        with repository.read() as session:
            conn = session.connection
            due = store.due_keys(conn, now, due_limit + 1)
            entries = [_describe(session, key) for key in due[:due_limit]]
            # A store no server of schema version 4 has opened yet has no lease table.
            lease = store.lease(conn) if inspect(conn).has_table("rotation_lease") else None
            return RotationStatus(now, entries, len(due) > due_limit, store.recent_rotations(conn, recent_limit), lease)
    finally:
        repository.dispose()


def _when(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    return [
        "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]


def render(status: RotationStatus) -> str:
    """The status as ``strongroom rotation status`` prints it."""
    out = [f"Due for rotation at {_when(status.now)}: {len(status.due)}{' or more' if status.more_due else ''}"]
    if status.due:
        rows = [(e.uid, e.name, e.algorithm, e.object_type, _when(e.due_since)) for e in status.due]
        out += _table(("UNIQUE IDENTIFIER", "NAME", "ALGORITHM", "TYPE", "DUE SINCE"), rows)
    out.append(f"Rotated recently: {len(status.recent)}")
    if status.recent:
        recent = [(r.old_uid, "->", r.new_uid, _when(r.rotated)) for r in status.recent]
        out += _table(("OLD", "", "NEW", "WHEN"), recent)
    if status.lease is None:
        out.append("Rotating: none yet (no server of this version has opened the store)")
    elif status.lease[0] and status.lease[1] > status.now:
        out.append(f"Rotating: {status.lease[0]} (its lease runs until {_when(status.lease[1])})")
    else:
        out.append("Rotating: no server process holds the rotation lease now")
    return "\n".join(out) + "\n"
