"""KMIP over HTTPS: the server's second listener (``strongroom serve --https-port``).

Most tests run against one real ``strongroom serve`` (SoftHSM2, SQLite) with its HTTPS port on
loopback, over real mutual TLS: the client library's HttpsTransport in each body encoding, raw
``http.client`` and ``ssl`` requests for each way a request is refused, keep-alive, pipelining,
and identities taken from the client certificate. The last tests run the listener with the
transport tests' trivial handler (:mod:`tests.integration.tls_fixtures`) for what needs a slow
or failing handler: graceful shutdown, a handler that raises, the idle time-out.
"""

from __future__ import annotations

import http.client
import signal
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kmip_client import Client
from kmip_client.https_transport import HttpsTransport
from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.message_encodings import from_ttlv, to_ttlv
from kmip_client.protocol.model import ResponseMessage
from kmip_client.protocol.model.messages import decode_message
from kmip_client.protocol.spec.enums import ResultReason, ResultStatus
from tests.support.server_process import (
    LOOPBACK,
    ServerProcess,
    TlsFiles,
    client_ssl_context,
    free_port,
    issue_client_cert,
    running_server,
    strongroom_init,
)

from .tls_fixtures import PkiFiles, make_pki, start_server
from .tls_fixtures import connect as echo_connect_to
from .tls_fixtures import request as echo_request

MAX_MESSAGE_SIZE = 1024 * 1024  # the default listener.max_message_size


@dataclass(frozen=True)
class HttpsServer:
    process: ServerProcess
    https_port: int
    data_dir: Path
    identities: dict[str, TlsFiles]

    def context(self, who: str = "admin") -> ssl.SSLContext:
        files = self.identities[who]
        return client_ssl_context(files.ca, files.cert, files.key)

    @property
    def url(self) -> str:
        return f"https://{LOOPBACK}:{self.https_port}/kmip"

    def client(self, encoding: str, who: str = "admin") -> Client:
        return Client(transport=HttpsTransport(self.url, self.context(who), encoding=encoding))

    def connection(self, who: str = "admin") -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(LOOPBACK, self.https_port, timeout=10, context=self.context(who))

    def raw(self, who: str = "admin") -> ssl.SSLSocket:
        raw = socket.create_connection((LOOPBACK, self.https_port), timeout=10)
        return self.context(who).wrap_socket(raw)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsServer]:
    data_dir = tmp_path_factory.mktemp("https") / "data"
    admin = strongroom_init(data_dir)
    people = {name: issue_client_cert(data_dir, name, data_dir.parent / name) for name in ("alice", "bob")}
    https_port = free_port()
    with running_server(data_dir, free_port(), workers=2, extra_args=["--https-port", str(https_port)]) as process:
        yield HttpsServer(process, https_port, data_dir, {"admin": admin, **people})


# ---- helpers


def from_encoding(body: bytes, encoding: str) -> ResponseMessage:
    message = decode_message(to_ttlv(body, encoding))
    assert isinstance(message, ResponseMessage)
    return message


ENCODING_OF = {
    "application/octet-stream": "ttlv",
    "application/json": "json",
    "text/xml": "xml",
    "application/xml": "xml",
}


def post(
    conn: http.client.HTTPSConnection, body: bytes, content_type: str | None = "application/json", path: str = "/kmip"
) -> http.client.HTTPResponse:
    headers = {"Content-Type": content_type} if content_type else {}
    conn.request("POST", path, body=body, headers=headers)
    return conn.getresponse()


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


class RawReader:
    """Reads HTTP responses off a TLS socket, keeping what follows one for the next."""

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.sock = sock
        self.data = b""

    def _more(self) -> bool:
        chunk = self.sock.recv(65536)
        self.data += chunk
        return bool(chunk)

    def response(self) -> RawResponse:
        while b"\r\n\r\n" not in self.data:
            if not self._more():
                raise EOFError(f"connection closed before a whole response head: {self.data!r}")
        head, self.data = self.data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.data) < length:
            if not self._more():
                raise EOFError("connection closed in a response body")
        body, self.data = self.data[:length], self.data[length:]
        return RawResponse(status, headers, body)

    def closed(self) -> bool:
        """True once the server has closed the connection (EOF or reset) with nothing more sent."""
        try:
            return not self.data and not self._more()
        except (ConnectionError, ssl.SSLError):
            return True


