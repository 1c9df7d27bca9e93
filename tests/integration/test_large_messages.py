"""A large request message on a real server (`strongroom serve --workers 1`): the worker's
other clients keep being answered while it runs, its connection's answers stay in order, and a
message over listener.max_batch_items is refused while the server goes on serving."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import h11
import pytest

from kmip_client.protocol.model import ResponseMessage
from kmip_client.protocol.model.messages import decode_message
from kmip_client.protocol.spec.enums import Operation, ResultReason, ResultStatus
from tests.bench.bench_big_message import allow_batches, creates_message, get_attributes_message
from tests.bench.loadgen import HEADER, Endpoint, connect, exchange, get_request, setup_keys
from tests.support.server_process import free_port, running_server, strongroom_init

CAP = 3000
# Generous for a shared, loaded test machine; inline, each of these messages held the other
# clients for a second or more (see tests/bench/bench_big_message.py for the real numbers).
SMALL_P99_BOUND = 0.5
HTTPS_PORT: list[int] = []  # set by the fixture


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Endpoint, str]]:
    """A one-worker server (TTLV, and KMIP over HTTPS on HTTPS_PORT[0]) and a key served once."""
    data_dir = tmp_path_factory.mktemp("large") / "data"
    strongroom_init(data_dir)
    allow_batches(data_dir, CAP)
    port = free_port()
    HTTPS_PORT.append(free_port())
    with running_server(data_dir, port, workers=1, extra_args=["--https-port", str(HTTPS_PORT[0])]) as server:
        endpoint = Endpoint(server.host, port, server.tls.ca, server.tls.cert, server.tls.key)
        uid = setup_keys(endpoint, 1)[0]
        sock = connect(endpoint, endpoint.context(), timeout=30.0)
        exchange(sock, get_request(uid))  # served once: later Gets of it only read
        sock.close()
        yield endpoint, uid


def _decoded(data: bytes) -> ResponseMessage:
    message = decode_message(data)
    assert isinstance(message, ResponseMessage)
    return message


def _small_latencies_during(
    endpoint: Endpoint,
    uid: str,
    big: bytes,
    send_big: Callable[[ssl.SSLSocket, bytes], bytes] = exchange,
    small_request: bytes | None = None,
) -> tuple[bytes, list[float]]:
    """Send ``big`` on one connection (with ``send_big``) while another sends single Gets back
    to back; return the big answer and the latencies of the Gets that overlapped it."""
    context = endpoint.context()
    small = connect(endpoint, context, timeout=30.0)
    large = connect(endpoint, context, timeout=30.0) if send_big is exchange else _https_connect(endpoint)
    large.settimeout(300.0)
    samples: list[tuple[float, float]] = []
    stop = threading.Event()
    request = small_request or get_request(uid)
    failures: list[str] = []

    def small_client() -> None:
        while not stop.is_set():
            started = time.monotonic()
            answer = _decoded(exchange(small, request))
            samples.append((started, time.monotonic()))
            if answer.batch_items[0].result_status != ResultStatus.SUCCESS:
                failures.append(str(answer.batch_items[0].result_message))

    thread = threading.Thread(target=small_client, daemon=True)
    thread.start()
    try:
        time.sleep(0.2)
        began = time.monotonic()
        answer = send_big(large, big)
        ended = time.monotonic()
        time.sleep(0.1)
    finally:
        stop.set()
        thread.join(30)
        small.close()
        large.close()
    assert not failures
    during = sorted(end - start for start, end in samples if end > began and start < ended)
    print(f"large message {ended - began:.2f} s; {len(during)} small Gets during it, max {during[-1] * 1000:.1f} ms")
    return answer, during


def _p99(values: list[float]) -> float:
    return values[min(len(values) - 1, int(0.99 * len(values)))]


def test_small_gets_are_answered_during_thousands_of_get_attributes(served: tuple[Endpoint, str]) -> None:
    endpoint, uid = served
    data, during = _small_latencies_during(endpoint, uid, get_attributes_message(uid, 2500))
    answer = _decoded(data)
    assert len(answer.batch_items) == 2500
    assert all(item.result_status == ResultStatus.SUCCESS for item in answer.batch_items)
    assert len(during) >= 10
    assert _p99(during) < SMALL_P99_BOUND, f"p99 {_p99(during) * 1000:.0f} ms"


def test_small_gets_are_answered_during_a_thousand_creates(served: tuple[Endpoint, str]) -> None:
    endpoint, uid = served
    data, during = _small_latencies_during(endpoint, uid, creates_message(1000))
    answer = _decoded(data)
    uids = [item.payload.unique_identifier for item in answer.batch_items]
    assert all(item.result_status == ResultStatus.SUCCESS for item in answer.batch_items)
    assert len(set(uids)) == 1000
    assert len(during) >= 10
    assert _p99(during) < SMALL_P99_BOUND, f"p99 {_p99(during) * 1000:.0f} ms"
    # Committed before the answer, chunk by chunk: the last one is there.
    sock = connect(endpoint, endpoint.context(), timeout=30.0)
    got = _decoded(exchange(sock, get_request(uids[-1])))
    sock.close()
    assert got.batch_items[0].result_status == ResultStatus.SUCCESS


def _rsa_pairs_message(count: int) -> bytes:
    """One small message of ``count`` Create Key Pair items, RSA-2048: each ~0.2 s of token time."""
    from kmip_client.protocol.model import Attribute, TemplateAttribute
    from kmip_client.protocol.model.payloads.lifecycle import CreateKeyPairRequest
    from kmip_client.protocol.spec.enums import CryptographicAlgorithm
    from tests.integration.kmip_messages import V14, request_bytes
    from tests.integration.kmip_messages import item as batch_item

    request = CreateKeyPairRequest(
        common_template_attribute=TemplateAttribute(
            attributes=(
                Attribute(name="Cryptographic Algorithm", value=CryptographicAlgorithm.RSA),
                Attribute(name="Cryptographic Length", value=2048),
            )
        )
    )
    items = [
        batch_item(
            Operation.CREATE_KEY_PAIR, bytes([n]), **{f: getattr(request, f) for f in ("common_template_attribute",)}
        )
        for n in range(count)
    ]
    return request_bytes(V14, *items)


def test_other_clients_are_answered_while_the_token_makes_rsa_pairs(served: tuple[Endpoint, str]) -> None:
    """A Create Key Pair is a small message of slow items: it runs beside the loop too
    (batch_limits.is_slow); inline, six RSA generations held every other client ~1 s. (A
    request that needs the token itself, a Get, waits for the generation in progress: the
    token has one session per worker, its library not initialised for threads.)"""
    from tests.integration.kmip_messages import V14, request_bytes
    from tests.integration.kmip_messages import item as batch_item

    endpoint, uid = served
    discover = request_bytes(V14, batch_item(Operation.DISCOVER_VERSIONS))
    data, during = _small_latencies_during(endpoint, uid, _rsa_pairs_message(6), small_request=discover)
    answer = _decoded(data)
    assert [item.result_status for item in answer.batch_items] == [ResultStatus.SUCCESS] * 6
    assert len(during) >= 10
    assert _p99(during) < SMALL_P99_BOUND, f"p99 {_p99(during) * 1000:.0f} ms"


def _https_connect(endpoint: Endpoint) -> ssl.SSLSocket:
    raw = socket.create_connection((endpoint.host, HTTPS_PORT[0]), timeout=30.0)
    return endpoint.context().wrap_socket(raw)


def _https_post(body: bytes) -> bytes:
    return (
        f"POST /kmip HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def _client_parser() -> h11.Connection:
    """A client-side h11 parser ready to read one response (the request went out as bytes)."""
    parser = h11.Connection(h11.CLIENT)
    parser.send(h11.Request(method="POST", target="/kmip", headers=[("Host", "localhost"), ("Content-Length", "0")]))
    parser.send(h11.EndOfMessage())
    return parser


def _https_answers(sock: ssl.SSLSocket, count: int) -> list[bytes]:
    """The bodies of ``count`` HTTP responses read from ``sock`` (each must be 200)."""
    parser = _client_parser()
    bodies: list[bytes] = []
    body = b""
    while len(bodies) < count:
        event = parser.next_event()
        if event is h11.NEED_DATA:
            chunk = sock.recv(1 << 20)
            assert chunk, "the server closed the connection"
            parser.receive_data(chunk)
        elif isinstance(event, h11.Response):
            assert event.status_code == 200, event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            bodies.append(body)
            body = b""
            rest = parser.trailing_data[0]
            parser = _client_parser()
            if rest:  # b"" would tell h11 the connection has closed
                parser.receive_data(rest)
    return bodies


def test_a_large_message_over_https_leaves_the_worker_serving(served: tuple[Endpoint, str]) -> None:
    # The HTTPS port answers inline, on the same event loop as the TTLV port: a large message
    # there must go to the thread too. A small request pipelined behind it is answered after it.
    endpoint, uid = served
    small = get_request(uid)

    def post_big(sock: ssl.SSLSocket, big: bytes) -> bytes:
        sock.sendall(_https_post(big) + _https_post(small))
        big_answer, small_answer = _https_answers(sock, 2)
        assert len(_decoded(small_answer).batch_items) == 1
        return big_answer

    data, during = _small_latencies_during(endpoint, uid, get_attributes_message(uid, CAP), post_big)
    answer = _decoded(data)
    assert len(answer.batch_items) == CAP
    assert all(item.result_status == ResultStatus.SUCCESS for item in answer.batch_items)
    assert len(during) >= 10
    # The longest wait, not the p99: run inline, the message is one stall, which only one small
    # Get (the one it caught) sees, whatever its length.
    assert during[-1] < SMALL_P99_BOUND, f"longest wait {during[-1] * 1000:.0f} ms"


def _read_messages(sock, count: int) -> list[bytes]:
    data = b""
    answers = []
    while len(answers) < count:
        while len(data) < 8 or len(data) < 8 + HEADER.unpack_from(data, 0)[1]:
            chunk = sock.recv(1 << 20)
            assert chunk, "the server closed the connection"
            data += chunk
        size = 8 + HEADER.unpack_from(data, 0)[1]
        answers.append(data[:size])
        data = data[size:]
    return answers


def test_answers_on_one_connection_keep_their_order(served: tuple[Endpoint, str]) -> None:
    endpoint, uid = served
    sock = connect(endpoint, endpoint.context(), timeout=120.0)
    try:
        small = get_request(uid)
        sock.sendall(small + get_attributes_message(uid, 500) + small + get_attributes_message(uid, 40) + small)
        sizes = [len(_decoded(answer).batch_items) for answer in _read_messages(sock, 5)]
    finally:
        sock.close()
    assert sizes == [1, 500, 1, 40, 1]


def test_a_message_over_the_cap_is_refused_and_the_server_goes_on(served: tuple[Endpoint, str]) -> None:
    endpoint, uid = served
    sock = connect(endpoint, endpoint.context(), timeout=30.0)
    try:
        started = time.monotonic()
        answer = _decoded(exchange(sock, get_attributes_message(uid, CAP + 1)))
        refused_in = time.monotonic() - started
        assert len(answer.batch_items) == 1
        refusal = answer.batch_items[0]
        assert refusal.result_status == ResultStatus.OPERATION_FAILED
        assert refusal.result_reason == ResultReason.INVALID_MESSAGE
        assert f"at most {CAP}" in str(refusal.result_message)
        assert refused_in < 1.0  # from the Batch Count, before decoding the items
        # The same connection, and the server, go on.
        again = _decoded(exchange(sock, get_request(uid)))
        assert again.batch_items[0].result_status == ResultStatus.SUCCESS
    finally:
        sock.close()


def test_the_generated_configuration_documents_the_cap(tmp_path: Path) -> None:
    from kmip_server.config import render_default_config

    text = render_default_config()
    assert "max_batch_items = 1000" in text
    assert "Invalid Message" in text
