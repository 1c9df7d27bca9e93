"""One real Strongroom server for the interop session: ``strongroom init``, a second client
identity (``bob``) from ``strongroom certs issue``, and ``strongroom serve --workers 2`` on a
free loopback port, talked to by PyKMIP's client over mutual TLS.

The server's stderr goes to a file; a failing test gets its tail attached to the report, and
teardown requires that SIGTERM ends the server with status 0.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kmip.core import enums
from kmip.pie.client import ProxyKmipClient

from tests.support.server_process import (
    ServerProcess,
    TlsFiles,
    free_port,
    issue_client_cert,
    running_server,
    strongroom_init,
)

# The versions both PyKMIP 0.11's client and our server speak; 1.2 is the oldest VMware-era
# clients use, 1.4 the last 1.x, 2.0 the newest PyKMIP can encode.
VERSIONS = {
    "1.2": enums.KMIPVersion.KMIP_1_2,
    "1.4": enums.KMIPVersion.KMIP_1_4,
    "2.0": enums.KMIPVersion.KMIP_2_0,
}

_server: ServerProcess | None = None  # for attaching its stderr to failure reports


@dataclasses.dataclass(frozen=True)
class InteropServer:
    host: str
    port: int
    data_dir: Path
    admin: TlsFiles
    bob: TlsFiles
    process: ServerProcess  # its stderr, for tests of what the server logs


def _softhsm_missing() -> bool:
    try:
        from kmip_server.custody import find_softhsm_module
    except ImportError:
        return False  # let init report what is wrong
    return find_softhsm_module() is None


@pytest.fixture(scope="session")
def interop_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InteropServer]:
    global _server
    if _softhsm_missing():
        pytest.fail("SoftHSM2 is not installed: run scripts/setup (apt-get install softhsm2)")
    base = tmp_path_factory.mktemp("interop")
    data_dir = base / "data"
    admin = strongroom_init(data_dir)
    bob = issue_client_cert(data_dir, "bob", base / "bob")
    with running_server(data_dir, free_port(), workers=2) as server:
        _server = server
        try:
            yield InteropServer(server.host, server.port, data_dir, admin, bob, server)
        finally:
            _server = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and _server is not None:
        report.sections.append(("strongroom serve stderr (tail)", _server.stderr_text(6000)))


ClientFactory = Callable[..., ProxyKmipClient]


@pytest.fixture(params=list(VERSIONS), ids=[f"kmip{v}" for v in VERSIONS])
def kmip_version(request: pytest.FixtureRequest) -> enums.KMIPVersion:
    return VERSIONS[request.param]


@pytest.fixture
def connect(interop_server: InteropServer, kmip_version: enums.KMIPVersion) -> Iterator[ClientFactory]:
    """``connect(identity="admin")``: an open ProxyKmipClient speaking the test's KMIP version
    (see :func:`open_pykmip`)."""
    opened: list[ProxyKmipClient] = []

    def factory(identity: str = "admin") -> ProxyKmipClient:
        client = open_pykmip(interop_server, identity, kmip_version)
        opened.append(client)
        return client

    yield factory
    for client in opened:
        client.close()


def open_pykmip(
    server: InteropServer, identity: str, kmip_version: enums.KMIPVersion, **options: str
) -> ProxyKmipClient:
    """An open ProxyKmipClient as ``identity`` (``options``: PyKMIP's username, password ...).

    ``ssl_version="PROTOCOL_TLS"``: PyKMIP 0.11 builds ``ssl.SSLContext(ssl_version)`` and wraps
    the socket without a server_hostname, so PROTOCOL_TLS_CLIENT (which turns on host name
    checking) fails with "check_hostname requires server_hostname". PROTOCOL_TLS negotiates the
    highest version both sides have and still verifies the server's chain (CERT_REQUIRED).
    """
    files = {"admin": server.admin, "bob": server.bob}[identity]
    client = ProxyKmipClient(
        hostname=server.host,
        port=server.port,
        cert=str(files.cert),
        key=str(files.key),
        ca=str(files.ca),
        ssl_version="PROTOCOL_TLS",
        kmip_version=kmip_version,
        **options,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # ssl.PROTOCOL_TLS, see above
        client.open()
    return client
