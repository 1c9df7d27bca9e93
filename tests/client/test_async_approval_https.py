"""The approvers' HTTPS API in pieces: ApprovalsClient's requests and how it reads answers
(against an in-process HTTPS server over real mutual TLS that records what it got and answers
as the test says), and the server's ``/approvals`` route's statuses for each kind of input
(called in process). The whole flow against a real server is
tests/integration/test_approval_flow.py.
"""

from __future__ import annotations

import http.server
import json
import ssl
import threading
import types
from collections.abc import Iterator
from typing import Any

import pytest

from kmip_client.approvals import ApprovalError, ApprovalRequest, ApprovalsClient
from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.spec.enums import ResultReason
from kmip_client.transport import InvalidResponse, ServerUnavailable
from kmip_server.approvals.service import ApprovalError as DeskError
from kmip_server.approvals.service import ApprovalRequest as DeskRequest
from kmip_server.engine.identity import ClientIdentity
from kmip_server.transport.approvals_route import approvals_route
from kmip_server.transport.https_listener import ROUTES, _Request
from tests.integration.tls_fixtures import PkiFiles, make_pki

REQUEST = DeskRequest(
    id="00" * 16,
    requester="alice",
    tenant="default",
    version=(2, 1),
    operation="Destroy",
    object_ids=("k1",),
    rule="root keys",
    required=2,
    approvers=("carol", "dave", "erin"),
    created=100,
    expires=200,
    status="pending",
    approved_by=("carol",),
    denied_by=None,
    outcome=None,
)


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers each POST with the next scripted (status, body) and records what it got."""

    server: Any

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        body = self.rfile.read(length)
        peer = self.connection.getpeercert()
        subject = dict(field[0] for field in peer["subject"])
        self.server.seen.append((self.path, self.headers["Content-Type"], json.loads(body), subject["commonName"]))
        status, answer = self.server.script.pop(0)
        data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    return make_pki(tmp_path_factory.mktemp("approvals-pki"))


@pytest.fixture
def server(pki: PkiFiles) -> Iterator[Any]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    context.load_verify_locations(cafile=str(pki.ca))
    context.verify_mode = ssl.CERT_REQUIRED
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    httpd.seen = []  # type: ignore[attr-defined]
    httpd.script = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def desk_client(pki: PkiFiles, server: Any, who: str = "alice", path: str = "") -> ApprovalsClient:
    files = pki.clients[who]
    return ApprovalsClient(
        f"https://127.0.0.1:{server.server_address[1]}{path}", ca=pki.ca, cert=files.cert, key=files.key
    )


def test_each_action_posts_json_as_the_certificate_s_identity(pki: PkiFiles, server: Any) -> None:
    done = {**REQUEST.to_json(), "status": "approved", "approved_by": ["carol", "dave"]}
    server.script = [
        (200, {"requests": [REQUEST.to_json()]}),
        (200, {"requests": [REQUEST.to_json()]}),
        (200, {"requests": [done]}),
        (200, {"requests": [{**REQUEST.to_json(), "status": "denied", "denied_by": "bob"}]}),
        (200, {"requests": []}),
    ]
    with desk_client(pki, server, "bob") as desk:
        listed = desk.list()
        shown = desk.show(REQUEST.id)
        approved = desk.approve(REQUEST.id)
        denied = desk.deny(REQUEST.id)
        assert desk.list(all=True) == []
    assert server.seen == [
        ("/approvals", "application/json", {"action": "list", "all": False}, "bob"),
        ("/approvals", "application/json", {"action": "show", "id": REQUEST.id}, "bob"),
        ("/approvals", "application/json", {"action": "approve", "id": REQUEST.id}, "bob"),
        ("/approvals", "application/json", {"action": "deny", "id": REQUEST.id}, "bob"),
        ("/approvals", "application/json", {"action": "list", "all": True}, "bob"),
    ]
    assert listed == [shown]
    assert shown == ApprovalRequest(
        id=REQUEST.id,
        requester="alice",
        tenant="default",
        version=(2, 1),
        operation="Destroy",
        object_ids=("k1",),
        rule="root keys",
        required=2,
        approvers=("carol", "dave", "erin"),
        created=100,
        expires=200,
        status="pending",
        approved_by=("carol",),
    )
    assert shown.correlation_value == bytes(16)
    assert approved.status == "approved" and approved.approved_by == ("carol", "dave")
    assert denied.status == "denied" and denied.denied_by == "bob"


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (404, ResultReason.ITEM_NOT_FOUND),
        (403, ResultReason.PERMISSION_DENIED),
        (409, ResultReason.WRONG_KEY_LIFECYCLE_STATE),
        (400, ResultReason.INVALID_MESSAGE),
        (500, ResultReason.GENERAL_FAILURE),
    ],
)
def test_refusals_raise_with_the_server_s_message(
    pki: PkiFiles, server: Any, status: int, reason: ResultReason
) -> None:
    server.script = [(status, {"error": "'alice' made request 00 and may not approve or deny it"})]
    with pytest.raises(ApprovalError, match="may not approve") as refused:
        desk_client(pki, server).approve(REQUEST.id)
    assert refused.value.status == status
    assert refused.value.reason == reason
    assert isinstance(refused.value, KmipError)


def test_answers_that_are_not_the_api_are_invalid_responses(pki: PkiFiles, server: Any) -> None:
    server.script = [
        (200, b"<html>not json</html>"),
        (200, {"no": "requests"}),
        (200, {"requests": [{"id": "x"}]}),
        (200, {"requests": []}),
        (502, b"Bad Gateway"),
    ]
    desk = desk_client(pki, server, path="/approvals")
    with pytest.raises(InvalidResponse, match="without a JSON object"):
        desk.list()
    with pytest.raises(InvalidResponse, match="no list of requests"):
        desk.list()
    with pytest.raises(InvalidResponse, match="malformed"):
        desk.list()
    with pytest.raises(InvalidResponse, match="0 requests where one was expected"):
        desk.show(REQUEST.id)
    with pytest.raises(InvalidResponse, match="HTTP 502"):
        desk.list()


def test_urls_and_an_unreachable_server(pki: PkiFiles) -> None:
    files = pki.clients["alice"]
    with pytest.raises(ValueError, match="https"):
        ApprovalsClient("http://127.0.0.1:1", ca=pki.ca, cert=files.cert, key=files.key)
    desk = ApprovalsClient("https://127.0.0.1:1/", ca=pki.ca, cert=files.cert, key=files.key, timeout=2)
    assert desk.path == "/approvals"
    with pytest.raises(ServerUnavailable):
        desk.list()


# --------------------------------------------------------------------------- the route


class Desk:
    """Stands in for ApprovalDesk: records the calls, answers or raises as told."""

    def __init__(self, result: Any) -> None:
        self.result = result
        self.calls: list[tuple[str, str, str | None, bool]] = []

    def act(self, identity: ClientIdentity, action: str, request_id: str | None, *, finished: bool = False) -> Any:
        self.calls.append((identity.name, action, request_id, finished))
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


class Engine:
    """An owner of the handler, as the engine's Dispatcher is of ``handle``."""

    def __init__(self, desk: Desk | None) -> None:
        if desk is not None:
            self.approval_desk = desk

    def handle(self, message: bytes, identity: ClientIdentity) -> bytes:
        raise AssertionError("the approvals route never runs KMIP")


