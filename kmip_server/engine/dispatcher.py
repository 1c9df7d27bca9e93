"""One request message in, one response message out: the engine's one choke point.

The dispatcher decodes the message (engine/messages.py), authenticates it, runs each batch
item through the same hooks (engine/items.py: authorize, the handler, metrics; the access
gate of engine/access.py for the objects it loads) inside one storage transaction, applies
the Batch Error Continuation Option, writes one audit record per batch item, and encodes the
response. It is the only place where failures become batch-item results: handlers raise
:class:`KmipError`; anything else becomes General Failure, logged here and never sent.

Audit: the records of a message's items are appended to the HMAC-chained trail
(kmip_server/audit) in the transaction that makes its changes, just before the commit, so the
trail is in commit order; a message whose writes are rolled back gets its records (failed or
Operation Undone, no attributes changed) in a transaction of their own; a group that runs
again message by message is recorded once, as it finally ran. Read-only messages run in a read
transaction (concurrently with the other workers' writers) and their records, with any write
they left behind (the Fresh flag a Get clears), follow in one short write transaction before
the answers go out. If the records cannot be written, the messages fail and nothing changes.

Durability: the transaction commits before the response is encoded, so a Unique Identifier
a client sees is already on disk. The records of messages that changed nothing are committed
before the answer too, but without waiting for the disk (see :meth:`_commit_read_records`).

Large messages (more than LARGE_MESSAGE_ITEMS batch items; at most ``max_batch_items``, the
rest refused from the Batch Count before decoding): the transport runs them on a thread of
their own beside the event loop (transport/large.py), so the dispatcher is used from two
threads. What that needs here: write transactions take turns on a lock (the store's
cross-process writer lock is one ``flock`` per process, which two threads of the process
would both pass, the second then waiting in SQLite's polling busy handler on the event loop);
and a large message, unless under Undo, runs its items in transactions of about
_CHUNK_SECONDS (:meth:`Dispatcher._run_in_chunks`), so the event loop's writers, and other
processes', wait at most that long, and no read snapshot lasts longer either. Only Undo keeps
a message in one transaction, as it must, and so holds the writers back for the whole
message: that is what the cap bounds. The token session serialises its calls itself
(custody/pkcs11.py); read connections are per thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.model import RequestBatchItem, ResponseBatchItem
from kmip_client.protocol.model.base import decode_struct
from kmip_client.protocol.spec.enums import BatchErrorContinuationOption, ResultStatus
from kmip_client.protocol.ttlv import decode

from ..audit import AuditEvent, AuditTrail
from ..config import ListenerSettings
from ..custody import KeyCustody
from ..logformat import item_fields
from ..logsafe import RepeatLimiter
from ..policy import Policy
from ..policy.credentials import CredentialStore
from ..policy.facts import Principal
from ..storage.repository import Repository, Session
from .context import RequestContext, WriteNeeded
from .identity import ClientIdentity
from .items import (
    Approvals,
    ItemRunner,
    Metrics,
    NoMetrics,
    Trace,
    describe,
    item_operation,
    reason_name,
    status_name,
)
from .messages import Prepared, Refused, encode, prepare, refuse
from .registry import HANDLERS
from .responses import failure_item
from .versions import SUPPORTED_VERSIONS

log = logging.getLogger("strongroom.engine")
# The trail's records, logged too at DEBUG (before the commit: a log is not the trail).
audit_log = logging.getLogger("strongroom.audit")

_CONTINUE = BatchErrorContinuationOption.CONTINUE
_UNDO = BatchErrorContinuationOption.UNDO
_SUCCESS = ResultStatus.SUCCESS
_PENDING = ResultStatus.OPERATION_PENDING
_UNDONE = ResultStatus.OPERATION_UNDONE
# How long one transaction of a large message's writes may run (see _run_in_chunks): the
# longest the worker's other writers wait for it, and each chunk still costs only one commit.
_CHUNK_SECONDS = 0.02
_HANDOFF_SECONDS = 0.0005
_NO_LOCK = contextlib.nullcontext()
_MESSAGE = "(message)"  # the audit trail's operation for a message refused as a whole


@dataclasses.dataclass(slots=True)
class _Outcome:
    """What one message did in one transaction: its results, what each item's audit record
    says besides, and the writes its read-only items left for the record transaction."""

    results: list[ResponseBatchItem]
    traces: list[Trace]
    deferred: list[Callable[[Session], None]]
    rolled_back: bool = False


class _Rollback(Exception):
    """Leaves a message's transaction without keeping its writes (a failed single-item
    message, or a failure under Undo); carries the outcome to report."""

    def __init__(self, outcome: _Outcome) -> None:
        super().__init__()
        self.outcome = outcome


class _GroupAborted(Exception):
    """A message of a group must be rolled back: the group's transaction is abandoned."""


