"""Who gets a connection when others abuse theirs: the handshake budget and each source
address's share (kmip_server/transport/admission.py), against a real server process with the
transport tests' handler.

Everything is loopback, and Linux routes all of 127.0.0.0/8 to it: a socket bound to
127.0.0.2 before connecting is, to the server, another source address.
"""

from __future__ import annotations

import contextlib
import errno
import resource
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kmip_server.transport.admission import Admission, source_of

from .tls_fixtures import LOOPBACK, PkiFiles, make_pki, read_response, request, running_server


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _connect_from(pki: PkiFiles, port: int, source: str, timeout: float = 2.0) -> ssl.SSLSocket:
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        raw.settimeout(timeout)
        raw.bind((source, 0))
        raw.connect((LOOPBACK, port))
        return pki.client_context("alice").wrap_socket(raw)
    except BaseException:
        raw.close()
        raise


def _answered(sock: ssl.SSLSocket, tag: bytes = b"1") -> bool:
    try:
        sock.sendall(request(tag))
        return read_response(sock).batch_items[0].unique_batch_item_id == tag
    except (OSError, EOFError):
        return False


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed (or aborted) a connection that is waiting on it."""
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False  # open, nothing to read
    except ConnectionError:
        return True


def _refused(pki: PkiFiles, port: int, source: str) -> bool:
    """Whether a client from ``source`` is turned away: its handshake fails, or (TLS 1.3, where
    the client finishes first) its request goes unanswered."""
    try:
        sock = _connect_from(pki, port, source)
    except (ssl.SSLError, ConnectionError):
        return True
    with sock:
        return not _answered(sock)


class _SilentFlood:
    """``count`` TCP connections from ``source`` that never send a byte, each re-opened as
    soon as the server closes it, on a thread of its own until stopped."""

    def __init__(self, port: int, count: int, source: str = LOOPBACK) -> None:
        self.port = port
        self.count = count
        self.source = source
        self.opened = 0
        self.closed_by_server = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _SilentFlood:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        assert not self._thread.is_alive()
        if self.error is not None:
            raise self.error

    def _open(self, selector: selectors.BaseSelector) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.bind((self.source, 0))
        code = sock.connect_ex((LOOPBACK, self.port))
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            raise OSError(code, f"flood connect: {errno.errorcode.get(code, code)}")
        selector.register(sock, selectors.EVENT_READ)  # readable once the server closes it
        self.opened += 1

    def _run(self) -> None:
        try:
            with selectors.DefaultSelector() as selector:
                try:
                    while not self._stop.is_set():
                        while len(selector.get_map()) < self.count:
                            self._open(selector)
                        for key, _ in selector.select(0.05):
                            sock = key.fileobj
                            assert isinstance(sock, socket.socket)
                            try:
                                ended = sock.recv(1) == b""
                            except BlockingIOError:
                                ended = False
                            except OSError:  # reset: aborted by the server
                                ended = True
                            if ended:
                                selector.unregister(sock)
                                sock.close()
                                self.closed_by_server += 1
                finally:
                    for key in list(selector.get_map().values()):
                        key.fileobj.close()  # type: ignore[union-attr]
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread by __exit__
            self.error = exc


@contextlib.contextmanager
def _file_limit(wanted: int) -> Iterator[None]:
    """RLIMIT_NOFILE raised to ``wanted``: the hard limit too if it is lower (root may; a
    test that cannot open its sockets fails rather than skipping)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    raised_hard = hard if hard == resource.RLIM_INFINITY or hard >= wanted else wanted
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), raised_hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_clients_get_in_while_thousands_of_silent_sockets_flood_the_worker(pki: PkiFiles, tmp_path: Path) -> None:
    # 2,000 silent sockets against 500 connection places: once they held every place, and
    # clients were refused until the handshake time-out let a few go, to be retaken at once.
    options = {"workers": 1, "max_connections": 500, "max_handshakes": 64, "handshake_timeout": 5.0}
    with _file_limit(3000), running_server(pki, tmp_path, **options) as server:
        with _SilentFlood(server.port, 2000) as flood:
            deadline = time.monotonic() + 10
            while flood.opened < 2000 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)  # the worker is now taking the flood in
            held = []
            try:
                for index in range(8):
                    started = time.monotonic()
                    sock = _connect_from(pki, server.port, LOOPBACK)
                    held.append(sock)
                    assert _answered(sock, b"%d" % index)
                    elapsed = time.monotonic() - started
                    assert elapsed < 2.0, f"client {index} took {elapsed:.2f} s"
                # Clients past their handshake are never displaced, however long the flood.
                time.sleep(0.3)
                assert all(_answered(sock, b"again") for sock in held)
            finally:
                for sock in held:
                    sock.close()
            reopened = flood.closed_by_server
        assert reopened > 500, reopened  # the server really was closing the flood's sockets
        assert server.stop() == 0
        log = server.log()
    warning = "64 connections have sent nothing; closing the oldest for newer ones"
    assert 1 <= log.count(warning) <= 3, log[-4000:]  # per episode, not per socket
    assert "Traceback" not in log


