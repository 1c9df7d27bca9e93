"""Strongroom's server as a real process on loopback: ``strongroom init``, ``certs issue`` and
``strongroom serve`` run exactly as an operator would run them.

:func:`running_server` is the one entry point tests and the benchmark share: it starts
``serve``, waits until the port completes a mutual TLS handshake, and on exit sends SIGTERM and
requires a clean exit (status 0): a server that crashes on shutdown is a bug worth failing on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

LOOPBACK = "127.0.0.1"


class ServerExited(RuntimeError):
    """The server process ended while we were waiting for it to listen."""


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    """A client's identity: its certificate and key, and the CA that signed the server's."""

    ca: Path
    cert: Path
    key: Path


def strongroom_command() -> list[str]:
    """The installed console script beside this interpreter, or the module if it is missing."""
    script = Path(sys.executable).with_name("strongroom")
    return [str(script)] if script.exists() else [sys.executable, "-m", "kmip_server.cli"]


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_HANDED_OUT: set[int] = set()


def free_port(host: str = LOOPBACK) -> int:
    """A port nothing listens on, chosen below the kernel's ephemeral range.

    Not the kernel's own choice (bind to port 0): that comes from the ephemeral range, which
    the clients of the tests also draw their local ports from, and a client connection that
    happens to take the port before the server binds makes the server fail to start (seen as
    a rare, whole-suite failure). Ports are also never handed out twice in one process.
    """
    high = min(_ephemeral_low(), 65536) - 1
    low = max(1024, high - 12000)
    for _ in range(200):
        port = random.randint(low, high)
        if port in _HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError(f"no free port found between {low} and {high}")


def child_pids(pid: int) -> set[int]:
    """The pids of a process's children (a server's worker processes), from Linux /proc."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return set()  # the process has ended
    return {int(child) for child in children}


def client_ssl_context(ca: Path, cert: Path, key: Path) -> ssl.SSLContext:
    """Mutual TLS as a KMIP client does it: verify the server against ``ca``, present ``cert``.
    Host names are not checked: every server here is addressed by IP on loopback, and what we
    exercise is the chain of trust and client authentication."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cafile=str(ca))
    context.load_cert_chain(certfile=str(cert), keyfile=str(key))
    return context


def wait_for_tls(
    host: str,
    port: int,
    ca: Path | TlsFiles,
    cert: Path | None = None,
    key: Path | None = None,
    timeout: float = 30.0,
    process: subprocess.Popen[bytes] | None = None,
) -> float:
    """Block until ``host:port`` completes a mutual TLS handshake; return the seconds it took.

    Raises TimeoutError after ``timeout`` seconds, or ServerExited as soon as ``process`` (the
    server, if given) has ended, so a server that failed to start is reported at once.
    """
    if isinstance(ca, TlsFiles):
        ca, cert, key = ca.ca, ca.cert, ca.key
    assert cert is not None and key is not None
    started = time.monotonic()
    deadline = started + timeout
    last_error: BaseException | None = None
    context: ssl.SSLContext | None = None
    while True:
        if process is not None and process.poll() is not None:
            raise ServerExited(
                f"server process exited with status {process.returncode} before listening (last error: {last_error!r})"
            )
        try:
            # Built in the loop: missing certificate files are then reported with the server's
            # own explanation (it exited) instead of as our FileNotFoundError.
            context = context or client_ssl_context(ca, cert, key)
            with socket.create_connection((host, port), timeout=2.0) as raw:
                with context.wrap_socket(raw) as tls:
                    tls.do_handshake()
                    return time.monotonic() - started
        except (OSError, ssl.SSLError) as error:
            last_error = error
        if time.monotonic() >= deadline:
            raise TimeoutError(f"no TLS handshake with {host}:{port} within {timeout} s (last error: {last_error!r})")
        time.sleep(0.1)


def run_cli(
    args: Sequence[str], timeout: float = 120.0, command: Sequence[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a ``strongroom`` subcommand (``command``: another checkout's, see
    :func:`checkout_command`); on failure raise with its output (what a test needs to see)."""
    result = subprocess.run(
        [*(command or strongroom_command()), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"strongroom {' '.join(args)} exited with {result.returncode}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


def checkout_command(checkout: Path) -> list[str]:
    """The ``strongroom`` command of another checkout of the sources (a benchmark's baseline,
    say ``git worktree add /tmp/base COMMIT``), run by this interpreter with that checkout
    first on the module path."""
    code = f"import sys; sys.path.insert(0, {str(checkout.resolve())!r}); from kmip_server.cli import main; sys.exit(main())"
    return [sys.executable, "-c", code]


def strongroom_init(data_dir: Path, command: Sequence[str] | None = None) -> TlsFiles:
    """``strongroom init`` into ``data_dir``; returns the ``admin`` client identity it made."""
    run_cli(["init", "--data-dir", str(data_dir)], command=command)
    clients = data_dir / "clients"
    return TlsFiles(ca=clients / "ca.crt", cert=clients / "admin.crt", key=clients / "admin.key")


def issue_client_cert(data_dir: Path, name: str, out_dir: Path) -> TlsFiles:
    """``strongroom certs issue``: a further client identity signed by the data dir's CA."""
    run_cli(["certs", "issue", "--data-dir", str(data_dir), "--name", name, "--out", str(out_dir)])
    return TlsFiles(ca=out_dir / "ca.crt", cert=out_dir / f"{name}.crt", key=out_dir / f"{name}.key")


def serve_policy(data_dir: Path, policy: str) -> None:
    """Make the data directory's server use the access policy ``policy`` (TOML text)."""
    (data_dir / "policy.toml").write_text(policy)
    config = data_dir / "strongroom.toml"
    text, count = re.subn(r"(?m)^\[policy\]$", '[policy]\npolicy_file = "policy.toml"', config.read_text())
    assert count == 1
    config.write_text(text)


def admin_tls(data_dir: Path) -> TlsFiles:
    clients = data_dir / "clients"
    return TlsFiles(ca=clients / "ca.crt", cert=clients / "admin.crt", key=clients / "admin.key")


@dataclasses.dataclass
class ServerProcess:
    host: str
    port: int
    data_dir: Path
    tls: TlsFiles  # the admin identity
    process: subprocess.Popen[bytes]
    stderr_path: Path
    startup_seconds: float = 0.0

    def stderr_text(self, limit: int = 8000) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; return the exit status (idempotent). Kills after ``timeout`` seconds
        and raises, since a server that ignores SIGTERM is itself a failure."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(
                    f"strongroom serve ignored SIGTERM for {timeout} s; killed\n{self.stderr_text()}"
                ) from None
        return self.process.returncode

    def stop_cleanly(self, timeout: float = 30.0) -> None:
        status = self.stop(timeout)
        if status != 0:
            raise AssertionError(f"strongroom serve exited with status {status} on SIGTERM\n{self.stderr_text()}")


READY_LINE = "listening on "


def _logs_info(args: Sequence[str]) -> bool:
    """Whether a server started with ``args`` logs at INFO (its default), where READY_LINE is."""
    args = list(args)
    if "--log-level" not in args:
        return True
    return args[args.index("--log-level") + 1].upper() in ("DEBUG", "INFO")


def wait_for_log(server: ServerProcess, text: str, timeout: float) -> None:
    """Block until the server's stderr contains ``text``; ServerExited if it ends first."""
    deadline = time.monotonic() + timeout
    while text not in server.stderr_path.read_text(errors="replace"):
        if server.process.poll() is not None:
            raise ServerExited(f"server process exited with status {server.process.returncode} before logging {text!r}")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"the server did not log {text!r} within {timeout} s")
        time.sleep(0.02)


