"""One batch item through the hooks every handler gets: authorize, the handler, audit, metrics.

:meth:`ItemRunner.run` is the only caller of handlers. Around each it: checks the item (operation,
version, payload); authorizes an operation that names no object (those that do are
authorized as their objects load: engine/access.py); turns a refusal, a custody failure or a
bug into the batch item's result; answers an item the policy holds for M-of-N approval with
Operation Pending; notes what the audit record needs (:class:`Trace`: the objects touched,
the attributes written); and times it for the metrics.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Sequence
from typing import Any, Protocol

from kmip_client.protocol.errors import KmipError, PermissionDenied
from kmip_client.protocol.model import RawPayload, RequestBatchItem, ResponseBatchItem, version_conflicts
from kmip_client.protocol.model.base import to_bytes
from kmip_client.protocol.spec.enums import ResultReason, ResultStatus

from ..custody import CustodyError
from ..logformat import ITEM_CONTEXT, ItemContext
from ..logsafe import RepeatLimiter
from ..policy.facts import operation_name
from .access import ApprovalNeeded, authorize_operation
from .context import RequestContext, WriteNeeded
from .quirks import tolerated
from .registry import OperationSpec
from .responses import failure_item

log = logging.getLogger("strongroom.engine")

_SUCCESS = ResultStatus.SUCCESS
_PENDING = ResultStatus.OPERATION_PENDING
# Response payload fields naming the objects an item made (Create, Register, Create Key Pair ...).
_MADE = ("unique_identifier", "private_key_unique_identifier", "public_key_unique_identifier")


class Metrics(Protocol):
    """Where the dispatcher reports each batch item: operation, outcome (Success or the Result
    Reason), and seconds spent. The admin listener's Prometheus metrics are one (kmip_server/admin/metrics.py)."""

    def observe(self, operation: str, outcome: str, seconds: float) -> None: ...

    def batch(self, messages: int) -> None:
        """One engine call answered ``messages`` request messages (one group commit)."""

    def transaction(self, kind: str, seconds: float) -> None:
        """A storage transaction ("read", "write", "records") took ``seconds``, commit included."""


class NoMetrics:
    def observe(self, operation: str, outcome: str, seconds: float) -> None:
        return None

    def batch(self, messages: int) -> None:
        return None

    def transaction(self, kind: str, seconds: float) -> None:
        return None


@dataclasses.dataclass(slots=True)
class Trace:
    """What one item's audit record says besides its result."""

    operation: str
    object_ids: tuple[str, ...]
    attributes: tuple[str, ...]
    detail: str | None = None


class Approvals(Protocol):
    """The M-of-N approval service (kmip_server/approvals) as the dispatcher uses it."""

    def submit(
        self,
        session: Any,
        *,
        correlation_value: bytes,
        requester: str,
        tenant: str,
        version: tuple[int, int],
        operation: int,
        payload: bytes,
        object_ids: Sequence[str],
        rule: Any,
        now: int,
    ) -> str: ...


def status_name(result: ResponseBatchItem) -> str:
    status = result.result_status
    if status is None:
        return "Unknown"
    name = _STATUS_NAMES.get(status)
    if name is None:
        name = _STATUS_NAMES[status] = _title(ResultStatus(status).name)
    return name


def reason_name(result: ResponseBatchItem) -> str | None:
    reason = result.result_reason
    return None if reason is None else reason_title(reason)


def reason_title(reason: int) -> str:
    """A Result Reason as the audit trail and the metrics spell it ("Item Not Found"); a
    value KMIP does not define, in hex."""
    name = _REASON_NAMES.get(reason)
    if name is None:
        try:
            name = _title(ResultReason(reason).name)
        except ValueError:
            return f"0x{int(reason):08X}"
        _REASON_NAMES[reason] = name
    return name


def item_operation(item: RequestBatchItem) -> str:
    """The item's operation as the spec names it, for the policy and the audit trail."""
    return operation_name(int(item.operation)) if item.operation is not None else "(none)"


# Spelled once per value: every batch item's metrics and audit record ask for them.
_STATUS_NAMES: dict[int, str] = {}
_REASON_NAMES: dict[int, str] = {}


def _title(enum_name: str) -> str:
    return enum_name.replace("_", " ").title()


