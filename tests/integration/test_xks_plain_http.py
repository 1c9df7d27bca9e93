"""The XKS API's plain HTTP port for local testing, and per-credential request rates, end to end.

A real ``strongroom serve`` (one worker, so that every request meets the same token buckets)
with ``[xks] insecure_http = true``: the XKS API, and only it, is also served as plain HTTP on
127.0.0.1 at ``insecure_http_port``, still authenticated by SigV4. Its credentials: one without
a limit, one of ``max_requests_per_second = 2`` and one of 0.2. Calls are made with the
client of test_xks_sigv4.py (AWS's documents, hashlib and hmac), over ``http.client``'s plain
connection for the plain port; the admin listener is put on 127.0.0.2, so that the plain
port's address is shown to be its own (loopback) and not the admin listener's.
"""

from __future__ import annotations

import base64
import http.client
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kmip_client import Client
from kmip_client.protocol.spec.enums import CryptographicAlgorithm, CryptographicUsageMask
from tests.support.server_process import (
    LOOPBACK,
    ServerProcess,
    free_port,
    running_server,
    serve_policy,
    strongroom_command,
    strongroom_init,
)

from .test_xks_api import POLICY, PREFIX, decrypt_body, encrypt_body
from .test_xks_sigv4 import SERVICE, XksClient, amz_date_of, authorization, request_metadata, sign, unb64

ADMIN_HOST = "127.0.0.2"  # the plain port must be on 127.0.0.1 whatever the admin listener's host
OPEN_ID = "DPLA2NT3XTQ4HT5P6R7S"
LIMITED_ID = "EQMB3OU4YUR5IU6Q7S2T"  # max_requests_per_second = 2
SLOW_ID = "FRNC4PV5ZVS6JV7R2T3U"  # max_requests_per_second = 0.2
SECRETS = {
    name: base64.b64encode(f"tests-only-{name[:4]}-secret-access-key".encode()).decode()
    for name in (OPEN_ID, LIMITED_ID, SLOW_ID)
}
HEALTH = {"requestMetadata": {"kmsRequestId": "plain", "kmsOperation": "KmsHealthCheck"}}


def section(plain_port: int, slow_rate: float = 0.2) -> str:
    return f"""
[xks]
uri_prefix = "{PREFIX}"
region = "us-east-1"
insecure_http = true
insecure_http_port = {plain_port}

[[xks.credentials]]
access_key_id = "{OPEN_ID}"
secret_access_key_file = "xks/open"

[[xks.credentials]]
access_key_id = "{LIMITED_ID}"
secret_access_key_file = "xks/limited"
max_requests_per_second = 2

[[xks.credentials]]
access_key_id = "{SLOW_ID}"
secret_access_key_file = "xks/slow"
max_requests_per_second = {slow_rate}
"""


@dataclass
class Local:
    process: ServerProcess
    data_dir: Path
    admin_port: int
    plain_port: int
    base_config: str
    context: ssl.SSLContext

    def plain(self, access_key_id: str = OPEN_ID) -> XksClient:
        return XksClient(LOOPBACK, self.plain_port, None, PREFIX, access_key_id, SECRETS[access_key_id])

    def tls(self, access_key_id: str = OPEN_ID) -> XksClient:
        return XksClient(ADMIN_HOST, self.admin_port, self.context, PREFIX, access_key_id, SECRETS[access_key_id])


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    data_dir = tmp_path_factory.mktemp("xks-plain") / "data"
    strongroom_init(data_dir)
    serve_policy(data_dir, POLICY)
    (data_dir / "xks").mkdir()
    for access_key_id, name in ((OPEN_ID, "open"), (LIMITED_ID, "limited"), (SLOW_ID, "slow")):
        path = data_dir / "xks" / name
        path.write_text(SECRETS[access_key_id] + "\n")
        path.chmod(0o600)
    config = data_dir / "strongroom.toml"
    base = config.read_text().replace("\n[admin]\n", f'\n[admin]\nhost = "{ADMIN_HOST}"\n', 1)
    assert ADMIN_HOST in base
    admin_port, plain_port = free_port(ADMIN_HOST), free_port()
    config.write_text(base + section(plain_port))
    with running_server(data_dir, free_port(), workers=1, extra_args=["--admin-port", str(admin_port)]) as process:
        tls = process.tls
        with Client(f"{LOOPBACK}:{process.port}", ca=tls.ca, cert=tls.cert, key=tls.key) as kmip:
            uid = kmip.create(
                CryptographicAlgorithm.AES,
                256,
                name="xks-main",
                usage_mask=int(CryptographicUsageMask.ENCRYPT | CryptographicUsageMask.DECRYPT),
            )
            kmip.activate(uid)
        context = ssl.create_default_context(cafile=str(tls.ca))
        context.check_hostname = False  # addressed by IP; the chain is what is checked
        yield Local(process, data_dir, admin_port, plain_port, base, context)


