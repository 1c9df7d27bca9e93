"""Templates (KMIP 1.x, deprecated since 1.3, gone in 2.0): a named object holding attributes
that a Create or Register applies by naming it in its Template-Attribute.

A Template is registered like any object (its Template structure is its value, wrapped like
every other value) and found by its Name. The attributes a request gives itself take
precedence over a template's (KMIP 1.4 §2.2.6); of several templates named, a later one's
attributes replace an earlier one's of the same name. Names, Unique Identifiers and other
attributes no client may set are refused inside a Template, as they would be in the request.
"""

from __future__ import annotations

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.model import Attribute, Attributes, TemplateAttribute
from kmip_client.protocol.model.attributes import Name, attribute_name
from kmip_client.protocol.model.base import decode_struct
from kmip_client.protocol.model.objects import Template
from kmip_client.protocol.spec.enums import ObjectType, ResultReason
from kmip_client.protocol.ttlv import decode

from ..engine.access import scoped_locate
from ..engine.context import RequestContext
from ..objects import lifecycle
from ..storage.records import AttributeFilter, LocateQuery
from .attribute_input import checked
from .common import load_object, wrap_context

R = ResultReason


def requested_attributes(
    ctx: RequestContext, template: TemplateAttribute | None, attributes: Attributes | None
) -> list[Attribute]:
    """The attributes a Create/Register-style request asks for, in either form (1.x or 2.x),
    with those of the templates its Template-Attribute names."""
    if template is None:
        return list(attributes.attributes) if attributes is not None else []
    explicit = list(template.attributes)
    if not template.names:
        return explicit
    from_templates: dict[str, list[Attribute]] = {}
    for name in template.names:
        by_name: dict[str, list[Attribute]] = {}
        for attr in template_contents(ctx, name):
            by_name.setdefault(attribute_name(attr), []).append(attr)
        from_templates.update(by_name)  # a later template's values replace an earlier one's
    given = {attribute_name(attr) for attr in explicit}
    inherited = [attr for name, attrs in from_templates.items() if name not in given for attr in attrs]
    return inherited + explicit


def template_contents(ctx: RequestContext, name: Name) -> tuple[Attribute, ...]:
    """The attributes of the Template called ``name`` that the caller may use."""
    query = LocateQuery(
        object_types=(int(ObjectType.TEMPLATE),),
        states=lifecycle.LIVE_STATES,
        attributes=(AttributeFilter(name="Name", text=name.value),),
        max_items=2,
        now=ctx.now,
    )
    found, _ = scoped_locate(ctx, query)
    if len(found) != 1:
        problem = "no Template is" if not found else "several Templates are"
        raise KmipError(f"{problem} named {name.value!r}", R.ITEM_NOT_FOUND)
    record = load_object(ctx, found[0], attributes=False).record
    assert record.wrapped_value is not None  # a live Template keeps its value
    plain = ctx.custody.unwrap(record.wrapped_value, wrap_context(record.uid, record.object_type))
    stored = decode_struct(Template, decode(plain))
    assert isinstance(stored, Template)
    return stored.attributes


def checked_template(ctx: RequestContext, template: Template) -> Template:
    """A Template a client registers: KMIP 1.x only, holding attributes a client may set."""
    if ctx.v2:
        raise KmipError("Templates do not exist in KMIP 2.x; send the attributes themselves", R.INVALID_OBJECT_TYPE)
    if not template.attributes:
        raise KmipError("a Template needs at least one Attribute", R.INVALID_FIELD)
    for attr in template.attributes:
        name, rule = checked(ctx, attr)
        if not rule.on_create or name == "Name":
            raise KmipError(
                f"a Template may not hold {name!r}: a client cannot give it to a new object", R.INVALID_FIELD
            )
    return Template(attributes=template.attributes)