class ItemRunner:
    """Runs batch items for one dispatcher (its failure log, metrics and approval service)."""

    def __init__(self, failures: RepeatLimiter, metrics: Metrics, approvals: Approvals | None) -> None:
        self.failures = failures
        self.metrics = metrics
        self.approvals = approvals

    def run(
        self,
        ctx: RequestContext,
        item: RequestBatchItem,
        spec: OperationSpec | None,
        *,
        savepoint: bool,
        asynchronous: bool,
    ) -> tuple[ResponseBatchItem, Trace]:
        """The item's result and audit trace. Raises WriteNeeded (the message must run again
        in a write transaction). What is logged meanwhile names the item (logformat.py)."""
        ctx.operation = item_operation(item)
        item_context = ItemContext(
            ctx.identity.address, ctx.principal.name, ctx.operation, ctx.touched, len(ctx.touched)
        )
        logged = ITEM_CONTEXT.set(item_context)
        try:
            return self._run(ctx, item, spec, savepoint=savepoint, asynchronous=asynchronous)
        finally:
            ITEM_CONTEXT.reset(logged)

    def _run(
        self,
        ctx: RequestContext,
        item: RequestBatchItem,
        spec: OperationSpec | None,
        *,
        savepoint: bool,
        asynchronous: bool,
    ) -> tuple[ResponseBatchItem, Trace]:
        started = time.perf_counter()
        name = ctx.operation
        touched = len(ctx.touched)
        written = len(ctx.session.changes)
        detail = None
        try:
            payload = checked_payload(ctx, item, spec)
            assert spec is not None
            if not _names_objects(payload):
                authorize_operation(ctx)
            if savepoint:
                with ctx.session.savepoint():
                    response_payload = spec.handler(ctx, payload)
            else:
                response_payload = spec.handler(ctx, payload)
            if isinstance(response_payload, ResponseBatchItem):
                # Poll and Cancel answer with a whole item (Operation Pending, or the held
                # operation's own answer): see operations/asynchronous.py.
                result = dataclasses.replace(response_payload, unique_batch_item_id=item.unique_batch_item_id)
            else:
                result = ResponseBatchItem(
                    operation=item.operation,
                    unique_batch_item_id=item.unique_batch_item_id,
                    result_status=_SUCCESS,
                    payload=response_payload,
                )
        except WriteNeeded:
            del ctx.touched[touched:]
            raise
        except ApprovalNeeded as need:
            result, detail = self._pending(ctx, item, need, asynchronous)
        except KmipError as exc:
            result = _failed(exc, item)
        except CustodyError as exc:
            self.failures.error("key custody failed during %s: %s", name, exc)
            error = KmipError("the key custody token failed; nothing was changed", ResultReason.GENERAL_FAILURE)
            result = _failed(error, item)
        except Exception as exc:  # noqa: BLE001 - a handler's bug: logged with its traceback, answered as such
            self.failures.error("internal error during %s: %s", name, describe(exc), exc_info=True)
            result = _failed(KmipError("internal server error", ResultReason.GENERAL_FAILURE), item)
        objects = dict.fromkeys(ctx.touched[touched:])
        if result.result_status == _SUCCESS:
            objects.update(dict.fromkeys(_made(result.payload)))
        changed = tuple(dict.fromkeys(ctx.session.changes[written:]))
        self.metrics.observe(name, reason_name(result) or status_name(result), time.perf_counter() - started)
        return result, Trace(name, tuple(objects), changed, detail)

    def _pending(
        self, ctx: RequestContext, item: RequestBatchItem, need: ApprovalNeeded, asynchronous: bool
    ) -> tuple[ResponseBatchItem, str | None]:
        rule = need.rule
        wanted = f"{rule.required} approval(s) from {', '.join(sorted(rule.approvers))} (policy rule {rule.name!r})"
        if not asynchronous or self.approvals is None:
            error = PermissionDenied(
                f"{ctx.operation} needs {wanted}: send it with the Asynchronous Indicator set and Poll for "
                "the result once approved"
                if self.approvals is not None
                else f"{ctx.operation} needs {wanted}, and this server takes no approvals"
            )
            return _failed(error, item), f"approval needed: {rule.name}"
        correlation = os.urandom(16)
        approvals = self.approvals
        payload = to_bytes(item.payload)
        principal, version, now, operation = ctx.principal, ctx.version, ctx.now, int(item.operation)  # type: ignore[arg-type]
        object_ids = need.object_ids

        def submit(session: Any) -> None:
            # Written with the message's audit records, in the write transaction that ends it.
            approvals.submit(
                session,
                correlation_value=correlation,
                requester=principal.name,
                tenant=principal.tenant,
                version=version,
                operation=operation,
                payload=payload,
                object_ids=object_ids,
                rule=rule,
                now=now,
            )

        ctx.deferred.append(submit)
        result = ResponseBatchItem(
            operation=item.operation,
            unique_batch_item_id=item.unique_batch_item_id,
            result_status=_PENDING,
            asynchronous_correlation_value=correlation,
        )
        return result, f"awaiting {wanted}; request {correlation.hex()}"


def checked_payload(ctx: RequestContext, item: RequestBatchItem, spec: OperationSpec | None) -> Any:
    if item.operation is None:
        raise KmipError("the batch item has no Operation", ResultReason.INVALID_MESSAGE)
    if spec is None or ctx.version < spec.min_version or (spec.harness and not ctx.test_harness):
        raise KmipError(f"operation {ctx.operation} is not supported", ResultReason.OPERATION_NOT_SUPPORTED)
    payload = item.payload
    if payload is None or isinstance(payload, RawPayload):
        raise KmipError(f"{ctx.operation} needs a Request Payload", ResultReason.INVALID_MESSAGE)
    # A field of a later version is refused unless a named client needs it (quirks.py).
    conflicts = [path for path in version_conflicts(payload, ctx.version) if not tolerated(path)]
    if conflicts:
        raise KmipError(
            f"field(s) not defined in KMIP {ctx.version[0]}.{ctx.version[1]}: {', '.join(conflicts)}",
            ResultReason.INVALID_FIELD,
        )
    return payload


_NAMING: dict[type, bool] = {}


def _names_objects(payload: Any) -> bool:
    """Whether requests of this payload's kind name the objects they act on (a Unique
    Identifier field of any kind): those are authorized as the objects load; the others
    (Create, Register, Locate, Query ...) as an operation."""
    kind = type(payload)
    known = _NAMING.get(kind)
    if known is None:
        fields = dataclasses.fields(kind) if dataclasses.is_dataclass(kind) else ()
        known = _NAMING[kind] = any(f.name.endswith(("unique_identifier", "unique_identifiers")) for f in fields)
    return known


def _made(payload: Any) -> list[str]:
    made = [value for name in _MADE if isinstance(value := getattr(payload, name, None), str)]
    return made


def _failed(error: KmipError, item: RequestBatchItem) -> ResponseBatchItem:
    return failure_item(error, item.operation, item.unique_batch_item_id)


def describe(exc: BaseException) -> str:
    """An exception for a log line: its type and message, cut short."""
    return f"{type(exc).__name__}: {exc}"[:300]