class Dispatcher:
    """The server's message handler: ``handle(request_bytes, identity) -> response_bytes``."""

    #: Every message commits (its audit records at least), so the transport may hold
    #: messages back briefly to commit more of them together (transport/listener.py).
    commits_every_message = True

    def __init__(
        self,
        repository: Repository,
        custody: KeyCustody,
        policy: Policy,
        *,
        clock: Callable[[], float] = time.time,
        test_harness: bool = False,
        max_batch_items: int = ListenerSettings.max_batch_items,
        node: str | None = None,
        credentials: CredentialStore | None = None,
        metrics: Metrics | None = None,
        approvals: Approvals | None = None,
        sync_read_records: bool = False,
    ) -> None:
        self.repository = repository
        #: Whether the records of read-only messages and refusals wait for the disk too (see
        #: _record_apart and [storage] sync_read_records).
        self.sync_read_records = sync_read_records
        self.custody = custody
        self.policy = policy
        self.clock = clock
        self.max_batch_items = max_batch_items
        self.node = node or socket.gethostname()
        self.credentials = credentials
        self.audit = AuditTrail(custody, self.node)
        # Held for every write transaction: the transport's thread for large messages and the
        # event loop both write (see the module docstring).
        self._write_lock = threading.Lock()
        # A store or token failing under load fails every request alike: one traceback, then counts.
        self._failures = RepeatLimiter(log)
        self.items = ItemRunner(self._failures, metrics or NoMetrics(), approvals)
        # The Interop operation "SHALL NOT be available in a production server" (KMIP 2.1
        # 6.1.26): only a server configured for conformance testing answers it.
        self.test_harness = test_harness
        #: Called first by :meth:`close`: what runs beside the dispatcher on its token session
        #: (the worker's rotation scheduler) stops before the session closes.
        self.on_close: list[Callable[[], None]] = []
        #: The approvers' desk the HTTPS approvals route uses (engine/app.py sets it).
        self.approval_desk: Any = None

    @property
    def approvals(self) -> Approvals | None:
        return self.items.approvals

    @approvals.setter
    def approvals(self, service: Approvals | None) -> None:
        self.items.approvals = service

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

    def reload_policy(self, policy: Policy) -> None:
        """Use ``policy`` from the next message on (SIGHUP: engine/app.py)."""
        self.policy = policy
        if self.approval_desk is not None:
            self.approval_desk.policy = policy

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
        them arrived), then one write transaction for their audit records.
        """
        self.items.metrics.batch(len(requests))
        policy = self.policy
        admitted = [self._admitted(data, policy.principal(identity), policy) for data, identity in requests]
        prepared = [message for message, _ in admitted]
        principals = [principal for _, principal in admitted]
        outcomes: list[_Outcome | None] = [None] * len(requests)
        refusals = [i for i, p in enumerate(prepared) if isinstance(p, Refused)]
        chunked = [i for i, p in enumerate(prepared) if isinstance(p, Prepared) and p.chunked]
        runs = [i for i, p in enumerate(prepared) if isinstance(p, Prepared) and not p.chunked]
        writers = [i for i in runs if prepared[i].writes]  # type: ignore[union-attr]
        readers = [i for i in runs if not prepared[i].writes]  # type: ignore[union-attr]
        records: list[tuple[int, _Outcome]] = []  # read outcomes and refusals, recorded together
        if readers:
            results = self._in_transaction(
                [prepared[i] for i in readers],  # type: ignore[misc]
                [requests[i][1] for i in readers],
                [principals[i] for i in readers],
            )
            for i, outcome in zip(readers, results, strict=True):
                if outcome is None:
                    # A handler found it must write (a streamed or usage-limited operation):
                    # the message runs again with the writers.
                    prepared[i] = dataclasses.replace(prepared[i], writes=True)  # type: ignore[arg-type]
                    writers.append(i)
                else:
                    outcomes[i] = outcome
                    records.append((i, outcome))
            writers.sort()
        if records or refusals:
            self._record_apart(records, refusals, prepared, requests, principals, outcomes)
        for i in chunked:
            outcomes[i] = self._run_in_chunks(prepared[i], requests[i][1], principals[i])  # type: ignore[arg-type]
        if writers:
            done = self._before_writing([prepared[i] for i in writers])  # type: ignore[misc]
            try:
                results = self._in_transaction(
                    [prepared[i] for i in writers],  # type: ignore[misc]
                    [requests[i][1] for i in writers],
                    [principals[i] for i in writers],
                )
            finally:
                for release in done:
                    release()
            for i, outcome in zip(writers, results, strict=True):
                outcomes[i] = outcome
        return [
            p.response if isinstance(p, Refused) else encode(p, outcomes[i].results)  # type: ignore[union-attr]
            for i, p in enumerate(prepared)
        ]

    def _admitted(self, data: bytes, principal: Principal, policy: Policy) -> tuple[Prepared | Refused, Principal]:
        """The decoded message and its sender, authenticated (the KMIP Credential, when the
        message has one or the policy asks for one); or its refusal."""
        prepared = prepare(data, self.max_batch_items)
        if isinstance(prepared, Refused):
            return prepared, principal
        header = prepared.message.header
        assert header is not None
        username = password = None
        if header.authentication is not None:
            for credential in header.authentication.credentials:
                value = credential.credential_value
                if value is not None and value.username is not None:
                    username, password = value.username, value.password
                    break
        try:
            principal = policy.authenticate(principal, username, password, self.credentials)
        except KmipError as exc:
            return refuse(prepared.version, exc), principal
        return prepared, principal

    def _before_writing(self, messages: list[Prepared]) -> list[Callable[[], None]]:
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

    # ------------------------------------------------------------------ audit records

    def _events(
        self, identity: ClientIdentity, principal: Principal, outcome: _Outcome, now: float
    ) -> list[AuditEvent]:
        return [
            AuditEvent(
                time=now,
                node=self.node,
                identity=principal.name,
                address=identity.address,
                fingerprint=identity.fingerprint,
                operation=trace.operation,
                object_ids=trace.object_ids,
                attributes=() if outcome.rolled_back else trace.attributes,
                result=status_name(result),
                reason=reason_name(result),
                detail=trace.detail,
            )
            for result, trace in zip(outcome.results, outcome.traces, strict=True)
        ]

    def _refusal_event(self, identity: ClientIdentity, principal: Principal, refused: Refused) -> AuditEvent:
        return AuditEvent(
            time=self.clock(),
            node=self.node,
            identity=principal.name,
            address=identity.address,
            fingerprint=identity.fingerprint,
            operation=_MESSAGE,
            object_ids=(),
            attributes=(),
            result="Operation Failed",
            reason=refused.reason,
            detail=refused.detail,
        )

    def _write_records(
        self, session: Session, events: list[AuditEvent], deferred: list[Callable[[Session], None]]
    ) -> None:
        for write in deferred:
            write(session)
        if events:
            self.audit.append(session.connection, events)
            if audit_log.isEnabledFor(logging.DEBUG):
                for e in events:
                    audit_log.debug(
                        "identity=%s operation=%s result=%s reason=%s objects=%s",
                        e.identity,
                        e.operation,
                        e.result,
                        e.reason,
                        ",".join(e.object_ids) or "-",
                        extra=item_fields(e.address, e.identity, e.operation, e.object_ids),
                    )

    def _commit_read_records(self, events: list[AuditEvent], deferred: list[Callable[[Session], None]]) -> None:
        """The records of read-only messages and refusals, and the writes the reads left behind
        (``deferred``), in a write transaction of their own. Records of what changed nothing
        commit without waiting for the disk unless asked (Repository.write durable=False):
        they are in the log before the answer and on disk by the next checkpoint, and that
        wait was half the time of a batch of Gets. What the reads left to write (Fresh
        cleared, a request held for approval) is a change, and waits as every change does."""
        durable = self.sync_read_records or bool(deferred)
        started = time.perf_counter()
        with self._write_lock, self.repository.write(durable=durable) as session:
            self._write_records(session, events, deferred)
        self.items.metrics.transaction("records", time.perf_counter() - started)

    def _record_apart(
        self,
        records: list[tuple[int, _Outcome]],
        refusals: list[int],
        prepared: list[Prepared | Refused],
        requests: Sequence[tuple[bytes, ClientIdentity]],
        principals: list[Principal],
        outcomes: list[_Outcome | None],
    ) -> None:
        """Write the records of read-only messages and refusals (and the writes the reads left
        behind) in one transaction. If that fails, the reads fail too: nothing was changed."""
        now = self.clock()
        events: list[AuditEvent] = []
        deferred: list[Callable[[Session], None]] = []
        for i in sorted([*refusals, *(i for i, _ in records)]):
            identity, principal = requests[i][1], principals[i]
            refused = prepared[i]
            if isinstance(refused, Refused):
                events.append(self._refusal_event(identity, principal, refused))
            else:
                outcome = outcomes[i]
                assert outcome is not None
                events.extend(self._events(identity, principal, outcome, now))
                deferred.extend(outcome.deferred)
        try:
            self._commit_read_records(events, deferred)
        except Exception as exc:  # noqa: BLE001 - the store or the token failed; logged there
            error = self._storage_failed(exc)
            for i, outcome in records:
                items = prepared[i].message.batch_items  # type: ignore[union-attr]
                outcome.results = [failure_item(error, item.operation, item.unique_batch_item_id) for item in items]

    # ------------------------------------------------------------------ batch level

    def _in_transaction(
        self, group: list[Prepared], identities: list[ClientIdentity], principals: list[Principal]
    ) -> list[_Outcome | None]:
        """Run messages in one transaction (a write one if any of them writes) and commit.

        A group runs optimistically, without a savepoint per message (two statements each):
        if one message's writes must be undone, the whole transaction is rolled back, nothing
        having been committed, answered or recorded, and every message runs again on its own.
        """
        if len(group) == 1:
            return self._transaction(group, identities, principals, grouped=False)
        try:
            return self._transaction(group, identities, principals, grouped=True)
        except _GroupAborted:
            return [
                self._transaction([p], [i], [u], grouped=False)[0]
                for p, i, u in zip(group, identities, principals, strict=True)
            ]

    def _transaction(
        self,
        group: list[Prepared],
        identities: list[ClientIdentity],
        principals: list[Principal],
        *,
        grouped: bool,
    ) -> list[_Outcome | None]:
        writes = group[0].writes
        outcomes: list[_Outcome | None] = []
        rolled_back: _Outcome | None = None
        started = time.perf_counter()
        try:
            with (
                self._write_lock if writes else _NO_LOCK,
                self.repository.write() if writes else self.repository.read() as session,
            ):
                now = int(self.clock())
                for prepared, identity, principal in zip(group, identities, principals, strict=True):
                    try:
                        outcomes.append(self._run_message(session, prepared, identity, principal, now))
                    except WriteNeeded:
                        outcomes.append(None)  # runs again as a write
                    except _Rollback as rollback:
                        if grouped:
                            raise _GroupAborted from None
                        rolled_back = rollback.outcome
                        outcomes.append(rolled_back)
                        raise
                    if grouped and session.aborted:
                        # A failed statement spoiled the transaction for the messages after
                        # this one (PostgreSQL): each runs again on its own.
                        raise _GroupAborted
                if writes:
                    events = [
                        event
                        for outcome, identity, principal in zip(outcomes, identities, principals, strict=True)
                        if outcome is not None
                        for event in self._events(identity, principal, outcome, now)
                    ]
                    self._write_records(session, events, [w for o in outcomes if o is not None for w in o.deferred])
        except _Rollback:
            # Leaving the block undid the message's writes; its records (what was refused,
            # what was undone) go in a transaction of their own.
            assert rolled_back is not None
            self._record_rolled_back(identities[0], principals[0], group[0], rolled_back)
        except _GroupAborted:
            raise
        except Exception as exc:  # noqa: BLE001 - the commit, the audit append or opening the transaction failed
            error = self._storage_failed(exc)
            return [_failed_outcome(error, p) for p in group]
        self.items.metrics.transaction("write" if writes else "read", time.perf_counter() - started)
        return outcomes

    def _record_rolled_back(
        self, identity: ClientIdentity, principal: Principal, prepared: Prepared, outcome: _Outcome
    ) -> None:
        outcome.rolled_back = True
        try:
            with self._write_lock, self.repository.write() as session:
                self._write_records(session, self._events(identity, principal, outcome, self.clock()), [])
        except Exception as exc:  # noqa: BLE001 - as in _transaction: the failure is what the client hears
            error = self._storage_failed(exc)
            items = prepared.message.batch_items
            outcome.results = [failure_item(error, item.operation, item.unique_batch_item_id) for item in items]

    def _run_message(
        self, session: Session, prepared: Prepared, identity: ClientIdentity, principal: Principal, now: int
    ) -> _Outcome:
        """Run the batch items of one message; raises :class:`_Rollback` when its writes must go."""
        message = prepared.message
        option = prepared.option
        ctx = self._context(session, prepared, identity, principal, now)
        writes = prepared.writes
        single = len(message.batch_items) == 1
        outcome = _Outcome([], [], ctx.deferred)
        for item, spec in zip(message.batch_items, prepared.specs, strict=True):
            result, trace = self.items.run(
                ctx, item, spec, savepoint=writes and not single, asynchronous=prepared.asynchronous
            )
            outcome.results.append(result)
            outcome.traces.append(trace)
            if result.result_status in (_SUCCESS, _PENDING) or option == _CONTINUE:
                continue
            if option == _UNDO:
                outcome.results[:-1] = [_undone(done) for done in outcome.results[:-1]]
                raise _Rollback(outcome)
            break  # Stop: earlier items stand; the failed one's savepoint was rolled back
        if writes and single and outcome.results[0].result_status not in (_SUCCESS, _PENDING):
            raise _Rollback(outcome)
        return outcome

    def _context(
        self, session: Session, prepared: Prepared, identity: ClientIdentity, principal: Principal, now: int
    ) -> RequestContext:
        ctx = RequestContext(
            identity=identity,
            version=prepared.version,
            session=session,
            custody=self.custody,
            policy=self.policy,
            now=now,
            principal=principal,
            test_harness=self.test_harness,
        )
        ctx.run_approved = lambda operation, payload: self._run_approved(ctx, operation, payload)
        return ctx

    def _run_approved(self, ctx: RequestContext, operation: int, payload: bytes) -> ResponseBatchItem:
        """Run a stored request whose approval is complete (Poll), in the Poll's transaction:
        the hooks as for any item, the approval not asked again. Its audit record is the Poll's."""
        spec = HANDLERS.get(operation)
        decoded = decode_struct(RequestBatchItem.payload_class(operation), decode(payload))
        item = RequestBatchItem(operation=operation, payload=decoded)  # type: ignore[arg-type]
        runner = dataclasses.replace(ctx, approved=True, operation="", touched=[], deferred=[])
        result, trace = self.items.run(runner, item, spec, savepoint=True, asynchronous=False)
        ctx.touched.extend(trace.object_ids)
        ctx.deferred.extend(runner.deferred)
        return result

    def _run_in_chunks(self, prepared: Prepared, identity: ClientIdentity, principal: Principal) -> _Outcome:
        """Run a large message, not under Undo, as consecutive transactions of about
        _CHUNK_SECONDS each, so the writer lock is free between them (see the module
        docstring). What the client sees is what one transaction would give: each item's
        result, earlier items standing under Stop, the ID Placeholder carried along (the
        context outlives the transactions). Only other clients may see the first items'
        writes before the response, which no KMIP client can tell from a fast server.

        A message that only reads runs in read transactions of that length, each chunk's
        records written after it: one snapshot held for seconds would keep SQLite from
        emptying its write-ahead log, which a Destroy waits for while it holds the writer lock
        (storage/sqlite.py). An item that finds it must write runs again, with the rest, in
        write transactions."""
        message = prepared.message
        option = prepared.option
        items = list(zip(message.batch_items, prepared.specs, strict=True))
        whole = _Outcome([], [], [])
        ctx: RequestContext | None = None
        at = 0
        stopped = False
        writes = prepared.writes
        while at < len(items) and not stopped:
            first = at
            chunk = _Outcome([], [], [])
            try:
                with (
                    self._write_lock if writes else _NO_LOCK,
                    self.repository.write() if writes else self.repository.read() as session,
                ):
                    now = int(self.clock())
                    if ctx is None:
                        ctx = self._context(session, prepared, identity, principal, now)
                    else:
                        ctx.session, ctx.now = session, now
                    ctx.deferred = chunk.deferred
                    deadline = time.monotonic() + _CHUNK_SECONDS
                    while at < len(items):
                        item, spec = items[at]
                        try:
                            result, trace = self.items.run(
                                ctx, item, spec, savepoint=writes, asynchronous=prepared.asynchronous
                            )
                        except WriteNeeded:
                            writes = True  # this item again, in a write transaction
                            break
                        at += 1
                        chunk.results.append(result)
                        chunk.traces.append(trace)
                        if result.result_status not in (_SUCCESS, _PENDING) and option != _CONTINUE:
                            stopped = True  # Stop: earlier items stand (Undo never gets here)
                            break
                        if time.monotonic() >= deadline:
                            break
                    if session.writable:
                        self._write_records(session, self._events(identity, principal, chunk, now), chunk.deferred)
                if not session.writable and chunk.results:
                    self._record_apart_chunk(identity, principal, chunk)
            except Exception as exc:  # noqa: BLE001 - as in _transaction
                error = self._storage_failed(exc)
                chunk.results = [
                    failure_item(error, item.operation, item.unique_batch_item_id) for item, _ in items[first:at]
                ]
                stopped = stopped or option != _CONTINUE
            whole.results.extend(chunk.results)
            if at < len(items):
                # Let the event loop's writers (every message writes its audit records) take
                # the writer lock between chunks: threading.Lock is not fair, and this thread
                # would otherwise take it again before a waiting writer wakes.
                time.sleep(_HANDOFF_SECONDS)
        return whole

    def _record_apart_chunk(self, identity: ClientIdentity, principal: Principal, chunk: _Outcome) -> None:
        self._commit_read_records(self._events(identity, principal, chunk, self.clock()), chunk.deferred)

    def _storage_failed(self, exc: Exception) -> KmipError:
        """Log a failed transaction (once per burst of the same failure) and say what to answer."""
        self._failures.error("storage transaction failed: %s", describe(exc), exc_info=not isinstance(exc, KmipError))
        return (
            exc
            if isinstance(exc, KmipError)
            else KmipError("the server could not store the result; nothing was changed")
        )


def _failed_outcome(error: KmipError, prepared: Prepared) -> _Outcome:
    """Every item of a message failed with ``error`` (its transaction did): what it answers
    and records."""
    items = prepared.message.batch_items
    return _Outcome(
        [failure_item(error, item.operation, item.unique_batch_item_id) for item in items],
        [Trace(item_operation(item), (), (), str(error)) for item in items],
        [],
    )


def _undone(item: ResponseBatchItem) -> ResponseBatchItem:
    # The payload stays, as the OASIS test cases show (v2.1 BL-M-2): it says what the item did
    # before it was undone (a Create's identifier, which then names nothing).
    return item if item.result_status != _SUCCESS else dataclasses.replace(item, result_status=_UNDONE)


__all__ = ["Dispatcher", "SUPPORTED_VERSIONS"]
