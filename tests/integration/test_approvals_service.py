"""The approval service on real stores (SQLite and PostgreSQL) and the SoftHSM2 token: the
rules of M-of-N approval, expiry, and what each step leaves for the audit trail."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from kmip_client.protocol.spec.enums import Operation
from kmip_server.approvals import APPROVED, ApprovalError, ApprovalService, Step, approval_needed_error
from kmip_server.approvals.store import approval_requests, approval_votes
from kmip_server.custody import Pkcs11Custody
from kmip_server.storage.repository import Repository

NOW = 1_900_000_000
ACV = bytes(range(16))
PAYLOAD = b"\x42\x00\x79\x01" + b"secret-looking payload bytes"


@dataclasses.dataclass(frozen=True)
class Rule:
    name: str = "destroy-needs-two"
    required: int = 2
    approvers: frozenset[str] = frozenset({"alice", "bob", "carol"})
    expires_after: int = 3600


@pytest.fixture
def repo(store_url: str) -> Iterator[Repository]:
    repository = Repository(store_url)
    repository.create_schema()
    yield repository
    repository.dispose()


@pytest.fixture
def service(custody: Pkcs11Custody) -> ApprovalService:
    return ApprovalService(custody)


def submit(repo: Repository, service: ApprovalService, acv: bytes = ACV, rule: Rule | None = None) -> str:
    with repo.write() as s:
        return service.submit(
            s,
            correlation_value=acv,
            requester="dave",
            tenant="default",
            version=(2, 1),
            operation=int(Operation.DESTROY),
            payload=PAYLOAD,
            object_ids=("uid-1",),
            rule=rule or Rule(),
            now=NOW,
        )


def vote(repo: Repository, service: ApprovalService, who: str, *, deny: bool = False, at: int = NOW + 10) -> list[Step]:
    steps: list[Step] = []
    with repo.write() as s:
        (service.deny if deny else service.approve)(s, ACV.hex(), who, at, steps)
    return steps


def poll(repo: Repository, service: ApprovalService, who: str = "dave", at: int = NOW + 20, tenant: str = "default"):  # type: ignore[no-untyped-def]
    with repo.write() as s:
        return service.poll(s, ACV, who, tenant, at)


def test_two_of_three_approve_then_the_poll_gets_the_payload(repo: Repository, service: ApprovalService) -> None:
    assert submit(repo, service) == ACV.hex()
    assert poll(repo, service).request.status == "pending"
    assert poll(repo, service).payload is None
    steps = vote(repo, service, "alice")
    assert steps == [
        Step(
            "Approve",
            "alice",
            ACV.hex(),
            ("uid-1",),
            "Success",
            None,
            f"request {ACV.hex()} (Destroy) approved by alice (1 of 2)",
        )
    ]
    assert poll(repo, service).request.status == "pending"
    vote(repo, service, "carol")
    polled = poll(repo, service)
    assert polled.request.status == APPROVED
    assert polled.request.approved_by == ("alice", "carol")
    assert polled.payload == PAYLOAD
    with repo.write() as s:
        service.complete(s, ACV.hex(), NOW + 30, "Success")
    with pytest.raises(ApprovalError) as caught:
        poll(repo, service)
    assert caught.value.kind == ApprovalError.UNKNOWN
    with repo.read() as s:
        shown = service.show(s, ACV.hex(), None, NOW + 40)
    assert (shown.status, shown.outcome) == ("done", "Success")


def test_the_payload_is_sealed_in_the_store(repo: Repository, service: ApprovalService) -> None:
    submit(repo, service)
    with repo.read() as s:
        sealed = s.connection.execute(select(approval_requests.c.sealed_payload)).scalar_one()
    assert PAYLOAD not in sealed and b"secret-looking" not in sealed
    assert service.custody.unwrap(sealed, b"strongroom approval request " + ACV.hex().encode()) == PAYLOAD


def test_the_requester_may_not_approve_their_own_request(repo: Repository, service: ApprovalService) -> None:
    submit(repo, service, rule=Rule(approvers=frozenset({"alice", "dave"})))
    steps: list[Step] = []
    with repo.write() as s, pytest.raises(ApprovalError, match="'dave' made request .* may not approve") as caught:
        service.approve(s, ACV.hex(), "dave", NOW + 1, steps)
    assert caught.value.kind == ApprovalError.REFUSED
    assert [(st.operation, st.identity, st.result, st.reason) for st in steps] == [
        ("Approve", "dave", "Operation Failed", "Permission Denied")
    ]


def test_wrong_approver_and_second_vote_are_refused(repo: Repository, service: ApprovalService) -> None:
    submit(repo, service)
    with repo.write() as s, pytest.raises(ApprovalError, match="'mallory' is not an approver"):
        service.approve(s, ACV.hex(), "mallory", NOW + 1)
    vote(repo, service, "bob")
    with repo.write() as s, pytest.raises(ApprovalError, match="'bob' has already voted"):
        service.approve(s, ACV.hex(), "bob", NOW + 2)
    with repo.read() as s:
        assert s.connection.execute(select(approval_votes.c.approver)).scalars().all() == ["bob"]
    assert poll(repo, service).request.status == "pending"  # one distinct approval of two


def test_one_deny_ends_the_request(repo: Repository, service: ApprovalService) -> None:
    submit(repo, service)
    vote(repo, service, "alice")
    steps = vote(repo, service, "bob", deny=True)
    assert steps[0].operation == "Deny" and steps[0].result == "Success"
    with pytest.raises(ApprovalError, match="denied by bob") as caught:
        poll(repo, service)
    assert caught.value.kind == ApprovalError.FINISHED
    with repo.write() as s, pytest.raises(ApprovalError, match="is denied"):
        service.approve(s, ACV.hex(), "carol", NOW + 30)


def test_only_the_requester_in_their_tenant_may_poll_or_cancel(repo: Repository, service: ApprovalService) -> None:
    submit(repo, service)
    for who, tenant in (("alice", "default"), ("dave", "other")):
        with pytest.raises(ApprovalError) as caught:
            poll(repo, service, who, tenant=tenant)
        assert caught.value.kind == ApprovalError.UNKNOWN
        with repo.write() as s, pytest.raises(ApprovalError):
            service.cancel(s, ACV, who, tenant, NOW + 1)
    assert poll(repo, service).request.status == "pending"


def test_cancel_withdraws_the_request(repo: Repository, service: ApprovalService) -> None:
    submit(repo, service)
    with repo.write() as s:
        assert service.cancel(s, ACV, "dave", "default", NOW + 5).status == "cancelled"
    with pytest.raises(ApprovalError) as caught:
        poll(repo, service)
    assert caught.value.kind == ApprovalError.UNKNOWN
    with repo.write() as s, pytest.raises(ApprovalError, match="is cancelled"):
        service.approve(s, ACV.hex(), "alice", NOW + 6)
    with repo.read() as s:
        assert service.list(s, None, NOW + 6) == []


def test_expiry(repo: Repository, service: ApprovalService) -> None:
    submit(repo, service, rule=Rule(expires_after=60))
    vote(repo, service, "alice")
    with pytest.raises(ApprovalError, match="expired") as caught:
        poll(repo, service, at=NOW + 61)
    assert caught.value.kind == ApprovalError.FINISHED
    with repo.read() as s:
        assert service.show(s, ACV.hex(), "alice", NOW + 61).status == "expired"
    steps: list[Step] = []
    with repo.write() as s, pytest.raises(ApprovalError, match="is expired"):
        service.approve(s, ACV.hex(), "bob", NOW + 61, steps)
    assert [st.operation for st in steps] == ["Expire", "Approve"]
    with repo.read() as s:
        assert s.connection.execute(select(approval_requests.c.state)).scalar_one() == "expired"
        assert service.list(s, None, NOW + 61) == []
        assert [r.status for r in service.list(s, None, NOW + 61, finished=True)] == ["expired"]
    # Finished requests are deleted a week later.
    with repo.write() as s:
        service.expire(s, NOW + 61 + 8 * 86400)
    with repo.read() as s:
        assert s.connection.execute(select(approval_requests.c.id)).all() == []
        assert s.connection.execute(select(approval_votes.c.approver)).all() == []


def test_list_shows_what_a_viewer_made_or_may_approve(repo: Repository, service: ApprovalService) -> None:
    submit(repo, service)
    submit(repo, service, acv=b"\x01" * 16, rule=Rule(name="other", approvers=frozenset({"erin"})))
    with repo.read() as s:
        assert [r.id for r in service.list(s, "alice", NOW)] == [ACV.hex()]
        assert [r.id for r in service.list(s, "erin", NOW)] == ["01" * 16]
        assert len(service.list(s, "dave", NOW)) == 2
        assert service.list(s, "mallory", NOW) == []
        with pytest.raises(ApprovalError):
            service.show(s, ACV.hex(), "erin", NOW)
        shown = service.show(s, ACV.hex().upper(), "alice", NOW).to_json()
    assert shown["operation"] == "Destroy" and shown["object_ids"] == ["uid-1"] and shown["version"] == "2.1"
    assert shown["approvers"] == ["alice", "bob", "carol"] and "payload" not in str(shown)


def test_the_refusal_without_the_asynchronous_indicator_says_what_is_needed() -> None:
    error = approval_needed_error(Rule(), "Destroy")
    assert error.reason.name == "PERMISSION_DENIED"
    assert "2 approval(s) from alice, bob, carol" in error.message and "Asynchronous Indicator" in error.message
