"""The HTTPS ``/approvals`` route: approvers list, show, approve and deny held requests
(kmip_client.approvals.ApprovalsClient), as ``strongroom approvals`` does on the server host.

A POST with a JSON body ``{"action": "list"|"show"|"approve"|"deny", "id": "...", "all": bool}``
acts as the identity of the connection's TLS client certificate, the same identity the KMIP
route uses, through the engine's :class:`~kmip_server.approvals.desk.ApprovalDesk` (which
checks the approver role, records every vote in the audit trail, and refuses the requester).
The desk is found on the object whose bound method is the listener's handler (the engine's
Dispatcher, ``approval_desk``); a handler without one answers 404.

Answers are JSON: 200 ``{"requests": [...]}``; ``{"error": message}`` with 400 (a body that is
not such an object), 403 (refused), 404 (no such request, or approvals not enabled), 409 (no
longer pending), 415 (a body that is not application/json). The desk does a short database
transaction and, for a vote, one HMAC on the token: it runs inline, as the KMIP route answers
a message, so pipelined answers keep their order.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from ..approvals.desk import ACTIONS
from ..approvals.service import ApprovalError

if TYPE_CHECKING:
    from .https_listener import _Answer, _HttpsConnection, _Request

__all__ = ["APPROVALS_PATH", "approvals_route"]

log = logging.getLogger("strongroom.transport.https")

APPROVALS_PATH = "/approvals"
_JSON = "application/json"
_STATUS = {ApprovalError.UNKNOWN: 404, ApprovalError.REFUSED: 403, ApprovalError.FINISHED: 409}
_MAX_ID = 128  # request ids are 32 hex digits; anything far longer is not one


class _BadRequest(Exception):
    pass


def _json_answer(status: int, data: dict[str, Any], close: bool = False) -> _Answer:
    # Imported here: https_listener imports this module to register the route.
    from .https_listener import _Answer

    body = json.dumps(data, separators=(",", ":")).encode()
    headers = (("Accept", _JSON),) if status == 415 else ()
    return _Answer(status, _JSON, body, close, headers)


def _read(body: bytes) -> tuple[str, str | None, bool]:
    """The action, request id and ``all`` flag of a request body; _BadRequest says what is wrong."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise _BadRequest("the body is not JSON") from None
    if not isinstance(data, dict):
        raise _BadRequest("the body must be a JSON object")
    unknown = sorted(set(data) - {"action", "id", "all"})
    if unknown:
        raise _BadRequest(f"unknown field(s): {', '.join(map(str, unknown))}")
    action = data.get("action")
    if action not in ACTIONS:
        raise _BadRequest(f"action must be one of {', '.join(ACTIONS)}")
    request_id = data.get("id")
    if request_id is not None and (not isinstance(request_id, str) or len(request_id) > _MAX_ID):
        raise _BadRequest("id must be a request id (a string)")
    if action != "list" and not request_id:
        raise _BadRequest(f"{action} needs the id of a request")
    finished = data.get("all", False)
    if not isinstance(finished, bool):
        raise _BadRequest("all must be true or false")
    return action, request_id, finished


def approvals_route(connection: _HttpsConnection, request: _Request, body: bytes) -> _Answer:
    """The answer to one approvals request (see the module notes)."""
    if request.media_type != _JSON:
        return _json_answer(415, {"error": "approvals requests are application/json"})
    try:
        action, request_id, finished = _read(body)
    except _BadRequest as bad:
        return _json_answer(400, {"error": str(bad)})
    owner = getattr(connection._listener.handler, "__self__", None)
    desk = getattr(owner, "approval_desk", None)
    if desk is None:
        return _json_answer(404, {"error": "approvals are not enabled"})
    identity = connection._identity
    assert identity is not None  # a connection serves requests once its handshake named it
    try:
        found = desk.act(identity, action, request_id, finished=finished)
    except ApprovalError as refused:
        return _json_answer(_STATUS.get(refused.kind, 403), {"error": refused.message})
    except Exception:
        # A bug or a failing store, not the client's input: logged (never the body) and the
        # connection closed, as the KMIP route does when its handler raises.
        log.exception("approvals %s failed for %s (%s)", action, connection._peer, identity.name)
        return _json_answer(500, {"error": "internal error; the server's log says more"}, close=True)
    return _json_answer(200, {"requests": [item.to_json() for item in found]})
