"""Cryptographic services benchmark: Strongroom's server against PyKMIP's, side by side, real
processes and real mutual TLS on loopback (the load generator of bench_server.py).

Each server gets its keys by Register (known key bytes, made here; Create Key Pair is not
used) and Activate, then has the same pre-encoded KMIP 1.4 requests replayed at it, one in
flight per connection, every response checked for Success:

* **encrypt**: Encrypt of 1 KiB with AES-256-GCM, the IV made by the server, a 16-byte tag;
* **encrypt-batch10**: one message of ten such Encrypt batch items (rate: messages, and
  Encrypts = 10 x messages);
* **sign-rsa**: Sign of 1 KiB with an RSA-2048 private key, PKCS#1 v1.5, SHA-256;
* **sign-ecdsa**: Sign of 1 KiB with an EC P-256 private key, ECDSA with SHA-256;
* **mac**: MAC of 1 KiB with a 256-bit HMAC-SHA256 key.

Before a server's first cell of an operation, one request of it is sent and its result
shown; an operation a server refuses (PyKMIP's Sign is RSA only) is reported and not run.
``strongroom-cache`` (not run by default) is a second Strongroom whose workers keep unwrapped
keys (``[crypto] key_cache_size``), to show what the HSM round trip per operation costs.

    .venv/bin/python tests/bench/bench_crypto.py [--seconds N] [--quick]
        [--servers strongroom,strongroom-cache,pykmip] [--ops encrypt,...] [--connections 1,16,64]

The servers take turns cell by cell, as in bench_server.py (this machine's speed drifts).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # run as a script: make `tests.support` importable
    sys.path.insert(0, str(_ROOT))

from bench_server import Target, errors, pykmip_target, raise_open_file_limit, strongroom_target  # noqa: E402
from loadgen import PROTOCOL, CellResult, Endpoint, connect, exchange, run_cell  # noqa: E402

from kmip_client.protocol.model import (  # noqa: E402
    Attribute,
    RequestBatchItem,
    RequestHeader,
    RequestMessage,
    ResponseBatchItem,
    ResponseMessage,
    TemplateAttribute,
    encode_message,
)
from kmip_client.protocol.model.attributes import CryptographicParameters  # noqa: E402
from kmip_client.protocol.model.messages import decode_message  # noqa: E402
from kmip_client.protocol.model.objects import KeyBlock, KeyValue, PrivateKey, SymmetricKey  # noqa: E402
from kmip_client.protocol.model.payloads.crypto import EncryptRequest, MACRequest, SignRequest  # noqa: E402
from kmip_client.protocol.model.payloads.lifecycle import ActivateRequest, RegisterRequest  # noqa: E402
from kmip_client.protocol.spec.enums import (  # noqa: E402
    BlockCipherMode,
    CryptographicAlgorithm,
    CryptographicUsageMask,
    HashingAlgorithm,
    KeyFormatType,
    ObjectType,
    Operation,
    PaddingMethod,
    ResultStatus,
)
from tests.support.server_process import free_port, running_server, strongroom_init  # noqa: E402

A = CryptographicAlgorithm
Usage = CryptographicUsageMask
OPS = ("encrypt", "encrypt-batch10", "sign-rsa", "sign-ecdsa", "mac")
SERVERS = ("strongroom", "strongroom-cache", "pykmip")
CACHED_KEYS = 1000  # strongroom-cache's [crypto] key_cache_size
DATA = bytes(range(256)) * 4  # 1 KiB
BATCH = 10
#: Fewer responses than this in a cell's window make its rate and CPU per op mere noise.
FEW = 20
#: The issue's targets, checked at the end (on this 2-core machine).
TARGET_ENCRYPT_RATIO, TARGET_ENCRYPT_RATE, TARGET_P99_MS = 30.0, 5000.0, 10.0


def message(*items: tuple[Operation, object]) -> bytes:
    """A request message; items of a batch get Unique Batch Item IDs (KMIP requires them when a
    message holds more than one, and PyKMIP refuses a batch without)."""
    several = len(items) > 1
    return encode_message(
        RequestMessage(
            header=RequestHeader(protocol_version=PROTOCOL, batch_count=len(items)),
            batch_items=tuple(
                RequestBatchItem(operation=op, unique_batch_item_id=bytes([n]) if several else None, payload=payload)
                for n, (op, payload) in enumerate(items)
            ),
        )
    )


def one_item(endpoint: Endpoint, request: bytes) -> ResponseBatchItem:
    """Send ``request`` on a fresh connection; its (first) batch item, whatever its status."""
    sock = connect(endpoint, endpoint.context(), timeout=60.0)
    try:
        reply = decode_message(exchange(sock, request))
    finally:
        sock.close()
    assert isinstance(reply, ResponseMessage) and reply.batch_items
    return reply.batch_items[0]


def succeeded(item: ResponseBatchItem, what: str) -> object:
    if item.result_status != ResultStatus.SUCCESS:
        raise RuntimeError(f"setup {what} failed: {item.result_reason!r} {item.result_message}")
    return item.payload


# --------------------------------------------------------------------------- keys


@dataclasses.dataclass(frozen=True)
class KeySpec:
    """A key registered (and activated) on each server before its first cell."""

    object_type: ObjectType
    managed: object
    attributes: tuple[Attribute, ...]


def _block(fmt: KeyFormatType, material: bytes, algorithm: A, length: int) -> KeyBlock:
    return KeyBlock(
        key_format_type=fmt,
        key_value=KeyValue(key_material=material),
        cryptographic_algorithm=algorithm,
        cryptographic_length=length,
    )


def _attributes(algorithm: A, length: int, usage: int) -> tuple[Attribute, ...]:
    return (
        Attribute(name="Cryptographic Algorithm", value=algorithm),
        Attribute(name="Cryptographic Length", value=length),
        Attribute(name="Cryptographic Usage Mask", value=usage),
    )


def key_specs() -> dict[str, KeySpec]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    pkcs8 = {
        "rsa": rsa_key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption()),
        "ec": ec_key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption()),
    }
    aes, hmac = os.urandom(32), os.urandom(32)
    crypt = int(Usage.ENCRYPT | Usage.DECRYPT)
    return {
        "aes": KeySpec(
            ObjectType.SYMMETRIC_KEY,
            SymmetricKey(key_block=_block(KeyFormatType.RAW, aes, A.AES, 256)),
            _attributes(A.AES, 256, crypt),
        ),
        "rsa": KeySpec(
            ObjectType.PRIVATE_KEY,
            PrivateKey(key_block=_block(KeyFormatType.PKCS_8, pkcs8["rsa"], A.RSA, 2048)),
            _attributes(A.RSA, 2048, int(Usage.SIGN)),
        ),
        "ec": KeySpec(
            ObjectType.PRIVATE_KEY,
            PrivateKey(key_block=_block(KeyFormatType.PKCS_8, pkcs8["ec"], A.ECDSA, 256)),
            _attributes(A.ECDSA, 256, int(Usage.SIGN)),
        ),
        "hmac": KeySpec(
            ObjectType.SYMMETRIC_KEY,
            SymmetricKey(key_block=_block(KeyFormatType.RAW, hmac, A.HMAC_SHA256, 256)),
            _attributes(A.HMAC_SHA256, 256, int(Usage.MAC_GENERATE)),
        ),
    }


def register_active(endpoint: Endpoint, spec: KeySpec) -> str:
    register = RegisterRequest(
        object_type=spec.object_type,
        template_attribute=TemplateAttribute(attributes=spec.attributes),
        managed_object=spec.managed,  # type: ignore[arg-type]
    )
    payload = succeeded(one_item(endpoint, message((Operation.REGISTER, register))), "Register")
    uid = payload.unique_identifier  # type: ignore[attr-defined]
    succeeded(one_item(endpoint, message((Operation.ACTIVATE, ActivateRequest(unique_identifier=uid)))), "Activate")
    return str(uid)


# --------------------------------------------------------------------------- requests

GCM = CryptographicParameters(
    block_cipher_mode=BlockCipherMode.GCM,
    cryptographic_algorithm=A.AES,
    random_iv=True,  # the server makes the IV (PyKMIP makes one whenever none is sent)
    iv_length=96,  # bits; PyKMIP ignores it and makes a 16-byte IV
    tag_length=16,  # bytes; PyKMIP requires it for GCM
)
RSA_PKCS1_SHA256 = CryptographicParameters(
    cryptographic_algorithm=A.RSA, hashing_algorithm=HashingAlgorithm.SHA_256, padding_method=PaddingMethod.PKCS1_V1_5
)
ECDSA_SHA256 = CryptographicParameters(cryptographic_algorithm=A.ECDSA, hashing_algorithm=HashingAlgorithm.SHA_256)
HMAC_SHA256 = CryptographicParameters(cryptographic_algorithm=A.HMAC_SHA256)


def encrypt_item(uid: str) -> tuple[Operation, object]:
    return Operation.ENCRYPT, EncryptRequest(unique_identifier=uid, cryptographic_parameters=GCM, data=DATA)


@dataclasses.dataclass(frozen=True)
class Load:
    name: str
    key: str  # of key_specs()
    request: Callable[[str], bytes]
    described: str
    per_message: int = 1  # operations in one request message


LOADS = {
    load.name: load
    for load in (
        Load("encrypt", "aes", lambda uid: message(encrypt_item(uid)), "Encrypt 1 KiB, AES-256-GCM, server IV"),
        Load(
            "encrypt-batch10",
            "aes",
            lambda uid: message(*[encrypt_item(uid)] * BATCH),
            f"{BATCH} Encrypts of 1 KiB (AES-256-GCM) per message",
            BATCH,
        ),
        Load(
            "sign-rsa",
            "rsa",
            lambda uid: message(
                (
                    Operation.SIGN,
                    SignRequest(unique_identifier=uid, cryptographic_parameters=RSA_PKCS1_SHA256, data=DATA),
                )
            ),
            "Sign 1 KiB, RSA-2048 PKCS#1 v1.5 SHA-256",
        ),
        Load(
            "sign-ecdsa",
            "ec",
            lambda uid: message(
                (Operation.SIGN, SignRequest(unique_identifier=uid, cryptographic_parameters=ECDSA_SHA256, data=DATA))
            ),
            "Sign 1 KiB, ECDSA P-256 SHA-256",
        ),
        Load(
            "mac",
            "hmac",
            lambda uid: message(
                (Operation.MAC, MACRequest(unique_identifier=uid, cryptographic_parameters=HMAC_SHA256, data=DATA))
            ),
            "MAC 1 KiB, HMAC-SHA256",
        ),
    )
}


# --------------------------------------------------------------------------- running


@contextlib.contextmanager
def cached_strongroom_target(args: argparse.Namespace, workdir: Path, notes: list[str]) -> Iterator[Target]:
    """A Strongroom whose workers cache unwrapped keys: its default configuration file with
    ``key_cache_size`` changed, otherwise as bench_server's target."""
    data_dir = workdir / "strongroom-cache"
    strongroom_init(data_dir)
    config = data_dir / "strongroom.toml"
    text = config.read_text()
    if "\nkey_cache_size = 0\n" not in text:
        raise RuntimeError("strongroom init's configuration has no 'key_cache_size = 0' line to change")
    config.write_text(text.replace("\nkey_cache_size = 0\n", f"\nkey_cache_size = {CACHED_KEYS}\n"))
    port = free_port()
    with running_server(data_dir, port, workers=args.workers, extra_args=["--log-level", args.log_level]) as server:
        notes.append(
            f"strongroom-cache: [crypto] key_cache_size = {CACHED_KEYS}, listening after {server.startup_seconds:.1f} s"
        )
        yield Target(
            "strongroom-cache",
            Endpoint(server.host, port, server.tls.ca, server.tls.cert, server.tls.key),
            server.process.pid,
        )


