"""PyKMIP's own server (``pykmip-server``) as a subprocess: the benchmark baseline.

Its certificates are made here with ``cryptography`` so that the baseline does not depend on
Strongroom's PKI code. PyKMIP's server insists on the clientAuth extended key usage in client
certificates and names the client by the certificate's common name; its default policy lets
the owner (same CN) Get what it created.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import ipaddress
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .server_process import ServerExited, TlsFiles, wait_for_tls


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)


def _issue(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_name: x509.Name,
    common_name: str,
    usage: x509.ObjectIdentifier,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if usage == ExtendedKeyUsageOID.SERVER_AUTH:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(ca_key, hashes.SHA256()), key


def make_pki(directory: Path, client_name: str = "bench") -> tuple[TlsFiles, Path, Path]:
    """A throwaway CA, a server certificate for 127.0.0.1 and one client certificate (EC P-256:
    cheap handshakes, so connection set-up measures the server rather than RSA).

    Returns (client TLS files, server certificate path, server key path).
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Strongroom bench CA (PyKMIP peer)")
    now = datetime.datetime.now(datetime.UTC)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = directory / "ca.crt"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))

    server_cert, server_key = _issue(ca_key, ca_name, "127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH)
    server_crt_path, server_key_path = directory / "server.crt", directory / "server.key"
    server_crt_path.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(server_key_path, server_key)

    client_cert, client_key = _issue(ca_key, ca_name, client_name, ExtendedKeyUsageOID.CLIENT_AUTH)
    client_crt_path, client_key_path = directory / f"{client_name}.crt", directory / f"{client_name}.key"
    client_crt_path.write_bytes(client_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(client_key_path, client_key)
    return TlsFiles(ca=ca_path, cert=client_crt_path, key=client_key_path), server_crt_path, server_key_path


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


def write_config(directory: Path, port: int, server_crt: Path, server_key: Path, ca: Path) -> Path:
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
        "logging_level=WARNING\n"
        f"database_path={directory / 'pykmip.db'}\n"
    )
    return config


@contextlib.contextmanager
def running_pykmip_server(directory: Path, port: int, ready_timeout: float = 60.0) -> Iterator[PyKmipServer]:
    """Start ``pykmip-server -f server.conf`` in ``directory``; wait until it completes a mutual
    TLS handshake; SIGTERM it on exit (it only notices between accept timeouts, so allow ~10 s)."""
    tls, server_crt, server_key = make_pki(directory / "pki")
    config = write_config(directory, port, server_crt, server_key, tls.ca)
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
