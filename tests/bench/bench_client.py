"""Client cost per request: this library's Client vs PyKMIP's ProxyKmipClient, same server, same run.

Both clients Get the same AES-256 key from one `strongroom serve` over mutual TLS, one request
at a time on one kept-open connection. What is compared is the client process's own CPU time
per Get (encode, TLS, frame, decode), not the wall time, which the server's share would
dominate.

    .venv/bin/python tests/bench/bench_client.py [--requests 3000]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kmip_client import Client  # noqa: E402
from tests.support.server_process import free_port, running_server, strongroom_init  # noqa: E402


def measure(label: str, get: object, count: int) -> float:
    for _ in range(50):  # warm-up: connection, caches
        get()  # type: ignore[operator]
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        get()  # type: ignore[operator]
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(f"{label:<28} {cpu / count * 1e6:8.1f} CPU µs/Get   {count / wall:8.0f} Get/s (wall)")
    return cpu / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    logging.getLogger("kmip").setLevel(logging.WARNING)
    from kmip import enums
    from kmip.pie.client import ProxyKmipClient

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        tls = strongroom_init(data_dir)
        with running_server(data_dir, free_port(), workers=1, extra_args=["--log-level", "WARNING"]) as server:
            ours = Client(
                f"{server.host}:{server.port}", ca=tls.ca, cert=tls.cert, key=tls.key, version=(1, 4)
            )
            uid = ours.create("AES", 256)
            mine = measure("strongroom kmip_client", lambda: ours.get(uid), args.requests)
            ours.close()
            theirs_client = ProxyKmipClient(
                hostname=server.host,
                port=server.port,
                cert=str(tls.cert),
                key=str(tls.key),
                ca=str(tls.ca),
                ssl_version="PROTOCOL_TLS",
                kmip_version=enums.KMIPVersion.KMIP_1_4,
            )
            theirs_client.open()
            theirs = measure("PyKMIP ProxyKmipClient", lambda: theirs_client.get(uid), args.requests)
            theirs_client.close()
    print(f"PyKMIP's client spends {theirs / mine:.1f}x the CPU of this library's per Get")


if __name__ == "__main__":
    main()
