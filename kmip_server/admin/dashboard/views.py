"""The dashboard's routes on the admin listener (see the package's docstring for who may see what).

Each page is answered inline, as /metrics is: one short read transaction (a vote: the desk's
write transaction), and one or two HMACs on the token (the session's and the CSRF token's).
Verifying the audit trail reads all of it: it runs only when asked for (a button).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

import jinja2

from kmip_client.protocol.spec.enums import ObjectType, State

from ...approvals.service import ApprovalError
from ...audit.export import search
from ...audit.verify import verify
from ...engine.identity import ClientIdentity
from ...objects import lifecycle
from ...policy.facts import OPERATIONS, Principal
from ...transport.https_listener import Route, _Answer, _HttpsConnection, _Request
from . import auth, data

if TYPE_CHECKING:
    from ...engine.dispatcher import Dispatcher
    from ...policy import Policy

log = logging.getLogger("strongroom.admin.dashboard")

#: The role that gives read access to every page (administrators have it anyway).
AUDITOR_ROLE = "auditor"
_HTML = "text/html; charset=utf-8"
_FORM = "application/x-www-form-urlencoded"
_HEADERS = (
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),  # a login link's token must not travel on
    ("X-Frame-Options", "DENY"),
)

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("kmip_server.admin.dashboard", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_static = resources.files("kmip_server.admin.dashboard") / "static"
_STATIC_TYPES = {"dashboard.css": "text/css; charset=utf-8", "dashboard.js": "text/javascript; charset=utf-8"}


@dataclasses.dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking: an identity the policy maps, and how they logged in."""

    identity: ClientIdentity
    principal: Principal
    full: bool  # an administrator or an auditor: every page
    admin: bool
    approver: bool
    via: str  # "certificate" or "link"
    binding: str  # what the CSRF token is bound to: the certificate, or the session cookie
    csrf: str


@dataclasses.dataclass(frozen=True, slots=True)
class Context:
    connection: _HttpsConnection
    request: _Request
    viewer: Viewer
    dispatcher: Dispatcher
    params: dict[str, str]  # the query string's (first values)
    form: dict[str, str]  # a POSTed form's (first values)


def _dispatcher(connection: _HttpsConnection) -> Dispatcher:
    view = getattr(connection._listener, "view", None)
    assert view is not None, "the dashboard is served by the admin listener"
    dispatcher: Dispatcher = view.dispatcher
    return dispatcher


def _mac(dispatcher: Dispatcher) -> auth.Mac:
    return dispatcher.custody.audit_mac


def render(
    status: int, template: str, headers: tuple[tuple[str, str], ...] = (), close: bool = False, **context: Any
) -> _Answer:
    context.setdefault("viewer", None)
    context.setdefault("message", None)
    context.setdefault("error", None)
    context.setdefault("status", status)
    body = _templates.get_template(template).render(**context).encode("utf-8")
    return _Answer(status, _HTML, body, close, _HEADERS + headers)


def _first(pairs: dict[str, list[str]]) -> dict[str, str]:
    return {key: values[0] for key, values in pairs.items() if values}


def _parse(text: str) -> dict[str, str]:
    try:
        return _first(urllib.parse.parse_qs(text, keep_blank_values=True, max_num_fields=32))
    except ValueError:
        return {}


def _unauthenticated(reason: str) -> _Answer:
    return render(401, "login.html", reason=reason)


def authenticate(connection: _HttpsConnection, request: _Request, dispatcher: Dispatcher) -> Viewer | _Answer:
    """The viewer of a request: its client certificate's identity, else its session cookie's;
    the 401 page when it has neither (or the cookie is not ours, or has expired)."""
    identity = connection._identity
    mac = _mac(dispatcher)
    if identity is not None and identity.certificate is not None and identity.name:
        via, binding = "certificate", "cert:" + (identity.fingerprint or "")
    else:
        cookie = auth.cookie_value(request.cookie)
        if cookie is None:
            return _unauthenticated("no client certificate and no session")
        token = auth.check_session(mac, cookie, time.time())
        if token is None:
            return _unauthenticated("the session is not valid or has expired")
        identity = ClientIdentity(token.name, address=connection._peer)
        via, binding = "link", "session:" + cookie
    policy = dispatcher.policy
    principal = policy.principal(identity)
    return Viewer(
        identity,
        principal,
        _sees_everything(policy, principal),
        policy.is_admin(principal),
        policy.is_approver(principal),
        via,
        binding,
        auth.csrf_token(mac, binding),
    )


def _sees_everything(policy: Policy, principal: Principal) -> bool:
    """Administrators and auditors see every page (read-only for auditors)."""
    return policy.is_admin(principal) or AUDITOR_ROLE in principal.roles


def _forbidden(viewer: Viewer) -> _Answer:
    return render(403, "forbidden.html", viewer=viewer)


Handler = Callable[[Context], _Answer]