# ---- plain HTTP


def test_encrypt_and_decrypt_over_plain_http(local: Local) -> None:
    client = local.plain()
    try:
        sealed = client.call("keys/xks-main/encrypt", encrypt_body(b"local test", b"aad"))
        assert sealed.status == 200, sealed.body
        opened = client.call("keys/xks-main/decrypt", decrypt_body(sealed.json, b"aad"))
        assert opened.status == 200 and unb64(opened.json["plaintext"]) == b"local test"
        reply = client.call("keys/xks-main/metadata", {"requestMetadata": request_metadata("DescribeKey")})
        assert (reply.status, reply.json["keySpec"]) == (200, "AES_256")
        assert client.call("health", HEALTH).json["ekmFleetDetails"][0]["healthStatus"] == "ACTIVE"
        assert client.call("health", b"", method="GET", content_type="").status == 200
        # The same ciphertext opens over TLS: one key store behind both.
        with_tls = local.tls()
        assert with_tls.call("keys/xks-main/decrypt", decrypt_body(sealed.json, b"aad")).status == 200
        with_tls.close()
    finally:
        client.close()


def _plain_request(local: Local, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(LOOPBACK, local.plain_port, timeout=10)
    try:
        connection.request(method, path, body=b"" if method == "POST" else None, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_only_the_xks_api_is_served_without_tls(local: Local) -> None:
    admin_paths = ("/healthz", "/readyz", "/metrics", "/dashboard", "/dashboard/login", "/kmip", "/kms/xks/v1/health")
    for path in admin_paths:
        for method in ("GET", "POST"):
            status, body = _plain_request(local, method, path)
            assert status == 404, (method, path, body)
            assert b"alive" not in body and b"ready" not in body and b"<html" not in body.lower()
    # ...which the admin listener serves over TLS.
    admin = http.client.HTTPSConnection(ADMIN_HOST, local.admin_port, timeout=10, context=local.context)
    admin.request("GET", "/healthz")
    assert admin.getresponse().status == 200
    admin.close()
    # A wrong path under the prefix is answered in the API's terms, as over TLS.
    status, body = _plain_request(local, "POST", f"{PREFIX}/kms/xks/v1/keys/xks-main/sign")
    assert status == 404 and b"InvalidUriPathException" in body
    # No TLS is spoken there: a TLS client's handshake is not answered with one.
    with socket.create_connection((LOOPBACK, local.plain_port), timeout=10) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            ssl.create_default_context().wrap_socket(raw, server_hostname="localhost")


def test_the_plain_port_is_on_loopback_only(local: Local) -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((ADMIN_HOST, local.plain_port), timeout=5).close()
    socket.create_connection((ADMIN_HOST, local.admin_port), timeout=5).close()
    where = f"http://127.0.0.1:{local.plain_port}{PREFIX}/kms/xks/v1"
    lines = [line for line in local.process.stderr_text(limit=10**7).splitlines() if "WITHOUT TLS" in line]
    assert (
        len(lines) == 1 and "WARNING" in lines[0] and f"the XKS API is also served WITHOUT TLS on {where}" in lines[0]
    )


def test_sigv4_still_applies_over_plain_http(local: Local) -> None:
    client = local.plain()
    try:
        for change in ({"authorization_field": ""}, {"secret": SECRETS[SLOW_ID]}, {"region": "eu-west-1"}):
            reply = client.call("keys/xks-main/metadata", {"requestMetadata": request_metadata()}, **change)
            assert (reply.status, reply.error) == (401, "AuthenticationFailedException"), change
            reply = client.call("health", b"", method="GET", **change)
            assert (reply.status, reply.error) == (401, "AuthenticationFailedException"), change
    finally:
        client.close()
    # The signature covers the Host header field: one signed for another host is refused.
    path = f"{PREFIX}/kms/xks/v1/health"
    amz_date = amz_date_of(time.time())
    signed_for = {"Host": f"{LOOPBACK}:{local.plain_port}", "X-Amz-Date": amz_date}
    names, signature = sign(
        "GET",
        path,
        "",
        signed_for,
        b"",
        secret=SECRETS[OPEN_ID],
        amz_date=amz_date,
        region="us-east-1",
        service=SERVICE,
    )
    auth = authorization(OPEN_ID, amz_date, "us-east-1", SERVICE, names, signature)
    assert _plain_request(local, "GET", path, {**signed_for, "Authorization": auth})[0] == 200
    tampered = {**signed_for, "Host": f"xks.example.com:{local.plain_port}", "Authorization": auth}
    status, body = _plain_request(local, "GET", path, tampered)
    assert status == 401 and b"AuthenticationFailedException" in body


def _serve_fails(local: Local, *args: str) -> str:
    """Start a second server on the same data directory; it must refuse to start. Its stderr."""
    command = [*strongroom_command(), "serve", "--data-dir", str(local.data_dir), "--workers", "1", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 1, result.stderr
    return result.stderr


def test_serve_refuses_plain_http_it_cannot_serve(local: Local) -> None:
    kmip_port = str(free_port())
    said = _serve_fails(local, "--port", kmip_port, "--admin-port", "0")
    assert "xks.insecure_http needs the admin listener, which serves the XKS API" in said
    clash = f"xks.insecure_http_port ({local.plain_port}) must differ from the KMIP ports and admin.port"
    assert clash in _serve_fails(local, "--port", kmip_port, "--admin-port", str(local.plain_port))
    assert clash in _serve_fails(local, "--port", str(local.plain_port), "--admin-port", str(free_port(ADMIN_HOST)))
    # The port is the running server's: the second cannot have it.
    said = _serve_fails(local, "--port", kmip_port, "--admin-port", str(free_port(ADMIN_HOST)))
    assert f"cannot listen for the XKS API over plain HTTP on 127.0.0.1:{local.plain_port}" in said


# ---- request rates


def test_a_limited_credential_is_throttled_then_served_again(local: Local) -> None:
    client = local.tls(LIMITED_ID)
    try:
        time.sleep(1.1)  # a full bucket, whatever ran before
        replies = [client.call("health", HEALTH) for _ in range(8)]
        statuses = [reply.status for reply in replies]
        # Not all 6 after the burst: a slow machine refills a token every half second meanwhile.
        assert statuses[:2] == [200, 200] and statuses.count(429) >= 3, statuses
        for reply in replies:
            if reply.status == 429:
                assert reply.error == "ThrottlingException"
                assert dict(reply.headers)["Content-Type"] == "application/json"
                assert "limited to 2 requests a second" in reply.json["errorMessage"], reply.json
                assert "max_requests_per_second" in reply.json["errorMessage"]
        # Key operations draw from the same bucket.
        assert client.call("keys/xks-main/encrypt", encrypt_body(b"x")).error == "ThrottlingException"
        time.sleep(1.1)
        assert client.call("keys/xks-main/encrypt", encrypt_body(b"x")).status == 200
        assert client.call("health", HEALTH).status == 200
    finally:
        client.close()
    log = local.process.stderr_text(limit=10**7)
    assert any(
        "INFO" in line and "XKS Health from" in line and "as aws-xks: 429 ThrottlingException" in line
        for line in log.splitlines()
    )


def test_an_unlimited_credential_is_never_throttled(local: Local) -> None:
    client = local.tls(OPEN_ID)
    plain = local.plain(OPEN_ID)
    try:
        for _ in range(25):
            assert client.call("health", HEALTH).status == 200
            assert plain.call("health", b"", method="GET").status == 200
    finally:
        client.close()
        plain.close()


def _reload(local: Local, config_text: str) -> None:
    """Write the configuration and SIGHUP the server; return once its worker has reloaded."""
    before = local.process.stderr_text(limit=10**8).count("XKS credentials reloaded")
    (local.data_dir / "strongroom.toml").write_text(config_text)
    os.kill(local.process.process.pid, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while local.process.stderr_text(limit=10**8).count("XKS credentials reloaded") == before:
        assert time.monotonic() < deadline, "the worker did not reload the [xks] section"
        time.sleep(0.02)


def test_one_bucket_for_both_listeners_and_it_outlives_a_reload(local: Local) -> None:
    plain, tls = local.plain(SLOW_ID), local.tls(SLOW_ID)
    try:
        deadline = time.monotonic() + 6
        while plain.call("health", HEALTH).status != 200:  # 0.2 a second: one token at a time
            assert time.monotonic() < deadline
            time.sleep(0.25)
        # The bucket is empty now, for the TLS listener too: one XksService serves both.
        assert tls.call("health", HEALTH).error == "ThrottlingException"
        # A reload that leaves the limit as it is keeps the (empty) bucket...
        _reload(local, local.base_config + section(local.plain_port))
        assert plain.call("health", HEALTH).error == "ThrottlingException"
        # ...one that changes it starts a full one, on the plain listener as on the TLS one.
        _reload(local, local.base_config + section(local.plain_port, slow_rate=50))
        assert plain.call("health", HEALTH).status == 200
        assert tls.call("health", HEALTH).status == 200
    finally:
        plain.close()
        tls.close()
        _reload(local, local.base_config + section(local.plain_port))
