"""Translation of a :class:`~.records.LocateQuery` into one SQL statement.

Every condition runs in the database; Python never sees the rows that do not match. Values
always travel as bound parameters, and the statement's shape depends only on which conditions
are present, so SQLAlchemy's compiled cache serves repeated searches.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, ColumnElement, Select, and_, func, literal, select

from .records import AttributeFilter, LocateQuery
from .schema import managed_objects, object_attributes

_objects = managed_objects.c
_attrs = object_attributes.c

# The LIKE escape character; chosen because it cannot be confused with the wildcards.
_ESCAPE = "\\"


def like_prefix_pattern(prefix: str) -> str:
    """The LIKE pattern matching text that starts with ``prefix`` taken literally."""
    escaped = prefix.replace(_ESCAPE, _ESCAPE + _ESCAPE).replace("%", _ESCAPE + "%").replace("_", _ESCAPE + "_")
    return escaped + "%"


def _attribute_condition(flt: AttributeFilter) -> ColumnElement[bool]:
    """True for an object with at least one instance of ``flt.name`` meeting every condition.

    Written as ``uid IN (SELECT uid ...)`` rather than a correlated EXISTS: the two mean the
    same, but SQLite (before 3.46) runs a correlated EXISTS once per object row, scanning the
    whole table, while the IN form lets it start from the (name, text_value) or
    (name, number_value) index and look up only the matching objects. PostgreSQL plans both
    as the same semi-join.
    """
    conditions: list[ColumnElement[bool]] = [_attrs.name == flt.name]
    if flt.text is not None:
        conditions.append(_attrs.text_value == flt.text)
    if flt.text_prefix is not None:
        # Case-sensitive on both backends: PostgreSQL's LIKE is, and the repository turns on
        # SQLite's case_sensitive_like for every connection.
        conditions.append(_attrs.text_value.like(like_prefix_pattern(flt.text_prefix), escape=_ESCAPE))
    if flt.number is not None:
        conditions.append(_attrs.number_value == flt.number)
    if flt.number_min is not None:
        conditions.append(_attrs.number_value >= flt.number_min)
    if flt.number_max is not None:
        conditions.append(_attrs.number_value <= flt.number_max)
    if flt.number_all_bits is not None:
        # Typed BIGINT so PostgreSQL applies int8 & int8 whatever size psycopg gives the value.
        bits = literal(flt.number_all_bits, BigInteger)
        conditions.append(_attrs.number_value.bitwise_and(bits) == bits)
    if flt.value is not None:
        conditions.append(_attrs.value == flt.value)
    return _objects.uid.in_(select(_attrs.uid).where(and_(*conditions)))


def _conditions(query: LocateQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    # in_() with a Python sequence becomes one "expanding" bound parameter, so the compiled
    # statement is reused whatever the number of values.
    if query.object_types:
        conditions.append(_objects.object_type.in_(query.object_types))
    if query.states:
        conditions.append(_objects.state.in_(query.states))
    if query.owners is not None:
        conditions.append(_objects.owner.in_(query.owners))
    if query.algorithm is not None:
        conditions.append(_objects.algorithm == query.algorithm)
    if query.length is not None:
        conditions.append(_objects.length == query.length)
    conditions.extend(_attribute_condition(flt) for flt in query.attributes)
    return conditions


def _check(query: LocateQuery) -> None:
    if query.max_items is not None and query.max_items < 0:
        raise ValueError(f"max_items must not be negative, got {query.max_items}")
    if query.offset_items < 0:
        raise ValueError(f"offset_items must not be negative, got {query.offset_items}")


def matches_nothing(query: LocateQuery) -> bool:
    """Whether the query needs no database round trip to know its answer is empty."""
    # owners == () is "allowed to see no owner's objects", not "any owner" (that is None).
    return query.owners is not None and not query.owners


def locate_statement(query: LocateQuery) -> Select[str] | None:
    """The SELECT of matching uids, newest or oldest first, paged; None when nothing can match."""
    _check(query)
    if matches_nothing(query) or query.max_items == 0:
        return None
    order = _objects.sequence.desc() if query.newest_first else _objects.sequence.asc()
    stmt = select(_objects.uid).where(*_conditions(query)).order_by(order)
    if query.offset_items:
        stmt = stmt.offset(query.offset_items)
    if query.max_items is not None:
        stmt = stmt.limit(query.max_items)
    return stmt


def count_statement(query: LocateQuery) -> Select[int] | None:
    """The SELECT COUNT of matches, ignoring paging; None when nothing can match."""
    _check(query)
    if matches_nothing(query):
        return None
    return select(func.count()).select_from(managed_objects).where(*_conditions(query))
