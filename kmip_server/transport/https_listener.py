"""KMIP over HTTPS (the OASIS KMIP HTTPS profile): a second listener in every worker process.

A client POSTs each request message to ``/kmip`` with a body in TTLV
(``application/octet-stream``), JSON (``application/json``) or XML (``text/xml`` or
``application/xml``) and gets the response message in the same encoding and media type. JSON
and XML bodies are read into a TTLV item tree, encoded as TTLV for the worker's
:data:`~.listener.MessageHandler` (the engine's ``Dispatcher.handle``), and its TTLV response is
written back in the request's encoding; what a body becomes is bounded by
``max_message_size`` while it is converted. KMIP failures, a body that does not parse
included, are KMIP responses with HTTP status 200; HTTP statuses are for what is wrong at the
HTTP level.

Requests are parsed by h11 (sans-I/O, so it runs in the connection's callbacks): persistent
connections, pipelining, bodies delimited by Content-Length or chunked, HTTP/1.0 with
``Connection: keep-alive`` kept open. Answers are written here, not through h11, and each
request gets a fresh h11 state machine: our answers are fixed-form (status, four header fields,
a Content-Length body), and h11's checking of them costs about 65 µs a request where these
few lines cost 5 (measured with ``tests/bench/bench_https.py`` and a profile of the two).
Paths are served from :data:`ROUTES` (path -> methods and answer). What is refused, and how:

=====  =====================================================================  ==============
 404   a path not in :data:`ROUTES`                                           kept open
 405   a method the path does not serve (with ``Allow``)                      kept open
 411   a POST to a path that takes a body with neither Content-Length nor     kept open
       chunked Transfer-Encoding (RFC 9112 6.3 lets a server ask with 411)
 413   a body larger than ``listener.max_message_size``, refused as soon as   closed
       the declared length or the chunks received pass it
 415   a Content-Type other than the four above (with ``Accept: ...``)         kept open
 400   a malformed request line or header field, no Host in HTTP/1.1, an      closed
       invalid Content-Length, and what request smuggling is made of (RFC
       9112 6.1, 6.3, 5.2): Transfer-Encoding together with Content-Length,
       several Content-Length fields (even equal), a Transfer-Encoding other
       than chunked, obsolete line folding
 431   a request line and header fields over 16 KiB or 100 fields             closed
 505   an HTTP version other than 1.x                                         closed
=====  =====================================================================  ==============

h11 is liberal where RFC 9112 allows a recipient to be (it unfolds obs-fold, merges equal
Content-Length fields and lets chunked win over Content-Length); a server behind a proxy must
not be, so those shapes, the head limits and control characters (a TTLV client on this port
sends one in its second byte: refused at once, not after the idle time-out) are checked on the
raw head before h11 parses it (:func:`_check_head`).

After a refusal that closes, the answer is followed at once by TLS close_notify, but the
socket is closed only once the client has closed its side or sent what it was sending (the
declared body, or for two seconds when its length is unknown), which is read and dropped
undecrypted: closing with unread input makes the kernel reset the connection, and a client
still sending would see the reset instead of the answer (the "lingering close" of HTTP
servers).

Why this reuses connection.py's connection and listener.py's listener (subclasses of them),
not asyncio's own SSL transport (``loop.create_server(sock=..., ssl=...)`` or ``asyncio.start_server``):

* How connections end. HTTP clients keep idle connections in a pool (kmip_client's
  HttpsTransport, curl, requests), and asyncio's SSL transport holds every close we start open
  until the peer answers our close_notify, up to ``ssl_shutdown_timeout`` (30 s): a graceful
  stop would wait that out for each pooled client that is not reading. The listener's
  connection closes as soon as our output is flushed (see ``connection._Connection``).
* One implementation, not two, of what must behave the same as on the TTLV port: the TLS
  handshake and its errors, the client certificate to identity rule, the accept loop and
  ``max_connections``, handshake and idle time-outs, back-pressure on clients that do not
  read, and the graceful shutdown (requests received are answered, idle connections closed at
  once, the rest aborted after ``shutdown_grace``).

The subclass replaces only where whole plaintext arrives (``_received``) and what "nothing
half received" means (``_quiet``). Requests are answered inline, one at a time in arrival
order, through the plain handler rather than the batch handler: HTTPS is not the port for
throughput, and inline answers keep pipelined responses in order for free.

Message bodies are never logged: requests and responses carry key material.
"""

