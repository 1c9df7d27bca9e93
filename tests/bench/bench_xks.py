"""AWS KMS External Key Store (XKS) benchmark: Encrypt then Decrypt against a real ``strongroom serve``.

A fresh data directory is initialised, given an ``[xks]`` section, a SigV4 credential and an
access policy letting the XKS identity use the keys named ``xks-*``, and served with its admin
listener; one AES-256 key is made over KMIP. Each connection then repeats what AWS KMS sends
for a GenerateDataKey followed by a Decrypt: an XKS Encrypt of a 32-byte data key with 64 bytes
of AAD, then the Decrypt of its output, each request signed afresh with SigV4 (the client of
tests/integration/test_xks_sigv4.py, written from AWS's documents), one request in flight per
connection over persistent TLS connections. Every answer must be HTTP 200 and the decryption
must give the plaintext back. Prints requests/s (Encrypts and Decrypts together), p50/p99/max
latency per request, how many answered after AWS KMS's 250 ms, and the server's CPU per
request (all its processes).

    python tests/bench/bench_xks.py [--connections 16] [--duration 10] [--warmup 2]
        [--rounds 1] [--workers 2] [--processes 2]

AWS recommends that an external key store handle 1,800 requests per second (the default
quota of a key store); the client's own CPU (SigV4 and TLS in Python) is spent on the same
machine, so the figure is a floor for the server alone.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import ssl
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # run as a script: make `tests` importable
    sys.path.insert(0, str(_ROOT))

from threaded_load import Cell, Window, run_cell  # noqa: E402

from kmip_client import Client  # noqa: E402
from kmip_client.protocol.spec.enums import CryptographicUsageMask  # noqa: E402
from tests.integration.test_xks_api import POLICY, PREFIX, xks_section  # noqa: E402
from tests.integration.test_xks_sigv4 import XksClient, b64, request_metadata, unb64  # noqa: E402
from tests.support.server_process import (  # noqa: E402
    LOOPBACK,
    free_port,
    running_server,
    serve_policy,
    strongroom_init,
)

ACCESS_KEY_ID = "BENCH2345BENCH2345BE"
SECRET = "YmVuY2htYXJrLW9ubHktc2VjcmV0LWFjY2Vzcy1rZXktMDAwMA="
KEY_NAME = "xks-bench"  # the test's access policy lets the XKS identity use xks-* keys
BUDGET = 0.25


@dataclasses.dataclass(frozen=True)
class Load:
    port: int
    ca: Path


def _connection(load: Load, window: Window, latencies: list[float], errors: list[str]) -> None:
    context = ssl.create_default_context(cafile=str(load.ca))
    context.check_hostname = False
    client = XksClient(LOOPBACK, load.port, context, PREFIX, ACCESS_KEY_ID, SECRET)
    aad = os.urandom(64)
    try:
        while time.time() < window.stop:
            plaintext = os.urandom(32)
            body = {
                "requestMetadata": request_metadata("GenerateDataKey"),
                "plaintext": b64(plaintext),
                "encryptionAlgorithm": "AES_GCM",
                "additionalAuthenticatedData": b64(aad),
            }
            began = time.time()
            sealed = client.call(f"keys/{KEY_NAME}/encrypt", body)
            middle = time.time()
            if sealed.status != 200:
                errors.append(f"Encrypt: HTTP {sealed.status} {sealed.body[:200]!r}")
                continue
            answer = sealed.json
            fields = ("ciphertext", "initializationVector", "authenticationTag", "ciphertextMetadata")
            opened = client.call(
                f"keys/{KEY_NAME}/decrypt",
                {
                    "requestMetadata": request_metadata("Decrypt"),
                    **{name: answer[name] for name in fields if name in answer},
                    "encryptionAlgorithm": "AES_GCM",
                    "additionalAuthenticatedData": b64(aad),
                },
            )
            done = time.time()
            if opened.status != 200 or unb64(opened.json["plaintext"]) != plaintext:
                errors.append(f"Decrypt: HTTP {opened.status} {opened.body[:200]!r}")
            elif began >= window.measure and done <= window.stop:
                latencies += [middle - began, done - middle]
    finally:
        client.close()


@contextlib.contextmanager
def serving(workdir: Path, workers: int) -> Iterator[tuple[Load, int]]:
    """``strongroom serve`` with the XKS API on its admin port: the connections' settings, the pid."""
    data_dir = workdir / "data"
    admin = strongroom_init(data_dir)
    serve_policy(data_dir, POLICY)
    (data_dir / "xks").mkdir()
    secret = data_dir / "xks" / "bench.secret"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o600)
    config = data_dir / "strongroom.toml"
    config.write_text(config.read_text() + xks_section((ACCESS_KEY_ID, "bench.secret")))
    admin_port = free_port()
    extra = ["--admin-port", str(admin_port), "--log-level", "WARNING"]  # not a line per call
    with running_server(data_dir, free_port(), workers=workers, extra_args=extra) as server:
        with Client(f"{LOOPBACK}:{server.port}", ca=admin.ca, cert=admin.cert, key=admin.key) as kmip:
            mask = CryptographicUsageMask.ENCRYPT | CryptographicUsageMask.DECRYPT
            kmip.activate(kmip.create("AES", 256, name=KEY_NAME, usage_mask=int(mask)))
        yield Load(admin_port, admin.ca), server.process.pid


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=16, help="connections, one request in flight each")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per round")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--rounds", type=int, default=1, help="times the cell runs (the best is kept)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--processes", type=int, default=2, help="client processes at most")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    best: Cell | None = None
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-xks-") as workdir:
        with serving(Path(workdir), args.workers) as (load, pid):
            for _ in range(args.rounds):
                cell = run_cell(
                    _connection,
                    [load],
                    args.connections,
                    processes=args.processes,
                    warmup=args.warmup,
                    duration=args.duration,
                    server_pid=pid,
                )
                failures += cell.errors
                print(
                    f"  round: {cell.rate:.0f} req/s, p99 {cell.percentile_ms(0.99):.1f} ms",
                    file=sys.stderr,
                    flush=True,
                )
                if best is None or cell.rate > best.rate:
                    best = cell
    assert best is not None
    print(
        f"XKS Encrypt+Decrypt, {args.connections} connections, {args.workers} worker(s), "
        f"best of {args.rounds} x {args.duration:g} s"
    )
    print(f"{'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'>250 ms':>7} {'errors':>6} {'srv µs/req':>10}")
    p50, p99, over = best.percentile_ms(0.5), best.percentile_ms(0.99), best.over(BUDGET)
    print(
        f"{best.rate:>8.0f} {p50:>7.2f} {p99:>7.2f} {best.max_ms:>7.1f} {over:>7} "
        f"{len(best.errors):>6} {best.server_us_per_request:>10.0f}"
    )
    for failure in failures[:5]:
        print("error:", failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
