"""The attribute operations: Get Attributes, Get Attribute List, Add / Modify / Delete (1.x and
2.x forms), Set and Adjust (2.x)."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.model import Attribute, Attributes, Struct
from kmip_client.protocol.model.attributes import attribute_for_version
from kmip_client.protocol.model.payloads.attributes_ops import (
    AddAttributeRequest,
    AddAttributeResponse,
    AdjustAttributeRequest,
    AdjustAttributeResponse,
    DeleteAttributeRequest,
    DeleteAttributeResponse,
    GetAttributeListRequest,
    GetAttributeListResponse,
    GetAttributesRequest,
    GetAttributesResponse,
    ModifyAttributeRequest,
    ModifyAttributeResponse,
    SetAttributeRequest,
    SetAttributeResponse,
)
from kmip_client.protocol.model.payloads.structures import attribute_reference, reference_name
from kmip_client.protocol.spec.enums import AdjustmentType, KeyFormatType, ObjectType, Operation, ResultReason, State
from kmip_client.protocol.ttlv import ItemType

from ..engine.context import RequestContext
from ..engine.registry import operation
from ..objects import lifecycle
from ..objects.attribute_rules import SYNTHESISED, AttributeRule, is_custom, rule_for
from ..objects.server_attributes import defined_in, listing_key, short_unique_identifier
from .attribute_input import checked, read_only, single_attribute
from .common import ManagedObject, load_object, wrong_state

R = ResultReason


def _synthesised(obj: ManagedObject, name: str) -> Attribute | None:
    if name == "Unique Identifier":
        return Attribute(name=name, value=obj.uid)
    if name == "Object Type":
        return Attribute(name=name, value=ObjectType(obj.record.object_type))
    if name == "State":
        return Attribute(name=name, value=State(obj.state))
    if name == "Short Unique Identifier":
        return Attribute(name=name, value=short_unique_identifier(obj.uid), type=ItemType.BYTE_STRING)
    if name == "Key Format Type":
        key_format = _key_format(obj)
        return Attribute(name=name, value=key_format) if key_format is not None else None
    return None


def _key_format(obj: ManagedObject) -> KeyFormatType | None:
    """The Key Format Type of a key or secret's value as stored (and returned by default)."""
    if obj.record.value_format is None or obj.record.object_type == ObjectType.OPAQUE_OBJECT:
        return None
    try:
        return KeyFormatType(obj.record.value_format)
    except ValueError:
        return None


def _present(obj: ManagedObject, ctx: RequestContext, name: str) -> list[Attribute]:
    """The instances of ``name`` as the client's version sends them (none if that version has
    no such attribute)."""
    if not defined_in(name, ctx.version):
        return []
    if name in SYNTHESISED:
        fixed = _synthesised(obj, name)
        return [] if fixed is None else [attribute_for_version(name, fixed.value, ctx.version, type=fixed.type)]
    return [
        attribute_for_version(name, attr.value, ctx.version, index=index or None, type=attr.type)
        for index, attr in obj.attributes.instances(name)
    ]


def _all_names(ctx: RequestContext, obj: ManagedObject) -> list[str]:
    """Every attribute the object has in the client's version, in the listing order."""
    names = [
        name
        for name in (*SYNTHESISED, *obj.attributes.names())
        if defined_in(name, ctx.version) and (name != "Key Format Type" or _key_format(obj) is not None)
    ]
    names.sort(key=listing_key)
    return names


def all_attributes(ctx: RequestContext, obj: ManagedObject) -> list[Attribute]:
    """Every attribute of the object in the client's version's form, in the listing order (Export)."""
    return [attr for name in _all_names(ctx, obj) for attr in _present(obj, ctx, name)]


def _requested_names(ctx: RequestContext, request: GetAttributesRequest) -> list[str]:
    if ctx.v2:
        return [reference_name(ref) for ref in request.attribute_references]
    return list(request.attribute_names)


@operation(Operation.GET_ATTRIBUTES, writes=False)
def get_attributes(ctx: RequestContext, request: GetAttributesRequest) -> Struct:
    obj = load_object(ctx, request.unique_identifier)
    names = _requested_names(ctx, request) or _all_names(ctx, obj)
    found = [attr for name in dict.fromkeys(names) for attr in _present(obj, ctx, name)]
    ctx.id_placeholder = obj.uid
    if ctx.v2:
        return GetAttributesResponse(unique_identifier=obj.uid, attributes=Attributes(attributes=tuple(found)))
    return GetAttributesResponse(unique_identifier=obj.uid, attribute_list=tuple(found))


@operation(Operation.GET_ATTRIBUTE_LIST, writes=False)
def get_attribute_list(ctx: RequestContext, request: GetAttributeListRequest) -> Struct:
    obj = load_object(ctx, request.unique_identifier)
    names = _all_names(ctx, obj)
    ctx.id_placeholder = obj.uid
    if ctx.v2:
        return GetAttributeListResponse(
            unique_identifier=obj.uid, attribute_references=tuple(attribute_reference(n) for n in names)
        )
    return GetAttributeListResponse(unique_identifier=obj.uid, attribute_names=tuple(names))


