"""Support for the transport tests: a throwaway PKI, the listener in a real server process with
a trivial handler, and plain ``ssl`` clients.

Run as ``python -m tests.integration.tls_fixtures CONFIG.json`` it is the server: it calls
:func:`kmip_server.transport.run_server` with :func:`echo_handler`, prints ``READY`` once all
workers have started, and exits with run_server's status. No pytest import here, so that
process starts quickly.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import selectors
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kmip_client.protocol.model import ProtocolVersion, ResponseBatchItem, ResponseMessage
from kmip_client.protocol.model.base import to_bytes
from kmip_client.protocol.model.messages import RequestMessage, decode_message
from kmip_client.protocol.model.payloads.server_info import DiscoverVersionsRequest, DiscoverVersionsResponse
from kmip_client.protocol.spec.enums import Operation, ResultStatus
from kmip_server.config import (
    CustodySettings,
    ListenerSettings,
    PolicySettings,
    ServerConfig,
    StorageSettings,
    TlsSettings,
)
from kmip_server.engine.identity import ClientIdentity
from kmip_server.engine.responses import response_header
from kmip_server.pki import (
    create_ca,
    issue_client_certificate,
    issue_server_certificate,
    write_issued,
)
from kmip_server.transport import MessageHandler, run_server
from tests.support.server_process import free_port

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
V14 = ProtocolVersion(major=1, minor=4)

# ---------------------------------------------------------------------------------------- PKI


@dataclasses.dataclass(frozen=True)
class ClientFiles:
    cert: Path
    key: Path


@dataclasses.dataclass(frozen=True)
class PkiFiles:
    directory: Path
    ca: Path
    server_cert: Path
    server_key: Path
    clients: dict[str, ClientFiles]

    def client_context(
        self,
        client: str | None = "alice",
        *,
        maximum_version: ssl.TLSVersion | None = None,
        minimum_version: ssl.TLSVersion | None = None,
    ) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False  # addressed by IP; the chain is what is under test
        context.load_verify_locations(cafile=str(self.ca))
        if client is not None:
            files = self.clients[client]
            context.load_cert_chain(certfile=str(files.cert), keyfile=str(files.key))
        if minimum_version is not None:
            context.minimum_version = minimum_version
        if maximum_version is not None:
            context.maximum_version = maximum_version
        return context


def make_pki(directory: Path) -> PkiFiles:
    """A CA, a server certificate for localhost/127.0.0.1, and client certificates:

    alice, bob: ordinary clients; ``mallory``: signed by another CA; ``servercert``: the
    server's certificate (serverAuth only) presented as a client's; ``ops-email``: CN plus
    OU and an e-mail SAN; ``no-email``: no e-mail SAN.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca = create_ca("Strongroom Test CA")
    server = issue_server_certificate(ca)
    write_issued(ca, directory / "ca.crt", directory / "ca.key")
    write_issued(server, directory / "server.crt", directory / "server.key")
    issued = {
        "alice": issue_client_certificate(ca, "alice"),
        "bob": issue_client_certificate(ca, "bob"),
        "mallory": issue_client_certificate(create_ca("Some Other CA"), "mallory"),
        "servercert": server,
        "ops-email": issue_client_certificate(ca, "carol", organizational_unit="ops", emails=("carol@example.org",)),
        "no-email": issue_client_certificate(ca, "dave"),
    }
    clients: dict[str, ClientFiles] = {}
    for name, certificate in issued.items():
        files = ClientFiles(directory / f"{name}.crt", directory / f"{name}.key")
        write_issued(certificate, files.cert, files.key, overwrite=True)
        clients[name] = files
    return PkiFiles(directory, directory / "ca.crt", directory / "server.crt", directory / "server.key", clients)


# ------------------------------------------------------------------------- the server process


def echo_handler(message: bytes, identity: ClientIdentity) -> bytes:
    """Answers each request with one Success item whose Result Message is the client identity.

    The request's Unique Batch Item ID is echoed (so tests can check ordering) and selects
    behaviour: ``slow`` sleeps 0.5 s, ``boom`` raises, ``pid`` answers the worker's pid.
    """
    return _echo(message, identity, None)


class BatchingEcho:
    """:func:`echo_handler` with a ``handle_many`` too, shaped like the engine's Dispatcher
    (the transport finds ``handle_many`` through the bound ``handle`` it is given). The tag
    ``size`` answers ``identity/size of the batch``."""

    def handle(self, message: bytes, identity: ClientIdentity) -> bytes:
        return self.handle_many([(message, identity)])[0]

    def handle_many(self, requests: Sequence[tuple[bytes, ClientIdentity]]) -> list[bytes]:
        return [_echo(message, identity, len(requests)) for message, identity in requests]


class GatheringEcho(BatchingEcho):
    """:class:`BatchingEcho` that, like the engine's Dispatcher, commits every message (its
    audit records), so the transport gathers messages for group commits."""

    commits_every_message = True


def _echo(message: bytes, identity: ClientIdentity, batch_size: int | None) -> bytes:
    request = decode_message(message)
    assert isinstance(request, RequestMessage)
    item = request.batch_items[0]
    tag = item.unique_batch_item_id or b""
    text = identity.name
    if tag == b"slow":
        time.sleep(0.5)
    elif tag == b"boom":
        raise RuntimeError("deliberate failure in the test handler")
    elif tag == b"pid":
        text = str(os.getpid())
    elif tag.startswith(b"size"):
        text = f"{identity.name}/{batch_size}"
    response = ResponseMessage(
        header=response_header(request.protocol_version, 1),
        batch_items=(
            ResponseBatchItem(
                operation=item.operation,
                unique_batch_item_id=tag,
                result_status=ResultStatus.SUCCESS,
                result_message=text,
                payload=DiscoverVersionsResponse(protocol_versions=(V14,)),
            ),
        ),
    )
    return to_bytes(response)


