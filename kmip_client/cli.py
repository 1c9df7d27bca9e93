"""The ``kmip`` command: client-side tools for KMIP.

Subcommands register themselves in :func:`build_parser`; each returns an exit status. ``convert``
lives here; the subcommands that talk to a server are in :mod:`kmip_client.cli_commands` and
(the cryptographic ones) :mod:`kmip_client.cli_crypto`, (key pairs, re-key, certificates)
:mod:`kmip_client.cli_keys`, (bulk import) :mod:`kmip_client.cli_import`.

Output into a pipe that its reader closed (``kmip locate | head -1``) ends the command quietly
with status 141, what a shell reports for a command killed by SIGPIPE (``seq 1e6 | head -1``),
so a script treats it like any other tool's; nothing more is written, and no traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime

from .cli_commands import add_client_commands, connection_options, misplaced_options, output_closed, parse_time
from .cli_crypto import add_crypto_commands, write_all
from .cli_import import add_import_command
from .cli_keys import add_key_commands
from .cli_replay import add_replay_command
from .convert import FORMATS, Bindings, convert
from .protocol.errors import KmipError

Command = Callable[[argparse.Namespace], int]

#: The exit status when the reader of the output has gone: 128 + SIGPIPE, as for a killed command.
PIPE_CLOSED_STATUS = 141


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kmip",
        description="Talk KMIP: manage keys and objects on a KMIP server; convert and inspect messages. "
        "The connection options go before the subcommand or after it (after wins).",
        parents=[connection_options(before_command=True)],
    )
    parser.add_argument("--version", action="version", version="kmip (strongroom) 0.1.0")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_convert(commands)
    add_client_commands(commands)
    add_key_commands(commands)
    add_crypto_commands(commands)
    add_import_command(commands)
    add_replay_command(commands)
    return parser


def _add_convert(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sub = commands.add_parser(
        "convert",
        help="convert KMIP messages between ttlv, hex, json and xml",
        description="Convert one message or a whole test-case file. Reads FILE (stdin when "
        "absent), writes stdout. TTLV output concatenates messages; XML/JSON output wraps "
        "several messages like the OASIS test-case files.",
    )
    sub.add_argument("--from", dest="source", choices=FORMATS, required=True, help="input format")
    sub.add_argument("--to", dest="target", choices=FORMATS, required=True, help="output format")
    sub.add_argument("file", nargs="?", metavar="FILE", help="input file (default: stdin)")
    sub.add_argument(
        "--now",
        type=parse_time,
        help="time for $NOW placeholders in TTLV output: ISO 8601 or epoch seconds (default: now)",
    )
    sub.add_argument(
        "--bind",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="value for placeholder $NAME in TTLV output, in the XML text form of its item "
        "(hex for byte strings); text placeholders are otherwise kept as their $NAME text",
    )
    sub.set_defaults(handler=_run_convert)


def _run_convert(args: argparse.Namespace) -> int:
    bindings = Bindings(now=args.now or datetime.now(UTC))
    for binding in args.bind:
        name, sep, value = binding.partition("=")
        if not sep or not name:
            raise KmipError(f"--bind expects NAME=VALUE, got {binding!r}")
        bindings.values[name.lstrip("$")] = value
    if args.file:
        with open(args.file, "rb") as stream:
            data = stream.read()
    else:
        data = sys.stdin.buffer.read()
    _write_all(convert(data, args.source, args.target, bindings))
    return 0


def _write_all(data: bytes) -> None:
    write_all(sys.stdout.buffer, data)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``kmip`` console script."""
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()  # a closed pipe shows here at the latest, while we can still end quietly
    except BrokenPipeError:
        # Python's recipe (docs: signal, "Note on SIGPIPE"): what is still buffered goes nowhere,
        # so the interpreter's own flush at exit finds no closed pipe to complain about.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        return PIPE_CLOSED_STATUS


def _run(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    problem = misplaced_options(args)
    if problem:
        parser.error(problem)
    handler: Command = args.handler
    try:
        return handler(args)
    except KmipError as exc:
        print(f"kmip {args.command}: {exc.message}", file=sys.stderr)
    except OSError as exc:
        if isinstance(exc, BrokenPipeError) and output_closed():
            raise
        print(f"kmip {args.command}: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
