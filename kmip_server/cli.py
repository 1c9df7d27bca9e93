"""The ``strongroom`` command (server side): ``init``, ``serve``, ``backup``, ``restore``,
``rotation status``, ``certs issue``, ``certs renew-server``, ``policy check|explain``,
``credentials set|remove``, ``audit verify|tail|search|export`` and
``approvals list|show|approve|deny``, ``byok export`` (:mod:`.byok.cli`) (init and certs are in
:mod:`.cli_init`, backup and restore themselves in :mod:`.backup`, rotation status in
:mod:`.rotation.status`).

Every failure an operator can cause (a bad configuration, a missing SoftHSM2, a file that would
be overwritten) ends the command with status 1 and one ``strongroom: ...`` line on stderr, not
a traceback. ``init`` is safe to repeat: it creates what is missing and never replaces the CA,
the token's master key, the PINs or the database.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from . import __version__
from .backup import BackupError
from .cli_init import (
    PROG,
    CliError,
    cmd_certs_issue,
    cmd_certs_renew_server,
    cmd_init,
)
from .config import (
    LOG_LEVELS,
    ConfigError,
    load_config,
    read_pin,
)
from .custody import CustodyError
from .logformat import LOG_FORMATS, formatter
from .policy import PolicyError

# ---- serve


def _configure_logging(level: str, log_format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def _cmd_serve(args: argparse.Namespace) -> int:
    _configure_logging("INFO")  # until the configuration names the level
    config = load_config(Path(args.data_dir))
    overrides = {
        name: value
        for name, value in (
            ("host", args.host),
            ("port", args.port),
            ("workers", args.workers),
            ("https_port", args.https_port),
        )
        if value is not None
    }
    admin = config.admin if args.admin_port is None else dataclasses.replace(config.admin, port=args.admin_port)
    config = dataclasses.replace(
        config,
        listener=dataclasses.replace(config.listener, **overrides),
        admin=admin,
        log_level=args.log_level or config.log_level,
        log_format=args.log_format or config.log_format,
        test_harness=args.test_harness or config.test_harness,
    )
    _configure_logging(config.log_level, config.log_format)
    if config.test_harness:
        logging.getLogger("strongroom").warning(
            "test-harness operations (Interop) are answered: a server for conformance tests, not production"
        )

    from .custody import use_softhsm_conf

    # Checked here, once, so a missing PIN file is one clear line rather than one per worker.
    read_pin(config.custody)
    if not config.custody.module.is_file():
        raise CliError(f"PKCS#11 library {config.custody.module} not found (custody.module)")
    if config.custody.softhsm2_conf is not None:
        try:
            # Inherited by the workers, which load the library only after the fork.
            use_softhsm_conf(config.custody.softhsm2_conf)
        except CustodyError as exc:
            raise CliError(str(exc)) from None

    from .engine.app import build_handler
    from .transport import notify
    from .transport.workers import run_server

    # Under systemd (Type=notify, deploy/strongroom.service) the unit is "started" only once
    # every worker accepts, so units ordered after it and `systemctl start` wait for that;
    # outside systemd these do nothing.
    host, port = config.listener.host, config.listener.port
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def ready() -> None:
        notify.ready(f"listening on {where}")

    def stopping() -> None:
        notify.stopping("stopping")

    return run_server(config, functools.partial(build_handler, config), ready=ready, stopping=stopping)


# ---- backup and restore


def _cmd_backup(args: argparse.Namespace) -> int:
    from .backup import backup_command

    progress = args.progress or sys.stderr.isatty()
    return backup_command(
        Path(args.data_dir), Path(args.out), include_pins=args.include_pins, overwrite=args.force, progress=progress
    )


def _cmd_restore(args: argparse.Namespace) -> int:
    from .backup import restore_command

    return restore_command(Path(args.archive), Path(args.data_dir), progress=args.progress or sys.stderr.isatty())


# ---- rotation


def _cmd_rotation_status(args: argparse.Namespace) -> int:
    import time

    from sqlalchemy.exc import SQLAlchemyError

    from .rotation.status import read_status, render

    config = load_config(Path(args.data_dir))
    try:
        status = read_status(config.storage.url, int(time.time()), due_limit=args.limit, recent_limit=args.recent)
    except SQLAlchemyError as exc:  # no bound values in it: the repository hides them
        raise CliError(f"cannot read the store of storage.url: {exc}") from None
    sys.stdout.write(render(status))
    return 0


# ---- the parser


def _bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, not {value}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Strongroom KMIP key server. Start with `strongroom init --data-dir DIR`, "
        "then `strongroom serve --data-dir DIR`.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    init = commands.add_parser(
        "init",
        help="create a data directory: configuration, development PKI, SoftHSM2 token, database",
        description="Create (or complete) a data directory: strongroom.toml, a development CA with a "
        "server certificate and an 'admin' client certificate, a SoftHSM2 token holding the master key "
        "with random PINs in hsm/, and the SQLite database. Safe to run again: existing files, the CA, "
        "the master key and the database are kept; only missing pieces are created.",
    )
    init.add_argument("--data-dir", required=True, metavar="DIR", help="the data directory (created with mode 0700)")
    init.add_argument(
        "--force-config",
        action="store_true",
        help="rewrite strongroom.toml with the defaults even if it exists (nothing else is replaced)",
    )
    init.add_argument(
        "--server-name",
        action="append",
        default=[],
        metavar="NAME",
        help="another host name or IP address for the server certificate, besides localhost, "
        "127.0.0.1 and ::1 (repeatable; used only when the certificate is issued: an existing one is kept, "
        "and `certs renew-server` replaces it)",
    )
    init.add_argument(
        "--progress",
        action="store_true",
        help="report each step on stderr as it begins (the default when stderr is a terminal)",
    )
    init.set_defaults(run=cmd_init)

    serve = commands.add_parser(
        "serve",
        help="run the KMIP server (mutual TLS) until SIGTERM or Ctrl-C",
        description="Serve KMIP over mutual TLS with the settings in DIR/strongroom.toml; the options "
        "below override them. Logs go to stderr. SIGTERM or SIGINT stops the server gracefully "
        "(exit status 0); a start-up failure such as a wrong token PIN exits with status 1.",
    )
    serve.add_argument("--data-dir", required=True, metavar="DIR", help="a data directory made by `strongroom init`")
    serve.add_argument("--host", metavar="HOST", help="address to listen on (listener.host)")
    serve.add_argument("--port", type=_bounded_int(1, 65535), metavar="PORT", help="TCP port (listener.port)")
    serve.add_argument(
        "--https-port",
        type=_bounded_int(0, 65535),
        metavar="PORT",
        help="also serve KMIP over HTTPS (POST /kmip; TTLV, JSON or XML bodies) on this TCP port, "
        "0 = not (listener.https_port)",
    )
    serve.add_argument(
        "--admin-port",
        type=_bounded_int(0, 65535),
        metavar="PORT",
        help="serve the admin listener (GET /healthz, /readyz, /metrics) on this TCP port, 0 = not (admin.port)",
    )
    serve.add_argument(
        "--workers",
        type=_bounded_int(0, 4096),
        metavar="N",
        help="worker processes, 0 = one per CPU (listener.workers)",
    )
    serve.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS, help="log verbosity (log_level)")
    serve.add_argument("--log-format", choices=LOG_FORMATS, help="text, or json: one object per line (log_format)")
    serve.add_argument(
        "--test-harness",
        action="store_true",
        help="answer the test-harness operation Interop, for conformance test suites; never in production (test_harness)",
    )
    serve.set_defaults(run=_cmd_serve)

    backup = commands.add_parser(
        "backup",
        help="write a backup archive of a data directory, also while the server runs",
        description="Write a consistent backup of DIR to FILE (a gzip-compressed tar, mode 0600, written "
        "atomically) while the server may be running: the SQLite database (SQLite's online backup API), the "
        "SoftHSM2 token, strongroom.toml and the certificates, with a manifest of SHA-256 checksums that "
        "`strongroom restore` verifies. The token's PIN files are left out unless --include-pins is given. "
        "A PostgreSQL database is not copied: back it up with pg_dump.",
    )
    backup.add_argument("--data-dir", required=True, metavar="DIR", help="the data directory to back up")
    backup.add_argument("--out", required=True, metavar="FILE", help="the archive to write (outside DIR)")
    backup.add_argument(
        "--include-pins",
        action="store_true",
        help="also store the token PIN files: whoever holds the archive can then use every key",
    )
    backup.add_argument("--force", action="store_true", help="replace FILE if it exists")
    backup.add_argument(
        "--progress",
        action="store_true",
        help="report the database copy's progress on stderr (the default when stderr is a terminal)",
    )
    backup.set_defaults(run=_cmd_backup)

    restore = commands.add_parser(
        "restore",
        help="restore a backup archive into a new data directory",
        description="Restore an archive written by `strongroom backup` into NEWDIR, which must not exist or be "
        "empty: every file is checked against the archive's manifest first, directories get mode 0700 and "
        "secrets 0600. Says which PIN files to put back when the archive has none.",
    )
    restore.add_argument("--from", dest="archive", required=True, metavar="FILE", help="the backup archive")
    restore.add_argument("--data-dir", required=True, metavar="NEWDIR", help="the data directory to create")
    restore.add_argument(
        "--progress",
        action="store_true",
        help="report the files' progress on stderr (the default when stderr is a terminal)",
    )
    restore.set_defaults(run=_cmd_restore)

    rotation = commands.add_parser(
        "rotation",
        help="automatic key rotation (KMIP 2.1 Rotate attributes)",
        description="Automatic key rotation.",
    )
    rotation_commands = rotation.add_subparsers(dest="rotation_command", metavar="COMMAND", required=True)
    status = rotation_commands.add_parser(
        "status",
        help="list the keys due for rotation and the latest rotations",
        description="Read the store named by DIR/strongroom.toml and list the keys due for rotation now "
        "(Rotate Automatic, Active, Initial Date + Rotate Interval passed: unique identifier, name, algorithm, "
        "since when), longest due first; the latest replacements (old -> new key, when: the server's and "
        "Re-key's); and which server process rotates. Needs no token and works while the server runs.",
    )
    status.add_argument("--data-dir", required=True, metavar="DIR", help="a data directory made by `strongroom init`")
    status.add_argument(
        "--limit", type=_bounded_int(1, 100_000), default=100, help="list at most this many due keys (default 100)"
    )
    status.add_argument(
        "--recent", type=_bounded_int(0, 100_000), default=20, help="list this many latest rotations (default 20)"
    )
    status.set_defaults(run=_cmd_rotation_status)

    certs = commands.add_parser(
        "certs", help="client certificates from the data directory's CA", description="Manage client certificates."
    )
    certs_commands = certs.add_subparsers(dest="certs_command", metavar="COMMAND", required=True)
    issue = certs_commands.add_parser(
        "issue",
        help="issue a client certificate signed by the data directory's CA",
        description="Issue a client certificate (subject CN = NAME, the client's identity) signed by "
        "DIR/pki/ca.key, and write OUTDIR/NAME.crt, OUTDIR/NAME.key (mode 0600) and OUTDIR/ca.crt (the CA to "
        "verify the server with). Existing files are not overwritten unless --force is given.",
    )
    issue.add_argument("--data-dir", required=True, metavar="DIR", help="the data directory holding pki/ca.key")
    issue.add_argument("--name", required=True, help="the client identity (certificate subject CN)")
    issue.add_argument("--out", required=True, metavar="OUTDIR", help="directory to write the files to")
    issue.add_argument("--force", action="store_true", help="replace existing files")
    issue.add_argument("--days", type=_bounded_int(1, 36500), default=825, help="validity in days (default 825)")
    issue.add_argument("--ou", metavar="UNIT", help='subject organizational unit (for tls.identity_from = "ou")')
    issue.add_argument(
        "--san-dns", action="append", default=[], metavar="NAME", help="DNS subject alternative name (repeatable)"
    )
    issue.add_argument(
        "--san-email",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="e-mail subject alternative name (repeatable)",
    )
    issue.set_defaults(run=cmd_certs_issue)

    renew = certs_commands.add_parser(
        "renew-server",
        help="issue a new server certificate from the data directory's CA",
        description="Issue a new server certificate (pki/server.crt, pki/server.key) signed by DIR/pki/ca.key, "
        "for localhost, 127.0.0.1, ::1 and the --server-name names, or, without --server-name, for the names "
        "of the current certificate. The previous pair is kept as server.crt.bak and server.key.bak. A running "
        "server serves the new certificate once restarted.",
    )
    renew.add_argument("--data-dir", required=True, metavar="DIR", help="the data directory holding pki/ca.key")
    renew.add_argument(
        "--server-name",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name or IP address for the certificate, besides localhost, 127.0.0.1 and ::1 (repeatable)",
    )
    renew.add_argument("--days", type=_bounded_int(1, 825), default=825, help="validity in days (default 825)")
    renew.set_defaults(run=cmd_certs_renew_server)

    from .admin.dashboard.cli import add_dashboard_commands
    from .admin.status import add_status_command
    from .approvals.cli import add_approvals_commands
    from .audit.cli import add_audit_commands
    from .byok.cli import add_byok_commands
    from .policy.cli import add_policy_commands

    add_policy_commands(commands)
    add_audit_commands(commands)
    add_approvals_commands(commands)
    add_status_command(commands)
    add_dashboard_commands(commands)
    add_byok_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] | None = getattr(args, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return run(args)
    except (CliError, ConfigError, BackupError, CustodyError, PolicyError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a directory that cannot be created, a file that cannot be read...
        print(f"{PROG}: {exc.strerror or exc}: {exc.filename}" if exc.filename else f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
