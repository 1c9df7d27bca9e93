"""The KMIP listener end to end: real server processes, real mutual TLS on loopback, ssl clients.

The handler is a trivial one (:func:`tls_fixtures.echo_handler`) that answers with the
client identity, so these tests are about the transport: framing, TLS policy, identities,
time-outs, limits, concurrency, worker supervision and shutdown.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from kmip_client.protocol.model import ResponseMessage
from kmip_client.protocol.model.messages import decode_message
from kmip_client.protocol.spec.enums import ResultReason, ResultStatus
from kmip_server.pki import create_ca, issue_client_certificate
from kmip_server.transport import identity_from_certificate, server_ssl_context
from kmip_server.transport.tls import TLS12_CIPHERS

from .tls_fixtures import (
    LOOPBACK,
    ROOT,
    PkiFiles,
    ServerProcess,
    connect,
    free_port,
    is_closed,
    make_pki,
    read_message,
    read_response,
    request,
    running_server,
    server_config,
    start_server,
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def server(pki: PkiFiles, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Two workers, generous time-outs: the server most tests share."""
    with running_server(pki, tmp_path_factory.mktemp("server"), workers=2, idle_timeout=60.0) as running:
        yield running
        assert running.stop() == 0, running.log()


def _exchange(sock: ssl.SSLSocket, tag: bytes = b"1") -> str:
    sock.sendall(request(tag))
    response = read_response(sock)
    (item,) = response.batch_items
    assert item.result_status == ResultStatus.SUCCESS, (item.result_reason, item.result_message)
    assert item.unique_batch_item_id == tag
    assert item.result_message is not None
    return item.result_message


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


# ------------------------------------------------------------------------ requests and identity


def test_request_is_answered_with_the_client_certificate_cn(pki: PkiFiles, server: ServerProcess) -> None:
    with connect(pki, server.port, "alice") as sock:
        assert sock.version() == "TLSv1.3"
        assert _exchange(sock) == "alice"
    with connect(pki, server.port, "bob") as sock:
        assert _exchange(sock) == "bob"


def test_tls12_client_gets_a_forward_secret_aead_suite(pki: PkiFiles, server: ServerProcess) -> None:
    with connect(pki, server.port, "alice", maximum_version=ssl.TLSVersion.TLSv1_2) as sock:
        assert sock.version() == "TLSv1.2"
        cipher = sock.cipher()
        assert cipher is not None and cipher[0].startswith("ECDHE-") and ("GCM" in cipher[0] or "CHACHA" in cipher[0])
        assert _exchange(sock) == "alice"


def test_messages_on_one_connection_are_answered_in_order(pki: PkiFiles, server: ServerProcess) -> None:
    with connect(pki, server.port) as sock:
        for index in range(20):
            assert _exchange(sock, b"seq-%d" % index) == "alice"


def test_pipelined_messages_in_one_write_are_answered_in_order(pki: PkiFiles, server: ServerProcess) -> None:
    tags = [b"p-%d" % index for index in range(50)]
    with connect(pki, server.port) as sock:
        sock.sendall(b"".join(request(tag) for tag in tags))
        answered = [read_response(sock).batch_items[0].unique_batch_item_id for _ in tags]
    assert answered == tags


def test_messages_split_byte_by_byte_are_reassembled(pki: PkiFiles, server: ServerProcess) -> None:
    data = request(b"first") + request(b"second")
    with connect(pki, server.port) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # one TLS record per byte
        for index in range(len(data)):
            sock.sendall(data[index : index + 1])
        assert [read_response(sock).batch_items[0].unique_batch_item_id for _ in range(2)] == [b"first", b"second"]
        assert _exchange(sock, b"after") == "alice"


# ---------------------------------------------------------------------------------- bad input


def _assert_invalid_message_then_closed(sock: ssl.SSLSocket) -> str:
    response = read_response(sock)
    (item,) = response.batch_items
    assert item.result_status == ResultStatus.OPERATION_FAILED
    assert item.result_reason == ResultReason.INVALID_MESSAGE
    assert is_closed(sock)
    assert item.result_message is not None
    return item.result_message