@dataclasses.dataclass
class Row:
    server: str
    load: Load
    cell: CellResult

    @property
    def ops_per_second(self) -> float:
        return float(self.cell.ops_per_second * self.load.per_message)


@dataclasses.dataclass
class Prepared:
    """A server's keys and requests, made before its first cell of each operation."""

    uids: dict[str, str] = dataclasses.field(default_factory=dict)
    requests: dict[str, bytes | None] = dataclasses.field(default_factory=dict)  # None: refused


def prepare(target: Target, load: Load, specs: dict[str, KeySpec], state: Prepared, notes: list[str]) -> bytes | None:
    if load.name in state.requests:
        return state.requests[load.name]
    if load.key not in state.uids:
        state.uids[load.key] = register_active(target.endpoint, specs[load.key])
    request = load.request(state.uids[load.key])
    probe = one_item(target.endpoint, request)
    if probe.result_status != ResultStatus.SUCCESS:
        reason = getattr(probe.result_reason, "name", probe.result_reason)
        notes.append(f"{target.name} {load.name}: not run, the server answered {reason}: {probe.result_message}")
        state.requests[load.name] = None
        return None
    state.requests[load.name] = request
    return request


def run_all(targets: list[Target], args: argparse.Namespace, rows: list[Row], notes: list[str]) -> None:
    specs = key_specs()
    prepared = {target.name: Prepared() for target in targets}
    for name in args.ops:
        load = LOADS[name]
        for connections in args.connections:
            for target in targets:
                request = prepare(target, load, specs, prepared[target.name], notes)
                if request is None:
                    continue
                cell = run_cell(
                    target.endpoint,
                    [request],
                    connections,
                    args.processes,
                    args.warmup,
                    args.seconds,
                    args.connect_timeout,
                    server_pid=target.pid,
                )
                row = Row(target.name, load, cell)
                rows.append(row)
                print(progress(row), flush=True)