def call(desk: Desk | None, body: Any, media_type: str = "application/json") -> tuple[int, Any]:
    connection = types.SimpleNamespace(
        _listener=types.SimpleNamespace(handler=Engine(desk).handle),
        _identity=ClientIdentity("carol", None, "127.0.0.1:5000"),
        _peer="127.0.0.1:5000",
    )
    request = _Request("POST", "/approvals", media_type, True, True, False)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer = approvals_route(connection, request, data)  # type: ignore[arg-type]
    assert answer.content_type == "application/json"
    return answer.status, json.loads(answer.body)


def test_the_route_is_registered() -> None:
    route = ROUTES["/approvals"]
    assert route.methods == ("POST",) and route.takes_body and route.answer is approvals_route


def test_the_route_acts_as_the_connection_s_identity() -> None:
    desk = Desk([REQUEST])
    assert call(desk, {"action": "approve", "id": REQUEST.id}) == (200, {"requests": [REQUEST.to_json()]})
    assert call(desk, {"action": "list", "all": True})[0] == 200
    assert call(desk, {"action": "list"})[0] == 200
    assert desk.calls == [
        ("carol", "approve", REQUEST.id, False),
        ("carol", "list", None, True),
        ("carol", "list", None, False),
    ]


@pytest.mark.parametrize(
    ("kind", "status"), [(DeskError.UNKNOWN, 404), (DeskError.REFUSED, 403), (DeskError.FINISHED, 409)]
)
def test_desk_refusals_become_statuses(kind: str, status: int) -> None:
    desk = Desk(DeskError("request 00 is denied", kind))
    assert call(desk, {"action": "deny", "id": "00"}) == (status, {"error": "request 00 is denied"})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not JSON"),
        ([1, 2], "JSON object"),
        ({"action": "delete", "id": "00"}, "action must be one of"),
        ({"action": "approve"}, "approve needs the id"),
        ({"action": "show", "id": 7}, "id must be"),
        ({"action": "list", "all": "yes"}, "all must be true or false"),
        ({"action": "list", "as": "admin"}, "unknown field(s): as"),
    ],
)
def test_bad_bodies_are_400(body: Any, message: str) -> None:
    desk = Desk([])
    status, answer = call(desk, body)
    assert status == 400 and message in answer["error"]
    assert desk.calls == []


def test_other_media_types_are_415_and_no_desk_is_404() -> None:
    assert call(Desk([]), {"action": "list"}, "text/xml") == (415, {"error": "approvals requests are application/json"})
    assert call(None, {"action": "list"}) == (404, {"error": "approvals are not enabled"})


def test_a_failing_desk_is_500_and_closes(caplog: pytest.LogCaptureFixture) -> None:
    connection = types.SimpleNamespace(
        _listener=types.SimpleNamespace(handler=Engine(Desk(RuntimeError("database is locked"))).handle),
        _identity=ClientIdentity("carol"),
        _peer="127.0.0.1:5000",
    )
    request = _Request("POST", "/approvals", "application/json", True, True, False)
    answer = approvals_route(connection, request, b'{"action": "list"}')  # type: ignore[arg-type]
    assert answer.status == 500 and answer.close
    assert "database is locked" not in answer.body.decode()  # the detail stays in the log
    assert "approvals list failed" in caplog.text
