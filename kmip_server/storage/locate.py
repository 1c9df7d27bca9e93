"""Translation of a :class:`~.records.LocateQuery` into one SQL statement.

Every condition runs in the database; Python never sees the rows that do not match. Values
always travel as bound parameters, and the statement's shape depends only on which conditions
are present (and how many values each list has): each shape is built and compiled once
(:func:`statements`) and run straight on the driver, for building a statement and looking
it up in SQLAlchemy's cache cost 30 times the indexed search itself.

**Which index drives.** A search with a selective attribute condition (a Name, an Object
Group, a number or date) starts from the attribute index and looks up just the objects it
finds, whatever the number of stored objects. Left to itself SQLite (without statistics)
took the owner index instead whenever the caller's owner was a condition, and read every
object the caller owns: 21 ms per Locate by Name at 100,000 objects instead of 0.02 ms. So
in such a search the object-column conditions and the ORDER BY are written so that no index
can serve them (:class:`Unindexed`: unary ``+``, SQLite's documented way to say so): they are
checked on the few rows found. PostgreSQL chooses well once it has statistics (autovacuum
keeps them), but until its first ANALYZE of a freshly filled table it drove the same search
from the owner and state indexes (55 ms at 100,000 objects), so it gets the same treatment,
an expression no index matches. The plan tests hold both backends to it.

**Dates.** Given the request's time (``LocateQuery.now``), a State condition matches the
state an object is in *now*: a Pre-Active object whose Activation Date has passed counts as
Active, one Pre-Active or Active whose Deactivation Date has passed as Deactivated (the rules
of ``kmip_server.objects.lifecycle.effective_state``). The stored state is not changed, so
Locate runs in a read transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal_column,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

from kmip_client.protocol.spec.enums import State

from .driver import DriverStatement
from .records import LocateQuery
from .schema import managed_objects, object_attributes

_objects = managed_objects.c
_attrs = object_attributes.c

# The LIKE escape character; chosen because it cannot be confused with the wildcards.
_ESCAPE = "\\"


def like_prefix_pattern(prefix: str) -> str:
    """The LIKE pattern matching text that starts with ``prefix`` taken literally."""
    escaped = prefix.replace(_ESCAPE, _ESCAPE + _ESCAPE).replace("%", _ESCAPE + "%").replace("_", _ESCAPE + "_")
    return escaped + "%"


class Unindexed(ColumnElement[Any]):
    """``column`` as an expression with its value that no index serves: ``+column`` on
    SQLite (a no-op on the value that keeps the planner off the column's indexes); on
    PostgreSQL ``column + 0`` or ``column || ''``, which no index of ours matches either."""

    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column
        self.type = column.type


@compiles(Unindexed)
def _compile_unindexed(element: Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    return f"({column} + 0)" if element.type._type_affinity is Integer else f"({column} || '')"


@compiles(Unindexed, "sqlite")
def _compile_unindexed_sqlite(element: Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + compiler.process(element.column, **kw)


# The search keys of an AttributeFilter, in the order they are bound; the first three are
# those the attribute index finds rows by (besides the name), see _SELECTIVE.
_FILTER_FIELDS = ("text", "text_prefix", "number", "number_min", "number_max", "number_all_bits", "value")
# A usage mask's bits and a whole encoded value are found by the attribute's name alone.
_SELECTIVE = frozenset({"text", "text_prefix", "number", "number_min", "number_max"})

_PRE_ACTIVE, _ACTIVE, _DEACTIVATED = int(State.PRE_ACTIVE), int(State.ACTIVE), int(State.DEACTIVATED)
_DATED = frozenset({_PRE_ACTIVE, _ACTIVE, _DEACTIVATED})

# A query's shape is a tuple of terms, each a kind and the number of values it binds; its
# values are bound as p0, p1, ... in term order, then "offset" and "limit".
Term = tuple[Any, ...]


def _candidates(states: tuple[int, ...], now: int | None) -> list[int] | None:
    """The stored states that may be one of ``states`` at ``now`` (None: the stored state
    answers alone). Time moves objects only among Pre-Active, Active and Deactivated, so when
    the search wants none or all of those the dates cannot change its answer."""
    wanted = set(states)
    dated = wanted & _DATED
    if now is None or not dated or dated == _DATED:
        return None
    if _ACTIVE in wanted:
        wanted.add(_PRE_ACTIVE)
    if _DEACTIVATED in wanted:
        wanted |= {_PRE_ACTIVE, _ACTIVE}
    return sorted(wanted)


def _terms(query: LocateQuery) -> Iterator[tuple[Term, list[Any]]]:
    """The query's terms and the values each binds, in binding order."""
    if query.object_types:
        yield ("object_types", len(query.object_types)), list(query.object_types)
    if query.states:
        candidates = _candidates(query.states, query.now)
        if candidates is None:
            yield ("states", len(query.states)), list(query.states)
        else:
            yield ("dated_states", len(candidates), len(query.states)), [*candidates, query.now, *query.states]
    if query.owners is not None:
        yield ("owners", len(query.owners)), list(query.owners)
    if query.tenants is not None:
        yield ("tenants", len(query.tenants)), list(query.tenants)
    if query.algorithm is not None:
        yield ("algorithm",), [query.algorithm]
    if query.length is not None:
        yield ("length",), [query.length]
    for flt in query.attributes:
        fields = tuple(f for f in _FILTER_FIELDS if getattr(flt, f) is not None)
        yield ("attribute", fields), [flt.name, *_bound_filter_values(fields, [getattr(flt, f) for f in fields])]


class _Binder:
    """Hands out the bound parameters p0, p1, ... in the order _terms lists the values."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, type_: Any = None) -> Any:
        param = bindparam(f"p{self.count}", type_=type_)
        self.count += 1
        return param

    def many(self, n: int) -> list[Any]:
        return [self() for _ in range(n)]


def _attribute_condition(fields: tuple[str, ...], bind: _Binder) -> ColumnElement[bool]:
    """True for an object with at least one instance of the attribute meeting every condition.

    Written as ``uid IN (SELECT uid ...)`` rather than a correlated EXISTS: the two mean the
    same, but SQLite (before 3.46) runs a correlated EXISTS once per object row, scanning the
    whole table, while the IN form lets it start from the (name, text_value) or
    (name, number_value) index and look up only the matching objects. PostgreSQL plans both
    as the same semi-join.
    """
    conditions: list[ColumnElement[bool]] = [_attrs.name == bind()]
    for field in fields:
        if field == "text":
            conditions.append(_attrs.text_value == bind())
        elif field == "text_prefix":
            # Case-sensitive on both backends: PostgreSQL's LIKE is, and the repository turns
            # on SQLite's case_sensitive_like for every connection. The pattern is bound as
            # like_prefix_pattern() makes it.
            conditions.append(_attrs.text_value.like(bind(), escape=_ESCAPE))
        elif field == "number":
            conditions.append(_attrs.number_value == bind())
        elif field == "number_min":
            conditions.append(_attrs.number_value >= bind())
        elif field == "number_max":
            conditions.append(_attrs.number_value <= bind())
        elif field == "number_all_bits":
            # Typed BIGINT so PostgreSQL applies int8 & int8 whatever size psycopg gives the
            # value; bound twice (two parameters, one value).
            bits, again = bind(BigInteger), bind(BigInteger)
            conditions.append(_attrs.number_value.bitwise_and(bits) == again)
        else:
            conditions.append(_attrs.value == bind())
    return _objects.uid.in_(select(_attrs.uid).where(and_(*conditions)))


def _date_passed(attribute: str, now: Any) -> ColumnElement[bool]:
    return exists().where(_attrs.uid == _objects.uid, _attrs.name == attribute, _attrs.number_value <= now)


def _conditions(shape: tuple[Term, ...], driven: bool) -> list[ColumnElement[bool]]:
    """The WHERE conditions of a shape, binding parameters in _terms' order."""
    bind = _Binder()
    # See the module docstring: with a selective attribute condition, no object-column index.
    wrap: Any = Unindexed if driven else (lambda column: column)
    conditions: list[ColumnElement[bool]] = []
    for term in shape:
        kind = term[0]
        if kind == "object_types":
            conditions.append(wrap(_objects.object_type).in_(bind.many(term[1])))
        elif kind == "states":
            conditions.append(wrap(_objects.state).in_(bind.many(term[1])))
        elif kind == "dated_states":
            # The stored states that may have become a wanted one (so the state index still
            # narrows the search), then the state they are in now.
            conditions.append(wrap(_objects.state).in_(bind.many(term[1])))
            now = bind(BigInteger)
            # The states as literals: the driver-level statement binds only the caller's values.
            states: list[ColumnElement[Any]] = [literal_column(str(v)) for v in (_PRE_ACTIVE, _ACTIVE, _DEACTIVATED)]
            pre, active, deactivated = states
            current = case(
                (and_(_objects.state.in_((pre, active)), _date_passed("Deactivation Date", now)), deactivated),
                (and_(_objects.state == pre, _date_passed("Activation Date", now)), active),
                else_=_objects.state,
            )
            conditions.append(current.in_(bind.many(term[2])))
        elif kind == "owners":
            conditions.append(wrap(_objects.owner).in_(bind.many(term[1])))
        elif kind == "tenants":
            conditions.append(wrap(_objects.tenant).in_(bind.many(term[1])))
        elif kind == "algorithm":
            conditions.append(wrap(_objects.algorithm) == bind())
        elif kind == "length":
            conditions.append(wrap(_objects.length) == bind())
        else:
            conditions.append(_attribute_condition(term[1], bind))
    return conditions


def _values(query: LocateQuery) -> tuple[tuple[Term, ...], dict[str, Any]]:
    shape: list[Term] = []
    values: list[Any] = []
    for term, bound in _terms(query):
        shape.append(term)
        values.extend(bound)
    return tuple(shape), {f"p{i}": v for i, v in enumerate(values)}


def _bound_filter_values(fields: tuple[str, ...], given: list[Any]) -> Iterator[Any]:
    """An attribute filter's values as _attribute_condition binds them."""
    for field, value in zip(fields, given, strict=True):
        if field == "text_prefix":
            yield like_prefix_pattern(value)
        elif field == "number_all_bits":
            yield value
            yield value
        else:
            yield value


@functools.lru_cache(maxsize=512)
def statements(
    shape: tuple[Term, ...], newest_first: bool, offset: bool, limit: bool
) -> tuple[Select[Any], Select[Any], DriverStatement, DriverStatement]:
    """The SELECT of matching uids (ordered, paged) and the SELECT COUNT of a shape, each also
    as a DriverStatement compiled once per dialect."""
    driven = any(term[0] == "attribute" and _SELECTIVE.intersection(term[1]) for term in shape)
    conditions = _conditions(shape, driven)
    # Attribute-driven, the few matches are sorted; otherwise the sequence index gives the order.
    sequence = Unindexed(_objects.sequence) if driven else _objects.sequence
    order = sequence.desc() if newest_first else sequence.asc()
    found = select(_objects.uid).where(*conditions).order_by(order)
    if offset:
        found = found.offset(bindparam("offset"))
    if limit:
        found = found.limit(bindparam("limit"))
    counted = select(func.count()).select_from(managed_objects).where(*conditions)
    return found, counted, DriverStatement(found), DriverStatement(counted)


def _check(query: LocateQuery) -> None:
    if query.max_items is not None and query.max_items < 0:
        raise ValueError(f"max_items must not be negative, got {query.max_items}")
    if query.offset_items < 0:
        raise ValueError(f"offset_items must not be negative, got {query.offset_items}")


def matches_nothing(query: LocateQuery) -> bool:
    """Whether the query needs no database round trip to know its answer is empty."""
    # owners == () is "allowed to see no owner's objects", not "any owner" (that is None).
    return (query.owners is not None and not query.owners) or (query.tenants is not None and not query.tenants)


def locate_statement(query: LocateQuery) -> tuple[Select[Any], DriverStatement, dict[str, Any]] | None:
    """The SELECT of matching uids, newest or oldest first, paged, with its parameters; None
    when nothing can match."""
    _check(query)
    if matches_nothing(query) or query.max_items == 0:
        return None
    shape, params = _values(query)
    offset, limit = bool(query.offset_items), query.max_items is not None
    found, _, driver, _ = statements(shape, query.newest_first, offset, limit)
    if offset:
        params["offset"] = query.offset_items
    if limit:
        params["limit"] = query.max_items
    return found, driver, params


def count_statement(query: LocateQuery) -> tuple[Select[Any], DriverStatement, dict[str, Any]] | None:
    """The SELECT COUNT of matches, ignoring paging, with its parameters; None when nothing
    can match."""
    _check(query)
    if matches_nothing(query):
        return None
    shape, params = _values(query)
    _, counted, _, driver = statements(shape, query.newest_first, False, False)
    return counted, driver, params
