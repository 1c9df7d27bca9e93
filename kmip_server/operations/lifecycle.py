"""State changes: Activate, Revoke, Destroy; and Check."""

from __future__ import annotations

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.model import Struct
from kmip_client.protocol.model.payloads.lifecycle import (
    ActivateRequest,
    ActivateResponse,
    CheckRequest,
    CheckResponse,
    DestroyRequest,
    DestroyResponse,
    RevokeRequest,
    RevokeResponse,
)
from kmip_client.protocol.spec.enums import Operation, ResultReason, RevocationReasonCode

from ..engine.context import RequestContext
from ..engine.registry import operation
from ..objects import lifecycle
from .common import as_datetime, destroyed, load_object, wrong_state

R = ResultReason
_COMPROMISE = (RevocationReasonCode.KEY_COMPROMISE, RevocationReasonCode.CA_COMPROMISE)


@operation(Operation.ACTIVATE, writes=True)
def activate(ctx: RequestContext, request: ActivateRequest) -> Struct:
    obj = load_object(ctx, request.unique_identifier, for_update=True)
    if obj.state != lifecycle.PRE_ACTIVE:
        raise wrong_state(ctx, obj, "activate")
    obj.state = lifecycle.ACTIVE
    obj.attributes.set("Activation Date", as_datetime(ctx.now))
    obj.touch(ctx)
    obj.save(ctx)
    return ActivateResponse(unique_identifier=obj.uid)


@operation(Operation.REVOKE, writes=True)
def revoke(ctx: RequestContext, request: RevokeRequest) -> Struct:
    reason = request.revocation_reason
    if reason is None or reason.code is None:
        raise KmipError("Revoke needs a Revocation Reason", ctx.reason(R.MISSING_DATA, R.INVALID_FIELD))
    obj = load_object(ctx, request.unique_identifier, for_update=True)
    compromised = reason.code in _COMPROMISE
    new_state = lifecycle.state_after_revoke(obj.state, compromised)
    if new_state is None:
        raise wrong_state(ctx, obj, "revoke")
    attrs = obj.attributes
    attrs.set("Revocation Reason", reason)
    if compromised:
        occurred = request.compromise_occurrence_date or as_datetime(ctx.now)
        attrs.set("Compromise Occurrence Date", occurred)
        attrs.set("Compromise Date", as_datetime(ctx.now))
    elif obj.state in (lifecycle.PRE_ACTIVE, lifecycle.ACTIVE) and "Deactivation Date" not in attrs:
        attrs.set("Deactivation Date", as_datetime(ctx.now))
    obj.state = new_state
    obj.touch(ctx)
    obj.save(ctx)
    return RevokeResponse(unique_identifier=obj.uid)


@operation(Operation.DESTROY, writes=True)
def destroy(ctx: RequestContext, request: DestroyRequest) -> Struct:
    obj = load_object(ctx, request.unique_identifier, for_update=True)
    if obj.destroyed:
        raise destroyed(ctx, obj.uid, "is already destroyed")
    new_state = lifecycle.state_after_destroy(obj.state)
    if new_state is None:
        raise wrong_state(ctx, obj, "destroy")
    obj.state = new_state
    obj.attributes.set("Destroy Date", as_datetime(ctx.now))
    obj.touch(ctx)
    # The wrapped value goes: after Destroy no copy of the key remains, wrapped or not.
    obj.save(ctx, wrapped_value=None)
    return DestroyResponse(unique_identifier=obj.uid)


@operation(Operation.CHECK, writes=False)
def check(ctx: RequestContext, request: CheckRequest) -> Struct:
    obj = load_object(ctx, request.unique_identifier)
    if obj.destroyed:
        raise destroyed(ctx, obj.uid)
    wanted = request.cryptographic_usage_mask
    if wanted is not None:
        mask = int(obj.attributes.first("Cryptographic Usage Mask") or 0)
        if mask & int(wanted) != int(wanted):
            raise KmipError(
                f"object {obj.uid!r} may not be used for usage mask 0x{int(wanted):X} (its mask is 0x{mask:X})",
                ctx.reason(R.INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK, R.ILLEGAL_OPERATION),
            )
        if obj.state != lifecycle.ACTIVE:
            raise wrong_state(ctx, obj, "use")
    if request.usage_limits_count is not None or request.lease_time is not None:
        raise KmipError("usage limits and leases are not supported yet", R.FEATURE_NOT_SUPPORTED)
    # The mask comes back only when the server rejects it (KMIP 2.1 6.1.3): a pass is just the
    # identifier, as the OASIS cases (v2.1 BL-M-2) show.
    return CheckResponse(unique_identifier=obj.uid)
