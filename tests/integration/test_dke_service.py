"""Microsoft Purview Double Key Encryption end to end: a real ``strongroom serve`` (two workers,
SQLite, SoftHSM2) with its admin listener and a ``[dke]`` section, called over TLS as the MIP
client does it by Microsoft's DKE service (the DoubleKeyEncryptionService sample's protocol
files, its key_store_tester): the public key read from ``GET URL/NAME``, a DEK encrypted here
with RSA-OAEP-256 under it (``cryptography``), and ``POST KID/decrypt`` with an Entra-style
bearer JWT made here by hand (hyok_jwt.py). The RSA key pair lives in Strongroom; the access
policy lets ``dke:alice@example.com`` decrypt with it and ``dke-service`` read its public key.
The tester's checks of the 401 challenge are repeated as it makes them, and every failure the
service answers is exercised.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import re
import ssl
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.support.server_process import LOOPBACK, ServerProcess, run_cli

from .hyok_jwt import Reply, Signer, call
from .hyok_server import HyokDataDir, active_rsa_pair, admin_client, sighup_until

ENTRA = "https://sts.windows.net/0b8a5c3e-7d1f-4e2a-9c6b-3f5d8e1a2b4c/"
AUTHORIZE = "https://login.microsoftonline.com/0b8a5c3e-7d1f-4e2a-9c6b-3f5d8e1a2b4c/oauth2/authorize"
OAEP_256 = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)

POLICY = """
[settings]
administrators = ["admin"]
anyone = ["*"]

[roles.dke-user]
description = "decrypts Double Key Encryption content"

[roles.dke-service]
description = "the DKE service itself: publishes the public keys"

[[identities]]
match = { CN = "dke:alice@example.com" }
roles = ["dke-user"]

[[identities]]
match = { CN = "dke:carol@example.com" }
roles = ["dke-user"]

[[identities]]
match = { CN = "dke-service" }
roles = ["dke-service"]

[[grants]]
name = "DKE users decrypt with the DKE keys"
roles = ["dke-user"]
operations = ["Decrypt"]
scope = { object_group = "dke" }

[[grants]]
name = "The DKE service finds the keys and reads their public halves"
roles = ["dke-service"]
operations = ["Locate", "Get Attributes", "Get"]
scope = { object_group = "dke" }
"""


@dataclass
class Dke:
    process: ServerProcess
    port: int
    context: ssl.SSLContext
    url: str
    audience: str
    entra: Signer
    keys: dict[str, str]

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Reply:
        return call(LOOPBACK, self.port, self.context, method, path, body, headers)

    def token(self, email: str | None = "alice@example.com", **claims: Any) -> str:
        return self.entra.token({"aud": self.audience, "email": email, **claims})

    def public_key(self, name: str = "finance") -> dict[str, Any]:
        reply = self.request("GET", f"/dke/{name}")
        assert reply.status == 200, reply.body
        answer: dict[str, Any] = reply.json()
        return answer

    def decrypt(self, kid: str, body: Any, token: str | None, query: str = "") -> Reply:
        path = urllib.parse.urlsplit(kid).path + "/decrypt" + query
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return self.request("POST", path, body, headers)


def _encrypt_to(key: dict[str, Any], data: bytes) -> str:
    """What the MIP client does with the public key: RSA-OAEP-256 under n and e as published."""
    public = rsa.RSAPublicNumbers(key["e"], int.from_bytes(base64.b64decode(key["n"]), "big")).public_key()
    return base64.b64encode(public.encrypt(data, OAEP_256)).decode()


@pytest.fixture(scope="module")
def dke(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dke]:
    data_dir = HyokDataDir.create(tmp_path_factory.mktemp("dke") / "data", POLICY)
    port = data_dir.admin_port
    url, audience = f"https://{LOOPBACK}:{port}/dke", f"https://{LOOPBACK}:{port}"
    entra = Signer(ENTRA, "entra-key-1")
    entra_file = data_dir.write_jwks("dke/entra.json", entra)
    section = f"""
[dke]
url = "{url}"
audience = "{audience}"
authorization_url = "{AUTHORIZE}"
realm = "strongroom-test"
cache_days = 2

[dke.issuers]
"{ENTRA}" = "{entra_file}"

