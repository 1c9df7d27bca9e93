"""Re-key (KMIP 1.4 §4.4, 2.1 §6.1.46) and Re-key Key Pair (1.4 §4.5, 2.1 §6.1.47): a replacement
for an existing Symmetric Key, or for a key pair named by its Private Key, made as Create and
Create Key Pair make keys (the value from the token) and given the old key's attributes.

What a replacement key has (1.4 Tables 173 and 177, 2.1 Tables 304 and 309):

* copied from the old key: each attribute a client may give a new object (its algorithm,
  length, usage mask, Cryptographic Parameters, Object Group, Sensitive, Extractable, custom
  attributes and so on), and the lifecycle dates as the Offset says (below);
* set as Create sets them: Unique Identifier, Initial Date, Last Change Date, Digest (of the
  new value), State (from the dates: Active once its Activation Date has come), Random Number
  Generator and Original Creation Date; it is Fresh;
* not set: what happened to the old key (Destroy, Compromise and Compromise Occurrence Dates,
  Revocation Reason, Archive Date), the old key's Links and where its value lives (Key Value
  Location): they are about the old key;
* the Names move: the old key loses them and the replacement takes them over. A request that
  names the replacement itself gives it those Names instead, and the old key then keeps its
  own: no Name is lost and none is on two keys;
* Usage Limits: the Total copied and the Count set to the Total, a new key's whole allowance.
  (Re-key's table says "the Count value in the existing key"; Re-key Key Pair's says the
  replacement's, as KMIP 1.0's did for both: resetting the old key's count would hand the old
  key its allowance again.)
* Links: Replaced Object Link to the old key; the old key gets a Replacement Object Link to
  the new one. The keys of a new pair also link to each other, as Create Key Pair links them.

An attribute given in the request takes the place of the copied instances of its name.

The Offset (Tables 172, 176; 2.1 303, 308): without one the Activation, Process Start, Protect
Stop and Deactivation Dates are the old key's. With one the Activation Date is the Initial
Date (now) plus the Offset, and each other date keeps its distance from the Activation Date:
new = old + (new Activation Date - old Activation Date). A request with an Offset may not give
those dates as well (Invalid Message, 1.4 §11.5), and an Offset cannot move the other dates of
an old key without an Activation Date (1.4 §11.5's Illegal Operation; 2.x has no such entry,
and the Offset field is what is wrong: Invalid Field).

The old key may be in any state but destroyed (replacing a compromised or deactivated key is
what Re-key is for) and keeps its state; its value must be on the server (Key Value Not
Present, §11.5).

KMIP 2.1's rotation attributes: Rotate Automatic, Interval, Offset and Name are copied like the
other attributes a client may give; every replacement, a client's or the server's rotation
scheduler's (kmip_server/rotation/, which calls :func:`rekey_symmetric` and :func:`rekey_pair`),
records Rotate Generation and Latest on the new key and Rotate Latest and Date on the old one
(kmip_server/rotation/lineage.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.model import Attribute, Struct
from kmip_client.protocol.model.attributes import Link, UsageLimits
from kmip_client.protocol.model.payloads.lifecycle import (
    ReKeyKeyPairRequest,
    ReKeyKeyPairResponse,
    ReKeyRequest,
    ReKeyResponse,
)
from kmip_client.protocol.spec.enums import LinkType, ObjectType, Operation, ResultReason

from ..engine.context import RequestContext
from ..engine.registry import operation
from ..objects.attribute_rules import rule_for
from ..objects.attribute_set import AttributeSet
from ..rotation import lineage
from .attribute_input import apply_initial
from .common import ManagedObject, as_datetime, as_seconds, destroyed, linked, load_object
from .creation import _check_storage_masks, store_generated_key
from .key_pairs import _generated, requested_pair_attributes, store_pair
from .templates import requested_attributes

R = ResultReason

#: The dates an Offset moves, the Activation Date first (the others keep their distance from it).
OFFSET_DATES = ("Activation Date", "Process Start Date", "Protect Stop Date", "Deactivation Date")
#: Attributes a client may give a new object that a replacement still does not copy: the
#: server sets them for a generated key, they are about the old key, or they are handled apart.
_NOT_COPIED = frozenset(
    {"Random Number Generator", "Original Creation Date", "Fresh", "Link", "Key Value Location", "Name", "Usage Limits"}
)


def _type_name(object_type: int) -> str:
    return ObjectType(object_type).name.replace("_", " ").title()


def _old_key(ctx: RequestContext, given_uid: Any, object_type: ObjectType, replaced_by: str) -> ManagedObject:
    """The key being replaced, locked (it gets a Link and may lose its Names), checked."""
    old = load_object(ctx, given_uid, for_update=True)
    if old.destroyed:
        raise destroyed(ctx, old.uid, "has been destroyed: there is no key left to replace")
    if old.record.object_type != object_type:
        raise KmipError(
            f"object {old.uid!r} is a {_type_name(old.record.object_type)}: {replaced_by}",
            ctx.reason(R.INVALID_OBJECT_TYPE, R.ILLEGAL_OPERATION),
        )
    if old.record.wrapped_value is None:
        raise KmipError(
            f"object {old.uid!r} has no value on this server (it was registered without one)",
            ctx.defined_reason(R.KEY_VALUE_NOT_PRESENT, R.ILLEGAL_OPERATION),
        )
    return old


def _requested(ctx: RequestContext, given: list[Attribute]) -> AttributeSet:
    """The request's attributes for one new key, checked as Create checks them."""
    requested = AttributeSet()
    apply_initial(ctx, requested, given)
    return requested