from __future__ import annotations

import email.utils
import http
import logging
import re
import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable
from typing import NamedTuple

import h11

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.message_encodings import MEDIA_TYPES, from_ttlv, to_ttlv
from kmip_client.protocol.spec.enums import ResultReason

from ..config import ListenerSettings
from ..engine.responses import error_response, invalid_message_response
from .approvals_route import APPROVALS_PATH, approvals_route
from .connection import _Connection, _internal_error_response
from .large import runs_apart
from .listener import Listener, MessageHandler

__all__ = ["KMIP_PATH", "MEDIA_TYPES", "ROUTES", "HttpsListener", "Route", "resolve"]

log = logging.getLogger("strongroom.transport.https")

#: The KMIP HTTPS profile's path.
KMIP_PATH = "/kmip"
# The request media types served are MEDIA_TYPES. The answer's Content-Type: the request's media type, XML's with the charset it is written in.
_ANSWER_TYPES = {media: media + ("; charset=utf-8" if kind == "xml" else "") for media, kind in MEDIA_TYPES.items()}
_ACCEPT = ("Accept", ", ".join(MEDIA_TYPES))
_TEXT = "text/plain; charset=utf-8"

# Limits of a request's head (request line and header fields).
_MAX_HEAD = 16 * 1024
_MAX_FIELDS = 100
# After a refusal, input is read and dropped (see the module notes): the declared body and some
# room for the TLS records around it, but no more than _DISCARD_FACTOR times max_message_size
# (a longer declared body closes at once); for _LINGER seconds when the length is unknown.
_DISCARD_FACTOR = 8
_LINGER = 2.0

_END_OF_HEAD = re.compile(rb"\r?\n\r?\n")
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_FOLD = re.compile(rb"\n[ \t]")
_FRAMING = re.compile(rb"\n(content-length|transfer-encoding)[ \t]*:([^\r\n]*)", re.IGNORECASE)


class _Request(NamedTuple):
    """A request whose head has been read: what answering it needs."""

    method: str
    path: str
    media_type: str  # lower case, without parameters; "" when missing or repeated
    sized: bool  # Content-Length or chunked: the body's end is known
    keep_alive: bool
    http10: bool
    query: str = ""  # the request target's query string, without the "?" (the admin dashboard reads it)
    cookie: str = ""  # the Cookie header field's value ("; "-joined when repeated), for the admin dashboard
    #: Every header field as received (names in lower case, values latin-1 decoded), in order:
    #: the cloud key services (kmip_server/hyok) check signatures and tokens over them.
    headers: tuple[tuple[str, str], ...] = ()
    target: str = ""  # the request target as sent (path and query), for signatures over it


class _Answer(NamedTuple):
    status: int
    content_type: str
    body: bytes
    close: bool = False  # close the connection after it
    headers: tuple[tuple[str, str], ...] = ()


class Route(NamedTuple):
    """What a path serves: its methods, and the answer to a request with its whole body."""

    methods: tuple[str, ...]
    #: None: the answer comes later (a large KMIP message, see _HttpsConnection._kmip).
    answer: Callable[[_HttpsConnection, _Request, bytes], _Answer | None]
    takes_body: bool = False  # a request without a body length is refused with 411
    #: The route serves every path that starts with its key (which ends with "/"), when no
    #: route has the exact path: for APIs with identifiers in the path (AWS XKS, DKE).
    prefix: bool = False


