"""M-of-N approval end to end with the client library: a real ``strongroom serve`` (SoftHSM2;
SQLite, then PostgreSQL) on loopback with its KMIP and HTTPS ports, real mutual TLS, client certificates from
the data directory's CA, and an access policy whose approval rule makes Destroy of objects in
Object Group "root-keys" need 2 of carol, dave and erin (approver role).

The requester (alice) uses Client / AsyncClient: the refusal without the Asynchronous
Indicator, Operation Pending, Poll, Cancel, expiry. The approvers use ApprovalsClient over
HTTPS (the server's /approvals route and its ApprovalDesk): the wrong approver, the requester
approving her own request, a second vote, a deny.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kmip_client import Client, ItemNotFound, KmipError, OperationPending, PermissionDenied
from kmip_client.aio import AsyncClient
from kmip_client.approvals import ApprovalError, ApprovalsClient
from kmip_client.protocol.spec.enums import CancellationResult, Operation, ResultReason, State
from kmip_client.tls import client_ssl_context
from tests.support.server_process import (
    LOOPBACK,
    ServerProcess,
    TlsFiles,
    free_port,
    issue_client_cert,
    running_server,
    serve_policy,
    strongroom_init,
)

from .conftest import postgres_schema_url

PEOPLE = ("alice", "bob", "carol", "dave", "erin")
ROOT = {"Object Group": "root-keys"}
SHORT_LIVED = {"Object Group": "short-lived"}
EXPIRES_AFTER = 1  # seconds, for the short-lived rule

POLICY = f"""
[settings]
administrators = ["admin"]

[roles.approver]
description = "may approve or deny held requests"
approver = true

# alice holds the approver role too (for other rules): what stops her is that she asked.
[[identities]]
match = {{ CN = "alice" }}
roles = ["approver"]

[[identities]]
match = {{ CN = "carol" }}
roles = ["approver"]

[[identities]]
match = {{ CN = "dave" }}
roles = ["approver"]

[[identities]]
match = {{ CN = "erin" }}
roles = ["approver"]

[[approvals]]
name = "destroying a root key"
operations = ["Destroy"]
scope = {{ object_group = "root-keys" }}
required = 2
approvers = ["carol", "dave", "erin"]
expires_after = 3600

[[approvals]]
name = "destroying a short-lived key"
operations = ["Destroy"]
scope = {{ object_group = "short-lived" }}
required = 2
approvers = ["carol", "dave", "erin"]
expires_after = {EXPIRES_AFTER}
"""


@dataclass(frozen=True)
class Server:
    process: ServerProcess
    https_port: int
    identities: dict[str, TlsFiles]

    def client(self, who: str = "alice", version: tuple[int, int] | None = None) -> Client:
        files = self.identities[who]
        return Client(f"{LOOPBACK}:{self.process.port}", ca=files.ca, cert=files.cert, key=files.key, version=version)

    def async_client(self, who: str = "alice") -> AsyncClient:
        files = self.identities[who]
        return AsyncClient(f"{LOOPBACK}:{self.process.port}", ca=files.ca, cert=files.cert, key=files.key)

    def desk(self, who: str) -> ApprovalsClient:
        files = self.identities[who]
        return ApprovalsClient(f"https://{LOOPBACK}:{self.https_port}", ca=files.ca, cert=files.cert, key=files.key)

    def connection(self, who: str) -> http.client.HTTPSConnection:
        files = self.identities[who]
        context = client_ssl_context(ca=files.ca, cert=files.cert, key=files.key)
        return http.client.HTTPSConnection(LOOPBACK, self.https_port, timeout=10, context=context)


def _use_store(data_dir: Path, url: str) -> None:
    config = data_dir / "strongroom.toml"
    text, count = re.subn(r'(?m)^url = ".*"$', f'url = "{url}"', config.read_text())
    assert count == 1
    config.write_text(text)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server per store: votes and Polls lock the request's row (SELECT ... FOR UPDATE)."""
    data_dir = tmp_path_factory.mktemp(f"approvals-{request.param}") / "data"
    admin = strongroom_init(data_dir)
    identities = {name: issue_client_cert(data_dir, name, data_dir.parent / name) for name in PEOPLE}
    serve_policy(data_dir, POLICY)
    https_port = free_port()
    store = postgres_schema_url() if request.param == "postgresql" else contextlib.nullcontext()
    with store as url:  # the SQLite store init made, or an empty PostgreSQL schema
        if url is not None:
            _use_store(data_dir, url)
        extra = ["--https-port", str(https_port)]
        with running_server(data_dir, free_port(), workers=2, extra_args=extra) as process:
            yield Server(process, https_port, {"admin": admin, **identities})


