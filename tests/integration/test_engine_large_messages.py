"""Large messages in the engine: the batch-item cap, refused before decoding; writes committed
in chunks with the same results one transaction gives; Undo kept whole; repeated failures
logged once with a count."""

from __future__ import annotations

import logging
import time

import pytest

from kmip_client.protocol.spec.enums import BatchErrorContinuationOption, Operation, ResultReason, ResultStatus, State
from kmip_server.custody import CustodyError
from kmip_server.engine import dispatcher as dispatcher_module
from kmip_server.engine.batch_limits import LARGE_MESSAGE_ITEMS, peek_request_header

from .engine_support import ALICE, create, failure, one, run, state_of
from .kmip_messages import V14, V21, create_aes, item, ok, request_bytes, response

ITEMS = LARGE_MESSAGE_ITEMS + 8
STOP = BatchErrorContinuationOption.STOP
CONTINUE = BatchErrorContinuationOption.CONTINUE
UNDO = BatchErrorContinuationOption.UNDO


@pytest.fixture
def chunk_per_item(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every item of a chunked message in a transaction of its own: the most chunks there can be."""
    monkeypatch.setattr(dispatcher_module, "_CHUNK_SECONDS", 0.0)


def test_the_header_is_read_without_decoding() -> None:
    data = request_bytes(V21, *[item(Operation.DISCOVER_VERSIONS)] * 3)
    assert peek_request_header(data) == ((2, 1), 3)
    assert peek_request_header(b"\x42\x00\x78\x01garbage") == (None, None)
    assert peek_request_header(data[:20]) == (None, None)


def test_a_message_over_the_cap_is_refused_with_invalid_message(engine) -> None:
    engine.max_batch_items = 10
    result = run(engine, V21, *[item(Operation.DISCOVER_VERSIONS)] * 11)
    assert len(result.batch_items) == 1
    message = failure(result.batch_items[0], ResultReason.INVALID_MESSAGE)
    assert "11 batch items" in message and "at most 10" in message and "max_batch_items" in message
    assert result.header.protocol_version.major == 2  # answered in the client's version
    assert len(run(engine, V21, *[item(Operation.DISCOVER_VERSIONS)] * 10).batch_items) == 10


def test_the_cap_is_applied_from_the_batch_count_before_decoding(engine) -> None:
    engine.max_batch_items = 10
    data = request_bytes(V14, item(Operation.DISCOVER_VERSIONS), batch_count=5000)
    # Only the header is whole: a decoder would refuse this as truncated.
    truncated = data[: data.index(bytes.fromhex("42000F01"))]
    truncated = truncated[:4] + (len(truncated) - 8 + 4096).to_bytes(4, "big") + truncated[8:]
    started = time.perf_counter()
    result = response(engine.handle(truncated, ALICE))
    assert time.perf_counter() - started < 0.5
    message = failure(result.batch_items[0], ResultReason.INVALID_MESSAGE)
    assert "5000 batch items" in message
    # A header that understates the count gets no further than the decoder's count check.
    liar = request_bytes(V14, *[item(Operation.DISCOVER_VERSIONS)] * 11, batch_count=1)
    failure(response(engine.handle(liar, ALICE)).batch_items[0], ResultReason.INVALID_MESSAGE)


def test_chunked_writes_carry_the_id_placeholder(engine, chunk_per_item) -> None:
    pairs = [create_aes(V14), item(Operation.ACTIVATE)] * (ITEMS // 2)
    result = run(engine, V14, *pairs)
    assert len(result.batch_items) == len(pairs)
    uids = [ok(created).unique_identifier for created in result.batch_items[0::2]]
    assert [ok(activated).unique_identifier for activated in result.batch_items[1::2]] == uids
    assert len(set(uids)) == len(uids)
    assert {state_of(engine, uid) for uid in uids} == {State.ACTIVE}


def test_chunked_writes_stop_at_a_failure_and_keep_what_came_before(engine, chunk_per_item) -> None:
    items = [create_aes(V14)] * ITEMS
    items[ITEMS - 3] = item(Operation.ACTIVATE, unique_identifier="missing")
    result = run(engine, V14, *items, batch_error_continuation_option=STOP)
    assert len(result.batch_items) == ITEMS - 2
    failure(result.batch_items[-1], ResultReason.ITEM_NOT_FOUND)
    for created in result.batch_items[:-1]:
        assert one(engine, V14, item(Operation.GET, unique_identifier=ok(created).unique_identifier))


def test_chunked_writes_continue_past_a_failure(engine, chunk_per_item) -> None:
    items = [create_aes(V14)] * ITEMS
    items[5] = item(Operation.ACTIVATE, unique_identifier="missing")
    result = run(engine, V14, *items, batch_error_continuation_option=CONTINUE)
    statuses = [i.result_status for i in result.batch_items]
    assert statuses.count(ResultStatus.SUCCESS) == ITEMS - 1
    assert statuses[5] == ResultStatus.OPERATION_FAILED


def test_a_large_undo_message_stays_one_transaction(engine, chunk_per_item) -> None:
    items = [create_aes(V14)] * ITEMS + [item(Operation.ACTIVATE, unique_identifier="missing")]
    result = run(engine, V14, *items, batch_error_continuation_option=UNDO)
    statuses = [i.result_status for i in result.batch_items]
    assert statuses == [ResultStatus.OPERATION_UNDONE] * ITEMS + [ResultStatus.OPERATION_FAILED]
    for undone in result.batch_items[:3]:
        lookup = one(engine, V14, item(Operation.GET, unique_identifier=undone.payload.unique_identifier))
        failure(lookup, ResultReason.ITEM_NOT_FOUND)


def _counting_reads(engine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the read transactions the engine's repository opens from now on."""
    opened: list[int] = []
    read = engine.repository.read

    def counted():
        opened.append(1)
        return read()

    monkeypatch.setattr(engine.repository, "read", counted)
    return opened


def test_a_large_read_message_runs_in_chunks_of_read_transactions(engine, chunk_per_item, monkeypatch) -> None:
    # One snapshot held for a whole large message would keep SQLite's write-ahead log from
    # being emptied, which a Destroy waits for (storage/sqlite.py).
    uid = create(engine)
    opened = _counting_reads(engine, monkeypatch)
    result = run(engine, V14, *[item(Operation.GET_ATTRIBUTES, unique_identifier=uid)] * ITEMS)
    assert [ok(answer).unique_identifier for answer in result.batch_items] == [uid] * ITEMS
    assert len(opened) == ITEMS


def test_gets_of_fresh_keys_in_a_large_message_write_when_they_must(engine, chunk_per_item) -> None:
    uids = [create(engine) for _ in range(ITEMS)]
    result = run(engine, V14, *[item(Operation.GET, unique_identifier=uid) for uid in uids])
    assert [ok(got).unique_identifier for got in result.batch_items] == uids
    with engine.repository.read() as session:
        fresh = [session.get_attributes(uid, ["Fresh"]) for uid in uids]
    assert {tuple(attribute.number for attribute in found) for found in fresh} == {(0,)}  # all served


class _FailingCustody:
    """The real custody, except that every wrap fails as a broken token's would."""

    def __init__(self, inner) -> None:
        self._inner = inner

    def wrap(self, plaintext: bytes, context: bytes) -> bytes:
        raise CustodyError("the PKCS#11 token failed to wrap a key value (DeviceError)")

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


def test_a_repeated_custody_failure_is_logged_once_then_counted(engine, caplog) -> None:
    engine.custody = _FailingCustody(engine.custody)
    with caplog.at_level(logging.ERROR, logger="strongroom.engine"):
        for _ in range(300):
            result = one(engine, V14, create_aes(V14))
            assert result.result_status == ResultStatus.OPERATION_FAILED
        engine._failures.flush()
    messages = [r.getMessage() for r in caplog.records if r.name == "strongroom.engine"]
    assert messages == [
        "key custody failed during Create: the PKCS#11 token failed to wrap a key value (DeviceError)",
        "key custody failed during Create: the PKCS#11 token failed to wrap a key value (DeviceError)"
        + messages[1][messages[1].index(" (repeated") :],
    ]
    assert "(repeated 299 times in the last" in messages[1]