class _Refusal(Exception):
    """A request that is refused with ``status`` and the connection closed."""

    def __init__(self, status: int, text: str, body_length: int | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.body_length = body_length  # of the body still to come, when known


def _text_answer(status: int, text: str, headers: tuple[tuple[str, str], ...] = ()) -> _Answer:
    return _Answer(status, _TEXT, f"{status} {http.HTTPStatus(status).phrase}: {text}\n".encode(), headers=headers)


def _kmip_route(connection: _HttpsConnection, request: _Request, body: bytes) -> _Answer | None:
    if request.media_type not in MEDIA_TYPES:
        return _text_answer(415, "KMIP bodies are TTLV, JSON or XML: " + ", ".join(MEDIA_TYPES), (_ACCEPT,))
    return connection._kmip(request, body)


#: Path -> what it serves. A further endpoint (health, metrics, a cloud API) is one entry.
ROUTES: dict[str, Route] = {
    KMIP_PATH: Route(("POST",), _kmip_route, takes_body=True),
    APPROVALS_PATH: Route(("POST",), approvals_route, takes_body=True),
}


def resolve(path: str, method: str, routes: dict[str, Route] = ROUTES) -> Route | _Answer:
    """The route of ``routes`` serving ``method`` on ``path``, or the 404 or 405 answer."""
    route = routes.get(path)
    if route is None:
        route = _by_prefix(path, routes)
    if route is None:
        if routes is ROUTES:
            return _text_answer(404, "no such resource; KMIP is served at " + KMIP_PATH)
        return _text_answer(404, "no such resource; served here: " + ", ".join(routes))
    if method not in route.methods and not (method == "HEAD" and "GET" in route.methods):
        allow = ", ".join(route.methods)
        return _text_answer(405, f"{path} serves {allow}", (("Allow", allow),))
    return route


def _by_prefix(path: str, routes: dict[str, Route]) -> Route | None:
    """The prefix route with the longest key that ``path`` starts with, if any."""
    best: tuple[int, Route] | None = None
    for key, route in routes.items():
        if route.prefix and path.startswith(key) and (best is None or len(key) > best[0]):
            best = (len(key), route)
    return None if best is None else best[1]


_date: tuple[int, str] = (0, "")


def _http_date() -> str:
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, email.utils.formatdate(now, usegmt=True))
    return _date[1]


def _new_parser() -> h11.Connection:
    return h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD + 4)


def _head(answer: _Answer, *, close: bool, keep_alive_10: bool) -> bytes:
    lines = [
        f"HTTP/1.1 {answer.status} {http.HTTPStatus(answer.status).phrase}",
        f"Date: {_http_date()}",
        f"Content-Type: {answer.content_type}",
        f"Content-Length: {len(answer.body)}",
        "Cache-Control: no-store",  # responses may carry key material
        *(f"{name}: {value}" for name, value in answer.headers),
    ]
    if close:
        lines.append("Connection: close")
    elif keep_alive_10:
        lines.append("Connection: keep-alive")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _check_head(raw: bytes) -> bool:
    """Whether ``raw`` (what has arrived of the next request) holds its whole head, which is
    then fit for h11; a :class:`_Refusal` for what h11 would accept but this port must not."""
    end = _END_OF_HEAD.search(raw, 0, _MAX_HEAD + 4)
    if _CONTROL.search(raw, 0, _MAX_HEAD if end is None else end.start()):
        raise _Refusal(400, "control characters in the request head (not an HTTP request?)")
    if end is None:
        if len(raw) > _MAX_HEAD:
            raise _Refusal(431, "the request line and header fields are longer than 16 KiB")
        return False
    head = raw[: end.start()] + b"\n"  # every field line now follows and ends with a "\n"
    if head.count(b"\n") - 1 > _MAX_FIELDS:
        raise _Refusal(431, f"more than {_MAX_FIELDS} header fields")
    if _FOLD.search(head):
        raise _Refusal(400, "obsolete line folding in the header fields")
    framing = [(name.lower(), value) for name, value in _FRAMING.findall(head)]
    lengths = [value for name, value in framing if name == b"content-length"]
    if len(lengths) > 1 or any(b"," in value for value in lengths):
        raise _Refusal(400, "more than one Content-Length")
    if lengths and len(framing) > len(lengths):
        raise _Refusal(400, "a request with both Transfer-Encoding and Content-Length")
    return True


