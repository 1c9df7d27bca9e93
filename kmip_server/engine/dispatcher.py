"""One request message in, one response message out.

The dispatcher decodes the message, runs each batch item's handler from the registry inside
one storage transaction, applies the Batch Error Continuation Option, and encodes the
response. It is the only place where failures become batch-item results: handlers raise
:class:`KmipError`; anything else becomes General Failure, logged here and never sent.

Durability: the transaction commits before the response is encoded, so a Unique Identifier
a client sees is already on disk. A message whose items only read runs in a read transaction.

Large messages (more than LARGE_MESSAGE_ITEMS batch items; at most ``max_batch_items``, the
rest refused from the Batch Count before decoding): the transport runs them on a thread of
their own beside the event loop (transport/large.py), so the dispatcher is used from two
threads. What that needs here: write transactions take turns on a lock (the store's
cross-process writer lock is one ``flock`` per process, which two threads of the process
would both pass, the second then waiting in SQLite's polling busy handler on the event loop);
and a large message, unless under Undo, runs its items in transactions of about
_CHUNK_SECONDS (:meth:`Dispatcher._run_in_chunks`), so the event loop's writers, and other
processes', wait at most that long, and no read snapshot lasts longer either. Only Undo keeps a message in one transaction, as it must,
and so holds the writers back for the whole message: that is what the cap bounds. The token
session serialises its calls itself (custody/pkcs11.py); read connections are per thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from kmip_client.protocol.errors import KmipError, ProtocolError
from kmip_client.protocol.model import (
    RawPayload,
    RequestBatchItem,
    RequestMessage,
    ResponseBatchItem,
    ResponseHeader,
    ResponseMessage,
    version_conflicts,
)
from kmip_client.protocol.model.base import EncodedItem, to_bytes
from kmip_client.protocol.model.messages import decode_message
from kmip_client.protocol.spec.enums import BatchErrorContinuationOption, ResultReason, ResultStatus

from ..config import ListenerSettings
from ..custody import CustodyError, KeyCustody
from ..logsafe import RepeatLimiter
from ..policy import Policy
from ..storage.repository import Repository
from .batch_limits import LARGE_MESSAGE_ITEMS, peek_request_header
from .context import RequestContext, WriteNeeded
from .identity import ClientIdentity
from .quirks import tolerated
from .registry import HANDLERS, OperationSpec
from .responses import encoded_response_header, error_response, failure_item, invalid_message_response, response_header
from .versions import SUPPORTED_VERSIONS

log = logging.getLogger("strongroom.engine")
audit = logging.getLogger("strongroom.audit")
# Operation (tag 42005C), Enumeration, length 4: what precedes each batch item's operation.
_OPERATION_TTLV = bytes.fromhex("42005C0500000004")

Version = tuple[int, int]

_CONTINUE = BatchErrorContinuationOption.CONTINUE
_UNDO = BatchErrorContinuationOption.UNDO
_SUCCESS = ResultStatus.SUCCESS
_UNDONE = ResultStatus.OPERATION_UNDONE
# How long one transaction of a large message's writes may run (see _run_in_chunks): the
# longest the worker's other writers wait for it, and each chunk still costs only one commit.
_CHUNK_SECONDS = 0.02
_NO_LOCK = contextlib.nullcontext()


class _Rollback(Exception):
    """Leaves a message's transaction or savepoint without keeping its writes (a failed
    single-item message, or a failure under Undo); carries the results to report."""

    def __init__(self, results: list[ResponseBatchItem]) -> None:
        super().__init__()
        self.results = results


class _GroupAborted(Exception):
    """A message of a group must be rolled back: the group's transaction is abandoned."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Prepared:
    message: RequestMessage
    version: Version
    specs: list[OperationSpec | None]
    writes: bool


