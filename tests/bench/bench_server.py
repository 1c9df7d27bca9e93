"""Server benchmark: Strongroom's server vs PyKMIP's, real processes, real mutual TLS on loopback.

Both servers run side by side. For each operation (get, create, discover) and connection count,
each server in turn has pre-encoded KMIP 1.4 requests replayed at it over persistent
connections (one request in flight per connection), every response checked for Success; the
turns are cell by cell so that the two servers of a cell meet the same (drifting) machine. Prints ops/s, p50/p99 latency, errors, and the CPU the
client and the server used, so a run on a small noisy machine can be read for what limited it.

    python tests/bench/bench_server.py [--servers strongroom,pykmip] [--ops get,create,discover]
        [--connections 1,16,64] [--duration 5] [--warmup 1] [--processes 2] [--hold 1000]

After the Create runs Strongroom is stopped (SIGTERM) and its SQLite store is counted: every
acknowledged Create must be there. ``--hold N`` opens N concurrent connections to Strongroom,
keeps them all open, and sends one Discover Versions on each.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import platform
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # run as a script: make `tests.support` importable
    sys.path.insert(0, str(_ROOT))

from loadgen import (  # noqa: E402
    CellResult,
    Endpoint,
    create_request,
    discover_request,
    get_request,
    quick_success,
    run_cell,
    setup_keys,
)

from tests.support.pykmip_peer import running_pykmip_server  # noqa: E402
from tests.support.server_process import (  # noqa: E402
    checkout_command,
    free_port,
    issue_client_cert,
    running_server,
    strongroom_init,
)

ALL_OPS = ("discover", "get", "create")  # create last: the durability check follows it
FAILURE_MARK = "FAILED: "  # notes that start with it make the exit status 1


@dataclasses.dataclass
class Row:
    server: str
    op: str
    cell: CellResult


# --------------------------------------------------------------------------- running the cells


@dataclasses.dataclass
class Target:
    name: str
    endpoint: Endpoint
    pid: int
    get_requests: list[bytes] = dataclasses.field(default_factory=list)
    acknowledged_creates: int = 0


def run_cells(targets: list[Target], args: argparse.Namespace, rows: list[Row]) -> None:
    """Every (op, connections) cell, the servers taking turns cell by cell: this machine's
    speed drifts over minutes (shared cores), and adjacent cells see the same machine. With
    --rounds, each op's cells run that many times, the servers' order swapped every round."""
    for op in [op for op in ALL_OPS if op in args.ops]:
        for connections, round_ in [(c, r) for r in range(args.rounds) for c in args.connections]:
            for target in targets if round_ % 2 == 0 else targets[::-1]:
                if op == "discover":
                    requests = [discover_request()]
                elif op == "create":
                    requests = [create_request()]
                else:
                    if not target.get_requests:
                        uids = setup_keys(target.endpoint, args.keys)
                        target.acknowledged_creates += len(uids)
                        target.get_requests = [get_request(uid) for uid in uids]
                    requests = target.get_requests
                cell = run_cell(
                    target.endpoint,
                    requests,
                    connections,
                    args.processes,
                    args.warmup,
                    args.duration,
                    args.connect_timeout,
                    server_pid=target.pid,
                )
                rows.append(Row(target.name, op, cell))
                if op == "create":
                    target.acknowledged_creates += cell.acknowledged
                print(_progress_line(target.name, op, cell), flush=True)


def _progress_line(server: str, op: str, cell: CellResult) -> str:
    if cell.connect_seconds is None:
        return f"  {server:10} {op:8} {cell.connections:3} conns: connect timed out/failed: {cell.connect_errors[:3]}"
    line = (
        f"  {server:10} {op:8} {cell.connections:3} conns: {cell.ops_per_second:9.0f} ops/s "
        f"p50 {cell.percentile_ms(0.5):7.2f} ms p99 {cell.percentile_ms(0.99):7.2f} ms "
        f"errors {errors(cell)} (connect {cell.connect_seconds:.2f} s)"
    )
    if cell.decode_problems:
        line += f"\n    sample decode problems: {cell.decode_problems[:3]}"
    return line


def errors(cell: CellResult) -> int:
    return cell.failures + cell.io_errors + len(cell.connect_errors)


def strongroom_db(data_dir: Path) -> Path:
    """The SQLite file named by the data dir's strongroom.toml ([storage] url = "sqlite:///...")."""
    config = tomllib.loads((data_dir / "strongroom.toml").read_text())
    url = config["storage"]["url"]
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise RuntimeError(f"the durability check needs a SQLite store, the config names {url!r}")
    path = Path(url[len(prefix) :])
    return path if path.is_absolute() else data_dir / path


