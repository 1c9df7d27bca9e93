"""The client's side of asynchronous answers (M-of-N approval): the Asynchronous Indicator in
the request header, Operation Pending read into OperationPending, Poll, Cancel and wait, in the
blocking and the asyncio client.

An in-process peer stands in for the server: it decodes each request message with the real
codec and answers with response messages the test scripts (what a server that holds an
operation answers, as kmip_server/operations/asynchronous.py does). The end-to-end flow
against a real server is tests/integration/test_approval_flow.py.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from kmip_client import Client, OperationPending
from kmip_client.aio import AsyncClient
from kmip_client.operations import BatchResult, allows_asynchronous
from kmip_client.protocol.errors import KmipError, PermissionDenied
from kmip_client.protocol.model import ProtocolVersion, ResponseBatchItem, ResponseHeader, ResponseMessage
from kmip_client.protocol.model.base import to_bytes
from kmip_client.protocol.model.messages import RESPONSE_PAYLOADS, RequestMessage, decode_message
from kmip_client.protocol.model.objects import KeyBlock, KeyValue, SymmetricKey
from kmip_client.protocol.spec.enums import (
    CancellationResult,
    CryptographicAlgorithm,
    KeyFormatType,
    ObjectType,
    Operation,
    ResultReason,
    ResultStatus,
)

CORRELATION = bytes(range(16))
Answer = Callable[[RequestMessage], list[ResponseBatchItem]]


def pending(operation: Operation, message: str = "Destroy awaits 2 approval(s) (has 0)") -> ResponseBatchItem:
    return ResponseBatchItem(
        operation=operation,
        result_status=ResultStatus.OPERATION_PENDING,
        result_message=message,
        asynchronous_correlation_value=CORRELATION,
    )


def success(operation: Operation, **payload: Any) -> ResponseBatchItem:
    return ResponseBatchItem(
        operation=operation, result_status=ResultStatus.SUCCESS, payload=RESPONSE_PAYLOADS[operation](**payload)
    )


def failure(operation: Operation, reason: ResultReason, message: str) -> ResponseBatchItem:
    return ResponseBatchItem(
        operation=operation, result_status=ResultStatus.OPERATION_FAILED, result_reason=reason, result_message=message
    )


class Peer:
    """A scripted KMIP server in process: ``answers`` in order, one per request message."""

    def __init__(self, *answers: list[ResponseBatchItem] | Answer, version: tuple[int, int] = (2, 1)) -> None:
        self.answers = list(answers)
        self.version = version
        self.requests: list[RequestMessage] = []
        self.lock = threading.Lock()

    def answer(self, request: bytes) -> bytes:
        message = decode_message(request)
        assert isinstance(message, RequestMessage)
        with self.lock:
            self.requests.append(message)
            script = self.answers.pop(0)
        items = script(message) if callable(script) else script
        response = ResponseMessage(
            header=ResponseHeader(
                protocol_version=ProtocolVersion(major=self.version[0], minor=self.version[1]),
                time_stamp=datetime.now(UTC).replace(microsecond=0),
                batch_count=len(items),
            ),
            batch_items=tuple(items),
        )
        return to_bytes(response)

    def exchange(self, request: bytes, *, idempotent: bool) -> bytes:
        return self.answer(request)

    def indicators(self) -> list[bool | None]:
        return [m.header.asynchronous_indicator if m.header else None for m in self.requests]

    def operations(self) -> list[Operation]:
        return [item.operation for m in self.requests for item in m.batch_items]  # type: ignore[misc]


class AsyncPeer(Peer):
    async def exchange(self, request: bytes, *, idempotent: bool) -> bytes:  # type: ignore[override]
        await asyncio.sleep(0)
        return self.answer(request)


def client(peer: Peer, version: tuple[int, int] = (2, 1)) -> Client:
    return Client(transport=peer, version=version)


# --------------------------------------------------------------------------- the indicator


def test_the_header_says_asynchronous_only_inside_the_block() -> None:
    peer = Peer([success(Operation.DESTROY, unique_identifier="k1")] * 1, *([[success(Operation.ACTIVATE)]] * 2))
    kmip = client(peer)
    kmip.destroy("k1")
    with kmip.asynchronous():
        assert allows_asynchronous(kmip)
        kmip.activate("k1")
    assert not allows_asynchronous(kmip)
    kmip.activate("k1")
    assert peer.indicators() == [None, True, None]


def test_the_block_is_per_client_and_per_thread() -> None:
    peer = Peer(*([[success(Operation.ACTIVATE)]] * 3))
    kmip, other = client(peer), client(peer)
    seen: list[bool] = []
    with kmip.asynchronous():
        other.activate("x")  # another client through the same transport

        def work() -> None:
            seen.append(allows_asynchronous(kmip))
            kmip.activate("y")

        worker = threading.Thread(target=work)
        worker.start()
        worker.join()
        kmip.activate("z")
    assert seen == [False]
    assert peer.indicators() == [None, None, True]


def test_nested_blocks_and_an_exception_restore_the_state() -> None:
    kmip = client(Peer())
    with pytest.raises(RuntimeError):
        with kmip.asynchronous():
            with kmip.asynchronous():
                pass
            assert allows_asynchronous(kmip)
            raise RuntimeError("out")
    assert not allows_asynchronous(kmip)


# --------------------------------------------------------------------------- pending, poll


def test_a_held_destroy_raises_operation_pending_and_poll_gives_the_uid() -> None:
    peer = Peer(
        [pending(Operation.DESTROY)],
        [pending(Operation.POLL, "Destroy awaits 2 approval(s) (has 1)")],
        [success(Operation.DESTROY, unique_identifier="k1")],
    )
    kmip = client(peer)
    with kmip.asynchronous(), pytest.raises(OperationPending) as held:
        kmip.destroy("k1")
    first = held.value
    assert first.correlation_value == CORRELATION
    assert first.operation == Operation.DESTROY
    assert "awaits 2 approval" in str(first)
    assert not isinstance(first, KmipError)  # nothing failed

    with pytest.raises(OperationPending) as again:
        kmip.poll(first)
    # Still the Destroy (the Poll's own answer names Poll), with the server's new message.
    assert again.value.operation == Operation.DESTROY
    assert again.value.correlation_value == CORRELATION
    assert "has 1" in str(again.value)

    assert kmip.poll(again.value) == "k1"
    polls = peer.requests[1:]
    assert [m.batch_items[0].operation for m in polls] == [Operation.POLL, Operation.POLL]
    assert all(m.batch_items[0].payload.asynchronous_correlation_value == CORRELATION for m in polls)


def test_poll_reads_the_answer_as_the_operation_s_own_method() -> None:
    key = SymmetricKey(
        key_block=KeyBlock(
            key_format_type=KeyFormatType.RAW,
            key_value=KeyValue(key_material=b"\x01" * 32),
            cryptographic_algorithm=CryptographicAlgorithm.AES,
            cryptographic_length=256,
        )
    )
    got = success(Operation.GET, object_type=ObjectType.SYMMETRIC_KEY, unique_identifier="k9", managed_object=key)
    peer = Peer([pending(Operation.GET)], [got], [pending(Operation.GET)], [got])
    kmip = client(peer)
    with kmip.asynchronous(), pytest.raises(OperationPending) as held:
        kmip.get("k9")
    found = kmip.poll(held.value)
    assert found.unique_identifier == "k9" and found.value == b"\x01" * 32 and found.length == 256

    # A correlation value alone (another process polling, say): the generic reading.
    with kmip.asynchronous(), pytest.raises(OperationPending) as held:
        kmip.get("k9")
    assert kmip.poll(held.value.correlation_value).value == b"\x01" * 32


def test_poll_of_a_bare_correlation_value_while_pending_and_done() -> None:
    peer = Peer([pending(Operation.POLL)], [success(Operation.REVOKE, unique_identifier="k2")])
    kmip = client(peer)
    with pytest.raises(OperationPending) as held:
        kmip.poll(CORRELATION)
    assert held.value.operation == Operation.POLL  # the client does not know what is held
    assert kmip.poll(CORRELATION) == "k2"


def test_create_held_then_polled_returns_the_uid() -> None:
    peer = Peer(
        [pending(Operation.CREATE)],
        [success(Operation.CREATE, object_type=ObjectType.SYMMETRIC_KEY, unique_identifier="n1")],
    )
    kmip = client(peer)
    with kmip.asynchronous(), pytest.raises(OperationPending) as held:
        kmip.create("AES", 256)
    assert held.value.operation == Operation.CREATE
    assert kmip.poll(held.value) == "n1"


def test_denied_expired_and_unknown_polls_raise_the_library_s_errors() -> None:
    peer = Peer(
        [failure(Operation.POLL, ResultReason.PERMISSION_DENIED, "request ab was denied by carol")],
        [failure(Operation.POLL, ResultReason.PERMISSION_DENIED, "request ab expired at 5 without 2 approval(s)")],
        [failure(Operation.POLL, ResultReason.INVALID_ASYNCHRONOUS_CORRELATION_VALUE, "no pending request")],
    )
    kmip = client(peer)
    with pytest.raises(PermissionDenied, match="denied by carol"):
        kmip.poll(CORRELATION)
    with pytest.raises(PermissionDenied, match="expired"):
        kmip.poll(CORRELATION)
    with pytest.raises(KmipError, match="no pending request") as unknown:
        kmip.poll(CORRELATION)
    assert unknown.value.reason == ResultReason.INVALID_ASYNCHRONOUS_CORRELATION_VALUE


def test_refusal_without_the_indicator_is_permission_denied_with_the_message() -> None:
    text = "Destroy needs 2 approval(s) from carol, dave, erin: send it with the Asynchronous Indicator set"
    kmip = client(Peer([failure(Operation.DESTROY, ResultReason.PERMISSION_DENIED, text)]))
    with pytest.raises(PermissionDenied, match="Asynchronous Indicator"):
        kmip.destroy("k1")


def test_pending_without_a_correlation_value_is_an_invalid_response() -> None:
    broken = ResponseBatchItem(operation=Operation.DESTROY, result_status=ResultStatus.OPERATION_PENDING)
    kmip = client(Peer([broken]))
    with kmip.asynchronous(), pytest.raises(KmipError, match="without an Asynchronous Correlation Value") as error:
        kmip.destroy("k1")
    assert error.value.reason == ResultReason.INVALID_MESSAGE


# --------------------------------------------------------------------------- cancel, wait


@pytest.mark.parametrize("outcome", list(CancellationResult))
def test_cancel_returns_the_cancellation_result(outcome: CancellationResult) -> None:
    answer = success(Operation.CANCEL, asynchronous_correlation_value=CORRELATION, cancellation_result=outcome)
    peer = Peer([pending(Operation.DESTROY)], [answer])
    kmip = client(peer)
    with kmip.asynchronous(), pytest.raises(OperationPending) as held:
        kmip.destroy("k1")
    assert kmip.cancel(held.value) is outcome
    sent = peer.requests[-1].batch_items[0]
    assert sent.operation == Operation.CANCEL and sent.payload.asynchronous_correlation_value == CORRELATION


def test_wait_polls_until_done_and_times_out() -> None:
    peer = Peer(
        [pending(Operation.DESTROY)],
        [pending(Operation.POLL)],
        [pending(Operation.POLL)],
        [success(Operation.DESTROY, unique_identifier="k1")],
        *([[pending(Operation.POLL)]] * 50),
    )
    kmip = client(peer)
    with kmip.asynchronous(), pytest.raises(OperationPending) as held:
        kmip.destroy("k1")
    assert kmip.wait(held.value, timeout=5, interval=0.01) == "k1"
    assert peer.operations()[1:] == [Operation.POLL] * 3
    with pytest.raises(TimeoutError, match="still pending") as late:
        kmip.wait(held.value, timeout=0.1, interval=0.02)
    assert isinstance(late.value.__cause__, OperationPending)


# --------------------------------------------------------------------------- batches


def test_a_held_batch_item_carries_its_pending() -> None:
    peer = Peer(
        [success(Operation.ACTIVATE, unique_identifier="a"), pending(Operation.DESTROY)],
        [success(Operation.DESTROY, unique_identifier="b")],
    )
    kmip = client(peer)
    with kmip.asynchronous():
        results = kmip.batch().activate("a").destroy("b").send()
    assert peer.indicators() == [True]
    done, held = results
    assert done.ok and done.pending is None
    assert isinstance(held, BatchResult) and not held.ok and held.error is None
    assert held.status == ResultStatus.OPERATION_PENDING
    assert held.pending is not None and held.pending.correlation_value == CORRELATION
    assert kmip.poll(held.pending) == "b"


# --------------------------------------------------------------------------- asyncio


def test_async_client_pending_poll_cancel_and_wait() -> None:
    cancelled = success(
        Operation.CANCEL, asynchronous_correlation_value=CORRELATION, cancellation_result=CancellationResult.CANCELED
    )
    peer = AsyncPeer(
        [pending(Operation.DESTROY)],
        [pending(Operation.POLL)],
        [success(Operation.DESTROY, unique_identifier="k1")],
        [pending(Operation.REVOKE)],
        [cancelled],
        [success(Operation.ACTIVATE)],
    )

    async def main() -> None:
        kmip = AsyncClient(transport=peer, version=(1, 4))
        with kmip.asynchronous():
            with pytest.raises(OperationPending) as held:
                await kmip.destroy("k1")
        assert held.value.operation == Operation.DESTROY
        with pytest.raises(OperationPending):
            await kmip.poll(held.value)
        assert await kmip.poll(held.value) == "k1"
        with kmip.asynchronous():
            with pytest.raises(OperationPending) as second:
                await kmip.revoke("k2")
        assert await kmip.cancel(second.value) is CancellationResult.CANCELED

        async def other_task() -> None:
            await kmip.activate("k3")  # a task started outside the block: synchronous

        task = asyncio.ensure_future(other_task())
        with kmip.asynchronous():
            await task

    asyncio.run(main())
    assert peer.indicators() == [True, None, None, True, None, None]
    assert peer.requests[0].protocol_version == (1, 4)


def test_async_wait() -> None:
    peer = AsyncPeer([pending(Operation.POLL)], [success(Operation.DESTROY, unique_identifier="k1")])

    async def main() -> Any:
        kmip = AsyncClient(transport=peer, version=(2, 1))
        first = OperationPending(CORRELATION, Operation.DESTROY)
        return await kmip.wait(first, timeout=5, interval=0.01)

    assert asyncio.run(main()) == "k1"
