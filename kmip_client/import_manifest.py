"""The manifest ``kmip import`` reads: JSON Lines, one object to register per line.

Each line becomes an :class:`ImportItem`, what to register and how, or raises a
:class:`ManifestError` naming the line and the field that is wrong, never the field's value (it
may be key material). The format is described in the README ("Importing many keys"); in short::

    {"type": "symmetric", "algorithm": "AES", "length": 256, "key_hex": "...", "name": "orders-db",
     "usage": ["encrypt", "decrypt"], "activate": true}
    {"type": "secret", "secret_type": "password", "key_b64": "...", "name": "db-password"}
    {"type": "private", "pem_file": "keys/signing.pem", "name": "signing", "usage": ["sign"]}
    {"type": "public", "pem": "-----BEGIN PUBLIC KEY-----\\n...", "name": "signing-pub"}
    {"type": "certificate", "pem_file": "certs/web.crt", "name": "web-cert"}

Private keys are sent as PKCS#8, public keys as SubjectPublicKeyInfo (Key Format X.509) and
certificates as DER, whatever PEM form they came in. Checks of the key itself (an AES key's
length, an RSA key's consistency) are left to the server, whose rules are the ones that count:
its refusal comes back as that line's KMIP error.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from . import operations as ops
from .cli_commands import parse_time
from .crypto_calls import algorithm_of, default_usage
from .protocol.model import Struct
from .protocol.model.objects import Certificate, KeyBlock, KeyValue, PrivateKey, PublicKey
from .protocol.spec.enums import (
    CertificateType,
    CryptographicAlgorithm,
    CryptographicUsageMask,
    KeyFormatType,
    ObjectType,
    SecretDataType,
)

__all__ = ["FIELDS", "ImportItem", "ManifestError", "parse_line"]

_COMMON = frozenset({"type", "name", "activate", "attributes"})
_KEY_FIELDS = frozenset({"key_hex", "key_b64"})
_PEM_FIELDS = frozenset({"pem", "pem_file"})
#: The fields each type of line takes.
FIELDS: dict[str, frozenset[str]] = {
    "symmetric": _COMMON | _KEY_FIELDS | {"algorithm", "length", "usage"},
    "secret": _COMMON | _KEY_FIELDS | {"secret_type", "usage"},
    "private": _COMMON | _PEM_FIELDS | {"algorithm", "usage"},
    "public": _COMMON | _PEM_FIELDS | {"algorithm", "usage"},
    "certificate": _COMMON | _PEM_FIELDS,
}
_KNOWN = frozenset().union(*FIELDS.values())
#: Attributes that have a field of their own: given in "attributes" they would contradict it.
_OWN_FIELDS = {
    "Name": "name",
    "Cryptographic Usage Mask": "usage",
    "Cryptographic Algorithm": "algorithm",
    "Cryptographic Length": "length",
}
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_MAX_PEM_FILE = 1 << 20  # no key or certificate is near this; a bigger file is a mistake


class ManifestError(Exception):
    """A manifest line that cannot be imported: its number, the field at fault (None for the
    line as a whole) and what is wrong, in words that never quote the line."""

    def __init__(self, line: int, field: str | None, problem: str) -> None:
        super().__init__(f"line {line}: {field + ': ' if field else ''}{problem}")
        self.line = line
        self.field = field
        self.problem = problem
        self.name: str | None = None  # the line's "name", when it has a readable one


@dataclasses.dataclass(frozen=True)
class ImportItem:
    """One object to register: the manifest line it came from and the Register it needs."""

    line: int
    kind: str
    object_type: ObjectType
    managed: Struct = dataclasses.field(repr=False)  # holds the key material
    name: str | None = None
    usage_mask: int | None = None
    attributes: dict[str, list[Any]] | None = None
    activate: bool = False


def parse_line(number: int, text: str, base: Path, *, activate: bool = False) -> ImportItem:
    """The object manifest line ``number`` describes; ``base`` is where ``pem_file`` paths start,
    ``activate`` what a line without an "activate" field means."""
    entry = _json_object(number, text)
    try:
        return _item(number, entry, base, activate)
    except ManifestError as error:
        name = entry.get("name")
        error.name = name if isinstance(name, str) else None
        raise


def _item(number: int, entry: dict[str, Any], base: Path, activate: bool) -> ImportItem:
    kind = entry.get("type")
    if not isinstance(kind, str) or kind not in FIELDS:
        raise ManifestError(number, "type", f"missing or not one of {', '.join(FIELDS)}")
    for field in entry:
        if field not in _KNOWN:
            raise ManifestError(number, None, f"unknown field {json.dumps(field[:40])}")
        if field not in FIELDS[kind]:
            raise ManifestError(number, field, f"does not apply to a {kind} line")
    fields = _Fields(number, entry)
    name = fields.get("name", str)
    if name is not None and not name.strip():
        raise ManifestError(number, "name", "empty")
    activate_it = fields.get("activate", bool)
    make = _BUILDERS[kind]
    object_type, managed, usage_mask = make(fields, base)
    return ImportItem(
        line=number,
        kind=kind,
        object_type=object_type,
        managed=managed,
        name=name,
        usage_mask=usage_mask,
        attributes=_attributes(fields),
        activate=activate if activate_it is None else activate_it,
    )


def _json_object(number: int, text: str) -> dict[str, Any]:
    def no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for key, value in pairs:
            if key in found:
                raise ManifestError(number, key, "given twice")
            found[key] = value
        return found

    try:
        entry = json.loads(text, object_pairs_hook=no_repeats)
    except json.JSONDecodeError as error:  # its msg says what was expected, not what was found
        raise ManifestError(number, None, f"not valid JSON ({error.msg} at column {error.colno})") from None
    except RecursionError:
        raise ManifestError(number, None, "not valid JSON (nested too deeply)") from None
    if not isinstance(entry, dict):
        raise ManifestError(number, None, "not a JSON object")
    return entry


class _Fields:
    """A line's fields, read with their types checked (errors name the field, not its value)."""

    def __init__(self, line: int, entry: dict[str, Any]) -> None:
        self.line = line
        self.entry = entry

    def error(self, field: str | None, problem: str) -> ManifestError:
        return ManifestError(self.line, field, problem)

    def get(self, field: str, kind: type[Any]) -> Any:
        value = self.entry.get(field)
        # bool is an int to Python, never to a manifest's author.
        if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
            raise self.error(field, f"must be {_TYPE_WORDS[kind]}")
        return value

    def one_of(self, names: frozenset[str]) -> str:
        given = sorted(name for name in names if name in self.entry)
        if len(given) != 1:
            raise self.error(None, f"give exactly one of {' and '.join(sorted(names))}")
        return given[0]

    def key_bytes(self) -> bytes:
        field = self.one_of(_KEY_FIELDS)
        text = self.get(field, str)
        if field == "key_hex":
            if not _HEX.fullmatch(text):
                raise self.error(field, "not hexadecimal (an even number of 0-9, a-f)")
            return bytes.fromhex(text)
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise self.error(field, "not base64") from None
        if not data:
            raise self.error(field, "empty")
        return data

    def pem(self, base: Path) -> bytes:
        field = self.one_of(_PEM_FIELDS)
        text = self.get(field, str)
        if field == "pem":
            return str(text).encode("utf-8")
        path = base / Path(text).expanduser()
        try:
            with open(path, "rb") as stream:
                data = stream.read(_MAX_PEM_FILE + 1)
        except OSError as error:
            raise self.error(field, f"cannot read it: {error.strerror or type(error).__name__}") from None
        if len(data) > _MAX_PEM_FILE:
            raise self.error(field, "larger than 1 MiB: not a PEM key or certificate")
        return data

    def algorithm(self) -> CryptographicAlgorithm | None:
        text = self.get("algorithm", str)
        if text is None:
            return None
        try:
            return algorithm_of(text)
        except ValueError:
            raise self.error(
                "algorithm", "not a Cryptographic Algorithm name (AES, HMAC-SHA256, RSA, EC ...)"
            ) from None

    def usage(self) -> int | None:
        names = self.entry.get("usage")
        if names is None:
            return None
        if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
            raise self.error("usage", "must be a non-empty list of usage names (encrypt, decrypt, sign ...)")
        mask = 0
        for name in names:
            try:
                mask |= CryptographicUsageMask[name.strip().upper().replace("-", "_")]
            except KeyError:
                known = ", ".join(str(member.name).lower().replace("_", "-") for member in CryptographicUsageMask)
                raise self.error("usage", f"names a usage that does not exist (known: {known})") from None
        return mask