[dke.keys]
finance = ["dke-finance"]
"""
    data_dir.add_section(section)
    with data_dir.serve() as process:
        with admin_client(process) as kmip:
            private, _ = active_rsa_pair(kmip, "dke-finance", "dke")
        yield Dke(process, port, data_dir.client_context(), url, audience, entra, {"private": private})


def test_the_public_key_as_the_dke_protocol_has_it(dke: Dke) -> None:
    answer = dke.public_key()
    key = answer["key"]
    assert (key["kty"], key["alg"], key["e"]) == ("RSA", "RS256", 65537)
    assert len(base64.b64decode(key["n"])) == 256  # the modulus of an RSA-2048 key, in base64
    assert key["kid"] == f"{dke.url}/finance/{dke.keys['private']}"
    expires = datetime.datetime.strptime(answer["cache"]["exp"], "%Y-%m-%dT%H:%M:%S")
    days = (expires - datetime.datetime.now(datetime.UTC).replace(tzinfo=None)).total_seconds() / 86400
    assert 1.9 < days <= 2.0


def test_decrypt_gives_back_what_was_encrypted_to_the_public_key(dke: Dke) -> None:
    key = dke.public_key()["key"]
    secret = os.urandom(32)
    reply = dke.decrypt(key["kid"], {"alg": "RSA-OAEP-256", "value": _encrypt_to(key, secret)}, dke.token())
    assert reply.status == 200, reply.body
    assert base64.b64decode(reply.json()["value"]) == secret
    # The upn claim names the user as well (Entra's v1 tokens), and protocol-version 1.0 is served.
    carol = dke.token(email=None, upn="Carol@Example.com")
    body = {"alg": "RSA-OAEP-256", "value": _encrypt_to(key, secret)}
    again = dke.decrypt(key["kid"], body, carol, "?protocol-version=1.0")
    assert again.status == 200 and base64.b64decode(again.json()["value"]) == secret


def _parse_challenge(header: str) -> dict[str, str]:
    # key_store_tester.ps1's ParseAuthResponse: "bearer" first, then name="value" pairs by commas.
    assert re.match(r"^\s*bearer", header, re.IGNORECASE), header
    fields = {}
    for item in re.sub("bearer", "", header, flags=re.IGNORECASE).split(","):
        found = re.match(r'\s*(?P<name>[^=]+)=\s*"(?P<value>[^"]*)"', item)
        assert found, f"invalid auth value: {item}"
        fields[found["name"].strip()] = found["value"].strip()
    return fields


def test_decrypt_without_a_token_is_the_challenge_microsofts_tester_expects(dke: Dke) -> None:
    kid = dke.public_key()["key"]["kid"]
    reply = dke.request("POST", urllib.parse.urlsplit(kid).path + "/decrypt")  # the tester's bare POST
    assert reply.status == 401
    fields = _parse_challenge(reply.headers["www-authenticate"])
    assert {"resource", "authorization", "realm"} <= set(fields)
    assert fields["resource"].startswith("https://")
    assert urllib.parse.urlsplit(fields["resource"]).hostname == urllib.parse.urlsplit(kid).hostname
    assert fields["authorization"] == AUTHORIZE and fields["realm"] == "strongroom-test"
    assert "error" not in fields  # no token was sent (RFC 6750 3.1)


def test_tokens_that_do_not_verify_are_challenged(dke: Dke) -> None:
    key = dke.public_key()["key"]
    body = {"alg": "RSA-OAEP-256", "value": _encrypt_to(key, b"dek")}
    now = int(datetime.datetime.now(datetime.UTC).timestamp())
    tokens = {
        "expired": dke.token(exp=now - 3600, iat=now - 7200),
        "another audience": dke.entra.token({"aud": "https://aadrm.com", "email": "alice@example.com"}),
        "another tenant": Signer("https://sts.windows.net/other/", "entra-key-1").token({"aud": dke.audience}),
        "a forged signature": Signer(ENTRA, "entra-key-1").token({"aud": dke.audience, "email": "alice@example.com"}),
        "not a JWT": "opaque-access-token",
    }
    for why, token in tokens.items():
        reply = dke.decrypt(key["kid"], body, token)
        assert reply.status == 401, (why, reply.body)
        fields = _parse_challenge(reply.headers["www-authenticate"])
        assert fields["error"] == "invalid_token" and fields["resource"] == dke.audience, why
    basic = dke.request("POST", urllib.parse.urlsplit(key["kid"]).path + "/decrypt", body, {"Authorization": "Basic x"})
    assert basic.status == 401


def test_the_access_policy_decides_and_the_audit_trail_records(dke: Dke) -> None:
    key = dke.public_key()["key"]
    body = {"alg": "RSA-OAEP-256", "value": _encrypt_to(key, b"a content key")}
    refused = dke.decrypt(key["kid"], body, dke.token("bob@example.com"))
    assert refused.status == 403 and "access policy" in refused.json()["error"]
    nobody = dke.decrypt(key["kid"], body, dke.token(email=None))
    assert nobody.status == 403 and "names no user" in nobody.json()["error"]
    assert dke.decrypt(key["kid"], body, dke.token()).status == 200
    found = run_cli(["audit", "search", "--data-dir", str(dke.process.data_dir), "--json", "--limit", "1000"])
    records = [json.loads(line) for line in found.stdout.splitlines() if line.strip()]
    seen = {(r["identity"], r["operation"], r["result"], tuple(r["object_ids"])) for r in records}
    assert ("dke:alice@example.com", "Decrypt", "Success", (dke.keys["private"],)) in seen
    assert any(r["identity"] == "dke:bob@example.com" and r["result"] != "Success" for r in records)
    assert any(r["identity"] == "dke-service" and r["operation"] == "Get" for r in records)


@pytest.mark.parametrize(
    ("body", "query", "status", "text"),
    [
        ({"alg": "RSA1_5", "value": "AAAA"}, "", 400, "alg must be RSA-OAEP-256"),
        ({"alg": "RSA-OAEP-256", "value": "%%%"}, "", 400, "value: not valid base64"),
        ({"alg": "RSA-OAEP-256", "value": base64.b64encode(os.urandom(256)).decode()}, "", 400, "does not decrypt"),
        ({"alg": "RSA-OAEP-256"}, "", 400, "value"),
        ("not an object", "", 400, "JSON object"),
        ({"alg": "RSA-OAEP-256", "value": "AAAA"}, "?protocol-version=2.0", 400, "protocol-version"),
    ],
)
def test_bad_requests(dke: Dke, body: Any, query: str, status: int, text: str) -> None:
    kid = dke.public_key()["key"]["kid"]
    data = json.dumps(body).encode() if isinstance(body, str) else body
    reply = dke.decrypt(kid, data, dke.token(), query)
    assert reply.status == status and text in reply.json()["error"], reply.body


def test_unknown_keys_and_methods(dke: Dke) -> None:
    kid = dke.public_key()["key"]["kid"]
    body = {"alg": "RSA-OAEP-256", "value": "AAAA"}
    assert dke.request("GET", "/dke/payroll").status == 404
    unknown_id = dke.decrypt(kid.rsplit("/", 1)[0] + "/01a2-not-a-key", body, dke.token())
    assert unknown_id.status == 404 and "no key id" in unknown_id.json()["error"]
    other_name = dke.decrypt(kid.replace("/finance/", "/payroll/"), body, dke.token())
    assert other_name.status == 404
    wrong_method = dke.request("GET", urllib.parse.urlsplit(kid).path + "/decrypt")
    assert wrong_method.status == 405 and wrong_method.headers["allow"] == "POST"
    assert dke.request("POST", "/dke/finance", body).status == 405
    assert dke.request("GET", "/dke/finance/x/y/z").status == 404
    assert dke.public_key()["key"]["kid"] == kid  # the service is intact


def test_nothing_secret_reaches_the_log(dke: Dke) -> None:
    key = dke.public_key()["key"]
    secret = os.urandom(32)
    token = dke.token()
    reply = dke.decrypt(key["kid"], {"alg": "RSA-OAEP-256", "value": _encrypt_to(key, secret)}, token)
    assert reply.status == 200
    dke.decrypt(key["kid"], {"alg": "RSA-OAEP-256", "value": "AAAA"}, token + "x")  # refused: logged
    log = Path(dke.process.stderr_path).read_text(errors="replace")
    assert "DKE request" in log
    for text in (base64.b64encode(secret).decode(), secret.hex(), token, token.split(".")[2]):
        assert text not in log


def test_sighup_reads_entras_rotated_key_set(dke: Dke) -> None:
    key_set = dke.process.data_dir / "dke" / "entra.json"
    before = key_set.read_text()
    rotated = Signer(ENTRA, "entra-key-2")
    key = dke.public_key()["key"]

    def decrypts(signer: Signer) -> bool:  # a new connection each time: either worker
        token = signer.token({"aud": dke.audience, "email": "alice@example.com"})
        body = {"alg": "RSA-OAEP-256", "value": _encrypt_to(key, b"data key")}
        return dke.decrypt(key["kid"], body, token).status == 200

    try:
        assert decrypts(dke.entra) and not decrypts(rotated)
        key_set.write_text(json.dumps(rotated.jwks()))
        sighup_until(dke.process, lambda: decrypts(rotated), "take the rotated key set")
        for _ in range(4):
            assert decrypts(rotated) and not decrypts(dke.entra)
    finally:
        key_set.write_text(before)
        sighup_until(dke.process, lambda: decrypts(dke.entra), "take the original key set back")
