"""Attributes as clients send them, checked against the rules (templates.py collects them from either request form)."""

from __future__ import annotations

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.model import Attribute, Attributes
from kmip_client.protocol.model.attributes import attribute_name
from kmip_client.protocol.spec.enums import ResultReason

from ..engine.context import RequestContext
from ..objects.attribute_rules import ROTATION_ATTRIBUTES, VALUE_TYPES, AttributeRule, rule_for
from ..objects.attribute_set import AttributeSet
from ..objects.server_attributes import defined_in

R = ResultReason


def single_attribute(ctx: RequestContext, container: Attributes | None, what: str) -> Attribute:
    """The one attribute of a 2.x New/Current Attribute structure."""
    if container is None or len(container.attributes) != 1:
        raise KmipError(f"{what} must hold exactly one attribute", R.INVALID_MESSAGE)
    return container.attributes[0]


def checked(ctx: RequestContext, attr: Attribute) -> tuple[str, AttributeRule]:
    """The canonical name and rule of a client attribute, after checking its value's type."""
    name = attribute_name(attr)
    rule = rule_for(name)
    if rule is None:
        raise KmipError(
            f"unknown attribute {name!r} (custom attributes need an x- or y- name, or a Vendor Identification)",
            ctx.reason(R.UNSUPPORTED_ATTRIBUTE, R.INVALID_FIELD),
        )
    if name in ROTATION_ATTRIBUTES and not defined_in(name, ctx.version):
        # KMIP 2.1's: a client of an earlier version cannot have them. (The versions of older
        # attributes are not enforced here: clients of those versions send some of them.)
        raise KmipError(
            f"attribute {name!r} is defined from KMIP 2.1 on, not in {ctx.version[0]}.{ctx.version[1]}",
            ctx.reason(R.UNSUPPORTED_ATTRIBUTE, R.INVALID_FIELD),
        )
    if attr.value is None:
        raise KmipError(f"attribute {name!r} has no value", ctx.reason(R.INVALID_ATTRIBUTE_VALUE, R.INVALID_FIELD))
    expected = VALUE_TYPES.get(name)
    if expected is not None and attr.type is not None and attr.type != expected:
        raise KmipError(
            f"attribute {name!r} must be a {expected.name.replace('_', ' ').title()}, got {attr.type.name}",
            ctx.reason(R.INVALID_ATTRIBUTE_VALUE, R.INVALID_FIELD),
        )
    if name == "Rotate Interval" and attr.value == 0:
        # A key due again as soon as it is made would be replaced at every check, for ever.
        raise KmipError("Rotate Interval must be at least one second", R.INVALID_ATTRIBUTE_VALUE)
    return name, rule


def read_only(ctx: RequestContext, name: str) -> KmipError:
    return KmipError(
        f"attribute {name!r} is set by the server and cannot be changed by a client",
        ctx.reason(R.ATTRIBUTE_READ_ONLY, R.PERMISSION_DENIED),
    )


def apply_initial(ctx: RequestContext, attrs: AttributeSet, given: list[Attribute]) -> None:
    """Put a new object's client-supplied attributes into ``attrs``, enforcing the rules."""
    for attr in given:
        name, rule = checked(ctx, attr)
        if not rule.on_create:
            raise read_only(ctx, name)
        put_initial(ctx, attrs, name, rule, attr)


def put_initial(ctx: RequestContext, attrs: AttributeSet, name: str, rule: AttributeRule, attr: Attribute) -> None:
    """One checked attribute of a new object into ``attrs`` (a repeated instance once; a
    single-valued attribute given twice refused)."""
    if rule.multi:
        if not attrs.has_value(name, attr.value):
            attrs.add(name, attr.value, attr.type)
    elif name in attrs:
        raise KmipError(
            f"attribute {name!r} has a single value but was given more than once",
            ctx.reason(R.ATTRIBUTE_SINGLE_VALUED, R.INVALID_FIELD),
        )
    else:
        attrs.set_from(name, attr)
