"""Audit-trail benchmark: appends per second, each in its own durable write transaction.

* ``token mac``: one token HMAC (``custody.audit_mac``) alone, what deriving a sealing key
  costs (once per process; audit/seal.py);
* ``seal``: one MAC under the derived key, twice the fixed cost of every append;
* ``append xN``: ``with repo.write() as s: trail.append(s.connection, N events)`` for N = 1
  (one message per commit) and N = 64 (a full group commit), the head row locked and updated,
  N rows inserted in one executemany, two MACs;
* ``verify``: the whole trail checked afterwards (records per second).

Not a test. A throwaway SoftHSM2 token is made in a temporary directory; the store defaults to
a temporary SQLite file (``--url`` benchmarks another one; its tables are created if missing).

    python tests/bench/bench_audit.py [--seconds 2.0] [--url URL]
"""

from __future__ import annotations

import argparse
import platform
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy

from kmip_server.audit import AuditEvent, AuditTrail, verify
from kmip_server.custody import Pkcs11Custody, find_softhsm_module, initialise_token, use_softhsm_conf
from kmip_server.storage.repository import Repository


def event(n: int) -> AuditEvent:
    return AuditEvent(
        time=time.time(),
        node="bench",
        identity=f"client-{n % 16}",
        address="127.0.0.1:40000",
        fingerprint="ab" * 32,
        operation="Get",
        object_ids=(f"00000000-0000-4000-8000-{n:012d}",),
        attributes=(),
        result="Success",
        reason=None,
        detail=None,
    )


def measure(label: str, op: Callable[[], object], seconds: float, per_call: int = 1) -> float:
    for _ in range(20):  # warm the pool, the statement cache and the token session
        op()
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        op()
        count += 1
    elapsed = time.perf_counter() - started
    rate = count / elapsed
    suffix = f"  ({rate * per_call:,.0f} records/s)" if per_call > 1 else ""
    print(f"{label:<12} {rate:>10,.0f} /s  {1e6 / rate:>9.1f} us each{suffix}")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement (default 2)")
    parser.add_argument("--url", help="an SQLAlchemy URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    module = find_softhsm_module()
    if module is None:
        raise SystemExit("SoftHSM2 is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        conf = initialise_token(
            Path(tmp) / "token", module=module, label="bench", pin="bench-pin-1234",
            so_pin="bench-so-5678", master_key_label="bench-master",
        )  # fmt: skip
        use_softhsm_conf(conf)
        url = args.url or f"sqlite:///{Path(tmp) / 'audit.db'}"
        print(
            f"python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, SQLAlchemy {sqlalchemy.__version__}"
        )
        print(f"store: {sqlalchemy.make_url(url).render_as_string(hide_password=True)}")
        repository = Repository(url)
        repository.create_schema()
        with Pkcs11Custody.open(module, "bench", "bench-pin-1234", "bench-master") as custody:
            trail = AuditTrail(custody, "bench")
            counter = iter(range(10**9))
            measure("token mac", lambda: custody.audit_mac(b"x" * 48), args.seconds)
            measure("seal", lambda: trail.sealer.seal(b"x" * 48), args.seconds)
            for size in (1, 64):

                def append(size: int = size) -> None:
                    with repository.write() as s:
                        trail.append(s.connection, [event(next(counter)) for _ in range(size)])

                measure(f"append x{size}", append, args.seconds, per_call=size)
            started = time.perf_counter()
            with repository.read() as s:
                report = verify(s.connection, custody)
            elapsed = time.perf_counter() - started
            assert report.ok, report
            print(f"{'verify':<12} {report.checked / elapsed:>10,.0f} records/s ({report.checked:,} records)")
        repository.dispose()


if __name__ == "__main__":
    main()
