"""The approvers' side of M-of-N approval over HTTPS: :class:`ApprovalsClient`.

When the server's access policy holds an operation for approval, the requester's client gets
:class:`~kmip_client.operations.OperationPending` (see ``Client.asynchronous``) and approvers
list, show, approve or deny the request here, each as the identity of their client
certificate, the same as ``strongroom approvals --as NAME``::

    from kmip_client.approvals import ApprovalsClient

    with ApprovalsClient("https://kms:5697", ca="ca.crt", cert="carol.crt", key="carol.key") as desk:
        for request in desk.list():
            print(request.id, request.operation, request.object_ids, request.approved_by)
        desk.approve(request.id)

Each call is one JSON POST to the server's ``/approvals`` path on its HTTPS port (the port of
``strongroom serve --https-port``), over mutual TLS with the settings of
:func:`~kmip_client.tls.client_ssl_context`. A refused step raises :class:`ApprovalError`
with the server's message.
"""

from __future__ import annotations

import builtins
import dataclasses
import http.client
import json
import ssl
import threading
import urllib.parse
from collections.abc import Mapping
from typing import Any

from .protocol.errors import KmipError
from .protocol.spec.enums import ResultReason
from .transport import ConnectionLost, Endpoint, InvalidResponse, KmipTimeout, ServerUnavailable

__all__ = ["APPROVALS_PATH", "ApprovalError", "ApprovalRequest", "ApprovalsClient"]

#: The server's path for approvals, beside the KMIP HTTPS profile's /kmip.
APPROVALS_PATH = "/approvals"
_JSON = "application/json"
_MAX_ANSWER = 4 << 20  # a list of every kept request stays far below this


