"""The AWS KMS External Key Store (XKS) proxy API end to end: a real ``strongroom serve`` (two
workers, SQLite, SoftHSM2) with its admin listener and an ``[xks]`` section, called over TLS by
the client of test_xks_sigv4.py, which follows AWS's published documents (the XKS proxy API
specification, the SigV4 signing process) and not Strongroom's code.

Keys are made over KMIP by the administrator; the access policy lets the XKS identity
(``aws-xks``) locate, read and use the keys named ``xks-*`` and only decrypt with ``legacy-*``.
Each documented answer is exercised: the four operations' successes, the key states and usage
masks the specification names (an encrypt-only, a decrypt-only and a neither key), and every
error it lists that a real condition here produces (InternalException from GetHealthStatus
over a database whose schema is not this server's; ThrottlingException, which needs a
credential with a request rate, and plain HTTP are test_xks_plain_http.py's). The ciphertexts are opened
with the key itself (fetched by the administrator) to show the AAD is bound as the
specification says, and the CDIV is recomputed here from Appendix C.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import signal
import sqlite3
import ssl
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

from kmip_client import Client
from kmip_client.protocol.spec.enums import CryptographicAlgorithm, CryptographicUsageMask
from kmip_server.hyok.xks_keys import CURRENT_SECONDS
from tests.support.server_process import (
    LOOPBACK,
    ServerProcess,
    free_port,
    issue_client_cert,
    running_server,
    serve_policy,
    strongroom_command,
    strongroom_init,
)

from .test_xks_sigv4 import Reply, XksClient, b64, request_metadata, unb64

PREFIX = "/keystores/test"
FIRST_ID, FIRST_SECRET = "AKQW2E3R4T5Y6U7I2O3P", "Zm9yLXRlc3RzLW9ubHktZmlyc3Qtc2VjcmV0LWtleS0xMjM0NTY="
SECOND_ID, SECOND_SECRET = "BRT7YU6IO5PL4KJ3HG2F", "Zm9yLXRlc3RzLW9ubHktc2Vjb25kLXNlY3JldC1rZXktNjU0MzI="
THIRD_ID, THIRD_SECRET = "CZX2CV3BN4MQ5WE6RT7Y", "Zm9yLXRlc3RzLW9ubHktdGhpcmQtc2VjcmV0LWtleS05ODc2NTQ="

POLICY = """
[settings]
default_tenant = "default"
owners_full_control = true
hidden_objects = "not-found"
anyone = ["*"]
administrators = ["admin"]

[[grants]]
name = "AWS KMS uses the XKS keys"
identities = ["aws-xks"]
operations = ["Locate", "Get Attributes", "Encrypt", "Decrypt"]
scope = { name = "xks-*" }

[[grants]]
name = "AWS KMS uses every version of the rotated keys (Re-key copies the Object Group, moves the Name)"
identities = ["aws-xks"]
operations = ["Locate", "Get Attributes", "Encrypt", "Decrypt"]
scope = { object_group = "xks-rotated" }