def head_bytes(lines: list[str], body: bytes = b"") -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def assert_success(response: ResponseMessage) -> None:
    (item,) = response.batch_items
    assert item.result_status == ResultStatus.SUCCESS, (item.result_reason, item.result_message)


# ---- KMIP over HTTPS, end to end


@pytest.mark.parametrize("encoding", ["ttlv", "json", "xml"])
def test_create_then_get_in_each_encoding(server: HttpsServer, encoding: str) -> None:
    with server.client(encoding) as kmip:
        uid = kmip.create("AES", 256, name=f"https-{encoding}", attributes={"x-via": encoding})
        kmip.activate(uid)
        key = kmip.get(uid)
        assert len(key.value) == 32
        assert kmip.locate(name=f"https-{encoding}") == [uid]
        assert kmip.get_attributes(uid, ["x-via"]) == {"x-via": [encoding]}


def test_both_ports_serve_the_same_store(server: HttpsServer) -> None:
    with server.client("json") as over_https:
        uid = over_https.create("AES", 128, name="both-ports")
        value = over_https.get(uid).value
    admin = server.identities["admin"]
    with Client(f"{LOOPBACK}:{server.process.port}", ca=admin.ca, cert=admin.cert, key=admin.key) as over_ttlv:
        assert over_ttlv.get(uid).value == value


@pytest.mark.parametrize("content_type", list(ENCODING_OF))
def test_answer_is_in_the_request_encoding_and_media_type(server: HttpsServer, content_type: str) -> None:
    encoding = ENCODING_OF[content_type]
    conn = server.connection()
    try:
        answer = post(conn, from_ttlv(echo_request(b"dv"), encoding), content_type)
        body = answer.read()
        assert answer.status == 200
        assert answer.getheader("Content-Type", "").split(";")[0] == content_type
        assert answer.getheader("Cache-Control") == "no-store"
        response = from_encoding(body, encoding)
        assert_success(response)
        assert response.batch_items[0].unique_batch_item_id == b"dv"
    finally:
        conn.close()


def test_identity_comes_from_the_client_certificate(server: HttpsServer) -> None:
    with server.client("json", "alice") as alice, server.client("xml", "bob") as bob:
        uid = alice.create("AES", 256, name="alice-over-https")
        with pytest.raises(KmipError) as hidden:
            bob.get(uid)
        assert hidden.value.reason == ResultReason.OBJECT_NOT_FOUND  # another's: as if missing
        assert bob.locate(name="alice-over-https") == []
        assert len(alice.get(uid).value) == 32
    with server.client("ttlv", "admin") as admin:  # an administrator may use every object
        assert len(admin.get(uid).value) == 32


def test_keep_alive_serves_several_requests_on_one_connection(server: HttpsServer) -> None:
    conn = server.connection()
    try:
        first = post(conn, from_ttlv(echo_request(b"one"), "json"))
        assert first.status == 200 and not first.will_close
        assert from_encoding(first.read(), "json").batch_items[0].unique_batch_item_id == b"one"
        sock = conn.sock
        assert sock is not None
        local = sock.getsockname()
        second = post(conn, echo_request(b"two"), "application/octet-stream")
        assert second.status == 200
        assert from_encoding(second.read(), "ttlv").batch_items[0].unique_batch_item_id == b"two"
        assert conn.sock is sock and sock.getsockname() == local  # no new connection
    finally:
        conn.close()


def test_pipelined_requests_are_answered_in_order(server: HttpsServer) -> None:
    with server.raw() as sock:
        requests = b""
        for tag in (b"p1", b"p2", b"p3"):
            body = from_ttlv(echo_request(tag), "xml")
            lines = ["POST /kmip HTTP/1.1", "Host: kms", "Content-Type: text/xml", f"Content-Length: {len(body)}"]
            requests += head_bytes(lines, body)
        sock.sendall(requests)
        reader = RawReader(sock)
        for tag in (b"p1", b"p2", b"p3"):
            answer = reader.response()
            assert answer.status == 200
            assert from_encoding(answer.body, "xml").batch_items[0].unique_batch_item_id == tag


