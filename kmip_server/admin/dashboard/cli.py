"""``strongroom dashboard-link --data-dir DIR --as NAME [--minutes 15]``: a login link for the
web dashboard, MAC'd by the data directory's token (kmip_server/admin/dashboard/auth.py)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ...cli_init import CliError
from ...config import load_config


def add_dashboard_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    link = commands.add_parser(
        "dashboard-link",
        help="print a short-lived login link to the web dashboard on the admin listener",
    )
    link.add_argument("--data-dir", required=True, metavar="DIR", help="the server's data directory (its token)")
    link.add_argument("--as", dest="name", required=True, metavar="NAME", help="the identity to log in as")
    link.add_argument(
        "--minutes", type=int, default=15, help="how long the link may be used to log in (default 15, at most 1440)"
    )
    link.add_argument("--host", help="the host name in the link (default: [admin] host)")
    link.add_argument("--port", type=int, help="the port in the link (default: [admin] port)")
    link.set_defaults(run=_link)


def _link(args: argparse.Namespace) -> int:
    from ...custody.opening import open_custody
    from .auth import MAX_LINK_SECONDS, make_link_token

    if not 1 <= args.minutes * 60 <= MAX_LINK_SECONDS:
        raise CliError(f"--minutes must be 1 to {MAX_LINK_SECONDS // 60}")
    if not args.name:
        raise CliError("--as needs a name")
    config = load_config(Path(args.data_dir))
    port = args.port or config.admin.port
    if not port:
        raise CliError("the admin listener is off ([admin] port in strongroom.toml, or --admin-port): give --port")
    host = args.host or config.admin.host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    expires = int(time.time()) + args.minutes * 60
    custody = open_custody(config)
    try:
        token = make_link_token(custody.audit_mac, args.name, expires)
    finally:
        custody.close()
    print(f"https://{host}:{port}/dashboard/login?t={token}")
    return 0
