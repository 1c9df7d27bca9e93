"""The admin listener: an HTTPS listener with the admin routes and an optional client certificate.

=============  ======  ======================================================================
 path           who     answer
=============  ======  ======================================================================
 /healthz       anyone  200 ``{"alive": true, "pid": ..., "uptime_seconds": ...}``: the worker
                        runs its event loop
 /readyz        anyone  200 when ready, else 503; ``{"ready": ..., "checks": {...}}`` saying
                        which of token, database (with the schema) and workers failed and why
 /metrics       admin   the Prometheus text format, every worker's counts (metrics.py)
 /dashboard...  see     the web dashboard (kmip_server/admin/dashboard: administrators and
                there   auditors, approvers for the queue; a certificate or a login link)
=============  ======  ======================================================================

"admin": a client certificate whose identity the policy makes an administrator
(``[policy] admin_identities`` or a role with ``administrator = true``); without a certificate
the answer is 401, with another one 403. The probes are answered inline: each is a short
database read and, for /readyz, one HMAC on the token.

The cloud key services (kmip_server/hyok) are served beside these routes. With ``[xks]
insecure_http`` the XKS API's routes, and none of the above, are also served as plain HTTP on
127.0.0.1 (:func:`admin_listeners`, transport/plain_http.py), for local testing.
"""

from __future__ import annotations

import json
import socket
import ssl
from typing import Any

from ..config import ListenerSettings, ServerConfig, TlsSettings
from ..hyok import service_routes, xks_only
from ..transport.https_listener import HttpsListener, Route, _Answer, _HttpsConnection, _Request
from ..transport.listener import MessageHandler
from ..transport.tls import server_ssl_context
from .dashboard.views import dashboard_routes
from .health import ServerView, liveness, readiness, state_samples
from .metrics import StateCollector, render, wants_openmetrics

__all__ = ["ADMIN_ROUTES", "AdminListener", "admin_listeners", "admin_ssl_context"]

_JSON = "application/json"


def admin_ssl_context(tls: TlsSettings) -> ssl.SSLContext:
    """The server's TLS context, asking for a client certificate without requiring one."""
    context = server_ssl_context(tls)
    context.verify_mode = ssl.CERT_OPTIONAL
    return context


def _json(status: int, data: dict[str, Any]) -> _Answer:
    return _Answer(status, _JSON, json.dumps(data, separators=(",", ":")).encode())


def _view(connection: _HttpsConnection) -> ServerView:
    listener = connection._listener
    assert isinstance(listener, AdminListener)
    return listener.view


def _healthz(connection: _HttpsConnection, request: _Request, body: bytes) -> _Answer:
    return _json(200, liveness(_view(connection)))


def _readyz(connection: _HttpsConnection, request: _Request, body: bytes) -> _Answer:
    report = readiness(_view(connection))
    return _json(200 if report["ready"] else 503, report)


def _refusal(connection: _HttpsConnection) -> _Answer | None:
    """None if the connection's identity may administer; else the 401 or 403 answer."""
    identity = connection._identity
    if identity is None or identity.certificate is None or not identity.name:
        return _json(401, {"error": "a client certificate of an administrator is needed"})
    policy = _view(connection).dispatcher.policy
    if not policy.is_admin(policy.principal(identity)):
        return _json(403, {"error": f"{identity.name!r} may not administer this server"})
    return None


def _metrics(connection: _HttpsConnection, request: _Request, body: bytes) -> _Answer:
    refused = _refusal(connection)
    if refused is not None:
        return refused
    view = _view(connection)
    accept = ", ".join(value for name, value in request.headers if name == "accept")
    state = StateCollector(lambda: state_samples(view))
    exposition, content_type = render(state, openmetrics=wants_openmetrics(accept))
    return _Answer(200, content_type, exposition)


ADMIN_ROUTES: dict[str, Route] = {
    "/healthz": Route(("GET",), _healthz),
    "/readyz": Route(("GET",), _readyz),
    "/metrics": Route(("GET",), _metrics),
}
# The web dashboard (kmip_server/admin/dashboard): /dashboard and the pages under it.
ADMIN_ROUTES.update(dashboard_routes())


class AdminListener(HttpsListener):
    """Serves the admin routes on one socket in a worker's event loop."""

    routes = ADMIN_ROUTES
    anonymous_allowed = True

    def __init__(
        self,
        sock: socket.socket,
        ssl_context: ssl.SSLContext,
        settings: ListenerSettings,
        handler: MessageHandler,
        view: ServerView,
        *,
        identity_mode: str = "cn",
        services: dict[str, Route] | None = None,
    ) -> None:
        super().__init__(sock, ssl_context, settings, handler, identity_mode=identity_mode)
        self.view = view
        if services:
            # The cloud key services configured (kmip_server/hyok), beside the admin routes.
            self.routes = {**ADMIN_ROUTES, **services}


def admin_listeners(
    config: ServerConfig,
    handler: MessageHandler,
    view: ServerView,
    sock: socket.socket,
    plain_sock: socket.socket | None = None,
) -> tuple[HttpsListener, ...]:
    """A worker's admin listener on ``sock``, serving the cloud key services ``config``
    enables; with ``plain_sock`` (``[xks] insecure_http``, bound on 127.0.0.1) also the XKS
    API's routes, and only those, over plain HTTP there: the same routes, so one XksService
    serves both and a SIGHUP reload applies to both."""
    services = service_routes(config, view.dispatcher)
    identity_mode = config.tls.identity_from
    admin = AdminListener(
        sock,
        admin_ssl_context(config.tls),
        config.listener,
        handler,
        view,
        identity_mode=identity_mode,
        services=services,
    )
    if plain_sock is None:
        return (admin,)
    from ..transport.plain_http import PlainHttpListener  # only where plain HTTP is asked for

    return admin, PlainHttpListener(plain_sock, config.listener, handler, xks_only(services), view=view)
