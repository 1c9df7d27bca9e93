"""The engine's gate between a batch item and the objects it touches: the authorize hook.

Handlers load objects through :func:`admit_object` (via ``operations.common.load_object``),
store new ones through :func:`admit_new_object`, and search through
:func:`scoped_locate`; the dispatcher decides object-less operations (Create, Locate, Query
...) with :func:`authorize_operation` before the handler runs. Each of these asks the policy
with the item's operation, so no handler asks it itself and a new operation is covered by
loading its objects the usual way (the model is Cosmian's ``retrieve_object_for_operation``).

What the identity may not see is answered exactly as a missing object (the same Result
Reason and message), unless the policy restores Permission Denied (``hidden_objects``).
"""

from __future__ import annotations

import dataclasses

from kmip_client.protocol.errors import KmipError, PermissionDenied
from kmip_client.protocol.spec.enums import ResultReason

from ..policy.facts import ApprovalRule, Decision, NewObjectFacts, ObjectFacts
from ..storage.records import LocateQuery, ObjectRecord, StoredAttribute
from .context import RequestContext

# Attributes a policy scope may look at beyond the object's row.
_CUSTOM_PREFIXES = ("x-", "y-")


class ApprovalNeeded(Exception):
    """The policy allows the item once M of N approvers have agreed: the dispatcher answers it
    with Operation Pending (or a refusal when the client did not allow asynchronous answers)."""

    def __init__(self, rule: ApprovalRule, object_ids: tuple[str, ...]) -> None:
        super().__init__(rule.name)
        self.rule = rule
        self.object_ids = object_ids


def not_found(ctx: RequestContext, uid: str) -> KmipError:
    """The answer for a missing object, and for one the identity may not learn exists."""
    return KmipError(
        f"no object with Unique Identifier {uid!r}",
        ctx.reason(ResultReason.OBJECT_NOT_FOUND, ResultReason.ITEM_NOT_FOUND),
    )


def authorize_operation(ctx: RequestContext) -> None:
    """Decide an operation that names no object (Create, Register, Locate, Query ...)."""
    _enforce(ctx, ctx.policy.decide(ctx.principal, ctx.operation, None), None, ())


def admit_object(ctx: RequestContext, record: ObjectRecord, attributes: list[StoredAttribute] | None = None) -> None:
    """Decide the item's operation on the loaded object ``record``; raise if refused.
    ``attributes``: the object's attributes when the caller read them (at least those the
    policy reads, :meth:`Policy.attribute_names`); None reads those the policy needs."""
    ctx.touched.append(record.uid)
    facts = object_facts(record, _policy_attributes(ctx, record) if attributes is None else attributes)
    _enforce(ctx, ctx.policy.decide(ctx.principal, ctx.operation, facts), record.uid, (record.uid,))


def admit_new_object(ctx: RequestContext, new: NewObjectFacts) -> tuple[str, str]:
    """Check the creation constraints for an object about to be stored; its (owner, tenant)."""
    decision = ctx.policy.admit(ctx.principal, ctx.operation, new)
    if not decision.allowed:
        raise PermissionDenied(
            f"the access policy does not let {ctx.principal.name!r} create this object: {decision.rule}"
        )
    return ctx.policy.owner_for_new_object(ctx.principal), ctx.policy.tenant_for_new_object(ctx.principal)


def scoped_locate(ctx: RequestContext, query: LocateQuery, *, count: bool = False) -> tuple[list[str], int | None]:
    """Run ``query`` over the objects the identity may see; with ``count``, also how many
    match in all (Located Items). The policy's tenants and owners narrow the SQL; when a grant
    depends on more than those (a name pattern, say), each candidate is decided here and
    Maximum Items and Offset Items applied afterwards."""
    scope = ctx.policy.locate_filter(ctx.principal)
    narrowed = dataclasses.replace(query, owners=scope.owners, tenants=scope.tenants)
    if not scope.check_each:
        found = ctx.session.locate(narrowed)
        return found, ctx.session.count(narrowed) if count else None
    everything = ctx.session.locate(dataclasses.replace(narrowed, max_items=None, offset_items=0))
    seen = [uid for uid in everything if _visible(ctx, uid)]
    start = query.offset_items
    end = None if query.max_items is None else start + query.max_items
    return seen[start:end], len(seen) if count else None


def _visible(ctx: RequestContext, uid: str) -> bool:
    names = ctx.policy.attribute_names
    record = ctx.session.get_for_use(uid, names) if names else ctx.session.get(uid, attributes=False)
    if record is None:
        return False
    return ctx.policy.decide(ctx.principal, ctx.operation, object_facts(record, record.attributes)).allowed


def _enforce(ctx: RequestContext, decision: Decision, uid: str | None, object_ids: tuple[str, ...]) -> None:
    if decision.allowed:
        if decision.approval is not None and not ctx.approved:
            raise ApprovalNeeded(decision.approval, object_ids)
        return
    if uid is not None and decision.hidden and ctx.policy.hidden_as_missing:
        raise not_found(ctx, uid)
    target = f" object {uid!r}" if uid is not None else ""
    raise PermissionDenied(f"the access policy does not let {ctx.principal.name!r} use {ctx.operation}{target}")


def _policy_attributes(ctx: RequestContext, record: ObjectRecord) -> list[StoredAttribute]:
    """The attributes the policy's rules read, and only those (by name, on the driver: the Get
    path loads the row alone, and reading every attribute through SQLAlchemy cost a Get more
    than the rest of its work); none when no rule reads any."""
    names = ctx.policy.attribute_names
    return ctx.session.get_named_attributes(record.uid, names) if names else []


def object_facts(record: ObjectRecord, attributes: list[StoredAttribute]) -> ObjectFacts:
    names: list[str] = []
    groups: list[str] = []
    custom: dict[str, str] = {}
    policy_name = None
    for attr in attributes:
        text = attr.text
        if text is None:
            continue
        if attr.name == "Name":
            names.append(text)
        elif attr.name == "Object Group":
            groups.append(text)
        elif attr.name == "Operation Policy Name":
            policy_name = text
        elif attr.name.startswith(_CUSTOM_PREFIXES) or attr.name.startswith("Vendor Attribute"):
            custom.setdefault(attr.name, text)
    return ObjectFacts(
        uid=record.uid,
        owner=record.owner,
        tenant=record.tenant,
        object_type=record.object_type,
        algorithm=record.algorithm,
        length=record.length,
        names=tuple(names),
        object_group=tuple(groups),
        custom=custom,
        operation_policy_name=policy_name,
    )


def approved(ctx: RequestContext) -> RequestContext:
    """The context for running an approved request: the approval is not asked again."""
    return dataclasses.replace(ctx, approved=True)