# --------------------------------------------------------------------------- changes


def _not_found(ctx: RequestContext, obj: ManagedObject, name: str, index: int | None = None) -> KmipError:
    where = f" with index {index}" if index else ""
    return KmipError(
        f"object {obj.uid!r} has no attribute {name!r}{where}",
        ctx.reason(R.ATTRIBUTE_NOT_FOUND, R.ITEM_NOT_FOUND),
    )


def _check_date_change(ctx: RequestContext, obj: ManagedObject, name: str) -> None:
    """Lifecycle dates move only while they are still ahead (spec: Activation Date is
    modifiable while Pre-Active; Deactivation Date until the object is deactivated)."""
    if (name == "Activation Date" and obj.state != lifecycle.PRE_ACTIVE and name in obj.attributes) or (
        name == "Deactivation Date" and obj.state not in (lifecycle.PRE_ACTIVE, lifecycle.ACTIVE)
    ):
        raise wrong_state(ctx, obj, f"change the {name} of")


def _finish(ctx: RequestContext, obj: ManagedObject) -> None:
    obj.touch(ctx)
    obj.save(ctx)
    ctx.id_placeholder = obj.uid


@operation(Operation.ADD_ATTRIBUTE, writes=True)
def add_attribute(ctx: RequestContext, request: AddAttributeRequest) -> Struct:
    attr = request.attribute if not ctx.v2 else single_attribute(ctx, request.new_attribute, "New Attribute")
    if attr is None:
        raise KmipError("Add Attribute needs an Attribute", R.INVALID_MESSAGE)
    name, rule = checked(ctx, attr)
    if not rule.client_add:
        raise read_only(ctx, name)
    obj = load_object(ctx, request.unique_identifier, for_update=True)
    _check_date_change(ctx, obj, name)
    if name in obj.attributes and not rule.multi:
        raise KmipError(
            f"attribute {name!r} has a single value and object {obj.uid!r} already has it",
            ctx.reason(R.ATTRIBUTE_SINGLE_VALUED, R.INVALID_FIELD),
        )
    if name == "Name" and _instance_with_value(obj, name, attr.value) is not None:
        # A Name identifies one object; the same Name twice identifies nothing more (v2.1 BL-M-8).
        raise KmipError(
            f"object {obj.uid!r} already has this Name",
            ctx.reason(R.NON_UNIQUE_NAME_ATTRIBUTE, R.INVALID_FIELD),
        )
    index = obj.attributes.add(name, attr.value, attr.type)
    _finish(ctx, obj)
    if ctx.v2:
        return AddAttributeResponse(unique_identifier=obj.uid)
    return AddAttributeResponse(
        unique_identifier=obj.uid,
        attribute=attribute_for_version(name, attr.value, ctx.version, index=index or None, type=attr.type),
    )


def _instance_with_value(obj: ManagedObject, name: str, value: Any) -> int | None:
    for index, existing in obj.attributes.instances(name):
        if existing.value == value:
            return index
    return None


def _echoed(named: int | None, used: int | None) -> int | None:
    """The Attribute Index of a 1.x Modify/Delete response: the one the client named, 0
    included (PyKMIP's client reads it: engine/quirks.py), else the one used unless it is the
    default 0 (which the OASIS test cases leave out)."""
    return named if named is not None else (used or None)


@operation(Operation.MODIFY_ATTRIBUTE, writes=True)
def modify_attribute(ctx: RequestContext, request: ModifyAttributeRequest) -> Struct:
    if ctx.v2:
        attr = single_attribute(ctx, request.new_attribute, "New Attribute")
    elif request.attribute is None:
        raise KmipError("Modify Attribute needs an Attribute", R.INVALID_MESSAGE)
    else:
        attr = request.attribute
    name, rule = checked(ctx, attr)
    if not rule.client_modify:
        raise read_only(ctx, name)
    obj = load_object(ctx, request.unique_identifier, for_update=True)
    _check_date_change(ctx, obj, name)
    if ctx.v2 and request.current_attribute is not None:
        current = single_attribute(ctx, request.current_attribute, "Current Attribute")
        index = _instance_with_value(obj, name, current.value)
        if index is None:
            raise KmipError(
                f"object {obj.uid!r} has no instance of {name!r} with the Current Attribute's value",
                R.ATTRIBUTE_INSTANCE_NOT_FOUND,
            )
    elif ctx.v2 and rule.multi and len(obj.attributes.instances(name)) > 1:
        raise KmipError(f"{name!r} has several values: say which one in Current Attribute", R.INVALID_FIELD)
    elif not ctx.v2:
        index = attr.index or 0
    else:
        instances = obj.attributes.instances(name)
        index = instances[0][0] if instances else 0
    if obj.attributes.get(name, index) is None:
        raise _not_found(ctx, obj, name, index)
    obj.attributes.set(name, attr.value, attr.type, index)
    _finish(ctx, obj)
    if ctx.v2:
        return ModifyAttributeResponse(unique_identifier=obj.uid)
    return ModifyAttributeResponse(
        unique_identifier=obj.uid,
        attribute=attribute_for_version(
            name, attr.value, ctx.version, index=_echoed(attr.index, index), type=attr.type
        ),
    )


