"""Readiness notifications for systemd (``Type=notify``), without libsystemd.

The protocol is one datagram of newline-separated ``KEY=VALUE`` lines sent to the AF_UNIX
socket named by the ``NOTIFY_SOCKET`` environment variable (sd_notify(3)): a path, or, when
the name starts with ``@``, an abstract socket (the ``@`` stands for the leading NUL byte).
systemd takes the service as started on ``READY=1``, shows the last ``STATUS=`` line in
``systemctl status``, and on ``STOPPING=1`` knows the stop was the service's own idea.

A notification is a courtesy to the service manager, never a reason to fail: outside systemd
(no ``NOTIFY_SOCKET``) :func:`notify` does nothing and returns False, and a socket that cannot
be reached (systemd restarted, a stale variable inherited by a shell) is logged at DEBUG and
reported as False too. The server sends from its supervisor, the service's main process, so
the unit's ``NotifyAccess=main`` accepts it (deploy/strongroom.service).
"""

from __future__ import annotations

import logging
import os
import socket

__all__ = ["NOTIFY_SOCKET", "READY", "STOPPING", "notify", "ready", "status", "stopping"]

log = logging.getLogger("strongroom.transport")

NOTIFY_SOCKET = "NOTIFY_SOCKET"
READY = "READY=1"
STOPPING = "STOPPING=1"
_SEND_TIMEOUT = 2.0  # seconds


def status(text: str) -> str:
    """A ``STATUS=`` line. One line only: a newline would start another assignment, which
    systemd would read as a state of its own."""
    return "STATUS=" + " ".join(text.splitlines())


def _address(name: str) -> str | None:
    """The socket address ``NOTIFY_SOCKET`` names, or None if it names none we can reach.

    Only absolute paths and abstract names are sd_notify's; anything else (a relative path,
    systemd 254's ``vsock:`` addresses) is not sent to, rather than resolved against our
    working directory by accident."""
    if name.startswith("@") and len(name) > 1:
        return "\0" + name[1:]
    if name.startswith("/"):
        return name
    return None


def notify(state: str) -> bool:
    """Send ``state`` (lines such as :data:`READY`, :data:`STOPPING`, :func:`status`) to the
    service manager. Returns True once the datagram is sent, False when there is no
    ``NOTIFY_SOCKET`` or it cannot be sent to. Never raises for either."""
    name = os.environ.get(NOTIFY_SOCKET)
    if not name:
        return False
    address = _address(name)
    if address is None:
        log.debug("NOTIFY_SOCKET=%r is neither an absolute path nor an abstract name; not notified", name)
        return False
    data = state.encode("utf-8", "replace")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            # A receiver whose queue is full would block a blocking send, and the supervisor
            # with it; past the time-out this is one more failure to log.
            sock.settimeout(_SEND_TIMEOUT)
            sock.sendto(data, address)
    except OSError as exc:
        log.debug("cannot notify the service manager at %r: %s", name, exc)
        return False
    return True


def ready(text: str | None = None) -> bool:
    """Every worker accepts connections: ``READY=1``, with a ``STATUS=`` line if given."""
    return notify(READY if text is None else f"{READY}\n{status(text)}")


def stopping(text: str | None = None) -> bool:
    """The server has begun to stop: ``STOPPING=1``, with a ``STATUS=`` line if given."""
    return notify(STOPPING if text is None else f"{STOPPING}\n{status(text)}")
