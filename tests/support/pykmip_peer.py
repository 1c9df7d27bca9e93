"""PyKMIP's own server (``pykmip-server``) as a subprocess: the benchmark baseline.

PyKMIP's server insists on the clientAuth extended key usage in client
certificates and names the client by the certificate's common name; its default policy lets
the owner (same CN) Get what it created.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from kmip_server.pki import create_ca, issue_client_certificate, issue_server_certificate, write_issued

from .server_process import ServerExited, TlsFiles, wait_for_tls


def make_pki(directory: Path, client_name: str = "bench") -> tuple[TlsFiles, Path, Path]:
    """A throwaway CA, a server certificate for 127.0.0.1 and one client certificate, made with
    Strongroom's own PKI helpers (EC P-256: cheap handshakes, so connection set-up measures the
    server rather than RSA). Their client certificates carry the clientAuth usage PyKMIP wants.

    Returns (client TLS files, server certificate path, server key path).
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca = create_ca("Strongroom bench CA (PyKMIP peer)", days=2)
    ca_path = directory / "ca.crt"
    ca_path.write_bytes(ca.certificate_pem())
    server_crt, server_key = directory / "server.crt", directory / "server.key"
    write_issued(issue_server_certificate(ca, addresses=("127.0.0.1",), days=2), server_crt, server_key)
    client_crt, client_key = directory / f"{client_name}.crt", directory / f"{client_name}.key"
    write_issued(issue_client_certificate(ca, client_name, days=2), client_crt, client_key)
    return TlsFiles(ca=ca_path, cert=client_crt, key=client_key), server_crt, server_key


@dataclasses.dataclass
class PyKmipServer:
    host: str
    port: int
    tls: TlsFiles
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, limit: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""


def write_config(
    directory: Path, port: int, server_crt: Path, server_key: Path, ca: Path, logging_level: str = "WARNING"
) -> Path:
    policies = directory / "policies"
    policies.mkdir(exist_ok=True)
    config = directory / "server.conf"
    config.write_text(
        "[server]\n"
        "hostname=127.0.0.1\n"
        f"port={port}\n"
        f"certificate_path={server_crt}\n"
        f"key_path={server_key}\n"
        f"ca_path={ca}\n"
        "auth_suite=TLS1.2\n"
        f"policy_path={policies}\n"
        "enable_tls_client_auth=True\n"
        f"logging_level={logging_level}\n"
        f"database_path={directory / 'pykmip.db'}\n"
    )
    return config


@contextlib.contextmanager
def running_pykmip_server(
    directory: Path, port: int, ready_timeout: float = 60.0, logging_level: str = "WARNING"
) -> Iterator[PyKmipServer]:
    """Start ``pykmip-server -f server.conf`` in ``directory``; wait until it completes a mutual
    TLS handshake; SIGTERM it on exit (it only notices between accept timeouts, so allow ~10 s)."""
    tls, server_crt, server_key = make_pki(directory / "pki")
    config = write_config(directory, port, server_crt, server_key, tls.ca, logging_level)
    log_path = directory / "pykmip-server.log"
    executable = Path(sys.executable).with_name("pykmip-server")
    command = [str(executable)] if executable.exists() else [sys.executable, "-m", "kmip.services.server.server"]
    # The server writes its log to /var/log/pykmip unless told otherwise; keep it in our directory.
    command += ["-f", str(config), "-l", str(log_path)]
    with open(directory / "pykmip-server.stderr", "wb") as stderr:
        process = subprocess.Popen(command, stdout=stderr, stderr=stderr, cwd=directory)
    server = PyKmipServer("127.0.0.1", port, tls, process, log_path)
    try:
        try:
            wait_for_tls(server.host, port, tls, timeout=ready_timeout, process=process)
        except (TimeoutError, ServerExited) as error:
            stderr_text = (directory / "pykmip-server.stderr").read_text(errors="replace")
            raise RuntimeError(f"pykmip-server did not come up: {error}\n{stderr_text}\n{server.log_tail()}") from error
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


if __name__ == "__main__":  # pragma: no cover - manual smoke check
    import tempfile

    from .server_process import free_port

    with tempfile.TemporaryDirectory() as tmp, running_pykmip_server(Path(tmp), free_port()) as srv:
        print("pykmip-server up on", srv.port, "pid", srv.process.pid, os.getpid())
