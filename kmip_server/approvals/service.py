"""M-of-N approval of held requests: submit, approve, deny, list, show, poll, cancel, expire.

The dispatcher holds a batch item the policy marks as needing approval (a Decision with an
ApprovalRule) and, when the client allowed asynchronous answers, calls :meth:`submit` in the
write transaction that ends the message; the client gets Operation Pending and the
Asynchronous Correlation Value, whose hex is the request's id. Approvers vote through
``strongroom approvals`` or the HTTPS approvals endpoint; the requester's Poll runs the
request once ``required`` distinct approvers, each named by the rule and none the requester,
have approved (kmip_server/operations/asynchronous.py). One deny ends a request.

Every step is auditable: the methods that act for an approver append a :class:`Step` to the
``steps`` list they are given, refusals included, so that the caller records them in the same
transaction (``Step.audit_event``). The KMIP steps (the held item, Poll, Cancel) are recorded
by the dispatcher like any batch item.

Requests expire ``expires_after`` seconds after they were made: from then on every view of
them says "expired" whatever their row says, and :meth:`expire` (run by the writers here)
records it. Finished requests are deleted ``keep_finished`` seconds after they finished.
"""

from __future__ import annotations

import builtins
import dataclasses
import hmac
from collections.abc import Collection, Sequence
from typing import Any, Protocol, TypeAlias

from kmip_client.protocol.errors import KmipError, PermissionDenied
from kmip_client.protocol.spec.enums import ResultReason

from ..custody import KeyCustody
from ..policy.facts import operation_name
from . import store
from .store import APPROVE, CANCELLED, DENIED, DENY, DONE, EXPIRED, PENDING, StoredRequest

#: The extra state views report: pending with enough approvals, waiting for the requester's Poll.
APPROVED = "approved"
KEEP_FINISHED = 7 * 86400



class Rule(Protocol):
    """What the service needs of the policy's ApprovalRule (kmip_server.policy.facts)."""

    @property
    def name(self) -> str: ...
    @property
    def required(self) -> int: ...
    @property
    def approvers(self) -> Collection[str]: ...
    @property
    def expires_after(self) -> int: ...


class ApprovalError(Exception):
    """A refused approval step; ``kind`` is one of the class constants, ``message`` says why."""

    UNKNOWN = "unknown"  # no such request, or one the viewer may not see
    REFUSED = "refused"  # the viewer may not take this step
    FINISHED = "finished"  # the request is no longer pending (denied, cancelled, done, expired)

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind


@dataclasses.dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """A held request as approvers and requesters see it (never its payload)."""

    id: str
    requester: str
    tenant: str
    version: tuple[int, int]
    operation: str  # the spec's name: "Destroy"
    object_ids: tuple[str, ...]
    rule: str
    required: int
    approvers: tuple[str, ...]
    created: int
    expires: int
    status: str  # pending | approved | denied | cancelled | done | expired
    approved_by: tuple[str, ...]
    denied_by: str | None
    outcome: str | None

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["version"] = f"{self.version[0]}.{self.version[1]}"
        data["object_ids"] = list(self.object_ids)
        data["approvers"] = list(self.approvers)
        data["approved_by"] = list(self.approved_by)
        return data


