"""The ``strongroom`` command (server side)."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="strongroom",
        description="Strongroom KMIP key server. The server commands (init, serve, certs) "
        "arrive with the server core; this release ships the protocol library and the "
        "`kmip` client command.",
    )
    parser.add_argument("--version", action="version", version="strongroom 0.1.0")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    parser.parse_args(argv)
    parser.print_help(sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
