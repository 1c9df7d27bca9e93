"""KMIP over HTTPS benchmark: Get requests per second against real ``strongroom serve`` processes.

For each checkout given (a directory holding ``kmip_server``; the default is this one), a fresh
data directory is initialised and ``strongroom serve --https-port`` is started with that
checkout's code first on PYTHONPATH, one AES key is created over the TTLV port, and pre-encoded
Get requests (TTLV bodies, ``application/octet-stream``) are POSTed to ``/kmip`` over persistent
connections, one request in flight per connection; every answer must be HTTP 200 with a KMIP
Success. Prints requests/s, p50/p99 latency and the server's CPU per request (all its
processes) per checkout and connection count. Cells run
checkout by checkout in turn, each connection count once per round, so that a drifting machine
is shared by the checkouts compared.

    python tests/bench/bench_https.py [--checkout DIR ...] [--connections 1,8] [--duration 5]
        [--warmup 1] [--rounds 2] [--workers 1] [--processes 2]

To compare with an older commit: ``git worktree add /tmp/before <commit>``, then
``--checkout /tmp/before --checkout .`` (and ``git worktree remove /tmp/before`` after).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import socket
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # run as a script: make `tests.support` importable
    sys.path.insert(0, str(_ROOT))

import threaded_load  # noqa: E402
from loadgen import Endpoint, create_request, get_request, quick_success  # noqa: E402
from threaded_load import IO_TIMEOUT, Window  # noqa: E402

from kmip_client.protocol.model import ResponseMessage  # noqa: E402
from kmip_client.protocol.model.messages import decode_message  # noqa: E402
from tests.support.server_process import LOOPBACK, free_port, running_server, strongroom_init  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Load:
    endpoint: Endpoint
    request: bytes  # the whole HTTP request


def http_request(body: bytes) -> bytes:
    head = (
        "POST /kmip HTTP/1.1\r\nHost: kms\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def read_response(sock: ssl.SSLSocket, pending: bytes) -> tuple[int, bytes, bytes]:
    """Status, body and what follows, off a connection answering one request at a time."""
    data = pending
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed in a response head")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed in a response body")
        rest += chunk
    return int(lines[0].split(b" ")[1]), rest[:length], rest[length:]


def _connection(load: Load, window: Window, latencies: list[float], errors: list[str]) -> None:
    context = load.endpoint.context()
    raw = socket.create_connection((load.endpoint.host, load.endpoint.port), timeout=IO_TIMEOUT)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with context.wrap_socket(raw) as sock:
        pending = b""
        while (now := time.time()) < window.stop:
            sock.sendall(load.request)
            status, body, pending = read_response(sock, pending)
            done = time.time()
            if status != 200 or not quick_success(body):
                errors.append(f"HTTP {status}")
            elif now >= window.measure:
                latencies.append(done - now)


def run_cell(
    endpoint: Endpoint, request: bytes, connections: int, args: argparse.Namespace, server_pid: int
) -> tuple[float, float, float, int, float]:
    """Requests/s, p50 and p99 in ms, errors, and the server's CPU µs per request, of one cell."""
    cell = threaded_load.run_cell(
        _connection,
        [Load(endpoint, request)],
        connections,
        processes=args.processes,
        warmup=args.warmup,
        duration=args.duration,
        server_pid=server_pid,
    )
    if not cell.latencies:
        return 0.0, 0.0, 0.0, len(cell.errors), 0.0
    p50 = statistics.median(cell.latencies) * 1e3
    return cell.rate, p50, cell.percentile_ms(0.99), len(cell.errors), cell.server_us_per_request


@contextlib.contextmanager
def serving(checkout: Path, workdir: Path, workers: int) -> Iterator[tuple[Endpoint, int]]:
    """``strongroom serve`` from ``checkout`` with an HTTPS port; its HTTPS endpoint and pid."""
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(checkout)  # the server's and init's processes run its code
    try:
        data_dir = workdir / "data"
        admin = strongroom_init(data_dir)
        https_port = free_port()
        extra = ["--https-port", str(https_port)]
        with running_server(data_dir, free_port(), workers=workers, extra_args=extra) as server:
            yield Endpoint(LOOPBACK, https_port, admin.ca, admin.cert, admin.key), server.process.pid
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def create_key(endpoint: Endpoint) -> str:
    """One AES key, made with a Create POSTed over HTTPS (the body is the same TTLV)."""
    context = endpoint.context()
    with socket.create_connection((endpoint.host, endpoint.port), timeout=IO_TIMEOUT) as raw:
        with context.wrap_socket(raw) as sock:
            sock.sendall(http_request(create_request()))
            status, body, _ = read_response(sock, b"")
    message = decode_message(body)
    assert status == 200 and isinstance(message, ResponseMessage)
    item = message.batch_items[0]
    if item.payload is None:
        raise RuntimeError(f"setup Create failed: {item.result_reason!r} {item.result_message}")
    return str(item.payload.unique_identifier)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkout", action="append", type=Path, help="a checkout to serve from (repeatable)")
    parser.add_argument("--connections", default="1,8", help="comma-separated connection counts")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per cell")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    parser.add_argument("--rounds", type=int, default=2, help="times each cell runs (the best is kept)")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--processes", type=int, default=2, help="client processes at most")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    checkouts = [path.resolve() for path in (args.checkout or [_ROOT])]
    counts = [int(n) for n in args.connections.split(",")]
    best: dict[tuple[Path, int], tuple[float, float, float, int, float]] = {}
    failed = False
    with contextlib.ExitStack() as stack:
        endpoints = {}
        for n, checkout in enumerate(checkouts):
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"bench-https-{n}-")))
            endpoints[checkout] = stack.enter_context(serving(checkout, workdir, args.workers))
        requests = {}
        for checkout, (endpoint, _) in endpoints.items():
            uid = create_key(endpoint)
            requests[checkout] = http_request(get_request(uid))
        for _ in range(args.rounds):
            for count in counts:
                for checkout in checkouts:
                    endpoint, pid = endpoints[checkout]
                    cell = run_cell(endpoint, requests[checkout], count, args, pid)
                    failed = failed or cell[3] > 0
                    if (checkout, count) not in best or cell[0] > best[checkout, count][0]:
                        best[checkout, count] = cell
                    print(f"  {checkout} x{count}: {cell[0]:.0f} req/s", file=sys.stderr, flush=True)
    print(f"KMIP over HTTPS, Get, {args.workers} worker(s), best of {args.rounds} x {args.duration:g} s")
    print(f"{'checkout':<40} {'conns':>5} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'srv µs/req':>10}")
    for checkout in checkouts:
        for count in counts:
            rate, p50, p99, errors, cpu = best[checkout, count]
            print(f"{str(checkout):<40} {count:>5} {rate:>8.0f} {p50:>7.2f} {p99:>7.2f} {errors:>6} {cpu:>10.0f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
