"""Storage benchmark: microseconds per operation of the repository's hot paths.

* ``get``: ``with repo.read() as s: s.get(uid, attributes=False)``, the Get path (one SELECT);
* ``get+attrs``: the same with the attribute rows;
* ``insert``: a durable write transaction inserting an object with 5 attributes;
* ``locate``: a Locate by Name prefix, page of 10, over the whole store.

Not a test. Defaults to a temporary SQLite file; ``--url`` benchmarks another store (its
tables are created if missing, and the rows it adds are left there).

    python tests/bench/bench_storage.py [--objects 10000] [--seconds 1.0] [--url URL]
"""

from __future__ import annotations

import argparse
import itertools
import platform
import random
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import sqlalchemy

from kmip_server.storage import AttributeFilter, LocateQuery, ObjectRecord, StoredAttribute
from kmip_server.storage.repository import Repository


def make_record(uid: str, n: int) -> ObjectRecord:
    return ObjectRecord(
        uid=uid,
        object_type=2,
        owner=f"owner-{n % 16}",
        state=2,
        created=1_900_000_000 + n,
        algorithm=3,
        length=256,
        value_format=1,
        wrapped_value=bytes(60),
        custody_key="master-1",
        attributes=[
            StoredAttribute("Name", 0, b"N" * 24, text=f"key-{n:08d}"),
            StoredAttribute("Cryptographic Algorithm", 0, b"A" * 16, number=3),
            StoredAttribute("Cryptographic Length", 0, b"L" * 16, number=256),
            StoredAttribute("Cryptographic Usage Mask", 0, b"M" * 16, number=12),
            StoredAttribute("Initial Date", 0, b"D" * 16, number=1_900_000_000 + n),
        ],
    )


def measure(label: str, op: Callable[[], object], seconds: float) -> float:
    for _ in range(50):  # warm the pool, the statement cache and the page cache
        op()
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(20):
            op()
        count += 20
        now = time.perf_counter()
        if now >= deadline:
            break
    per_op = (now - started) / count * 1e6
    print(f"{label:<12} {per_op:9.1f} µs/op   ({count / (now - started):9.0f} op/s, {count} ops)")
    return per_op


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a SQLAlchemy URL (default: a temporary SQLite file)")
    parser.add_argument("--objects", type=int, default=10_000, help="objects in the store before measuring")
    parser.add_argument("--seconds", type=float, default=1.0, help="time spent on each measurement")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        repo = Repository(url)
        repo.create_schema()
        print(
            f"Python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}, "
            f"SQLite {sqlite3.sqlite_version}, store: {repo.dialect} ({url})"
        )
        run = uuid.uuid4().hex[:8]
        uids = [f"{run}-{n}" for n in range(args.objects)]
        batch = 1000
        for start in range(0, len(uids), batch):
            with repo.write() as s:
                for n in range(start, min(start + batch, len(uids))):
                    s.insert(make_record(uids[n], n))

        rng = random.Random(1)

        def get() -> None:
            with repo.read() as s:
                s.get(rng.choice(uids), attributes=False)

        def get_attrs() -> None:
            with repo.read() as s:
                s.get(rng.choice(uids))

        counter = itertools.count(len(uids))

        def insert() -> None:
            n = next(counter)
            with repo.write() as s:
                s.insert(make_record(f"{run}-{n}", n))

        def locate() -> None:
            prefix = f"key-{rng.randrange(args.objects // 100 or 1):06d}"
            query = LocateQuery(attributes=(AttributeFilter("Name", text_prefix=prefix),), max_items=10)
            with repo.read() as s:
                s.locate(query)

        measure("get", get, args.seconds)
        measure("get+attrs", get_attrs, args.seconds)
        measure("insert", insert, args.seconds)
        measure("locate", locate, args.seconds)
        repo.dispose()


if __name__ == "__main__":
    main()
