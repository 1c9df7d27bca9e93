"""A data directory served with a key service (``[cse]``, ``[dke]``) on its admin listener, for
the CSE and DKE tests and benchmark: initialised, given an access policy, the issuers' key set
files and the service's section, then served; and the RSA key pairs those services sign or
decrypt with, made over KMIP by the administrator."""

from __future__ import annotations

import json
import os
import signal
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kmip_client import Client
from tests.support.server_process import (
    LOOPBACK,
    ServerProcess,
    free_port,
    running_server,
    serve_policy,
    strongroom_init,
)

from .hyok_jwt import Signer


@dataclass(frozen=True)
class HyokDataDir:
    """An initialised data directory with an access policy, and the admin port it is to be served on."""

    path: Path
    admin_port: int

    @classmethod
    def create(cls, data_dir: Path, policy: str) -> HyokDataDir:
        strongroom_init(data_dir)
        serve_policy(data_dir, policy)
        return cls(data_dir, free_port())

    def write_jwks(self, relative: str, signer: Signer) -> str:
        """Write ``signer``'s key set to ``relative`` (a file in a folder of the data directory);
        return ``relative``, as ``strongroom.toml`` names the file."""
        path = self.path / relative
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(signer.jwks()))
        return relative

    def add_section(self, section: str) -> None:
        """Append ``section`` (TOML text) to ``strongroom.toml``."""
        config = self.path / "strongroom.toml"
        config.write_text(config.read_text() + section)

    def client_context(self) -> ssl.SSLContext:
        """A TLS context trusting the data directory's CA, as a browser or Office trusts the service."""
        return ssl.create_default_context(cafile=str(self.path / "clients" / "ca.crt"))

    @contextmanager
    def serve(self, workers: int = 2) -> Iterator[ServerProcess]:
        """``strongroom serve`` with the admin listener on ``admin_port``, for the block."""
        extra = ["--admin-port", str(self.admin_port)]
        with running_server(self.path, free_port(), workers=workers, extra_args=extra) as process:
            yield process


@contextmanager
def admin_client(process: ServerProcess) -> Iterator[Client]:
    """A KMIP client of ``process`` as its administrator."""
    tls = process.tls
    with Client(f"{LOOPBACK}:{process.port}", ca=tls.ca, cert=tls.cert, key=tls.key) as kmip:
        yield kmip


def active_rsa_pair(kmip: Client, name: str, group: str) -> tuple[str, str]:
    """An RSA-2048 key pair named ``name`` and ``name-public`` in Object Group ``group``, both
    activated: the private key's and the public key's Unique Identifiers."""
    pair = kmip.create_key_pair(
        "RSA",
        2048,
        private_name=name,
        public_name=f"{name}-public",
        attributes={"Object Group": group},
    )
    kmip.activate(pair.private_key)
    kmip.activate(pair.public_key)
    return pair.private_key, pair.public_key


def sighup_until(process: ServerProcess, accepted: Callable[[], bool], what: str) -> None:
    """SIGHUP ``process`` (its workers re-read their sections) and wait until ``accepted()``."""
    os.kill(process.process.pid, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while not accepted():
        assert time.monotonic() < deadline, f"the server did not {what}"
        time.sleep(0.05)
    time.sleep(0.3)  # the other worker's reload too