def test_three_pipelined_requests_in_one_write_are_answered_in_order(server: HttpsServer) -> None:
    # A sized request, a chunked one and one for another path, in a single write: each is
    # answered in turn on the same connection.
    sized = from_ttlv(echo_request(b"first"), "json")
    chunked = echo_request(b"second")
    write = head_bytes(
        ["POST /kmip HTTP/1.1", "Host: kms", "Content-Type: application/json", f"Content-Length: {len(sized)}"], sized
    )
    chunked_lines = ["POST /kmip HTTP/1.1", "Host: kms", "Content-Type: application/octet-stream"]
    write += head_bytes(
        [*chunked_lines, "Transfer-Encoding: chunked"], b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunked), chunked)
    )
    write += head_bytes(["GET /elsewhere HTTP/1.1", "Host: kms"])
    with server.raw() as sock:
        sock.sendall(write)
        reader = RawReader(sock)
        first, second, third = reader.response(), reader.response(), reader.response()
        assert from_encoding(first.body, "json").batch_items[0].unique_batch_item_id == b"first"
        assert from_encoding(second.body, "ttlv").batch_items[0].unique_batch_item_id == b"second"
        assert third.status == 404 and "connection" not in third.headers
        sock.sendall(echo_post(b"fourth"))  # and it is still open
        assert echo_answer(reader)[2] == b"fourth"


def test_a_request_split_byte_by_byte_is_reassembled(server: HttpsServer) -> None:
    body = echo_request(b"slow-client")
    lines = [
        "POST /kmip HTTP/1.1",
        "Host: kms",
        "Content-Type: application/octet-stream",
        f"Content-Length: {len(body)}",
    ]
    with server.raw() as sock:
        for byte in head_bytes(lines, body):
            sock.sendall(bytes([byte]))
        answer = RawReader(sock).response()
        assert answer.status == 200
        assert from_encoding(answer.body, "ttlv").batch_items[0].unique_batch_item_id == b"slow-client"


def test_expect_100_continue(server: HttpsServer) -> None:
    body = from_ttlv(echo_request(b"dv"), "json")
    lines = [
        "POST /kmip HTTP/1.1",
        "Host: kms",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Expect: 100-continue",
    ]
    with server.raw() as sock:
        sock.sendall(head_bytes(lines))
        reader = RawReader(sock)
        assert reader.response().status == 100
        sock.sendall(body)
        answer = reader.response()
        assert answer.status == 200
        assert_success(from_encoding(answer.body, "json"))


def test_http10_is_answered_then_closed(server: HttpsServer) -> None:
    body = echo_request(b"dv")
    lines = ["POST /kmip HTTP/1.0", "Content-Type: application/octet-stream", f"Content-Length: {len(body)}"]
    with server.raw() as sock:
        sock.sendall(head_bytes(lines, body))
        reader = RawReader(sock)
        answer = reader.response()
        assert answer.status == 200 and answer.headers["connection"] == "close"
        assert_success(from_encoding(answer.body, "ttlv"))
        assert reader.closed()


def test_http10_keep_alive_is_kept(server: HttpsServer) -> None:
    body = echo_request(b"dv")
    lines = ["POST /kmip HTTP/1.0", "Connection: keep-alive", "Content-Type: application/octet-stream"]
    with server.raw() as sock:
        reader = RawReader(sock)
        for _ in range(2):
            sock.sendall(head_bytes([*lines, f"Content-Length: {len(body)}"], body))
            answer = reader.response()
            assert answer.status == 200 and answer.headers["connection"] == "keep-alive"


# ---- refusals


def test_wrong_path_is_404_and_the_connection_stays_open(server: HttpsServer) -> None:
    conn = server.connection()
    try:
        for path in ("/", "/kmip/", "/other", "/KMIP"):
            answer = post(conn, from_ttlv(echo_request(b"dv"), "json"), path=path)
            answer.read()
            assert answer.status == 404, path
        answer = post(conn, from_ttlv(echo_request(b"dv"), "json"))  # the same connection
        assert answer.status == 200
        assert_success(from_encoding(answer.read(), "json"))
    finally:
        conn.close()


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD", "OPTIONS"])
def test_methods_other_than_post_are_405_with_allow(server: HttpsServer, method: str) -> None:
    conn = server.connection()
    try:
        conn.request(method, "/kmip", headers={"Content-Type": "application/json"})
        answer = conn.getresponse()
        body = answer.read()
        assert answer.status == 405
        assert answer.getheader("Allow") == "POST"
        assert (body == b"") if method == "HEAD" else b"POST" in body
    finally:
        conn.close()


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/ttlv"])
def test_unsupported_content_type_is_415(server: HttpsServer, content_type: str | None) -> None:
    conn = server.connection()
    try:
        answer = post(conn, echo_request(b"dv"), content_type)
        answer.read()
        assert answer.status == 415
        assert "application/json" in answer.getheader("Accept", "")
    finally:
        conn.close()


