"""Locate benchmark: Locate by Name against a real ``strongroom serve`` (real mutual TLS), with
1,000, 10,000 and 100,000 stored objects, on SQLite and on PostgreSQL; and Create alone
against Create beside two connections running Locate.

    python tests/bench/bench_locate.py [--backends sqlite,postgresql] [--sizes 1000,10000,100000]
        [--connections 16] [--duration 5] [--warmup 1] [--pykmip] [--beside]

The store is filled by direct repository inserts (one object created through the server,
then copied under new identifiers and names), which is much faster than creating the objects
over KMIP; the searches then go over KMIP 1.4 as in bench_server.py, one Name per request,
cycling through 1,000 names drawn from the whole store, every response checked for Success.
The client is an ordinary identity (not an administrator) that owns every stored object.
``--pykmip`` also runs PyKMIP's server at 1,000 objects (created over KMIP: its store is its
own); ``--beside`` measures Create at 16 connections alone and then while 2 more connections
run Locate, printed side by side.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import multiprocessing
import os
import platform
import random
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # run as a script: make `tests.support` importable
    sys.path.insert(0, str(_ROOT))

from loadgen import (  # noqa: E402
    PROTOCOL,
    CellResult,
    Endpoint,
    aes_create_payload,
    connect,
    create_request,
    exchange,
    run_cell,
)

from kmip_client.protocol.model import (  # noqa: E402
    Attribute,
    RequestBatchItem,
    RequestHeader,
    RequestMessage,
    ResponseMessage,
    encode_message,
)
from kmip_client.protocol.model.attributes import Name  # noqa: E402
from kmip_client.protocol.model.messages import decode_message  # noqa: E402
from kmip_client.protocol.model.payloads.locate import LocateRequest  # noqa: E402
from kmip_client.protocol.spec.enums import (  # noqa: E402
    NameType,
    Operation,
    ResultStatus,
)
from kmip_server.objects.attribute_set import stored  # noqa: E402
from kmip_server.operations.creation import new_unique_identifier  # noqa: E402
from kmip_server.storage import ObjectRecord  # noqa: E402
from kmip_server.storage.repository import Repository  # noqa: E402
from tests.support.pykmip_peer import running_pykmip_server  # noqa: E402
from tests.support.server_process import (  # noqa: E402
    free_port,
    issue_client_cert,
    running_server,
    strongroom_init,
)

POSTGRES_URL = os.environ.get("STRONGROOM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
NAMES_SEARCHED = 1000


def _message(operation: Operation, payload: object) -> bytes:
    return encode_message(
        RequestMessage(
            header=RequestHeader(protocol_version=PROTOCOL, batch_count=1),
            batch_items=(RequestBatchItem(operation=operation, payload=payload),),
        )
    )


def _name(text: str) -> Name:
    return Name(value=text, type=NameType.UNINTERPRETED_TEXT_STRING)


def create_named_request(text: str) -> bytes:
    return _message(Operation.CREATE, aes_create_payload(Attribute(name="Name", value=_name(text))))


def locate_request(text: str) -> bytes:
    return _message(Operation.LOCATE, LocateRequest(attribute_list=(Attribute(name="Name", value=_name(text)),)))


def create_over_kmip(endpoint: Endpoint, names: list[str]) -> list[str]:
    """Create one AES key per name over one connection; their UIDs."""
    sock = connect(endpoint, endpoint.context(), timeout=60.0)
    uids = []
    try:
        for text in names:
            message = decode_message(exchange(sock, create_named_request(text)))
            assert isinstance(message, ResponseMessage)
            item = message.batch_items[0]
            if item.result_status != ResultStatus.SUCCESS:
                raise RuntimeError(f"Create failed: {item.result_reason!r} {item.result_message}")
            uids.append(item.payload.unique_identifier)
    finally:
        sock.close()
    return uids


# --------------------------------------------------------------------------- the stores


@contextlib.contextmanager
def postgres_database_url() -> Iterator[str]:
    """A PostgreSQL schema of its own for the run (dropped afterwards), as the tests do."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    schema = f"strongroom_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, poolclass=NullPool)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield (
            make_url(POSTGRES_URL)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def use_store(data_dir: Path, url: str) -> None:
    """Point an initialised data directory's strongroom.toml at ``url``."""
    config = data_dir / "strongroom.toml"
    text = config.read_text()
    text, count = re.subn(r'(?m)^url = ".*"$', f'url = "{url}"', text)
    if count != 1:
        raise RuntimeError("strongroom.toml has no single [storage] url line to replace")
    config.write_text(text)


class Filler:
    """Copies of one object made through the server, inserted straight into its store."""

    def __init__(self, url: str, template_uid: str) -> None:
        self.repository = Repository(url)
        with self.repository.read() as session:
            template = session.get(template_uid)
        assert template is not None
        self.template = template
        self.count = 1  # the template itself

    def fill_to(self, total: int, batch: int = 2000) -> float:
        started = time.monotonic()
        while self.count < total:
            n = min(batch, total - self.count)
            with self.repository.write() as session:
                for index in range(self.count, self.count + n):
                    session.insert(self._copy(f"bench-{index}"))
            self.count += n
        self.repository.dispose()  # no connection crosses the load generator's fork
        return time.monotonic() - started

    def _copy(self, text: str) -> ObjectRecord:
        t = self.template
        attributes = [a if a.name != "Name" else stored("Name", 0, _name(text)) for a in t.attributes]
        # The server's own time-ordered identifiers: random ones would scatter the indexes'
        # pages and slow every later Create.
        return dataclasses.replace(t, uid=new_unique_identifier(), sequence=None, attributes=attributes)


# --------------------------------------------------------------------------- cells


@dataclasses.dataclass
class Row:
    server: str
    backend: str
    objects: int
    label: str
    cell: CellResult


def measure(
    endpoint: Endpoint, requests: list[bytes], connections: int, args: argparse.Namespace, pid: int
) -> CellResult:
    return run_cell(endpoint, requests, connections, args.processes, args.warmup, args.duration, 60.0, server_pid=pid)


def _beside_main(
    endpoint: Endpoint, requests: list[bytes], seconds: float, pipe: multiprocessing.connection.Connection
) -> None:
    pipe.send(run_cell(endpoint, requests, 2, 1, 0.5, seconds, 60.0))


def create_beside_locate(
    endpoint: Endpoint, names: list[str], args: argparse.Namespace, pid: int
) -> tuple[CellResult, CellResult, CellResult]:
    """Create at 16 connections alone; then again while 2 connections run Locate (their load
    begins before the Create cell's and ends after it)."""
    alone = measure(endpoint, [create_request()], args.connections, args, pid)
    locates = [locate_request(n) for n in names]
    fork = multiprocessing.get_context("fork")
    parent, child = fork.Pipe()
    helper = fork.Process(target=_beside_main, args=(endpoint, locates, args.warmup + args.duration + 4.0, child))
    helper.start()
    time.sleep(1.5)  # its connections open and its load running
    beside = measure(endpoint, [create_request()], args.connections, args, pid)
    located = parent.recv()
    helper.join()
    return alone, beside, located


def rate(cell: CellResult) -> str:
    errors = cell.failures + cell.io_errors + len(cell.connect_errors)
    return f"{cell.ops_per_second:,.0f}/s (p50 {cell.percentile_ms(0.5):.2f} ms, p99 {cell.percentile_ms(0.99):.2f} ms, errors {errors})"


def run_strongroom(backend: str, args: argparse.Namespace, workdir: Path, rows: list[Row], beside: list[str]) -> None:
    data_dir = workdir / f"strongroom-{backend}"
    strongroom_init(data_dir)
    # Not the administrator, who sees every owner's objects: an ordinary identity's Locate
    # carries the owner condition that used to send SQLite through every object it owns.
    tls = issue_client_cert(data_dir, "bench", data_dir / "bench-client")
    with contextlib.ExitStack() as stack:
        if backend == "postgresql":
            url = stack.enter_context(postgres_database_url())
            use_store(data_dir, url)
        else:
            url = f"sqlite:///{data_dir / 'strongroom.db'}"
        port = free_port()
        extra = ["--log-level", "WARNING"]
        server = stack.enter_context(running_server(data_dir, port, workers=args.workers, extra_args=extra))
        endpoint = Endpoint(server.host, port, tls.ca, tls.cert, tls.key)
        (template,) = create_over_kmip(endpoint, ["bench-0"])
        filler = Filler(url, template)
        rng = random.Random(13)
        for size in args.sizes:
            seconds = filler.fill_to(size)
            print(f"  {backend}: {size:,} objects (filled in {seconds:.1f} s)", flush=True)
            names = [f"bench-{rng.randrange(size)}" for _ in range(NAMES_SEARCHED)]
            cell = measure(endpoint, [locate_request(n) for n in names], args.connections, args, server.process.pid)
            rows.append(Row("strongroom", backend, size, "Locate by Name", cell))
            print(f"    Locate by Name, {args.connections} connections: {rate(cell)}", flush=True)
        if args.beside:
            names = [f"bench-{rng.randrange(filler.count)}" for _ in range(NAMES_SEARCHED)]
            alone, with_locate, located = create_beside_locate(endpoint, names, args, server.process.pid)
            beside.append(
                f"| {backend} | {filler.count:,}+ | {alone.ops_per_second:,.0f} | {with_locate.ops_per_second:,.0f} "
                f"| {with_locate.ops_per_second / alone.ops_per_second:.2f} | {located.ops_per_second:,.0f} |"
            )
            print(
                f"    Create alone: {rate(alone)}; beside 2 Locate connections: {rate(with_locate)}; "
                f"those Locates: {rate(located)}",
                flush=True,
            )


def run_pykmip(args: argparse.Namespace, workdir: Path, rows: list[Row]) -> None:
    directory = workdir / "pykmip"
    directory.mkdir()
    with running_pykmip_server(directory, free_port(), logging_level="WARNING") as server:
        endpoint = Endpoint(server.host, server.port, server.tls.ca, server.tls.cert, server.tls.key)
        size = 1000
        started = time.monotonic()
        create_over_kmip(endpoint, [f"bench-{i}" for i in range(size)])
        print(f"  pykmip: {size:,} objects (created in {time.monotonic() - started:.1f} s)", flush=True)
        rng = random.Random(13)
        names = [f"bench-{rng.randrange(size)}" for _ in range(NAMES_SEARCHED)]
        cell = measure(endpoint, [locate_request(n) for n in names], args.connections, args, server.process.pid)
        rows.append(Row("pykmip", "sqlite", size, "Locate by Name", cell))
        print(f"    Locate by Name, {args.connections} connections: {rate(cell)}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pykmip", action="store_true", help="also PyKMIP's server at 1,000 objects")
    parser.add_argument("--beside", action="store_true", help="also Create alone vs beside 2 Locate connections")
    args = parser.parse_args(argv)
    args.sizes = sorted(int(s) for s in args.sizes.split(","))
    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, {args.duration:g} s per cell after "
        f"{args.warmup:g} s warm-up, {args.connections} connections, {args.workers} server workers",
        flush=True,
    )
    rows: list[Row] = []
    beside: list[str] = []
    with tempfile.TemporaryDirectory(prefix="strongroom-bench-locate-") as tmp:
        for backend in args.backends.split(","):
            run_strongroom(backend, args, Path(tmp), rows, beside)
        if args.pykmip:
            run_pykmip(args, Path(tmp), rows)
    print()
    print("| server | store | objects | Locates/s | p50 ms | p99 ms | errors |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for row in rows:
        c = row.cell
        errors = c.failures + c.io_errors + len(c.connect_errors)
        print(
            f"| {row.server} | {row.backend} | {row.objects:,} | {c.ops_per_second:,.0f} | {c.percentile_ms(0.5):.2f} "
            f"| {c.percentile_ms(0.99):.2f} | {errors} |"
        )
    if beside:
        print()
        print("| store | objects | Create/s alone | Create/s beside Locate | ratio | Locate/s (2 conns) |")
        print("|---|---:|---:|---:|---:|---:|")
        print("\n".join(beside))
    failed = any(r.cell.failures or r.cell.io_errors or r.cell.connect_errors for r in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
