"""The Google Workspace CSE key service end to end: a real ``strongroom serve`` (two workers,
SQLite, SoftHSM2) with its admin listener and a ``[cse]`` section, called over TLS the way
Google's CSE API reference describes (wrap, unwrap, privilegedunwrap, rewrap, status, certs),
with the authentication and authorization JWTs made here by hand (hyok_jwt.py: ``cryptography``
and the RFCs, not Strongroom's JWT code).

Around it, as Google's migration flow has it: a second key service (the "original KACLS", a
small HTTPS server in this module) whose wrapped keys Strongroom rewraps by calling its
privilegedunwrap with a token Strongroom signs, which that server verifies against Strongroom's
``certs``. The access policy names the identities the service acts as (``cse:EMAIL``,
``cse-privileged:EMAIL``, ``cse-kacls:URL``, ``cse-migrator:EMAIL``, ``cse-service``), and the
audit trail is read back for them. Every documented failure is exercised: bodies (400), tokens
(401), roles, users, resources, perimeters, key services and the policy (403), and an
unreachable original (502).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import ssl
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import load_der_public_key

from kmip_client.protocol.spec.enums import KeyFormatType, RevocationReasonCode, State
from tests.support.server_process import LOOPBACK, ServerProcess, run_cli

from .hyok_jwt import Reply, Signer, call, unsigned, verify_rs256
from .hyok_server import HyokDataDir, active_rsa_pair, admin_client, sighup_until

DRIVE = "gsuitecse-tokenissuer-drive@system.gserviceaccount.com"
IDP = "https://idp.example.com"
IDP_CLIENT = "cse-test-client"
ORIGIN = "https://client-side-encryption.google.com"

POLICY = """
[settings]
administrators = ["admin"]
anyone = ["*"]

[roles.cse-user]
description = "a Workspace user of client-side encryption"

[roles.cse-takeout]
description = "unwraps without the document's ACL: Takeout, a key service migrating away"

[roles.cse-service]
description = "the key service itself: its signing key"

[[identities]]
match = { CN = "cse:alice@example.com" }
roles = ["cse-user"]

[[identities]]
match = { CN = "cse:mallory@elsewhere.example" }
roles = ["cse-user"]

[[identities]]
match = { CN = "cse-privileged:admin@example.com" }
roles = ["cse-takeout"]

[[identities]]
match = { CN = "cse-kacls:*" }
roles = ["cse-takeout"]

[[identities]]
match = { CN = "cse-migrator:*@example.com" }
roles = ["cse-user"]

[[identities]]
match = { CN = "cse-service" }
roles = ["cse-service"]

[[grants]]
name = "Workspace users wrap and unwrap with the CSE keys"
roles = ["cse-user"]
operations = ["Locate", "Encrypt", "Decrypt"]
scope = { object_group = "cse" }

[[grants]]
name = "Takeout and the key services migrating away unwrap without the document's ACL"
roles = ["cse-takeout"]
operations = ["Decrypt"]
scope = { object_group = "cse" }

