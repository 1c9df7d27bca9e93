"""The storage repository on real databases: a temporary SQLite file and PostgreSQL.

PostgreSQL runs at ``STRONGROOM_TEST_POSTGRES_URL`` (default: the local ``test`` database);
each test gets its own schema, dropped afterwards, so concurrent runs do not interfere. An
unreachable PostgreSQL fails the PostgreSQL cases: the store must work on both, so a missing
server is an error of the test machine, not a reason to pass (``.ci/run`` starts it).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from kmip_server.storage import AttributeFilter, LocateQuery, ObjectRecord, StoredAttribute
from kmip_server.storage import sqlite as sqlite_module
from kmip_server.storage.repository import Repository, TransactionAborted
from kmip_server.storage.schema import SCHEMA_VERSION, object_attributes, schema_version

SYMMETRIC_KEY, SECRET_DATA, OPAQUE = 2, 7, 8
PRE_ACTIVE, ACTIVE, DEACTIVATED, COMPROMISED = 1, 2, 3, 4
AES, RSA = 3, 4


@pytest.fixture
def url(store_url: str) -> str:
    return store_url


@pytest.fixture
def repo(url: str) -> Iterator[Repository]:
    repository = Repository(url)
    repository.create_schema()
    yield repository
    repository.dispose()


def record(uid: str, **fields: Any) -> ObjectRecord:
    values: dict[str, Any] = {
        "object_type": SYMMETRIC_KEY,
        "owner": "alice",
        "state": ACTIVE,
        "created": 1_900_000_000,
        "algorithm": AES,
        "length": 256,
        "value_format": 1,
        "wrapped_value": b"\x00wrapped\xff" + uid.encode(),
        "custody_key": "master-1",
    }
    values.update(fields)
    return ObjectRecord(uid=uid, **values)


def name(text_value: str, index: int = 0) -> StoredAttribute:
    return StoredAttribute("Name", index, b"N:" + text_value.encode(), text=text_value)


def insert(repo: Repository, *records: ObjectRecord) -> None:
    with repo.write() as s:
        for rec in records:
            s.insert(rec)


# -- objects --------------------------------------------------------------------------------


def test_insert_get_round_trip(repo: Repository) -> None:
    attributes = [
        name("first"),
        name("second", 1),
        StoredAttribute("Cryptographic Usage Mask", 0, b"\x00\x00\x00\x0c", number=12),
        StoredAttribute("Activation Date", 0, bytes(range(256)), number=2**40),
        StoredAttribute("x-blob", 0, b"\x00\x01\x00"),
    ]
    rec = record("k1", attributes=attributes)
    insert(repo, rec)
    assert isinstance(rec.sequence, int)
    with repo.read() as s:
        got = s.get("k1")
    rec.attributes.sort(key=lambda a: (a.name, a.index))  # returned in (name, index) order
    assert got == rec
    assert got is not None and isinstance(got.wrapped_value, bytes)
    assert got.attributes[0].value == bytes(range(256))


def test_none_fields_round_trip(repo: Repository) -> None:
    rec = record("opaque", object_type=OPAQUE, algorithm=None, length=None, value_format=None)
    rec.wrapped_value = None
    rec.custody_key = None
    insert(repo, rec)
    with repo.read() as s:
        assert s.get("opaque") == rec


def test_get_without_attributes_and_unknown(repo: Repository) -> None:
    insert(repo, record("k1", attributes=[name("a")]))
    with repo.read() as s:
        got = s.get("k1", attributes=False)
        assert got is not None and got.attributes == [] and got.wrapped_value is not None
        assert s.get("nope") is None
        assert s.get("nope", attributes=False) is None
        assert s.get_attributes("nope") == []


def test_get_attributes_order_and_names(repo: Repository) -> None:
    attributes = [
        StoredAttribute("x-b", 0, b"1"),
        name("z", 2),
        StoredAttribute("Object Group", 0, b"g", text="g"),
        name("x", 0),
        StoredAttribute("a-lower", 0, b"2"),  # code-point order: upper case sorts first
        name("y", 1),
    ]
    insert(repo, record("k1", attributes=attributes))
    with repo.read() as s:
        got = s.get_attributes("k1")
        assert [(a.name, a.index) for a in got] == [
            ("Name", 0),
            ("Name", 1),
            ("Name", 2),
            ("Object Group", 0),
            ("a-lower", 0),
            ("x-b", 0),
        ]
        assert [a.text for a in s.get_attributes("k1", ["Name"])] == ["x", "y", "z"]
        assert [a.name for a in s.get_attributes("k1", ["x-b", "Object Group", "missing"])] == ["Object Group", "x-b"]
        assert s.get_attributes("k1", []) == []


def test_the_value_read_joins_the_named_attributes_in_one_statement(repo: Repository) -> None:
    attributes = [
        name("z", 1),
        name("y", 0),
        StoredAttribute("Object Group", 0, b"g", text="g"),
        StoredAttribute("Sensitive", 0, b"\x01", number=1),
        StoredAttribute("x-team", 0, b"p", text="payments"),
    ]
    insert(repo, record("k1", attributes=attributes), record("bare"))
    with repo.read() as s:
        plain = s.get_for_release("k1")
        joined = s.get_for_release("k1", ("Name", "Object Group", "Operation Policy Name"))
        assert plain is not None and joined is not None
        assert plain.attributes == [] and (plain.withheld_by, plain.fresh) == ("Sensitive", True)
        assert (joined.withheld_by, joined.fresh, joined.wrapped_value) == ("Sensitive", True, plain.wrapped_value)
        assert [(a.name, a.index, a.text) for a in joined.attributes] == [
            ("Name", 0, "y"),
            ("Name", 1, "z"),
            ("Object Group", 0, "g"),
        ]
        bare = s.get_for_release("bare", ("Name", "x-team"))
        assert bare is not None and bare.attributes == [] and bare.withheld_by is None
        assert s.get_for_release("missing", ("Name",)) is None


def test_get_for_update(repo: Repository) -> None:
    insert(repo, record("k1"))
    with repo.write() as s:
        got = s.get("k1", for_update=True, attributes=False)
        assert got is not None and got.uid == "k1"
    with repo.read() as s, pytest.raises(RuntimeError):
        s.get("k1", for_update=True)


def test_duplicate_uid_is_an_integrity_error(repo: Repository) -> None:
    insert(repo, record("k1"))
    with pytest.raises(IntegrityError), repo.write() as s:
        s.insert(record("k1"))


def test_update(repo: Repository) -> None:
    insert(repo, record("k1"))
    with repo.write() as s:
        s.update("k1", state=DEACTIVATED, wrapped_value=None, custody_key=None)
        s.update("k1", algorithm=RSA, length=2048, value_format=3)
        s.update("k1")  # nothing to change, but the object exists
        with pytest.raises(KeyError):
            s.update("nope", state=ACTIVE)
        with pytest.raises(KeyError):
            s.update("nope")
        with pytest.raises(TypeError):
            s.update("k1", owner="mallory")
    with repo.read() as s:
        got = s.get("k1", attributes=False)
    assert got is not None
    assert (got.state, got.wrapped_value, got.custody_key) == (DEACTIVATED, None, None)
    assert (got.algorithm, got.length, got.value_format, got.owner) == (RSA, 2048, 3, "alice")


def test_set_attributes_replaces_all_instances(repo: Repository) -> None:
    insert(repo, record("k1", attributes=[name("a"), name("b", 1), name("c", 2), StoredAttribute("x", 0, b"x")]))
    with repo.write() as s:
        s.set_attributes("k1", "Name", [name("new", 0), name("newer", 5)])
        with pytest.raises(ValueError):
            s.set_attributes("k1", "Name", [StoredAttribute("Other", 0, b"")])
    with repo.read() as s:
        assert [(a.index, a.text) for a in s.get_attributes("k1", ["Name"])] == [(0, "new"), (5, "newer")]
        assert [a.name for a in s.get_attributes("k1")] == ["Name", "Name", "x"]
    with repo.write() as s:
        s.set_attributes("k1", "Name", [])
    with repo.read() as s:
        assert [a.name for a in s.get_attributes("k1")] == ["x"]


def test_delete_attribute_keeps_indexes(repo: Repository) -> None:
    insert(repo, record("k1", attributes=[name("a"), name("b", 1), name("c", 2), StoredAttribute("x", 0, b"x")]))
    with repo.write() as s:
        assert s.delete_attribute("k1", "Name", 1) is True
        assert s.delete_attribute("k1", "Name", 1) is False
        assert s.delete_attribute("k1", "Missing") is False
    with repo.read() as s:
        assert [(a.index, a.text) for a in s.get_attributes("k1", ["Name"])] == [(0, "a"), (2, "c")]
    with repo.write() as s:
        assert s.delete_attribute("k1", "Name") is True
    with repo.read() as s:
        assert [a.name for a in s.get_attributes("k1")] == ["x"]


def test_delete_cascades_to_attributes(repo: Repository) -> None:
    insert(repo, record("k1", attributes=[name("a"), name("b", 1)]), record("k2", attributes=[name("c")]))
    with repo.write() as s:
        s.delete("k1")
        with pytest.raises(KeyError):
            s.delete("k1")
    with repo.read() as s:
        assert s.get("k1") is None
    with repo.engine.connect() as conn:
        rows = conn.execute(select(object_attributes.c.uid, object_attributes.c.name)).all()
    assert [tuple(row) for row in rows] == [("k2", "Name")]


def test_sequence_is_monotonic_and_never_reused(repo: Repository) -> None:
    first, second = record("k1"), record("k2")
    insert(repo, first, second)
    assert first.sequence is not None and second.sequence is not None and second.sequence > first.sequence
    with repo.write() as s:
        s.delete("k2")
    third = record("k3")
    insert(repo, third)
    assert third.sequence is not None and third.sequence > second.sequence


def date(attribute: str, seconds: int) -> StoredAttribute:
    return StoredAttribute(attribute, 0, seconds.to_bytes(8, "big"), number=seconds)


def test_locate_by_state_applies_the_dates_without_writing(repo: Repository) -> None:
    now = 2_000_000_000
    past, future = now - 1, now + 1
    insert(
        repo,
        record("activates", state=PRE_ACTIVE, attributes=[date("Activation Date", now)]),
        record("waits", state=PRE_ACTIVE, attributes=[date("Activation Date", future)]),
        record("deactivates", state=ACTIVE, attributes=[date("Deactivation Date", past)]),
        record(
            "both",
            state=PRE_ACTIVE,
            attributes=[date("Activation Date", past), date("Deactivation Date", past)],
        ),
        record("stays", state=ACTIVE, attributes=[date("Deactivation Date", future), date("Activation Date", past)]),
        record("compromised", state=COMPROMISED, attributes=[date("Deactivation Date", past)]),
        record("undated", state=PRE_ACTIVE),
    )
    expected = {
        "activates": ACTIVE,
        "waits": PRE_ACTIVE,
        "deactivates": DEACTIVATED,
        "both": DEACTIVATED,
        "stays": ACTIVE,
        "compromised": COMPROMISED,
        "undated": PRE_ACTIVE,
    }
    with repo.read() as s:  # a read transaction suffices
        for wanted in ([PRE_ACTIVE], [ACTIVE], [DEACTIVATED], [COMPROMISED], [PRE_ACTIVE, DEACTIVATED]):
            found = set(s.locate(LocateQuery(states=tuple(wanted), now=now)))
            assert found == {uid for uid, state in expected.items() if state in wanted}, wanted
            assert s.count(LocateQuery(states=tuple(wanted), now=now)) == len(found)
        # All the dated states at once, or none of them: the stored state answers alone.
        everything = LocateQuery(states=(PRE_ACTIVE, ACTIVE, DEACTIVATED), now=now)
        assert set(s.locate(everything)) == set(expected) - {"compromised"}
        # Without a time, the stored states; and nothing was stored by the searches above.
        assert set(s.locate(LocateQuery(states=(PRE_ACTIVE,)))) == {"activates", "waits", "both", "undated"}
        # Combined with a selective attribute condition (the attribute index drives).
        dated = AttributeFilter(name="Activation Date", number=now)
        assert s.locate(LocateQuery(states=(ACTIVE,), now=now, attributes=(dated,))) == ["activates"]
        assert s.locate(LocateQuery(states=(PRE_ACTIVE,), now=now, attributes=(dated,))) == []


# -- transactions ---------------------------------------------------------------------------


class Boom(Exception):
    pass


def test_a_relaxed_write_commits_and_the_next_writer_is_durable_again(repo: Repository, url: str) -> None:
    """write(durable=False) (the audit records of reads) commits as any write does; on SQLite
    the kept connection it ran on is back to synchronous=FULL for the next writer."""
    with repo.write(durable=False) as s:
        s.insert(record("relaxed"))
        if url.startswith("sqlite"):
            assert s.connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        else:
            assert s.connection.exec_driver_sql("SHOW synchronous_commit").scalar() == "off"
    with repo.write() as s:
        if url.startswith("sqlite"):
            assert s.connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        else:
            assert s.connection.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
    with repo.read() as s:
        assert s.get("relaxed", attributes=False) is not None
    with pytest.raises(RuntimeError, match="boom"):  # rolled back: durable again as well
        with repo.write(durable=False) as s:
            s.insert(record("undone"))
            s.connection  # noqa: B018
            raise RuntimeError("boom")
    with repo.write() as s:
        if url.startswith("sqlite"):
            assert s.connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2
        assert s.get("undone", attributes=False) is None


def test_a_transaction_inside_another_on_one_thread_gets_its_own_connection(repo: Repository) -> None:
    insert(repo, record("outer"))
    with repo.read() as outer:
        assert outer.get("outer", attributes=False) is not None
        with repo.write() as inner:  # the thread's kept connection is busy with the read
            inner.insert(record("inner"))
            assert inner.connection is not outer.connection
        assert outer.get("outer", attributes=False) is not None
    with repo.read() as s:
        assert s.get("inner", attributes=False) is not None


def test_write_rolls_back_on_exception(repo: Repository) -> None:
    insert(repo, record("kept", attributes=[name("a")]))
    with pytest.raises(Boom), repo.write() as s:
        s.insert(record("k1", attributes=[name("b")]))
        s.update("kept", state=DEACTIVATED)
        s.set_attributes("kept", "Name", [])
        raise Boom
    with repo.read() as s:
        assert s.get("k1") is None
        kept = s.get("kept")
    assert kept is not None and kept.state == ACTIVE and [a.text for a in kept.attributes] == ["a"]


def test_savepoint_rollback_keeps_outer_work(repo: Repository) -> None:
    with repo.write() as s:
        s.insert(record("outer"))
        with pytest.raises(Boom), s.savepoint():
            s.insert(record("inner", attributes=[name("i")]))
            s.update("outer", state=DEACTIVATED)
            raise Boom
        with s.savepoint():
            s.insert(record("released"))
        # A database error inside a savepoint must leave the transaction usable (PostgreSQL
        # aborts the whole transaction otherwise).
        with pytest.raises(IntegrityError), s.savepoint():
            s.insert(record("outer"))
        s.insert(record("after"))
    with repo.read() as s:
        assert s.get("inner") is None
        outer = s.get("outer")
        assert outer is not None and outer.state == ACTIVE
        assert s.get("released") is not None and s.get("after") is not None


def test_error_swallowed_without_savepoint(repo: Repository) -> None:
    def write() -> None:
        with repo.write() as s:
            s.insert(record("k1"))
            s.get("k1")  # a statement: the transaction has begun, inserts now run at once
            with pytest.raises(IntegrityError):
                s.insert(record("k1"))

    if repo.dialect == "postgresql":
        # The transaction is dead; committing would silently roll back, so write() says so.
        with pytest.raises(TransactionAborted):
            write()
        expected = None
    else:
        write()  # SQLite undoes the failed statement only
        expected = "k1"
    with repo.read() as s:
        got = s.get("k1", attributes=False)
    assert (got.uid if got else None) == expected


def test_read_session_refuses_writes(repo: Repository) -> None:
    insert(repo, record("k1"))
    with repo.read() as s:
        assert not s.writable
        for attempt in (
            lambda: s.insert(record("k2")),
            lambda: s.update("k1", state=DEACTIVATED),
            lambda: s.set_attributes("k1", "Name", []),
            lambda: s.delete_attribute("k1", "Name"),
            lambda: s.delete("k1"),
        ):
            with pytest.raises(RuntimeError):
                attempt()


def test_committed_write_is_visible_to_another_repository(repo: Repository, url: str) -> None:
    insert(repo, record("k1", attributes=[name("durable")]))
    other = Repository(url)
    try:
        with other.read() as s:
            got = s.get("k1")
        assert got is not None and got.attributes == [name("durable")]
        # And the other way round, after the first one has pooled connections open.
        insert(other, record("k2"))
        with repo.read() as s:
            assert s.get("k2", attributes=False) is not None
    finally:
        other.dispose()


def test_create_schema_is_idempotent_and_refuses_newer_stores(repo: Repository) -> None:
    insert(repo, record("k1"))
    repo.create_schema()
    with repo.read() as s:
        assert s.get("k1") is not None
    with repo.engine.begin() as conn:
        conn.execute(schema_version.update().values(version=SCHEMA_VERSION + 1))
    with pytest.raises(RuntimeError, match="newer"):
        repo.create_schema()


# -- Locate ---------------------------------------------------------------------------------


@pytest.fixture
def located(repo: Repository) -> Repository:
    """Seven objects inserted in order o1 .. o7 (so o7 is the newest)."""
    insert(
        repo,
        record("o1", attributes=[name("alpha"), StoredAttribute("Cryptographic Usage Mask", 0, b"m12", number=12)]),
        record("o2", owner="bob", length=128, attributes=[name("alphabet"), name("beta", 1)]),
        record("o3", object_type=SECRET_DATA, algorithm=None, length=None, attributes=[name("Alpha")]),
        record("o4", state=PRE_ACTIVE, algorithm=RSA, length=2048, attributes=[name("gamma")]),
        record("o5", attributes=[StoredAttribute("x-custom", 0, b"\x01\x02", text="t", number=5), name("a%b")]),
        record(
            "o6", owner="carol", attributes=[StoredAttribute("x-custom", 0, b"\x03", text="u", number=50), name("a_b")]
        ),
        record("o7", state=DEACTIVATED, attributes=[name("axb"), name("a\\b", 1)]),
    )
    return repo


def find(repo: Repository, **query: Any) -> list[str]:
    with repo.read() as s:
        return s.locate(LocateQuery(**query))


def by_attr(repo: Repository, **flt: Any) -> list[str]:
    return find(repo, attributes=(AttributeFilter(**flt),), newest_first=False)


def test_locate_everything_and_ordering(located: Repository) -> None:
    assert find(located) == ["o7", "o6", "o5", "o4", "o3", "o2", "o1"]
    assert find(located, newest_first=False) == ["o1", "o2", "o3", "o4", "o5", "o6", "o7"]


def test_locate_object_columns(located: Repository) -> None:
    assert find(located, object_types=(SECRET_DATA,)) == ["o3"]
    assert find(located, object_types=(SECRET_DATA, OPAQUE)) == ["o3"]
    assert find(located, states=(PRE_ACTIVE, DEACTIVATED)) == ["o7", "o4"]
    assert find(located, owners=("bob", "carol")) == ["o6", "o2"]
    assert find(located, owners=()) == []
    assert find(located, algorithm=RSA) == ["o4"]
    assert find(located, length=128) == ["o2"]
    assert find(located, algorithm=AES, length=256, newest_first=False) == ["o1", "o5", "o6", "o7"]


def test_locate_attribute_filters(located: Repository) -> None:
    assert by_attr(located, name="Name", text="alpha") == ["o1"]
    assert by_attr(located, name="Name", text="beta") == ["o2"]  # any instance, not only index 0
    assert by_attr(located, name="Name", text_prefix="alpha") == ["o1", "o2"]  # case-sensitive
    assert by_attr(located, name="Name", text_prefix="Alpha") == ["o3"]
    assert by_attr(located, name="Name", text_prefix="") == ["o1", "o2", "o3", "o4", "o5", "o6", "o7"]
    assert by_attr(located, name="Cryptographic Usage Mask", number=12) == ["o1"]
    assert by_attr(located, name="x-custom", number_min=5, number_max=5) == ["o5"]
    assert by_attr(located, name="x-custom", number_min=6) == ["o6"]
    assert by_attr(located, name="x-custom", number_max=50) == ["o5", "o6"]
    assert by_attr(located, name="x-custom", number_min=51) == []
    assert by_attr(located, name="x-custom", value=b"\x01\x02") == ["o5"]
    assert by_attr(located, name="x-custom") == ["o5", "o6"]
    assert by_attr(located, name="Name", number=12) == []  # the number belongs to another attribute


def test_locate_number_all_bits(located: Repository) -> None:
    mask = "Cryptographic Usage Mask"
    assert by_attr(located, name=mask, number_all_bits=4) == ["o1"]  # o1's mask is 12 = 8 | 4
    assert by_attr(located, name=mask, number_all_bits=12) == ["o1"]
    assert by_attr(located, name=mask, number_all_bits=1) == []
    assert by_attr(located, name=mask, number_all_bits=13) == []
    assert by_attr(located, name=mask, number_all_bits=0) == ["o1"]
    assert by_attr(located, name="x-custom", number_all_bits=1) == ["o5"]  # 5 = 4 | 1, 50 = 32 | 16 | 2
    assert by_attr(located, name="x-custom", number_all_bits=2, text="u") == ["o6"]
    assert by_attr(located, name="Name", number_all_bits=0) == []  # no number at all: no match


def test_locate_number_all_bits_beyond_32_bits(repo: Repository) -> None:
    insert(
        repo,
        record("big", attributes=[StoredAttribute("x-flags", 0, b"", number=2**40 | 2**33 | 1)]),
        record("small", attributes=[StoredAttribute("x-flags", 0, b"", number=1)]),
    )
    assert by_attr(repo, name="x-flags", number_all_bits=2**40 | 1) == ["big"]
    assert by_attr(repo, name="x-flags", number_all_bits=1) == ["big", "small"]


def test_locate_conditions_hold_on_one_instance(located: Repository) -> None:
    assert by_attr(located, name="x-custom", text="t", number=5) == ["o5"]
    assert by_attr(located, name="x-custom", text="t", number=50) == []
    assert by_attr(located, name="x-custom", text="u", value=b"\x01\x02") == []


def test_locate_like_wildcards_are_literal(located: Repository) -> None:
    assert by_attr(located, name="Name", text_prefix="a%") == ["o5"]
    assert by_attr(located, name="Name", text_prefix="a_") == ["o6"]
    assert by_attr(located, name="Name", text_prefix="a\\") == ["o7"]
    assert by_attr(located, name="Name", text_prefix="a") == ["o1", "o2", "o5", "o6", "o7"]
    assert by_attr(located, name="Name", text="a_b") == ["o6"]


def test_locate_like_escaping_of_attribute_names_and_filters(repo: Repository) -> None:
    # An attribute *name* with wildcard characters is compared literally too.
    insert(
        repo,
        record("p1", attributes=[StoredAttribute("x-100%", 0, b"", text="v")]),
        record("p2", attributes=[StoredAttribute("x-100_", 0, b"", text="v")]),
        record("p3", attributes=[StoredAttribute("x-1000", 0, b"", text="v")]),
    )
    assert by_attr(repo, name="x-100%", text_prefix="v") == ["p1"]
    assert by_attr(repo, name="x-100_") == ["p2"]


def test_locate_combinations_are_and(located: Repository) -> None:
    assert find(
        located,
        object_types=(SYMMETRIC_KEY,),
        owners=("alice", "bob"),
        attributes=(AttributeFilter("Name", text_prefix="alpha"),),
    ) == ["o2", "o1"]
    assert find(
        located,
        owners=("alice",),
        attributes=(AttributeFilter("Name", text_prefix="alpha"),),
    ) == ["o1"]
    assert find(
        located,
        attributes=(AttributeFilter("Name", text="alpha"), AttributeFilter("Cryptographic Usage Mask", number=12)),
    ) == ["o1"]
    assert find(
        located,
        attributes=(AttributeFilter("Name", text="alphabet"), AttributeFilter("Name", text="beta")),
    ) == ["o2"]
    assert (
        find(
            located,
            attributes=(AttributeFilter("Name", text="alphabet"), AttributeFilter("Cryptographic Usage Mask")),
        )
        == []
    )


def test_locate_paging_and_count(located: Repository) -> None:
    assert find(located, max_items=2) == ["o7", "o6"]
    assert find(located, max_items=2, offset_items=2) == ["o5", "o4"]
    assert find(located, offset_items=5) == ["o2", "o1"]
    assert find(located, offset_items=5, newest_first=False) == ["o6", "o7"]
    assert find(located, max_items=0) == []
    assert find(located, max_items=3, offset_items=10) == []
    with located.read() as s:
        assert s.count(LocateQuery()) == 7
        assert s.count(LocateQuery(max_items=1, offset_items=3)) == 7
        assert s.count(LocateQuery(max_items=0, owners=("alice",))) == 5
        assert s.count(LocateQuery(owners=())) == 0
        assert s.count(LocateQuery(attributes=(AttributeFilter("x-custom", number_min=1),))) == 2
        with pytest.raises(ValueError):
            s.locate(LocateQuery(offset_items=-1))
        with pytest.raises(ValueError):
            s.locate(LocateQuery(max_items=-1))


# -- several processes ----------------------------------------------------------------------

ROWS_PER_WRITER = 200


def _writer(url: str, prefix: str, start: Any, results: Any) -> None:
    """A worker process: its own Repository, created after the process started."""
    try:
        repo = Repository(url)
        start.wait(30)
        for i in range(ROWS_PER_WRITER):
            with repo.write() as s:
                # Read then write inside one transaction: the pattern that deadlocks SQLite
                # with a deferred BEGIN.
                s.get(f"{prefix}-{i - 1}", attributes=False, for_update=True)
                s.insert(record(f"{prefix}-{i}", attributes=[name(f"{prefix}{i}"), name("shared", 1)]))
            # A pause between requests, as a server has: without it SQLite's busy handler,
            # which sleeps, lets one process run all its transactions before the other.
            time.sleep(0.001)
        repo.dispose()
        results.put((prefix, "ok"))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the test
        results.put((prefix, f"{type(exc).__name__}: {exc}"))


def test_concurrent_writer_processes(repo: Repository, url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    results = ctx.Queue()
    workers = [ctx.Process(target=_writer, args=(url, prefix, start, results)) for prefix in ("a", "b")]
    for worker in workers:
        worker.start()
    start.set()
    outcomes = dict(results.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join(30)
    assert outcomes == {"a": "ok", "b": "ok"}
    with repo.read() as s:
        assert s.count(LocateQuery()) == 2 * ROWS_PER_WRITER
        assert s.count(LocateQuery(attributes=(AttributeFilter("Name", text="shared"),))) == 2 * ROWS_PER_WRITER
        uids = s.locate(LocateQuery(newest_first=False))
    assert sorted(uids) == sorted(f"{p}-{i}" for p in "ab" for i in range(ROWS_PER_WRITER))
    # Each writer's rows are in its own commit order.
    for prefix in "ab":
        mine = [uid for uid in uids if uid.startswith(prefix)]
        assert mine == [f"{prefix}-{i}" for i in range(ROWS_PER_WRITER)]


def _start_worker(url: str, name: str, start: Any, results: Any) -> None:
    try:
        repo = Repository(url)
        start.wait(30)
        repo.create_schema()
        insert(repo, record(name))
        repo.dispose()
        results.put((name, "ok"))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the test
        results.put((name, f"{type(exc).__name__}: {exc}"))


def test_workers_creating_the_schema_at_once(url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    results = ctx.Queue()
    names = ("w1", "w2", "w3", "w4", "w5", "w6")
    workers = [ctx.Process(target=_start_worker, args=(url, name, start, results)) for name in names]
    for worker in workers:
        worker.start()
    start.set()
    outcomes = dict(results.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join(30)
    assert outcomes == dict.fromkeys(names, "ok")
    repo = Repository(url)
    try:
        with repo.read() as s:
            assert sorted(s.locate(LocateQuery())) == list(names)
    finally:
        repo.dispose()


def _use_inherited(repo: Repository, results: Any) -> None:
    try:
        insert(repo, record(f"child-{os.getpid()}"))
        results.put("ok")
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the test
        results.put(f"{type(exc).__name__}: {exc}")


def test_repository_inherited_across_fork_reconnects(repo: Repository) -> None:
    # The documented way is one Repository per process, created after fork; this checks the
    # safety net for a Repository that crossed a fork with pooled connections.
    insert(repo, record("parent"))
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    child = ctx.Process(target=_use_inherited, args=(repo, results))
    child.start()
    assert results.get(timeout=60) == "ok"
    child.join(30)
    # The parent's pooled connections still work after the child exited.
    with repo.read() as s:
        assert s.count(LocateQuery()) == 2


# -- SQLite specifics -----------------------------------------------------------------------


def test_sqlite_pragmas(tmp_path: Path) -> None:
    repo = Repository(f"sqlite:///{tmp_path / 'p.db'}")
    repo.create_schema()
    try:
        with repo.engine.connect() as conn:
            pragma = {p: conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in ("journal_mode", "synchronous")}
            pragma["foreign_keys"] = conn.exec_driver_sql("PRAGMA foreign_keys").scalar()
            pragma["busy_timeout"] = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
            pragma["secure_delete"] = conn.exec_driver_sql("PRAGMA secure_delete").scalar()
        assert pragma == {
            "journal_mode": "wal",
            "synchronous": 2,
            "foreign_keys": 1,
            "busy_timeout": 5000,
            "secure_delete": 1,
        }
    finally:
        repo.dispose()


def _objects_in_database_file(path: Path, scratch: Path) -> int:
    """Objects in the database file alone, without its write-ahead log: what checkpoints have
    copied there so far."""
    shutil.copyfile(path, scratch)
    with contextlib.closing(sqlite3.connect(scratch)) as conn:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM managed_objects").fetchone()[0])
        except sqlite3.OperationalError:  # not even the table has been copied yet
            return 0


@pytest.mark.parametrize("background", [True, False])
def test_sqlite_background_checkpoints_copy_the_log_outside_commits(tmp_path: Path, background: bool) -> None:
    # The server checkpoints on a thread so that no commit stalls on copying the log; without
    # that thread, a few commits stay in the log (the commit path's threshold is far away).
    path = tmp_path / "checkpoint.db"
    repo = Repository(f"sqlite:///{path}", background_checkpoints=background)
    try:
        repo.create_schema()
        for index in range(20):
            insert(repo, record(f"k-{index}"))
        deadline = time.monotonic() + (10.0 if background else 1.0)
        copied = 0
        while time.monotonic() < deadline and copied < 20:
            time.sleep(0.05)
            copied = _objects_in_database_file(path, tmp_path / "copy.db")
        assert copied == (20 if background else 0)
    finally:
        repo.dispose()  # closing the last connection checkpoints whatever is left
    assert _objects_in_database_file(path, tmp_path / "copy.db") == 20
    assert not any(thread.name == "wal-checkpoint" for thread in threading.enumerate())


def test_sqlite_write_transactions_take_the_write_lock_at_their_first_statement(tmp_path: Path) -> None:
    path = tmp_path / "lock.db"
    repo = Repository(f"sqlite:///{path}")
    repo.create_schema()
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with repo.read():
            other.execute("BEGIN IMMEDIATE")  # a reader does not hold the write lock
            other.execute("ROLLBACK")
        with repo.write() as s:
            s.insert(record("buffered"))
            # Nothing has run yet (the insert is buffered): no lock held while work is prepared.
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            assert s.get("buffered", attributes=False) is not None  # first statement: BEGIN IMMEDIATE
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()
        repo.dispose()


def test_sqlite_busy_timeout_is_a_sqlalchemy_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_module, "BUSY_TIMEOUT_MS", 50)
    path = tmp_path / "busy.db"
    repo = Repository(f"sqlite:///{path}")
    repo.create_schema()
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(OperationalError, match="locked"), repo.write() as s:
            s.insert(record("k1"))
        with repo.read() as s:  # readers are not blocked by a writer in WAL mode
            assert s.get("k1") is None
        other.execute("ROLLBACK")
        insert(repo, record("k1"))  # the pool is still healthy
    finally:
        other.close()
        repo.dispose()


def test_sqlite_needs_a_file() -> None:
    for bad in ("sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"):
        with pytest.raises(ValueError):
            Repository(bad)


def test_a_version_1_store_is_brought_up_to_date(repo: Repository) -> None:
    # Version 1 indexed every attribute row by (name, text_value); version 2 only the rows
    # that have text. Rebuild the store as version 1 had it, then open it again.
    insert(repo, record("k1", attributes=[name("alpha")]), record("k2", attributes=[name("beta")]))
    with repo.engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_object_attributes_name_text"))
        conn.execute(text("CREATE INDEX ix_object_attributes_name_text ON object_attributes (name, text_value)"))
        conn.execute(schema_version.update().values(version=1))
    assert _text_index_condition(repo) is None
    repo.create_schema()
    assert _text_index_condition(repo) == "text_value IS NOT NULL"
    with repo.read() as s:
        assert s.locate(LocateQuery(attributes=(AttributeFilter("Name", text_prefix="al"),))) == ["k1"]
    with repo.engine.connect() as conn:
        assert conn.execute(select(schema_version.c.version)).scalar() == SCHEMA_VERSION == 5
    repo.create_schema()  # and again: nothing left to do
    assert _text_index_condition(repo) == "text_value IS NOT NULL"


def test_a_version_2_store_gets_the_streams_table(repo: Repository) -> None:
    insert(repo, record("k1"))
    with repo.engine.begin() as conn:
        conn.execute(text("DROP TABLE crypto_streams"))
        conn.execute(schema_version.update().values(version=2))
    assert "crypto_streams" not in inspect(repo.engine).get_table_names()
    repo.create_schema()
    assert "crypto_streams" in inspect(repo.engine).get_table_names()
    with repo.read() as s:
        assert s.get("k1") is not None
    with repo.engine.connect() as conn:
        assert conn.execute(select(schema_version.c.version)).scalar() == SCHEMA_VERSION


def test_a_version_4_store_gets_tenants_with_its_objects_in_the_default_one(repo: Repository) -> None:
    insert(repo, record("k1"))
    with repo.engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_managed_objects_tenant"))
        conn.execute(text("ALTER TABLE managed_objects DROP COLUMN tenant"))
        conn.execute(schema_version.update().values(version=4))
    repo.create_schema()
    columns = {c["name"] for c in inspect(repo.engine).get_columns("managed_objects")}
    assert "tenant" in columns
    assert "ix_managed_objects_tenant" in {i["name"] for i in inspect(repo.engine).get_indexes("managed_objects")}
    with repo.read() as s:
        stored = s.get("k1")
        assert stored is not None and stored.tenant == "default"
        assert s.locate(LocateQuery(tenants=("default",))) == ["k1"]
        assert s.locate(LocateQuery(tenants=("acme",))) == []


def _text_index_condition(repo: Repository) -> str | None:
    """The WHERE of the (name, text_value) index as the database has it, or None if it has none."""
    indexes = {i["name"]: i for i in inspect(repo.engine).get_indexes("object_attributes")}
    options = indexes["ix_object_attributes_name_text"].get("dialect_options", {})
    where = options.get("sqlite_where", options.get("postgresql_where"))
    return None if where is None else str(where).strip("()")


def test_schema_version_is_recorded(repo: Repository) -> None:
    # Guards the dialect-specific bits of create_schema on both backends.
    insert(repo, record("k1", attributes=[name("a")]))
    with repo.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(object_attributes)).scalar() == 1
        assert conn.execute(select(schema_version.c.version)).scalar() == SCHEMA_VERSION


def test_database_errors_do_not_carry_bound_values(repo: Repository) -> None:
    # Errors end up in server logs: the values of a failed statement must not be in them.
    marker = b"wrapped-value-marker-1234"
    insert(repo, record("k1"))
    with pytest.raises(IntegrityError) as caught, repo.write() as s:
        s.get("k1")  # begin the transaction, so the insert runs at once
        s.insert(record("k1", wrapped_value=marker, owner="owner-marker"))
    text = str(caught.value)
    assert "owner-marker" not in text and "wrapped-value-marker" not in text and marker.hex() not in text


def test_sqlite_erasing_leaves_the_value_in_no_file(tmp_path: Path) -> None:
    # Destroy (a wrapped value set to None) ends with the log truncated, with the background
    # checkpointer running and readers reading all along; the other values stay.
    path = tmp_path / "erase.db"
    repo = Repository(f"sqlite:///{path}", background_checkpoints=True)
    stop = threading.Event()

    def read_all_along() -> None:
        while not stop.is_set():
            with repo.read() as s:
                s.locate(LocateQuery(max_items=5))

    reader = threading.Thread(target=read_all_along)
    try:
        repo.create_schema()
        insert(repo, *(record(f"k-{index}", state=PRE_ACTIVE) for index in range(50)))
        reader.start()
        doomed = record("k-25").wrapped_value
        assert doomed is not None
        with repo.write() as s:
            s.update("k-25", wrapped_value=None, state=5)
        assert (tmp_path / "erase.db-wal").stat().st_size == 0
        contents = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("erase.db"))
        assert doomed not in contents
        assert record("k-24").wrapped_value in contents
        with repo.write() as s:  # an ordinary write does not erase: the log grows again
            s.update("k-24", state=ACTIVE)
        assert (tmp_path / "erase.db-wal").stat().st_size > 0
    finally:
        stop.set()
        if reader.is_alive():
            reader.join()
        repo.dispose()


def test_sqlite_destroy_during_a_backup_is_erased_after_it_without_stalling(tmp_path: Path) -> None:
    # A backup reads one snapshot for its whole run (kmip_server/backup.py), so the log cannot
    # be cut meanwhile: a Destroy then used to hold the writer lock for the erase deadline (10 s)
    # on every write until the backup ended. Under the backup lock the erasure waits, pending.
    path = tmp_path / "erase.db"
    repo = Repository(f"sqlite:///{path}")
    try:
        repo.create_schema()
        insert(repo, *(record(f"k-{index}", state=PRE_ACTIVE) for index in range(20)))
        doomed = record("k-5").wrapped_value
        assert doomed is not None
        snapshot = sqlite3.connect(path, isolation_level=None)
        with sqlite_module.backup_reading(str(path)):
            snapshot.execute("BEGIN")
            snapshot.execute("SELECT count(*) FROM managed_objects").fetchone()  # the backup's snapshot
            started = time.monotonic()
            with repo.write() as s:
                s.update("k-5", wrapped_value=None, state=5)
            with repo.write() as s:  # a later write does not wait either
                s.update("k-6", state=ACTIVE)
            assert time.monotonic() - started < 2.0
            snapshot.execute("ROLLBACK")
        snapshot.close()
        assert doomed in b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("erase.db"))
        with repo.write() as s:  # the first write after the backup cuts the log
            s.update("k-7", state=ACTIVE)
        assert (tmp_path / "erase.db-wal").stat().st_size == 0
        assert doomed not in b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("erase.db"))
    finally:
        repo.dispose()
