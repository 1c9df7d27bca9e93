"""``strongroom status --data-dir DIR``: the admin listener's view of a running server, for a person.

Asks the server's own admin listener (``[admin] port``) over TLS, as an administrator (the
data directory's ``clients/admin`` certificate unless ``--cert``/``--key`` name another): its
liveness, readiness and metrics, twice ``--interval`` seconds apart for the rates. Exits 0
when the server is ready, 1 when it answers but is not ready, 2 when it cannot be reached.
"""

from __future__ import annotations

import argparse
import http.client
import json
import ssl
import sys
import time
from pathlib import Path
from typing import Any

from .. import __version__
from ..config import ConfigError, load_config

NOT_READY, UNREACHABLE = 1, 2


def add_status_command(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    status = commands.add_parser("status", help="a running server's health, workers, connections and rates")
    status.add_argument("--data-dir", required=True, metavar="DIR", help="the server's data directory")
    status.add_argument(
        "--cert", type=Path, help="an administrator's client certificate (default: DIR/clients/admin.crt)"
    )
    status.add_argument("--key", type=Path, help="its private key (default: DIR/clients/admin.key)")
    status.add_argument("--interval", type=float, default=1.0, help="seconds between the two samples of the rates")
    status.set_defaults(run=_status)


def _context(data_dir: Path, cert: Path | None, key: Path | None) -> ssl.SSLContext:
    clients = data_dir / "clients"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # the listener is addressed as configured, often by IP
    context.load_verify_locations(cafile=str(clients / "ca.crt"))
    context.load_cert_chain(str(cert or clients / "admin.crt"), str(key or clients / "admin.key"))
    return context


def _get(host: str, port: int, context: ssl.SSLContext, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPSConnection(host, port, timeout=10, context=context)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float:
    return sum(value for (sample, _), value in samples.items() if sample == name)


def _status(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir)
    try:
        config = load_config(data_dir)
    except ConfigError as exc:
        print(f"strongroom: {exc}", file=sys.stderr)
        return UNREACHABLE
    if not config.admin.port:
        print("strongroom: the admin listener is off: set [admin] port in strongroom.toml", file=sys.stderr)
        return UNREACHABLE
    host = "127.0.0.1" if config.admin.host in ("", "0.0.0.0", "::") else config.admin.host
    try:
        context = _context(data_dir, args.cert, args.key)
        _, alive = _get(host, config.admin.port, context, "/healthz")
        code, ready = _get(host, config.admin.port, context, "/readyz")
        first_code, first = _get(host, config.admin.port, context, "/metrics")
        started = time.monotonic()
        time.sleep(max(args.interval, 0.1))
        _, second = _get(host, config.admin.port, context, "/metrics")
        elapsed = time.monotonic() - started
    except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
        print(f"strongroom: cannot reach the admin listener at {host}:{config.admin.port}: {exc}", file=sys.stderr)
        return UNREACHABLE
    if first_code != 200:
        print(f"strongroom: /metrics answered {first_code}: {first.decode(errors='replace')}", file=sys.stderr)
        return UNREACHABLE
    liveness: dict[str, Any] = json.loads(alive)
    readiness: dict[str, Any] = json.loads(ready)
    before, after = _samples(first), _samples(second)
    print(_report(liveness, readiness, before, after, elapsed))
    return 0 if code == 200 else NOT_READY


def _report(
    liveness: dict[str, Any],
    readiness: dict[str, Any],
    before: dict[tuple[str, tuple[tuple[str, str], ...]], float],
    after: dict[tuple[str, tuple[tuple[str, str], ...]], float],
    elapsed: float,
) -> str:
    def rate(name: str) -> float:
        return (_total(after, name) - _total(before, name)) / elapsed

    failures = sum(
        value - before.get((name, labels), 0.0)
        for (name, labels), value in after.items()
        if name == "strongroom_batch_items_total" and dict(labels).get("outcome") != "Success"
    )
    lines = [
        f"strongroom {__version__}: {'ready' if readiness['ready'] else 'NOT READY'}",
        f"  uptime         {liveness['uptime_seconds']:.0f} s",
        f"  workers        {_total(after, 'strongroom_workers_up'):.0f} up",
        f"  connections    {_total(after, 'strongroom_open_connections'):.0f} open",
        f"  requests       {rate('strongroom_requests_total'):.1f}/s, batch items {rate('strongroom_batch_items_total'):.1f}/s"
        f" ({failures / elapsed:.1f}/s failed)",
        f"  objects        {_total(after, 'strongroom_objects'):.0f}",
        f"  approvals      {_total(after, 'strongroom_pending_approvals'):.0f} pending",
        f"  audit trail    {_total(after, 'strongroom_audit_records'):.0f} records",
    ]
    for name, check in readiness["checks"].items():
        lines.append(f"  {name:<14} {'ok' if check['ok'] else 'FAILED: ' + check.get('error', '')}")
    return "\n".join(lines)
