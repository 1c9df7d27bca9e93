"""Poll and Cancel: the requester's side of a request held for M-of-N approval.

The dispatcher answers an item the policy holds for approval with Operation Pending and an
Asynchronous Correlation Value (engine/items.py, kmip_server/approvals). Poll with that value,
by the identity that made the request and in its tenant, answers Operation Pending again until
enough approvers agreed; then the held item runs, in the Poll's transaction, through the
dispatcher's hooks (``ctx.run_approved``), and the Poll's answer is that item's answer: "the
response that would have been sent if the operation had completed synchronously" (KMIP 2.1
6.1.38), its Operation the held one. A request run, cancelled, or someone else's is answered
as an unknown correlation value; a denied or expired one as Permission Denied saying which.

Cancel withdraws a request; its Cancellation Result says Canceled, or what had become of it
(Completed or Failed), or Unavailable for a correlation value that names none of the
requester's requests (KMIP 1.4 4.27).

The handlers return a whole :class:`ResponseBatchItem`, not a payload: the dispatcher sends
it as the item's answer (the status Operation Pending, or the held operation's result).
"""

from __future__ import annotations

from kmip_client.protocol.errors import KmipError, PermissionDenied
from kmip_client.protocol.model import ResponseBatchItem
from kmip_client.protocol.model.payloads.async_ops import CancelRequest, CancelResponse, PollRequest
from kmip_client.protocol.spec.enums import CancellationResult, Operation, ResultReason, ResultStatus

from ..approvals.service import APPROVED, ApprovalError, ApprovalService
from ..approvals.store import CANCELLED, DENIED, DONE, EXPIRED
from ..engine.context import RequestContext
from ..engine.items import reason_name
from ..engine.registry import operation

_CANCELLATION = {
    CANCELLED: CancellationResult.CANCELED,
    DENIED: CancellationResult.FAILED,
    EXPIRED: CancellationResult.FAILED,
}


def _correlation_value(ctx: RequestContext, given: bytes | None) -> bytes:
    if not given:
        raise KmipError(
            f"{ctx.operation} needs the Asynchronous Correlation Value of the pending request",
            ctx.defined_reason(ResultReason.MISSING_DATA, ResultReason.INVALID_FIELD),
        )
    return bytes(given)


@operation(Operation.POLL, writes=True)
def poll(ctx: RequestContext, payload: PollRequest) -> ResponseBatchItem:
    correlation = _correlation_value(ctx, payload.asynchronous_correlation_value)
    service = ApprovalService(ctx.custody)
    principal = ctx.principal
    try:
        polled = service.poll(ctx.session, correlation, principal.name, principal.tenant, ctx.now)
    except ApprovalError as exc:
        if exc.kind == ApprovalError.UNKNOWN:
            raise KmipError(
                exc.message,
                ctx.defined_reason(ResultReason.INVALID_ASYNCHRONOUS_CORRELATION_VALUE, ResultReason.ITEM_NOT_FOUND),
            ) from None
        raise PermissionDenied(exc.message) from None
    request = polled.request
    ctx.touched.extend(request.object_ids)
    if polled.payload is None:
        return ResponseBatchItem(
            operation=Operation.POLL,
            result_status=ResultStatus.OPERATION_PENDING,
            result_message=(
                f"{request.operation} awaits {request.required} approval(s) "
                f"(has {len(request.approved_by)}) until {request.expires}"
            ),
            asynchronous_correlation_value=correlation,
        )
    assert request.status == APPROVED
    if request.version != ctx.version:
        # The held payload was decoded for that version's fields and answers.
        raise KmipError(
            f"request {request.id} was made in KMIP {request.version[0]}.{request.version[1]}: Poll it in that version",
            ResultReason.INVALID_MESSAGE,
        )
    if ctx.run_approved is None:
        raise KmipError("this server cannot run approved requests", ResultReason.GENERAL_FAILURE)
    assert polled.operation is not None
    result = ctx.run_approved(Operation(polled.operation), polled.payload)
    service.complete(ctx.session, request.id, ctx.now, _outcome(result))
    return result


@operation(Operation.CANCEL, writes=True)
def cancel(ctx: RequestContext, payload: CancelRequest) -> ResponseBatchItem:
    correlation = _correlation_value(ctx, payload.asynchronous_correlation_value)
    service = ApprovalService(ctx.custody)
    principal = ctx.principal
    try:
        request = service.cancel(ctx.session, correlation, principal.name, principal.tenant, ctx.now)
    except ApprovalError:
        outcome = CancellationResult.UNAVAILABLE
    else:
        ctx.touched.extend(request.object_ids)
        if request.status == DONE:
            outcome = CancellationResult.COMPLETED if request.outcome == "Success" else CancellationResult.FAILED
        else:
            outcome = _CANCELLATION[request.status]
    return ResponseBatchItem(
        operation=Operation.CANCEL,
        result_status=ResultStatus.SUCCESS,
        payload=CancelResponse(asynchronous_correlation_value=correlation, cancellation_result=outcome),
    )


def _outcome(result: ResponseBatchItem) -> str:
    """What the run said, for the request's row and ``approvals show``: never a payload."""
    if result.result_status == ResultStatus.SUCCESS:
        return "Success"
    return f"Operation Failed: {reason_name(result) or 'unknown reason'}"