[[grants]]
name = "The key service signs its migration tokens and publishes the public key"
roles = ["cse-service"]
operations = ["Locate", "Get Attributes", "Get", "Sign"]
scope = { object_group = "cse-signing" }
"""


class OriginalKacls:
    """The key service a migration moves away from: it wraps DEKs its own way, and its
    privilegedunwrap accepts a KACLS token (Google's "KACLS authentication token for
    PrivilegedUnwrap") verified against the new key service's certs."""

    def __init__(self, tls: ssl.SSLContext) -> None:
        self.signer = Signer("", "old-kacls-1")
        self.aead = AESGCM(AESGCM.generate_key(256))
        self.new_kacls_url = ""
        self.new_kacls_jwks: dict[str, Any] = {}  # fetched from the new one's certs beforehand
        self.seen: list[dict[str, Any]] = []
        self.httpd = ThreadingHTTPServer((LOOPBACK, 0), self._handler())
        self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://{LOOPBACK}:{self.httpd.server_address[1]}/old"
        self.signer.issuer = self.url

    def wrap(self, dek: bytes, resource_name: str) -> str:
        nonce = os.urandom(12)
        return base64.b64encode(nonce + self.aead.encrypt(nonce, dek, resource_name.encode())).decode()

    def _privileged_unwrap(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            claims = verify_rs256(request["authentication"], self.new_kacls_jwks)
        except (InvalidSignature, KeyError, ValueError, StopIteration, AssertionError) as exc:
            return 401, {"code": 401, "message": f"bad token: {type(exc).__name__}", "details": ""}
        self.seen.append(claims)
        expected = {"aud": "kacls-migration", "iss": self.new_kacls_url, "kacls_url": self.url}
        if any(claims.get(k) != v for k, v in expected.items()) or claims["exp"] < time.time():
            return 403, {"code": 403, "message": "token claims refused", "details": ""}
        if claims.get("resource_name") != request["resource_name"]:
            return 403, {"code": 403, "message": "resource mismatch", "details": ""}
        blob = base64.b64decode(request["wrapped_key"])
        try:
            dek = self.aead.decrypt(blob[:12], blob[12:], request["resource_name"].encode())
        except InvalidTag:
            return 400, {"code": 400, "message": "wrapped_key does not decrypt for this resource", "details": ""}
        return 200, {"key": base64.b64encode(dek).decode()}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        kacls = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, answer = (
                    kacls._privileged_unwrap(body) if self.path == "/old/privilegedunwrap" else (404, {"code": 404})
                )
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@dataclass
class Cse:
    process: ServerProcess
    port: int
    context: ssl.SSLContext
    kacls_url: str
    google: Signer
    idp: Signer
    stranger: Signer  # an issuer nobody configured
    original: OriginalKacls
    keys: dict[str, str]

    def post(self, operation: str, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None) -> Reply:
        return call(LOOPBACK, self.port, self.context, "POST", f"/cse/{operation}", body, headers)

    def get(self, operation: str) -> Reply:
        return call(LOOPBACK, self.port, self.context, "GET", f"/cse/{operation}")

    def authn(self, email: str = "alice@example.com", **claims: Any) -> str:
        return self.idp.token({"aud": IDP_CLIENT, "email": email, **claims})

    def authz(self, role: str, resource: str, email: str = "alice@example.com", **claims: Any) -> str:
        base = {"aud": "cse-authorization", "email": email, "role": role, "resource_name": resource}
        return self.google.token({**base, "kacls_url": self.kacls_url, **claims})

    def wrap(self, dek: bytes, resource: str, email: str = "alice@example.com", **authz: Any) -> Reply:
        body = {"authentication": self.authn(email), "authorization": self.authz("writer", resource, email, **authz)}
        return self.post("wrap", {**body, "key": b64(dek), "reason": '{"client":"drive","op":"write"}'})

    def unwrap(self, wrapped: str, resource: str, email: str = "alice@example.com", role: str = "reader") -> Reply:
        body = {"authentication": self.authn(email), "authorization": self.authz(role, resource, email)}
        return self.post("unwrap", {**body, "wrapped_key": wrapped, "reason": '{"client":"drive","op":"read"}'})


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _cse_section(data_dir: HyokDataDir, kacls_url: str, google: Signer, idp: Signer, original: OriginalKacls) -> str:
    files = {
        "google": data_dir.write_jwks("cse/google.json", google),
        "idp": data_dir.write_jwks("cse/idp.json", idp),
        "old": data_dir.write_jwks("cse/old-kacls.json", original.signer),
    }
    return f"""
[cse]
kacls_url = "{kacls_url}"
key = "cse-kek"
signing_key = "cse-signing"
authentication_audiences = ["{IDP_CLIENT}"]
allowed_origins = ["{ORIGIN}"]
rewrap_sources = ["{original.url}", "https://{LOOPBACK}:1/unreachable"]
rewrap_ca_file = "pki/ca.crt"
rewrap_timeout = 2.0
name = "test KACLS"

[cse.authentication_issuers]
"{IDP}" = "{files["idp"]}"

[cse.authorization_issuers]
"{DRIVE}" = "{files["google"]}"

[cse.kacls_issuers]
"{original.url}" = "{files["old"]}"

[cse.perimeters.""]
email_domains = ["example.com"]

[cse.perimeters.finance]
email_domains = ["example.com"]
claims = {{ department = "finance" }}
"""


def _make_keys(process: ServerProcess) -> dict[str, str]:
    with admin_client(process) as kmip:
        kek = kmip.create("AES", 256, name="cse-kek", attributes={"Object Group": "cse"})
        kmip.activate(kek)
        signing, signing_public = active_rsa_pair(kmip, "cse-signing", "cse-signing")
    return {"kek": kek, "signing": signing, "signing-public": signing_public}


@pytest.fixture(scope="module")
def cse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cse]:
    data_dir = HyokDataDir.create(tmp_path_factory.mktemp("cse") / "data", POLICY)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(data_dir.path / "pki" / "server.crt", data_dir.path / "pki" / "server.key")
    original = OriginalKacls(tls)
    threading.Thread(target=original.httpd.serve_forever, daemon=True).start()
    port = data_dir.admin_port
    kacls_url = f"https://{LOOPBACK}:{port}/cse"
    google, idp, stranger = Signer(DRIVE, "google-1"), Signer(IDP, "idp-1"), Signer("https://evil.example", "x")
    data_dir.add_section(_cse_section(data_dir, kacls_url, google, idp, original))
    try:
        with data_dir.serve() as process:
            keys = _make_keys(process)
            served = Cse(process, port, data_dir.client_context(), kacls_url, google, idp, stranger, original, keys)
            original.new_kacls_url = kacls_url
            original.new_kacls_jwks = served.get("certs").json()
            yield served
    finally:
        original.httpd.shutdown()


def _error(reply: Reply, status: int, text: str) -> None:
    assert reply.status == status, (reply.status, reply.body)
    body = reply.json()
    assert body["code"] == status and isinstance(body["details"], str)
    assert text in body["message"], body["message"]


# ---- status and certs


def test_status_names_a_kacls_and_its_operations(cse: Cse) -> None:
    reply = cse.get("status")
    assert reply.status == 200 and reply.headers["content-type"] == "application/json"
    status = reply.json()
    assert status["server_type"] == "KACLS" and status["vendor_id"] == "Strongroom" and status["name"] == "test KACLS"
    assert {"wrap", "unwrap", "privilegedunwrap", "rewrap", "status", "certs"} <= set(status["operations_supported"])


def test_certs_publishes_the_signing_key_kept_in_the_engine(cse: Cse) -> None:
    (jwk,) = cse.get("certs").json()["keys"]
    assert (jwk["kty"], jwk["alg"], jwk["use"], jwk["kid"]) == ("RSA", "RS256", "sig", cse.keys["signing-public"])
    with admin_client(cse.process) as kmip:
        der = kmip.get(cse.keys["signing-public"], key_format=KeyFormatType.X_509).value
    public = load_der_public_key(der)
    assert isinstance(public, rsa.RSAPublicKey)
    assert base64.urlsafe_b64decode(jwk["n"] + "==") == public.public_numbers().n.to_bytes(256, "big")


# ---- wrap and unwrap


def test_wrap_then_unwrap_gives_the_dek_back(cse: Cse) -> None:
    dek = os.urandom(32)
    wrapped = cse.wrap(dek, "//googleapis.com/drive/files/doc-1")
    assert wrapped.status == 200, wrapped.body
    blob = wrapped.json()["wrapped_key"]
    assert dek not in base64.b64decode(blob)
    unwrapped = cse.unwrap(blob, "//googleapis.com/drive/files/doc-1")
    assert unwrapped.status == 200, unwrapped.body
    assert base64.b64decode(unwrapped.json()["key"]) == dek
    writer = cse.unwrap(blob, "//googleapis.com/drive/files/doc-1", role="writer")
    assert base64.b64decode(writer.json()["key"]) == dek


def test_a_wrapped_key_unwraps_for_its_own_resource_only(cse: Cse) -> None:
    blob = cse.wrap(os.urandom(32), "doc-A").json()["wrapped_key"]
    _error(cse.unwrap(blob, "doc-B"), 403, "another resource_name")
    raw = bytearray(base64.b64decode(blob))
    raw[-1] ^= 1  # the ciphertext changed
    _error(cse.unwrap(b64(bytes(raw)), "doc-A"), 400, "does not decrypt")
    spliced = base64.b64decode(blob).replace(b"doc-A", b"doc-B")  # the resource it names changed
    _error(cse.unwrap(b64(spliced), "doc-B"), 400, "does not decrypt")


@pytest.mark.parametrize(
    ("change", "status", "text"),
    [
        ({"key": "not base64!"}, 400, "key"),
        ({"key": b64(os.urandom(129))}, 400, "1 to 128 bytes"),
        ({"key": None}, 400, "key is required"),
        ({"reason": "x" * 1025}, 400, "reason is longer"),
        ({"authentication": None}, 401, "authentication token is not accepted: missing"),
        ({"authorization": "not.a.jwt"}, 401, "authorization token is not accepted: not a signed JWT"),
    ],
)
def test_wrap_refuses_a_bad_body(cse: Cse, change: dict[str, Any], status: int, text: str) -> None:
    body = {"authentication": cse.authn(), "authorization": cse.authz("writer", "doc"), "key": b64(os.urandom(32))}
    _error(cse.post("wrap", {**body, **change}), status, text)


def test_wrap_refuses_what_is_not_a_json_object(cse: Cse) -> None:
    _error(cse.post("wrap", b"{not json"), 400, "not JSON")
    _error(cse.post("wrap", b"[]"), 400, "JSON object")


def test_tokens_that_do_not_verify_are_401(cse: Cse) -> None:
    now = int(time.time())
    bad_authn = {
        "expired": cse.idp.token({"aud": IDP_CLIENT, "email": "alice@example.com", "exp": now - 600}),
        "another audience": cse.idp.token({"aud": "someone-else", "email": "alice@example.com"}),
        "an unknown issuer": cse.stranger.token({"aud": IDP_CLIENT, "email": "alice@example.com"}),
        "a forged signature": Signer(IDP, "idp-1").token({"aud": IDP_CLIENT, "email": "alice@example.com"}),
        "alg none": unsigned(
            {"iss": IDP, "aud": IDP_CLIENT, "email": "alice@example.com", "exp": now + 60, "iat": now}
        ),
        "no exp": cse.idp.token({"aud": IDP_CLIENT, "email": "alice@example.com", "exp": None}),
        "an unknown kid": cse.idp.token({"aud": IDP_CLIENT, "email": "a@example.com"}, header={"kid": "idp-2"}),
    }
    for why, token in bad_authn.items():
        body = {"authentication": token, "authorization": cse.authz("writer", "doc"), "key": b64(os.urandom(32))}
        reply = cse.post("wrap", body)
        assert reply.status == 401, (why, reply.body)
        assert reply.json()["details"] == "UNAUTHENTICATED"
    forged = Signer(DRIVE, "google-1").token({"aud": "cse-authorization", "email": "alice@example.com"})
    body = {"authentication": cse.authn(), "authorization": forged, "key": b64(os.urandom(32))}
    _error(cse.post("wrap", body), 401, "authorization token is not accepted: its signature does not verify")


def test_verified_tokens_that_do_not_allow_the_operation_are_403(cse: Cse) -> None:
    dek = b64(os.urandom(32))
    cases = {
        "role": (cse.authz("reader", "doc"), "role 'reader' does not allow this"),
        "kacls_url": (cse.authz("writer", "doc", kacls_url="https://other.example/cse"), "another key service"),
        "user": (cse.authz("writer", "doc", email="bob@example.com"), "different users"),
        "resource": (cse.authz("writer", "doc", resource_name=None), "no resource_name"),
    }
    for why, (token, text) in cases.items():
        body = {"authentication": cse.authn(), "authorization": token, "key": dek}
        reply = cse.post("wrap", body)
        assert reply.status == 403 and text in reply.json()["message"], (why, reply.body)
        assert reply.json()["details"] == "PERMISSION_DENIED"


def test_perimeters_are_checked_against_the_authentication_token(cse: Cse) -> None:
    _error(cse.wrap(os.urandom(32), "doc", email="mallory@elsewhere.example"), 403, "outside the perimeter")
    _error(cse.wrap(os.urandom(32), "doc", perimeter_id="nowhere"), 403, "no perimeter 'nowhere'")
    _error(cse.wrap(os.urandom(32), "doc", perimeter_id="finance"), 403, "'department' claim is outside")
    dek = os.urandom(32)
    body = {
        "authentication": cse.authn(department="finance"),
        "authorization": cse.authz("writer", "ledger", perimeter_id="finance"),
        "key": b64(dek),
    }
    wrapped = cse.post("wrap", body)
    assert wrapped.status == 200, wrapped.body
    plain = cse.unwrap(wrapped.json()["wrapped_key"], "ledger")  # the document's perimeter is now ""
    assert base64.b64decode(plain.json()["key"]) == dek


def test_the_access_policy_decides_and_the_audit_trail_records(cse: Cse) -> None:
    # bob passes every token and perimeter check; the policy grants him nothing.
    _error(cse.wrap(os.urandom(32), "doc", email="bob@example.com"), 403, "access policy")
    assert cse.wrap(os.urandom(32), "audited-doc").status == 200
    found = run_cli(["audit", "search", "--data-dir", str(cse.process.data_dir), "--json", "--limit", "1000"])
    records = [json.loads(line) for line in found.stdout.splitlines() if line.strip()]
    mine = [(r["identity"], r["operation"], r["result"], tuple(r["object_ids"])) for r in records]
    assert ("cse:alice@example.com", "Encrypt", "Success", (cse.keys["kek"],)) in mine
    refused = [r for r in records if r["identity"] == "cse:bob@example.com" and r["result"] != "Success"]
    assert refused, "the refused wrap is in the trail too"
    alice = next(r for r in records if r["identity"] == "cse:alice@example.com")
    assert alice["address"] and alice["address"].startswith(LOOPBACK)  # the caller's connection


# ---- privilegedunwrap


def test_privileged_unwrap_with_an_idp_token(cse: Cse) -> None:
    dek = os.urandom(32)
    blob = cse.wrap(dek, "takeout-doc").json()["wrapped_key"]
    body = {"authentication": cse.authn("admin@example.com"), "resource_name": "takeout-doc", "wrapped_key": blob}
    reply = cse.post("privilegedunwrap", {**body, "reason": '{"client":"takeout"}'})
    assert reply.status == 200, reply.body
    assert base64.b64decode(reply.json()["key"]) == dek
    _error(cse.post("privilegedunwrap", {**body, "resource_name": "other-doc"}), 403, "another resource_name")
    alice = {**body, "authentication": cse.authn()}  # a user, not a Takeout administrator
    _error(cse.post("privilegedunwrap", alice), 403, "access policy")
    _error(cse.post("privilegedunwrap", {**body, "resource_name": None}), 400, "resource_name is required")


def test_privileged_unwrap_with_a_migrating_kacls_token(cse: Cse) -> None:
    dek = os.urandom(32)
    blob = cse.wrap(dek, "moving-doc").json()["wrapped_key"]
    claims = {"aud": "kacls-migration", "kacls_url": cse.kacls_url, "resource_name": "moving-doc"}
    body = {"authentication": cse.original.signer.token(claims), "resource_name": "moving-doc", "wrapped_key": blob}
    reply = cse.post("privilegedunwrap", body)
    assert reply.status == 200, reply.body
    assert base64.b64decode(reply.json()["key"]) == dek
    wrong = {
        "audience": ({**claims, "aud": IDP_CLIENT}, 401),
        "kacls_url": ({**claims, "kacls_url": "https://elsewhere.example"}, 403),
        "resource": ({**claims, "resource_name": "another"}, 403),
    }
    for why, (changed, status) in wrong.items():
        reply = cse.post("privilegedunwrap", {**body, "authentication": cse.original.signer.token(changed)})
        assert reply.status == status, (why, reply.body)


# ---- rewrap


def _hash(dek: bytes, resource: str, perimeter: str) -> bytes:
    # Google's "Resource key hash": HMAC-SHA256 keyed by the DEK.
    return hmac.new(dek, f"ResourceKeyDigest:{resource}:{perimeter}".encode(), hashlib.sha256).digest()


def test_rewrap_from_the_original_kacls(cse: Cse) -> None:
    dek = os.urandom(32)
    body = {
        "authorization": cse.authz("migrator", "old-doc"),
        "original_kacls_url": cse.original.url,
        "wrapped_key": cse.original.wrap(dek, "old-doc"),
        "reason": '{"client":"migration"}',
    }
    reply = cse.post("rewrap", body)
    assert reply.status == 200, reply.body
    answer = reply.json()
    assert base64.b64decode(answer["resource_key_hash"]) == _hash(dek, "old-doc", "")
    claims = cse.original.seen[-1]  # what Strongroom asserted to the original, verified there
    assert claims["iss"] == cse.kacls_url and claims["resource_name"] == "old-doc"
    assert base64.b64decode(cse.unwrap(answer["wrapped_key"], "old-doc").json()["key"]) == dek


def test_rewrap_of_our_own_wrapped_key(cse: Cse) -> None:
    dek = os.urandom(32)
    blob = cse.wrap(dek, "own-doc").json()["wrapped_key"]
    body = {"authorization": cse.authz("migrator", "own-doc"), "original_kacls_url": cse.kacls_url + "/"}
    reply = cse.post("rewrap", {**body, "wrapped_key": blob})
    assert reply.status == 200, reply.body
    assert base64.b64decode(reply.json()["resource_key_hash"]) == _hash(dek, "own-doc", "")
    assert base64.b64decode(cse.unwrap(reply.json()["wrapped_key"], "own-doc").json()["key"]) == dek


def test_rewrap_refusals(cse: Cse) -> None:
    wrapped = cse.original.wrap(os.urandom(32), "old-doc")
    body = {"authorization": cse.authz("migrator", "old-doc"), "wrapped_key": wrapped}
    _error(cse.post("rewrap", {**body, "original_kacls_url": "https://attacker.example/k"}), 403, "migrates from")
    writer = {**body, "authorization": cse.authz("writer", "old-doc"), "original_kacls_url": cse.original.url}
    _error(cse.post("rewrap", writer), 403, "needs migrator")
    other = {**body, "authorization": cse.authz("migrator", "another-doc"), "original_kacls_url": cse.original.url}
    _error(cse.post("rewrap", other), 502, "answered 400")
    gone = {**body, "original_kacls_url": f"https://{LOOPBACK}:1/unreachable"}
    _error(cse.post("rewrap", gone), 502, "cannot reach")
    assert cse.get("status").status == 200  # the worker is intact


# ---- the browser's side, the budget, rotation


def test_cors_for_the_allowed_origin_only(cse: Cse) -> None:
    preflight = call(LOOPBACK, cse.port, cse.context, "OPTIONS", "/cse/wrap", headers={"Origin": ORIGIN})
    assert preflight.status == 204
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    reply = call(LOOPBACK, cse.port, cse.context, "GET", "/cse/status", headers={"Origin": ORIGIN})
    assert reply.headers["access-control-allow-origin"] == ORIGIN
    other = call(LOOPBACK, cse.port, cse.context, "OPTIONS", "/cse/wrap", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_wrap_and_unwrap_answer_within_googles_budget(cse: Cse) -> None:
    seconds = []
    for index in range(40):
        started = time.perf_counter()
        reply = cse.wrap(os.urandom(32), f"budget-{index}")
        assert reply.status == 200
        assert cse.unwrap(reply.json()["wrapped_key"], f"budget-{index}").status == 200
        seconds.append((time.perf_counter() - started) / 2)
    p99 = statistics.quantiles(seconds, n=100)[98]
    assert p99 < 0.2, f"p99 {p99 * 1000:.1f} ms"


def test_a_rotated_key_wraps_new_deks_and_the_old_one_still_unwraps(cse: Cse) -> None:
    dek = os.urandom(32)
    before = cse.wrap(dek, "long-lived").json()["wrapped_key"]  # the workers now remember cse-kek
    with admin_client(cse.process) as kmip:
        new = kmip.rekey(cse.keys["kek"])  # the Name moves to the new key
        if kmip.get_attributes(new, ["State"])["State"][0] != State.ACTIVE:
            kmip.activate(new)
        kmip.revoke(cse.keys["kek"], RevocationReasonCode.CESSATION_OF_OPERATION)  # retired: Deactivated
    for n in range(4):  # both workers, whatever each remembered
        after = cse.wrap(os.urandom(32), f"fresh-{n}")
        assert after.status == 200, after.body
        raw = base64.b64decode(after.json()["wrapped_key"])
        assert new.encode() in raw and cse.keys["kek"].encode() not in raw
    assert base64.b64decode(cse.unwrap(before, "long-lived").json()["key"]) == dek  # Deactivated keys decrypt


def test_nothing_secret_reaches_the_log(cse: Cse) -> None:
    dek = os.urandom(32)
    token = cse.authn()
    body = {"authentication": token, "authorization": cse.authz("writer", "secret-doc"), "key": b64(dek)}
    blob = cse.post("wrap", body).json()["wrapped_key"]
    cse.post("wrap", {**body, "authorization": cse.authz("reader", "secret-doc")})  # refused: logged
    cse.unwrap(blob, "other-doc")  # refused: logged
    log = cse.process.stderr_path.read_text(errors="replace")
    assert "CSE wrap refused" in log  # the refusals are logged ...
    for secret in (b64(dek), dek.hex(), token, token.split(".")[2], blob):
        assert secret not in log  # ... and nothing they carried


def test_sighup_reads_the_identity_providers_rotated_key_set(cse: Cse) -> None:
    key_set = cse.process.data_dir / "cse" / "idp.json"
    before = key_set.read_text()
    rotated = Signer(IDP, "idp-2")  # the IdP's new signing key, under a new key id

    def wraps(signer: Signer) -> bool:  # a new connection each time: either worker
        body = {"authentication": signer.token({"aud": IDP_CLIENT, "email": "alice@example.com"})}
        body |= {"authorization": cse.authz("writer", "rotation-doc"), "key": b64(os.urandom(32))}
        return cse.post("wrap", body).status == 200

    try:
        assert wraps(cse.idp) and not wraps(rotated)
        key_set.write_text(json.dumps(rotated.jwks()))
        sighup_until(cse.process, lambda: wraps(rotated), "take the rotated key set")
        for _ in range(4):
            assert wraps(rotated) and not wraps(cse.idp)
        key_set.write_text("not a key set")  # a reload that cannot be read keeps what is in force
        os.kill(cse.process.process.pid, signal.SIGHUP)
        time.sleep(0.5)
        assert "the [cse] settings were not reloaded" in cse.process.stderr_path.read_text(errors="replace")
        for _ in range(4):
            assert wraps(rotated) and not wraps(cse.idp)
    finally:
        key_set.write_text(before)
        sighup_until(cse.process, lambda: wraps(cse.idp), "take the original key set back")