def test_content_type_parameters_and_case_are_accepted(server: HttpsServer) -> None:
    conn = server.connection()
    try:
        answer = post(conn, from_ttlv(echo_request(b"dv"), "json"), "Application/JSON; charset=utf-8")
        assert answer.status == 200
        assert_success(from_encoding(answer.read(), "json"))
    finally:
        conn.close()


def test_body_over_max_message_size_is_413_even_while_the_client_sends_it(server: HttpsServer) -> None:
    conn = server.connection()
    try:
        answer = post(conn, b"{" + b" " * MAX_MESSAGE_SIZE + b"}")
        answer.read()
        assert answer.status == 413
        assert answer.will_close
    finally:
        conn.close()


def test_huge_declared_length_is_413_without_waiting_for_the_body(server: HttpsServer) -> None:
    lines = ["POST /kmip HTTP/1.1", "Host: kms", "Content-Type: application/json", "Content-Length: 10000000000"]
    with server.raw() as sock:
        sock.sendall(head_bytes(lines, b"{"))
        reader = RawReader(sock)
        answer = reader.response()
        assert answer.status == 413 and answer.headers["connection"] == "close"
        assert reader.closed()


def test_chunked_body_is_accepted_and_the_connection_kept(server: HttpsServer) -> None:
    conn = server.connection()
    try:
        body = from_ttlv(echo_request(b"chunked"), "json")
        headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
        for _ in range(2):  # the same connection serves the next one
            conn.request("POST", "/kmip", body=iter([body[:50], body[50:]]), headers=headers, encode_chunked=True)
            answer = conn.getresponse()
            assert answer.status == 200 and not answer.will_close
            assert from_encoding(answer.read(), "json").batch_items[0].unique_batch_item_id == b"chunked"
    finally:
        conn.close()


def test_chunked_body_with_extensions_and_trailers(server: HttpsServer) -> None:
    body = echo_request(b"trailers")
    lines = ["POST /kmip HTTP/1.1", "Host: kms", "Content-Type: application/octet-stream", "Transfer-Encoding: chunked"]
    chunks = b"".join(b"%x;name=value\r\n%s\r\n" % (len(part), part) for part in (body[:7], body[7:]))
    with server.raw() as sock:
        sock.sendall(head_bytes(lines) + chunks + b"0\r\nX-Trailer: t\r\n\r\n")
        answer = RawReader(sock).response()
        assert answer.status == 200
        assert from_encoding(answer.body, "ttlv").batch_items[0].unique_batch_item_id == b"trailers"


def test_chunked_body_over_max_message_size_is_413_while_it_arrives(server: HttpsServer) -> None:
    lines = ["POST /kmip HTTP/1.1", "Host: kms", "Content-Type: application/json", "Transfer-Encoding: chunked"]
    with server.raw() as sock:
        # One chunk announced at twice the limit, of which a little more than the limit is
        # sent: the answer comes without the rest (the server does not buffer it).
        sock.sendall(head_bytes(lines) + b"%x\r\n" % (2 * MAX_MESSAGE_SIZE))
        sock.sendall(b" " * (MAX_MESSAGE_SIZE + 4096))
        reader = RawReader(sock)
        answer = reader.response()
        assert answer.status == 413 and answer.headers["connection"] == "close"
        assert reader.closed()


