"""Locate: the client's attributes become one SQL query (see :mod:`kmip_server.storage`).

Matching rules: every given attribute must match (AND). Object Type, State, Cryptographic
Algorithm and Length match the object's columns; text values (Name, Object Group, text custom
attributes) match exactly; numbers and enumerations match exactly; a date attribute given
once matches that second, given twice it is a range between the two; a Cryptographic Usage
Mask matches objects whose mask has at least those bits; anything structured matches its
exact encoding. Objects of other owners are never returned (unless the caller is an
administrator). Destroyed objects are hidden unless the Locate filters on State or, in 2.x, the
Storage Status Mask asks for them.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.model import Attribute, Struct
from kmip_client.protocol.model.attributes import Name
from kmip_client.protocol.model.payloads.locate import LocateRequest, LocateResponse
from kmip_client.protocol.spec.enums import Operation, ResultReason, StorageStatusMask

from ..engine.access import scoped_locate
from ..engine.context import RequestContext
from ..engine.registry import operation
from ..objects import lifecycle
from ..objects.attribute_set import encode_value, search_keys
from ..storage.records import AttributeFilter, LocateQuery
from .attribute_input import checked

R = ResultReason


def _filters(ctx: RequestContext, given: tuple[Attribute, ...]) -> dict[str, object]:
    by_name: dict[str, list[Attribute]] = defaultdict(list)
    for attr in given:
        name, _ = checked(ctx, attr)
        by_name[name].append(attr)
    query: dict[str, object] = {}
    filters: list[AttributeFilter] = []
    for name, attrs in by_name.items():
        values = [a.value for a in attrs]
        if name == "Object Type":
            query["object_types"] = tuple(int(v) for v in values)
        elif name == "State":
            query["states"] = tuple(int(v) for v in values)
        elif name == "Cryptographic Algorithm" and len(values) == 1:
            query["algorithm"] = int(values[0])
        elif name == "Cryptographic Length" and len(values) == 1:
            query["length"] = int(values[0])
        elif len(values) == 2 and all(isinstance(v, datetime) for v in values):
            low, high = sorted(int(v.timestamp()) for v in values)
            filters.append(AttributeFilter(name=name, number_min=low, number_max=high))
        else:
            for attr in attrs:
                filters.append(_filter(name, attr))
    query["attributes"] = tuple(filters)
    return query


def _filter(name: str, attr: Attribute) -> AttributeFilter:
    value = attr.value
    if name == "Cryptographic Usage Mask":
        return AttributeFilter(name=name, number_all_bits=int(value))
    text, number = search_keys(value)
    if isinstance(value, Name) or isinstance(value, str):
        return AttributeFilter(name=name, text=text)
    if number is not None and not isinstance(value, Struct):
        return AttributeFilter(name=name, number=number)
    return AttributeFilter(name=name, value=encode_value(name, value, attr.type))


# A read transaction: a State condition matches the state an object is in at the request's
# time, its Activation and Deactivation Dates applied in the SQL (LocateQuery.now), so nothing
# is written and Locate never takes the store's write lock.
@operation(Operation.LOCATE, writes=False)
def locate(ctx: RequestContext, request: LocateRequest) -> Struct:
    given = tuple(request.attributes.attributes) if ctx.v2 and request.attributes else request.attribute_list
    fields = _filters(ctx, given)
    if request.maximum_items is not None and request.maximum_items < 0:
        raise KmipError("Maximum Items must not be negative", R.INVALID_FIELD)
    if request.offset_items is not None and request.offset_items < 0:
        raise KmipError("Offset Items must not be negative", R.INVALID_FIELD)
    if "states" not in fields:
        # 2.x: destroyed objects are found only when the Storage Status Mask asks for them.
        # 1.x has no such bit, and real 1.x clients (PyKMIP, Percona's) fail on the destroyed
        # objects a literal reading would return: hidden unless the Locate filters on State
        # (a named quirk, see engine/quirks.py).
        mask = int(request.storage_status_mask or StorageStatusMask.ON_LINE_STORAGE) if ctx.v2 else 0
        if not mask & StorageStatusMask.DESTROYED_STORAGE:
            fields["states"] = lifecycle.LIVE_STATES
    query = LocateQuery(
        max_items=request.maximum_items,
        offset_items=request.offset_items or 0,
        now=ctx.now,
        **fields,  # type: ignore[arg-type]
    )
    counted = ctx.version >= (1, 3) and (request.maximum_items is not None or request.offset_items)
    found, located = scoped_locate(ctx, query, count=bool(counted))
    if found:
        ctx.id_placeholder = found[0]
    return LocateResponse(located_items=located, unique_identifiers=tuple(found))
