"""What /readyz, /metrics and ``strongroom status`` report: the worker's view of the server.

Readiness: the token is logged in and its audit key usable (one HMAC on the token), the
database answers, its schema is the one this software writes, and every worker accepts
connections. Each check says what failed, in words fit for a log (no secrets: database errors
carry no parameters, custody errors no key material).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from kmip_client.protocol.spec.enums import ObjectType, State

from ..audit.records import audit_head
from ..engine.items import describe
from ..storage import rotation as rotation_store
from ..storage.schema import SCHEMA_VERSION, managed_objects, object_attributes, schema_version
from .dashboard.data import enum_name

if TYPE_CHECKING:
    from ..engine.dispatcher import Dispatcher
    from ..transport.balance import ConnectionTable

_PROBE = b"strongroom readiness probe"
_MOST_DUE = 10_000  # a scrape counts due keys up to this (the query reads each)


@dataclasses.dataclass
class ServerView:
    """What one worker knows of the server: its engine, the shared connection table (None
    with one worker), how many workers there should be, and when the server started."""

    dispatcher: Dispatcher
    table: ConnectionTable | None
    workers: int
    started: float = dataclasses.field(default_factory=time.time)  # the supervisor's start
    # This worker's own open connections: with one worker there is no shared table to read.
    own_connections: Callable[[], int] = lambda: 0

    def connections(self) -> list[int | None]:
        """Open connections per worker, None for a worker not accepting."""
        if self.table is None:
            return [self.own_connections()]
        return self.table.accepting()


def _check(probe: Callable[[], dict[str, Any] | None]) -> dict[str, Any]:
    try:
        found = probe() or {}
    except Exception as exc:  # noqa: BLE001 - any failure is what the check reports
        return {"ok": False, "error": describe(exc)}
    return {"ok": True, **found}


def readiness(view: ServerView) -> dict[str, Any]:
    """``{"ready": bool, "checks": {name: {"ok": bool, ...}}}``."""
    dispatcher = view.dispatcher

    def token() -> None:
        dispatcher.custody.audit_mac(_PROBE)

    def database() -> dict[str, Any]:
        with dispatcher.repository.read() as session:
            stored = session.connection.execute(select(schema_version.c.version)).scalar()
        if stored != SCHEMA_VERSION:
            raise RuntimeError(f"the schema is version {stored}, this server writes {SCHEMA_VERSION}")
        return {"schema_version": stored}

    def workers() -> dict[str, Any]:
        up = sum(count is not None for count in view.connections())
        if up < view.workers:
            raise RuntimeError(f"{view.workers - up} of {view.workers} workers are not accepting connections")
        return {"up": up}

    checks = {"token": _check(token), "database": _check(database), "workers": _check(workers)}
    return {"ready": all(check["ok"] for check in checks.values()), "checks": checks}


def liveness(view: ServerView) -> dict[str, Any]:
    return {"alive": True, "pid": os.getpid(), "uptime_seconds": round(time.time() - view.started, 3)}


def state_samples(view: ServerView) -> list[tuple[str, str, list[tuple[dict[str, str], float]]]]:
    """The gauges a scrape reads now: workers, connections, objects, approvals, the trail."""
    counts = view.connections()
    families: list[tuple[str, str, list[tuple[dict[str, str], float]]]] = [
        ("strongroom_workers_up", "Worker processes accepting connections", [({}, sum(c is not None for c in counts))]),
        (
            "strongroom_open_connections",
            "Open client connections, by worker",
            [({"worker": str(i)}, c) for i, c in enumerate(counts) if c is not None],
        ),
    ]
    from ..approvals.store import PENDING, approval_requests

    with view.dispatcher.repository.read() as session:
        conn = session.connection
        rows = conn.execute(
            select(managed_objects.c.object_type, managed_objects.c.state, func.count()).group_by(
                managed_objects.c.object_type, managed_objects.c.state
            )
        ).all()
        pending = conn.execute(select(func.count()).where(approval_requests.c.state == PENDING)).scalar() or 0
        records = conn.execute(select(audit_head.c.seq)).scalar() or 0
        due = len(rotation_store.due_keys(conn, int(time.time()), _MOST_DUE))
        rotated = conn.execute(select(func.count()).where(object_attributes.c.name == "Rotate Date")).scalar() or 0
    families.append(
        (
            "strongroom_objects",
            "Managed objects, by object type and stored state",
            [({"type": enum_name(ObjectType, t), "state": enum_name(State, s)}, n) for t, s, n in rows],
        )
    )
    families.append(("strongroom_pending_approvals", "Requests waiting for M-of-N approval", [({}, pending)]))
    families.append(("strongroom_audit_records", "Records in the audit trail", [({}, records)]))
    families.append(("strongroom_rotations_due", f"Keys due for rotation now (counted up to {_MOST_DUE})", [({}, due)]))
    families.append(("strongroom_rotations_done", "Keys replaced by a rotation or a Re-key", [({}, rotated)]))
    return families
