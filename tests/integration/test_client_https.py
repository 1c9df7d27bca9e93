"""The client over KMIP-over-HTTPS, in each body encoding, against the real engine behind a
stand-in HTTPS endpoint (real mutual TLS on loopback; Strongroom's own HTTPS listener arrives
with the conformance issue)."""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kmip_client import Client
from kmip_client.https_transport import CONTENT_TYPES, HttpsTransport
from kmip_client.protocol.json_codec import item_from_json, item_to_json
from kmip_client.protocol.ttlv import decode, encode
from kmip_client.protocol.xml_codec import item_from_xml, item_to_xml
from kmip_client.tls import client_ssl_context
from kmip_client.transport import InvalidResponse
from kmip_server.engine.identity import ClientIdentity
from kmip_server.pki import create_ca, issue_client_certificate, issue_server_certificate, write_issued
from tests.support.server_process import free_port

_DECODERS = {"application/json": item_from_json, "text/xml": item_from_xml}
_ENCODERS = {"application/json": item_to_json, "text/xml": item_to_xml}


def handler_for(engine):
    class KmipOverHttps(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as KMIP clients expect

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            kind = self.headers["Content-Type"]
            if self.path != "/kmip" or kind not in CONTENT_TYPES.values():
                self.send_error(415 if self.path == "/kmip" else 404)
                return
            request = body if kind == CONTENT_TYPES["ttlv"] else encode(_DECODERS[kind](body.decode()))
            answer = engine.handle(request, ClientIdentity("admin"))
            if kind != CONTENT_TYPES["ttlv"]:
                answer = _ENCODERS[kind](decode(answer)).encode()
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass  # quiet tests

    return KmipOverHttps


@pytest.fixture
def https_url(engine, tmp_path: Path) -> Iterator[tuple[str, ssl.SSLContext]]:
    ca = create_ca("HTTPS test CA", days=1)
    (tmp_path / "ca.crt").write_bytes(ca.certificate_pem())
    write_issued(issue_server_certificate(ca, days=1), tmp_path / "server.crt", tmp_path / "server.key")
    write_issued(issue_client_certificate(ca, "admin", days=1), tmp_path / "admin.crt", tmp_path / "admin.key")
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    server_context.load_verify_locations(tmp_path / "ca.crt")
    server_context.verify_mode = ssl.CERT_REQUIRED
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler_for(engine))
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client_context = client_ssl_context(ca=tmp_path / "ca.crt", cert=tmp_path / "admin.crt", key=tmp_path / "admin.key")
    try:
        yield f"https://127.0.0.1:{port}/kmip", client_context
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("encoding", ["ttlv", "json", "xml"])
def test_client_over_https(https_url, encoding):
    url, context = https_url
    transport = HttpsTransport(url, context, encoding=encoding)
    with Client(transport=transport) as kmip:
        assert kmip.version == (2, 1)
        uid = kmip.create("AES", 256, name=f"over-https-{encoding}", attributes={"x-via": encoding})
        kmip.activate(uid)
        assert len(kmip.get(uid).value) == 32
        assert kmip.locate(name=f"over-https-{encoding}") == [uid]
        assert kmip.get_attributes(uid, ["x-via"]) == {"x-via": [encoding]}


def test_https_errors(https_url):
    url, context = https_url
    with pytest.raises(InvalidResponse, match="HTTP 404"):
        HttpsTransport(url.replace("/kmip", "/other"), context).exchange(
            b"\x42\x00\x78\x01" + bytes(4), idempotent=True
        )
    with pytest.raises(ValueError, match="encoding"):
        HttpsTransport(url, context, encoding="yaml")
    with pytest.raises(ValueError, match="https"):
        HttpsTransport(url.replace("https", "http"), context)
