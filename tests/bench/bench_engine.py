"""In-process cost of the engine per request: decode, dispatch, storage, custody, encode.

No network: this is the server's own CPU per operation, the floor under the TLS numbers of
bench_server.py. Uses a throw-away SoftHSM2 token and SQLite file.

    .venv/bin/python tests/bench/bench_engine.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kmip_client.protocol.spec.enums import Operation  # noqa: E402
from kmip_server import operations  # noqa: E402, F401
from kmip_server.custody import Pkcs11Custody, find_softhsm_module, initialise_token, use_softhsm_conf  # noqa: E402
from kmip_server.engine.dispatcher import Dispatcher  # noqa: E402
from kmip_server.engine.identity import ClientIdentity  # noqa: E402
from kmip_server.policy import DEFAULT_POLICY  # noqa: E402
from kmip_server.storage.repository import Repository  # noqa: E402
from tests.integration.kmip_messages import V14, create_aes, item, ok, request_bytes, response  # noqa: E402


def measure(label: str, engine: Dispatcher, data: bytes, seconds: float) -> None:
    identity = ClientIdentity("admin")
    ok(response(engine.handle(data, identity)).batch_items[0])
    count, start = 0, time.perf_counter()
    cpu = time.process_time()
    while time.perf_counter() - start < seconds:
        engine.handle(data, identity)
        count += 1
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    print(f"{label:<18} {count / elapsed:>9.0f} ops/s  {elapsed / count * 1e6:>7.1f} µs/op  {cpu / count * 1e6:>7.1f} CPU µs/op")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    module = find_softhsm_module()
    if module is None:
        raise SystemExit("SoftHSM2 is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        conf = initialise_token(
            Path(tmp) / "token", label="bench", pin="bench-pin-1", so_pin="bench-so-1", master_key_label="master"
        )
        use_softhsm_conf(conf)
        custody = Pkcs11Custody.open(module, "bench", "bench-pin-1", "master")
        repository = Repository(f"sqlite:///{tmp}/bench.db")
        repository.create_schema()
        engine = Dispatcher(repository, custody, DEFAULT_POLICY)
        created = response(engine.handle(request_bytes(V14, create_aes(V14)), ClientIdentity("admin")))
        uid = ok(created.batch_items[0]).unique_identifier
        measure("Discover Versions", engine, request_bytes(V14, item(Operation.DISCOVER_VERSIONS)), args.seconds)
        measure("Get", engine, request_bytes(V14, item(Operation.GET, unique_identifier=uid)), args.seconds)
        measure("Create (durable)", engine, request_bytes(V14, create_aes(V14)), args.seconds)
        repository.dispose()
        custody.close()


if __name__ == "__main__":
    main()