def _held_destroy(kmip: Client, uid: str) -> OperationPending:
    with kmip.asynchronous(), pytest.raises(OperationPending) as held:
        kmip.destroy(uid)
    return held.value


def _assert_destroyed(kmip: Client, uid: str) -> None:
    with pytest.raises(KmipError, match="destroyed") as gone:
        kmip.get(uid)
    # 2.x says Object Destroyed; 1.x has only Item Not Found.
    assert gone.value.reason == (
        ResultReason.OBJECT_DESTROYED if kmip.version >= (2, 0) else ResultReason.ITEM_NOT_FOUND
    )
    assert kmip.get_attributes(uid, ["State"]) == {"State": [State.DESTROYED]}


def test_destroy_of_a_root_key_waits_for_two_approvers(server: Server) -> None:
    with server.client("alice") as kmip:
        uid = kmip.create("AES", 256, attributes=ROOT)

        with pytest.raises(PermissionDenied, match=r"needs 2 approval\(s\).*Asynchronous Indicator"):
            kmip.destroy(uid)
        assert len(kmip.get(uid).value) == 32  # refused: nothing held, nothing destroyed

        pending = _held_destroy(kmip, uid)
        assert pending.operation == Operation.DESTROY and len(pending.correlation_value) == 16
        request_id = pending.correlation_value.hex()
        with pytest.raises(OperationPending) as still:
            kmip.poll(pending)
        assert still.value.operation == Operation.DESTROY
        assert still.value.correlation_value == pending.correlation_value

        # The requester and the approvers named by the rule see it; bob does not.
        assert [r.id for r in server.desk("alice").list()] == [request_id]
        shown = server.desk("carol").show(request_id)
        assert (shown.requester, shown.operation, shown.object_ids, shown.status) == (
            "alice",
            "Destroy",
            (uid,),
            "pending",
        )
        assert (shown.required, shown.approvers, shown.rule) == (2, ("carol", "dave", "erin"), "destroying a root key")
        assert server.desk("bob").list() == []
        with pytest.raises(ApprovalError) as hidden:
            server.desk("bob").show(request_id)
        assert hidden.value.status == 404

        first = server.desk("carol").approve(request_id)
        assert first.status == "pending" and first.approved_by == ("carol",)
        with pytest.raises(ApprovalError, match="alice.*made request .* may not approve") as own:
            server.desk("alice").approve(request_id)
        assert own.value.status == 403 and own.value.reason == ResultReason.PERMISSION_DENIED
        with pytest.raises(ApprovalError, match="does not have the approver role") as outsider:
            server.desk("bob").approve(request_id)
        assert outsider.value.status == 403
        with pytest.raises(ApprovalError, match="already voted") as twice:
            server.desk("carol").approve(request_id)
        assert twice.value.status == 403

        with pytest.raises(OperationPending, match=r"has 1"):
            kmip.poll(pending)  # one approval of two
        assert len(kmip.get(uid).value) == 32

        second = server.desk("dave").approve(request_id)
        assert second.status == "approved" and second.approved_by == ("carol", "dave")

        assert kmip.poll(pending) == uid  # the Destroy ran, in the Poll
        _assert_destroyed(kmip, uid)
        with pytest.raises(KmipError) as again:
            kmip.poll(pending)  # run already: the correlation value names nothing now
        assert again.value.reason == ResultReason.INVALID_ASYNCHRONOUS_CORRELATION_VALUE

    done = server.desk("erin").show(request_id)
    assert done.status == "done" and done.outcome == "Success"
    assert [r.id for r in server.desk("erin").list(all=True) if r.id == request_id] == [request_id]
    assert request_id not in [r.id for r in server.desk("erin").list()]
    with pytest.raises(ApprovalError, match="is done") as late:
        server.desk("erin").approve(request_id)
    assert late.value.status == 409


def test_a_cancelled_request_is_gone(server: Server) -> None:
    with server.client("alice") as kmip:
        uid = kmip.create("AES", 256, attributes=ROOT)
        pending = _held_destroy(kmip, uid)
        with server.client("bob") as bob:
            # Someone else's correlation value names nothing for them, and they cannot cancel it.
            with pytest.raises(KmipError) as foreign:
                bob.poll(pending.correlation_value)
            assert foreign.value.reason == ResultReason.INVALID_ASYNCHRONOUS_CORRELATION_VALUE
            assert bob.cancel(pending.correlation_value) is CancellationResult.UNAVAILABLE

        assert kmip.cancel(pending) is CancellationResult.CANCELED
        with pytest.raises(KmipError) as unknown:
            kmip.poll(pending)
        assert unknown.value.reason == ResultReason.INVALID_ASYNCHRONOUS_CORRELATION_VALUE
        assert kmip.cancel(pending) is CancellationResult.UNAVAILABLE
        with pytest.raises(ApprovalError, match="cancelled") as finished:
            server.desk("carol").approve(pending.correlation_value.hex())
        assert finished.value.status == 409
        assert len(kmip.get(uid).value) == 32  # never destroyed