def page(*, approvers: bool = False) -> Callable[[Handler], Callable[..., _Answer]]:
    """A route answer: authenticates, refuses who may not see the page (only administrators and
    auditors, and approvers too where ``approvers``), checks a POST's CSRF token."""

    def wrap(handler: Handler) -> Callable[..., _Answer]:
        @functools.wraps(handler)
        def answer(connection: _HttpsConnection, request: _Request, body: bytes) -> _Answer:
            dispatcher = _dispatcher(connection)
            try:
                viewer = authenticate(connection, request, dispatcher)
                if isinstance(viewer, _Answer):
                    return viewer
                if not viewer.full and not (approvers and viewer.approver):
                    return _forbidden(viewer)
                form: dict[str, str] = {}
                if request.method == "POST":
                    if request.media_type != _FORM:
                        return render(415, "message.html", viewer=viewer, error="forms are sent as " + _FORM)
                    form = _parse(body.decode("utf-8", "replace"))
                    if not auth.csrf_ok(_mac(dispatcher), viewer.binding, form.get("csrf")):
                        return render(403, "message.html", viewer=viewer, error="the form's CSRF token is not valid")
                return handler(Context(connection, request, viewer, dispatcher, _parse(request.query), form))
            except Exception:
                # A bug or a failing store or token: logged (never a body), the page says so.
                log.exception("dashboard %s %s failed", request.method, request.path)
                return render(500, "message.html", error="internal error; the server's log says more", close=True)

        return answer

    return wrap


# ---------------------------------------------------------------- login


def _login(connection: _HttpsConnection, request: _Request, body: bytes) -> _Answer:
    """GET /dashboard/login?t=LINK: a valid link sets the session cookie and goes to the overview."""
    dispatcher = _dispatcher(connection)
    given = _parse(request.query).get("t")
    if not given:
        return _unauthenticated("no login link")
    mac = _mac(dispatcher)
    try:
        link = auth.check_link_token(mac, given, time.time())
    except Exception:
        log.exception("checking a dashboard login link failed")
        return render(500, "message.html", error="internal error; the server's log says more")
    if link is None:
        return _unauthenticated("the login link is not valid or has expired")
    policy = dispatcher.policy
    principal = policy.principal(ClientIdentity(link.name))
    full = _sees_everything(policy, principal)
    if not full and not policy.is_approver(principal):
        return render(403, "forbidden.html", viewer=None, name=link.name)
    session = auth.make_session(mac, link.name, time.time())
    target = "/dashboard" if full else "/dashboard/approvals"
    log.info("dashboard login by link as %r from %s", link.name, connection._peer)
    return _Answer(
        303, _HTML, b"", headers=_HEADERS + (("Location", target), ("Set-Cookie", auth.session_cookie(session)))
    )


@page(approvers=True)
def _logout(ctx: Context) -> _Answer:
    clear = ("Set-Cookie", auth.session_cookie("", 0))
    return render(200, "login.html", headers=(clear,), reason="logged out")


def _static_file(name: str) -> Callable[[_HttpsConnection, _Request, bytes], _Answer]:
    content = (_static / name).read_bytes()
    headers = (("X-Content-Type-Options", "nosniff"),)

    def answer(connection: _HttpsConnection, request: _Request, body: bytes) -> _Answer:
        return _Answer(200, _STATIC_TYPES[name], content, headers=headers)

    return answer


# ---------------------------------------------------------------- pages


@page()
def _overview(ctx: Context) -> _Answer:
    with ctx.dispatcher.repository.read() as session:
        summary = data.overview(session)
    return render(
        200,
        "overview.html",
        viewer=ctx.viewer,
        summary=summary,
        due=summary.due,
        failures=data.record_lines(summary.failures),
        charts=[summary.created, summary.used],
    )


def _choice(enum_class: Any, text: str) -> int | None:
    for member in enum_class:
        if data.enum_name(enum_class, int(member)) == text:
            return int(member)
    return None


_TYPES = [data.type_name(int(t)) for t in ObjectType]
_STATES = [lifecycle.state_name(int(s)) for s in State]


@page()
def _keys(ctx: Context) -> _Answer:
    text = ctx.params.get("q", "").strip()[:200]
    kind = ctx.params.get("type", "")
    state = ctx.params.get("state", "")
    state_value = next((int(s) for s in State if lifecycle.state_name(int(s)) == state), None)
    with ctx.dispatcher.repository.read() as session:
        rows, more = data.key_rows(session, text=text, object_type=_choice(ObjectType, kind), state=state_value)
    return render(
        200,
        "keys.html",
        viewer=ctx.viewer,
        rows=rows,
        more=more,
        q=text,
        type=kind,
        state=state,
        types=_TYPES,
        states=_STATES,
    )


@page()
def _key(ctx: Context) -> _Answer:
    uid = ctx.params.get("uid", "")
    with ctx.dispatcher.repository.read() as session:
        found = data.key_page(session, uid) if uid else None
    if found is None:
        return render(404, "message.html", viewer=ctx.viewer, error=f"no object {uid!r} in the store")
    return render(200, "key.html", viewer=ctx.viewer, key=found, audit=data.record_lines(found.audit))