def _offset_dates(ctx: RequestContext, uid: str, old: AttributeSet, new: AttributeSet, offset: int) -> None:
    """The new key's lifecycle dates from the old key's (``uid``'s) and the Offset (1.4 Table 172)."""
    old_activation = as_seconds(old.first("Activation Date"))
    moved = [name for name in OFFSET_DATES[1:] if name in old]
    if old_activation is None and moved:
        raise KmipError(
            f"object {uid!r} has a {moved[0]} but no Activation Date: "
            "an Offset cannot place the replacement's dates from it",
            ctx.reason(R.INVALID_FIELD, R.ILLEGAL_OPERATION),
        )
    activation = ctx.now + int(offset)
    new.set("Activation Date", as_datetime(activation))
    for name in moved:
        old_date = as_seconds(old.first(name))
        assert old_date is not None and old_activation is not None  # in ``moved``; checked above
        new.set(name, as_datetime(old_date + activation - old_activation))


def _replacement_attributes(
    ctx: RequestContext, old: ManagedObject, requested: AttributeSet, offset: int | None
) -> AttributeSet:
    """The attributes of the key replacing ``old``, before the server sets its own."""
    stored = AttributeSet(old.record.attributes)  # the rows, without the defaults loading adds
    attrs = AttributeSet()
    for name in stored.names():
        rule = rule_for(name)
        if rule is None or not rule.on_create or name in _NOT_COPIED:
            continue
        for _, attr in stored.instances(name):
            attrs.add(name, attr.value, attr.type)
    limits = stored.first("Usage Limits")
    if isinstance(limits, UsageLimits):
        attrs.set("Usage Limits", dataclasses.replace(limits, count=limits.total))
    if offset is not None:
        given = [name for name in OFFSET_DATES if name in requested]
        if given:
            raise KmipError(
                f"a Re-key with an Offset computes the new key's {given[0]}; the request may not give it as well",
                R.INVALID_MESSAGE,
            )
        _offset_dates(ctx, old.uid, stored, attrs, offset)
    for name in requested.names():
        attrs.delete(name)
        for _, attr in requested.instances(name):
            attrs.add(name, attr.value, attr.type)
    if "Name" not in requested:
        for _, attr in stored.instances("Name"):
            attrs.add("Name", attr.value, attr.type)
    attrs.add("Link", Link(link_type=LinkType.REPLACED_OBJECT_LINK, linked_object_identifier=old.uid))
    lineage.succeed(stored, attrs)
    return attrs


def _retire(ctx: RequestContext, old: ManagedObject, new_uid: str, requested: AttributeSet) -> None:
    """The replaced key: linked to its replacement, without the Names the replacement took."""
    if "Name" not in requested:
        old.attributes.delete("Name")
    old.attributes.add("Link", Link(link_type=LinkType.REPLACEMENT_OBJECT_LINK, linked_object_identifier=new_uid))
    lineage.retire(old.attributes, ctx.now)
    old.touch(ctx)
    old.save(ctx)


