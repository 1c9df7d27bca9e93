"""The admin listener over real TLS: a real server (2 workers, SQLite, SoftHSM2) with
``--admin-port``; probes without a client certificate, metrics only for an administrator,
counts that move when KMIP operations run, and each readiness failure reported by name."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.openmetrics import parser as openmetrics_parser
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

from kmip_client import Client
from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.spec.enums import CryptographicAlgorithm, ResultReason
from kmip_server.admin.health import ServerView, readiness
from kmip_server.engine.dispatcher import Dispatcher
from kmip_server.policy import DEFAULT_POLICY
from kmip_server.storage.repository import Repository
from tests.support.metrics import metric_samples
from tests.support.server_process import (
    LOOPBACK,
    ServerProcess,
    TlsFiles,
    child_pids,
    client_ssl_context,
    free_port,
    issue_client_cert,
    running_server,
    strongroom_command,
    strongroom_init,
)

from .conftest import POSTGRES_URL, SoftHsmToken


@dataclass(frozen=True)
class AdminServer:
    process: ServerProcess
    admin_port: int
    admin: TlsFiles
    other: TlsFiles

    def get(self, path: str, who: TlsFiles | None = None) -> tuple[int, str, bytes]:
        if who is None:  # no client certificate: what a load balancer's probe presents
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.load_verify_locations(cafile=str(self.admin.ca))
        else:
            context = client_ssl_context(who.ca, who.cert, who.key)
        conn = http.client.HTTPSConnection(LOOPBACK, self.admin_port, timeout=10, context=context)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.getheader("Content-Type") or "", response.read()
        finally:
            conn.close()

    def metrics(self) -> dict[str, float]:
        status, _, body = self.get("/metrics", self.admin)
        assert status == 200, body
        return metric_samples(body.decode())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminServer]:
    data_dir = tmp_path_factory.mktemp("admin") / "data"
    admin = strongroom_init(data_dir)
    other = issue_client_cert(data_dir, "bob", data_dir.parent / "bob")
    admin_port = free_port()
    with running_server(data_dir, free_port(), workers=2, extra_args=["--admin-port", str(admin_port)]) as process:
        yield AdminServer(process, admin_port, admin, other)


def kmip_client(server: AdminServer) -> Client:
    tls = server.admin
    return Client(f"{LOOPBACK}:{server.process.port}", ca=tls.ca, cert=tls.cert, key=tls.key)


def test_healthz_answers_without_a_client_certificate(server: AdminServer) -> None:
    status, content_type, body = server.get("/healthz")
    assert (status, content_type) == (200, "application/json")
    report = json.loads(body)
    assert report["alive"] is True and report["uptime_seconds"] >= 0 and report["pid"] > 0


def test_readyz_reports_each_check(server: AdminServer) -> None:
    status, _, body = server.get("/readyz")
    report = json.loads(body)
    assert status == 200, report
    assert report["ready"] is True
    assert set(report["checks"]) == {"token", "database", "workers"}
    assert all(check["ok"] for check in report["checks"].values())
    assert report["checks"]["workers"]["up"] == 2


def test_metrics_need_an_administrators_certificate(server: AdminServer) -> None:
    status, _, body = server.get("/metrics")
    assert status == 401 and b"client certificate" in body
    status, _, body = server.get("/metrics", server.other)
    assert status == 403 and b"bob" in body


def test_unknown_admin_paths_are_404_and_kmip_is_not_served_here(server: AdminServer) -> None:
    for path in ("/kmip", "/nope"):
        status, _, body = server.get(path, server.admin)
        assert status == 404 and b"/healthz" in body


def test_metrics_parse_and_move_when_operations_run(server: AdminServer) -> None:
    before = server.metrics()
    created = "strongroom_batch_items_total{operation=Create,outcome=Success}"
    missing = "strongroom_batch_items_total{operation=Get,outcome=Object Not Found}"
    with kmip_client(server) as client:
        for _ in range(3):
            uid = client.create(CryptographicAlgorithm.AES, 256)
        with pytest.raises(KmipError) as refused:
            client.get("no-such-object")
        assert refused.value.reason == ResultReason.OBJECT_NOT_FOUND  # KMIP 2.x, the default
        assert uid
    # Both workers write their counts; whichever answers the scrape reads all of them.
    after = server.metrics()
    assert after[created] - before.get(created, 0) == 3
    assert after[missing] - before.get(missing, 0) == 1
    assert after["strongroom_batch_item_seconds_count{operation=Create}"] >= 3
    assert after["strongroom_requests_total{}"] - before.get("strongroom_requests_total{}", 0) >= 4
    assert after["strongroom_workers_up{}"] == 2
    keys = "strongroom_objects{state=Pre Active,type=Symmetric Key}"
    assert after[keys] - before.get(keys, 0) == 3
    assert after["strongroom_audit_records{}"] > before.get("strongroom_audit_records{}", 0)
    assert after["strongroom_pending_approvals{}"] == 0
    assert after["strongroom_rotations_due{}"] == 0 and "strongroom_rotations_done{}" in after
    # The token's calls (a Create wraps the new key) and the store's transactions.
    wraps = "strongroom_hsm_call_seconds_count{call=wrap}"
    assert after[wraps] - before.get(wraps, 0) >= 3
    assert after.get("strongroom_hsm_call_errors_total{call=wrap}", 0) == 0
    writes = "strongroom_database_transaction_seconds_count{kind=write}"
    assert after[writes] - before.get(writes, 0) >= 3


def test_openmetrics_scrapes_carry_the_request_id_of_the_audit_record(server: AdminServer) -> None:
    # The request id (the connection's address) ties metrics to the log lines and audit
    # records: an OpenMetrics scrape shows it as the exemplar of the item's latency bucket and
    # outcome count. Either worker may have answered the Create; either may answer the scrape.
    with kmip_client(server) as client:
        uid = client.create(CryptographicAlgorithm.AES, 128)
    search = [*strongroom_command(), "audit", "search", "--data-dir", str(server.process.data_dir)]
    found = subprocess.run([*search, "--object", uid, "--json"], capture_output=True, text=True, timeout=60)
    address = json.loads(found.stdout.splitlines()[0])["address"]
    assert address.startswith(LOOPBACK + ":")
    deadline = time.monotonic() + 10
    while True:
        families = {family.name: family for family in openmetrics_families(server)}
        counted = [
            sample
            for sample in families["strongroom_batch_items"].samples
            if sample.labels == {"operation": "Create", "outcome": "Success"} and sample.name.endswith("_total")
        ]
        buckets = [
            sample
            for sample in families["strongroom_batch_item_seconds"].samples
            if sample.labels.get("operation") == "Create" and sample.exemplar is not None
        ]
        newest = max(buckets, key=lambda sample: sample.exemplar.timestamp, default=None)
        if counted[0].exemplar is not None and counted[0].exemplar.labels["request_id"] == address:
            if newest is not None and newest.exemplar.labels["request_id"] == address:
                break
        assert time.monotonic() < deadline, f"no exemplar of {address}: {counted} {newest}"
        time.sleep(0.2)
    # The exemplar's value lies in its bucket.
    assert 0 < newest.exemplar.value <= float(newest.labels["le"])
    # A classic scrape has no exemplars (its format has no place for them).
    status, content_type, body = server.get("/metrics", server.admin)
    assert status == 200 and content_type.startswith("text/plain") and b"request_id" not in body


def openmetrics_families(server: AdminServer) -> list[Any]:
    context = client_ssl_context(server.admin.ca, server.admin.cert, server.admin.key)
    conn = http.client.HTTPSConnection(LOOPBACK, server.admin_port, timeout=10, context=context)
    try:
        conn.request("GET", "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
        response = conn.getresponse()
        body = response.read().decode()
        assert response.status == 200 and response.getheader("Content-Type", "").startswith(
            "application/openmetrics-text"
        )
    finally:
        conn.close()
    return list(openmetrics_parser.text_string_to_metric_families(body))


def test_failed_tls_handshakes_are_counted(server: AdminServer) -> None:
    failures = "strongroom_tls_handshake_failures_total{}"
    before = server.metrics().get(failures, 0)
    # A client without a certificate on the KMIP port: refused in the handshake.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.load_verify_locations(cafile=str(server.admin.ca))
    for _ in range(2):
        with socket.create_connection((LOOPBACK, server.process.port), timeout=10) as raw:
            with contextlib.suppress(ssl.SSLError, OSError):
                with context.wrap_socket(raw) as tls:
                    tls.sendall(b"\x42")
                    tls.recv(1)  # TLS 1.3 reports the refused certificate on the first read
    deadline = time.monotonic() + 10
    while server.metrics().get(failures, 0) - before < 2:
        assert time.monotonic() < deadline, "the refused handshakes were not counted"
        time.sleep(0.1)


def test_readiness_names_a_token_that_is_gone_and_a_database_that_does_not_answer(
    softhsm_token: SoftHsmToken, tmp_path: Path
) -> None:
    # The same checks on an engine of this process (the session's SoftHSM2 token, a SQLite
    # store): its token session closed, as after the token went away; then its store pointed
    # at a PostgreSQL port nobody listens on.
    from kmip_server import operations  # noqa: F401  (registers the handlers)

    repository = Repository(f"sqlite:///{tmp_path / 'store.db'}")
    repository.create_schema()
    dead = Repository(f"postgresql+psycopg://strongroom@127.0.0.1:{free_port()}/none?connect_timeout=2")
    try:
        with softhsm_token.open() as custody:
            view = ServerView(Dispatcher(repository, custody, DEFAULT_POLICY), None, 1)
            assert readiness(view)["ready"] is True
            view.dispatcher.repository = dead
            started = time.monotonic()
            report = readiness(view)
            assert time.monotonic() - started < 10
            assert report["ready"] is False
            assert report["checks"]["database"]["ok"] is False
            assert "OperationalError" in report["checks"]["database"]["error"]
            assert report["checks"]["token"]["ok"] is True and report["checks"]["workers"]["ok"] is True
        view.dispatcher.repository = repository
        report = readiness(view)  # the token session is closed now
        assert report["ready"] is False
        assert report["checks"]["token"]["ok"] is False and report["checks"]["token"]["error"]
        assert report["checks"]["database"]["ok"] is True
    finally:
        dead.dispose()
        repository.dispose()


@contextlib.contextmanager
def admin_port_configured(data_dir: Path, port: int) -> Iterator[None]:
    """strongroom.toml names ``port`` for the block (what `status` reads; the server took --admin-port)."""
    config = data_dir / "strongroom.toml"
    text = config.read_text()
    assert "\n[admin]\n" in text
    config.write_text(text.replace("\n[admin]\n", f"\n[admin]\nport = {port}\n", 1))
    try:
        yield
    finally:
        config.write_text(text)


def status(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [*strongroom_command(), "status", "--data-dir", str(data_dir), "--interval", "0.2", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_status_prints_the_servers_state(server: AdminServer) -> None:
    data_dir = server.process.data_dir
    with admin_port_configured(data_dir, server.admin_port):
        result = status(data_dir)
        # As another identity: /metrics is refused, and status says so instead of a report.
        refused = status(data_dir, "--cert", str(server.other.cert), "--key", str(server.other.key))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("strongroom ") and ": ready" in out.splitlines()[0]
    assert "workers        2 up" in out
    for check in ("token", "database", "workers"):
        assert any(line.split() == [check, "ok"] for line in out.splitlines()), out
    assert refused.returncode == 2 and "403" in refused.stderr


def test_status_says_when_the_admin_listener_is_off(server: AdminServer) -> None:
    result = status(server.process.data_dir)
    assert result.returncode == 2 and "[admin] port" in result.stderr


@contextlib.contextmanager
def own_postgres_database() -> Iterator[tuple[str, Any]]:
    """A PostgreSQL database of this test's own (the URL, and an admin engine on the server),
    so that refusing its connections touches no other test's store."""
    name = f"strongroom_gone_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False), admin
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def test_readyz_over_tls_reports_the_database_gone_and_back(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    admin_tls = strongroom_init(data_dir)
    with own_postgres_database() as (url, admin):
        config = data_dir / "strongroom.toml"
        toml = config.read_text()
        start = toml.index("\nurl = ")
        end = toml.index("\n", start + 1)
        config.write_text(toml[:start] + f'\nurl = "{url}"' + toml[end:])
        admin_port = free_port()
        with running_server(data_dir, free_port(), workers=2, extra_args=["--admin-port", str(admin_port)]) as process:
            probe = AdminServer(process, admin_port, admin_tls, admin_tls)
            status, _, body = probe.get("/readyz")
            assert status == 200, body
            database = make_url(url).database
            with admin.connect() as conn:  # no new connections, and the open ones ended
                conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
                conn.execute(
                    text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'")
                )
            status, _, body = probe.get("/readyz")
            report = json.loads(body)
            assert status == 503, report
            assert report["ready"] is False and report["checks"]["database"]["ok"] is False
            assert "OperationalError" in report["checks"]["database"]["error"]
            assert report["checks"]["token"]["ok"] is True  # what failed is named, nothing else
            assert probe.get("/healthz")[0] == 200  # alive all the same: a load balancer keeps it
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
            deadline = time.monotonic() + 20
            while probe.get("/readyz")[0] != 200:
                assert time.monotonic() < deadline, "readiness did not come back with the database"
                time.sleep(0.2)


P11_KIT_CLIENT = Path("/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so")


@contextlib.contextmanager
def token_served_by_p11_kit(data_dir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The data directory's SoftHSM2 token served by ``p11-kit server`` on a socket of its own,
    and strongroom.toml pointed at p11-kit's client module: the token is then a separate
    process (as a network HSM is) that the test can take away from the running server."""
    socket_path = data_dir.parent / "p11-kit.sock"
    config = data_dir / "strongroom.toml"
    toml = config.read_text()
    softhsm = tomllib.loads(toml)["custody"]["module"]
    env = {**os.environ, "SOFTHSM2_CONF": str(data_dir / "hsm" / "softhsm2.conf")}
    command = ["p11-kit", "server", "-f", "-n", str(socket_path), "-p", softhsm, "pkcs11:token=strongroom"]
    p11 = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not socket_path.exists():
            assert p11.poll() is None and time.monotonic() < deadline, "p11-kit server did not start"
            time.sleep(0.05)
        toml = toml.replace(f'module = "{softhsm}"', f'module = "{P11_KIT_CLIENT}"', 1)
        toml = toml.replace('\nsofthsm2_conf = "hsm/softhsm2.conf"', "", 1)
        assert str(P11_KIT_CLIENT) in toml and "\nsofthsm2_conf" not in toml
        config.write_text(toml)
        os.environ["P11_KIT_SERVER_ADDRESS"] = f"unix:path={socket_path}"
        yield p11
    finally:
        os.environ.pop("P11_KIT_SERVER_ADDRESS", None)
        p11.kill()
        p11.wait(timeout=10)


def test_readyz_over_tls_reports_the_token_gone(tmp_path: Path) -> None:
    # One p11-kit-remote process per worker holds that worker's PKCS#11 session; killing
    # them is the token going away under the running server (a network HSM restarting).
    data_dir = tmp_path / "data"
    admin_tls = strongroom_init(data_dir)
    with token_served_by_p11_kit(data_dir) as p11:
        admin_port = free_port()
        with running_server(data_dir, free_port(), workers=2, extra_args=["--admin-port", str(admin_port)]) as process:
            probe = AdminServer(process, admin_port, admin_tls, admin_tls)
            status, _, body = probe.get("/readyz")
            assert status == 200, body
            remotes = child_pids(p11.pid)
            assert len(remotes) >= 2, "each worker talks to the token through its own p11-kit-remote"
            for pid in remotes:
                os.kill(pid, signal.SIGKILL)
            for _ in range(4):  # whichever worker answers, it has lost the token
                status, _, body = probe.get("/readyz")
                report = json.loads(body)
                assert status == 503, report
                assert report["checks"]["token"]["ok"] is False and report["checks"]["token"]["error"]
                assert report["checks"]["database"]["ok"] is True and report["checks"]["workers"]["ok"] is True
            assert probe.get("/healthz")[0] == 200
            # KMIP requests needing the token are answered with an error, not a dropped connection.
            with kmip_client(probe) as client, pytest.raises(KmipError):
                client.create(CryptographicAlgorithm.AES, 256)
            process.stop()  # the token gone, the stop is still an orderly one
