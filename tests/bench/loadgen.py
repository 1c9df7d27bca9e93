"""The load generator behind bench_server.py: pre-encoded KMIP requests replayed over persistent
mutual-TLS connections, one request in flight per connection.

Each client process drives its connections from one thread with an epoll selector over
non-blocking ``ssl`` sockets: the cheapest client per request we measured (a thread per
blocking socket cost about twice as much; asyncio's pure-Python TLS transport more). Several
processes share the connections so the client is not held to one core by the GIL. All processes start and stop on the same CLOCK_MONOTONIC
instants (system-wide on Linux), so their counts add up to one measurement window.
"""

from __future__ import annotations

import array
import dataclasses
import multiprocessing
import multiprocessing.connection
import os
import resource
import selectors
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

from kmip_client.protocol.model import (
    Attribute,
    ProtocolVersion,
    RequestBatchItem,
    RequestHeader,
    RequestMessage,
    ResponseMessage,
    TemplateAttribute,
    encode_message,
)
from kmip_client.protocol.model.messages import decode_message
from kmip_client.protocol.model.payloads.lifecycle import CreateRequest, GetRequest
from kmip_client.protocol.model.payloads.server_info import DiscoverVersionsRequest
from kmip_client.protocol.spec.enums import (
    CryptographicAlgorithm,
    CryptographicUsageMask,
    ObjectType,
    Operation,
    ResultStatus,
)

#: Both servers accept 1.4 with the 1.x Template-Attribute form of Create.
PROTOCOL = ProtocolVersion(major=1, minor=4)
HEADER = struct.Struct(">II")
# Result Status: tag 42007F, type Enumeration (05), length 4. The first one in a response is the
# first batch item's (it precedes the payload), so finding it costs one memchr-like scan.
RESULT_STATUS_TTLV = bytes.fromhex("42007F0500000004")
SUCCESS_VALUE = b"\x00\x00\x00\x00"
# Unique Identifier: tag 420094, type Text String (07). In a Create response the first one is the
# new object's (the header has none; Object Type precedes it in the payload).
UID_TTLV = bytes.fromhex("42009407")
#: The Unique Identifier a Chain's later requests are encoded with, to be spliced over per object.
UID_MARK = "strongroom-bench-unique-identifier-mark"
#: Every Nth response per connection (and the first) is decoded in full, not just byte-checked.
FULL_DECODE_EVERY = 500
IO_TIMEOUT = 30.0


@dataclasses.dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    ca: Path
    cert: Path
    key: Path

    def context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False  # addressed by IP on loopback; the chain is still verified
        context.load_verify_locations(cafile=str(self.ca))
        context.load_cert_chain(certfile=str(self.cert), keyfile=str(self.key))
        return context


def _request(operation: Operation, payload: object) -> bytes:
    message = RequestMessage(
        header=RequestHeader(protocol_version=PROTOCOL, batch_count=1),
        batch_items=(RequestBatchItem(operation=operation, payload=payload),),
    )
    return encode_message(message)


def discover_request() -> bytes:
    return _request(Operation.DISCOVER_VERSIONS, DiscoverVersionsRequest())


def aes_create_payload(*extra: Attribute) -> CreateRequest:
    """The Create payload of an AES-256 encrypt/decrypt key, with ``extra`` attributes."""
    attributes = (
        Attribute(name="Cryptographic Algorithm", value=CryptographicAlgorithm.AES),
        Attribute(name="Cryptographic Length", value=256),
        Attribute(
            name="Cryptographic Usage Mask", value=CryptographicUsageMask.ENCRYPT | CryptographicUsageMask.DECRYPT
        ),
        *extra,
    )
    return CreateRequest(object_type=ObjectType.SYMMETRIC_KEY, template_attribute=TemplateAttribute(attributes=attributes))


def create_request() -> bytes:
    return _request(Operation.CREATE, aes_create_payload())


def get_request(uid: str) -> bytes:
    return _request(Operation.GET, GetRequest(unique_identifier=uid))