def rekey_symmetric(
    ctx: RequestContext, old_uid: Any, offset_seconds: int | None, given_attributes: list[Attribute]
) -> str:
    """Replace the Symmetric Key ``old_uid`` (or the ID Placeholder) with a new one made by the
    token: Re-key's rules (this module's docstring), the request's ``given_attributes`` over the
    copied ones, its dates placed by ``offset_seconds`` when given. The new key's Unique
    Identifier, which also becomes the ID Placeholder. For the Re-key operation and for a
    scheduler rotating keys (KMIP 2.1 Rotate attributes), in the caller's transaction."""
    old = _old_key(ctx, old_uid, ObjectType.SYMMETRIC_KEY, "Re-key replaces Symmetric Keys (Re-key Key Pair: pairs)")
    requested = _requested(ctx, given_attributes)
    attrs = _replacement_attributes(ctx, old, requested, offset_seconds)
    new_uid = store_generated_key(ctx, attrs)
    _retire(ctx, old, new_uid, requested)
    return new_uid


@operation(Operation.RE_KEY, writes=True)
def rekey(ctx: RequestContext, request: ReKeyRequest) -> Struct:
    _check_storage_masks(request.protection_storage_masks)
    given = requested_attributes(ctx, request.template_attribute, request.attributes)
    new_uid = rekey_symmetric(ctx, request.unique_identifier, request.offset, given)
    return ReKeyResponse(unique_identifier=new_uid)


def _old_public_key(ctx: RequestContext, private: ManagedObject) -> ManagedObject:
    """The public key of the pair being replaced: the one the private key's Public Key Link names."""
    public_uid = linked(private.attributes, LinkType.PUBLIC_KEY_LINK)
    if public_uid is not None:
        return _old_key(
            ctx,
            public_uid,
            ObjectType.PUBLIC_KEY,
            f"the Public Key Link of private key {private.uid!r} must name a Public Key",
        )
    raise KmipError(
        f"private key {private.uid!r} has no Public Key Link: Re-key Key Pair replaces a pair, and its public key is not known",
        ctx.reason(R.OBJECT_NOT_FOUND, R.ITEM_NOT_FOUND),
    )


def rekey_pair(
    ctx: RequestContext,
    old_private_uid: Any,
    offset_seconds: int | None,
    private_given: list[Attribute],
    public_given: list[Attribute],
) -> tuple[str, str]:
    """Replace the key pair whose Private Key is ``old_private_uid`` with a new pair: Re-key
    Key Pair's rules, as :func:`rekey_symmetric` for one key. The new (Private Key, Public Key)
    Unique Identifiers. For the operation and for the rotation scheduler, in the caller's transaction."""
    old_private = _old_key(
        ctx, old_private_uid, ObjectType.PRIVATE_KEY, "Re-key Key Pair names the Private Key of the pair it replaces"
    )
    old_public = _old_public_key(ctx, old_private)
    private_requested, public_requested = _requested(ctx, private_given), _requested(ctx, public_given)
    private_attrs = _replacement_attributes(ctx, old_private, private_requested, offset_seconds)
    public_attrs = _replacement_attributes(ctx, old_public, public_requested, offset_seconds)
    pair = _generated(ctx, private_attrs, public_attrs)
    private_uid, public_uid = store_pair(ctx, pair, private_attrs, public_attrs)
    _retire(ctx, old_private, private_uid, private_requested)
    _retire(ctx, old_public, public_uid, public_requested)
    return private_uid, public_uid


@operation(Operation.RE_KEY_KEY_PAIR, writes=True)
def rekey_key_pair(ctx: RequestContext, request: ReKeyKeyPairRequest) -> Struct:
    private_given, public_given = requested_pair_attributes(ctx, request)
    private_uid, public_uid = rekey_pair(
        ctx, request.private_key_unique_identifier, request.offset, private_given, public_given
    )
    return ReKeyKeyPairResponse(private_key_unique_identifier=private_uid, public_key_unique_identifier=public_uid)
