"""User-space instructions per Get of this library's Client, counted by valgrind (callgrind).

CPU time on this machine drifts and depends on cache misses after each wake-up; an
instruction count does not, so it shows whether a change to the client's code made a Get
cheaper. The client runs twice under valgrind against one `strongroom serve` (not under
valgrind): once with no measured Gets, once with ``--gets``; the difference, divided, is the
cost of one Get (encode, TLS, frame, decode; the kernel's share is not counted).

    .venv/bin/python tests/bench/client_instructions.py [--gets 2000]   # needs valgrind
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kmip_client import Client  # noqa: E402
from tests.support.server_process import free_port, running_server, strongroom_init  # noqa: E402

_CLIENT = """
import json, sys
from kmip_client import Client
settings = json.loads(sys.argv[1])
client = Client(settings["address"], ca=settings["ca"], cert=settings["cert"], key=settings["key"], version=(1, 4))
for _ in range(50 + int(sys.argv[2])):  # 50 to open the connection and warm up
    client.get(settings["uid"])
client.close()
"""


def instructions(settings: dict[str, str], gets: int, out: Path) -> int:
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-c", _CLIENT]
        + [json.dumps(settings), str(gets)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    found = re.search(r"Collected : (\d+)", run.stderr)
    if found is None:
        raise SystemExit(f"valgrind did not report a count:\n{run.stderr}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gets", type=int, default=2000)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        tls = strongroom_init(data_dir)
        with running_server(data_dir, free_port(), workers=1, extra_args=["--log-level", "WARNING"]) as server:
            address = f"{server.host}:{server.port}"
            with Client(address, ca=tls.ca, cert=tls.cert, key=tls.key, version=(1, 4)) as client:
                uid = client.create("AES", 256)
            settings = {"address": address, "ca": str(tls.ca), "cert": str(tls.cert), "key": str(tls.key), "uid": uid}
            base = instructions(settings, 0, Path(tmp) / "callgrind.0")
            loaded = instructions(settings, args.gets, Path(tmp) / "callgrind.n")
    print(f"{(loaded - base) / args.gets:,.0f} user-space instructions per Get (over {args.gets} Gets)")


if __name__ == "__main__":
    main()
