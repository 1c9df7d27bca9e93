"""The client transports (blocking and asyncio) against real servers over mutual TLS.

Failure modes a real server does not produce on demand (answering nothing, dying
mid-response) come from :class:`MisbehavingServer`: a real TLS listener on loopback whose
certificate is issued by the same CA, speaking just enough of the framing to misbehave.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from kmip_client import transport as transport_module
from kmip_client.aio_transport import AsyncConnectionPool
from kmip_client.protocol.framing import Framer
from kmip_client.protocol.spec.enums import Operation, ResultStatus
from kmip_client.tls import client_ssl_context
from kmip_client.transport import (
    ConnectionLost,
    ConnectionPool,
    Endpoint,
    KmipTimeout,
    KmipTransportError,
    ServerUnavailable,
    parse_servers,
)
from kmip_server.pki import create_ca, issue_client_certificate, issue_server_certificate, write_issued
from tests.integration.kmip_messages import V14, item, request_bytes, response
from tests.support.server_process import LOOPBACK, free_port

from .conftest import ClientPki, KillableServer


def discover(tag: str = "1") -> bytes:
    return request_bytes(V14, item(Operation.DISCOVER_VERSIONS, tag.encode()))


def check(data: bytes, tag: str = "1") -> None:
    """``data`` is a successful Discover Versions response to the request tagged ``tag``."""
    message = response(data)
    (result,) = message.batch_items
    assert result.result_status == ResultStatus.SUCCESS, result
    assert result.unique_batch_item_id == tag.encode()


def dead_endpoint() -> Endpoint:
    return Endpoint(LOOPBACK, free_port())


# ------------------------------------------------------------------------------ addresses


def test_parse_servers() -> None:
    assert parse_servers("kmip.example.com") == [Endpoint("kmip.example.com", 5696)]
    assert parse_servers(" a:1, b:2 ") == [Endpoint("a", 1), Endpoint("b", 2)]
    assert parse_servers("[::1]:5697,[fe80::1]") == [Endpoint("::1", 5697), Endpoint("fe80::1")]
    assert parse_servers("::1") == [Endpoint("::1")]
    assert parse_servers(["a:7", ("b", 8), Endpoint("c")]) == [Endpoint("a", 7), Endpoint("b", 8), Endpoint("c")]
    assert str(Endpoint("::1", 9)) == "[::1]:9"
    for bad in ("", "a:b", "a:0", "a:70000", "[::1", "[::1]x"):
        with pytest.raises(ValueError):
            parse_servers(bad)


# ------------------------------------------------------------------------ a real server


def test_exchange(endpoints: list[Endpoint], client_context: ssl.SSLContext) -> None:
    with ConnectionPool(endpoints, client_context) as pool:
        check(pool.exchange(discover("a"), idempotent=True), "a")
        check(pool.exchange(discover("b"), idempotent=False), "b")


def test_idle_connection_is_reused(endpoints: list[Endpoint], client_context: ssl.SSLContext) -> None:
    with ConnectionPool(endpoints, client_context) as pool:
        for n in range(20):
            check(pool.exchange(discover(str(n)), idempotent=True), str(n))
        stats = pool.stats()
    assert (stats.opened, stats.reused, stats.idle, stats.retries) == (1, 19, 1, 0)


def test_many_threads_each_get_their_own_connection(endpoints: list[Endpoint], client_context: ssl.SSLContext) -> None:
    errors: list[BaseException] = []
    with ConnectionPool(endpoints, client_context, max_idle_per_endpoint=16) as pool:

        def work(thread: int) -> None:
            try:
                for n in range(15):
                    tag = f"{thread}-{n}"
                    check(pool.exchange(discover(tag), idempotent=True), tag)  # a crossed wire shows here
            except BaseException as error:  # noqa: BLE001 - reported by the main thread
                errors.append(error)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        stats = pool.stats()
    assert not errors, errors
    assert stats.opened <= 16 and stats.opened + stats.reused == 16 * 15
    assert stats.retries == 0


def test_async_exchange_and_concurrent_tasks(endpoints: list[Endpoint], client_context: ssl.SSLContext) -> None:
    async def main() -> None:
        async with AsyncConnectionPool(endpoints, client_context, max_idle_per_endpoint=16) as pool:
            check(await pool.exchange(discover("first"), idempotent=True), "first")

            async def work(task: int) -> None:
                for n in range(10):
                    tag = f"{task}-{n}"
                    check(await pool.exchange(discover(tag), idempotent=False), tag)

            await asyncio.gather(*(work(t) for t in range(16)))
            stats = pool.stats()
            assert stats.opened <= 16 and stats.opened + stats.reused == 1 + 16 * 10
            assert stats.retries == 0

    asyncio.run(main())


def test_passphrase_protected_client_key(client_pki: ClientPki, endpoints: list[Endpoint], tmp_path: Path) -> None:
    cert, key = tmp_path / "locked.crt", tmp_path / "locked.key"
    write_issued(issue_client_certificate(client_pki.ca(), "locked"), cert, key, passphrase=b"open sesame")
    ca = client_pki.admin.ca
    for password in (b"open sesame", "open sesame"):
        context = client_ssl_context(ca=ca, cert=cert, key=key, key_password=password)
        with ConnectionPool(endpoints, context) as pool:
            check(pool.exchange(discover(), idempotent=True))
    with pytest.raises(ValueError, match="wrong passphrase") as wrong:
        client_ssl_context(ca=ca, cert=cert, key=key, key_password=b"letmein-guess")
    assert "letmein-guess" not in str(wrong.value)
    with pytest.raises(ValueError, match="encrypted"):
        client_ssl_context(ca=ca, cert=cert, key=key)
    with pytest.raises(ValueError, match="cannot read"):
        client_ssl_context(ca=ca, cert=cert, key=tmp_path / "missing.key")
    with pytest.raises(ValueError, match="CA certificates"):
        client_ssl_context(ca=tmp_path / "missing-ca.crt")


def test_context_defaults(client_context: ssl.SSLContext) -> None:
    assert client_context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert client_context.verify_mode == ssl.CERT_REQUIRED and client_context.check_hostname


def test_wrong_ca_is_refused(client_pki: ClientPki, endpoints: list[Endpoint], tmp_path: Path) -> None:
    other = create_ca("Not The Server's CA")
    write_issued(other, tmp_path / "other.crt", tmp_path / "other.key")
    admin = client_pki.admin
    context = client_ssl_context(ca=tmp_path / "other.crt", cert=admin.cert, key=admin.key)
    with ConnectionPool(endpoints[:1], context) as pool, pytest.raises(ServerUnavailable) as raised:
        pool.exchange(discover(), idempotent=True)
    ((endpoint, error),) = raised.value.failures
    assert endpoint == endpoints[0] and isinstance(error, ssl.SSLCertVerificationError)
    assert "certificate verification failed" in str(raised.value)


# ---------------------------------------------------------------------------- failover


def test_failover_past_a_dead_endpoint(endpoints: list[Endpoint], client_context: ssl.SSLContext) -> None:
    dead = dead_endpoint()
    with ConnectionPool([dead, endpoints[1]], client_context, backoff=60) as pool:
        for n in range(3):
            check(pool.exchange(discover(str(n)), idempotent=False), str(n))  # connect failures: always safe
        stats = pool.stats()
    # Marked down after the first refusal, the dead endpoint is not tried again during its backoff.
    assert (stats.failed_connects, stats.opened, stats.reused) == (1, 1, 2)

    async def main() -> None:
        async with AsyncConnectionPool([dead, endpoints[1]], client_context) as pool:
            check(await pool.exchange(discover(), idempotent=False))

    asyncio.run(main())


def test_server_unavailable_lists_every_endpoint(client_context: ssl.SSLContext) -> None:
    dead = [dead_endpoint(), dead_endpoint()]
    with ConnectionPool(dead, client_context) as pool, pytest.raises(ServerUnavailable) as raised:
        pool.exchange(discover(), idempotent=True)
    assert [e for e, _ in raised.value.failures] == dead
    assert all(isinstance(error, ConnectionRefusedError) for _, error in raised.value.failures)
    for endpoint in dead:
        assert str(endpoint) in str(raised.value)

    async def main() -> None:
        async with AsyncConnectionPool(dead, client_context) as pool:
            with pytest.raises(ServerUnavailable) as raised:
                await pool.exchange(discover(), idempotent=True)
            assert [e for e, _ in raised.value.failures] == dead

    asyncio.run(main())


def test_killed_server_fails_over(
    killable_server: KillableServer, endpoints: list[Endpoint], client_context: ssl.SSLContext
) -> None:
    errors: list[BaseException] = []
    done = {"before": 0, "after": 0}
    lock = threading.Lock()
    killed = threading.Event()
    stop = threading.Event()
    pool = ConnectionPool([killable_server.endpoint, endpoints[1]], client_context, timeout=5, backoff=30)

    def loop(thread: int) -> None:
        n = 0
        while not stop.is_set():
            tag = f"{thread}-{n}"
            try:
                check(pool.exchange(discover(tag), idempotent=True), tag)
            except BaseException as error:  # noqa: BLE001 - reported by the main thread
                errors.append(error)
                return
            with lock:
                done["after" if killed.is_set() else "before"] += 1
            n += 1

    threads = [threading.Thread(target=loop, args=(t,)) for t in range(4)]
    with pool:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while done["before"] < 40 and time.monotonic() < deadline and not errors:
            time.sleep(0.01)
        killable_server.kill()  # SIGKILL, with exchanges in flight on its connections
        killed.set()
        while done["after"] < 100 and time.monotonic() < deadline + 20 and not errors:
            time.sleep(0.01)
        stop.set()
        for thread in threads:
            thread.join(30)
    assert not errors, errors
    assert done["before"] >= 40 and done["after"] >= 100
    stats = pool.stats()
    # Its connections failed (and were retried elsewhere) or were refused on connect: both count.
    assert stats.retries + stats.failed_connects >= 1, stats


# ---------------------------------------------------------------------- misbehaving servers


class MisbehavingServer:
    """A TLS listener whose certificate comes from the test CA. ``mode`` for each connection:

    ``silent``: read requests, never answer. ``close``: read one request, close. ``partial``:
    read one request, send part of a response, close. ``once``: echo one request (a
    well-framed message) and close. ``first-only``: echo the first request, read the second
    and close without answering. ``pieces``: echo every request in 7-byte TLS records, a
    moment apart. ``trickle``: echo a request one byte every 0.1 s.
    """

    def __init__(self, client_pki: ClientPki, tmp_path: Path, mode: str, **cert_names: object) -> None:
        issued = issue_server_certificate(client_pki.ca(), **cert_names)  # type: ignore[arg-type]
        cert, key = tmp_path / f"{mode}.crt", tmp_path / f"{mode}.key"
        write_issued(issued, cert, key, overwrite=True)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.mode = mode
        self.requests = 0
        self.connections = 0
        self.listener = socket.create_server((LOOPBACK, 0))
        self.endpoint = Endpoint(LOOPBACK, self.listener.getsockname()[1])
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return  # closed
            self.connections += 1
            self._sockets.append(raw)
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            with self.context.wrap_socket(raw, server_side=True) as tls:
                framer = Framer()
                answered = 0
                while True:
                    data = tls.recv(65536)
                    if not data:
                        return
                    for message in framer.feed(data):
                        self.requests += 1
                        if self.mode == "silent":
                            continue
                        if self.mode == "partial":
                            tls.sendall(message[:12])
                        if self.mode == "once":
                            tls.sendall(message)
                        if self.mode == "pieces":
                            for at in range(0, len(message), 7):
                                tls.sendall(message[at : at + 7])
                                time.sleep(0.002)
                            continue
                        if self.mode == "trickle":
                            for at in range(len(message)):
                                tls.sendall(message[at : at + 1])
                                time.sleep(0.1)
                        if self.mode == "first-only" and answered == 0:
                            tls.sendall(message)
                            answered += 1
                            continue
                        return
        except OSError:
            return

    def close(self) -> None:
        self.listener.close()
        for sock in self._sockets:
            sock.close()


Misbehaving = Callable[..., AbstractContextManager[MisbehavingServer]]


@pytest.fixture
def misbehaving(client_pki: ClientPki, tmp_path: Path) -> Iterator[Misbehaving]:
    servers: list[MisbehavingServer] = []

    @contextmanager
    def start(mode: str, **cert_names: object) -> Iterator[MisbehavingServer]:
        server = MisbehavingServer(client_pki, tmp_path, mode, **cert_names)
        servers.append(server)
        yield server

    yield start
    for server in servers:
        server.close()


def test_hostname_is_checked(misbehaving: Misbehaving, client_context: ssl.SSLContext, client_pki: ClientPki) -> None:
    with misbehaving("first-only", hostnames=["kmip.example.com"], addresses=[]) as server:
        with ConnectionPool([server.endpoint], client_context) as pool, pytest.raises(ServerUnavailable) as raised:
            pool.exchange(discover(), idempotent=True)
        ((_, error),) = raised.value.failures
        assert isinstance(error, ssl.SSLCertVerificationError) and "mismatch" in str(error)
        # The same chain is accepted when host names are not checked.
        relaxed = client_pki.context(check_hostname=False)
        with ConnectionPool([server.endpoint], relaxed) as pool:
            assert pool.exchange(discover(), idempotent=True) == discover()


def test_non_idempotent_request_is_not_resent(misbehaving: Misbehaving, client_context: ssl.SSLContext) -> None:
    for mode in ("close", "partial"):
        with misbehaving(mode) as server, ConnectionPool([server.endpoint], client_context) as pool:
            with pytest.raises(ConnectionLost) as raised:
                pool.exchange(discover(), idempotent=False)
            assert raised.value.request_sent and not isinstance(raised.value, KmipTimeout)
            assert "not idempotent" in str(raised.value)
            assert server.requests == 1
            # An idempotent request is re-sent, up to ``retries`` times.
            with pytest.raises(ConnectionLost, match="after 2 retries"):
                pool.exchange(discover(), idempotent=True)
            assert server.requests == 1 + 3

    async def main() -> None:
        with misbehaving("close") as server:
            async with AsyncConnectionPool([server.endpoint], client_context) as pool:
                with pytest.raises(ConnectionLost, match="not idempotent"):
                    await pool.exchange(discover(), idempotent=False)
            assert server.requests == 1

    asyncio.run(main())


def test_timeout(misbehaving: Misbehaving, client_context: ssl.SSLContext) -> None:
    with misbehaving("silent") as server:
        with ConnectionPool([server.endpoint], client_context, timeout=0.3, retries=1) as pool:
            started = time.monotonic()
            with pytest.raises(KmipTimeout) as raised:
                pool.exchange(discover(), idempotent=True)
            assert raised.value.request_sent and raised.value.endpoint == server.endpoint
            assert 0.6 <= time.monotonic() - started < 5 and server.requests == 2
            with pytest.raises(KmipTimeout):
                pool.exchange(discover(), idempotent=False)
            assert server.requests == 3

        async def main() -> None:
            async with AsyncConnectionPool([server.endpoint], client_context, timeout=0.3) as pool:
                with pytest.raises(KmipTimeout):
                    await pool.exchange(discover(), idempotent=False)

        asyncio.run(main())
        assert server.requests == 4


def test_a_response_in_many_records_and_reads_is_put_together(
    misbehaving: Misbehaving, client_context: ssl.SSLContext
) -> None:
    with misbehaving("pieces") as server, ConnectionPool([server.endpoint], client_context) as pool:
        for tag in ("1", "2", "3"):
            assert pool.exchange(discover(tag), idempotent=True) == discover(tag)
        assert pool.stats().opened == 1
    # Several full TLS records (16 KiB each at most) in one read from the socket.
    big = "x" * 100_000
    with misbehaving("once") as server, ConnectionPool([server.endpoint], client_context) as pool:
        assert pool.exchange(discover(big), idempotent=True) == discover(big)


def test_a_trickled_response_times_out_as_a_whole(misbehaving: Misbehaving, client_context: ssl.SSLContext) -> None:
    # One byte every 0.1 s: every wait is short, but the whole response would take seconds.
    with misbehaving("trickle") as server:
        with ConnectionPool([server.endpoint], client_context, timeout=0.5, retries=0) as pool:
            started = time.monotonic()
            with pytest.raises(KmipTimeout):
                pool.exchange(discover(), idempotent=True)
            assert time.monotonic() - started < 1.5


def test_stale_pooled_connection_is_replaced(misbehaving: Misbehaving, client_context: ssl.SSLContext) -> None:
    with misbehaving("first-only") as server, ConnectionPool([server.endpoint], client_context) as pool:
        assert pool.exchange(discover("1"), idempotent=False) == discover("1")
        # The pooled connection passes the probe, but the server drops the next request
        # without a byte of answer: the documented stale rule re-sends it on a fresh connection.
        assert pool.exchange(discover("2"), idempotent=False) == discover("2")
        stats = pool.stats()
        assert (stats.opened, stats.reused, stats.stale, stats.retries) == (2, 1, 1, 1)
        assert server.requests == 3


def test_idle_connection_closed_by_server_is_probed_out(
    misbehaving: Misbehaving, client_context: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Connections idle for less than _PROBE_AFTER are reused unprobed (the stale rule covers
    # them); shorten it so this test need not wait a second.
    monkeypatch.setattr(transport_module, "_PROBE_AFTER", 0.1)
    with misbehaving("once") as server, ConnectionPool([server.endpoint], client_context) as pool:
        assert pool.exchange(discover("1"), idempotent=False) == discover("1")
        time.sleep(0.2)  # idle long enough for the server's close to arrive, and past _PROBE_AFTER
        # Probed before reuse: found closed, discarded, and nothing was sent on it.
        assert pool.exchange(discover("2"), idempotent=False) == discover("2")
        stats = pool.stats()
        assert (stats.opened, stats.stale, stats.retries) == (2, 1, 0)
        assert server.requests == 2


def test_closed_pool_refuses(endpoints: list[Endpoint], client_context: ssl.SSLContext) -> None:
    pool = ConnectionPool(endpoints, client_context)
    check(pool.exchange(discover(), idempotent=True))
    pool.close()
    assert pool.stats().idle == 0
    with pytest.raises(KmipTransportError, match="closed"):
        pool.exchange(discover(), idempotent=True)
