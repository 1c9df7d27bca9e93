"""The ``kmip`` command's cryptographic subcommands: encrypt, decrypt, sign, verify, mac, hash, rng.

Each reads its input from ``--in FILE`` (stdin when absent) and writes its binary output to
``--out FILE`` (stdout when absent; ``--hex`` for hexadecimal and a newline instead). A file
given to ``--out`` is created with mode 0600 and appears only once the operation succeeded (it
is written beside and renamed), so a failed decryption leaves no plaintext behind. Input larger
than one part (``--part-size``, 256 KiB by default) is streamed to the server part by part;
smaller input goes as one whole request.

Cryptographic Parameters are flags (``--mode gcm``, ``--padding pkcs5``, ``--hash sha-256``,
``--tag-length 16``, ``--random-iv`` ...); byte values are hexadecimal (``--iv``, ``--aad``,
``--tag``). ``encrypt`` reports what decryption will need on stderr, one ``NAME: HEX`` line
each: ``iv`` when the server chose it, ``tag`` for authenticated modes.

``verify`` and ``mac --verify`` print ``valid`` or ``invalid`` and exit 0 when valid, 1 when
not. Any failure also exits 1, with its message on stderr, so a script reading only the status
never takes a failure for a valid signature.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from .cli_commands import _hex, connection_options, run_client_command
from .client import Client
from .crypto_calls import VerifyResult, enum_member
from .protocol.spec.enums import (
    BlockCipherMode,
    DigitalSignatureAlgorithm,
    HashingAlgorithm,
    PaddingMethod,
)
from .streaming import DEFAULT_PART_SIZE, CryptoStream

__all__ = ["add_crypto_commands", "write_all"]


def _member_type(cls: Any) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return enum_member(cls, text)
        except ValueError:
            names = ", ".join(name.lower().replace("_", "-") for name in cls.__members__)
            raise argparse.ArgumentTypeError(f"unknown value {text!r} (one of: {names})") from None

    convert.__name__ = cls.__name__
    return convert


def _positive(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


# ------------------------------------------------------------------------------ input and output


def write_all(out: IO[bytes], data: bytes) -> None:
    """Write ``data`` whole: with PYTHONUNBUFFERED, ``sys.stdout.buffer`` is the raw file, whose
    write may take only part (a pipe whose reader leaves mid-write, a signal)."""
    view = memoryview(data)
    while view:
        written = out.write(view)
        if written is None:  # a non-blocking stdout that is full: wait until it takes more
            select.select([], [out], [])
            continue
        view = view[written:]
    out.flush()


def _chunks(args: argparse.Namespace) -> Iterator[bytes]:
    """The input in reads of one part each."""
    with contextlib.ExitStack() as stack:
        source: IO[bytes] = stack.enter_context(open(args.input, "rb")) if args.input else sys.stdin.buffer
        while chunk := source.read(args.part_size):
            yield chunk


class _Output:
    """Where the result goes: stdout as it comes, or ``--out FILE`` once the whole succeeded."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.hex = args.hex
        self.path = args.out
        self._temp: IO[bytes] | None = None
        self._temp_name = ""

    def __enter__(self) -> _Output:
        if self.path:
            target = Path(self.path)
            fd, self._temp_name = tempfile.mkstemp(dir=target.parent or ".", prefix=f".{target.name}.")
            self._temp = os.fdopen(fd, "wb")  # mkstemp creates it 0600
        return self

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self.hex:
            data = data.hex().encode()
        write_all(self._temp or sys.stdout.buffer, data)

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if self.hex and exc_type is None:
            self.write_text("\n")
        if self._temp is None:
            return
        self._temp.close()
        if exc_type is None:
            os.replace(self._temp_name, self.path)
        else:
            os.unlink(self._temp_name)

    def write_text(self, text: str) -> None:
        write_all(self._temp or sys.stdout.buffer, text.encode())


def _pump(stream: CryptoStream[Any], args: argparse.Namespace, out: _Output | None) -> Any:
    """Feed the whole input to ``stream``; output (if any) to ``out``; the final result."""
    for chunk in _chunks(args):
        released = stream.update(chunk)
        if out is not None:
            out.write(released)
    return stream.finalize()


