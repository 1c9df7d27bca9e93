"""Fixtures for the client transport tests: real ``strongroom serve`` processes over mutual TLS.

Two servers run for the whole session, each with its own data directory (database, token,
configuration) but the same CA, so one client identity is trusted by both. Tests that kill a
server start their own with :func:`start_server`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kmip_client.tls import client_ssl_context
from kmip_client.transport import Endpoint
from kmip_server.pki import IssuedCertificate, load_issued
from tests.support.server_process import (
    LOOPBACK,
    ServerProcess,
    TlsFiles,
    admin_tls,
    free_port,
    running_server,
    strongroom_command,
    strongroom_init,
    wait_for_tls,
)


@dataclass(frozen=True)
class ClientPki:
    """The CA shared by every server in the session, and the admin client's files."""

    directory: Path  # the first data directory
    admin: TlsFiles

    def ca(self) -> IssuedCertificate:
        """The CA with its private key, to issue further certificates in tests."""
        return load_issued(self.directory / "pki" / "ca.crt", self.directory / "pki" / "ca.key")

    def context(self, **options: object) -> ssl.SSLContext:
        """The admin client's context (host names checked: the servers' certificates name 127.0.0.1)."""
        return client_ssl_context(ca=self.admin.ca, cert=self.admin.cert, key=self.admin.key, **options)  # type: ignore[arg-type]


def init_sibling(pki: ClientPki, data_dir: Path) -> Path:
    """``strongroom init`` a fresh data directory that reuses ``pki``'s CA and server certificate
    (init keeps existing PKI files and creates only what is missing: token, database, config)."""
    data_dir.mkdir(mode=0o700)
    shutil.copytree(pki.directory / "pki", data_dir / "pki")
    shutil.copytree(pki.directory / "clients", data_dir / "clients")
    strongroom_init(data_dir)
    return data_dir


@pytest.fixture(scope="session")
def client_pki(tmp_path_factory: pytest.TempPathFactory) -> ClientPki:
    directory = tmp_path_factory.mktemp("client-a") / "data"
    strongroom_init(directory)
    return ClientPki(directory, admin_tls(directory))


@pytest.fixture(scope="session")
def servers(client_pki: ClientPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    """Two independent servers on free loopback ports: [primary, secondary]."""
    second = init_sibling(client_pki, tmp_path_factory.mktemp("client-b") / "data")
    with running_server(client_pki.directory, free_port()) as primary, running_server(second, free_port()) as secondary:
        yield [primary, secondary]


@pytest.fixture(scope="session")
def endpoints(servers: list[ServerProcess]) -> list[Endpoint]:
    return [Endpoint(s.host, s.port) for s in servers]


@pytest.fixture(scope="session")
def client_context(client_pki: ClientPki) -> ssl.SSLContext:
    return client_pki.context()


@dataclass
class KillableServer:
    """A ``strongroom serve`` the test may SIGKILL (``running_server`` insists on a clean exit)."""

    endpoint: Endpoint
    process: subprocess.Popen[bytes]

    def kill(self) -> None:
        """SIGKILL the server and its worker processes (its own process group): the whole server
        dies at once, as on a crash, and the kernel resets or closes its connections."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


@pytest.fixture
def killable_server(client_pki: ClientPki, tmp_path: Path) -> Iterator[KillableServer]:
    data_dir = init_sibling(client_pki, tmp_path / "victim")
    port = free_port()
    command = [*strongroom_command(), "serve", "--data-dir", str(data_dir), "--port", str(port)]
    command += ["--host", LOOPBACK, "--workers", "2"]
    with open(data_dir / "serve.stderr", "wb") as stderr:
        process = subprocess.Popen(
            command, stdout=stderr, stderr=stderr, stdin=subprocess.DEVNULL, start_new_session=True
        )
    server = KillableServer(Endpoint(LOOPBACK, port), process)
    try:
        wait_for_tls(LOOPBACK, port, admin_tls(data_dir), timeout=60, process=process)
        yield server
    finally:
        server.kill()
