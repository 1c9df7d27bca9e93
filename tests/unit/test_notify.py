"""The systemd readiness notifier (kmip_server/transport/notify.py) against real AF_UNIX
datagram sockets: one bound to a path in a temporary directory, and an abstract one, as
systemd binds its notification socket."""

from __future__ import annotations

import logging
import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from kmip_server.transport import notify

_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid


def _receiver(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    # What systemd does on its notification socket: the kernel then attaches the sender's
    # credentials to every datagram, and NotifyAccess=main compares their pid.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    sock.settimeout(5.0)
    return sock


def _receive(sock: socket.socket) -> tuple[str, int]:
    """The datagram's text and the pid of the process that sent it."""
    data, ancillary, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(_CREDENTIALS.size))
    pids = [
        _CREDENTIALS.unpack(payload[: _CREDENTIALS.size])[0]
        for level, kind, payload in ancillary
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS
    ]
    assert len(pids) == 1, ancillary
    return data.decode(), pids[0]


@pytest.fixture
def path_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    address = str(tmp_path / "notify")
    with _receiver(address) as sock:
        monkeypatch.setenv("NOTIFY_SOCKET", address)
        yield sock


@pytest.fixture
def abstract_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    name = f"strongroom-test-notify-{os.getpid()}-{os.urandom(4).hex()}"
    with _receiver("\0" + name) as sock:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        yield sock


def test_ready_reaches_a_socket_bound_to_a_path(path_socket: socket.socket) -> None:
    assert notify.notify(notify.READY) is True
    assert _receive(path_socket) == ("READY=1", os.getpid())


def test_ready_reaches_an_abstract_socket(abstract_socket: socket.socket) -> None:
    assert notify.notify(notify.READY) is True
    assert _receive(abstract_socket) == ("READY=1", os.getpid())


def test_ready_and_stopping_carry_one_status_line(path_socket: socket.socket) -> None:
    assert notify.ready("listening on 127.0.0.1:5696") is True
    assert _receive(path_socket)[0] == "READY=1\nSTATUS=listening on 127.0.0.1:5696"
    # A newline in the text must not become an assignment of its own.
    assert notify.stopping("stopping\nREADY=1") is True
    assert _receive(path_socket)[0] == "STOPPING=1\nSTATUS=stopping READY=1"
    assert notify.stopping() is True
    assert _receive(path_socket)[0] == "STOPPING=1"


def test_status_is_one_line() -> None:
    assert notify.status("a\nb\r\nc") == "STATUS=a b c"
    assert notify.READY == "READY=1" and notify.STOPPING == "STOPPING=1"


def test_no_notify_socket_means_nothing_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify.notify(notify.READY) is False
    assert notify.ready("listening") is False
    monkeypatch.setenv("NOTIFY_SOCKET", "")
    assert notify.stopping() is False


def test_a_vanished_socket_is_logged_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    address = tmp_path / "gone"
    with _receiver(str(address)):
        pass
    address.unlink()  # what a restarted or stopped service manager leaves behind
    monkeypatch.setenv("NOTIFY_SOCKET", str(address))
    with caplog.at_level(logging.DEBUG, logger="strongroom.transport"):
        assert notify.notify(notify.READY) is False
    assert [record.levelno for record in caplog.records] == [logging.DEBUG]
    assert str(address) in caplog.text


def test_a_socket_nobody_reads_from_any_more_is_logged_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The path still exists but nothing is bound to it: connection refused, not a missing file.
    address = tmp_path / "closed"
    _receiver(str(address)).close()
    assert address.exists()
    monkeypatch.setenv("NOTIFY_SOCKET", str(address))
    with caplog.at_level(logging.DEBUG, logger="strongroom.transport"):
        assert notify.notify(notify.READY) is False
    assert [record.levelno for record in caplog.records] == [logging.DEBUG]


@pytest.mark.parametrize("name", ["relative/notify", "vsock:2:1234", "@"])
def test_addresses_that_are_not_sd_notify_ones_are_not_sent_to(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A relative path would be resolved against the working directory: never guess.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "relative").mkdir()
    with _receiver(str(tmp_path / "relative" / "notify")) as sock:
        monkeypatch.setenv("NOTIFY_SOCKET", name)
        assert notify.notify(notify.READY) is False
        sock.settimeout(0.1)
        with pytest.raises(TimeoutError):
            sock.recv(4096)