[[grants]]
name = "AWS KMS may only decrypt with the legacy keys"
identities = ["aws-xks"]
operations = ["Locate", "Get Attributes", "Decrypt"]
scope = { name = "legacy-*" }
"""

ENC = CryptographicUsageMask.ENCRYPT
DEC = CryptographicUsageMask.DECRYPT


def xks_section(*credentials: tuple[str, str]) -> str:
    lines = ["", "[xks]", f'uri_prefix = "{PREFIX}"', 'region = "us-east-1"']
    for access_key_id, file_name in credentials:
        lines += ["", "[[xks.credentials]]", f'access_key_id = "{access_key_id}"']
        lines += [f'secret_access_key_file = "xks/{file_name}"']
    return "\n".join(lines) + "\n"


@dataclass
class Served:
    process: ServerProcess
    data_dir: Path
    admin_port: int
    keys: dict[str, str]  # name -> Unique Identifier
    xks: XksClient
    second: XksClient

    def client(self, access_key_id: str, secret: str) -> XksClient:
        return XksClient(LOOPBACK, self.admin_port, self.xks.context, PREFIX, access_key_id, secret)

    def key_bytes(self, name: str) -> bytes:
        tls = self.process.tls
        with Client(f"{LOOPBACK}:{self.process.port}", ca=tls.ca, cert=tls.cert, key=tls.key) as kmip:
            return bytes(kmip.get(self.keys[name]).value)


def _write_secret(directory: Path, name: str, secret: str) -> None:
    path = directory / name
    path.write_text(secret + "\n")
    path.chmod(0o600)


def _make_keys(process: ServerProcess) -> dict[str, str]:
    tls = process.tls
    keys: dict[str, str] = {}
    with Client(f"{LOOPBACK}:{process.port}", ca=tls.ca, cert=tls.cert, key=tls.key) as kmip:
        made = {
            "xks-main": (256, ENC | DEC, "active"),
            "xks-second": (256, ENC | DEC, "active"),
            "xks-encrypt-only": (256, ENC, "active"),
            "xks-decrypt-only": (256, DEC, "active"),
            "xks-neither": (256, CryptographicUsageMask.WRAP_KEY | CryptographicUsageMask.UNWRAP_KEY, "active"),
            "xks-aes128": (128, ENC | DEC, "active"),
            "xks-pending": (256, ENC | DEC, "pre-active"),
            "xks-retired": (256, ENC | DEC, "deactivated"),
            "xks-gone": (256, ENC | DEC, "destroyed"),
            "legacy-key": (256, ENC | DEC, "active"),
            "rotating-key": (256, ENC | DEC, "active"),
            "xks-revoked-soon": (256, ENC | DEC, "active"),
            "other-key": (256, ENC | DEC, "active"),
        }
        for name, (length, mask, state) in made.items():
            group = {"Object Group": "xks-rotated"} if name == "rotating-key" else None
            uid = kmip.create(CryptographicAlgorithm.AES, length, name=name, usage_mask=int(mask), attributes=group)
            if state in ("active", "deactivated"):
                kmip.activate(uid)
            if state == "deactivated":
                kmip.revoke(uid)
            if state == "destroyed":
                kmip.destroy(uid)
            keys[name] = uid
    return keys


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("xks") / "data"
    strongroom_init(data_dir)
    serve_policy(data_dir, POLICY)
    secrets = data_dir / "xks"
    secrets.mkdir()
    for file_name, secret in (("first", FIRST_SECRET), ("second", SECOND_SECRET), ("third", THIRD_SECRET)):
        _write_secret(secrets, file_name, secret)
    config = data_dir / "strongroom.toml"
    original = config.read_text()
    config.write_text(original + xks_section((FIRST_ID, "first"), (SECOND_ID, "second")))
    admin_port = free_port()
    with running_server(data_dir, free_port(), workers=2, extra_args=["--admin-port", str(admin_port)]) as process:
        context = ssl.create_default_context(cafile=str(process.tls.ca))
        context.check_hostname = False  # addressed by IP; the chain is what is checked
        first = XksClient(LOOPBACK, admin_port, context, PREFIX, FIRST_ID, FIRST_SECRET)
        second = XksClient(LOOPBACK, admin_port, context, PREFIX, SECOND_ID, SECOND_SECRET)
        yield Served(process, data_dir, admin_port, _make_keys(process), first, second)
        first.close()
        second.close()


def encrypt_body(plaintext: bytes, aad: bytes | None = None, cdiv: bool = False) -> dict[str, object]:
    body: dict[str, object] = {
        "requestMetadata": request_metadata("Encrypt"),
        "plaintext": b64(plaintext),
        "encryptionAlgorithm": "AES_GCM",
    }
    if aad is not None:
        body["additionalAuthenticatedData"] = b64(aad)
    if cdiv:
        body["ciphertextDataIntegrityValueAlgorithm"] = "SHA_256"
    return body


def decrypt_body(sealed: dict[str, str], aad: bytes | None = None, **override: str) -> dict[str, object]:
    body: dict[str, object] = {
        "requestMetadata": request_metadata("Decrypt"),
        "ciphertext": sealed["ciphertext"],
        "initializationVector": sealed["initializationVector"],
        "authenticationTag": sealed["authenticationTag"],
        "encryptionAlgorithm": "AES_GCM",
    }
    if "ciphertextMetadata" in sealed:
        body["ciphertextMetadata"] = sealed["ciphertextMetadata"]
    body.update(override)
    body = {name: value for name, value in body.items() if value != DROP}
    if aad is not None:
        body["additionalAuthenticatedData"] = b64(aad)
    return body


DROP = "(leave this field out)"


def spec_aad(aad: bytes, metadata: bytes = b"") -> bytes:
    """The AES-GCM AAD the specification prescribes (Encrypt, ciphertextMetadata, NOTE)."""
    return len(aad).to_bytes(2, "big") + aad + len(metadata).to_bytes(1, "big") + metadata


def encrypted(served: Served, key: str, plaintext: bytes, aad: bytes | None = None) -> dict[str, str]:
    reply = served.xks.call(f"keys/{key}/encrypt", encrypt_body(plaintext, aad))
    assert reply.status == 200, reply.body
    return dict(reply.json)


# ---- GetHealthStatus


def test_health_reports_the_key_manager_active(served: Served) -> None:
    reply = served.xks.call("health", {"requestMetadata": {"kmsRequestId": "h-1", "kmsOperation": "KmsHealthCheck"}})
    assert reply.status == 200, reply.body
    health = reply.json
    assert health["xksProxyFleetSize"] >= 1
    assert health["xksProxyVendor"] and health["xksProxyModel"] and health["ekmVendor"]
    (detail,) = health["ekmFleetDetails"]
    assert detail["healthStatus"] == "ACTIVE" and detail["id"] and detail["model"]


def test_health_needs_its_request_metadata(served: Served) -> None:
    assert served.xks.call("health", {}).error == "ValidationException"
    assert served.xks.call("health", {"requestMetadata": {}}).error == "ValidationException"
    assert served.xks.call("health", b"not json").error == "ValidationException"


def test_a_get_of_a_key_operation_is_405_as_the_specification_requires(served: Served) -> None:
    for operation in ("keys/xks-main/metadata", "keys/xks-main/encrypt", "keys/xks-main/decrypt", "keys/x/sign"):
        reply = served.xks.call(operation, b"", method="GET")
        assert (reply.status, dict(reply.headers).get("Allow")) == (405, "POST"), operation


def test_health_also_answers_a_signed_get(served: Served) -> None:
    # The issue's GET {prefix}/kms/xks/v1/health (AWS KMS itself POSTs): signed over an empty
    # body, no requestMetadata, no Content-Type (as curl --aws-sigv4 sends it).
    posted = served.xks.call("health", {"requestMetadata": {"kmsRequestId": "h-2", "kmsOperation": "KmsHealthCheck"}})
    got = served.xks.call("health", b"", method="GET", content_type="")
    assert (got.status, got.json) == (200, posted.json), got.body
    assert got.json["ekmFleetDetails"][0]["healthStatus"] == "ACTIVE"
    head = served.xks.call("health", b"", method="HEAD")
    assert (head.status, head.body) == (200, b"")
    for change in ({"authorization_field": ""}, {"secret": SECOND_SECRET}, {"signed_body": b"{}"}):
        reply = served.xks.call("health", b"", method="GET", **change)
        assert (reply.status, reply.error) == (401, "AuthenticationFailedException"), change
    # Other methods are still refused before any of that.
    reply = served.xks.call("health", b"", method="PUT")
    assert (reply.status, dict(reply.headers).get("Allow")) == (405, "POST, GET")


def test_health_is_internal_exception_when_the_database_is_not_this_servers(served: Served) -> None:
    # The database's schema version changed under the server (a newer release's migration run
    # against it, say): the key manager cannot serve, and GetHealthStatus says so.
    body = {"requestMetadata": {"kmsRequestId": "h-3", "kmsOperation": "KmsHealthCheck"}}
    database = sqlite3.connect(served.data_dir / "strongroom.db", timeout=10, isolation_level=None)
    try:
        database.execute("UPDATE schema_version SET version = version + 1000")
        for method in ("POST", "GET"):
            reply = served.xks.call("health", body if method == "POST" else b"", method=method)
            assert (reply.status, reply.error) == (500, "InternalException"), reply.body
            assert (
                "the key manager cannot serve: database: RuntimeError: the schema is version"
                in (reply.json["errorMessage"])
            )
    finally:
        database.execute("UPDATE schema_version SET version = version - 1000")
        database.close()
    assert served.xks.call("health", body).status == 200


# ---- GetKeyMetadata


def metadata(served: Served, key: str, client: XksClient | None = None) -> tuple[int, dict[str, object]]:
    reply = (client or served.xks).call(f"keys/{key}/metadata", {"requestMetadata": request_metadata("DescribeKey")})
    return reply.status, reply.json


def test_metadata_reports_the_key_by_name_and_by_unique_identifier(served: Served) -> None:
    expected = {"keySpec": "AES_256", "keyUsage": ["ENCRYPT", "DECRYPT"], "keyStatus": "ENABLED"}
    assert metadata(served, "xks-main") == (200, expected)
    assert metadata(served, served.keys["xks-main"]) == (200, expected)


def test_metadata_follows_the_usage_mask_and_the_state(served: Served) -> None:
    assert metadata(served, "xks-encrypt-only")[1]["keyUsage"] == ["ENCRYPT"]
    assert metadata(served, "xks-decrypt-only")[1]["keyUsage"] == ["DECRYPT"]
    assert metadata(served, "xks-neither")[1]["keyUsage"] == ["WRAP", "UNWRAP"]
    assert metadata(served, "xks-pending")[1]["keyStatus"] == "DISABLED"
    assert metadata(served, "xks-retired")[1]["keyStatus"] == "DISABLED"


def test_metadata_errors(served: Served) -> None:
    for missing in ("no-such-key", "xks-gone", "other-key"):  # none, destroyed, not the identity's to see
        status, body = metadata(served, missing)
        assert (status, body["errorName"]) == (404, "KeyNotFoundException"), (missing, body)
    status, body = metadata(served, "xks-aes128")
    assert (status, body["errorName"]) == (501, "UnsupportedOperationException")
    reply = served.xks.call("keys/xks-main/metadata", {"requestMetadata": {"kmsRequestId": "x", "kmsOperation": "y"}})
    assert reply.error == "ValidationException"  # awsPrincipalArn is required
    assert served.xks.call("keys/xks-main/metadata", {}).error == "ValidationException"
    assert served.xks.call("keys/bad*key/metadata", {"requestMetadata": request_metadata()}).error == (
        "ValidationException"
    )


# ---- Encrypt and Decrypt


@pytest.mark.parametrize("aad", [None, b"project=nile,department=marketing", os.urandom(8192)])
def test_encrypt_then_decrypt(served: Served, aad: bytes | None) -> None:
    plaintext = os.urandom(4300)  # the most the specification requires a proxy to take
    sealed = encrypted(served, "xks-main", plaintext, aad)
    iv, ciphertext, tag = (unb64(sealed[f]) for f in ("initializationVector", "ciphertext", "authenticationTag"))
    assert (len(iv), len(ciphertext), len(tag)) == (12, len(plaintext), 16)
    assert "ciphertextDataIntegrityValue" not in sealed
    # The ciphertextMetadata names the key version: format 1, the key's UUID.
    metadata = unb64(sealed["ciphertextMetadata"])
    assert metadata == b"\x01" + uuid.UUID(served.keys["xks-main"]).bytes
    reply = served.xks.call("keys/xks-main/decrypt", decrypt_body(sealed, aad))
    assert reply.status == 200 and unb64(reply.json["plaintext"]) == plaintext
    # The key itself opens it with the AAD the specification prescribes, and with nothing else.
    key = served.key_bytes("xks-main")
    assert AESGCM(key).decrypt(iv, ciphertext + tag, spec_aad(aad or b"", metadata)) == plaintext
    for other in (aad, spec_aad(aad or b"")):
        with pytest.raises(InvalidTag):
            AESGCM(key).decrypt(iv, ciphertext + tag, other)


def test_the_ciphertext_data_integrity_value_is_appendix_c(served: Served) -> None:
    aad = b"project=nile,department=marketing"
    reply = served.xks.call("keys/xks-main/encrypt", encrypt_body(b"Hello World!", aad, cdiv=True))
    assert reply.status == 200, reply.body
    sealed = reply.json
    fields = ("ciphertextMetadata", "initializationVector", "ciphertext", "authenticationTag")
    parts = aad + b"".join(unb64(sealed[f]) for f in fields)
    assert sealed["ciphertextDataIntegrityValue"] == base64.b64encode(hashlib.sha256(parts).digest()).decode()
    without = served.xks.call("keys/xks-main/encrypt", encrypt_body(b"Hello World!", cdiv=True)).json
    parts = b"".join(unb64(without[f]) for f in fields)
    assert without["ciphertextDataIntegrityValue"] == base64.b64encode(hashlib.sha256(parts).digest()).decode()


def test_decrypt_refuses_what_was_not_encrypted_so(served: Served) -> None:
    aad = b"project=nile,department=marketing"
    sealed = encrypted(served, "xks-main", b"plaintext\n", aad)
    flipped = bytearray(unb64(sealed["ciphertext"]))
    flipped[0] ^= 1
    cases = [
        decrypt_body(sealed),  # the AAD left out
        decrypt_body(sealed, b"project=blue,department=finance"),  # another AAD
        decrypt_body(sealed, aad, ciphertext=b64(bytes(flipped))),
        decrypt_body(sealed, aad, authenticationTag=b64(bytes(16))),
        decrypt_body(sealed, aad, ciphertextMetadata=b64(b"key_version=1")),  # other metadata
        decrypt_body(sealed, aad, ciphertextMetadata=DROP),
        # A ciphertext of another key (its metadata names it), given as this key's.
        decrypt_body(encrypted(served, "xks-second", b"plaintext\n", aad), aad),
    ]
    # The AAD moved into the ciphertextMetadata: the lengths in the GCM AAD tell them apart.
    short = encrypted(served, "xks-main", b"plaintext\n", b"v=1")
    cases.append(decrypt_body(short, b"", ciphertextMetadata=b64(b"v=1")))
    cases.append(decrypt_body(short, None, ciphertextMetadata=b64(b"v=1")))
    for body in cases:
        reply = served.xks.call("keys/xks-main/decrypt", body)
        assert (reply.status, reply.error) == (400, "InvalidCiphertextException"), body
    assert served.xks.call("keys/xks-main/decrypt", decrypt_body(sealed, aad)).status == 200


def test_the_usage_mask_decides_what_encrypt_and_decrypt_allow(served: Served) -> None:
    key = served.key_bytes("xks-decrypt-only")
    iv = os.urandom(12)
    sealed_here = AESGCM(key).encrypt(iv, b"secret data", spec_aad(b""))
    outside = {
        "ciphertext": b64(sealed_here[:-16]),
        "initializationVector": b64(iv),
        "authenticationTag": b64(sealed_here[-16:]),
    }
    reply = served.xks.call("keys/xks-decrypt-only/decrypt", decrypt_body(outside))
    assert reply.status == 200 and unb64(reply.json["plaintext"]) == b"secret data"
    assert served.xks.call("keys/xks-decrypt-only/encrypt", encrypt_body(b"x")).error == "InvalidKeyUsageException"

    sealed = encrypted(served, "xks-encrypt-only", b"to be kept")
    assert served.xks.call("keys/xks-encrypt-only/decrypt", decrypt_body(sealed)).error == "InvalidKeyUsageException"
    # A CDIV is only given for a ciphertext the proxy could decrypt (Appendix C), which this key may not.
    reply = served.xks.call("keys/xks-encrypt-only/encrypt", encrypt_body(b"x", cdiv=True))
    assert (reply.status, reply.error) == (400, "InvalidKeyUsageException")

    for operation, body in (("encrypt", encrypt_body(b"x")), ("decrypt", decrypt_body(sealed))):
        assert served.xks.call(f"keys/xks-neither/{operation}", body).error == "InvalidKeyUsageException"
        assert served.xks.call(f"keys/xks-aes128/{operation}", body).error == "InvalidKeyUsageException"


def test_a_key_not_active_is_invalid_state(served: Served) -> None:
    sealed = encrypted(served, "xks-main", b"x")
    for key in ("xks-pending", "xks-retired", served.keys["xks-retired"]):
        for operation, body in (("encrypt", encrypt_body(b"x")), ("decrypt", decrypt_body(sealed))):
            reply = served.xks.call(f"keys/{key}/{operation}", body)
            assert (reply.status, reply.error) == (400, "InvalidStateException"), (key, operation)


def test_the_access_policy_decides(served: Served) -> None:
    reply = served.xks.call("keys/legacy-key/encrypt", encrypt_body(b"x"))
    assert (reply.status, reply.error) == (403, "AccessDeniedException"), reply.body
    key = served.key_bytes("legacy-key")
    iv = os.urandom(12)
    sealed = AESGCM(key).encrypt(iv, b"old data", spec_aad(b""))
    body = decrypt_body(
        {"ciphertext": b64(sealed[:-16]), "initializationVector": b64(iv), "authenticationTag": b64(sealed[-16:])}
    )
    reply = served.xks.call("keys/legacy-key/decrypt", body)
    assert reply.status == 200 and unb64(reply.json["plaintext"]) == b"old data"
    for operation, request in (("encrypt", encrypt_body(b"x")), ("decrypt", body)):
        reply = served.xks.call(f"keys/other-key/{operation}", request)
        assert (reply.status, reply.error) == (404, "KeyNotFoundException")
        reply = served.xks.call(f"keys/no-such-key/{operation}", request)
        assert (reply.status, reply.error) == (404, "KeyNotFoundException")


def test_encrypt_and_decrypt_input_errors(served: Served) -> None:
    sealed = encrypted(served, "xks-main", b"x")
    bad_encrypts: list[dict[str, object]] = [
        {"requestMetadata": request_metadata(), "encryptionAlgorithm": "AES_GCM"},  # no plaintext
        {**encrypt_body(b"x"), "plaintext": "not base64!"},
        {**encrypt_body(b"x"), "encryptionAlgorithm": "AES_CBC"},
        {**encrypt_body(b"x"), "ciphertextDataIntegrityValueAlgorithm": "MD5"},
        {**encrypt_body(b"x"), "requestMetadata": {**request_metadata(), "kmsKeyArn": None}},
    ]
    for body in bad_encrypts:
        assert served.xks.call("keys/xks-main/encrypt", body).error == "ValidationException", body
    bad_decrypts = [
        {k: v for k, v in decrypt_body(sealed).items() if k != "initializationVector"},
        decrypt_body(sealed, initializationVector=b64(os.urandom(13))),
        decrypt_body(sealed, authenticationTag=b64(os.urandom(15))),
        decrypt_body(sealed, ciphertextMetadata=b64(os.urandom(21))),
        decrypt_body(sealed, encryptionAlgorithm="AES_CCM"),
    ]
    for body in bad_decrypts:
        assert served.xks.call("keys/xks-main/decrypt", body).error == "ValidationException", body
    reply = served.xks.call("keys/xks-main/encrypt", encrypt_body(b"x"), content_type="text/plain")
    assert reply.error == "ValidationException"
    reply = served.xks.call("keys/xks-main/encrypt", b"[1, 2]")
    assert reply.error == "ValidationException"
    # Beyond what the specification requires and this proxy serves.
    reply = served.xks.call("keys/xks-main/encrypt", encrypt_body(os.urandom(65537)))
    assert (reply.status, reply.error) == (501, "UnsupportedOperationException")


def test_a_wrong_path_is_invalid_uri_path(served: Served) -> None:
    body = {"requestMetadata": request_metadata("DescribeKey")}
    for path in (
        f"{PREFIX}/invalid/kms/xks/v1/keys/xks-main/metadata",
        f"{PREFIX}/kms/xks/v1/keys/xks-main/sign",
        f"{PREFIX}/kms/xks/v2/health",
        f"{PREFIX}/kms/xks/v1/keys//metadata",
    ):
        reply = served.xks.send(path, body)
        assert (reply.status, reply.error) == (404, "InvalidUriPathException"), path


def test_ciphertexts_stay_decryptable_after_the_key_is_rotated(served: Served) -> None:
    tls = served.process.tls
    before = encrypted(served, "rotating-key", b"made by version 1", b"aad")
    with Client(f"{LOOPBACK}:{served.process.port}", ca=tls.ca, cert=tls.cert, key=tls.key) as kmip:
        second = kmip.rekey(served.keys["rotating-key"])  # the Name moves to the new key
        kmip.revoke(served.keys["rotating-key"])  # and the old version is retired
    assert metadata(served, "rotating-key") == (
        200,
        {"keySpec": "AES_256", "keyUsage": ["ENCRYPT", "DECRYPT"], "keyStatus": "ENABLED"},
    )
    after = encrypted(served, "rotating-key", b"made after the rotation", b"aad")
    for sealed, plaintext in ((before, b"made by version 1"), (after, b"made after the rotation")):
        reply = served.xks.call("keys/rotating-key/decrypt", decrypt_body(sealed, b"aad"))
        assert reply.status == 200 and unb64(reply.json["plaintext"]) == plaintext, reply.body
    # Encrypt may use the version it found for a few seconds; then it takes the new one.
    time.sleep(CURRENT_SECONDS)
    newest = encrypted(served, "rotating-key", b"x")
    assert unb64(newest["ciphertextMetadata"])[1:] == uuid.UUID(second).bytes


def test_a_key_revoked_or_destroyed_is_refused_at_once(served: Served) -> None:
    sealed = encrypted(served, "xks-revoked-soon", b"x")  # Encrypt now remembers the key
    tls = served.process.tls
    with Client(f"{LOOPBACK}:{served.process.port}", ca=tls.ca, cert=tls.cert, key=tls.key) as kmip:
        kmip.revoke(served.keys["xks-revoked-soon"])
        for operation, body in (("encrypt", encrypt_body(b"x")), ("decrypt", decrypt_body(sealed))):
            reply = served.xks.call(f"keys/xks-revoked-soon/{operation}", body)
            assert (reply.status, reply.error) == (400, "InvalidStateException"), operation
        kmip.destroy(served.keys["xks-revoked-soon"])
    for operation, body in (("encrypt", encrypt_body(b"x")), ("decrypt", decrypt_body(sealed))):
        reply = served.xks.call(f"keys/xks-revoked-soon/{operation}", body)
        assert (reply.status, reply.error) == (404, "KeyNotFoundException"), operation


# ---- SigV4


def test_either_configured_credential_is_accepted(served: Served) -> None:
    assert metadata(served, "xks-main", served.second)[0] == 200
    # More signed header fields than KMS signs are fine (curl --aws-sigv4 signs Content-Type too).
    reply = served.second.call(
        "keys/xks-main/metadata",
        {"requestMetadata": request_metadata()},
        signed_extra={"Content-Type": "application/json"},
    )
    assert reply.status == 200


@pytest.mark.parametrize(
    "change",
    [
        {"access_key_id": "ZZZZZZZZZZZZZZZZZZZZ"},
        {"secret": "Invalid" + FIRST_SECRET},
        {"secret": SECOND_SECRET},  # another credential's secret
        {"region": "eu-west-1"},
        {"service": "kms"},
        {"when": time.time() - 600},
        {"signed_body": b'{"requestMetadata": {}}'},
        {"authorization_field": ""},
        {"authorization_field": "Basic dXNlcjpwYXNzd29yZA=="},
    ],
)
def test_a_bad_signature_is_authentication_failed(served: Served, change: dict[str, object]) -> None:
    body = {"requestMetadata": request_metadata("DescribeKey")}
    reply = served.xks.call("keys/xks-main/metadata", body, **change)
    assert (reply.status, reply.error) == (401, "AuthenticationFailedException"), reply.body
    reply = served.xks.call("health", {"requestMetadata": {"kmsRequestId": "h", "kmsOperation": "x"}}, **change)
    assert (reply.status, reply.error) == (401, "AuthenticationFailedException")


# ---- what the server keeps: audit trail and log


def test_calls_are_audited_as_the_credentials_identity(served: Served) -> None:
    encrypted(served, "xks-main", b"audited")
    result = subprocess.run(
        [
            *strongroom_command(),
            "audit",
            "search",
            "--data-dir",
            str(served.data_dir),
            "--identity",
            "aws-xks",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    records = [json.loads(line) for line in result.stdout.splitlines()]
    uses = {(r["operation"], r["result"]) for r in records if served.keys["xks-main"] in r["object_ids"]}
    assert {("Encrypt", "Success"), ("Decrypt", "Success"), ("Get Attributes", "Success")} <= uses, uses
    assert any(r["operation"] == "Encrypt" and r["reason"] == "Permission Denied" for r in records)
    assert all(r["identity"] == "aws-xks" and r["address"].startswith(LOOPBACK) for r in records)


def test_the_log_has_the_request_metadata_and_never_the_data(served: Served) -> None:
    marker = f"log-check-{time.monotonic_ns()}"
    plaintext = b"never-logged-" + os.urandom(8).hex().encode()
    body = encrypt_body(plaintext, b"aad-never-logged")
    body["requestMetadata"]["kmsRequestId"] = marker  # type: ignore[index]
    sealed = served.xks.call("keys/xks-main/encrypt", body).json
    opened = served.xks.call("keys/xks-main/decrypt", decrypt_body(sealed, b"aad-never-logged"))
    assert opened.status == 200
    deadline = time.monotonic() + 5
    while marker not in (log := served.process.stderr_text(limit=10**7)) and time.monotonic() < deadline:
        time.sleep(0.05)
    line = next(line for line in log.splitlines() if marker in line)
    assert "Encrypt 'xks-main'" in line and "as aws-xks: 200" in line and "kmsOperation='Encrypt'" in line
    for secret in (plaintext, base64.b64encode(plaintext), sealed["ciphertext"].encode(), FIRST_SECRET.encode()):
        assert secret.decode() not in log


def test_answers_come_within_the_250_ms_aws_kms_waits(served: Served) -> None:
    times = []
    for _ in range(20):
        started = time.monotonic()
        sealed = encrypted(served, "xks-main", os.urandom(32))
        assert served.xks.call("keys/xks-main/decrypt", decrypt_body(sealed)).status == 200
        times.append((time.monotonic() - started) / 2)
    assert statistics.median(times) < 0.25, times


def test_a_locked_store_is_a_dependency_timeout(served: Served) -> None:
    # Another process holds the database's write lock past the busy timeout (a stuck backup,
    # say): the audit record cannot be written, so the call fails, and says why.
    database = sqlite3.connect(served.data_dir / "strongroom.db", timeout=1, isolation_level=None)
    try:
        database.execute("BEGIN IMMEDIATE")
        reply = served.xks.call("keys/xks-main/encrypt", encrypt_body(b"x"))
    finally:
        database.execute("ROLLBACK")
        database.close()
    assert (reply.status, reply.error) == (503, "DependencyTimeoutException"), reply.body
    assert encrypted(served, "xks-main", b"x")  # and the server goes on


def _reload(served: Served, config_text: str, ready: Callable[[], bool]) -> None:
    (served.data_dir / "strongroom.toml").write_text(config_text)
    os.kill(served.process.process.pid, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while not ready():
        assert time.monotonic() < deadline, "the server did not take the reloaded [xks] section"
        time.sleep(0.05)
    time.sleep(0.3)  # the other worker's reload too


def test_sighup_rotates_the_credentials_without_a_restart(served: Served) -> None:
    config = served.data_dir / "strongroom.toml"
    before = config.read_text()
    rotated = before[: before.index("\n[xks]")] + xks_section((SECOND_ID, "second"), (THIRD_ID, "third"))

    def accepts(access_key_id: str, secret: str) -> bool:
        fresh = served.client(access_key_id, secret)  # a new connection: either worker
        try:
            return metadata(served, "xks-main", fresh)[0] == 200
        finally:
            fresh.close()

    try:
        assert not accepts(THIRD_ID, THIRD_SECRET)
        _reload(served, rotated, lambda: accepts(THIRD_ID, THIRD_SECRET))
        for _ in range(4):
            assert accepts(THIRD_ID, THIRD_SECRET) and accepts(SECOND_ID, SECOND_SECRET)
            assert not accepts(FIRST_ID, FIRST_SECRET)
    finally:
        served.xks.close()
        _reload(served, before, lambda: accepts(FIRST_ID, FIRST_SECRET))


def _foreign_certificate(directory: Path) -> tuple[Path, Path]:
    """A client certificate with the right subject from a CA the server does not trust."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, KMS_SUBJECT)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "foreign.crt", directory / "foreign.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