@operation(Operation.DELETE_ATTRIBUTE, writes=True)
def delete_attribute(ctx: RequestContext, request: DeleteAttributeRequest) -> Struct:
    obj = load_object(ctx, request.unique_identifier, for_update=True)
    rule: AttributeRule | None
    if ctx.v2:
        if request.current_attribute is not None:
            current = single_attribute(ctx, request.current_attribute, "Current Attribute")
            name, rule = checked(ctx, current)
            index = _instance_with_value(obj, name, current.value)
            if index is None:
                raise KmipError(f"object {obj.uid!r} has no such instance of {name!r}", R.ATTRIBUTE_INSTANCE_NOT_FOUND)
        elif request.attribute_reference is not None:
            name, index = reference_name(request.attribute_reference), None
            rule = rule_for(name)
        else:
            raise KmipError("Delete Attribute needs a Current Attribute or an Attribute Reference", R.INVALID_MESSAGE)
    else:
        if request.attribute_name is None:
            raise KmipError("Delete Attribute needs an Attribute Name", R.INVALID_MESSAGE)
        name, index = request.attribute_name, request.attribute_index or 0
        rule = rule_for(name)
    if rule is None or not rule.client_delete:
        raise read_only(ctx, name) if rule is not None else _not_found(ctx, obj, name)
    deleted = obj.attributes.get(name, index) if index is not None else None
    if not obj.attributes.delete(name, index):
        raise _not_found(ctx, obj, name, index)
    _finish(ctx, obj)
    if ctx.v2 or deleted is None:
        return DeleteAttributeResponse(unique_identifier=obj.uid)
    return DeleteAttributeResponse(
        unique_identifier=obj.uid,
        attribute=attribute_for_version(
            name, deleted.value, ctx.version, index=_echoed(request.attribute_index, index), type=deleted.type
        ),
    )


@operation(Operation.SET_ATTRIBUTE, writes=True, min_version=(2, 0))
def set_attribute(ctx: RequestContext, request: SetAttributeRequest) -> Struct:
    attr = single_attribute(ctx, request.new_attribute, "New Attribute")
    name, rule = checked(ctx, attr)
    if rule.multi and not is_custom(name):
        raise KmipError(f"{name!r} may have several values: use Add or Modify Attribute", R.MULTI_VALUED_ATTRIBUTE)
    obj = load_object(ctx, request.unique_identifier, for_update=True)
    if len(obj.attributes.instances(name)) > 1:
        # A custom attribute may have several values, but clients (vCenter among them) set one
        # with Set Attribute: allowed while there is at most one to replace.
        raise KmipError(
            f"object {obj.uid!r} has several {name!r} values: use Modify Attribute", R.MULTI_VALUED_ATTRIBUTE
        )
    allowed = rule.client_modify if name in obj.attributes else rule.client_add
    if not allowed:
        raise read_only(ctx, name)
    _check_date_change(ctx, obj, name)
    obj.attributes.set(name, attr.value, attr.type)
    _finish(ctx, obj)
    return SetAttributeResponse(unique_identifier=obj.uid)


def _adjusted(value: Any, how: Any, by: Any) -> Any:
    if how == AdjustmentType.NEGATE:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError
        return -value
    sign = 1 if how == AdjustmentType.INCREMENT else -1 if how == AdjustmentType.DECREMENT else 0
    if not sign or not isinstance(by, int) or isinstance(by, bool):
        raise TypeError
    if isinstance(value, datetime):
        return value + timedelta(seconds=sign * by)
    if isinstance(value, int) and not isinstance(value, (bool, IntEnum)):
        return value + sign * by
    raise TypeError


@operation(Operation.ADJUST_ATTRIBUTE, writes=True, min_version=(2, 0))
def adjust_attribute(ctx: RequestContext, request: AdjustAttributeRequest) -> Struct:
    if request.attribute_reference is None or request.adjustment_type is None:
        raise KmipError("Adjust Attribute needs an Attribute Reference and an Adjustment Type", R.INVALID_MESSAGE)
    name = reference_name(request.attribute_reference)
    rule = rule_for(name)
    if rule is None or not rule.client_modify:
        raise (
            read_only(ctx, name)
            if rule is not None
            else KmipError(f"unknown attribute {name!r}", R.UNSUPPORTED_ATTRIBUTE)
        )
    obj = load_object(ctx, request.unique_identifier, for_update=True)
    _check_date_change(ctx, obj, name)
    current = obj.attributes.get(name, 0)
    if current is None:
        raise _not_found(ctx, obj, name)
    try:
        value = _adjusted(current.value, request.adjustment_type, request.adjustment_value)
    except TypeError:
        raise KmipError(f"attribute {name!r} cannot be adjusted that way", R.INVALID_FIELD) from None
    except OverflowError:
        raise KmipError(f"adjusting {name!r} leaves its range", R.NUMERIC_RANGE) from None
    typ = current.type if current.type != ItemType.STRUCTURE else None
    obj.attributes.set(name, value, typ)
    _finish(ctx, obj)
    return AdjustAttributeResponse(unique_identifier=obj.uid)