@dataclasses.dataclass(frozen=True, slots=True)
class Step:
    """One auditable step taken by an approver (or by time: Expire)."""

    operation: str  # "Approve" | "Deny" | "Expire"
    identity: str
    request_id: str
    object_ids: tuple[str, ...]
    result: str  # "Success" | "Operation Failed"
    reason: str | None  # "Permission Denied", "Item Not Found" ...
    detail: str

    def audit_event(self, *, time: float, node: str, address: str | None = None, fingerprint: str | None = None) -> Any:
        """This step as a record of the audit trail (kmip_server.audit.AuditEvent)."""
        from ..audit import AuditEvent

        return AuditEvent(
            time=time,
            node=node,
            identity=self.identity,
            address=address,
            fingerprint=fingerprint,
            operation=self.operation,
            object_ids=self.object_ids,
            attributes=(),
            result=self.result,
            reason=self.reason,
            detail=self.detail,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Polled:
    """What the requester's Poll finds: still pending, or approved with the payload to run."""

    request: ApprovalRequest
    payload: bytes | None = dataclasses.field(default=None, repr=False)  # set when approved
    operation: int | None = None  # the held item's Operation, set with the payload


#: Where a method appends the auditable steps it took (None: not recorded).
Steps: TypeAlias = "builtins.list[Step] | None"


def approval_needed_error(rule: Rule, operation: str) -> KmipError:
    """The refusal for an item that needs approval from a client that did not allow
    asynchronous answers."""
    return PermissionDenied(
        f"{operation} needs {rule.required} approval(s) from {', '.join(sorted(rule.approvers))} "
        f"(policy rule {rule.name!r}): send it with the Asynchronous Indicator set and Poll for the result"
    )


class ApprovalService:
    """The approval requests of one store; ``custody`` seals the held payloads."""

    def __init__(self, custody: KeyCustody, *, keep_finished: int = KEEP_FINISHED) -> None:
        self.custody = custody
        self.keep_finished = keep_finished

    # ------------------------------------------------------------------ the requester (KMIP)

    def submit(
        self,
        session: Any,
        *,
        correlation_value: bytes,
        requester: str,
        tenant: str,
        version: tuple[int, int],
        operation: int,
        payload: bytes,
        object_ids: Sequence[str],
        rule: Rule,
        now: int,
    ) -> str:
        """Hold the batch item (``payload``: its encoded Request Payload) for approval; its id."""
        request_id = correlation_value.hex()
        conn = session.connection
        self._sweep(conn, now, None)
        store.insert_request(
            conn,
            StoredRequest(
                id=request_id,
                requester=requester,
                tenant=tenant,
                version=(int(version[0]), int(version[1])),
                operation=int(operation),
                object_ids=tuple(object_ids),
                sealed_payload=self.custody.wrap(payload, _aad(request_id)),
                rule=rule.name,
                required=int(rule.required),
                approvers=tuple(sorted(rule.approvers)),
                created=int(now),
                expires=int(now) + int(rule.expires_after),
                state=PENDING,
            ),
        )
        return request_id

    def poll(self, session: Any, correlation_value: bytes, requester: str, tenant: str, now: int) -> Polled:
        """The requester's request: pending, or approved with its payload. Raises
        ApprovalError: UNKNOWN (no such request, someone else's, cancelled or already run),
        FINISHED (denied or expired; the message says which)."""
        row = self._own(session, correlation_value, requester, tenant, for_update=True)
        view = _view(row, now)
        if view.status == DENIED:
            raise ApprovalError(f"request {row.id} was denied by {view.denied_by}", ApprovalError.FINISHED)
        if view.status == EXPIRED:
            raise ApprovalError(
                f"request {row.id} expired at {view.expires} without {row.required} approval(s)", ApprovalError.FINISHED
            )
        if view.status == APPROVED:
            return Polled(view, self.custody.unwrap(row.sealed_payload, _aad(row.id)), row.operation)
        return Polled(view)

    def find_held(
        self,
        session: Any,
        *,
        requester: str,
        tenant: str,
        version: tuple[int, int],
        operation: int,
        payload: bytes,
        now: int,
    ) -> ApprovalRequest | None:
        """The requester's pending (or approved) request holding exactly ``payload`` for
        ``operation``, if there is one: a command told to wait for approval asks for the same
        thing again by Polling that request, not by making a second one (``strongroom byok``)."""
        for row in store.listed(session.connection, states=(PENDING,), viewer=requester):
            same = (row.requester, row.tenant, row.version, row.operation) == (
                requester,
                tenant,
                (int(version[0]), int(version[1])),
                int(operation),
            )
            if not same or _view(row, now).status not in (PENDING, APPROVED):
                continue
            if hmac.compare_digest(self.custody.unwrap(row.sealed_payload, _aad(row.id)), payload):
                return _view(row, now)
        return None

    def complete(self, session: Any, request_id: str, now: int, outcome: str) -> None:
        """Record that the approved request ran (``outcome``: its Result Status, or Reason)."""
        store.finish(session.connection, request_id, DONE, now, outcome)

    def cancel(self, session: Any, correlation_value: bytes, requester: str, tenant: str, now: int) -> ApprovalRequest:
        """Withdraw the requester's request; it as it now stands: "cancelled", or its final
        status ("done", "denied", "expired") when it was no longer pending. Raises
        ApprovalError UNKNOWN as :meth:`poll` (a request already cancelled included)."""
        row = self._own(session, correlation_value, requester, tenant, for_update=True, finished_ok=True)
        view = _view(row, now)
        if view.status in (PENDING, APPROVED):
            outcome = "cancelled by the requester"
            store.finish(session.connection, row.id, CANCELLED, now, outcome)
            return dataclasses.replace(view, status=CANCELLED, outcome=outcome)
        return view

    # ------------------------------------------------------------------ approvers

    def approve(self, session: Any, request_id: str, approver: str, now: int, steps: Steps = None) -> ApprovalRequest:
        """``approver`` approves request ``request_id``; the request as it now stands."""
        return self._vote(session, request_id, approver, now, APPROVE, steps)

    def deny(self, session: Any, request_id: str, approver: str, now: int, steps: Steps = None) -> ApprovalRequest:
        """``approver`` denies request ``request_id``: it will not run."""
        return self._vote(session, request_id, approver, now, DENY, steps)

    def list(
        self,
        session: Any,
        viewer: str | None,
        now: int,
        *,
        finished: bool = False,
        steps: Steps = None,
    ) -> builtins.list[ApprovalRequest]:
        """The pending requests (with ``finished``, all kept ones) that ``viewer`` made or may
        approve (None: everyone's). In a write session, expired ones are recorded first."""
        conn = session.connection
        if session.writable:
            self._sweep(conn, now, steps)
        rows = store.listed(conn, states=None if finished else (PENDING,), viewer=viewer)
        views = [_view(row, now) for row in rows]
        return views if finished else [v for v in views if v.status in (PENDING, APPROVED)]

    def show(self, session: Any, request_id: str, viewer: str | None, now: int) -> ApprovalRequest:
        """One request, if ``viewer`` made it or is one of its approvers (None: anyone)."""
        row = store.load(session.connection, _normal_id(request_id))
        if row is None or (viewer is not None and viewer != row.requester and viewer not in row.approvers):
            raise ApprovalError(f"no approval request {request_id!r}", ApprovalError.UNKNOWN)
        return _view(row, now)

    def expire(self, session: Any, now: int, steps: Steps = None) -> builtins.list[str]:
        """Mark the pending requests past their expiry as expired and drop long-finished ones;
        the ids of those that expired now."""
        return self._sweep(session.connection, now, steps)

    # ------------------------------------------------------------------ internals

    def _own(
        self,
        session: Any,
        correlation_value: bytes,
        requester: str,
        tenant: str,
        *,
        for_update: bool,
        finished_ok: bool = False,
    ) -> StoredRequest:
        row = store.load(session.connection, bytes(correlation_value).hex(), for_update=for_update)
        # Someone else's request is answered as a missing one: a correlation value says nothing
        # about the requests of others.
        gone = row is None or row.requester != requester or row.tenant != tenant or row.state == CANCELLED
        if gone or (row is not None and row.state == DONE and not finished_ok):
            raise ApprovalError("no pending request with this Asynchronous Correlation Value", ApprovalError.UNKNOWN)
        assert row is not None
        return row

    def _vote(
        self, session: Any, request_id: str, approver: str, now: int, verdict: str, steps: Steps
    ) -> ApprovalRequest:
        conn = session.connection
        request_id = _normal_id(request_id)
        operation = "Approve" if verdict == APPROVE else "Deny"
        row = store.load(conn, request_id, for_update=True)

        def refuse(message: str, kind: str, reason: str) -> ApprovalError:
            if steps is not None:
                ids = row.object_ids if row is not None else ()
                steps.append(Step(operation, approver, request_id, ids, "Operation Failed", reason, message))
            return ApprovalError(message, kind)

        if row is None:
            raise refuse(f"no approval request {request_id!r}", ApprovalError.UNKNOWN, "Item Not Found")
        view = _view(row, now)
        if view.status == EXPIRED and row.state == PENDING:
            self._sweep(conn, now, steps)
        if view.status not in (PENDING, APPROVED):
            raise refuse(f"request {request_id} is {view.status}", ApprovalError.FINISHED, "Wrong Key Lifecycle State")
        if approver == row.requester:
            raise refuse(
                f"{approver!r} made request {request_id} and may not approve or deny it",
                ApprovalError.REFUSED,
                "Permission Denied",
            )
        if approver not in row.approvers:
            raise refuse(
                f"{approver!r} is not an approver of request {request_id} (rule {row.rule!r}: "
                f"{', '.join(row.approvers)})",
                ApprovalError.REFUSED,
                "Permission Denied",
            )
        if any(vote.approver == approver for vote in row.votes):
            raise refuse(
                f"{approver!r} has already voted on request {request_id}", ApprovalError.REFUSED, "Permission Denied"
            )
        store.add_vote(conn, request_id, approver, verdict, now)
        if verdict == DENY:
            store.finish(conn, request_id, DENIED, now, f"denied by {approver}")
        updated = store.load(conn, request_id)
        assert updated is not None
        result = _view(updated, now)
        if steps is not None:
            tally = f"{len(result.approved_by)} of {row.required}"
            detail = (
                f"request {request_id} ({result.operation}) denied"
                if verdict == DENY
                else f"request {request_id} ({result.operation}) approved by {','.join(result.approved_by)} ({tally})"
            )
            steps.append(Step(operation, approver, request_id, row.object_ids, "Success", None, detail))
        return result

    def _sweep(self, conn: Any, now: int, steps: Steps) -> builtins.list[str]:
        expired = store.expired_pending(conn, now)
        for request_id in expired:
            store.finish(conn, request_id, EXPIRED, now, "expired")
            if steps is not None:
                row = store.load(conn, request_id)
                ids = row.object_ids if row is not None else ()
                detail = f"request {request_id} expired without enough approvals"
                steps.append(Step("Expire", "(approvals)", request_id, ids, "Operation Failed", None, detail))
        store.purge_finished(conn, now - self.keep_finished)
        return expired


def _aad(request_id: str) -> bytes:
    return b"strongroom approval request " + request_id.encode()


def _normal_id(request_id: str) -> str:
    return request_id.strip().lower()


def _view(row: StoredRequest, now: int) -> ApprovalRequest:
    approved_by = tuple(v.approver for v in row.votes if v.verdict == APPROVE)
    denied_by = next((v.approver for v in row.votes if v.verdict == DENY), None)
    status = row.state
    if status == PENDING:
        if now > row.expires:
            status = EXPIRED
        elif len(approved_by) >= row.required:
            status = APPROVED
    return ApprovalRequest(
        id=row.id,
        requester=row.requester,
        tenant=row.tenant,
        version=row.version,
        operation=operation_name(row.operation),
        object_ids=row.object_ids,
        rule=row.rule,
        required=row.required,
        approvers=row.approvers,
        created=row.created,
        expires=row.expires,
        status=status,
        approved_by=approved_by,
        denied_by=denied_by,
        outcome=row.outcome,
    )


def unknown_reason(v2: bool) -> ResultReason:
    """The Result Reason of a Poll of an unknown correlation value (2.x has its own)."""
    return ResultReason.INVALID_ASYNCHRONOUS_CORRELATION_VALUE if v2 else ResultReason.ITEM_NOT_FOUND


__all__ = [
    "APPROVED",
    "ApprovalError",
    "ApprovalRequest",
    "ApprovalService",
    "Polled",
    "Rule",
    "Step",
    "approval_needed_error",
    "operation_name",
    "unknown_reason",
]
