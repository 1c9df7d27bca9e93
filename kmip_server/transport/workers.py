"""The server process: a parent that binds, forks the worker processes and supervises them.

Workers are started with a plain ``os.fork()`` rather than multiprocessing's spawn or
forkserver: a forked child inherits the listening socket as an open file descriptor (all
workers then accept from the one kernel queue, with no socket passing), and the TLS context
built by the parent (so every worker shares its session-ticket key). What must *not* cross a
fork, the PKCS#11 session and the database connections, is opened by ``handler_factory`` in
each child after the fork. The parent stays single-threaded, which is what makes fork safe.

With ``listener.https_port`` set, the parent binds a second socket the same way and every
worker serves KMIP over HTTPS on it too (:class:`~.https_listener.HttpsListener`), in the same
event loop, with the same handler, TLS context and shutdown; so for the admin listener
(``admin.port``) and, with ``[xks] insecure_http``, the XKS API's plain HTTP port beside it
(plain_http.py, on 127.0.0.1 only).

The parent only supervises: it forwards SIGTERM/SIGINT and restarts a worker that dies. At
first start, a worker that cannot start (a wrong token PIN, say) stops the server with exit
status 1 and the reason: nothing has been served yet, and the operator is watching. Once the
server has been listening, a replacement that cannot start (the token or the database gone
for a while) must not take its healthy siblings down with it: the parent tries again after
0.5 s, then 1, 2, 4 ... up to 30 s between attempts, logging each failed attempt once, until
the replacement starts. Workers that keep dying right after starting are restarted on the
same back-off rather than given up on.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import gc
import logging
import os
import resource
import selectors
import signal
import socket
import ssl
import sys
import time
from collections.abc import Callable
from typing import Any

from ..config import ListenerSettings, ServerConfig
from .balance import AcceptBalancer, ConnectionTable
from .https_listener import KMIP_PATH, HttpsListener
from .listener import BatchHandler, Listener, MessageHandler
from .tls import server_ssl_context

__all__ = ["HandlerFactory", "run_server", "batch_handler_of", "bind_listening_socket", "raise_file_limit"]

log = logging.getLogger("strongroom.transport")

HandlerFactory = Callable[[], MessageHandler]

_BACKLOG = 4096
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# SIGHUP: the parent passes it on to the workers, whose engines reload the policy
# (engine/app.py); a worker ignores it until its handler is built.
_RELOAD_SIGNAL = signal.SIGHUP
_PARENT_SIGNALS = (*_STOP_SIGNALS, signal.SIGCHLD, _RELOAD_SIGNAL)
_READY = b"R"
_ERROR = b"E"
_MAX_ERROR_BYTES = 8000
# More unexpected worker deaths than this within the window means restarting at once is not
# helping: further restarts wait, on the back-off below.
_MAX_RESTARTS = 5
_RESTART_WINDOW = 60.0
# Seconds before the first retry of a worker that could not start, doubled per failed
# attempt up to the maximum: quick recovery from a blip, and a token or database that stays
# away costs one short start-up attempt (and one log line) every half minute.
_RETRY_FIRST = 0.5
_RETRY_MAX = 30.0
# Past the grace period a worker aborts its connections itself; this is for one that is stuck.
_KILL_MARGIN = 5.0


def raise_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (each connection is a descriptor, and the
    common soft default of 1024 is far below what a worker may hold). Returns the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        log.warning("cannot raise the open-file limit from %d to %d: %s", soft, target, exc)
        return soft
    return target


def bind_listening_socket(settings: ListenerSettings, port: int | None = None) -> socket.socket:
    """Bind and listen in the parent, so "address already in use" is reported at once.
    ``port`` replaces ``settings.port`` (the HTTPS listener's)."""
    port = settings.port if port is None else port
    infos = socket.getaddrinfo(settings.host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        # Lets a restarted server bind while connections of the previous one are in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(_BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


def retry_delay(attempts: int) -> float:
    """Seconds to wait before the next start of a worker that has failed ``attempts`` times."""
    return min(_RETRY_FIRST * 2.0 ** max(attempts - 1, 0), _RETRY_MAX)


def _format_address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _describe_status(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def _logging_reaches_stderr() -> bool:
    if not log.isEnabledFor(logging.ERROR):
        return False
    found = False
    logger: logging.Logger | None = log
    while logger is not None:
        for handler in logger.handlers:
            found = True
            stream = getattr(handler, "stream", None)
            if stream in (sys.stderr, sys.__stderr__) and handler.level <= logging.ERROR:
                return True
        logger = logger.parent if logger.propagate else None
    return not found and logging.lastResort is not None


def _report_fatal(message: str) -> None:
    log.error("%s", message)
    if not _logging_reaches_stderr():
        print(f"strongroom: {message}", file=sys.stderr, flush=True)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def batch_handler_of(handler: MessageHandler) -> BatchHandler | None:
    """The handler's ``handle_many`` (or that of the object it is a bound method of, such as
    the engine's Dispatcher), when it has one."""
    return _companion(handler, "handle_many")  # type: ignore[no-any-return]


def group_commits_of(handler: MessageHandler) -> bool:
    """Whether the handler commits every message (the engine's Dispatcher says so with
    ``commits_every_message``), so that the listener gathers messages into one batch: the
    engine, not the transport, knows what writes."""
    owner = getattr(handler, "__self__", handler)
    return bool(getattr(owner, "commits_every_message", False))


def _companion(handler: MessageHandler, name: str) -> Any:
    method = getattr(handler, name, None)
    if method is None:
        method = getattr(getattr(handler, "__self__", None), name, None)
    return method if callable(method) else None


def _freeze_startup_objects() -> None:
    """Exempt what the worker built at start-up from the garbage collector's full passes.

    The modules, spec tables, SQLAlchemy's statement cache and the token session are some
    70,000 objects that live as long as the process; a full collection walks them all, and
    took 40-75 ms here, during which every request the worker holds waits (it was most of
    the p99 latency under load). Frozen, they are never walked again; what requests
    allocate is collected as before.
    """
    gc.collect()
    gc.freeze()


def _close_handler(handler: MessageHandler) -> None:
    """Release what the handler holds (token session, database pool) if it says how: a
    ``close()`` on the handler, or on the object it is a bound method of."""
    owner = getattr(handler, "__self__", None)
    close = getattr(handler, "close", None) or getattr(owner, "close", None)
    if callable(close):
        try:
            close()
        except Exception:
            log.exception("closing the request handler failed")


async def _serve(listeners: list[Listener], grace: float, started: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in _STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    for listener in listeners:
        listener.start()
    started()
    await stop.wait()
    # A handler call in progress when the signal came has already returned and its response
    # is queued: signal callbacks run between callbacks, never inside one. The listeners
    # (TTLV, and HTTPS if configured) drain at the same time, within the one grace period.
    await asyncio.gather(*(listener.shutdown(grace) for listener in listeners))


@dataclasses.dataclass
class _Worker:
    index: int
    pid: int
    status_fd: int | None  # read end of the start-up status pipe, until its EOF
    status: bytearray = dataclasses.field(default_factory=bytearray)
    ready: bool = False
    error: str | None = None  # why it could not start, as it reported


class _Supervisor:
    def __init__(
        self,
        config: ServerConfig,
        context: ssl.SSLContext,
        sock: socket.socket,
        handler_factory: HandlerFactory,
        count: int,
        https_sock: socket.socket | None = None,
        admin_sock: socket.socket | None = None,
        plain_sock: socket.socket | None = None,  # [xks] insecure_http's
    ) -> None:
        self.config = config
        self.context = context
        self.sock = sock
        self.https_sock = https_sock
        self.admin_sock = admin_sock
        self.plain_sock = plain_sock
        self.handler_factory = handler_factory
        self.count = count
        self.workers: dict[int, _Worker] = {}
        self.selector = selectors.DefaultSelector()
        self.wakeup_r, self.wakeup_w = os.pipe()
        self.signals: list[int] = []
        self.stopping = False
        self.exit_status = 0
        self.kill_deadline: float | None = None
        self.restarts: collections.deque[float] = collections.deque()
        self.connection_table = ConnectionTable(count)
        self.started = time.time()  # what the admin listener's uptime counts from
        self.announced = False  # every worker has started once: the server is serving
        self.failed_starts: dict[int, int] = {}  # worker index -> failed attempts in a row
        self.due: dict[int, float] = {}  # worker index -> when to start it again
        self.on_stop: Callable[[], None] | None = None  # called once, when stopping begins

    # ---- the parent's loop

    def run(self, ready: Callable[[], None] | None, stopping: Callable[[], None] | None = None) -> int:
        self.on_stop = stopping
        for fd in (self.wakeup_r, self.wakeup_w):
            os.set_blocking(fd, False)
        self.selector.register(self.wakeup_r, selectors.EVENT_READ)
        previous = {signum: signal.signal(signum, self._on_signal) for signum in _PARENT_SIGNALS}
        previous_wakeup = signal.set_wakeup_fd(self.wakeup_w, warn_on_full_buffer=False)
        try:
            for index in range(self.count):
                self._spawn(index)
            self._supervise(ready)
            return self.exit_status
        finally:
            self._kill_remaining()
            signal.set_wakeup_fd(previous_wakeup)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self.selector.close()
            self.connection_table.close()
            for worker in self.workers.values():
                self._close_status(worker)
            os.close(self.wakeup_r)
            os.close(self.wakeup_w)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.signals.append(signum)

    def _supervise(self, ready: Callable[[], None] | None) -> None:
        while True:
            timeout = 1.0  # SIGCHLD wakes us; the timeout is only a safety net
            if self.kill_deadline is not None:
                timeout = min(timeout, max(self.kill_deadline - time.monotonic(), 0.0))
            if self.due and not self.stopping:
                timeout = min(timeout, max(min(self.due.values()) - time.monotonic(), 0.0))
            for key, _ in self.selector.select(timeout):
                if key.fd == self.wakeup_r:
                    self._drain_wakeup()
                else:
                    self._read_status(key.data)
            self._handle_signals()
            self._reap()
            self._start_due()
            if not self.announced and not self.stopping and all(w.ready for w in self.workers.values()):
                self.announced = True
                noun = "worker" if self.count == 1 else "workers"
                https = ""
                if self.https_sock is not None:
                    https = f", KMIP over HTTPS on https://{_format_address(self.https_sock)}{KMIP_PATH}"
                log.info("listening on %s%s (%d %s)", _format_address(self.sock), https, self.count, noun)
                if ready is not None:
                    ready()
            if self.stopping:
                if not self.workers:
                    return
                if self.kill_deadline is not None and time.monotonic() >= self.kill_deadline:
                    self._kill_remaining()

    def _drain_wakeup(self) -> None:
        try:
            while os.read(self.wakeup_r, 512):
                pass
        except BlockingIOError:
            pass

    def _handle_signals(self) -> None:
        signals, self.signals = self.signals, []
        for signum in signals:
            if signum in _STOP_SIGNALS:
                if not self.stopping:
                    log.info("received %s; stopping", signal.Signals(signum).name)
                self._begin_stop(0)
            elif signum == _RELOAD_SIGNAL and not self.stopping:
                log.info("received SIGHUP; the workers reload the access policy")
                for worker in self.workers.values():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(worker.pid, _RELOAD_SIGNAL)

    def _begin_stop(self, status: int) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.exit_status = status
        if self.on_stop is not None:
            self.on_stop()
        self.kill_deadline = time.monotonic() + self.config.listener.shutdown_grace + _KILL_MARGIN
        for worker in self.workers.values():
            try:
                os.kill(worker.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def _fail(self, message: str) -> None:
        if not self.stopping:
            _report_fatal(message)
        self._begin_stop(1)
        self.exit_status = 1

    # ---- worker start-up status

    def _read_status(self, worker: _Worker) -> None:
        if worker.status_fd is None:
            return
        try:
            data = os.read(worker.status_fd, 65536)
        except BlockingIOError:
            return
        if data:
            worker.status += data
            return
        self._close_status(worker)
        if worker.status.startswith(_READY):
            worker.ready = True
            failed = self.failed_starts.pop(worker.index, 0)
            if failed:
                attempts = "attempt" if failed == 1 else "attempts"
                log.info("worker %d (pid %d) started after %d failed %s", worker.index, worker.pid, failed, attempts)
        elif worker.status.startswith(_ERROR):
            worker.error = worker.status[1:].decode("utf-8", "replace").strip() or "unknown error"
            if not self.announced:
                self._fail(f"worker {worker.index} could not start: {worker.error}")
            # Otherwise reported, once, when the worker has exited (see _worker_ended).

    def _close_status(self, worker: _Worker) -> None:
        if worker.status_fd is not None:
            try:
                self.selector.unregister(worker.status_fd)
            except (KeyError, ValueError):
                pass  # the selector is already closed
            os.close(worker.status_fd)
            worker.status_fd = None

    # ---- children ending

    def _reap(self) -> None:
        # Each worker by pid rather than waitpid(-1): other children of this process (the
        # caller's) are not ours to reap.
        for pid in list(self.workers):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 0  # reaped elsewhere; its status is lost
            if done == 0:
                continue
            worker = self.workers.pop(pid)
            if worker.status_fd is not None:
                # The child is gone, so its status pipe holds everything it wrote before EOF.
                os.set_blocking(worker.status_fd, True)
                while worker.status_fd is not None:
                    self._read_status(worker)
            self._worker_ended(worker, status)

    def _worker_ended(self, worker: _Worker, status: int) -> None:
        self.connection_table.withdraw(worker.index)  # its last count would hold siblings back
        description = _describe_status(status)
        code = os.waitstatus_to_exitcode(status)
        if self.stopping:
            if code not in (0, -signal.SIGTERM, -signal.SIGINT, -signal.SIGKILL):
                log.warning("worker %d (pid %d) %s while stopping", worker.index, worker.pid, description)
            return
        if not worker.ready:
            if not self.announced:
                self._fail(f"worker {worker.index} {description} while starting")
            else:
                self._start_failed(worker.index, f"could not start: {worker.error or description}")
            return
        log.error("worker %d (pid %d) %s unexpectedly; restarting it", worker.index, worker.pid, description)
        now = time.monotonic()
        self.restarts.append(now)
        while self.restarts and now - self.restarts[0] > _RESTART_WINDOW:
            self.restarts.popleft()
        excess = len(self.restarts) - _MAX_RESTARTS
        if excess > 0:
            delay = retry_delay(excess)
            log.warning(
                "workers died %d times in %.0f s; starting worker %d again in %.1f s",
                len(self.restarts),
                _RESTART_WINDOW,
                worker.index,
                delay,
            )
            self.due[worker.index] = now + delay
            return
        self._restart(worker.index)

    # ---- starting again

    def _start_failed(self, index: int, reason: str) -> None:
        """A replacement worker did not start: its siblings keep serving; try again later."""
        attempts = self.failed_starts.get(index, 0) + 1
        self.failed_starts[index] = attempts
        delay = retry_delay(attempts)
        log.error("worker %d %s; trying again in %.1f s (attempt %d failed)", index, reason, delay, attempts)
        self.due[index] = time.monotonic() + delay

    def _start_due(self) -> None:
        if self.stopping or not self.due:
            return
        now = time.monotonic()
        for index, when in list(self.due.items()):
            if when <= now:
                del self.due[index]
                self._restart(index)

    def _restart(self, index: int) -> None:
        try:
            self._spawn(index)
        except OSError as exc:  # fork() itself: out of memory or processes, for now
            self._start_failed(index, f"could not be forked: {exc.strerror or exc}")

    def _kill_remaining(self) -> None:
        """SIGKILL workers that outlived the grace period (or survive an unexpected exit from
        the supervisor), and reap them: no child may outlive run_server()."""
        if not self.workers:
            return
        if self.kill_deadline is not None:
            log.warning("%d workers did not stop in time; killing them", len(self.workers))
        for worker in self.workers.values():
            try:
                os.kill(worker.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for worker in list(self.workers.values()):
            try:
                os.waitpid(worker.pid, 0)
            except ChildProcessError:
                pass
            self._close_status(worker)
        self.workers.clear()
        self.kill_deadline = None
        self.exit_status = 1

    # ---- forking

    def _spawn(self, index: int) -> None:
        status_r, status_w = os.pipe()
        # Blocked across fork so a signal cannot reach the child while it still runs the
        # parent's handlers; the child unblocks them once its own dispositions are in place.
        signal.pthread_sigmask(signal.SIG_BLOCK, _PARENT_SIGNALS)
        pid = -1
        try:
            pid = os.fork()
            if pid == 0:  # the worker: never returns
                code = 1
                try:
                    os.close(status_r)
                    code = self._worker_main(index, status_w)
                except BaseException:  # noqa: BLE001 - a child must reach os._exit whatever happens
                    try:
                        log.exception("worker %d failed", index)
                    except BaseException:  # noqa: BLE001, S110 - nothing left to report it with
                        pass
                finally:
                    for stream in (sys.stdout, sys.stderr):
                        try:
                            stream.flush()
                        except (OSError, ValueError):
                            pass
                    # Never unwind into the caller's stack (a test runner, the CLI) in a child.
                    os._exit(code)
        finally:
            if pid != 0:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, _PARENT_SIGNALS)
        os.close(status_w)
        os.set_blocking(status_r, False)
        worker = _Worker(index=index, pid=pid, status_fd=status_r)
        self.workers[pid] = worker
        self.selector.register(status_r, selectors.EVENT_READ, worker)

    def _worker_main(self, index: int, status_w: int) -> int:
        signal.set_wakeup_fd(-1)
        for signum in _PARENT_SIGNALS:
            signal.signal(signum, signal.SIG_IGN if signum == _RELOAD_SIGNAL else signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _PARENT_SIGNALS)
        # The parent's bookkeeping descriptors: the wake-up pipe and the other workers' pipes.
        self.selector.close()
        for fd in (self.wakeup_r, self.wakeup_w):
            os.close(fd)
        for worker in self.workers.values():
            if worker.status_fd is not None:
                os.close(worker.status_fd)
        try:
            handler = self.handler_factory()
        except BaseException as exc:  # noqa: BLE001 - any failure to start is reported, then exit
            text = str(exc) or type(exc).__name__
            log.debug("worker %d: the request handler could not be created", index, exc_info=True)
            _write_all(status_w, _ERROR + text.encode("utf-8", "replace")[:_MAX_ERROR_BYTES])
            os.close(status_w)
            return 1
        settings = self.config.listener
        listener = Listener(
            self.sock,
            self.context,
            settings,
            handler,
            identity_mode=self.config.tls.identity_from,
            batch_handler=batch_handler_of(handler),
            group_commits=group_commits_of(handler),
            balancer=AcceptBalancer(self.connection_table, index) if self.count > 1 else None,
        )
        listeners = [listener]
        if self.https_sock is not None:
            identity_mode = self.config.tls.identity_from
            listeners.append(
                HttpsListener(self.https_sock, self.context, settings, handler, identity_mode=identity_mode)
            )
        if self.admin_sock is not None:
            listeners.extend(self._admin_listeners(handler, listener))
            from ..admin.metrics import TransportMetrics

            events = TransportMetrics()
            for each in listeners:
                each.events = events
        _freeze_startup_objects()

        def started() -> None:
            # Only now: "listening" means every worker accepts (and publishes its count), so
            # the first clients after start-up are spread over all of them.
            _write_all(status_w, _READY)
            os.close(status_w)

        try:
            asyncio.run(_serve(listeners, settings.shutdown_grace, started))
        finally:
            _close_handler(handler)
        return 0

    def _admin_listeners(self, handler: MessageHandler, kmip: Listener) -> list[Listener]:
        # Imported here: the admin package reads the engine, which plain transports lack.
        from ..admin.health import ServerView
        from ..admin.listener import admin_listeners

        dispatcher = getattr(handler, "__self__", None)
        if dispatcher is None or not hasattr(dispatcher, "repository"):
            raise RuntimeError("the admin listener needs the engine's dispatcher as the request handler")
        table = self.connection_table if self.count > 1 else None
        view = ServerView(dispatcher, table, self.count, self.started, lambda: len(kmip.connections))
        assert self.admin_sock is not None
        return list(admin_listeners(self.config, handler, view, self.admin_sock, self.plain_sock))


def run_server(
    config: ServerConfig,
    handler_factory: HandlerFactory,
    *,
    ready: Callable[[], None] | None = None,
    stopping: Callable[[], None] | None = None,
) -> int:
    """Serve KMIP over mutual TLS until SIGTERM or SIGINT; return the process exit status.

    Must be called from the main thread (it installs signal handlers). ``handler_factory`` is
    called once in each worker process after the fork; if it raises at first start, the
    server stops and returns 1 with the exception's message on stderr (later, in a worker
    replacing one that died, it is retried with back-off while the others serve). ``ready``
    is called in this process once every worker has started, ``stopping`` once when it begins
    to stop (a stop signal, or a worker that could not start at first start).

    When the handler has a ``handle_many(requests) -> responses`` method (or is a bound method
    of an object that has one, as ``Dispatcher.handle`` is), the messages each worker receives
    in one turn of its event loop, from all connections, are answered by one call to it, so
    the engine can commit their writes together.

    With ``listener.https_port`` set, every worker also serves KMIP over HTTPS on that port
    (see :mod:`.https_listener`), answering with the plain handler.
    """
    settings = config.listener
    count = settings.workers or os.cpu_count() or 1
    if count < 0:
        _report_fatal(f"listener.workers must be 0 (one per CPU) or more, not {settings.workers}")
        return 1
    limit = raise_file_limit()
    wanted = count * settings.max_connections + 64
    if limit != resource.RLIM_INFINITY and limit < settings.max_connections + 64:
        log.warning("the open-file limit (%d) is below max_connections (%d)", limit, settings.max_connections)
    elif limit != resource.RLIM_INFINITY and limit < wanted:
        log.debug("the open-file limit (%d) is below workers x max_connections (%d)", limit, wanted)
    try:
        context = server_ssl_context(config.tls)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        _report_fatal(f"cannot set up TLS: {exc}")
        return 1
    if settings.https_port == settings.port:
        _report_fatal(f"listener.https_port must differ from listener.port ({settings.port})")
        return 1
    admin = config.admin
    if admin.port and admin.port in (settings.port, settings.https_port):
        _report_fatal(f"admin.port ({admin.port}) must differ from the KMIP ports")
        return 1
    plain_port = config.xks.insecure_http_port if config.xks is not None else None
    if plain_port and not admin.port:
        _report_fatal("xks.insecure_http needs the admin listener, which serves the XKS API: set admin.port")
        return 1
    if plain_port and plain_port in (settings.port, settings.https_port, admin.port):
        _report_fatal(f"xks.insecure_http_port ({plain_port}) must differ from the KMIP ports and admin.port")
        return 1
    try:
        sock = bind_listening_socket(settings)
    except OSError as exc:
        _report_fatal(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}")
        return 1
    https_sock = admin_sock = plain_sock = None
    try:
        try:
            if settings.https_port:
                https_sock = _bind(settings, settings.host, settings.https_port, "KMIP over HTTPS")
            if admin.port:
                admin_sock = _bind(settings, admin.host, admin.port, "the admin listener")
            if plain_port:
                # Loopback, always: plain HTTP is for trying the XKS API on this machine.
                plain_sock = _bind(settings, "127.0.0.1", plain_port, "the XKS API over plain HTTP")
        except _CannotListen as exc:
            _report_fatal(str(exc))
            return 1
        if admin.port:
            # Before the workers fork: prometheus_client chooses its multiprocess files on import.
            from ..admin.metrics import use_metrics_directory

            use_metrics_directory(config.data_dir)
        if plain_sock is not None and config.xks is not None:
            where = f"http://127.0.0.1:{plain_port}{config.xks.api_path}"
            log.warning("the XKS API is also served WITHOUT TLS on %s (xks.insecure_http: local testing only)", where)
        supervisor = _Supervisor(config, context, sock, handler_factory, count, https_sock, admin_sock, plain_sock)
        return supervisor.run(ready, stopping)
    finally:
        sock.close()
        for extra in (https_sock, admin_sock, plain_sock):
            if extra is not None:
                extra.close()


class _CannotListen(Exception):
    """A socket beside the KMIP port could not be bound (the message says which and why)."""


def _bind(settings: ListenerSettings, host: str, port: int, what: str) -> socket.socket:
    try:
        return bind_listening_socket(dataclasses.replace(settings, host=host), port)
    except OSError as exc:
        raise _CannotListen(f"cannot listen for {what} on {host}:{port}: {exc.strerror or exc}") from None