def test_a_denied_request_never_runs(server: Server) -> None:
    with server.client("alice") as kmip:
        uid = kmip.create("AES", 256, attributes=ROOT)
        pending = _held_destroy(kmip, uid)
        request_id = pending.correlation_value.hex()
        server.desk("carol").approve(request_id)
        denied = server.desk("erin").deny(request_id)
        assert denied.status == "denied" and denied.denied_by == "erin"
        with pytest.raises(ApprovalError) as closed:
            server.desk("dave").approve(request_id)
        assert closed.value.status == 409
        with pytest.raises(PermissionDenied, match="denied by erin"):
            kmip.poll(pending)
        assert kmip.cancel(pending) is CancellationResult.FAILED
        assert len(kmip.get(uid).value) == 32


def test_an_unapproved_request_expires(server: Server) -> None:
    with server.client("alice") as kmip:
        uid = kmip.create("AES", 256, attributes=SHORT_LIVED)
        pending = _held_destroy(kmip, uid)
        server.desk("carol").approve(pending.correlation_value.hex())
        time.sleep(EXPIRES_AFTER + 1.2)  # the server's clock counts whole seconds
        with pytest.raises(PermissionDenied, match="expired"):
            kmip.poll(pending)
        with pytest.raises(ApprovalError, match="expired") as late:
            server.desk("dave").approve(pending.correlation_value.hex())
        assert late.value.status == 409
        assert len(kmip.get(uid).value) == 32


def test_kmip_1_4_names_an_unknown_request_item_not_found(server: Server) -> None:
    with server.client("alice", version=(1, 4)) as kmip:
        uid = kmip.create("AES", 128, attributes=ROOT)
        pending = _held_destroy(kmip, uid)
        request_id = pending.correlation_value.hex()
        with pytest.raises(OperationPending):
            kmip.poll(pending)
        server.desk("erin").approve(request_id)
        server.desk("dave").approve(request_id)
        assert kmip.poll(pending) == uid
        _assert_destroyed(kmip, uid)
        with pytest.raises(ItemNotFound) as unknown:
            kmip.poll(pending)
        assert unknown.value.reason == ResultReason.ITEM_NOT_FOUND


def test_the_async_client_waits_for_the_approvals(server: Server) -> None:
    async def main() -> str:
        async with server.async_client("alice") as kmip:
            uid = await kmip.create("AES", 256, attributes=ROOT)
            with kmip.asynchronous():
                with pytest.raises(OperationPending) as held:
                    await kmip.destroy(uid)
            request_id = held.value.correlation_value.hex()
            # The approvers act while the requester waits (the desk client blocks: a thread).
            await asyncio.to_thread(server.desk("carol").approve, request_id)
            await asyncio.to_thread(server.desk("erin").approve, request_id)
            result = await kmip.wait(held.value, timeout=30, interval=0.2)
            assert result == uid
            assert await kmip.get_attributes(uid, ["State"]) == {"State": [State.DESTROYED]}
            return str(result)

    assert asyncio.run(main())


def _post(server: Server, body: bytes, content_type: str = "application/json") -> tuple[int, dict[str, object]]:
    conn = server.connection("carol")
    try:
        conn.request("POST", "/approvals", body=body, headers={"Content-Type": content_type})
        answer = conn.getresponse()
        assert answer.getheader("Content-Type") == "application/json"
        return answer.status, json.loads(answer.read())
    finally:
        conn.close()


def test_the_route_refuses_what_it_cannot_read(server: Server) -> None:
    assert _post(server, b'{"action": "list"}', "text/plain") == (
        415,
        {"error": "approvals requests are application/json"},
    )
    status, answer = _post(server, b"{oops")
    assert status == 400 and "not JSON" in str(answer["error"])
    status, answer = _post(server, json.dumps({"action": "show", "id": "ff" * 16}).encode())
    assert status == 404 and "no approval request" in str(answer["error"])
    status, answer = _post(server, json.dumps({"action": "list"}).encode())
    assert status == 200 and isinstance(answer["requests"], list)
    conn = server.connection("carol")
    try:
        conn.request("GET", "/approvals")
        assert conn.getresponse().status == 405
    finally:
        conn.close()