KMS_SUBJECT = "cks.kms.us-east-1.amazonaws.com"


def test_mtls_when_a_client_certificate_subject_is_configured(served: Served, tmp_path: Path) -> None:
    kms = issue_client_cert(served.data_dir, KMS_SUBJECT, tmp_path / "kms")
    other = issue_client_cert(served.data_dir, "cks.kms.eu-west-1.amazonaws.com", tmp_path / "other")

    def client_with(cert: Path | None, key: Path | None) -> XksClient:
        context = ssl.create_default_context(cafile=str(served.process.tls.ca))
        context.check_hostname = False
        if cert is not None and key is not None:
            context.load_cert_chain(cert, key)
        return XksClient(LOOPBACK, served.admin_port, context, PREFIX, FIRST_ID, FIRST_SECRET)

    def health(client: XksClient) -> Reply:
        body = {"requestMetadata": {"kmsRequestId": "mtls", "kmsOperation": "KmsHealthCheck"}}
        reply = client.call("health", body)
        client.close()
        return reply

    config = served.data_dir / "strongroom.toml"
    before = config.read_text()
    with_mtls = before.replace(
        'region = "us-east-1"\n', f'region = "us-east-1"\nclient_certificate_subject = "{KMS_SUBJECT}"\n'
    )
    try:
        _reload(served, with_mtls, lambda: health(client_with(None, None)).status == 401)
        for _ in range(4):  # answered alike by both workers (a new connection each)
            reply = health(client_with(None, None))
            assert (reply.status, reply.error) == (401, "AuthenticationFailedException")
            reply = health(client_with(other.cert, other.key))
            assert (reply.status, reply.error) == (401, "AuthenticationFailedException")
            assert health(client_with(kms.cert, kms.key)).status == 200
        # The same subject from a CA the server does not trust never gets past the handshake.
        with pytest.raises((ssl.SSLError, ConnectionError)):
            health(client_with(*_foreign_certificate(tmp_path)))
    finally:
        _reload(served, before, lambda: health(client_with(None, None)).status == 200)
