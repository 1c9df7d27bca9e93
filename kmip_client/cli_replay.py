"""``kmip replay``: run OASIS test-case conversations against a server and report PASS/FAIL.

One line per file, ``PASS name`` or ``FAIL name: step N, path: expected X, got Y``, then
``N passed, N failed``; the exit status is 1 when any file failed. After each file the objects
it created (the ``$UNIQUE_IDENTIFIER_n`` it bound) are revoked and destroyed, whether it passed
or not (``--keep`` leaves them, for debugging). Destroyed objects stay visible to a 1.x
Locate, so for files that cannot see each other's objects at all, give each its own client identity:
``--cert-dir DIR`` with ``DIR/NAME.crt`` and ``DIR/NAME.key`` per file (what
``tests/conformance/run.py`` does). A file that continues another (``replay.CONTINUES``)
runs as that file's client (its identity in ``--cert-dir`` too), right after it, and finds its
objects left for it; they are destroyed after the continuation.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from . import operations as ops
from .calls import Calls
from .https_transport import CONTENT_TYPES, HttpsTransport
from .protocol.errors import KmipError
from .protocol.spec.enums import ResultReason, RevocationReasonCode
from .protocol.xml_codec import item_to_xml
from .replay import CaseResult, Exchange, case_files, conversation_order, predecessor, replay_file, summary
from .tls import client_ssl_context
from .transport import ConnectionPool, KmipTransportError, parse_servers

__all__ = ["add_replay_command"]


class _Transport(Protocol):
    def exchange(self, request: bytes, *, idempotent: bool) -> bytes: ...

    def close(self) -> None: ...


def add_replay_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sub = commands.add_parser(
        "replay",
        help="replay OASIS KMIP test-case files against a server and compare the responses",
        description="Send each RequestMessage of each test-case file (XML) in order and compare "
        "the server's response with the expected ResponseMessage. The comparison rules are in "
        "docs/conformance.md.",
    )
    target = sub.add_mutually_exclusive_group(required=True)
    target.add_argument("--server", metavar="HOST:PORT", help="binary TTLV over mutual TLS")
    target.add_argument("--url", help="KMIP over HTTPS, e.g. https://HOST:PORT/kmip")
    sub.add_argument("--encoding", choices=sorted(CONTENT_TYPES), default="ttlv", help="HTTPS body encoding")
    sub.add_argument("--ca", required=True, help="CA certificate(s) that signed the server's certificate")
    identity = sub.add_mutually_exclusive_group(required=True)
    identity.add_argument("--cert", help="client certificate, PEM")
    identity.add_argument(
        "--cert-dir",
        type=Path,
        help="a fresh identity per file: DIR/NAME.crt and DIR/NAME.key, NAME the file's name without .xml",
    )
    sub.add_argument("--key", help="client private key, PEM (default: in --cert)")
    sub.add_argument("-v", "--verbose", action="store_true", help="print the differing response (XML) of a FAIL")
    sub.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    sub.add_argument("--keep", action="store_true", help="do not destroy what each file created")
    sub.add_argument("files", nargs="+", metavar="FILE_OR_DIR")
    sub.set_defaults(handler=run_replay)


def run_replay(args: argparse.Namespace) -> int:
    if args.encoding != "ttlv" and not args.url:
        print("kmip replay: --encoding applies to --url (KMIP over HTTPS) only", file=sys.stderr)
        return 2
    files = conversation_order(case_files(args.files))
    if not files:
        print("kmip replay: no test-case files found", file=sys.stderr)
        return 2
    roots = [Path(p) for p in args.files if Path(p).is_dir()]
    results: list[CaseResult] = []
    continued = {predecessor(f) for f in files if predecessor(f) != f and predecessor(f) in files}
    left: dict[Path, list[str]] = {}  # what a continued file created, for its continuation's clean-up
    # On a terminal each line says how far the run is; piped, the lines are the results alone.
    counted = sys.stdout.isatty()
    for number, path in enumerate(files, 1):
        # A file that continues another runs as that file's client (see replay.CONTINUES).
        identity = predecessor(path)
        cert, key = (args.cert, args.key) if args.cert_dir is None else _identity(args.cert_dir, identity)
        try:
            context = client_ssl_context(ca=args.ca, cert=cert, key=key, check_hostname=False)
        except ValueError as error:  # (unreadable files are OSErrors, which the command reports)
            print(f"kmip replay: cannot use the TLS files: {error}", file=sys.stderr)
            return 2
        transport: _Transport
        if args.url:
            transport = HttpsTransport(args.url, context, encoding=args.encoding, timeout=args.timeout)
        else:
            transport = ConnectionPool(parse_servers(args.server), context, timeout=args.timeout, retries=0)
        try:
            keep = args.keep or path in continued  # its objects are the next file's input
            inherited = left.pop(identity, [])  # a continuation destroys what it was left too
            exchange = functools.partial(transport.exchange, idempotent=False)
            result = replay_one(path, exchange, keep=keep, inherited=inherited)
        finally:
            transport.close()
        if path in continued:
            left[path] = result.created
        results.append(result)
        root = next((r for r in roots if path.is_relative_to(r)), None)
        print(progress_prefix(number, len(files), counted) + result.line(root), flush=True)
        if args.verbose and result.last_response is not None:
            print(item_to_xml(result.last_response), file=sys.stderr)
    print(summary(results))
    return 0 if all(r.passed for r in results) else 1


def progress_prefix(number: int, total: int, counted: bool) -> str:
    """``[ 12/340] `` before a result line on a terminal; nothing when the output is piped."""
    if not counted:
        return ""
    width = len(str(total))
    return f"[{number:>{width}}/{total}] "


def _identity(directory: Path, case: Path) -> tuple[str, str]:
    cert, key = directory / f"{case.stem}.crt", directory / f"{case.stem}.key"
    if not cert.is_file() or not key.is_file():
        raise OSError(
            2, f"no identity for {case.name} in {directory} (want {cert.name} and {key.name})", str(directory)
        )
    return str(cert), str(key)


def replay_one(path: Path, exchange: Exchange, *, keep: bool = False, inherited: Sequence[str] = ()) -> CaseResult:
    """Replay one file, then (unless ``keep``) destroy what it created, and ``inherited``: what
    the file it continues created and left for it."""
    result = replay_file(path, exchange)
    if not keep and result.version is not None:
        for uid in dict.fromkeys([*reversed(result.created), *reversed(inherited)]):
            problem = clean_up(exchange, result.version, uid)
            if problem is not None:
                print(f"kmip replay: {path.name}: could not destroy {uid}: {problem}", file=sys.stderr)
    return result


#: What Destroy answers for an object the file itself destroyed already (1.x has only the first).
_GONE = frozenset({ResultReason.ITEM_NOT_FOUND, ResultReason.OBJECT_DESTROYED, ResultReason.OBJECT_NOT_FOUND})


def clean_up(exchange: Exchange, version: tuple[int, int], uid: str) -> str | None:
    """Revoke and destroy ``uid``; why that failed, or None. The Revoke may be refused (the
    object never activated, or gone), and so may the Destroy of an object already destroyed."""
    calls = Calls(version)
    revoke = calls.revoke(uid, RevocationReasonCode.CESSATION_OF_OPERATION, None, None)
    try:
        exchange(ops.encode_request(version, (revoke.item,)))
        answer = exchange(ops.encode_request(version, (calls.destroy(uid).item,)))
        ops.single_payload(ops.decode_response(answer))
    except KmipError as error:
        return None if error.reason in _GONE else f"{error.reason.name}: {error}"
    except (OSError, KmipTransportError) as error:
        return f"{type(error).__name__}: {error}"
    return None