def use_policy(data_dir: Path, policy: Path) -> None:
    """Serve ``policy`` (a copy in the data directory) instead of the default one."""
    copy = data_dir / "bench-policy.toml"
    copy.write_text(policy.read_text())
    config = data_dir / "strongroom.toml"
    text = config.read_text()
    if "\n[policy]\n" not in text:
        text += "\n[policy]\n"
    config.write_text(text.replace("\n[policy]\n", f'\n[policy]\npolicy_file = "{copy}"\n', 1))


@contextlib.contextmanager
def strongroom_target(
    args: argparse.Namespace, workdir: Path, notes: list[str], name: str = "strongroom"
) -> Iterator[Target]:
    """Strongroom serving for the block; its durability check once it has stopped. The
    "baseline" target is the checkout --baseline names, on its default policy (it may predate
    policy files) unless --baseline-policy; "strongroom" serves --policy when given, to --identity."""
    data_dir = workdir / name
    command = checkout_command(args.baseline) if name == "baseline" else None
    started = time.monotonic()
    tls = strongroom_init(data_dir, command=command)
    policed = name == "strongroom" or args.baseline_policy
    if policed and args.policy is not None:
        use_policy(data_dir, args.policy)
    if policed and args.identity != "admin":
        tls = issue_client_cert(data_dir, args.identity, data_dir / "bench-client")
    notes.append(f"{name} init: {time.monotonic() - started:.1f} s")
    port = free_port()
    extra = ["--log-level", args.log_level] if args.log_level else []
    with running_server(data_dir, port, workers=args.workers, extra_args=extra, command=command) as server:
        flags = " ".join([f"--workers {args.workers}", *extra])
        notes.append(f"{name} serve {flags}: listening after {server.startup_seconds:.1f} s")
        target = Target(
            name,
            Endpoint(server.host, port, tls.ca, tls.cert, tls.key),
            server.process.pid,
        )
        yield target
        if args.hold:
            notes.extend(hold_connections(target.endpoint, args.hold, args.connect_timeout))
        server.stop_cleanly()
    if "create" in args.ops or "get" in args.ops:
        notes.append(durability_check(data_dir, target.acknowledged_creates))


def durability_check(data_dir: Path, acknowledged: int) -> str:
    db = strongroom_db(data_dir)
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        stored = connection.execute("SELECT COUNT(*) FROM managed_objects").fetchone()[0]
    line = f"durability after SIGTERM: {stored} rows in managed_objects, {acknowledged} Creates acknowledged"
    return f"{line}: OK" if stored >= acknowledged else f"{FAILURE_MARK}{line}: acknowledged Creates are missing"


@contextlib.contextmanager
def pykmip_target(args: argparse.Namespace, workdir: Path, notes: list[str]) -> Iterator[Target]:
    directory = workdir / "pykmip"
    directory.mkdir()
    started = time.monotonic()
    with running_pykmip_server(directory, free_port(), logging_level=args.log_level or "INFO") as server:
        notes.append(f"pykmip-server: listening after {time.monotonic() - started:.1f} s")
        yield Target(
            "pykmip",
            Endpoint(server.host, server.port, server.tls.ca, server.tls.cert, server.tls.key),
            server.process.pid,
        )


# --------------------------------------------------------------------------- --hold