@dataclasses.dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """A held request as the server shows it to its requester and approvers (never its payload).

    ``status`` is pending, approved (enough approvals, waiting for the requester's Poll),
    denied, cancelled, done or expired; ``created`` and ``expires`` are POSIX seconds.
    """

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
    status: str
    approved_by: tuple[str, ...] = ()
    denied_by: str | None = None
    outcome: str | None = None

    @property
    def correlation_value(self) -> bytes:
        """The Asynchronous Correlation Value the requester polls: the id is its hex."""
        return bytes.fromhex(self.id)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ApprovalRequest:
        """Read one request of the server's answer; InvalidResponse when it is not one."""
        try:
            major, minor = str(data["version"]).split(".")
            return cls(
                id=str(data["id"]),
                requester=str(data["requester"]),
                tenant=str(data["tenant"]),
                version=(int(major), int(minor)),
                operation=str(data["operation"]),
                object_ids=tuple(str(uid) for uid in data["object_ids"]),
                rule=str(data["rule"]),
                required=int(data["required"]),
                approvers=tuple(str(name) for name in data["approvers"]),
                created=int(data["created"]),
                expires=int(data["expires"]),
                status=str(data["status"]),
                approved_by=tuple(str(name) for name in data.get("approved_by") or ()),
                denied_by=None if data.get("denied_by") is None else str(data["denied_by"]),
                outcome=None if data.get("outcome") is None else str(data["outcome"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise InvalidResponse(f"the server's approval request is malformed: {error!r}") from None


class ApprovalError(KmipError):
    """The server refused an approvals step; ``message`` is its reason, ``status`` the HTTP
    status: 404 no such request (or approvals are not enabled), 403 this identity may not take
    the step (not an approver of it, its requester, already voted), 409 the request is no longer
    pending, 400 a request the server could not read. ``reason`` is the Result Reason the
    server's audit trail records for it."""

    _REASONS = {
        404: ResultReason.ITEM_NOT_FOUND,
        403: ResultReason.PERMISSION_DENIED,
        409: ResultReason.WRONG_KEY_LIFECYCLE_STATE,
        400: ResultReason.INVALID_MESSAGE,
    }

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message, self._REASONS.get(status, ResultReason.GENERAL_FAILURE))
        self.status = status


class ApprovalsClient:
    """Approvals over HTTPS with mutual TLS (blocking; safe to share between threads).

    ``url``: the server's HTTPS port, "https://host:port" (the path defaults to /approvals).
    TLS comes from ``ssl_context`` or from ``ca``/``cert``/``key``/``key_password``, as for
    :class:`~kmip_client.Client`; the certificate is the approver's identity.
    """

    def __init__(
        self,
        url: str,
        *,
        ca: Any = None,
        cert: Any = None,
        key: Any = None,
        key_password: str | bytes | None = None,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 10.0,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"not an https:// URL: {url!r}")
        if ssl_context is None:
            from .tls import client_ssl_context

            ssl_context = client_ssl_context(ca=ca, cert=cert, key=key, key_password=key_password)
        self.host = parts.hostname
        self.port = parts.port or 443
        self.path = parts.path if parts.path not in ("", "/") else APPROVALS_PATH
        self.timeout = timeout
        self._context = ssl_context
        self._idle: builtins.list[http.client.HTTPSConnection] = []
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ the desk

    def list(self, all: bool = False) -> list[ApprovalRequest]:  # noqa: A002 - the server's field name
        """The pending requests this identity made or may approve (``all``: finished ones too,
        as long as the server keeps them)."""
        return self._act({"action": "list", "all": bool(all)}, idempotent=True)

    def show(self, request_id: str) -> ApprovalRequest:
        """One request this identity made or may approve."""
        return self._one(self._act({"action": "show", "id": request_id}, idempotent=True))

    def approve(self, request_id: str) -> ApprovalRequest:
        """Approve ``request_id``; the request as it now stands (status "approved" once it has
        enough approvals: the requester's next Poll runs it)."""
        return self._one(self._act({"action": "approve", "id": request_id}, idempotent=False))

    def deny(self, request_id: str) -> ApprovalRequest:
        """Deny ``request_id``: it will not run (the requester's Poll says it was denied)."""
        return self._one(self._act({"action": "deny", "id": request_id}, idempotent=False))

    def close(self) -> None:
        """Close the kept-alive connection(s)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def __enter__(self) -> ApprovalsClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing

    @staticmethod
    def _one(found: builtins.list[ApprovalRequest]) -> ApprovalRequest:
        if len(found) != 1:
            raise InvalidResponse(f"the server answered {len(found)} requests where one was expected")
        return found[0]

    def _act(self, body: Mapping[str, Any], *, idempotent: bool) -> builtins.list[ApprovalRequest]:
        status, answer = self._post(json.dumps(body).encode(), idempotent=idempotent)
        try:
            data = json.loads(answer)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise InvalidResponse(f"the server answered HTTP {status} without a JSON object")
        if status != 200:
            raise ApprovalError(str(data.get("error") or f"HTTP {status}"), status)
        requests = data.get("requests")
        if not isinstance(requests, list):
            raise InvalidResponse("the server's answer has no list of requests")
        return [ApprovalRequest.from_json(item) for item in requests]

    def _connection(self) -> tuple[http.client.HTTPSConnection, bool]:
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self._context), False

    def _post(self, body: bytes, *, idempotent: bool) -> tuple[int, bytes]:
        headers = {"Content-Type": _JSON, "Accept": _JSON}
        # A kept-alive connection the server has closed fails before anything was sent: one
        # more attempt on a fresh connection, which cannot vote twice. After sending, only list
        # and show are sent again.
        for attempt in range(3):
            conn, reused = self._connection()
            sent = False
            try:
                conn.request("POST", self.path, body=body, headers=headers)
                sent = True
                response = conn.getresponse()
                data = response.read(_MAX_ANSWER + 1)
            except TimeoutError as error:
                conn.close()
                raise KmipTimeout(f"no answer from {self.host}:{self.port} within {self.timeout} s") from error
            except (OSError, http.client.HTTPException) as error:
                conn.close()
                if not sent and not reused:
                    raise ServerUnavailable([(Endpoint(self.host, self.port), error)]) from error
                if attempt < 2 and (reused and not sent or idempotent):
                    continue
                raise ConnectionLost(
                    f"approvals request to {self.host}:{self.port} failed: {error}", request_sent=sent
                ) from error
            if len(data) > _MAX_ANSWER:
                conn.close()
                raise InvalidResponse(f"the server's answer is larger than {_MAX_ANSWER} bytes")
            with self._lock:
                if response.will_close:
                    conn.close()
                else:
                    self._idle.append(conn)
            return response.status, data
        raise ConnectionLost(f"approvals request to {self.host}:{self.port} failed", request_sent=True)
