"""The tables of requests held for M-of-N approval, and the SQL that reads and changes them.

``approval_requests``: one row per request answered with Operation Pending. Its id is the
Asynchronous Correlation Value in hex. The stored batch item's payload is sealed by custody
(AES-GCM under the HSM master key, the request id as authenticated data): a held Register or
Import carries key material, which the database must never see in the clear.

``approval_votes``: one row per approver and request (their primary key is what makes "not
twice" hold when two approvers' votes race), approve or deny.

Both are declared on the storage schema's MetaData, so ``create_schema`` makes them once this
module is imported (kmip_server/approvals/__init__.py imports it).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    Table,
    Text,
    delete,
    insert,
    or_,
    select,
    update,
)

from ..storage.schema import metadata

#: The states a request's row records. "approved" is not one: a pending request with enough
#: approvals is approved, and runs (becoming "done") at its requester's next Poll.
PENDING, DENIED, CANCELLED, DONE, EXPIRED = "pending", "denied", "cancelled", "done", "expired"
APPROVE, DENY = "approve", "deny"

approval_requests = Table(
    "approval_requests",
    metadata,
    Column("id", Text, primary_key=True),  # the Asynchronous Correlation Value, hex
    Column("requester", Text, nullable=False),
    Column("tenant", Text, nullable=False),
    Column("version", Text, nullable=False),  # "2.1": the protocol version of the request
    Column("operation", Integer, nullable=False),
    Column("object_ids", Text, nullable=False),  # JSON list
    Column("sealed_payload", LargeBinary, nullable=False),
    Column("rule", Text, nullable=False),
    Column("required", Integer, nullable=False),
    Column("approvers", Text, nullable=False),  # JSON list, sorted
    Column("created", BigInteger, nullable=False),
    Column("expires", BigInteger, nullable=False),
    Column("state", Text, nullable=False),
    Column("finished", BigInteger, nullable=True),  # when it left "pending"
    Column("outcome", Text, nullable=True),  # what the run or the refusal said (no secrets)
)
Index("ix_approval_requests_state_expires", approval_requests.c.state, approval_requests.c.expires)

approval_votes = Table(
    "approval_votes",
    metadata,
    Column("request_id", Text, ForeignKey("approval_requests.id", ondelete="CASCADE"), nullable=False),
    Column("approver", Text, nullable=False),
    Column("verdict", Text, nullable=False),
    Column("time", BigInteger, nullable=False),
    PrimaryKeyConstraint("request_id", "approver"),
)


@dataclasses.dataclass(frozen=True, slots=True)
class Vote:
    approver: str
    verdict: str  # APPROVE | DENY
    time: int


@dataclasses.dataclass(frozen=True, slots=True)
class StoredRequest:
    """One row of ``approval_requests`` with its votes (the payload stays sealed)."""

    id: str
    requester: str
    tenant: str
    version: tuple[int, int]
    operation: int
    object_ids: tuple[str, ...]
    sealed_payload: bytes = dataclasses.field(repr=False)
    rule: str
    required: int
    approvers: tuple[str, ...]
    created: int
    expires: int
    state: str
    finished: int | None = None
    outcome: str | None = None
    votes: tuple[Vote, ...] = ()


def insert_request(conn: Connection, request: StoredRequest) -> None:
    conn.execute(
        insert(approval_requests).values(
            id=request.id,
            requester=request.requester,
            tenant=request.tenant,
            version=f"{request.version[0]}.{request.version[1]}",
            operation=request.operation,
            object_ids=json.dumps(list(request.object_ids)),
            sealed_payload=request.sealed_payload,
            rule=request.rule,
            required=request.required,
            approvers=json.dumps(sorted(request.approvers)),
            created=request.created,
            expires=request.expires,
            state=request.state,
        )
    )


def load(conn: Connection, request_id: str, *, for_update: bool = False) -> StoredRequest | None:
    """The request ``request_id`` with its votes, or None. ``for_update`` locks its row until
    the transaction ends (PostgreSQL; SQLite's writer holds the whole database), so two
    approvers, or an approval and a Poll, on two nodes take turns."""
    stmt = select(approval_requests).where(approval_requests.c.id == request_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).mappings().first()
    if row is None:
        return None
    return _request(row, _votes(conn, [request_id]).get(request_id, ()))


def listed(conn: Connection, *, states: Sequence[str] | None, viewer: str | None) -> list[StoredRequest]:
    """Requests in ``states`` (None: all), oldest first; with ``viewer``, only those they made
    or may approve (approvers are a JSON list, filtered here: the lists are short)."""
    stmt = select(approval_requests).order_by(approval_requests.c.created, approval_requests.c.id)
    if states is not None:
        stmt = stmt.where(approval_requests.c.state.in_(list(states)))
    if viewer is not None:
        # A cheap narrowing in SQL; the exact membership test follows.
        stmt = stmt.where(
            or_(approval_requests.c.requester == viewer, approval_requests.c.approvers.contains(json.dumps(viewer)))
        )
    rows = list(conn.execute(stmt).mappings())
    votes = _votes(conn, [row["id"] for row in rows])
    found = [_request(row, votes.get(row["id"], ())) for row in rows]
    if viewer is not None:
        found = [r for r in found if r.requester == viewer or viewer in r.approvers]
    return found


def add_vote(conn: Connection, request_id: str, approver: str, verdict: str, now: int) -> None:
    conn.execute(insert(approval_votes).values(request_id=request_id, approver=approver, verdict=verdict, time=now))


def finish(conn: Connection, request_id: str, state: str, now: int, outcome: str | None) -> None:
    """Move a request out of "pending" (the seal is dropped: nothing will run it again)."""
    conn.execute(
        update(approval_requests)
        .where(approval_requests.c.id == request_id)
        .values(state=state, finished=now, outcome=outcome, sealed_payload=b"")
    )


def expired_pending(conn: Connection, now: int) -> list[str]:
    """The ids of pending requests past their expiry."""
    stmt = select(approval_requests.c.id).where(approval_requests.c.state == PENDING, approval_requests.c.expires < now)
    return [row[0] for row in conn.execute(stmt)]


def purge_finished(conn: Connection, before: int) -> int:
    """Delete requests that finished before ``before`` (their votes go with them); how many."""
    ids = [
        row[0]
        for row in conn.execute(
            select(approval_requests.c.id).where(
                approval_requests.c.state != PENDING, approval_requests.c.finished < before
            )
        )
    ]
    if not ids:
        return 0
    # Explicitly: SQLite enforces ON DELETE CASCADE only with foreign keys switched on.
    conn.execute(delete(approval_votes).where(approval_votes.c.request_id.in_(ids)))
    conn.execute(delete(approval_requests).where(approval_requests.c.id.in_(ids)))
    return len(ids)


def _votes(conn: Connection, ids: list[str]) -> dict[str, tuple[Vote, ...]]:
    if not ids:
        return {}
    found: dict[str, list[Vote]] = {}
    stmt = (
        select(approval_votes)
        .where(approval_votes.c.request_id.in_(ids))
        .order_by(approval_votes.c.time, approval_votes.c.approver)
    )
    for row in conn.execute(stmt).mappings():
        found.setdefault(row["request_id"], []).append(Vote(row["approver"], row["verdict"], row["time"]))
    return {key: tuple(value) for key, value in found.items()}


def _request(row: object, votes: tuple[Vote, ...]) -> StoredRequest:
    values = dict(row)  # type: ignore[call-overload]
    major, minor = (int(part) for part in values["version"].split("."))
    return StoredRequest(
        id=values["id"],
        requester=values["requester"],
        tenant=values["tenant"],
        version=(major, minor),
        operation=values["operation"],
        object_ids=tuple(json.loads(values["object_ids"])),
        sealed_payload=bytes(values["sealed_payload"]),
        rule=values["rule"],
        required=values["required"],
        approvers=tuple(json.loads(values["approvers"])),
        created=values["created"],
        expires=values["expires"],
        state=values["state"],
        finished=values["finished"],
        outcome=values["outcome"],
        votes=votes,
    )