def test_garbage_gets_invalid_message_and_the_connection_is_closed(pki: PkiFiles, server: ServerProcess) -> None:
    with connect(pki, server.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: kms\r\n\r\n")
        assert "Structure" in _assert_invalid_message_then_closed(sock)


def test_huge_declared_length_is_refused_without_waiting_for_the_body(pki: PkiFiles, server: ServerProcess) -> None:
    with connect(pki, server.port) as sock:
        sock.settimeout(5)
        # A Request Message header claiming ~2 GiB: the answer must come without the body.
        sock.sendall(struct.pack(">I", 0x42007801) + struct.pack(">I", 0x7FFFFFF0))
        started = time.monotonic()
        assert "exceeds the maximum" in _assert_invalid_message_then_closed(sock)
        assert time.monotonic() - started < 2.0
    with connect(pki, server.port) as sock:
        assert _exchange(sock) == "alice"


# ------------------------------------------------------------------------------------ the TLS policy


def _handshake_fails(pki: PkiFiles, port: int, client: str | None, **versions: object) -> bool:
    """True when the connection cannot be used: the handshake fails, or (TLS 1.3, where the
    client finishes before the server has checked its certificate) the server then closes."""
    try:
        sock = connect(pki, port, client, **versions)  # type: ignore[arg-type]
    except (ssl.SSLError, ConnectionError):
        return True
    with sock:
        try:
            sock.sendall(request())
            read_message(sock)
        except (ssl.SSLError, ConnectionError, EOFError):
            return True
    return False


def test_client_without_a_certificate_is_refused(pki: PkiFiles, server: ServerProcess) -> None:
    assert _handshake_fails(pki, server.port, None)


def test_client_certificate_from_another_ca_is_refused(pki: PkiFiles, server: ServerProcess) -> None:
    assert _handshake_fails(pki, server.port, "mallory")


def test_certificate_without_client_auth_usage_is_refused(pki: PkiFiles, server: ServerProcess) -> None:
    assert _handshake_fails(pki, server.port, "servercert")


def test_tls11_client_is_refused(pki: PkiFiles, server: ServerProcess) -> None:
    context = pki.client_context("alice", minimum_version=ssl.TLSVersion.TLSv1, maximum_version=ssl.TLSVersion.TLSv1_1)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # so the client really offers TLS 1.1
    with socket.create_connection((LOOPBACK, server.port), timeout=5) as raw:
        with pytest.raises(ssl.SSLError):
            context.wrap_socket(raw)


def test_server_context_policy(pki: PkiFiles) -> None:
    config = server_config(pki, 1)
    context = server_ssl_context(config.tls)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.maximum_version == ssl.TLSVersion.TLSv1_3
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.options & ssl.OP_NO_COMPRESSION and context.options & ssl.OP_CIPHER_SERVER_PREFERENCE
    assert context.options & ssl.OP_NO_RENEGOTIATION
    tls12 = [c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12 and set(tls12) == set(TLS12_CIPHERS.split(":"))
    for name in tls12:
        assert name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name)
        assert "CBC" not in name and not name.endswith("-SHA")


# ------------------------------------------------------------------------------------ identities


def test_identity_modes(pki: PkiFiles) -> None:
    der = ssl.PEM_cert_to_DER_cert(pki.clients["ops-email"].cert.read_text())
    assert identity_from_certificate(der).name == "carol"
    assert identity_from_certificate(der, "cn").certificate == der
    assert identity_from_certificate(der, "ou").name == "ops"
    assert identity_from_certificate(der, "san-email").name == "carol@example.org"
    assert identity_from_certificate(der, "subject").name == "CN=carol,OU=ops"
    with pytest.raises(ValueError, match="DNS"):
        identity_from_certificate(der, "san-dns")
    plain = ssl.PEM_cert_to_DER_cert(pki.clients["no-email"].cert.read_text())
    with pytest.raises(ValueError, match="e-mail"):
        identity_from_certificate(plain, "san-email")
    with pytest.raises(ValueError, match="organizational unit"):
        identity_from_certificate(plain, "ou")
    with pytest.raises(ValueError):
        identity_from_certificate(plain, "serial")


def test_ambiguous_identity_is_rejected() -> None:
    ca = create_ca()
    two = issue_client_certificate(ca, "svc", dns_names=("a.example.org", "b.example.org"))
    der = two.certificate.public_bytes(Encoding.DER)
    with pytest.raises(ValueError, match="ambiguous"):
        identity_from_certificate(der, "san-dns")
    one = issue_client_certificate(ca, "svc", dns_names=("a.example.org",))
    der = one.certificate.public_bytes(Encoding.DER)
    assert identity_from_certificate(der, "san-dns").name == "a.example.org"


def test_certificate_lacking_the_identity_field_is_closed_with_a_warning(pki: PkiFiles, tmp_path: Path) -> None:
    with running_server(pki, tmp_path, workers=1, identity_from="san-email") as server:
        with connect(pki, server.port, "ops-email") as sock:
            assert _exchange(sock) == "carol@example.org"
        assert _handshake_fails(pki, server.port, "no-email")
        assert server.stop() == 0
        log = server.log()
    assert "WARNING closing connection from 127.0.0.1:" in log and "no e-mail subject alternative name" in log


# ------------------------------------------------------------------------ time-outs and limits


def test_client_stalling_mid_message_is_dropped_and_others_are_served(pki: PkiFiles, tmp_path: Path) -> None:
    with running_server(pki, tmp_path, workers=1, idle_timeout=0.6) as server:
        stalled = connect(pki, server.port)
        stalled.sendall(request(b"stalled")[:20])
        started = time.monotonic()
        with connect(pki, server.port, "bob") as other:
            # Requests keep it alive past the time-out: only a missing *complete* message counts.
            for index in range(4):
                assert _exchange(other, b"%d" % index) == "bob"
                time.sleep(0.25)
            stalled.settimeout(5)
            assert is_closed(stalled)
            assert 0.5 < time.monotonic() - started < 4.0  # the idle time-out, not the handshake's 5 s
            assert _exchange(other, b"still") == "bob"
        stalled.close()
        assert server.stop() == 0
        assert "message incomplete" in server.log()


def test_connections_over_the_limit_are_closed_at_once(pki: PkiFiles, tmp_path: Path) -> None:
    # All from one source (loopback), allowed every connection: the limit is what refuses here.
    with running_server(pki, tmp_path, workers=1, max_connections=3, max_source_share=1.0) as server:
        held = [connect(pki, server.port) for _ in range(3)]
        for sock in held:
            assert _exchange(sock) == "alice"
        assert _handshake_fails(pki, server.port, "alice")
        assert _handshake_fails(pki, server.port, "alice")
        held.pop().close()
        _wait_for(lambda: not _handshake_fails(pki, server.port, "alice"), 5.0, "a free connection slot")
        for sock in held:
            assert _exchange(sock) == "alice"
            sock.close()
        assert server.stop() == 0
        log = server.log()
    assert log.count("connection limit of 3 reached") == 1  # once per burst, not per connection


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_client_that_never_reads_is_throttled_then_dropped(pki: PkiFiles, tmp_path: Path) -> None:
    with running_server(pki, tmp_path, workers=1, idle_timeout=0.6) as server:
        with connect(pki, server.port, "bob") as probe:
            worker = int(_exchange(probe, b"pid"))
        before = _rss_kib(worker)
        outcome: list[BaseException | None] = []

        def flood() -> None:
            # Pipelined requests, never reading a response: the server must stop reading
            # rather than queue answers without bound, and then drop the connection.
            batch = request(b"flood") * 2000
            try:
                with connect(pki, server.port) as sock:
                    for _ in range(200):  # ~40 MB of requests in all
                        sock.sendall(batch)
                outcome.append(None)
            except OSError as exc:
                outcome.append(exc)

        thread = threading.Thread(target=flood)
        thread.start()
        with connect(pki, server.port, "bob") as other:
            for index in range(5):
                assert _exchange(other, b"%d" % index) == "bob"  # others are still served
                time.sleep(0.1)
        thread.join(20)
        assert not thread.is_alive()
        assert outcome and isinstance(outcome[0], OSError), outcome  # dropped, not fully read
        grown = _rss_kib(worker) - before
        print(f"\nworker RSS grew by {grown} KiB under the flood")
        assert grown < 32 * 1024  # what it buffered stayed bounded
        assert server.stop() == 0


async def _hold_many(pki: PkiFiles, port: int, count: int, tag: bytes | None = None) -> list[str]:
    """Open ``count`` connections at once, send a request on each (with Unique Batch Item ID
    ``tag``, else ``c-INDEX``), and close them only when every one has its answer: all
    ``count`` are held open together."""
    context = pki.client_context("alice")
    everyone_answered = asyncio.Event()
    answers: list[str] = []

    async def one(index: int) -> None:
        reader, writer = await asyncio.open_connection(LOOPBACK, port, ssl=context, ssl_handshake_timeout=60)
        try:
            writer.write(request(tag or b"c-%d" % index))
            header = await reader.readexactly(8)
            body = await reader.readexactly(struct.unpack(">I", header[4:])[0])
            answers.append((header + body).hex())
            if len(answers) == count:
                everyone_answered.set()
            await everyone_answered.wait()
        finally:
            writer.close()

    await asyncio.wait_for(asyncio.gather(*(one(index) for index in range(count))), 120)
    return answers


def test_a_thousand_concurrent_connections(pki: PkiFiles, server: ServerProcess) -> None:
    count = 1000
    started = time.monotonic()
    answers = asyncio.run(_hold_many(pki, server.port, count))
    elapsed = time.monotonic() - started
    assert len(answers) == count
    for answer in answers:
        message = decode_message(bytes.fromhex(answer))
        assert isinstance(message, ResponseMessage)
        item = message.batch_items[0]
        assert item.result_status == ResultStatus.SUCCESS and item.result_message == "alice"
    print(f"\n{count} concurrent TLS connections, one request each: {elapsed:.2f} s")
    assert "Traceback" not in server.log()


def test_a_burst_of_connections_is_spread_evenly_over_the_workers(pki: PkiFiles, tmp_path: Path) -> None:
    # All workers are woken for each connection and the first to accept wins, which left one
    # of two workers with 40 of 64 and its clients waiting on longer batches: the workers
    # share their connection counts and the busier one lets a connection pass. A server of
    # its own, so that no other test's connections are still closing on one of the workers.
    count = 64
    with running_server(pki, tmp_path, workers=2) as server:
        answers = asyncio.run(_hold_many(pki, server.port, count, tag=b"pid"))
    per_worker: dict[str, int] = {}
    for answer in answers:
        message = decode_message(bytes.fromhex(answer))
        assert isinstance(message, ResponseMessage)
        pid = message.batch_items[0].result_message
        per_worker[pid] = per_worker.get(pid, 0) + 1
    print(f"\nconnections per worker: {sorted(per_worker.values())}")
    assert len(per_worker) == 2
    assert max(per_worker.values()) - min(per_worker.values()) <= 8, per_worker


# ----------------------------------------------------------------------------- the batch handler


def test_batch_handler_answers_messages_from_many_connections_in_one_call(pki: PkiFiles, tmp_path: Path) -> None:
    with running_server(pki, tmp_path, workers=1, factory="batch") as server:
        names = ["alice", "bob"] * 5
        socks = [connect(pki, server.port, name) for name in names]
        try:
            for sock, name in zip(socks, names, strict=True):
                assert _exchange(sock, b"size-warmup") == f"{name}/1"
            socks[0].sendall(request(b"slow"))  # holds the worker while the others arrive
            time.sleep(0.15)
            for index, sock in enumerate(socks[1:], start=1):
                sock.sendall(request(b"size-%d-a" % index) + request(b"size-%d-b" % index))
            assert read_response(socks[0]).batch_items[0].unique_batch_item_id == b"slow"
            sizes = []
            for index, (sock, name) in enumerate(zip(socks[1:], names[1:], strict=True), start=1):
                for suffix in (b"a", b"b"):
                    item = read_response(sock).batch_items[0]
                    assert item.unique_batch_item_id == b"size-%d-%s" % (index, suffix)  # in order
                    assert item.result_message is not None
                    owner, size = item.result_message.split("/")
                    assert owner == name  # each answer went back to the connection that asked
                    sizes.append(int(size))
            assert max(sizes) == 18  # everything that arrived during the slow call: one batch
            for sock, name in zip(socks, names, strict=True):
                assert _exchange(sock, b"size-after") == f"{name}/1"
        finally:
            for sock in socks:
                sock.close()
        assert server.stop() == 0


def test_writes_wait_for_company_under_concurrent_load_only(pki: PkiFiles, tmp_path: Path) -> None:
    # group_commit_wait is 0.5 ms by default; 0.3 s here makes the wait unmistakable.
    with running_server(pki, tmp_path, workers=1, factory="gather", group_commit_wait=0.3) as server:
        socks = [connect(pki, server.port, name) for name in ("alice", "bob", "alice", "bob", "alice")]
        try:
            # A lone client is not held back, even when others are connected.
            started = time.monotonic()
            assert _exchange(socks[1], b"size-write-alone") == "bob/1"
            assert time.monotonic() - started < 0.25
            # Concurrent load: batches from several connections at once (4 arrive during a slow call).
            socks[0].sendall(request(b"slow"))
            time.sleep(0.15)
            for sock in socks[1:]:
                sock.sendall(request(b"size-read"))
            read_response(socks[0])
            assert [_answer(sock) for sock in socks[1:]] == ["bob/4", "alice/4", "bob/4", "alice/4"]
            # Now a write waits for what comes within the window: one batch, one commit.
            socks[1].sendall(request(b"size-write-1"))
            time.sleep(0.1)
            socks[2].sendall(request(b"size-write-2"))
            assert [_answer(socks[1]), _answer(socks[2])] == ["bob/2", "alice/2"]
            # Every message commits (the engine records each one), so a lone message after a
            # batch of two waits for its company like any other, then runs alone.
            socks[3].sendall(request(b"size-read"))
            assert _answer(socks[3]) == "bob/1"
            # While fewer connections have sent than the last batch answered (3), a write waits
            # again, up to four waits in all: requests trailing in still share its commit.
            for sock in socks[1:4]:
                sock.sendall(request(b"size-write"))
            assert [_answer(sock) for sock in socks[1:4]] == ["bob/3", "alice/3", "bob/3"]
            socks[1].sendall(request(b"size-write-first"))
            time.sleep(0.4)  # past the first wait
            socks[2].sendall(request(b"size-write-second"))
            time.sleep(0.35)  # past the second
            socks[3].sendall(request(b"size-write-third"))
            assert [_answer(sock) for sock in socks[1:4]] == ["bob/3", "alice/3", "bob/3"]
            # Once as many connections have sent as the last batch answered, the batch runs
            # then, not when the current wait ends (0.3 s after the first write).
            started = time.monotonic()
            for sock in socks[1:4]:
                sock.sendall(request(b"size-write"))
                time.sleep(0.05)
            assert [_answer(sock) for sock in socks[1:4]] == ["bob/3", "alice/3", "bob/3"]
            assert time.monotonic() - started < 0.25
            # A connection that was not in the last batch joins the company waited for: the
            # batch waits for all four (not for any three), and runs when the fourth is in.
            started = time.monotonic()
            for sock in [socks[4], *socks[1:4]]:
                sock.sendall(request(b"size-write"))
                time.sleep(0.05)
            assert [_answer(sock) for sock in socks[1:5]] == ["bob/4", "alice/4", "bob/4", "alice/4"]
            assert time.monotonic() - started < 0.3
        finally:
            for sock in socks:
                sock.close()
        assert server.stop() == 0


def _answer(sock: ssl.SSLSocket) -> str:
    message = read_response(sock).batch_items[0].result_message
    assert message is not None
    return message


def test_batch_handler_failure_fails_its_batch_only(pki: PkiFiles, tmp_path: Path) -> None:
    with running_server(pki, tmp_path, workers=1, factory="batch") as server:
        with connect(pki, server.port) as victim, connect(pki, server.port, "bob") as culprit:
            assert _exchange(victim, b"size") == "alice/1"
            culprit.sendall(request(b"slow"))
            time.sleep(0.15)
            culprit.sendall(request(b"boom"))
            victim.sendall(request(b"size"))
            assert read_response(culprit).batch_items[0].unique_batch_item_id == b"slow"
            for sock in (culprit, victim):
                item = read_response(sock).batch_items[0]
                assert item.result_reason == ResultReason.GENERAL_FAILURE
                assert is_closed(sock)
        with connect(pki, server.port) as sock:
            assert _exchange(sock, b"size") == "alice/1"  # the worker is still serving
        assert server.stop() == 0
        assert "request handler failed on 2 messages; closing their connections" in server.log()


def test_batch_handler_answers_before_a_half_close(pki: PkiFiles, tmp_path: Path) -> None:
    with running_server(pki, tmp_path, workers=1, factory="batch") as server:
        with connect(pki, server.port) as sock:
            sock.sendall(request(b"size-1") + request(b"size-2"))
            # A TCP FIN right behind the requests (SSLSocket.shutdown would drop the TLS layer).
            socket.socket.shutdown(sock, socket.SHUT_WR)
            assert [read_response(sock).batch_items[0].unique_batch_item_id for _ in range(2)] == [b"size-1", b"size-2"]
            assert is_closed(sock)
        assert server.stop() == 0


# ----------------------------------------------------------------------------- worker supervision


def test_handler_exception_answers_general_failure_and_the_worker_survives(pki: PkiFiles, tmp_path: Path) -> None:
    with running_server(pki, tmp_path, workers=1) as server:
        with connect(pki, server.port) as sock:
            pid = int(_exchange(sock, b"pid"))
            sock.sendall(request(b"boom"))
            item = read_response(sock).batch_items[0]
            assert item.result_status == ResultStatus.OPERATION_FAILED
            assert item.result_reason == ResultReason.GENERAL_FAILURE
            assert is_closed(sock)
        with connect(pki, server.port) as sock:
            assert int(_exchange(sock, b"pid")) == pid  # the same worker process, still serving
        assert server.stop() == 0
        log = server.log()
    assert "ERROR request handler failed for 127.0.0.1:" in log and "deliberate failure" in log
    assert "restarting" not in log


def test_a_worker_that_dies_is_restarted(pki: PkiFiles, tmp_path: Path) -> None:
    with running_server(pki, tmp_path, workers=1) as server:
        with connect(pki, server.port) as sock:
            pid = int(_exchange(sock, b"pid"))
        os.kill(pid, signal.SIGKILL)
        _wait_for(lambda: "restarting" in server.log(), 5.0, "the parent to notice")
        with connect(pki, server.port) as sock:
            assert int(_exchange(sock, b"pid")) not in (pid, server.process.pid)
        assert server.stop() == 0
        assert f"worker 0 (pid {pid}) was killed by SIGKILL unexpectedly; restarting it" in server.log()


def test_sigterm_lets_an_in_flight_request_finish(pki: PkiFiles, tmp_path: Path) -> None:
    server = start_server(pki, tmp_path, workers=2, shutdown_grace=10.0)
    try:
        with connect(pki, server.port) as sock, connect(pki, server.port, "bob") as idle:
            assert _exchange(idle) == "bob"
            sock.sendall(request(b"slow"))
            time.sleep(0.15)  # the handler is now sleeping in a worker
            started = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            sock.settimeout(10)
            item = read_response(sock).batch_items[0]
            assert item.result_status == ResultStatus.SUCCESS and item.unique_batch_item_id == b"slow"
            assert is_closed(sock)
            idle.settimeout(10)
            assert is_closed(idle)  # idle connections are closed too, not left to the grace period
            assert server.process.wait(15) == 0
            assert time.monotonic() - started < 5.0  # not the 10 s grace: nothing was left in flight
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((LOOPBACK, server.port), timeout=2).close()


def test_sigterm_lets_a_half_received_request_complete_within_the_grace(pki: PkiFiles, tmp_path: Path) -> None:
    server = start_server(pki, tmp_path, workers=1, shutdown_grace=3.0)
    try:
        with connect(pki, server.port) as sock:
            data = request(b"late")
            sock.sendall(data[:10])
            time.sleep(0.1)
            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            sock.sendall(data[10:])
            sock.settimeout(10)
            assert read_response(sock).batch_items[0].unique_batch_item_id == b"late"
            assert is_closed(sock)
        assert server.process.wait(10) == 0
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


def test_sigterm_gives_up_on_a_stalled_request_after_the_grace(pki: PkiFiles, tmp_path: Path) -> None:
    server = start_server(pki, tmp_path, workers=1, shutdown_grace=0.5)
    try:
        with connect(pki, server.port) as sock:
            sock.sendall(request(b"never")[:10])
            time.sleep(0.1)
            started = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            assert server.process.wait(10) == 0
            assert time.monotonic() - started < 3.0
            sock.settimeout(5)
            assert is_closed(sock)
        assert "still open after 0.5 s; aborting them" in server.log()
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


def _wait_until_catching(pid: int, signum: int, timeout: float = 30.0) -> None:
    """Block until process ``pid`` has a handler for ``signum`` (Linux: SigCgt in /proc)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/status").read_text()
        caught = int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16)
        if caught & (1 << (signum - 1)):
            return
        time.sleep(0.02)
    raise TimeoutError(f"process {pid} installed no handler for signal {signum} within {timeout} s")


def test_sigterm_while_workers_are_starting(pki: PkiFiles, tmp_path: Path) -> None:
    server = start_server(pki, tmp_path, factory="slow", workers=2, wait=False)
    _wait_until_catching(server.process.pid, signal.SIGTERM)  # before that, SIGTERM just kills
    time.sleep(0.3)  # the workers are forking: their 8 s start-up has begun
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(10) == 0
    assert time.monotonic() - started < 4.0  # not waiting for the 8 s start-up to finish
    assert server.process.stdout is not None and b"READY" not in server.process.stdout.read()


def test_handler_factory_failure_stops_the_server_with_its_message(pki: PkiFiles, tmp_path: Path) -> None:
    server = start_server(pki, tmp_path, factory="fail", workers=2, wait=False)
    assert server.process.wait(20) == 1
    assert server.process.stdout is not None and b"READY" not in server.process.stdout.read()
    log = server.log()
    assert "could not start: cannot log in to token 'strongroom': CKR_PIN_INCORRECT" in log
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((LOOPBACK, server.port), timeout=2).close()


def test_address_in_use_is_reported_at_once(pki: PkiFiles, server: ServerProcess, tmp_path: Path) -> None:
    clash = start_server(pki, tmp_path, port=server.port, wait=False)
    assert clash.process.wait(20) == 1
    assert f"cannot listen on 127.0.0.1:{server.port}" in clash.log()


def test_run_server_prints_the_failure_when_logging_is_not_configured(pki: PkiFiles, tmp_path: Path) -> None:
    # The CLI's view: run_server in the main thread of a process with no logging set up.
    script = (
        "import sys\n"
        "from tests.integration.tls_fixtures import PkiFiles, server_config, _failing_factory\n"
        "from pathlib import Path\n"
        "from kmip_server.transport import run_server\n"
        f"pki = PkiFiles(Path({str(pki.directory)!r}), Path({str(pki.ca)!r}), Path({str(pki.server_cert)!r}),"
        f" Path({str(pki.server_key)!r}), {{}})\n"
        "sys.exit(run_server(server_config(pki, int(sys.argv[1]), workers=1), _failing_factory))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(free_port())], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 1
    assert done.stderr.count("CKR_PIN_INCORRECT") == 1, done.stderr


def test_concurrent_blocking_clients_get_their_own_answers(pki: PkiFiles, server: ServerProcess) -> None:
    # Several blocking clients at once, each on its own connection: answers never cross.
    errors: list[BaseException] = []

    def client(name: str) -> None:
        try:
            with connect(pki, server.port, name) as sock:
                for index in range(20):
                    assert _exchange(sock, b"%s-%d" % (name.encode(), index)) == name
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(name,)) for name in ("alice", "bob") * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