def raise_open_file_limit(needed: int) -> str:
    """Raise RLIMIT_NOFILE (soft, up to the hard limit) for this process and the servers it
    starts, which inherit it. Each held connection is one descriptor here and one in the server."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        return f"RLIMIT_NOFILE raised from {soft} to {want} (hard {hard}) for {needed} needed"
    return f"RLIMIT_NOFILE {soft} (hard {hard}) already covers the {needed} needed"


def hold_connections(endpoint: Endpoint, count: int, timeout: float) -> list[str]:
    return asyncio.run(_hold(endpoint, count, timeout))


async def _hold(endpoint: Endpoint, count: int, timeout: float) -> list[str]:
    context = endpoint.context()
    request = discover_request()
    problems: list[str] = []
    started = time.monotonic()

    async def open_one() -> tuple[asyncio.StreamReader, asyncio.StreamWriter, float] | None:
        t0 = time.monotonic()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(endpoint.host, endpoint.port, ssl=context), timeout
            )
        except (OSError, TimeoutError) as error:
            problems.append(f"connect: {error!r}")
            return None
        return reader, writer, time.monotonic() - t0

    async def discover(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        try:
            writer.write(request)
            header = await asyncio.wait_for(reader.readexactly(8), timeout)
            body = await asyncio.wait_for(reader.readexactly(int.from_bytes(header[4:8], "big")), timeout)
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as error:
            problems.append(f"discover: {error!r}")
            return False
        if not quick_success(header + body):
            problems.append("discover: response was not Success")
            return False
        return True

    # Phase 1: all connections opened concurrently. Phase 2: with every one of them still open,
    # one request on each, so the server demonstrably serves all of them at once.
    opened = [c for c in await asyncio.gather(*(open_one() for _ in range(count))) if c is not None]
    connected_after = time.monotonic() - started
    answered = sum(await asyncio.gather(*(discover(reader, writer) for reader, writer, _ in opened)))
    total = time.monotonic() - started
    for _, writer, _ in opened:
        writer.close()
    await asyncio.gather(*(writer.wait_closed() for _, writer, _ in opened), return_exceptions=True)
    connect_times = sorted(t for _, _, t in opened)
    p99 = connect_times[min(int(0.99 * len(connect_times)), len(connect_times) - 1)] if connect_times else 0.0
    distinct = sorted(set(problems))
    lines = [
        f"{FAILURE_MARK if problems or answered < count else ''}hold {count}: {len(opened)} connected in {connected_after:.2f} s (p99 handshake {p99 * 1000:.0f} ms), "
        f"{answered} Discover Versions answered with all open; total {total:.2f} s; errors {len(problems)}"
    ]
    lines += [f"  hold error ({problems.count(p)}x): {p}" for p in distinct[:5]]
    return lines


# --------------------------------------------------------------------------- report


def table(rows: list[Row], duration: float) -> str:
    lines = [
        "| server | op | conns | ops/s | p50 ms | p99 ms | errors | client CPU | server CPU |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        c = row.cell
        if c.connect_seconds is None:
            lines.append(f"| {row.server} | {row.op} | {c.connections} | timed out | | | {errors(c)} | | |")
            continue
        server_cpu = f"{100 * c.server_cpu_seconds / duration:.0f}%" if c.server_cpu_seconds is not None else ""
        lines.append(
            f"| {row.server} | {row.op} | {c.connections} | {c.ops_per_second:.0f} | {c.percentile_ms(0.5):.2f} "
            f"| {c.percentile_ms(0.99):.2f} | {errors(c)} | {100 * c.client_cpu_seconds / duration:.0f}% "
            f"| {server_cpu} |"
        )
    return "\n".join(lines)


def connect_table(rows: list[Row]) -> str:
    lines = ["| server | op | conns | all connected after (s) |", "|---|---|---:|---:|"]
    for row in rows:
        c = row.cell
        shown = "timed out" if c.connect_seconds is None else f"{c.connect_seconds:.2f}"
        lines.append(f"| {row.server} | {row.op} | {c.connections} | {shown} |")
    return "\n".join(lines)


def _rates(rows: list[Row], server: str, op: str, connections: int) -> list[float]:
    return [r.cell.ops_per_second for r in rows if (r.server, r.op, r.cell.connections) == (server, op, connections)]


def ratios(rows: list[Row], connections: int = 16) -> list[str]:
    """Strongroom's rate over the others', per op at ``connections``: one ratio per round
    (the n-th cells of each server), and their median when there are several."""
    found = []
    for op in ("get", "create"):
        ours = _rates(rows, "strongroom", op, connections)
        for other in ("pykmip", "baseline"):
            each = [a / b for a, b in zip(ours, _rates(rows, other, op, connections), strict=False) if a and b]
            if not each:
                continue
            line = f"strongroom/{other} {op} @ {connections} conns: {statistics.median(each):.2f}x"
            if len(each) > 1:
                line += f" (median of {len(each)} rounds: {', '.join(f'{r:.2f}' for r in each)})"
            found.append(line)
    return found


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)

    def csv(text: str) -> list[str]:
        return [part.strip() for part in text.split(",") if part.strip()]

    parser.add_argument("--servers", type=csv, default=["strongroom", "pykmip"])
    parser.add_argument("--ops", type=csv, default=list(ALL_OPS))
    parser.add_argument("--connections", type=lambda t: [int(p) for p in csv(t)], default=[1, 16, 64])
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per cell")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each cell")
    parser.add_argument("--processes", type=int, default=2, help="client processes sharing the connections")
    parser.add_argument("--connect-timeout", type=float, default=60.0, help="cap on opening a cell's connections")
    parser.add_argument("--rounds", type=int, default=1, help="run each op's cells this many times, alternating")
    parser.add_argument("--keys", type=int, default=16, help="keys created up front and cycled through by Get")
    parser.add_argument("--workers", type=int, default=2, help="strongroom serve --workers")
    parser.add_argument(
        "--log-level",
        help="both servers' log level (default: INFO, their defaults: one audit line per request for Strongroom)",
    )
    parser.add_argument("--hold", type=int, default=0, help="also hold N concurrent connections to strongroom")
    parser.add_argument("--workdir", type=Path, help="keep data dirs and logs here (default: a temp dir)")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout to compare with, as server 'baseline' (git worktree add /tmp/base COMMIT)",
    )
    parser.add_argument(
        "--policy", type=Path, help="the access policy file strongroom serves (e.g. policies/example.toml)"
    )
    parser.add_argument("--identity", default="admin", help="the client identity strongroom is benchmarked as")
    parser.add_argument(
        "--baseline-policy",
        action="store_true",
        help="serve --policy to --identity on the baseline too (a baseline checkout that has policy files)",
    )
    args = parser.parse_args(argv)
    unknown = set(args.ops) - set(ALL_OPS) or set(args.servers) - {"strongroom", "pykmip", "baseline"}
    if unknown:
        parser.error(f"unknown: {', '.join(sorted(unknown))}")
    if "baseline" in args.servers and args.baseline is None:
        parser.error("server 'baseline' needs --baseline CHECKOUT")
    if args.baseline is not None and "baseline" not in args.servers:
        args.servers.append("baseline")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    notes = [raise_open_file_limit(args.hold + 2 * max(args.connections) + 256)]
    rows: list[Row] = []
    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, {args.duration:g} s per cell "
        f"after {args.warmup:g} s warm-up, {args.processes} client processes",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="strongroom-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as servers:
            targets = []
            if "strongroom" in args.servers:
                targets.append(servers.enter_context(strongroom_target(args, workdir, notes)))
            if "baseline" in args.servers:
                targets.append(servers.enter_context(strongroom_target(args, workdir, notes, "baseline")))
            if "pykmip" in args.servers:
                targets.append(servers.enter_context(pykmip_target(args, workdir, notes)))
            run_cells(targets, args, rows)
    rows.sort(key=lambda row: args.servers.index(row.server))  # stable: per server, cells in run order
    print()
    print(table(rows, args.duration))
    print()
    print("Connection set-up (all of a cell's connections handshaking at once):")
    print(connect_table(rows))
    print()
    for line in [*notes, *ratios(rows)]:
        print(line)
    failed = any(errors(r.cell) for r in rows) or any(n.startswith(FAILURE_MARK) for n in notes)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