def _failing_factory() -> MessageHandler:
    raise RuntimeError("cannot log in to token 'strongroom': CKR_PIN_INCORRECT (wrong PIN?)")


def _slow_factory() -> MessageHandler:
    time.sleep(8.0)  # a token that takes its time to log in
    return echo_handler


def server_config(pki: PkiFiles, port: int, **listener: Any) -> ServerConfig:
    identity_from = listener.pop("identity_from", "cn")
    settings = {"host": LOOPBACK, "port": port, "workers": 2, "handshake_timeout": 5.0, "shutdown_grace": 5.0}
    return ServerConfig(
        data_dir=pki.directory,
        listener=ListenerSettings(**{**settings, **listener}),
        tls=TlsSettings(pki.server_cert, pki.server_key, (pki.ca,), identity_from=identity_from),
        # Never opened: the test handler needs neither a token nor a store.
        custody=CustodySettings(module=Path("/nonexistent/libsofthsm2.so"), token_label="unused"),
        storage=StorageSettings(url="sqlite://"),
        policy=PolicySettings(),
    )


def _serve_main(path: str) -> int:
    spec = json.loads(Path(path).read_text())
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(process)d %(levelname)s %(message)s")
    pki = PkiFiles(
        directory=Path(spec["directory"]),
        ca=Path(spec["ca"]),
        server_cert=Path(spec["server_cert"]),
        server_key=Path(spec["server_key"]),
        clients={},
    )
    config = server_config(pki, spec["port"], **spec["listener"])
    factories: dict[str, Callable[[], MessageHandler]] = {
        "fail": _failing_factory,
        "slow": _slow_factory,
        "echo": lambda: echo_handler,
        "batch": lambda: BatchingEcho().handle,
        "gather": lambda: GatheringEcho().handle,
    }
    factory = factories[spec["factory"]]

    def ready() -> None:
        print("READY", flush=True)

    return run_server(config, factory, ready=ready)


@dataclasses.dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 20.0) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if selector.select(deadline - time.monotonic()):
                    line = stdout.readline()
                    if line.strip() == b"READY":
                        return
                    if not line:  # EOF: the server ended before it was ready
                        self.process.wait(5)
                        raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
        raise TimeoutError(f"server not ready after {timeout} s:\n{self.log()}")

    def stop(self, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def start_server(
    pki: PkiFiles, directory: Path, *, factory: str = "echo", wait: bool = True, **listener: Any
) -> ServerProcess:
    """The listener in a real process (``python -m tests.integration.tls_fixtures``)."""
    port = listener.pop("port", None) or free_port()
    directory.mkdir(parents=True, exist_ok=True)
    spec = {
        "directory": str(pki.directory),
        "ca": str(pki.ca),
        "server_cert": str(pki.server_cert),
        "server_key": str(pki.server_key),
        "port": port,
        "factory": factory,
        "listener": listener,
    }
    spec_path = directory / f"server-{port}.json"
    spec_path.write_text(json.dumps(spec))
    log_path = directory / f"server-{port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.tls_fixtures", str(spec_path)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=log_file,
        )
    server = ServerProcess(process, port, log_path)
    if wait:
        try:
            server.wait_ready()
        except BaseException:
            process.kill()
            process.wait()
            raise
    return server


@contextmanager
def running_server(pki: PkiFiles, directory: Path, **options: Any) -> Iterator[ServerProcess]:
    server = start_server(pki, directory, **options)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
            try:
                server.process.wait(15)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()


# --------------------------------------------------------------------------------- the client


def request(tag: bytes = b"1") -> bytes:
    """A Discover Versions request whose Unique Batch Item ID is ``tag``."""
    from kmip_client.protocol.model import RequestBatchItem, RequestHeader

    message = RequestMessage(
        header=RequestHeader(protocol_version=V14, batch_count=1),
        batch_items=(
            RequestBatchItem(
                operation=Operation.DISCOVER_VERSIONS,
                unique_batch_item_id=tag,
                payload=DiscoverVersionsRequest(protocol_versions=(V14,)),
            ),
        ),
    )
    return to_bytes(message)


def connect(
    pki: PkiFiles, port: int, client: str | None = "alice", timeout: float = 10.0, **versions: Any
) -> ssl.SSLSocket:
    context = pki.client_context(client, **versions)
    raw = socket.create_connection((LOOPBACK, port), timeout=timeout)
    try:
        return context.wrap_socket(raw)
    except BaseException:
        raw.close()
        raise


def _recv_exactly(sock: ssl.SSLSocket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError(f"connection closed after {len(data)} of {size} bytes")
        data += chunk
    return bytes(data)


def read_message(sock: ssl.SSLSocket) -> bytes:
    header = _recv_exactly(sock, 8)
    (length,) = struct.unpack(">I", header[4:])
    return header + _recv_exactly(sock, length)


def read_response(sock: ssl.SSLSocket) -> ResponseMessage:
    message = decode_message(read_message(sock))
    assert isinstance(message, ResponseMessage)
    return message


def is_closed(sock: ssl.SSLSocket) -> bool:
    """True when the server has closed the connection (EOF or reset)."""
    try:
        return sock.recv(1) == b""
    except (ConnectionError, ssl.SSLError):
        return True


if __name__ == "__main__":
    sys.exit(_serve_main(sys.argv[1]))
