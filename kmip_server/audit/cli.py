"""``strongroom audit verify|tail|search|export|verify-export --data-dir DIR``.

``verify`` and the exports use the token (the trail's MACs are the token's); ``tail`` and
``search`` read the store alone.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError

from ..cli_init import CliError
from ..config import ServerConfig, load_config
from ..custody import KeyCustody
from ..custody.opening import open_custody
from ..storage.repository import Repository
from .export import after, search, syslog_line, tail, write_jsonl, write_syslog
from .records import AuditRecord
from .verify import TrailBroken, verify, verify_export

#: Exit status of verify, verify-export and export on a broken trail.
BROKEN = 2


def add_audit_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    audit = commands.add_parser("audit", help="verify, read and export the HMAC-chained audit trail")
    actions = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)

    def action(name: str, text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(name, help=text)
        parser.add_argument("--data-dir", required=True, help="the server's data directory")
        return parser

    action("verify", "check every record's chain and MAC; exit 2 naming the first bad record").set_defaults(run=_verify)
    t = action("tail", "the last records")
    t.add_argument("-n", type=int, default=20, help="how many (default 20)")
    t.add_argument("--json", action="store_true", help="JSON lines")
    t.add_argument("-f", "--follow", action="store_true", help="keep printing records as they are appended")
    t.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)  # --follow's poll period
    t.set_defaults(run=_tail)
    s = action("search", "records by identity, object, operation and time")
    s.add_argument("--identity")
    s.add_argument("--object", metavar="UID")
    s.add_argument("--operation", help='as the spec spells it ("Destroy"); case-insensitive')
    s.add_argument("--since", type=_instant, help="ISO 8601 time (UTC unless it says otherwise)")
    s.add_argument("--until", type=_instant)
    s.add_argument("--limit", type=int, default=100)
    s.add_argument("--json", action="store_true")
    s.set_defaults(run=_search)
    e = action("export", "every record as JSON lines (sealed by the token) or RFC 5424 syslog lines")
    e.add_argument("--format", choices=("jsonl", "syslog"), default="jsonl")
    e.add_argument("--out", required=True, help="the file to write ('-': standard output)")
    e.set_defaults(run=_export)
    v = action("verify-export", "check a JSON-lines export against the token")
    v.add_argument("file")
    v.set_defaults(run=_verify_export)


def _instant(text: str) -> float:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


@contextmanager
def _store(config: ServerConfig) -> Iterator[Repository]:
    import kmip_server.audit  # noqa: F401  (declares the tables)

    repository = Repository(config.storage.url)
    try:
        yield repository
    except SQLAlchemyError as exc:  # no bound values in it: the repository hides them
        raise CliError(f"cannot read the audit trail in the store of storage.url: {exc}") from None
    finally:
        repository.dispose()


def _has_trail(repository: Repository) -> bool:
    """False for a store made before the audit trail existed (the server adds the tables when
    it starts): reading it then says so rather than failing on a missing table."""
    with repository.read() as session:
        return inspect(session.connection).has_table("audit_records")


@contextmanager
def _token(config: ServerConfig) -> Iterator[KeyCustody]:
    """The data directory's token, opened as a server worker opens it (custody/opening.py)."""
    custody = open_custody(config)
    try:
        yield custody
    finally:
        custody.close()


def _verify(args: argparse.Namespace) -> int:
    config = load_config(Path(args.data_dir))
    with _store(config) as repository:
        if not _has_trail(repository):
            print("audit trail intact: 0 records (the store has no audit tables yet)")
            return 0
        with _token(config) as custody, repository.read() as session:
            report = verify(session.connection, custody)
    print(report.message if report.ok else f"audit trail broken at record {report.first_bad}: {report.message}")
    return 0 if report.ok else BROKEN


def _verify_export(args: argparse.Namespace) -> int:
    config = load_config(Path(args.data_dir))
    with _token(config) as custody, open(args.file, encoding="utf-8") as lines:
        report = verify_export(lines, custody)
    print(report.message if report.ok else f"export broken at line {report.first_bad}: {report.message}")
    return 0 if report.ok else BROKEN


def _print(records: list[AuditRecord], as_json: bool) -> None:
    for record in records:
        if as_json:
            print(json.dumps(record.to_json(), ensure_ascii=False))
            continue
        when = datetime.fromtimestamp(record.time, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        reason = f" ({record.reason})" if record.reason else ""
        objects = ",".join(record.object_ids) or "-"
        changed = f" changed={','.join(record.attributes)}" if record.attributes else ""
        detail = f" -- {record.detail}" if record.detail else ""
        print(
            f"#{record.seq} {when}Z {record.node} {record.identity}@{record.address or '-'} "
            f"{record.operation} {objects}: {record.result}{reason}{changed}{detail}"
        )


def _tail(args: argparse.Namespace) -> int:
    config = load_config(Path(args.data_dir))
    with _store(config) as repository:
        if not _has_trail(repository):
            return 0
        with repository.read() as session:
            records = tail(session.connection, args.n)
        _print(records, args.json)
        last = records[-1].seq if records else 0
        while args.follow:
            sys.stdout.flush()
            time.sleep(args.interval)
            with repository.read() as session:
                records = after(session.connection, last)
            _print(records, args.json)
            last = records[-1].seq if records else last
    return 0


def _search(args: argparse.Namespace) -> int:
    config = load_config(Path(args.data_dir))
    with _store(config) as repository:
        if not _has_trail(repository):
            return 0
        with repository.read() as session:
            found = search(
                session.connection,
                identity=args.identity,
                object_id=args.object,
                operation=args.operation,
                since=args.since,
                until=args.until,
                limit=args.limit,
            )
    _print(found, args.json)
    return 0


def _export(args: argparse.Namespace) -> int:
    config = load_config(Path(args.data_dir))
    to_stdout = args.out == "-"
    with _store(config) as repository:
        if not _has_trail(repository):
            raise CliError("the store has no audit trail yet: nothing to export")
        with _token(config) as custody, repository.read() as session:
            out = sys.stdout if to_stdout else open(args.out, "w", encoding="utf-8")
            try:
                if args.format == "jsonl":
                    count = write_jsonl(session.connection, custody, out)
                else:
                    count = write_syslog(session.connection, out, socket.gethostname())
            except TrailBroken as broken:
                report = broken.report
                print(f"audit trail broken at record {report.first_bad}: {report.message}; not exported")
                if not to_stdout:
                    out.close()
                    os.unlink(args.out)  # a partial file without a seal is no export
                return BROKEN
            finally:
                if not to_stdout:
                    out.close()
    if not to_stdout:
        print(f"exported {count} records to {args.out}", file=sys.stderr)
    return 0


__all__ = ["BROKEN", "add_audit_commands", "syslog_line"]