def _path(target: str) -> str:
    if target.startswith("/"):  # origin form
        return target.partition("?")[0]
    if "://" in target:  # absolute form, which servers must accept (RFC 9112 3.2.2)
        try:
            return urllib.parse.urlsplit(target).path or "/"
        except ValueError:
            raise _Refusal(400, "malformed request target") from None
    return target  # "*", or nonsense: not found either way


def _query(target: str) -> str:
    """The query string of a request target ("" without one); _path has checked the target."""
    if target.startswith("/"):
        return target.partition("?")[2].partition("#")[0]
    if "://" in target:
        return urllib.parse.urlsplit(target).query
    return ""


class _HttpsConnection(_Connection):
    """One client connection: TLS as on the TTLV port, then HTTP requests carrying KMIP."""

    __slots__ = ("_h11", "_request", "_body", "_head_checked", "_lingering", "_discard")

    def __init__(self, listener: Listener, peer: str) -> None:
        super().__init__(listener, peer)
        self._h11 = _new_parser()
        self._request: _Request | None = None  # its head is read; its body is awaited
        self._body = bytearray()
        self._head_checked = False  # _check_head passed the next request's head
        self._lingering = False  # a refusal and close_notify were sent: drop input, then close
        self._discard = 0  # ...once this many more bytes have come at most

    @property
    def _quiet(self) -> bool:
        if self._lingering:
            return False
        return self._h11.their_state is h11.IDLE and not self._h11.trailing_data[0]

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            self._drop(len(data))  # TLS records; there is nothing left to decrypt them for
        else:
            super().data_received(data)

    def _received(self, data: bytes) -> None:
        conn = self._h11
        if conn.their_state is h11.IDLE and not self._head_checked and not conn.trailing_data[0]:
            # Empty lines before a request line are to be ignored (RFC 9112 2.2); h11 refuses them.
            data = data.lstrip(b"\r\n")
        conn.receive_data(data)
        self._process_safely()

    def _process_safely(self) -> None:
        try:
            self._process()
        except _Refusal as refusal:
            self._refuse(refusal)
        except h11.RemoteProtocolError as exc:
            # 501 is h11's hint for a Transfer-Encoding it does not know: 400 here, as a
            # body of unknown length is (RFC 9112 6.3).
            status = exc.error_status_hint if exc.error_status_hint in (400, 431) else 400
            self._refuse(_Refusal(status, str(exc)))

    def _process(self) -> None:
        limit = self._listener.settings.max_message_size
        # A large message on the listener's thread holds back what follows it (see _kmip).
        while not self._closing and not self._lingering and not self._large_running:
            conn = self._h11  # replaced after each answer (see _reply)
            if conn.their_state is h11.IDLE and not self._head_checked:
                if not _check_head(conn.trailing_data[0]):
                    return
                self._head_checked = True
            event = conn.next_event()
            if event is h11.NEED_DATA:
                if conn.they_are_waiting_for_100_continue and self._request is not None:
                    self._send(conn.send(h11.InformationalResponse(status_code=100, headers=[])) or b"")
                return
            if event is h11.PAUSED:
                return  # MUST_CLOSE: our answer said so, and the connection is closing
            if isinstance(event, h11.Request):
                self._head_checked = False
                self._request = self._start(event, limit)
            elif isinstance(event, h11.Data):
                if len(self._body) + len(event.data) > limit:
                    # Chunked (a declared length over the limit is refused with the head): how
                    # much more is coming is unknown.
                    raise _Refusal(413, f"the request body is larger than {limit} bytes")
                self._body += event.data
            elif isinstance(event, h11.EndOfMessage):
                request, self._request = self._request, None
                body, self._body = bytes(self._body), bytearray()
                assert request is not None
                self._deadline = self._listener.loop.time() + self._listener.settings.idle_timeout
                self._respond(request, body)
            elif isinstance(event, h11.ConnectionClosed):
                return

    def _start(self, event: h11.Request, limit: int) -> _Request:
        version = event.http_version
        if version not in (b"1.1", b"1.0"):
            raise _Refusal(505, "only HTTP/1.1 and HTTP/1.0 are served")
        length: int | None = None
        chunked = False
        types: list[bytes] = []
        connection: list[bytes] = []
        cookies: list[bytes] = []
        expect_continue = self._h11.they_are_waiting_for_100_continue
        for name, value in event.headers:
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = True  # h11 accepts chunked only
            elif name == b"content-type":
                types.append(value)
            elif name == b"connection":
                connection.extend(token.strip().lower() for token in value.split(b","))
            elif name == b"cookie":
                cookies.append(value)
        if length is not None and length > limit:
            # A client that waits for 100 Continue sends no body: nothing to read and drop.
            raise _Refusal(413, f"the request body is larger than {limit} bytes", 0 if expect_continue else length)
        media_type = types[0].split(b";", 1)[0].strip().lower().decode("latin-1") if len(types) == 1 else ""
        method = event.method.decode("ascii")
        target = event.target.decode("ascii")
        path = _path(target)
        http10 = version == b"1.0"
        keep_alive = b"keep-alive" in connection if http10 else b"close" not in connection
        cookie = b"; ".join(cookies).decode("latin-1")
        headers = tuple((name.decode("latin-1"), value.decode("latin-1")) for name, value in event.headers)
        return _Request(
            method,
            path,
            media_type,
            length is not None or chunked,
            keep_alive,
            http10,
            _query(target),
            cookie,
            headers,
            target,
        )

    # ---- answers

    def _respond(self, request: _Request, body: bytes) -> None:
        route = resolve(request.path, request.method, self._listener.routes)  # type: ignore[attr-defined]
        if isinstance(route, _Answer):
            answer = route
        elif route.takes_body and not request.sized and request.method == "POST":
            answer = _text_answer(411, "a request body needs Content-Length or chunked Transfer-Encoding")
        else:
            deferred = route.answer(self, request, body)
            if deferred is None:
                return  # answered by _large_answered
            answer = deferred
        if answer.status >= 400:
            log.debug("HTTPS %d for %s (%s)", answer.status, self._peer, self._name)
        self._reply(request, answer)

    def _kmip(self, request: _Request, body: bytes) -> _Answer | None:
        """The answer to a KMIP request; None when it comes later: a large message (see
        transport/large.py) runs on the listener's thread, as on the TTLV port, while the
        worker serves its other clients; this connection reads nothing more until it is
        answered, so its answers keep their order."""
        identity = self._identity
        assert identity is not None
        encoding = MEDIA_TYPES[request.media_type]
        if encoding == "ttlv":
            message = body  # the body limit bounds it; the engine answers bad TTLV itself
        else:
            try:
                message = to_ttlv(body, encoding, max_size=self._listener.settings.max_message_size)
            except (KmipError, ValueError, RecursionError) as exc:  # ProtocolError is a KmipError
                # The client's own input, but logged without it: it may hold key material.
                log.info("malformed %s request from %s (%s)", encoding.upper(), self._peer, identity.name)
                failure = invalid_message_response(f"cannot read the {encoding.upper()} request: {exc}")
                return self._kmip_answer(request, from_ttlv(failure, encoding))
        if runs_apart(message):
            self._large_running = True
            if self._transport is not None:
                self._transport.pause_reading()
            self._listener.large.submit(
                self._listener.loop, message, identity, lambda response: self._large_answered_https(request, response)
            )
            return None
        try:
            response: bytes | None = self._listener.handler(message, identity)
        except Exception:
            # As on the TTLV port: a bug in the engine, not bad input; the request is not logged.
            log.exception("request handler failed for %s (%s); closing the connection", self._peer, identity.name)
            response = None
        return self._kmip_answer(request, self._encoded(response, encoding))

    def _kmip_answer(self, request: _Request, encoded: tuple[bytes, bool] | bytes) -> _Answer:
        body, close = encoded if isinstance(encoded, tuple) else (encoded, False)
        return _Answer(200, _ANSWER_TYPES[request.media_type], body, close)

    def _encoded(self, response: bytes | None, encoding: str) -> tuple[bytes, bool]:
        """The engine's TTLV response in the request's encoding, and whether to close after it
        (None: the handler raised, which closes the connection)."""
        if response is None:
            return from_ttlv(_internal_error_response(), encoding), True
        try:
            return from_ttlv(response, encoding), False
        except (KmipError, ValueError):
            # Text that XML cannot carry (a control character in a name, say). The request was
            # carried out all the same (a Create made its key): say so, or a retry would repeat it.
            log.warning(
                "the response to %s (%s) cannot be written in %s; the request was carried out",
                self._peer,
                self._name,
                encoding.upper(),
            )
            error = KmipError(
                f"the request was carried out, but its response cannot be written in {encoding.upper()}",
                ResultReason.GENERAL_FAILURE,
            )
            return from_ttlv(error_response(error), encoding), False

    def _large_answered_https(self, request: _Request, response: bytes | None) -> None:
        self._large_running = False
        if self._closing:
            return  # aborted meanwhile (the graceful stop's grace ran out, say)
        # A handler that raised (None) was logged on the thread, and closes the connection.
        self._reply(request, self._kmip_answer(request, self._encoded(response, MEDIA_TYPES[request.media_type])))
        if self._closing:
            return
        if self._transport is not None:
            self._transport.resume_reading()
        self._process_safely()  # what was pipelined behind it

    def _reply(self, request: _Request, answer: _Answer) -> None:
        # A stopping server answers what it has received and says it closes.
        close = answer.close or not request.keep_alive or self._draining
        head = _head(answer, close=close, keep_alive_10=request.http10)
        self._send(head if request.method == "HEAD" else head + answer.body)
        if close:
            self._close()
            return
        # The next request: a fresh h11 state machine, given what followed this request (see
        # the module notes on why answers are not written through h11).
        rest = self._h11.trailing_data[0]
        self._h11 = _new_parser()
        if rest:
            self._h11.receive_data(rest)

    def _refuse(self, refusal: _Refusal) -> None:
        """Answer a refused request, then drop what follows and close (see the module notes)."""
        log.info("refusing an HTTPS request from %s (%s): %d, %s", self._peer, self._name, refusal.status, refusal.text)
        answer = _text_answer(refusal.status, refusal.text)
        self._send(_head(answer, close=True, keep_alive_10=False) + answer.body)
        self._request = None
        cap = _DISCARD_FACTOR * self._listener.settings.max_message_size
        known = refusal.body_length
        if known is not None and (known == 0 or known > cap):
            self._close()  # nothing more is coming, or too much to wait for
            return
        self._say_close_notify()  # the client sees the end of the answer now
        self._lingering = True
        if known is None:
            self._discard = cap
            self._set_deadline(_LINGER)
        else:
            self._discard = min(known + known // 8 + 16 * 1024, cap)
        pending = len(self._h11.trailing_data[0])
        self._h11 = _new_parser()  # drops what it held; nothing more is parsed
        self._drop(pending)

    def _drop(self, count: int) -> None:
        self._discard -= count
        if self._discard <= 0:
            self._close()

    def _check_deadline(self) -> None:
        if self._lingering and not self._closing and self._listener.loop.time() >= self._deadline:
            self._timer = None
            self._close()  # done lingering after a refusal: nothing to report
            return
        super()._check_deadline()


class HttpsListener(Listener):
    """Serves KMIP over HTTPS on one listening socket in the current process's event loop.

    The same TLS context, identity mode and settings as the TTLV :class:`Listener`; its own
    connections (``max_connections`` of them per worker). No batch handler (requests are
    answered inline, see the module notes) and no accept balancing between workers.
    """

    connection_class = _HttpsConnection
    #: What this listener serves (the admin listener has its own, kmip_server/admin).
    routes: dict[str, Route] = ROUTES

    def __init__(
        self,
        sock: socket.socket,
        ssl_context: ssl.SSLContext | None,  # None: plain_http.py's subclass, which runs no TLS
        settings: ListenerSettings,
        handler: MessageHandler,
        *,
        identity_mode: str = "cn",
    ) -> None:
        super().__init__(sock, ssl_context, settings, handler, identity_mode=identity_mode)
