"""What deploy/ relies on, with the real server: the systemd readiness notifications of
``strongroom serve`` (deploy/strongroom.service is Type=notify, NotifyAccess=main), and the
container's entry point (deploy/container-entrypoint.sh) initialising an empty data directory
and then serving it.

The notification socket is bound by the test the way systemd binds its own (a datagram
socket with SO_PASSCRED, so every message carries the sender's pid).
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import struct
import subprocess
import sys
from pathlib import Path

from cryptography import x509

from tests.support.server_process import (
    LOOPBACK,
    READY_LINE,
    ServerProcess,
    admin_tls,
    child_pids,
    client_ssl_context,
    free_port,
    strongroom_init,
    wait_for_log,
    wait_for_tls,
)

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "deploy" / "container-entrypoint.sh"
_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid


def _notify_socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    return sock


def _receive(sock: socket.socket, timeout: float, server: ServerProcess) -> tuple[str, int]:
    """The next notification and its sender's pid; fails if the server ends first."""
    sock.settimeout(0.2)
    waited = 0.0
    while True:
        try:
            data, ancillary, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(_CREDENTIALS.size))
        except TimeoutError:
            waited += 0.2
            if server.process.poll() is not None and waited > 1.0:
                raise AssertionError(
                    f"serve exited ({server.process.returncode}) without notifying\n{server.stderr_text()}"
                ) from None
            if waited >= timeout:
                raise AssertionError(f"no notification within {timeout} s\n{server.stderr_text()}") from None
            continue
        (pid,) = [
            _CREDENTIALS.unpack(payload[: _CREDENTIALS.size])[0]
            for level, kind, payload in ancillary
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS
        ]
        return data.decode(), pid


def _handshake_at_once(context: ssl.SSLContext, port: int) -> None:
    """A mutual TLS handshake that a worker answers now: a connection still waiting in the
    listening socket's queue for a worker to start would time out."""
    with socket.create_connection((LOOPBACK, port), timeout=2.0) as raw, context.wrap_socket(raw) as tls:
        tls.do_handshake()


def _start(command: list[str], data_dir: Path, port: int, env: dict[str, str], stderr_path: Path) -> ServerProcess:
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(command, stdout=stderr, stderr=stderr, stdin=subprocess.DEVNULL, env=env)
    return ServerProcess(LOOPBACK, port, data_dir, admin_tls(data_dir), process, stderr_path)


def test_ready_once_every_worker_accepts_and_stopping_on_sigterm(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    tls = strongroom_init(data_dir)
    port = free_port()
    notify_path = tmp_path / "notify"
    command = [
        str(Path(sys.executable).with_name("strongroom")),
        *("serve", "--data-dir", str(data_dir), "--host", LOOPBACK, "--port", str(port), "--workers", "2"),
    ]
    with _notify_socket(notify_path) as sock:
        env = {**os.environ, "NOTIFY_SOCKET": str(notify_path)}
        server = _start(command, data_dir, port, env, tmp_path / "serve.stderr")
        try:
            message, sender = _receive(sock, 60.0, server)
            # At the moment READY=1 arrives: the supervisor has logged that every worker has
            # started, both workers exist, and each handshake is answered at once.
            assert READY_LINE in server.stderr_text(), server.stderr_text()
            assert len(child_pids(server.process.pid)) == 2
            context = client_ssl_context(tls.ca, tls.cert, tls.key)
            for _ in range(4):
                _handshake_at_once(context, port)
            assert message == f"READY=1\nSTATUS=listening on {LOOPBACK}:{port}"
            # From the main PID, so systemd's NotifyAccess=main takes it; a worker's would not.
            assert sender == server.process.pid

            server.process.send_signal(signal.SIGTERM)
            message, sender = _receive(sock, 30.0, server)
            assert (message, sender) == ("STOPPING=1\nSTATUS=stopping", server.process.pid)
            server.stop_cleanly()
            # Nothing else was sent: one READY=1, one STOPPING=1.
            sock.setblocking(False)
            try:
                extra = sock.recv(4096)
            except BlockingIOError:
                extra = b""
            assert extra == b""
        finally:
            server.stop()


def test_serve_without_notify_socket_is_unaffected(tmp_path: Path) -> None:
    # A NOTIFY_SOCKET naming nothing (a shell started from a unit, the unit gone): the server
    # starts, serves and stops as ever, notifications only logged at DEBUG.
    data_dir = tmp_path / "data"
    tls = strongroom_init(data_dir)
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("strongroom")),
        *("serve", "--data-dir", str(data_dir), "--host", LOOPBACK, "--port", str(port), "--workers", "1"),
    ]
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "no-such-socket")}
    server = _start(command, data_dir, port, env, tmp_path / "serve.stderr")
    try:
        wait_for_tls(LOOPBACK, port, tls, timeout=60.0, process=server.process)
        wait_for_log(server, READY_LINE, timeout=60.0)
        server.stop_cleanly()
    finally:
        server.stop()


def test_container_entrypoint_initialises_an_empty_directory_then_serves_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "volume"
    data_dir.mkdir(mode=0o700)
    (data_dir / "lost+found").mkdir()  # a fresh file system's, which does not count
    env = {
        **os.environ,
        # The image's PATH: the virtualenv's strongroom first.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "STRONGROOM_DATA_DIR": str(data_dir),
        "STRONGROOM_HOST": LOOPBACK,  # a test on a shared machine, not 0.0.0.0
        "STRONGROOM_SERVER_NAMES": "kms.example.com 192.0.2.7",
    }
    env.pop("NOTIFY_SOCKET", None)
    for start in ("first", "second"):
        port = free_port()
        command = ["/bin/sh", str(ENTRYPOINT), "--port", str(port), "--workers", "1"]
        server = _start(command, data_dir, port, env, tmp_path / f"{start}.stderr")
        try:
            # The admin identity init made in the volume connects: init ran, then serve.
            wait_for_tls(LOOPBACK, port, admin_tls(data_dir), timeout=60.0, process=server.process)
            wait_for_log(server, READY_LINE, timeout=60.0)
            # exec: the shell became the server, so SIGTERM from `stop` reaches its supervisor.
            assert len(child_pids(server.process.pid)) == 1
            server.stop_cleanly()
        finally:
            server.stop()
        # init prints to stdout, which _start sends to the same file.
        initialised = "strongroom: data directory" in server.stderr_text(limit=10**6)
        assert initialised == (start == "first"), server.stderr_text()
    # STRONGROOM_SERVER_NAMES reached init: the names clients connect to are certified.
    certificate = x509.load_pem_x509_certificate((data_dir / "pki" / "server.crt").read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "kms.example.com" in names.get_values_for_type(x509.DNSName)
