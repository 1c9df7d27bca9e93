"""The approvers' side of M-of-N approval, shared by ``strongroom approvals`` and the HTTPS
approvals route (kmip_client.ApprovalsClient): list, show, approve, deny, each as an identity
the access policy maps.

Approve and deny need the approver role in the policy; the service then checks that the
request's rule names the approver and that they did not make the request. Every approve and
deny, refused ones included, is a record of the audit trail in the transaction that records
the vote (a refused vote changes nothing else).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..audit import AuditTrail
from ..engine.identity import ClientIdentity
from ..policy import Policy
from ..storage.repository import Repository
from .service import ApprovalError, ApprovalRequest, ApprovalService, Step

ACTIONS = ("list", "show", "approve", "deny")


class ApprovalDesk:
    def __init__(
        self,
        repository: Repository,
        service: ApprovalService,
        policy: Policy,
        trail: AuditTrail,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.repository = repository
        self.service = service
        self.policy = policy
        self.trail = trail
        self.clock = clock

    def act(
        self, identity: ClientIdentity, action: str, request_id: str | None, *, finished: bool = False
    ) -> list[ApprovalRequest]:
        """Run ``action``; the requests it shows. Raises ApprovalError when refused."""
        principal = self.policy.principal(identity)
        name = principal.name
        now = int(self.clock())
        if action == "list":
            with self.repository.read() as session:
                return self.service.list(session, name, now, finished=finished)
        if request_id is None:
            raise ApprovalError(f"{action} needs a request id", ApprovalError.UNKNOWN)
        if action == "show":
            with self.repository.read() as session:
                return [self.service.show(session, request_id, name, now)]
        if action not in ("approve", "deny"):
            raise ApprovalError(f"unknown action {action!r}", ApprovalError.REFUSED)
        operation = "Approve" if action == "approve" else "Deny"
        steps: list[Step] = []
        refused: ApprovalError | None = None
        request = None
        with self.repository.write() as session:
            try:
                if not self.policy.is_approver(principal):
                    message = f"{name!r} does not have the approver role in the access policy"
                    steps.append(
                        Step(operation, name, request_id, (), "Operation Failed", "Permission Denied", message)
                    )
                    raise ApprovalError(message, ApprovalError.REFUSED)
                vote = self.service.approve if action == "approve" else self.service.deny
                request = vote(session, request_id, name, now, steps)
            except ApprovalError as exc:
                refused = exc
            events = [
                step.audit_event(
                    time=now, node=self.trail.node, address=identity.address, fingerprint=identity.fingerprint
                )
                for step in steps
            ]
            self.trail.append(session.connection, events)
        if refused is not None:
            raise refused
        assert request is not None
        return [request]