def _options(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The Cryptographic Parameters given as flags, as keyword arguments of the client."""
    given = {name: getattr(args, name, None) for name in names}
    if getattr(args, "random_iv", False):
        given["random_iv"] = True
    return {name: value for name, value in given.items() if value is not None}


def _verdict(args: argparse.Namespace, result: VerifyResult) -> int:
    word = "valid" if result.valid else "invalid"
    if args.json:
        indicator = getattr(result.indicator, "name", result.indicator)
        print(json.dumps({"valid": result.valid, "indicator": indicator}))
    else:
        print(word)
    return 0 if result.valid else 1


# ---------------------------------------------------------------------------------- commands

_CIPHER = ("mode", "padding", "hashing", "tag_length", "iv_length")
_SIGNATURE = ("hashing", "padding", "signature_algorithm", "salt_length")


def _encrypt(client: Client, args: argparse.Namespace) -> None:
    stream = client.encryptor(args.uid, iv=args.iv, aad=args.aad, part_size=args.part_size, **_options(args, *_CIPHER))
    with _Output(args) as out:
        out.write(_pump(stream, args, out))
    if stream.iv is not None and stream.iv != args.iv:
        print(f"iv: {stream.iv.hex()}", file=sys.stderr)
    if stream.tag is not None:
        print(f"tag: {stream.tag.hex()}", file=sys.stderr)


def _decrypt(client: Client, args: argparse.Namespace) -> None:
    options = _options(args, *_CIPHER)
    stream = client.decryptor(args.uid, iv=args.iv, aad=args.aad, tag=args.tag, part_size=args.part_size, **options)
    with _Output(args) as out:
        out.write(_pump(stream, args, out))


def _sign(client: Client, args: argparse.Namespace) -> None:
    stream = client.signer(args.uid, digested=args.digested, part_size=args.part_size, **_options(args, *_SIGNATURE))
    signature = _pump(stream, args, None)
    with _Output(args) as out:
        out.write(signature)


def _verify(client: Client, args: argparse.Namespace) -> int:
    signature = Path(args.signature).read_bytes()
    options = _options(args, *_SIGNATURE)
    stream = client.verifier(args.uid, signature, digested=args.digested, part_size=args.part_size, **options)
    return _verdict(args, _pump(stream, args, None))


def _mac(client: Client, args: argparse.Namespace) -> int:
    options = _options(args, "mode", "hashing")
    if args.verify:
        stream: CryptoStream[Any] = client.mac_verifier(
            args.uid, Path(args.verify).read_bytes(), part_size=args.part_size, **options
        )
        return _verdict(args, _pump(stream, args, None))
    mac = _pump(client.mac_generator(args.uid, part_size=args.part_size, **options), args, None)
    with _Output(args) as out:
        out.write(mac)
    return 0


def _hash(client: Client, args: argparse.Namespace) -> None:
    digest = _pump(client.hasher(part_size=args.part_size, hashing=args.hashing), args, None)
    with _Output(args) as out:
        out.write(digest)


def _rng(client: Client, args: argparse.Namespace) -> None:
    with _Output(args) as out:
        out.write(client.rng(args.length))


# ------------------------------------------------------------------------------------ parser


def add_crypto_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the cryptographic subcommands to the ``kmip`` parser's ``commands``."""
    common = connection_options()

    def add(name: str, action: Any, help_text: str, *, uid: bool = True, reads: bool = True) -> Any:
        sub = commands.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(handler=run_client_command, action=action, parser=sub)
        if uid:
            sub.add_argument("uid", help="the key's Unique Identifier")
        if reads:
            sub.add_argument("--in", dest="input", metavar="FILE", help="input (default: stdin)")
            sub.add_argument(
                "--part-size",
                type=_positive,
                default=DEFAULT_PART_SIZE,
                metavar="BYTES",
                help=f"stream input larger than this in parts of this size (default {DEFAULT_PART_SIZE})",
            )
        return sub

    def output(sub: Any) -> None:
        sub.add_argument("--out", metavar="FILE", help="output (default: stdout); created 0600, only on success")
        sub.add_argument("--hex", action="store_true", help="write hexadecimal and a newline instead of bytes")

    def cipher(sub: Any) -> None:
        sub.add_argument("--mode", type=_member_type(BlockCipherMode), help="block cipher mode: gcm, cbc, ctr ...")
        sub.add_argument("--padding", type=_member_type(PaddingMethod), help="padding method: pkcs5, none, oaep ...")
        sub.add_argument("--hash", dest="hashing", type=_member_type(HashingAlgorithm), help="hash (RSA OAEP)")
        sub.add_argument("--iv", type=_hex, help="IV, counter or nonce (hex)")
        sub.add_argument("--aad", type=_hex, help="additional authenticated data of GCM or CCM (hex)")
        sub.add_argument("--tag-length", type=_positive, metavar="BYTES", help="authentication tag length")
        sub.add_argument("--iv-length", type=_positive, metavar="BITS", help="length of an IV the server makes")

    def signature(sub: Any) -> None:
        sub.add_argument("--hash", dest="hashing", type=_member_type(HashingAlgorithm), help="sha-256, sha-384 ...")
        sub.add_argument("--padding", type=_member_type(PaddingMethod), help="RSA: pkcs1-v1.5 or pss")
        sub.add_argument(
            "--signature-algorithm",
            type=_member_type(DigitalSignatureAlgorithm),
            help="e.g. sha-256-with-rsa-encryption, ecdsa-with-sha256",
        )
        sub.add_argument("--salt-length", type=int, metavar="BYTES", help="RSA PSS salt length")
        sub.add_argument("--digested", action="store_true", help="the input is already the digest to sign")

    sub = add("encrypt", _encrypt, "encrypt with a key on the server")
    cipher(sub)
    sub.add_argument("--random-iv", action="store_true", help="let the server choose the IV (printed on stderr)")
    output(sub)

    sub = add("decrypt", _decrypt, "decrypt with a key on the server")
    cipher(sub)
    sub.add_argument("--tag", type=_hex, help="the authentication tag encrypt printed (hex)")
    output(sub)

    sub = add("sign", _sign, "sign with a private key on the server; writes the signature")
    signature(sub)
    output(sub)

    sub = add("verify", _verify, "verify a signature; prints valid or invalid, exit status 0 or 1")
    sub.add_argument("--signature", metavar="FILE", required=True, help="the signature's bytes")
    signature(sub)

    sub = add("mac", _mac, "MAC with a key on the server (HMAC, or --mode cmac); or check one with --verify")
    sub.add_argument("--mode", type=_member_type(BlockCipherMode), help="cmac for AES keys")
    sub.add_argument("--hash", dest="hashing", type=_member_type(HashingAlgorithm), help="default: the key's")
    sub.add_argument("--verify", metavar="FILE", help="check the MAC in FILE: prints valid or invalid, exit 0 or 1")
    output(sub)

    sub = add("hash", _hash, "hash on the server", uid=False)
    sub.add_argument("--hash", dest="hashing", type=_member_type(HashingAlgorithm), required=True, help="sha-256 ...")
    output(sub)

    sub = add("rng", _rng, "random bytes from the server's generator", uid=False, reads=False)
    sub.add_argument("--length", type=_positive, required=True, metavar="BYTES", help="how many bytes")
    output(sub)
