"""The ``kmip`` command's key pair, re-key and certificate subcommands: create-key-pair, re-key,
re-key-key-pair, certify, re-certify and validate. Connection options and output as for the
other client subcommands (:mod:`kmip_client.cli_commands`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .calls import curve_of
from .cli_commands import (
    UsageError,
    _algorithm,
    _assignment,
    _emit,
    _extra,
    _table,
    _usage_mask,
    connection_options,
    run_client_command,
)
from .client import Client
from .protocol.spec.enums import CryptographicAlgorithm, RecommendedCurve, ValidityIndicator


def _curve(text: str) -> RecommendedCurve:
    try:
        return curve_of(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _pair_output(args: argparse.Namespace, private_key: str, public_key: str) -> None:
    result = {"private_key": private_key, "public_key": public_key}
    _emit(args, result, _table([("private key", private_key), ("public key", public_key)]))


def _create_key_pair(client: Client, args: argparse.Namespace) -> None:
    pair = client.create_key_pair(
        args.algorithm,
        args.length,
        curve=args.curve,
        private_name=args.private_name or None,
        public_name=args.public_name or None,
        private_usage_mask=args.private_usage,
        public_usage_mask=args.public_usage,
        attributes=_extra(args),
    )
    _pair_output(args, pair.private_key, pair.public_key)


def _rekey(client: Client, args: argparse.Namespace) -> None:
    uid = client.rekey(args.uid, offset=args.offset, attributes=_extra(args))
    _emit(args, {"unique_identifier": uid}, uid)


def _rekey_key_pair(client: Client, args: argparse.Namespace) -> None:
    pair = client.rekey_key_pair(args.uid, offset=args.offset, attributes=_extra(args))
    _pair_output(args, pair.private_key, pair.public_key)


def _read(path: str) -> bytes:
    data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    if not data:
        raise UsageError(f"{path}: empty")
    return data


def _certify(client: Client, args: argparse.Namespace) -> None:
    request = _read(args.request) if args.request else None
    uid = client.certify(args.uid, issuer=args.issuer, request=request, name=args.name or None, attributes=_extra(args))
    _emit(args, {"unique_identifier": uid}, uid)


def _recertify(client: Client, args: argparse.Namespace) -> None:
    uid = client.recertify(args.uid, offset=args.offset, attributes=_extra(args))
    _emit(args, {"unique_identifier": uid}, uid)


def _validate(client: Client, args: argparse.Namespace) -> int:
    if not args.certificate and not args.uid:
        raise UsageError("give certificates (--certificate FILE) or their identifiers")
    result = client.validate([_read(path) for path in args.certificate], uids=args.uid)
    _emit(args, {"validity": result.name.lower()}, result.name.lower())
    return 0 if result == ValidityIndicator.VALID else 1


def add_key_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the key pair, re-key and certificate subcommands to the ``kmip`` parser's ``commands``."""
    common = connection_options()

    def add(name: str, action: Any, help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = commands.add_parser(
            name, parents=[common], help=help_text, description=help_text
        )
        sub.set_defaults(handler=run_client_command, action=action, parser=sub)
        return sub

    def attributes(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--attribute", type=_assignment, action="append", default=[], metavar="NAME=VALUE")

    sub = add("create-key-pair", _create_key_pair, "create a linked private and public key; prints both")
    sub.add_argument("--algorithm", type=_algorithm, default=CryptographicAlgorithm.RSA, help="default RSA")
    sub.add_argument("--length", type=int, help="bits: RSA 2048 or more; EC 256, 384 or 521 (or give --curve)")
    sub.add_argument("--curve", type=_curve, help="P-256, P-384, P-521, CURVE25519, CURVE448")
    for side in ("private", "public"):
        sub.add_argument(f"--{side}-name", action="append", default=[], help=f"a Name for the {side} key")
        sub.add_argument(f"--{side}-usage", type=_usage_mask, help=f"the {side} key's usage mask: sign,verify,...")
    attributes(sub)

    for name, action, what in (
        ("re-key", _rekey, "replace a symmetric key by a new one that takes over its names; prints its identifier"),
        ("re-key-key-pair", _rekey_key_pair, "replace a private key and its public key by a new pair; prints both"),
    ):
        sub = add(name, action, what)
        sub.add_argument("uid", help="the key (for re-key-key-pair: the private key)")
        sub.add_argument("--offset", type=int, help="seconds from now until the replacement activates")
        attributes(sub)

    sub = add(
        "certify", _certify, "certify a public key under a CA the server holds; prints the certificate's identifier"
    )
    sub.add_argument("uid", help="the Public Key to certify")
    sub.add_argument("--issuer", metavar="CERT", help="the CA certificate's identifier (default: the server's)")
    sub.add_argument("--request", metavar="FILE", help="a PKCS#10 request for the key, DER or PEM ('-': stdin)")
    sub.add_argument("--name", action="append", default=[], help="a Name for the certificate")
    attributes(sub)

    sub = add("re-certify", _recertify, "renew a certificate for the same key; prints the new one's identifier")
    sub.add_argument("uid", help="the certificate to renew")
    sub.add_argument("--offset", type=int, help="seconds from now until the new certificate is valid")
    attributes(sub)

    sub = add("validate", _validate, "check a certificate chain against the server's certificates; exit 0 if valid")
    sub.add_argument("uid", nargs="*", help="certificates held by the server, after any --certificate")
    sub.add_argument(
        "--certificate", action="append", default=[], metavar="FILE", help="a DER certificate (repeatable)"
    )