def test_one_source_is_held_to_its_share_while_another_gets_in(pki: PkiFiles, tmp_path: Path) -> None:
    # 40 places, a quarter of them per source address: 10.
    options = {"workers": 1, "max_connections": 40, "max_source_share": 0.25}
    with running_server(pki, tmp_path, **options) as server:
        greedy = [_connect_from(pki, server.port, "127.0.0.2") for _ in range(10)]
        try:
            assert all(_answered(sock) for sock in greedy)
            for _ in range(3):  # beyond its share: closed at once
                assert _refused(pki, server.port, "127.0.0.2")
            with _connect_from(pki, server.port, "127.0.0.3") as other:
                assert _answered(other)
            # A place it gives up it may take again, and no more.
            greedy.pop().close()
            time.sleep(0.2)
            greedy.append(_connect_from(pki, server.port, "127.0.0.2"))
            assert _answered(greedy[-1])
            assert _refused(pki, server.port, "127.0.0.2")
            with _connect_from(pki, server.port, "127.0.0.3") as other:
                assert _answered(other)
            assert all(_answered(sock, b"still") for sock in greedy)
        finally:
            for sock in greedy:
                sock.close()
        time.sleep(0.3)
        with _connect_from(pki, server.port, "127.0.0.2") as again:
            assert _answered(again)  # down from its share: welcome again
        assert server.stop() == 0
        log = server.log()
    assert log.count("127.0.0.2 holds its share of 10 connections; closing its new ones") == 1, log
    assert "127.0.0.2 is down to 4 connections (4 closed over its share)" in log, log


def test_half_done_handshakes_make_way_for_another_source(pki: PkiFiles, tmp_path: Path) -> None:
    # Connections that began a handshake and stalled: when the budget is full, a newcomer
    # displaces one of the source holding the most, not the client of another address.
    options = {"workers": 1, "max_handshakes": 4, "max_source_share": 1.0}
    with running_server(pki, tmp_path, **options) as server:
        stalled = []
        try:
            for _ in range(4):
                sock = socket.create_connection((LOOPBACK, server.port), source_address=("127.0.0.2", 0))
                sock.sendall(b"\x16\x03\x01")  # the start of a TLS record header: a handshake begun
                stalled.append(sock)
            time.sleep(2.2)  # older than any real handshake: displaceable
            with _connect_from(pki, server.port, "127.0.0.3") as other:
                assert _answered(other)
            assert sum(_closed_by_server(sock) for sock in stalled) == 1
        finally:
            for sock in stalled:
                sock.close()
        assert server.stop() == 0


# ---- the books alone


def test_source_addresses() -> None:
    assert source_of(("192.0.2.7", 5696)) == "192.0.2.7"
    assert source_of(("2001:db8:1:2:3:4:5:6", 5696, 0, 0)) == "2001:db8:1:2::/64"
    assert source_of(("2001:db8:1:2:ffff::1", 1, 0, 0)) == source_of(("2001:db8:1:2::9", 2, 0, 0))
    assert source_of(("::ffff:192.0.2.7", 5696, 0, 0)) == "192.0.2.7"
    assert source_of(("fe80::1%eth0", 5696, 0, 2)) == "fe80::/64"
    assert source_of("/run/strongroom.sock") == "/run/strongroom.sock"


def test_the_victim_is_silent_first_then_from_the_busiest_source() -> None:
    books: Admission[str] = Admission(max_connections=100, max_handshakes=4, source_share=1.0)
    for name, source in (("a1", "A"), ("b1", "B"), ("a2", "A"), ("b2", "B")):
        books.add(name, source)
    assert books.full and books.handshakes == 4
    books.heard("a1")
    books.heard("b1")
    books.heard("a2")
    assert books.victim()[0] == "b2"  # the only one still silent
    books.heard("b2")
    books.add("a3", "A")
    books.heard("a3")
    assert books.victim()[0] == "a1"  # A holds the most handshakes: its oldest
    books.established("a1")
    books.established("a2")
    books.established("a3")
    assert books.victim()[0] == "b1" and books.handshakes == 2 and len(books) == 5
    books.established("b1")
    books.established("b2")
    assert books.victim() == (None, 0.0) and not books.full
    for name in ("a1", "a2", "a3", "b1", "b2", "b2"):  # removing twice is harmless
        books.remove(name)
    assert len(books) == 0 and books.handshakes == 0


def test_admit_displaces_when_full_and_refuses_only_when_all_are_established() -> None:
    books: Admission[str] = Admission(max_connections=2, max_handshakes=8, source_share=0.5)
    assert books.per_source == 1 and books.max_handshakes == 2
    assert books.admit("A") == (True, None)
    books.add("a", "A")
    assert books.admit("A") == (False, None)  # its share
    assert books.admit("B") == (True, None)
    books.add("b", "B")
    assert books.admit("C") == (False, None)  # both handshakes young (a burst), and no place beyond them
    time.sleep(2.1)  # older than any real handshake: now the oldest makes way
    assert books.admit("C") == (True, "a")
    books.add("c", "C")
    books.established("b")
    books.established("c")
    assert books.admit("D") == (False, None)  # every place holds an established client
    books.remove("b")
    assert books.admit("D") == (True, None)
