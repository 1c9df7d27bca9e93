"""Locate's query plans on real databases: a search with a selective attribute condition is
driven from the attribute index, so its cost does not grow with the number of stored objects.

Checked with EXPLAIN QUERY PLAN on SQLite and EXPLAIN on PostgreSQL, on a store of a few
thousand objects mostly owned by the caller (the case where SQLite used to take the owner
index and read every object the caller owns). PostgreSQL is checked both before its first
ANALYZE of the freshly filled tables and after it: its choice depends on statistics.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kmip_server.storage import AttributeFilter, LocateQuery, ObjectRecord, StoredAttribute
from kmip_server.storage import locate as locate_sql
from kmip_server.storage import repository as repository_sql
from kmip_server.storage.repository import Repository, Session

OBJECTS = 3000
NOW = 2_000_000_000
PRE_ACTIVE, ACTIVE = 1, 2


def _record(index: int) -> ObjectRecord:
    attributes = [
        StoredAttribute("Activation Date", 0, b"D", number=NOW - 10 if index % 2 else NOW + 10),
        StoredAttribute("Initial Date", 0, b"I", number=1_900_000_000 + index),
        StoredAttribute("Name", 0, b"N" + str(index).encode(), text=f"key-{index}"),
        StoredAttribute("Object Group", 0, b"G", text=f"group-{index % 300}"),
        # Served once: every object has a Fresh row, which a Get's read must find by key.
        StoredAttribute("Fresh", 0, b"F", number=0),
    ]
    return ObjectRecord(
        uid=f"uid-{index:06d}",
        object_type=2,
        owner="alice" if index % 10 else "bob",
        state=PRE_ACTIVE,
        created=1_900_000_000,
        algorithm=3,
        length=256,
        wrapped_value=b"w" * 48,
        attributes=attributes,
    )


@pytest.fixture
def filled(store_url: str) -> Iterator[Repository]:
    repository = Repository(store_url)
    repository.create_schema()
    for start in range(0, OBJECTS, 1000):
        with repository.write() as session:
            for index in range(start, start + 1000):
                session.insert(_record(index))
    yield repository
    repository.dispose()


def plan(session: Session, query: LocateQuery, *, count: bool = False) -> str:
    built = locate_sql.count_statement(query) if count else locate_sql.locate_statement(query)
    assert built is not None
    _, statement, values = built
    return explain(session, statement, values)


def explain(session: Session, statement: Any, values: dict[str, Any]) -> str:
    conn = session.connection
    sql, params = statement.bound(conn, values)
    prefix = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN "
    rows = conn.exec_driver_sql(prefix + sql, params).all()
    return "\n".join(str(row[-1]) for row in rows)


NAME = AttributeFilter(name="Name", text="key-1234")
# An odd index was activated in the past: Active now, though its stored state is Pre-Active.
ODD = AttributeFilter(name="Name", text="key-1235")
SEARCHES: dict[str, tuple[dict[str, Any], str]] = {
    "name": ({"attributes": (NAME,)}, "ix_object_attributes_name_text"),
    "name, first item": ({"attributes": (NAME,), "max_items": 1}, "ix_object_attributes_name_text"),
    "name and state at a time": (
        {"attributes": (ODD,), "states": (ACTIVE,), "now": NOW, "object_types": (2,)},
        "ix_object_attributes_name_text",
    ),
    # What every Locate without a State condition asks (1.x too, engine/quirks.py): not destroyed.
    "name, not destroyed": (
        {"attributes": (NAME,), "states": (1, 2, 3, 4), "now": NOW},
        "ix_object_attributes_name_text",
    ),
    "object group": (
        {"attributes": (AttributeFilter(name="Object Group", text="group-7"),)},
        "ix_object_attributes_name_text",
    ),
    "name prefix": (
        {"attributes": (AttributeFilter(name="Name", text_prefix="key-123"),), "offset_items": 1},
        "ix_object_attributes_name_text",
    ),
    "date range": (
        {"attributes": (AttributeFilter(name="Initial Date", number_min=1_900_000_100, number_max=1_900_000_110),)},
        "ix_object_attributes_name_number",
    ),
}
# Indexes that, driving the search, would read objects in proportion to the store.
OBJECT_INDEXES = ("ix_managed_objects_owner", "ix_managed_objects_state", "ix_managed_objects_type_state")


def _assert_attribute_driven(found: str, index: str, dialect: str) -> None:
    assert index in found, found
    for other in OBJECT_INDEXES:
        assert other not in found, found
    if dialect == "sqlite":
        assert "SCAN managed_objects" not in found, found
        # The objects found are looked up by their uid, not walked in sequence order.
        assert "sqlite_autoindex_managed_objects_1 (uid=?)" in found, found
    else:
        assert "Seq Scan on managed_objects" not in found, found
        assert "managed_objects_pkey" in found, found


@pytest.mark.parametrize("analyzed", [False, True], ids=["fresh statistics", "after ANALYZE"])
def test_selective_attribute_searches_start_from_the_attribute_index(filled: Repository, analyzed: bool) -> None:
    if analyzed:
        with filled.write() as session:
            session.connection.exec_driver_sql("ANALYZE")
    with filled.read() as session:
        for label, (fields, index) in SEARCHES.items():
            for owners in (("alice",), ("alice", "bob"), None):
                query = LocateQuery(owners=owners, **fields)
                _assert_attribute_driven(plan(session, query), index, filled.dialect)
                _assert_attribute_driven(plan(session, query, count=True), index, filled.dialect)
            assert session.locate(LocateQuery(owners=("alice",), **fields)), label


def test_the_attribute_driven_searches_find_the_same_objects(filled: Repository) -> None:
    with filled.read() as session:
        assert session.locate(LocateQuery(owners=("alice",), attributes=(NAME,))) == ["uid-001234"]
        assert session.locate(LocateQuery(owners=("bob",), attributes=(NAME,))) == []
        assert session.locate(LocateQuery(states=(ACTIVE,), now=NOW, attributes=(ODD,))) == ["uid-001235"]
        assert session.locate(LocateQuery(states=(ACTIVE,), now=NOW, attributes=(NAME,))) == []
        assert session.locate(LocateQuery(states=(PRE_ACTIVE,), now=NOW, attributes=(NAME,))) == ["uid-001234"]
        group = AttributeFilter(name="Object Group", text="group-7")
        newest = session.locate(LocateQuery(owners=("alice",), attributes=(group,)))
        assert newest == [f"uid-{i:06d}" for i in (2707, 2407, 2107, 1807, 1507, 1207, 907, 607, 307, 7)]
        assert session.locate(LocateQuery(attributes=(group,), max_items=2, offset_items=1, newest_first=False)) == [
            "uid-000307",
            "uid-000607",
        ]
        assert session.count(LocateQuery(owners=("alice",), attributes=(group,), max_items=1)) == 10


@pytest.mark.parametrize("analyzed", [False, True], ids=["fresh statistics", "after ANALYZE"])
def test_a_gets_read_finds_the_objects_attributes_by_key(filled: Repository, analyzed: bool) -> None:
    # The Get path's one statement (with and without the attributes a policy reads): every
    # attribute it reads is looked up under the object's uid. SQLite used to answer the Fresh
    # check, an aggregate over (name, number_value), from that index, reading every object's
    # Fresh row: a Get's cost grew with the store.
    if analyzed:
        with filled.write() as session:
            session.connection.exec_driver_sql("ANALYZE")
    postgresql = filled.dialect == "postgresql"
    statements = (
        repository_sql._DRIVER_GET_VALUE,
        repository_sql._release_with(("Name", "Object Group", "x-team"), postgresql),
    )
    with filled.read() as session:
        for statement in statements:
            found = explain(session, statement, {"uid": "uid-001234"})
            assert "ix_object_attributes_name_number" not in found, found
            assert "ix_object_attributes_name_text" not in found, found
            assert ("SCAN object_attributes" if not postgresql else "Seq Scan on object_attributes") not in found, found
        record = session.get_for_release("uid-001234", ("Name", "Object Group"))
        assert record is not None and record.fresh is False
        assert [(a.name, a.text) for a in record.attributes] == [("Name", "key-1234"), ("Object Group", "group-34")]