class Dispatcher:
    """The server's message handler: ``handle(request_bytes, identity) -> response_bytes``."""

    def __init__(
        self,
        repository: Repository,
        custody: KeyCustody,
        policy: Policy,
        *,
        clock: Callable[[], float] = time.time,
        test_harness: bool = False,
        max_batch_items: int = ListenerSettings.max_batch_items,
    ) -> None:
        self.repository = repository
        self.custody = custody
        self.policy = policy
        self.clock = clock
        self.max_batch_items = max_batch_items
        # Held for every write transaction: the transport's thread for large messages and the
        # event loop both write (see the module docstring).
        self._write_lock = threading.Lock()
        # A store or token failing under load fails every request alike: one traceback, then counts.
        self._failures = RepeatLimiter(log)
        # The Interop operation "SHALL NOT be available in a production server" (KMIP 2.1
        # 6.1.26): only a server configured for conformance testing answers it.
        self.test_harness = test_harness
        #: Called first by :meth:`close`: what runs beside the dispatcher on its token session
        #: (the worker's rotation scheduler) stops before the session closes.
        self.on_close: list[Callable[[], None]] = []

    def close(self) -> None:
        """Release the store's connections and the token session (a worker is exiting)."""
        for stop in self.on_close:
            try:
                stop()
            except Exception:  # noqa: BLE001 - closing goes on whatever one of them did
                log.exception("stopping a companion of the dispatcher failed")
        self._failures.flush()
        try:
            self.repository.dispose()
        finally:
            self.custody.close()

    # ------------------------------------------------------------------ message level

    def handle(self, data: bytes, identity: ClientIdentity) -> bytes:
        """Answer one request message."""
        return self.handle_many([(data, identity)])[0]

    def handle_many(self, requests: Sequence[tuple[bytes, ClientIdentity]]) -> list[bytes]:
        """Answer several request messages (from any connections), in order.

        The messages that write share one storage transaction and so one durable commit (group
        commit), and no response goes out before the commit; a message whose writes must be
        undone makes the group run again message by message (see :meth:`_in_transaction`).
        The read-only messages share one read transaction (one snapshot, taken after all of
        them arrived), which saves a BEGIN and COMMIT each: +10% Gets/s at 16 connections.
        """
        prepared = [self._prepare(data) for data, _ in requests]
        outcomes: list[list[ResponseBatchItem] | bytes | None] = [p if isinstance(p, bytes) else None for p in prepared]
        # Large messages run on their own, in chunks (see _run_in_chunks), readers too.
        chunked = [i for i, p in enumerate(prepared) if not isinstance(p, bytes) and _chunked(p)]
        writers = [i for i, p in enumerate(prepared) if not isinstance(p, bytes) and p.writes and i not in chunked]
        readers = [i for i, p in enumerate(prepared) if not isinstance(p, bytes) and not p.writes and i not in chunked]
        if readers:
            results = self._in_transaction([prepared[i] for i in readers], [requests[i][1] for i in readers])  # type: ignore[misc]
            for i, result in zip(readers, results, strict=True):
                if result is None:
                    # A handler found it must write (a Get of a Fresh object): the message
                    # runs again with the writers.
                    prepared[i] = dataclasses.replace(prepared[i], writes=True)
                    writers.append(i)
                else:
                    outcomes[i] = result
            writers.sort()
        for i in chunked:
            outcomes[i] = self._run_in_chunks(prepared[i], requests[i][1])  # type: ignore[arg-type]
        if writers:
            done = self._before_writing([prepared[i] for i in writers])  # type: ignore[misc]
            try:
                results = self._in_transaction([prepared[i] for i in writers], [requests[i][1] for i in writers])  # type: ignore[misc]
            finally:
                for release in done:
                    release()
            for i, result in zip(writers, results, strict=True):
                outcomes[i] = result
        return [
            outcome if isinstance(outcome, bytes) else self._encode(prepared[i], outcome)  # type: ignore[arg-type]
            for i, outcome in enumerate(outcomes)
        ]

    def _before_writing(self, messages: list[_Prepared]) -> list[Callable[[], None]]:
        """Run the items' slow work that needs no transaction (OperationSpec.before: an RSA key
        pair from the token) before the write transaction; what to call once they are done."""
        releases = []
        for message in messages:
            for item, spec in zip(message.message.batch_items, message.specs, strict=True):
                if spec is not None and spec.before is not None and item.payload is not None:
                    release = spec.before(item.payload, self.custody)
                    if release is not None:
                        releases.append(release)
        return releases

    def writes(self, data: bytes) -> bool:
        """Whether the request message ``data`` likely writes, from a scan for its Operation
        items rather than a decode: the transport holds such messages back briefly to commit
        more of them together. A false answer either way costs only that wait or that chance."""
        at = data.find(_OPERATION_TTLV)
        while at >= 0:
            spec = HANDLERS.get(int.from_bytes(data[at + 8 : at + 12], "big"))
            if spec is not None and spec.writes:
                return True
            at = data.find(_OPERATION_TTLV, at + 12)
        return False

    def _prepare(self, data: bytes) -> _Prepared | bytes:
        """The decoded, checked message with its handlers; or the error response to send."""
        version, count = peek_request_header(data)
        if count is not None and count > self.max_batch_items:
            # Refused before decoding: a message of thousands of items is most of a second's
            # work to decode alone.
            return self._refuse(None, version or (1, 0), self._too_many(count))
        try:
            message = decode_message(data)
        except ProtocolError as exc:
            return invalid_message_response(f"cannot decode the request: {exc}")
        if not isinstance(message, RequestMessage):
            return invalid_message_response("expected a RequestMessage")
        version = message.protocol_version
        problem = self._header_problem(message, version)
        if problem is not None:
            return self._refuse(message, version, problem)
        specs = [HANDLERS.get(item.operation) if item.operation is not None else None for item in message.batch_items]
        return _Prepared(message, version, specs, any(spec is not None and spec.writes for spec in specs))

    def _encode(self, prepared: _Prepared, items: list[ResponseBatchItem]) -> bytes:
        message, version = prepared.message, prepared.version
        assert message.header is not None
        # A Client Correlation Value is not echoed: the response header has no such duty, and
        # none of the OASIS test cases' responses carries one.
        header: ResponseHeader | EncodedItem = encoded_response_header(version, len(items))
        response = to_bytes(ResponseMessage(header=header, batch_items=tuple(items)))  # type: ignore[arg-type]
        limit = message.header.maximum_response_size
        if limit is not None and len(response) > limit:
            error = KmipError(
                f"the response is {len(response)} bytes, above the Maximum Response Size of {limit}",
                ResultReason.RESPONSE_TOO_LARGE,
            )
            failed = [failure_item(error, item.operation, item.unique_batch_item_id) for item in items]
            response = to_bytes(
                ResponseMessage(header=response_header(version, len(failed)), batch_items=tuple(failed))
            )
        return response

    def _header_problem(self, message: RequestMessage, version: Version) -> KmipError | None:
        header = message.header
        if header is None or header.protocol_version is None:
            return KmipError("the request has no Request Header with a Protocol Version", ResultReason.INVALID_MESSAGE)
        if version not in SUPPORTED_VERSIONS:
            return KmipError(
                f"protocol version {version[0]}.{version[1]} is not supported; this server speaks "
                + ", ".join(f"{v[0]}.{v[1]}" for v in reversed(SUPPORTED_VERSIONS)),
                ResultReason.UNSUPPORTED_PROTOCOL_VERSION if version >= (2, 0) else ResultReason.INVALID_MESSAGE,
            )
        if not message.batch_items:
            return KmipError("the request has no Batch Item", ResultReason.INVALID_MESSAGE)
        if header.batch_count is not None and header.batch_count != len(message.batch_items):
            return KmipError(
                f"Batch Count is {header.batch_count} but the message has {len(message.batch_items)} batch items",
                ResultReason.INVALID_MESSAGE,
            )
        if len(message.batch_items) > self.max_batch_items:
            return self._too_many(len(message.batch_items))
        return None

    def _too_many(self, count: int) -> KmipError:
        # Invalid Message: every operation of KMIP 1.x and 2.x lists it, for a message the
        # server will not process. Response Too Large is about the response's size (and the
        # client's own Maximum Response Size); Server Limit Exceeded is a 2.x reason of some
        # operations only, about the objects stored.
        return KmipError(
            f"the message has {count} batch items; this server accepts at most {self.max_batch_items} per "
            "message (listener.max_batch_items): send them in several messages",
            ResultReason.INVALID_MESSAGE,
        )

    def _refuse(self, message: RequestMessage | None, version: Version, error: KmipError) -> bytes:
        if version not in SUPPORTED_VERSIONS:
            version = (2, 1) if version >= (2, 0) else (1, 4) if version >= (1, 0) else (1, 0)
        return error_response(error, version)

    # ------------------------------------------------------------------ batch level

    def _in_transaction(
        self, group: list[_Prepared], identities: list[ClientIdentity]
    ) -> list[list[ResponseBatchItem]]:
        """Run messages in one transaction (a write one if any of them writes) and commit.

        A group runs optimistically, without a savepoint per message (two statements each):
        if one message's writes must be undone, the whole transaction is rolled back, nothing
        having been committed or answered, and every message runs again on its own.
        """
        if len(group) == 1:
            return self._transaction(group, identities, grouped=False)
        try:
            return self._transaction(group, identities, grouped=True)
        except _GroupAborted:
            return [self._transaction([p], [i], grouped=False)[0] for p, i in zip(group, identities, strict=True)]

    def _transaction(
        self, group: list[_Prepared], identities: list[ClientIdentity], *, grouped: bool
    ) -> list[list[ResponseBatchItem]]:
        writes = group[0].writes
        results: list[list[ResponseBatchItem]] = []
        try:
            with (
                self._write_lock if writes else _NO_LOCK,
                self.repository.write() if writes else self.repository.read() as session,
            ):
                now = int(self.clock())
                for prepared, identity in zip(group, identities, strict=True):
                    try:
                        results.append(self._run_message(session, prepared, identity, now))
                    except WriteNeeded:
                        results.append(None)  # type: ignore[arg-type]  # runs again as a write
                    except _Rollback as rollback:
                        if grouped:
                            raise _GroupAborted from None
                        results.append(rollback.results)
                        raise
                    if grouped and session.aborted:
                        # A failed statement spoiled the transaction for the messages after
                        # this one (PostgreSQL): each runs again on its own.
                        raise _GroupAborted
        except _Rollback:
            pass  # the failed message's results are in ``results``; leaving the block undid its writes
        except _GroupAborted:
            raise
        except Exception as exc:  # noqa: BLE001 - the commit (or opening the transaction) failed; logged there
            error = self._storage_failed(exc)
            return [
                [failure_item(error, item.operation, item.unique_batch_item_id) for item in p.message.batch_items]
                for p in group
            ]
        return results

    def _run_message(
        self, session: Any, prepared: _Prepared, identity: ClientIdentity, now: int
    ) -> list[ResponseBatchItem]:
        """Run the batch items of one message; raises :class:`_Rollback` when its writes must go."""
        message = prepared.message
        option = _option(message)
        ctx = self._context(session, prepared, identity, now)
        writes = prepared.writes
        single = len(message.batch_items) == 1
        results: list[ResponseBatchItem] = []
        for item, spec in zip(message.batch_items, prepared.specs, strict=True):
            result = self._run_item(ctx, item, spec, savepoint=writes and not single)
            results.append(result)
            if result.result_status == _SUCCESS or option == _CONTINUE:
                continue
            if option == _UNDO:
                results[:-1] = [_undone(done) for done in results[:-1]]
                raise _Rollback(results)
            break  # Stop: earlier items stand; the failed one's savepoint was rolled back
        if writes and single and results[0].result_status != _SUCCESS:
            raise _Rollback(results)
        return results

    def _context(self, session: Any, prepared: _Prepared, identity: ClientIdentity, now: int) -> RequestContext:
        return RequestContext(
            identity=identity,
            version=prepared.version,
            session=session,
            custody=self.custody,
            policy=self.policy,
            now=now,
            test_harness=self.test_harness,
        )

    def _run_in_chunks(self, prepared: _Prepared, identity: ClientIdentity) -> list[ResponseBatchItem]:
        """Run a large message, not under Undo, as consecutive transactions of about
        _CHUNK_SECONDS each, so the writer lock is free between them (see the module
        docstring). What the client sees is what one transaction would give: each item's
        result, earlier items standing under Stop, the ID Placeholder carried along (the
        context outlives the transactions). Only other clients may see the first items'
        writes before the response, which no KMIP client can tell from a fast server.

        A message that only reads runs in read transactions of that length: one snapshot held
        for seconds would keep SQLite from emptying its write-ahead log, which a Destroy
        waits for while it holds the writer lock (storage/sqlite.py). An item that finds it
        must write (a Get of a Fresh object) runs again, with the rest, in write transactions."""
        message = prepared.message
        option = _option(message)
        items = list(zip(message.batch_items, prepared.specs, strict=True))
        results: list[ResponseBatchItem] = []
        ctx: RequestContext | None = None
        at = 0
        stopped = False
        writes = prepared.writes
        while at < len(items) and not stopped:
            first = at
            chunk: list[ResponseBatchItem] = []
            try:
                with (
                    self._write_lock if writes else _NO_LOCK,
                    self.repository.write() if writes else self.repository.read() as session,
                ):
                    now = int(self.clock())
                    if ctx is None:
                        ctx = self._context(session, prepared, identity, now)
                    else:
                        ctx.session, ctx.now = session, now
                    deadline = time.monotonic() + _CHUNK_SECONDS
                    while at < len(items):
                        item, spec = items[at]
                        try:
                            result = self._run_item(ctx, item, spec, savepoint=writes)
                        except WriteNeeded:
                            writes = True  # this item again, in a write transaction
                            break
                        at += 1
                        chunk.append(result)
                        if result.result_status != _SUCCESS and option != _CONTINUE:
                            stopped = True  # Stop: earlier items stand (Undo never gets here)
                            break
                        if time.monotonic() >= deadline:
                            break
            except Exception as exc:  # noqa: BLE001 - as in _transaction
                error = self._storage_failed(exc)
                chunk = [failure_item(error, item.operation, item.unique_batch_item_id) for item, _ in items[first:at]]
                stopped = stopped or option != _CONTINUE
            results.extend(chunk)
        return results

    def _storage_failed(self, exc: Exception) -> KmipError:
        """Log a failed transaction (once per burst of the same failure) and say what to answer."""
        self._failures.error("storage transaction failed: %s", _describe(exc), exc_info=not isinstance(exc, KmipError))
        return exc if isinstance(exc, KmipError) else KmipError("the server could not store the result")

    def _run_item(
        self, ctx: RequestContext, item: RequestBatchItem, spec: OperationSpec | None, *, savepoint: bool
    ) -> ResponseBatchItem:
        try:
            payload = self._checked_payload(ctx, item, spec)
            assert spec is not None
            if savepoint:
                with ctx.session.savepoint():
                    response_payload = spec.handler(ctx, payload)
            else:
                response_payload = spec.handler(ctx, payload)
        except WriteNeeded:
            raise
        except KmipError as exc:
            self._audit(ctx, item, exc.reason.name)
            return failure_item(exc, item.operation, item.unique_batch_item_id)
        except CustodyError as exc:
            self._failures.error("key custody failed during %s: %s", _op_name(item), exc)
            error = KmipError("the key custody token failed; nothing was changed", ResultReason.GENERAL_FAILURE)
            return failure_item(error, item.operation, item.unique_batch_item_id)
        except Exception as exc:  # noqa: BLE001 - a handler's bug: logged with its traceback, answered as such
            self._failures.error("internal error during %s: %s", _op_name(item), _describe(exc), exc_info=True)
            error = KmipError("internal server error", ResultReason.GENERAL_FAILURE)
            return failure_item(error, item.operation, item.unique_batch_item_id)
        self._audit(ctx, item, "Success")
        return ResponseBatchItem(
            operation=item.operation,
            unique_batch_item_id=item.unique_batch_item_id,
            result_status=_SUCCESS,
            payload=response_payload,
        )

    def _checked_payload(self, ctx: RequestContext, item: RequestBatchItem, spec: OperationSpec | None) -> Any:
        if item.operation is None:
            raise KmipError("the batch item has no Operation", ResultReason.INVALID_MESSAGE)
        if spec is None or ctx.version < spec.min_version or (spec.harness and not ctx.test_harness):
            raise KmipError(f"operation {_op_name(item)} is not supported", ResultReason.OPERATION_NOT_SUPPORTED)
        payload = item.payload
        if payload is None or isinstance(payload, RawPayload):
            raise KmipError(f"{_op_name(item)} needs a Request Payload", ResultReason.INVALID_MESSAGE)
        # A field of a later version is refused unless a named client needs it (quirks.py).
        conflicts = [path for path in version_conflicts(payload, ctx.version) if not tolerated(path)]
        if conflicts:
            raise KmipError(
                f"field(s) not defined in KMIP {ctx.version[0]}.{ctx.version[1]}: {', '.join(conflicts)}",
                ResultReason.INVALID_FIELD,
            )
        return payload

    def _audit(self, ctx: RequestContext, item: RequestBatchItem, outcome: str) -> None:
        if audit.isEnabledFor(logging.INFO):
            audit.info("identity=%s operation=%s result=%s", ctx.identity.name, _op_name(item), outcome)


def _option(message: RequestMessage) -> int:
    # An int, not the enum: a value the enum lacks is the client's, compared like the rest.
    assert message.header is not None
    return message.header.batch_error_continuation_option or BatchErrorContinuationOption.STOP


def _chunked(prepared: _Prepared) -> bool:
    """Whether a message runs in chunks of transactions: a large one, unless under Undo."""
    return len(prepared.message.batch_items) > LARGE_MESSAGE_ITEMS and _option(prepared.message) != _UNDO


def _undone(item: ResponseBatchItem) -> ResponseBatchItem:
    # The payload stays, as the OASIS test cases show (v2.1 BL-M-2): it says what the item did
    # before it was undone (a Create's identifier, which then names nothing).
    return item if item.result_status != _SUCCESS else dataclasses.replace(item, result_status=_UNDONE)


def _op_name(item: RequestBatchItem) -> str:
    op = item.operation
    return getattr(op, "name", None) or f"0x{int(op or 0):08X}"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


__all__ = ["Dispatcher", "SUPPORTED_VERSIONS"]
