"""Client cost per request: this library's Client vs PyKMIP's ProxyKmipClient, same server, same run.

Both clients Get the same AES-256 key from one `strongroom serve` over mutual TLS, one request
at a time on one kept-open connection, in alternating rounds. What is compared is the client
process's own CPU time per Get (encode, TLS, frame, decode; user and system), not the wall
time, which the server's share would dominate.

    .venv/bin/python tests/bench/bench_client.py [--requests 6000] [--rounds 6]
"""

from __future__ import annotations

import argparse
import logging
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kmip_client import Client  # noqa: E402
from tests.support.server_process import free_port, running_server, strongroom_init  # noqa: E402


def measure(get: Callable[[], object], count: int) -> tuple[float, float, float]:
    """User and system CPU seconds per call, and calls per wall second, over ``count`` calls."""
    before, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(count):
        get()
    after, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - wall
    return (after.ru_utime - before.ru_utime) / count, (after.ru_stime - before.ru_stime) / count, count / wall


def compare(clients: dict[str, Callable[[], object]], requests: int, rounds: int) -> dict[str, float]:
    """Each client's median CPU seconds per Get over ``rounds`` alternating rounds.

    The machine's speed drifts (other tenants, frequency); rounds taken in turn expose both
    clients to the same drift, and the median drops the odd disturbed round.
    """
    for get in clients.values():
        for _ in range(50):  # warm-up: connection, caches
            get()
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in clients}
    for _ in range(rounds):
        for name, get in clients.items():
            samples[name].append(measure(get, requests // rounds))
    medians = {}
    for name, runs in samples.items():
        user, system, rate = (statistics.median(run[i] for run in runs) for i in range(3))
        total = statistics.median(run[0] + run[1] for run in runs)
        medians[name] = total
        print(
            f"{name:<24} {total * 1e6:8.1f} CPU µs/Get (user {user * 1e6:6.1f}, system {system * 1e6:5.1f})"
            f"   {rate:8.0f} Get/s (wall)"
        )
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=6000, help="Gets per client, over all rounds")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    logging.getLogger("kmip").setLevel(logging.WARNING)
    from kmip import enums
    from kmip.pie.client import ProxyKmipClient

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        tls = strongroom_init(data_dir)
        with running_server(data_dir, free_port(), workers=1, extra_args=["--log-level", "WARNING"]) as server:
            ours = Client(f"{server.host}:{server.port}", ca=tls.ca, cert=tls.cert, key=tls.key, version=(1, 4))
            uid = ours.create("AES", 256)
            theirs = ProxyKmipClient(
                hostname=server.host,
                port=server.port,
                cert=str(tls.cert),
                key=str(tls.key),
                ca=str(tls.ca),
                ssl_version="PROTOCOL_TLS",
                kmip_version=enums.KMIPVersion.KMIP_1_4,
            )
            theirs.open()
            if theirs.get(uid).value != ours.get(uid).value:
                raise SystemExit("the two clients did not get the same key")
            medians = compare(
                {"strongroom kmip_client": lambda: ours.get(uid), "PyKMIP ProxyKmipClient": lambda: theirs.get(uid)},
                args.requests,
                args.rounds,
            )
            ours.close()
            theirs.close()
    ratio = medians["PyKMIP ProxyKmipClient"] / medians["strongroom kmip_client"]
    print(f"PyKMIP's client spends {ratio:.1f}x the CPU of this library's per Get")


if __name__ == "__main__":
    main()