def uid_item(response: bytes) -> bytes | None:
    """The first Unique Identifier TTLV item of a response, whole (header, value, padding)."""
    at = response.find(UID_TTLV)
    if at < 0:
        return None
    length = int.from_bytes(response[at + 4 : at + 8], "big")
    return response[at : at + 8 + (length + 7) // 8 * 8]


class _Template:
    """A request encoded with UID_MARK as its Unique Identifier, ready to take another one: the
    item is cut out and the lengths of the structures enclosing it recorded, to be patched."""

    __slots__ = ("prefix", "suffix", "size", "length_at")

    def __init__(self, request: bytes) -> None:
        mark = _request(Operation.GET, GetRequest(unique_identifier=UID_MARK))
        item = uid_item(mark)
        assert item is not None and request.count(item) == 1, "the template must name UID_MARK once"
        at = request.index(item)
        self.prefix, self.suffix, self.size = request[:at], request[at + len(item) :], len(item)
        self.length_at: list[int] = []  # the length fields of the structures holding the item
        pos, end = 0, len(request)
        while pos < at < end:
            length = int.from_bytes(request[pos + 4 : pos + 8], "big")
            if pos < at < pos + 8 + length:  # inside: a structure (only structures hold items)
                self.length_at.append(pos + 4)
                pos, end = pos + 8, pos + 8 + length
            else:
                pos += 8 + (length + 7) // 8 * 8

    def splice(self, item: bytes) -> bytes:
        if len(item) == self.size:
            return self.prefix + item + self.suffix
        out = bytearray(self.prefix + item + self.suffix)
        delta = len(item) - self.size
        for at in self.length_at:
            out[at : at + 4] = (int.from_bytes(out[at : at + 4], "big") + delta).to_bytes(4, "big")
        return bytes(out)


class Chain:
    """Requests sent one after another on a connection, each after the previous one's Success:
    ``first`` as it is, then each of ``then`` (encoded with UID_MARK as its Unique Identifier)
    naming the Unique Identifier that ``first``'s response returned. One whole pass counts as
    one op, its latency from sending ``first`` to the last response; a failed step counts a
    failure and the connection starts over with ``first``."""

    def __init__(self, first: bytes, then: list[bytes]) -> None:
        self.first = first
        self.then = [_Template(request) for request in then]


def connect(endpoint: Endpoint, context: ssl.SSLContext, timeout: float) -> ssl.SSLSocket:
    raw = socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
    try:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tls = context.wrap_socket(raw, do_handshake_on_connect=False)
        tls.do_handshake()
    except BaseException:
        raw.close()
        raise
    tls.settimeout(IO_TIMEOUT)
    return tls


def exchange(sock: ssl.SSLSocket, request: bytes) -> bytes:
    """Send one request, return the one whole response message (8-byte header + declared length)."""
    sock.sendall(request)
    data = sock.recv(65536)
    if len(data) < 8:
        data = _fill(sock, data, 8)
    total = 8 + HEADER.unpack_from(data, 0)[1]
    if len(data) < total:
        data = _fill(sock, data, total)
    return data


def _fill(sock: ssl.SSLSocket, data: bytes, size: int) -> bytes:
    parts = [data]
    have = len(data)
    while have < size:
        chunk = sock.recv(max(size - have, 4096))
        if not chunk:
            raise ConnectionError("server closed the connection mid-response")
        parts.append(chunk)
        have += len(chunk)
    return b"".join(parts)


def quick_success(response: bytes) -> bool:
    """Whether every batch item's Result Status is Success (a batch has one per item)."""
    at = response.find(RESULT_STATUS_TTLV)
    if at < 0:
        return False
    while at >= 0:
        if response[at + 8 : at + 12] != SUCCESS_VALUE:
            return False
        at = response.find(RESULT_STATUS_TTLV, at + 12)
    return True


def full_check(response: bytes) -> str | None:
    """Decode the whole response with our typed model; None if it is a Success, else why not."""
    try:
        message = decode_message(response)
    except Exception as error:  # noqa: BLE001 - any decoder failure is a reportable result here
        return f"undecodable response: {error}"
    if not isinstance(message, ResponseMessage) or not message.batch_items:
        return "not a Response Message with batch items"
    for item in message.batch_items:
        if item.result_status != ResultStatus.SUCCESS:
            return f"{item.operation!r} {item.result_status!r} {item.result_reason!r}: {item.result_message}"
    return None


def setup_keys(endpoint: Endpoint, count: int) -> list[str]:
    """Create ``count`` AES keys (for the Get runs) over one connection; return their UIDs."""
    sock = connect(endpoint, endpoint.context(), timeout=60.0)
    uids = []
    try:
        for _ in range(count):
            message = decode_message(exchange(sock, create_request()))
            assert isinstance(message, ResponseMessage)
            item = message.batch_items[0]
            if item.result_status != ResultStatus.SUCCESS:
                raise RuntimeError(f"setup Create failed: {item.result_reason!r} {item.result_message}")
            uids.append(item.payload.unique_identifier)
    finally:
        sock.close()
    return uids


# --------------------------------------------------------------------------- client processes


@dataclasses.dataclass
class CellSpec:
    endpoint: Endpoint
    requests: list[bytes]  # connection i starts at requests[i % len] and cycles
    connections: int  # in this process
    first_connection: int  # global index of this process's first connection
    connect_timeout: float
    chain: Chain | None = None  # if set, requests is [chain.first] and the chain is run instead


@dataclasses.dataclass
class ProcessResult:
    ops: int = 0  # successful, inside the measured window
    failures: int = 0  # inside the measured window
    acknowledged: int = 0  # successful responses at any time (warm-up included): durability check
    io_errors: int = 0
    decode_problems: list[str] = dataclasses.field(default_factory=list)
    latencies: bytes = b""  # array('d') of seconds, measured window only
    cpu_seconds: float = 0.0  # this process's user+system CPU in the measured window


class _Connector(threading.Thread):
    """Opens one connection (the handshakes of a cell run concurrently, one thread each)."""

    def __init__(self, spec: CellSpec, context: ssl.SSLContext) -> None:
        super().__init__(daemon=True)
        self.spec = spec
        self.context = context
        self.sock: ssl.SSLSocket | None = None
        self.connect_error: str | None = None
        self.connect_seconds = 0.0

    def run(self) -> None:
        started = time.monotonic()
        try:
            self.sock = connect(self.spec.endpoint, self.context, self.spec.connect_timeout)
            self.connect_seconds = time.monotonic() - started
        except (OSError, ssl.SSLError) as error:
            self.connect_error = repr(error)


class _Stream:
    """One connection's state in the load loop: its request cycle and the response so far."""

    __slots__ = ("sock", "position", "buffer", "sent_at", "uid")

    def __init__(self, sock: ssl.SSLSocket, position: int) -> None:
        self.sock = sock
        self.position = position  # with a Chain: the step, 0 for its first request
        self.buffer = b""
        self.sent_at = 0.0  # with a Chain: when its first request was sent
        self.uid = b""  # with a Chain: the Unique Identifier item its first response returned


def _load(socks: list[ssl.SSLSocket], spec: CellSpec, window: tuple[float, float, float]) -> ProcessResult:
    """Drive every connection of this process from one thread with a selector.

    One thread per blocking socket cost the client about twice the CPU per request (a GIL
    hand-over and a thread wake-up on every send and receive), CPU that on a 2-core machine
    the server under test then lacks. Requests are small, so a non-blocking SSL send of one
    either completes or (never seen) raises; one request is in flight per connection.
    """
    _, measure_from, until = window
    requests = spec.requests
    n = len(requests)
    chain = spec.chain
    result = ProcessResult()
    latencies = array.array("d")
    record = latencies.append
    clock = time.perf_counter
    selector = selectors.EpollSelector()
    since_full = FULL_DECODE_EVERY  # the first response is decoded in full
    live = 0
    for index, sock in enumerate(socks):
        sock.setblocking(False)
        stream = _Stream(sock, (spec.first_connection + index) % n)
        stream.sent_at = clock()
        try:
            sock.send(requests[stream.position])
        except (OSError, ssl.SSLError):
            result.io_errors += 1
            continue
        selector.register(sock, selectors.EVENT_READ, stream)
        live += 1
    cpu_from: float | None = None  # the CPU of the measured window only
    try:
        while live:
            now = time.monotonic()
            if now >= until:
                break
            if cpu_from is None and now >= measure_from:
                cpu_from = _cpu()
            for key, _ in selector.select(until - now):
                stream = key.data
                sock = stream.sock
                try:
                    data = sock.recv(65536)
                    while sock.pending():
                        data += sock.recv(65536)
                except ssl.SSLWantReadError:
                    continue
                except (OSError, ssl.SSLError):
                    data = b""
                if not data:
                    result.io_errors += 1
                    selector.unregister(sock)
                    live -= 1
                    continue
                buffer = stream.buffer + data if stream.buffer else data
                if len(buffer) < 8 or len(buffer) < 8 + HEADER.unpack_from(buffer, 0)[1]:
                    stream.buffer = buffer
                    continue
                stream.buffer = b""  # one request in flight: the response is the whole buffer
                elapsed = clock() - stream.sent_at
                good = quick_success(buffer)
                since_full += 1
                if since_full >= FULL_DECODE_EVERY:
                    since_full = 0
                    problem = full_check(buffer)
                    if (problem is None) != good:
                        result.decode_problems.append(f"quick check said {good}, full decode said {problem}")
                    elif problem is not None and len(result.decode_problems) < 5:
                        result.decode_problems.append(problem)
                if good:
                    result.acknowledged += 1
                if chain is not None:
                    request = _chain_step(chain, stream, buffer, good, now >= measure_from, result, record)
                else:
                    if now >= measure_from:
                        if good:
                            result.ops += 1
                            record(elapsed)
                        else:
                            result.failures += 1
                    stream.position = stream.position + 1 if stream.position + 1 < n else 0
                    stream.sent_at = clock()
                    request = requests[stream.position]
                try:
                    sock.send(request)
                except (OSError, ssl.SSLError):
                    result.io_errors += 1
                    selector.unregister(sock)
                    live -= 1
    finally:
        selector.close()
    if cpu_from is not None:
        result.cpu_seconds = _cpu() - cpu_from
    result.latencies = latencies.tobytes()
    return result


def _chain_step(
    chain: Chain,
    stream: _Stream,
    response: bytes,
    good: bool,
    measured: bool,
    result: ProcessResult,
    record: Callable[[float], None],
) -> bytes:
    """The request that follows ``response`` on a Chain's connection, the counts updated."""
    step = stream.position
    if good and step == 0:
        item = uid_item(response)
        if item is None:
            good = False
            if len(result.decode_problems) < 5:
                result.decode_problems.append("chain: no Unique Identifier in the first response")
        else:
            stream.uid = item
    if not good:
        if measured:
            result.failures += 1
        step = len(chain.then)  # start over
    elif step == len(chain.then) and measured:
        result.ops += 1
        record(time.perf_counter() - stream.sent_at)
    if step == len(chain.then):
        stream.position = 0
        stream.sent_at = time.perf_counter()
        return chain.first
    stream.position = step + 1
    return chain.then[step].splice(stream.uid)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def client_main(spec: CellSpec, pipe: multiprocessing.connection.Connection) -> None:
    """One client process: connect everything, report, wait for the window, run, report."""
    context = spec.endpoint.context()
    connectors = [_Connector(spec, context) for _ in range(spec.connections)]
    for connector in connectors:
        connector.start()
    for connector in connectors:
        connector.join()
    errors = [c.connect_error for c in connectors if c.connect_error]
    pipe.send(("connected", max((c.connect_seconds for c in connectors), default=0.0), errors))
    window = pipe.recv()  # (start, measure_from, until) or None to abandon
    socks = [c.sock for c in connectors if c.sock is not None]
    total = ProcessResult()
    try:
        if window is not None and not errors:
            _sleep_until(window[0])
            total = _load(socks, spec, window)
    finally:
        for sock in socks:
            sock.close()
    pipe.send(("done", total))
    pipe.close()


def _sleep_until(instant: float) -> None:
    delay = instant - time.monotonic()
    if delay > 0:
        time.sleep(delay)


@dataclasses.dataclass
class CellResult:
    connections: int
    connect_seconds: float | None  # None: not all connected within the cap
    connect_errors: list[str]
    ops: int = 0
    failures: int = 0
    io_errors: int = 0
    acknowledged: int = 0
    duration: float = 0.0
    latencies: array.array[float] = dataclasses.field(default_factory=lambda: array.array("d"))
    client_cpu_seconds: float = 0.0
    server_cpu_seconds: float | None = None
    decode_problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def ops_per_second(self) -> float:
        return self.ops / self.duration if self.duration else 0.0

    def percentile_ms(self, fraction: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(int(fraction * len(ordered)), len(ordered) - 1)] * 1000.0


def run_cell(
    endpoint: Endpoint,
    requests: list[bytes] | Chain,
    connections: int,
    processes: int,
    warmup: float,
    duration: float,
    connect_timeout: float,
    server_pid: int | None = None,
) -> CellResult:
    """Open ``connections`` connections spread over up to ``processes`` processes, warm up, then
    measure for ``duration`` seconds (sampling the CPU of ``server_pid``'s process tree over
    the same window, if given). Connection set-up is timed on its own (all handshakes
    concurrent); if it exceeds ``connect_timeout`` the cell reports that and runs no load.
    ``requests`` may be a Chain: every connection then runs it over and over."""
    chain = requests if isinstance(requests, Chain) else None
    if chain is not None:
        requests = [chain.first]
    processes = max(1, min(processes, connections))
    fork = multiprocessing.get_context("fork")  # the bench process has no threads at this point
    shares = [connections // processes + (1 if i < connections % processes else 0) for i in range(processes)]
    children = []
    first = 0
    started = time.monotonic()
    for share in shares:
        parent_end, child_end = fork.Pipe()
        spec = CellSpec(endpoint, requests, share, first, connect_timeout, chain)
        process = fork.Process(target=client_main, args=(spec, child_end), daemon=True)
        process.start()
        child_end.close()
        children.append((process, parent_end))
        first += share

    errors: list[str] = []
    all_connected = True
    for _process, pipe in children:
        remaining = max(connect_timeout + 5.0 - (time.monotonic() - started), 0.1)
        if not pipe.poll(remaining):
            all_connected = False
            errors.append("timed out")
            continue
        _, _, child_errors = pipe.recv()
        errors += child_errors
    connect_seconds = time.monotonic() - started
    result = CellResult(connections, connect_seconds if all_connected and not errors else None, errors)

    if result.connect_seconds is None:
        window = None
    else:
        start = time.monotonic() + 0.05
        window = (start, start + warmup, start + warmup + duration)
        result.duration = duration
    for _, pipe in children:
        try:
            pipe.send(window)
        except OSError:
            pass
    if window is not None and server_pid is not None:
        _sleep_until(window[1])
        server_from = process_tree_cpu_seconds(server_pid)
        _sleep_until(window[2])
        result.server_cpu_seconds = process_tree_cpu_seconds(server_pid) - server_from
    for process, pipe in children:
        if window is not None and pipe.poll(warmup + duration + IO_TIMEOUT + 10):
            _, child = pipe.recv()
            result.ops += child.ops
            result.failures += child.failures
            result.io_errors += child.io_errors
            result.acknowledged += child.acknowledged
            result.client_cpu_seconds += child.cpu_seconds
            result.decode_problems += child.decode_problems
            result.latencies.frombytes(child.latencies)
        process.join(timeout=IO_TIMEOUT)
        if process.is_alive():
            process.kill()
            process.join()
    return result


def process_tree_cpu_seconds(root_pid: int) -> float:
    """User+system CPU of a process and all its descendants (Linux /proc): the server's cost."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
    tree = {root_pid}
    changed = True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                changed = True
    return sum(times.get(pid, 0.0) for pid in tree)