def progress(row: Row) -> str:
    c = row.cell
    if c.connect_seconds is None:
        return f"  {row.server:10} {row.load.name:15} {c.connections:3} conns: connect failed: {c.connect_errors[:3]}"
    line = (
        f"  {row.server:10} {row.load.name:15} {c.connections:3} conns: {row.ops_per_second:9,.0f} ops/s "
        f"p50 {c.percentile_ms(0.5):7.2f} ms p99 {c.percentile_ms(0.99):7.2f} ms errors {errors(c)}"
    )
    return line + (f"\n    sample problems: {c.decode_problems[:2]}" if c.decode_problems else "")


# --------------------------------------------------------------------------- report


def server_cpu(row: Row, seconds: float) -> tuple[str, str]:
    """The server's share of the two cores, and its CPU per operation."""
    cpu, ops = row.cell.server_cpu_seconds, row.cell.ops * row.load.per_message
    if cpu is None or row.cell.ops < FEW:
        return "", ""
    return f"{100 * cpu / seconds:.0f}%", f"{1e6 * cpu / ops:,.0f}"


def table(rows: list[Row], args: argparse.Namespace) -> list[str]:
    lines = [
        "| operation | conns | server | ops/s | p50 ms | p99 ms | errors | server CPU | server CPU µs/op | ÷ pykmip |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in args.ops:
        for connections in args.connections:
            cells = [r for r in rows if r.load.name == name and r.cell.connections == connections]
            for row in sorted(cells, key=lambda r: args.servers.index(r.server)):
                ratio = ratio_of(rows, name, connections, row.server)
                c = row.cell
                share, per_op = server_cpu(row, args.seconds)
                shown_ratio = f"{ratio:.1f}x" if ratio is not None and row.server != "pykmip" else ""
                rate = f"{row.ops_per_second:,.0f}" + (f" ({c.ops} answered in the window)" if c.ops < FEW else "")
                lines.append(
                    f"| {name} | {connections} | {row.server} | {rate} | {c.percentile_ms(0.5):.2f} "
                    f"| {c.percentile_ms(0.99):.2f} | {errors(c)} | {share} | {per_op} | {shown_ratio} |"
                )
    return lines


def ratio_of(rows: list[Row], name: str, connections: int, server: str = "strongroom") -> float | None:
    rates = {r.server: r.ops_per_second for r in rows if r.load.name == name and r.cell.connections == connections}
    ours, theirs = rates.get(server), rates.get("pykmip")
    return ours / theirs if ours and theirs else None


def target_checks(rows: list[Row]) -> list[str]:
    """The issue's targets: Encrypt at 16 connections >= 30x PyKMIP and >= 5,000/s; p99 under
    10 ms at 64 connections (shown for every operation; Encrypt's is the target)."""
    lines = []
    ours = {(r.load.name, r.cell.connections): r for r in rows if r.server == "strongroom"}
    encrypt = ours.get(("encrypt", 16))
    if encrypt is not None:
        rate = encrypt.ops_per_second
        lines.append(
            f"{'met' if rate >= TARGET_ENCRYPT_RATE else 'MISSED'}: Encrypt @ 16 conns {rate:,.0f}/s (target ≥ 5,000/s)"
        )
        ratio = ratio_of(rows, "encrypt", 16)
        if ratio is not None:
            lines.append(
                f"{'met' if ratio >= TARGET_ENCRYPT_RATIO else 'MISSED'}: Encrypt @ 16 conns {ratio:.1f}x PyKMIP (target ≥ 30x)"
            )
    for (name, connections), row in ours.items():
        if connections == 64:
            p99 = row.cell.percentile_ms(0.99)
            # The target is Encrypt's; the other rows are shown beside it for what they are.
            verdict = ("met" if p99 < TARGET_P99_MS else "MISSED") if name == "encrypt" else "for reference"
            lines.append(f"{verdict}: {name} p99 @ 64 conns {p99:.2f} ms (target < 10 ms for encrypt)")
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)

    def csv(text: str) -> list[str]:
        return [part.strip() for part in text.split(",") if part.strip()]

    parser.add_argument("--servers", type=csv, default=["strongroom", "pykmip"])
    parser.add_argument("--ops", type=csv, default=list(OPS))
    parser.add_argument("--connections", type=lambda t: [int(p) for p in csv(t)], default=None)
    parser.add_argument("--seconds", type=float, default=None, help="measured seconds per cell (default 5, quick 2)")
    parser.add_argument("--warmup", type=float, default=None, help="unmeasured seconds per cell (default 1, quick 0.5)")
    parser.add_argument("--quick", action="store_true", help="2 s cells at 16 and 64 connections only")
    parser.add_argument("--processes", type=int, default=2, help="client processes sharing the connections")
    parser.add_argument("--workers", type=int, default=2, help="strongroom serve --workers")
    parser.add_argument("--log-level", default="WARNING", help="both servers' log level")
    args = parser.parse_args(argv)
    unknown = set(args.ops) - set(OPS) or set(args.servers) - set(SERVERS)
    if unknown:
        parser.error(f"unknown: {', '.join(sorted(unknown))}")
    args.ops = [op for op in OPS if op in args.ops]
    if args.connections is None:
        args.connections = [16, 64] if args.quick else [1, 16, 64]
    if args.seconds is None:
        args.seconds = 2.0 if args.quick else 5.0
    if args.warmup is None:
        args.warmup = 0.5 if args.quick else 1.0
    # What bench_server's targets read from their arguments: no --hold, no durability check.
    args.hold, args.connect_timeout = 0, 60.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    notes = [raise_open_file_limit(2 * max(args.connections) + 256)]
    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, {args.seconds:g} s per cell after "
        f"{args.warmup:g} s warm-up, {args.processes} client processes, {args.workers} server workers",
        flush=True,
    )
    for name in args.ops:
        print(f"  {name}: {LOADS[name].described}")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="strongroom-bench-crypto-") as tmp, contextlib.ExitStack() as stack:
        servers, args.ops = args.servers, args.ops
        # bench_server's targets look at ``ops`` for their durability check (Creates only).
        target_args = argparse.Namespace(**{**vars(args), "ops": []})
        targets: list[Target] = []
        if "strongroom" in servers:
            targets.append(stack.enter_context(strongroom_target(target_args, Path(tmp), notes)))
        if "strongroom-cache" in servers:
            targets.append(stack.enter_context(cached_strongroom_target(target_args, Path(tmp), notes)))
        if "pykmip" in servers:
            targets.append(stack.enter_context(pykmip_target(target_args, Path(tmp), notes)))
        run_all(targets, args, rows, notes)
    print()
    print("encrypt-batch10: ops/s counts Encrypts (10 per message), latencies are per message.")
    print("\n".join(table(rows, args)))
    print()
    for line in [*notes, *target_checks(rows)]:
        print(line)
    return 1 if any(errors(r.cell) for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
