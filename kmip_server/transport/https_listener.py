"""KMIP over HTTPS (the OASIS KMIP HTTPS profile): a second listener in every worker process.

A client POSTs each request message to ``/kmip`` with a body in TTLV
(``application/octet-stream``), JSON (``application/json``) or XML (``text/xml`` or
``application/xml``) and gets the response message in the same encoding and media type. JSON
and XML bodies are read into a TTLV item tree, encoded as TTLV for the worker's
:data:`~.listener.MessageHandler` (the engine's ``Dispatcher.handle``), and its TTLV response is
written back in the request's encoding. KMIP failures, a body that does not parse included, are
KMIP responses with HTTP status 200; HTTP statuses are for what is wrong at the HTTP level.

HTTP/1.1 (and 1.0) with persistent connections and pipelining; request bodies are delimited by
Content-Length only. What is refused, and how:

=====  =====================================================================  ==============
 404   a path other than ``/kmip``                                            kept open
 405   a method other than POST (with ``Allow: POST``)                        kept open
 411   a POST without Content-Length, or a chunked body (RFC 9112 6.3 lets a  kept open;
       server refuse a body without Content-Length with 411)                  chunked: closed
 413   a body larger than ``listener.max_message_size``                       closed
 415   a Content-Type other than the four above (with ``Accept: ...``)         kept open
 400   a malformed request line or header field, no Host in HTTP/1.1, an      closed
       invalid Content-Length, Transfer-Encoding other than chunked or
       together with Content-Length (RFC 9112 6.1, 6.3: smuggling)
 431   a request line and header fields over 16 KiB or 100 fields             closed
 505   an HTTP version other than 1.x                                         closed
=====  =====================================================================  ==============

After a refusal that closes, the answer is followed at once by TLS close_notify, but the
socket is closed only once the client has closed its side or sent what it was sending (the
declared body, or for two seconds when its length is unknown), which is read and dropped
undecrypted: closing with unread input makes the kernel reset the connection, and a client
still sending would see the reset instead of the answer (the "lingering close" of HTTP
servers).

Why this reuses listener.py's connection and listener (subclasses of them), not asyncio's own
SSL transport (``loop.create_server(sock=..., ssl=...)`` or ``asyncio.start_server``):

* How connections end. HTTP clients keep idle connections in a pool (kmip_client's
  HttpsTransport, curl, requests), and asyncio's SSL transport holds every close we start open
  until the peer answers our close_notify, up to ``ssl_shutdown_timeout`` (30 s): a graceful
  stop would wait that out for each pooled client that is not reading. The listener's
  connection closes as soon as our output is flushed (see ``_Connection``).
* One implementation, not two, of what must behave the same as on the TTLV port: the TLS
  handshake and its errors, the client certificate to identity rule, the accept loop and
  ``max_connections``, handshake and idle time-outs, back-pressure on clients that do not
  read, and the graceful shutdown (requests received are answered, idle connections closed at
  once, the rest aborted after ``shutdown_grace``).

The price is that HTTP is parsed in callbacks rather than with streams: the small state
machine below. The TTLV listener's per-request path is untouched: this subclass replaces only
where whole plaintext arrives (``_received``) and what "nothing half received" means
(``_quiet``). Requests are answered inline, one at a time in arrival order, through the plain
handler rather than the batch handler: HTTPS is not the port for throughput, and inline
answers keep pipelined responses in order for free.

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
from typing import NamedTuple

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.message_encodings import MEDIA_TYPES, from_ttlv, to_ttlv
from kmip_client.protocol.spec.enums import ResultReason

from ..config import ListenerSettings
from ..engine.responses import error_response, invalid_message_response
from .listener import Listener, MessageHandler, _Connection, _internal_error_response

__all__ = ["KMIP_PATH", "MEDIA_TYPES", "HttpsListener"]

log = logging.getLogger("strongroom.transport.https")

#: The one resource: the KMIP HTTPS profile's path.
KMIP_PATH = "/kmip"
# The request media types served are MEDIA_TYPES. The answer's Content-Type: the request's media type, XML's with the charset it is written in.
_ANSWER_TYPES = {media: media + ("; charset=utf-8" if kind == "xml" else "") for media, kind in MEDIA_TYPES.items()}
_ACCEPT = "Accept: " + ", ".join(MEDIA_TYPES)
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
# Control characters are never part of a request line or header field (a TTLV message sent to
# this port starts with one in its second byte): refused at once, not after the idle time-out.
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_VERSION = re.compile(r"HTTP/([0-9])\.([0-9])\Z")
_DIGITS = re.compile(r"[0-9]+\Z")
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class _Request(NamedTuple):
    """A request whose head has been read: what answering it needs."""

    method: str
    path: str
    media_type: str  # lower case, without parameters; "" when missing or repeated
    length: int  # of the body
    sized: bool  # Content-Length was given
    keep_alive: bool
    http10: bool


class _Refusal(Exception):
    """A request head that is refused with ``status`` and the connection closed."""

    def __init__(self, status: int, text: str, body_length: int | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.body_length = body_length  # of the body that follows, when known


_date: tuple[int, str] = (0, "")


def _http_date() -> str:
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, email.utils.formatdate(now, usegmt=True))
    return _date[1]


def _head(
    status: int, content_type: str, length: int, *, close: bool, keep_alive_10: bool, extra: tuple[str, ...]
) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}",
        f"Date: {_http_date()}",
        f"Content-Type: {content_type}",
        f"Content-Length: {length}",
        "Cache-Control: no-store",  # responses may carry key material
        *extra,
    ]
    if close:
        lines.append("Connection: close")
    elif keep_alive_10:
        lines.append("Connection: keep-alive")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _tokens(fields: dict[str, list[str]], name: str) -> list[str]:
    """The comma-separated members of every ``name`` field, lower case."""
    return [token.strip().lower() for value in fields.get(name, ()) for token in value.split(",") if token.strip()]


class _HttpsConnection(_Connection):
    """One client connection: TLS as on the TTLV port, then HTTP requests carrying KMIP."""

    __slots__ = ("_buffer", "_request", "_lingering", "_discard")

    def __init__(self, listener: Listener, peer: str) -> None:
        super().__init__(listener, peer)
        self._buffer = bytearray()  # plaintext received and not yet taken
        self._request: _Request | None = None  # its head is read; its body is awaited
        self._lingering = False  # a refusal and close_notify were sent: drop input, then close
        self._discard = 0  # ...once this many more bytes have come at most

    @property
    def _quiet(self) -> bool:
        return not self._buffer and self._request is None and not self._lingering

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            self._drop(len(data))  # TLS records; there is nothing left to decrypt them for
        else:
            super().data_received(data)

    def _received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while not self._closing and not self._lingering:
            request = self._request
            if request is None:
                request = self._request = self._read_head()
                if request is None:
                    return
            if len(buffer) < request.length:
                return
            body = bytes(buffer[: request.length])
            del buffer[: request.length]
            self._request = None
            self._deadline = self._listener.loop.time() + self._listener.settings.idle_timeout
            self._respond(request, body)

    # ---- the head

    def _read_head(self) -> _Request | None:
        """The next request's head, once it has all arrived; None before, or after refusing it."""
        buffer = self._buffer
        if buffer and buffer[0] in b"\r\n":
            # Empty lines before a request line are to be ignored (RFC 9112 2.2).
            del buffer[: len(buffer) - len(buffer.lstrip(b"\r\n"))]
        end = _END_OF_HEAD.search(buffer, 0, _MAX_HEAD + 4)
        if _CONTROL.search(buffer, 0, _MAX_HEAD if end is None else end.start()):
            self._refuse(_Refusal(400, "control characters in the request head (not an HTTP request?)"))
            return None
        if end is None:
            if len(buffer) > _MAX_HEAD:
                self._refuse(_Refusal(431, "the request line and header fields are longer than 16 KiB"))
            return None
        head = bytes(buffer[: end.start()]).decode("latin-1")
        del buffer[: end.end()]
        try:
            request, expect_continue = self._parse_head(head)
        except _Refusal as refusal:
            self._refuse(refusal)
            return None
        if expect_continue and not buffer:
            self._send(_CONTINUE)  # the client waits for this before sending the body
        return request

    def _parse_head(self, head: str) -> tuple[_Request, bool]:
        lines = head.split("\n")
        parts = lines[0].rstrip("\r").split(" ")
        version = _VERSION.match(parts[2]) if len(parts) == 3 else None
        if version is None or not _TOKEN.match(parts[0]) or not parts[1]:
            raise _Refusal(400, "malformed request line")
        method, target = parts[0], parts[1]
        if version.group(1) != "1":
            raise _Refusal(505, "only HTTP/1.1 and HTTP/1.0 are served")
        http10 = version.group(2) == "0"
        if len(lines) - 1 > _MAX_FIELDS:
            raise _Refusal(431, f"more than {_MAX_FIELDS} header fields")
        fields: dict[str, list[str]] = {}
        for line in lines[1:]:
            line = line.removesuffix("\r")
            if line[:1] in (" ", "\t"):
                raise _Refusal(400, "obsolete line folding in the header fields")
            name, colon, value = line.partition(":")
            if not colon or not _TOKEN.match(name) or "\r" in value:
                raise _Refusal(400, "malformed header field")
            fields.setdefault(name.lower(), []).append(value.strip(" \t"))
        if not http10 and "host" not in fields:
            raise _Refusal(400, "an HTTP/1.1 request must have a Host header field")
        if "transfer-encoding" in fields:
            if "content-length" in fields:
                raise _Refusal(400, "a request with both Transfer-Encoding and Content-Length")
            codings = _tokens(fields, "transfer-encoding")
            if codings and codings[-1] == "chunked":
                raise _Refusal(411, "chunked request bodies are not accepted; send Content-Length")
            raise _Refusal(400, "a Transfer-Encoding that leaves the body's length unknown")
        lengths = {value.strip() for text in fields.get("content-length", ()) for value in text.split(",")}
        if len(lengths) > 1 or not all(_DIGITS.match(value) for value in lengths):
            raise _Refusal(400, "invalid Content-Length")
        sized = bool(lengths)
        length = int(next(iter(lengths))) if sized else 0
        expect_continue = "100-continue" in _tokens(fields, "expect") and not http10 and length > 0
        limit = self._listener.settings.max_message_size
        if length > limit:
            # A client that waits for 100 Continue sends no body: nothing to read and drop.
            raise _Refusal(413, f"the request body is larger than {limit} bytes", 0 if expect_continue else length)
        connection = _tokens(fields, "connection")
        keep_alive = "keep-alive" in connection if http10 else "close" not in connection
        types = fields.get("content-type", [])
        media_type = types[0].split(";", 1)[0].strip().lower() if len(types) == 1 else ""
        request = _Request(method, self._path(target), media_type, length, sized, keep_alive, http10)
        return request, expect_continue

    @staticmethod
    def _path(target: str) -> str:
        if target.startswith("/"):  # origin form
            return target.partition("?")[0]
        if "://" in target:  # absolute form, which servers must accept (RFC 9112 3.2.2)
            try:
                return urllib.parse.urlsplit(target).path or "/"
            except ValueError:
                raise _Refusal(400, "malformed request target") from None
        return target  # "*", or nonsense: not found either way

    # ---- answers

    def _respond(self, request: _Request, body: bytes) -> None:
        if request.path != KMIP_PATH:
            self._reply_text(request, 404, "KMIP is served at /kmip")
        elif request.method != "POST":
            self._reply_text(request, 405, "KMIP requests are POSTed to /kmip", ("Allow: POST",))
        elif not request.sized:
            self._reply_text(request, 411, "a KMIP request needs Content-Length")
        elif request.media_type not in MEDIA_TYPES:
            self._reply_text(request, 415, "KMIP bodies are TTLV, JSON or XML: " + ", ".join(MEDIA_TYPES), (_ACCEPT,))
        else:
            answer, close = self._kmip(MEDIA_TYPES[request.media_type], body)
            self._reply(request, 200, _ANSWER_TYPES[request.media_type], answer, close=close)

    def _kmip(self, encoding: str, body: bytes) -> tuple[bytes, bool]:
        """The answer to a KMIP request body, and whether to close the connection after it."""
        identity = self._identity
        assert identity is not None
        if encoding == "ttlv":
            message = body
        else:
            try:
                message = to_ttlv(body, encoding, max_size=self._listener.settings.max_message_size)
            except (KmipError, ValueError, RecursionError) as exc:  # ProtocolError is a KmipError
                # The client's own input, but logged without it: it may hold key material.
                log.info("malformed %s request from %s (%s)", encoding.upper(), self._peer, identity.name)
                failure = invalid_message_response(f"cannot read the {encoding.upper()} request: {exc}")
                return from_ttlv(failure, encoding), False
        try:
            response = self._listener.handler(message, identity)
        except Exception:
            # As on the TTLV port: a bug in the engine, not bad input; the request is not logged.
            log.exception("request handler failed for %s (%s); closing the connection", self._peer, identity.name)
            return from_ttlv(_internal_error_response(), encoding), True
        try:
            return from_ttlv(response, encoding), False
        except (KmipError, ValueError):
            # Text that XML cannot carry (a control character in a name, say). The request was
            # carried out all the same (a Create made its key): say so, or a retry would repeat it.
            log.warning(
                "the response to %s (%s) cannot be written in %s; the request was carried out",
                self._peer,
                identity.name,
                encoding.upper(),
            )
            error = KmipError(
                f"the request was carried out, but its response cannot be written in {encoding.upper()}",
                ResultReason.GENERAL_FAILURE,
            )
            return from_ttlv(error_response(error), encoding), False

    def _reply_text(self, request: _Request, status: int, text: str, extra: tuple[str, ...] = ()) -> None:
        log.debug("HTTPS %d for %s (%s)", status, self._peer, self._name)
        phrase = http.HTTPStatus(status).phrase
        self._reply(request, status, _TEXT, f"{status} {phrase}: {text}\n".encode(), extra=extra)

    def _reply(
        self,
        request: _Request,
        status: int,
        content_type: str,
        body: bytes,
        *,
        close: bool = False,
        extra: tuple[str, ...] = (),
    ) -> None:
        # A stopping server answers what it has received and says it closes.
        close = close or not request.keep_alive or self._draining
        head = _head(status, content_type, len(body), close=close, keep_alive_10=request.http10, extra=extra)
        self._send(head if request.method == "HEAD" else head + body)
        if close:
            self._close()

    def _refuse(self, refusal: _Refusal) -> None:
        """Answer a refused head, then drop what follows and close (see the module notes)."""
        log.info("refusing an HTTPS request from %s (%s): %d, %s", self._peer, self._name, refusal.status, refusal.text)
        phrase = http.HTTPStatus(refusal.status).phrase
        body = f"{refusal.status} {phrase}: {refusal.text}\n".encode()
        self._send(_head(refusal.status, _TEXT, len(body), close=True, keep_alive_10=False, extra=()) + body)
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
        pending = len(self._buffer)
        self._buffer.clear()
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

    def __init__(
        self,
        sock: socket.socket,
        ssl_context: ssl.SSLContext,
        settings: ListenerSettings,
        handler: MessageHandler,
        *,
        identity_mode: str = "cn",
    ) -> None:
        super().__init__(sock, ssl_context, settings, handler, identity_mode=identity_mode)