def test_many_small_chunks_over_the_limit_are_413(server: HttpsServer) -> None:
    lines = ["POST /kmip HTTP/1.1", "Host: kms", "Content-Type: application/json", "Transfer-Encoding: chunked"]
    chunk = b"4000\r\n" + b" " * 0x4000 + b"\r\n"
    with server.raw() as sock:
        sock.sendall(head_bytes(lines) + chunk * (MAX_MESSAGE_SIZE // 0x4000 + 1))
        reader = RawReader(sock)
        assert reader.response().status == 413
        assert reader.closed()


def test_post_without_content_length_is_411_and_kept_open(server: HttpsServer) -> None:
    with server.raw() as sock:
        sock.sendall(head_bytes(["POST /kmip HTTP/1.1", "Host: kms", "Content-Type: application/json"]))
        reader = RawReader(sock)
        answer = reader.response()
        assert answer.status == 411 and "connection" not in answer.headers
        body = echo_request(b"dv")
        lines = ["POST /kmip HTTP/1.1", "Host: kms", "Content-Type: application/octet-stream"]
        sock.sendall(head_bytes([*lines, f"Content-Length: {len(body)}"], body))
        assert reader.response().status == 200


BAD_HEADS = {
    "request line": (["POST /kmip"], 400),
    "bad method": (["PO ST /kmip HTTP/1.1", "Host: kms"], 400),
    "HTTP/2": (["POST /kmip HTTP/2.0", "Host: kms"], 505),
    "no host": (["POST /kmip HTTP/1.1", "Content-Length: 0"], 400),
    "space before colon": (["POST /kmip HTTP/1.1", "Host : kms", "Content-Length: 0"], 400),
    "line folding": (["POST /kmip HTTP/1.1", "Host: kms", "X-A: b", " c", "Content-Length: 0"], 400),
    "bad length": (["POST /kmip HTTP/1.1", "Host: kms", "Content-Length: 12a"], 400),
    "two lengths": (["POST /kmip HTTP/1.1", "Host: kms", "Content-Length: 2", "Content-Length: 3"], 400),
    "negative length": (["POST /kmip HTTP/1.1", "Host: kms", "Content-Length: -1"], 400),
    "TE and length": (["POST /kmip HTTP/1.1", "Host: kms", "Content-Length: 5", "Transfer-Encoding: chunked"], 400),
    "TE not chunked": (["POST /kmip HTTP/1.1", "Host: kms", "Transfer-Encoding: gzip"], 400),
    # Request smuggling: every way two parsers could disagree on where the body ends.
    "length and TE": (["POST /kmip HTTP/1.1", "Host: kms", "Transfer-Encoding: chunked", "Content-Length: 5"], 400),
    "two equal lengths": (["POST /kmip HTTP/1.1", "Host: kms", "Content-Length: 3", "Content-Length: 3"], 400),
    "length list": (["POST /kmip HTTP/1.1", "Host: kms", "Content-Length: 3, 3"], 400),
    "conflicting length list": (["POST /kmip HTTP/1.1", "Host: kms", "Content-Length: 3, 4"], 400),
    "TE twice": (["POST /kmip HTTP/1.1", "Host: kms", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked"], 400),
    "TE gzip, chunked": (["POST /kmip HTTP/1.1", "Host: kms", "Transfer-Encoding: gzip, chunked"], 400),
    "TE chunked, gzip": (["POST /kmip HTTP/1.1", "Host: kms", "Transfer-Encoding: chunked, gzip"], 400),
    "TE space colon": (["POST /kmip HTTP/1.1", "Host: kms", "Transfer-Encoding : chunked", "Content-Length: 3"], 400),
    "TE folded": (["POST /kmip HTTP/1.1", "Host: kms", "Content-Length: 3", "Transfer-Encoding:", " chunked"], 400),
    "length folded": (["POST /kmip HTTP/1.1", "Host: kms", "Content-Length: 3", " 4"], 400),
    "fold after request line": (["POST /kmip HTTP/1.1", " Host: kms", "Content-Length: 0"], 400),
    "tab fold": (["POST /kmip HTTP/1.1", "Host: kms", "X-A: b", "\tc", "Content-Length: 0"], 400),
    "bare LF fields": (["POST /kmip HTTP/1.1\nHost: kms\nContent-Length: 3\nContent-Length: 4"], 400),
    "head too long": (["POST /kmip HTTP/1.1", "Host: kms", "X-Big: " + "a" * 17000], 431),
    "too many fields": (["POST /kmip HTTP/1.1", "Host: kms", *(f"X-{n}: {n}" for n in range(101))], 431),
}


@pytest.mark.parametrize("case", list(BAD_HEADS))
def test_malformed_request_heads_are_refused_and_closed(server: HttpsServer, case: str) -> None:
    lines, status = BAD_HEADS[case]
    with server.raw() as sock:
        sock.sendall(head_bytes(lines))
        reader = RawReader(sock)
        answer = reader.response()
        assert answer.status == status
        assert answer.headers["connection"] == "close"
        assert reader.closed()


def test_a_ttlv_client_on_the_https_port_is_refused_at_once(server: HttpsServer) -> None:
    with server.raw() as sock:
        sock.sendall(echo_request(b"dv"))
        sock.settimeout(5)  # not the idle time-out: the binary is seen in its first bytes
        reader = RawReader(sock)
        assert reader.response().status == 400
        assert reader.closed()


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"tag": "RequestMessage", "value": [}'),
        ("application/json", b'{"tag": "NoSuchTag", "value": []}'),
        ("application/json", b"\xff\xfe not text"),
        ("text/xml", b"<RequestMessage><RequestHeader>"),
        ("text/xml", b'<!DOCTYPE x [<!ENTITY a "b">]><RequestMessage/>'),
        ("application/octet-stream", b"not TTLV at all"),
        ("application/json", b""),
    ],
)
def test_malformed_bodies_get_invalid_message_in_their_encoding(
    server: HttpsServer, content_type: str, body: bytes
) -> None:
    encoding = ENCODING_OF[content_type]
    conn = server.connection()
    try:
        answer = post(conn, body, content_type)
        data = answer.read()
        assert answer.status == 200  # a KMIP failure is a KMIP response
        assert answer.getheader("Content-Type", "").split(";")[0] == content_type
        (item,) = from_encoding(data, encoding).batch_items
        assert item.result_status == ResultStatus.OPERATION_FAILED
        assert item.result_reason == ResultReason.INVALID_MESSAGE
        assert not answer.will_close
    finally:
        conn.close()


# ---- hostile XML bodies: nothing may grow past max_message_size, whatever the encoding

CREATE_XML = (
    '<?xml version="1.0" encoding="{encoding}"?>{doctype}'
    "<RequestMessage><RequestHeader><ProtocolVersion>"
    '<ProtocolVersionMajor type="Integer" value="2"/><ProtocolVersionMinor type="Integer" value="1"/>'
    '</ProtocolVersion><BatchCount type="Integer" value="1"/></RequestHeader>'
    '<BatchItem><Operation type="Enumeration" value="Create"/><RequestPayload>'
    '<ObjectType type="Enumeration" value="SymmetricKey"/><Attributes>'
    '<CryptographicAlgorithm type="Enumeration" value="AES"/>'
    '<CryptographicLength type="Integer" value="256"/>'
    '<CryptographicUsageMask type="Integer" value="Encrypt Decrypt"/>'
    '<Name><NameValue type="TextString" value="{name}"/>'
    '<NameType type="Enumeration" value="UninterpretedTextString"/></Name>'
    "</Attributes></RequestPayload></BatchItem></RequestMessage>"
)
# Each expands to 1,000,000 characters: below expat's own amplification limits (which start
# at 8 MiB), so only refusing the DTD stops them.
BILLION_LAUGHS = (
    '<!DOCTYPE RequestMessage [<!ENTITY a "aaaaaaaaaa">'
    + "".join(f'<!ENTITY {b} "{("&" + a + ";") * 10}">' for a, b in zip("abcde", "bcdef", strict=True))
    + "]>",
    "bomb&f;",
)
QUADRATIC_BLOWUP = (f'<!DOCTYPE RequestMessage [<!ENTITY a "{"a" * 10_000}">]>', "bomb" + "&a;" * 100)
# (codec, the declared encoding, a byte order mark to put first)
XML_ENCODINGS = {
    "utf-8": ("utf-8", "UTF-8", b""),
    "utf-8 BOM": ("utf-8", "UTF-8", b"\xef\xbb\xbf"),
    "utf-16 LE BOM": ("utf-16-le", "UTF-16", b"\xff\xfe"),
    "utf-16 BE BOM": ("utf-16-be", "UTF-16", b"\xfe\xff"),
    "utf-16 LE": ("utf-16-le", "UTF-16", b""),
    "utf-16 BE": ("utf-16-be", "UTF-16", b""),
    "utf-32 BOM": ("utf-32-le", "UTF-32", b"\xff\xfe\x00\x00"),
    "utf-32 BE": ("utf-32-be", "UTF-32", b""),
}


def create_xml(encoding: str, name: str, doctype: str = "") -> bytes:
    codec, declared, bom = XML_ENCODINGS[encoding]
    return bom + CREATE_XML.format(encoding=declared, doctype=doctype, name=name).encode(codec)


def all_objects(server: HttpsServer) -> set[str]:
    with server.client("ttlv") as admin:  # an administrator sees every object
        return set(admin.locate())


def assert_refused_and_still_serving(server: HttpsServer, body: bytes) -> None:
    """The body is answered with Invalid Message (or 413), creates nothing, and the same
    connection serves the next request."""
    before = all_objects(server)
    conn = server.connection()
    try:
        answer = post(conn, body, "text/xml")
        data = answer.read()
        assert answer.status in (200, 413)
        if answer.status == 200:
            (item,) = from_encoding(data, "xml").batch_items
            assert item.result_status == ResultStatus.OPERATION_FAILED
            assert item.result_reason == ResultReason.INVALID_MESSAGE
            assert len(data) < 4096  # the answer does not echo what the body would become
            answer = post(conn, from_ttlv(echo_request(b"after"), "xml"), "text/xml")
            assert_success(from_encoding(answer.read(), "xml"))
    finally:
        conn.close()
    assert all_objects(server) == before
    with server.client("xml") as kmip:  # and the server serves new connections
        assert kmip.locate(name="bomb") == []


def test_the_xml_create_template_is_served(server: HttpsServer) -> None:
    # What the hostile bodies below would do without their DTD: it works, so theirs is refused
    # for the DTD, not for a mistake in the template. Expat reads no UTF-32: that is refused
    # as not well-formed whatever it holds.
    for encoding in (name for name in XML_ENCODINGS if not name.startswith("utf-32")):
        conn = server.connection()
        try:
            answer = post(conn, create_xml(encoding, f"template-{encoding}"), "text/xml")
            assert_success(from_encoding(answer.read(), "xml"))
        finally:
            conn.close()


@pytest.mark.parametrize("encoding", list(XML_ENCODINGS))
@pytest.mark.parametrize("bomb", [BILLION_LAUGHS, QUADRATIC_BLOWUP], ids=["billion-laughs", "quadratic-blowup"])
def test_xml_entity_bombs_are_refused_in_every_encoding(
    server: HttpsServer, encoding: str, bomb: tuple[str, str]
) -> None:
    doctype, name = bomb
    assert_refused_and_still_serving(server, create_xml(encoding, name, doctype))


@pytest.mark.parametrize("encoding", ["utf-16 LE BOM", "utf-16 BE"])
def test_xml_whose_ttlv_outgrows_max_message_size_is_refused(server: HttpsServer, encoding: str) -> None:
    # Within the body limit, but its name, one text value, is 1.5 times max_message_size in
    # TTLV's UTF-8: two bytes a character in UTF-16, three in UTF-8.
    body = create_xml(encoding, "bomb" + "\u4e00" * (MAX_MESSAGE_SIZE // 2 - 1024))
    assert len(body) <= MAX_MESSAGE_SIZE
    assert_refused_and_still_serving(server, body)


def test_client_without_a_certificate_is_refused(server: HttpsServer) -> None:
    admin = server.identities["admin"]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.load_verify_locations(cafile=str(admin.ca))
    conn = http.client.HTTPSConnection(LOOPBACK, server.https_port, timeout=10, context=context)
    try:
        # TLS 1.3: the client's handshake may finish before the server has refused it; the
        # refusal then arrives as an alert, or a closed connection, instead of the answer.
        with pytest.raises((ssl.SSLError, ConnectionError, http.client.RemoteDisconnected)):
            post(conn, from_ttlv(echo_request(b"dv"), "json")).read()
    finally:
        conn.close()
    assert "PEER_DID_NOT_RETURN_A_CERTIFICATE" in server.process.stderr_text(100_000)


def test_client_with_a_certificate_from_another_ca_is_refused(server: HttpsServer, tmp_path: Path) -> None:
    other = tmp_path / "other"
    strongroom_init(other)  # a second data directory: its own CA and admin certificate
    admin = server.identities["admin"]
    context = client_ssl_context(admin.ca, other / "clients" / "admin.crt", other / "clients" / "admin.key")
    conn = http.client.HTTPSConnection(LOOPBACK, server.https_port, timeout=10, context=context)
    try:
        with pytest.raises((ssl.SSLError, ConnectionError, http.client.RemoteDisconnected)):
            post(conn, from_ttlv(echo_request(b"dv"), "json")).read()
    finally:
        conn.close()


# ---- the listener with the transport tests' handler: shutdown, failures, time-outs


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    return make_pki(tmp_path_factory.mktemp("https-pki"))


def echo_post(tag: bytes) -> bytes:
    body = echo_request(tag)
    lines = [
        "POST /kmip HTTP/1.1",
        "Host: kms",
        "Content-Type: application/octet-stream",
        f"Content-Length: {len(body)}",
    ]
    return head_bytes(lines, body)


def echo_answer(reader: RawReader) -> tuple[RawResponse, str, bytes]:
    """The response, and its item's Result Message (the identity) and Unique Batch Item ID."""
    answer = reader.response()
    assert answer.status == 200
    message = decode_message(answer.body)
    assert isinstance(message, ResponseMessage)
    item = message.batch_items[0]
    return answer, item.result_message or "", item.unique_batch_item_id or b""


def _stop(process: object) -> None:
    proc = process.process  # type: ignore[attr-defined]
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_identity_mode_applies_to_https(pki: PkiFiles, tmp_path: Path) -> None:
    https_port = free_port()
    server = start_server(pki, tmp_path, workers=1, https_port=https_port, identity_from="san-email")
    try:
        with echo_connect_to(pki, https_port, "ops-email") as sock:
            sock.sendall(echo_post(b"who"))
            assert echo_answer(RawReader(sock))[1] == "carol@example.org"
    finally:
        server.stop()
        _stop(server)


def test_sigterm_answers_requests_in_flight_and_closes_idle_connections(pki: PkiFiles, tmp_path: Path) -> None:
    https_port = free_port()
    server = start_server(pki, tmp_path, workers=2, https_port=https_port, shutdown_grace=10.0)
    try:
        with echo_connect_to(pki, https_port) as busy, echo_connect_to(pki, https_port, "bob") as idle:
            idle_reader = RawReader(idle)
            idle.sendall(echo_post(b"first"))
            assert echo_answer(idle_reader)[1] == "bob"  # now an idle kept-alive connection
            busy.sendall(echo_post(b"slow"))
            time.sleep(0.15)  # the handler is now sleeping in a worker
            started = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            busy_reader = RawReader(busy)
            # Answered in full (it was being handled when the signal came), then closed.
            _, name, tag = echo_answer(busy_reader)
            assert (name, tag) == ("alice", b"slow")
            assert busy_reader.closed()
            assert idle_reader.closed()  # closed at once, not left to the grace period
            assert server.process.wait(15) == 0
            assert time.monotonic() - started < 5.0
    finally:
        _stop(server)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((LOOPBACK, https_port), timeout=2).close()


def test_sigterm_lets_a_half_received_request_complete(pki: PkiFiles, tmp_path: Path) -> None:
    https_port = free_port()
    server = start_server(pki, tmp_path, workers=1, https_port=https_port, shutdown_grace=5.0)
    try:
        with echo_connect_to(pki, https_port) as sock:
            data = echo_post(b"late")
            sock.sendall(data[:40])  # in the middle of the head
            time.sleep(0.1)
            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            sock.sendall(data[40:])
            reader = RawReader(sock)
            answer, _, tag = echo_answer(reader)
            assert tag == b"late" and answer.headers["connection"] == "close"
            assert reader.closed()
        assert server.process.wait(10) == 0
    finally:
        _stop(server)


def test_handler_failure_answers_general_failure_and_closes(pki: PkiFiles, tmp_path: Path) -> None:
    https_port = free_port()
    server = start_server(pki, tmp_path, workers=1, https_port=https_port)
    try:
        with echo_connect_to(pki, https_port) as sock:
            sock.sendall(echo_post(b"boom"))
            reader = RawReader(sock)
            answer = reader.response()
            assert answer.status == 200 and answer.headers["connection"] == "close"
            message = decode_message(answer.body)
            assert isinstance(message, ResponseMessage)
            assert message.batch_items[0].result_reason == ResultReason.GENERAL_FAILURE
            assert reader.closed()
        with echo_connect_to(pki, https_port) as sock:  # the worker lives on
            sock.sendall(echo_post(b"after"))
            assert echo_answer(RawReader(sock))[2] == b"after"
        assert "request handler failed" in server.log()
    finally:
        server.stop()
        _stop(server)


def test_idle_connection_is_closed_after_the_idle_timeout(pki: PkiFiles, tmp_path: Path) -> None:
    https_port = free_port()
    server = start_server(pki, tmp_path, workers=1, https_port=https_port, idle_timeout=0.5)
    try:
        with echo_connect_to(pki, https_port) as sock:
            sock.sendall(echo_post(b"x"))
            reader = RawReader(sock)
            echo_answer(reader)
            started = time.monotonic()
            sock.settimeout(5)
            assert reader.closed()
            assert 0.3 < time.monotonic() - started < 3.0
    finally:
        server.stop()
        _stop(server)


def test_https_port_equal_to_the_ttlv_port_is_refused_at_start(pki: PkiFiles, tmp_path: Path) -> None:
    port = free_port()
    server = start_server(pki, tmp_path, wait=False, port=port, https_port=port)
    try:
        assert server.process.wait(20) == 1
        assert "https_port must differ from listener.port" in server.log()
    finally:
        _stop(server)