_TYPE_WORDS: dict[type[Any], str] = {str: "a string", int: "an integer", bool: "true or false", dict: "an object"}


# ---- one builder per type: (Object Type, the object to register, its usage mask)

_Built = tuple[ObjectType, Struct, int | None]


def _symmetric(fields: _Fields, base: Path) -> _Built:
    algorithm = fields.algorithm()
    if algorithm is None:
        raise fields.error("algorithm", "missing (AES, HMAC-SHA256, ...)")
    length = fields.get("length", int)
    if length is not None and length <= 0:
        raise fields.error("length", "must be a positive number of bits")
    key = fields.key_bytes()
    usage = fields.usage()
    managed = ops.symmetric_key(key, algorithm, length)
    return ObjectType.SYMMETRIC_KEY, managed, default_usage(algorithm) if usage is None else usage


def _secret(fields: _Fields, base: Path) -> _Built:
    name = fields.get("secret_type", str)
    try:
        secret_type = SecretDataType[(name or "password").strip().upper().replace("-", "_")]
    except KeyError:
        known = ", ".join(str(member.name).lower() for member in SecretDataType)
        raise fields.error("secret_type", f"not a Secret Data Type (one of: {known})") from None
    return ObjectType.SECRET_DATA, ops.secret_data(fields.key_bytes(), secret_type), fields.usage()