def _instant(text: str) -> float | None:
    """An ISO 8601 time from a form (UTC unless it says otherwise); None when empty; ValueError."""
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


@page()
def _audit(ctx: Context) -> _Answer:
    params = ctx.params
    filters = {name: params.get(name, "").strip() for name in ("identity", "object", "operation", "since", "until")}
    error = None
    try:
        since, until = _instant(filters["since"]), _instant(filters["until"])
    except ValueError:
        since = until = None
        error = "times are ISO 8601, as 2026-01-31T12:00 (UTC unless an offset is given)"
    try:
        limit = max(1, min(int(params.get("limit") or 100), 1000))
    except ValueError:
        limit = 100
    report = None
    with ctx.dispatcher.repository.read() as session:
        records = search(
            session.connection,
            identity=filters["identity"] or None,
            object_id=filters["object"] or None,
            operation=filters["operation"] or None,
            since=since,
            until=until,
            limit=limit,
        )
        if params.get("verify"):
            report = verify(session.connection, ctx.dispatcher.custody)
    return render(
        200,
        "audit.html",
        viewer=ctx.viewer,
        filters=filters,
        limit=limit,
        records=data.record_lines(records),
        report=report,
        error=error,
        operations=sorted(OPERATIONS | {"Approve", "Deny", "Expire"}),
    )


def _desk(ctx: Context) -> Any:
    return getattr(ctx.dispatcher, "approval_desk", None)


@page(approvers=True)
def _approvals(ctx: Context) -> _Answer:
    desk = _desk(ctx)
    if desk is None:
        return render(404, "message.html", viewer=ctx.viewer, error="approvals are not enabled on this server")
    message = error = None
    status = 200
    if ctx.request.method == "POST":
        action, request_id = ctx.form.get("action", ""), ctx.form.get("id", "")[:128]
        if action not in ("approve", "deny") or not request_id:
            status, error = 400, "the form needs an action (approve or deny) and a request id"
        else:
            try:
                done = desk.act(ctx.viewer.identity, action, request_id)
                message = f"{action}d request {request_id}: it is now {done[0].status}"
            except ApprovalError as refused:
                status, error = 403 if refused.kind == ApprovalError.REFUSED else 409, refused.message
    show_all = ctx.params.get("all") == "1"
    if ctx.viewer.full:
        # Administrators and auditors see every request, as `strongroom approvals list` does.
        with ctx.dispatcher.repository.read() as session:
            requests = desk.service.list(session, None, int(time.time()), finished=show_all)
    else:
        requests = desk.act(ctx.viewer.identity, "list", None, finished=show_all)
    name = ctx.viewer.principal.name
    rows = [
        {
            **r.to_json(),
            "created_text": data.when(r.created),
            "expires_text": data.when(r.expires),
            "may_vote": ctx.viewer.approver
            and r.status == "pending"
            and name in r.approvers
            and name != r.requester
            and name not in r.approved_by,
        }
        for r in requests
    ]
    return render(
        status, "approvals.html", viewer=ctx.viewer, requests=rows, show_all=show_all, message=message, error=error
    )


@page()
def _explain(ctx: Context) -> _Answer:
    from ...engine.access import object_facts

    params = ctx.params
    asked = {name: params.get(name, "").strip() for name in ("identity", "operation", "object")}
    lines: list[str] = []
    verdict = None
    error = None
    if asked["identity"] and asked["operation"]:
        policy = ctx.dispatcher.policy
        if asked["operation"] not in OPERATIONS:
            error = f"{asked['operation']!r} is not a KMIP operation as the spec spells it"
        else:
            facts = None
            if asked["object"]:
                with ctx.dispatcher.repository.read() as session:
                    record = session.get(asked["object"], attributes=True)
                if record is None:
                    error = f"no object {asked['object']!r} in the store"
                else:
                    facts = object_facts(record, record.attributes)
            if error is None:
                principal = policy.principal(ClientIdentity(asked["identity"]))
                lines = policy.explain(principal, asked["operation"], facts)
                verdict = policy.decide(principal, asked["operation"], facts).allowed
    return render(
        200,
        "explain.html",
        viewer=ctx.viewer,
        asked=asked,
        lines=lines,
        verdict=verdict,
        error=error,
        operations=sorted(OPERATIONS),
    )


def dashboard_routes() -> dict[str, Route]:
    """The dashboard's paths, for the admin listener's routes."""
    return {
        "/dashboard": Route(("GET",), _overview),
        "/dashboard/": Route(("GET",), _overview),
        "/dashboard/login": Route(("GET",), _login),
        "/dashboard/logout": Route(("POST",), _logout, takes_body=True),
        "/dashboard/keys": Route(("GET",), _keys),
        "/dashboard/key": Route(("GET",), _key),
        "/dashboard/audit": Route(("GET",), _audit),
        "/dashboard/approvals": Route(("GET", "POST"), _approvals, takes_body=True),
        "/dashboard/explain": Route(("GET",), _explain),
        **{f"/dashboard/static/{name}": Route(("GET",), _static_file(name)) for name in _STATIC_TYPES},
    }