@contextlib.contextmanager
def running_server(
    data_dir: Path,
    port: int,
    workers: int = 2,
    host: str = LOOPBACK,
    ready_timeout: float = 60.0,
    extra_args: Sequence[str] = (),
    command: Sequence[str] | None = None,
) -> Iterator[ServerProcess]:
    """Run ``strongroom serve`` on an initialised ``data_dir`` for the duration of the block.

    The server's stderr goes to ``DATA_DIR/serve-PORT.stderr`` and is included in every
    failure. Leaving the block stops the server and asserts it exited with status 0 (unless
    the block already stopped it and checked, or is propagating its own exception).
    """
    stderr_path = data_dir / f"serve-{port}.stderr"
    command = [
        *(command or strongroom_command()),
        "serve",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        "--host",
        host,
        "--workers",
        str(workers),
        *extra_args,
    ]
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(command, stdout=stderr, stderr=stderr, stdin=subprocess.DEVNULL)
    server = ServerProcess(host, port, data_dir, admin_tls(data_dir), process, stderr_path)
    try:
        try:
            server.startup_seconds = wait_for_tls(host, port, server.tls, timeout=ready_timeout, process=process)
            # One worker can answer before the others are up; the server is ready (and says so)
            # once every worker is, and tests that stop it expect that complete start-up.
            if _logs_info(extra_args):
                wait_for_log(server, READY_LINE, timeout=ready_timeout)
        except (TimeoutError, ServerExited) as error:
            raise RuntimeError(
                f"strongroom serve did not come up: {error}\n--- stderr\n{server.stderr_text()}"
            ) from error
    except BaseException:
        server.stop(timeout=10)
        raise
    failed = False
    try:
        yield server
    except BaseException:
        failed = True
        raise
    finally:
        if failed:
            server.stop()
        else:
            server.stop_cleanly()
