"""How long one large request message keeps a worker's other clients waiting.

Starts ``strongroom serve --workers 1`` (so every client shares the one worker), creates a
key, then for each large message (thousands of Get Attributes; thousands of Creates): a
small client sends single-item Gets back to back while a big client sends the one large
message, and the small client's latencies while the large message was in progress are
reported (p50, p99, max). Run: ``python -m tests.bench.bench_big_message``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from kmip_client.protocol.model import (
    RequestBatchItem,
    RequestHeader,
    RequestMessage,
    ResponseMessage,
    encode_message,
)
from kmip_client.protocol.model.messages import decode_message
from kmip_client.protocol.model.payloads.attributes_ops import GetAttributesRequest
from kmip_client.protocol.spec.enums import Operation, ResultStatus
from tests.bench.loadgen import PROTOCOL, Endpoint, connect, create_request, exchange, get_request, setup_keys
from tests.support.server_process import free_port, running_server, strongroom_init


def big_message(items: list[RequestBatchItem]) -> bytes:
    header = RequestHeader(protocol_version=PROTOCOL, batch_count=len(items))
    return encode_message(RequestMessage(header=header, batch_items=tuple(items)))


def get_attributes_message(uid: str, count: int) -> bytes:
    item = RequestBatchItem(operation=Operation.GET_ATTRIBUTES, payload=GetAttributesRequest(unique_identifier=uid))
    return big_message([item] * count)


def creates_message(count: int) -> bytes:
    one = decode_message(create_request())
    assert isinstance(one, RequestMessage)
    return big_message([one.batch_items[0]] * count)


def allow_batches(data_dir: Path, limit: int) -> None:
    """Raise [listener] max_batch_items in the data dir's configuration (read at start)."""
    path = data_dir / "strongroom.toml"
    lines = path.read_text().splitlines()
    lines = [f"max_batch_items = {limit}" if line.startswith("max_batch_items") else line for line in lines]
    path.write_text("\n".join(lines) + "\n")


class Measurement:
    """Latencies of one small client (each with its start time) while a large message runs."""

    def __init__(self, big_seconds: float, big_ok: int, big_items: int, during: list[float]) -> None:
        self.big_seconds = big_seconds
        self.big_ok = big_ok
        self.big_items = big_items
        self.during = during

    def line(self, label: str) -> str:
        during = sorted(self.during)
        if not during:
            return f"{label}: the large message took {self.big_seconds:.2f} s; no small request overlapped it"
        p99 = during[min(len(during) - 1, int(0.99 * len(during)))]
        return (
            f"{label}: large message {self.big_seconds:.2f} s ({self.big_ok}/{self.big_items} items succeeded); "
            f"small Gets during it: {len(during)}, p50 {statistics.median(during) * 1000:.1f} ms, "
            f"p99 {p99 * 1000:.1f} ms, max {during[-1] * 1000:.1f} ms"
        )


def measure(
    endpoint: Endpoint, uid: str, big: bytes, items: int, settle: float = 0.3, small_client_on: bool = True
) -> Measurement:
    """The small client's latencies that overlapped the large message's round trip (without a
    small client: the large message's own time)."""
    context = endpoint.context()
    small = connect(endpoint, context, timeout=30.0)
    large = connect(endpoint, context, timeout=30.0)
    large.settimeout(600.0)
    samples: list[tuple[float, float]] = []
    stop = threading.Event()
    request = get_request(uid)

    def small_client() -> None:
        while small_client_on and not stop.is_set():
            started = time.monotonic()
            exchange(small, request)
            samples.append((started, time.monotonic()))

    thread = threading.Thread(target=small_client, daemon=True)
    thread.start()
    time.sleep(settle)
    began = time.monotonic()
    response = exchange(large, big)
    ended = time.monotonic()
    time.sleep(settle)
    stop.set()
    thread.join(30)
    small.close()
    large.close()
    message = decode_message(response)
    assert isinstance(message, ResponseMessage)
    succeeded = sum(1 for item in message.batch_items if item.result_status == ResultStatus.SUCCESS)
    during = [end - start for start, end in samples if end > began and start < ended]
    return Measurement(ended - began, succeeded, items, during)


def run(args: argparse.Namespace, report: Callable[[str], None]) -> None:
    with tempfile.TemporaryDirectory(prefix="strongroom-big-") as tmp:
        data_dir = Path(tmp) / "data"
        strongroom_init(data_dir)
        allow_batches(data_dir, max(args.gets, args.creates))
        port = free_port()
        with running_server(data_dir, port, workers=1) as server:
            endpoint = Endpoint(server.host, port, server.tls.ca, server.tls.cert, server.tls.key)
            uid = setup_keys(endpoint, 1)[0]
            # Served once, so the small Gets are reads (a Fresh key's first Get writes).
            sock = connect(endpoint, endpoint.context(), timeout=30.0)
            exchange(sock, get_request(uid))
            sock.close()
            if args.alone:
                for label, big, items in (
                    (f"{args.gets} Get Attributes alone", get_attributes_message(uid, args.gets), args.gets),
                    (f"{args.creates} Creates alone", creates_message(args.creates), args.creates),
                ):
                    if items:
                        report(measure(endpoint, uid, big, items, small_client_on=False).line(label))
            for _ in range(args.rounds):
                if args.gets:
                    big = get_attributes_message(uid, args.gets)
                    report(
                        measure(endpoint, uid, big, args.gets).line(f"{args.gets} Get Attributes ({len(big)} bytes)")
                    )
                if args.creates:
                    big = creates_message(args.creates)
                    report(measure(endpoint, uid, big, args.creates).line(f"{args.creates} Creates ({len(big)} bytes)"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gets", type=int, default=10000, help="Get Attributes items in the large message")
    parser.add_argument("--creates", type=int, default=3000, help="Create items in the large message")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--alone", action="store_true", help="first time each large message without the small client")
    args = parser.parse_args(argv)
    run(args, lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