def _algorithm_of_key(key: object) -> CryptographicAlgorithm | None:
    """What a key's own type says its algorithm is (an EC key is EC: ECDSA or ECDH the line says)."""
    for kinds, algorithm in _KEY_ALGORITHMS:
        if isinstance(key, kinds):
            return algorithm
    return None


_KEY_ALGORITHMS: tuple[tuple[tuple[type, ...], CryptographicAlgorithm], ...] = (
    ((rsa.RSAPrivateKey, rsa.RSAPublicKey), CryptographicAlgorithm.RSA),
    ((ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey), CryptographicAlgorithm.EC),
    ((dsa.DSAPrivateKey, dsa.DSAPublicKey), CryptographicAlgorithm.DSA),
    ((ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey), CryptographicAlgorithm.ED25519),
    ((ed448.Ed448PrivateKey, ed448.Ed448PublicKey), CryptographicAlgorithm.ED448),
)


def _asymmetric_block(fmt: KeyFormatType, der: bytes, algorithm: CryptographicAlgorithm | None) -> KeyBlock:
    return KeyBlock(key_format_type=fmt, key_value=KeyValue(key_material=der), cryptographic_algorithm=algorithm)


def _private(fields: _Fields, base: Path) -> _Built:
    data = fields.pem(base)
    field = fields.one_of(_PEM_FIELDS)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:  # what cryptography raises for a key that needs a password
        raise fields.error(field, "an encrypted private key: decrypt it first (openssl pkcs8)") from None
    except (ValueError, UnsupportedAlgorithm):
        raise fields.error(field, "not a PEM private key this client can read") from None
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    algorithm = fields.algorithm() or _algorithm_of_key(key)
    managed = PrivateKey(key_block=_asymmetric_block(KeyFormatType.PKCS_8, der, algorithm))
    return ObjectType.PRIVATE_KEY, managed, fields.usage()


def _public(fields: _Fields, base: Path) -> _Built:
    data = fields.pem(base)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise fields.error(fields.one_of(_PEM_FIELDS), "not a PEM public key this client can read") from None
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    algorithm = fields.algorithm() or _algorithm_of_key(key)
    managed = PublicKey(key_block=_asymmetric_block(KeyFormatType.X_509, der, algorithm))
    return ObjectType.PUBLIC_KEY, managed, fields.usage()


def _certificate(fields: _Fields, base: Path) -> _Built:
    data = fields.pem(base)
    try:
        der = x509.load_pem_x509_certificate(data).public_bytes(serialization.Encoding.DER)
    except ValueError:
        raise fields.error(fields.one_of(_PEM_FIELDS), "not a PEM X.509 certificate") from None
    return ObjectType.CERTIFICATE, Certificate(certificate_type=CertificateType.X_509, certificate_value=der), None


_BUILDERS: dict[str, Callable[[_Fields, Path], _Built]] = {
    "symmetric": _symmetric,
    "secret": _secret,
    "private": _private,
    "public": _public,
    "certificate": _certificate,
}


# ---- further attributes


def _attributes(fields: _Fields) -> dict[str, list[Any]] | None:
    """The "attributes" field: {"Object Group": "payments", "x-owner": "team-a", "Activation Date": "..."}:
    KMIP attribute names (custom ones x-NAME); a list gives several instances. Values are
    strings, integers or booleans; a string for an attribute whose name ends in "Date" is a
    time, ISO 8601 or epoch seconds."""
    given = fields.get("attributes", dict)
    if not given:
        return None
    found: dict[str, list[Any]] = {}
    for name, value in given.items():
        where = f"attributes.{name[:60]}"
        if not name.strip():
            raise fields.error("attributes", "an attribute without a name")
        if name in _OWN_FIELDS:
            raise fields.error(where, f"give it as the {_OWN_FIELDS[name]!r} field")
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(one, (str, int, bool)) for one in values):
            raise fields.error(where, "must be a string, an integer, true or false, or a list of them")
        found[name] = [_attribute_value(fields, where, name, one) for one in values]
    return found


def _attribute_value(fields: _Fields, where: str, name: str, value: str | int | bool) -> Any:
    if not name.endswith("Date") or isinstance(value, bool):
        return value
    try:
        return parse_time(str(value))
    except argparse.ArgumentTypeError:  # its message quotes the value; ours does not
        raise fields.error(where, "not an ISO 8601 time or epoch seconds") from None
