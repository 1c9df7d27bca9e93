"""The ``kmip`` command's client subcommands: create, register, get, locate, lifecycle, attributes.

Every subcommand takes the connection options (:func:`connection_options`), before the
subcommand (``kmip --server H:P query``) or after it (``kmip query --server H:P``); after wins
when both are given. Where each setting
comes from, first match wins: the command-line flag, then the environment (``KMIP_SERVER``,
``KMIP_CA``, ``KMIP_CERT``, ``KMIP_KEY``), then the profile (``--profile FILE`` or
``KMIP_PROFILE``), a TOML file with the keys ``server``, ``ca``, ``cert``, ``key``,
``key_password_env``, ``timeout`` and ``kmip_version`` (paths relative to the file).

Output is for people by default; ``--json`` prints one JSON document for scripts (bytes as hex,
enumerations by name, dates in ISO 8601). Failures print one line on stderr and exit 1, never a
traceback; a usage error (no server, no certificate) exits 2 like any argparse error.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import os
import re
import select
import sys
import tomllib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .calls import algorithm_of
from .client import Client
from .operations import CLIENT_VERSIONS, ManagedObject, Version, name_attribute
from .protocol.errors import KmipError
from .protocol.model.base import Struct
from .protocol.spec.enums import (
    CryptographicAlgorithm,
    CryptographicUsageMask,
    KeyFormatType,
    ObjectType,
    ResultReason,
    RevocationReasonCode,
    SecretDataType,
    State,
)
from .transport import KmipTransportError, parse_servers

__all__ = ["add_client_commands", "connection_options", "misplaced_options", "output_closed"]

Action = Callable[[Client, argparse.Namespace], Any]
_PROFILE_KEYS = frozenset({"server", "ca", "cert", "key", "key_password_env", "timeout", "kmip_version"})
_FORMATS = {"raw": KeyFormatType.RAW, "transparent": KeyFormatType.TRANSPARENT_SYMMETRIC_KEY}
_COMPROMISES = (RevocationReasonCode.KEY_COMPROMISE, RevocationReasonCode.CA_COMPROMISE)


class UsageError(Exception):
    """A mistake in how the command was called: reported like argparse's own errors (exit 2)."""


# ------------------------------------------------------------------------------ argument types


def _dashed(member: enum.Enum) -> str:
    return member.name.lower().replace("_", "-")


def _enum_type(cls: type[enum.Enum]) -> Callable[[str], Any]:
    """An argparse type accepting a member's name in any case, dashes or underscores."""

    def convert(text: str) -> Any:
        try:
            return cls[text.strip().upper().replace("-", "_")]
        except KeyError:
            names = ", ".join(_dashed(member) for member in cls)
            raise argparse.ArgumentTypeError(f"unknown value {text!r} (one of: {names})") from None

    convert.__name__ = cls.__name__  # argparse names the type in its "invalid ... value" message
    return convert


def _algorithm(text: str) -> CryptographicAlgorithm:
    try:
        return algorithm_of(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _usage_mask(text: str) -> int:
    """``encrypt,decrypt`` (Cryptographic Usage Mask names) or a number."""
    if re.fullmatch(r"\d+|0[xX][0-9a-fA-F]+", text.strip()):
        return int(text, 0)
    mask = 0
    for part in filter(None, (p.strip() for p in text.split(","))):
        mask |= _enum_type(CryptographicUsageMask)(part)
    if not mask:
        raise argparse.ArgumentTypeError("an empty usage mask")
    return mask


def parse_time(text: str) -> datetime:
    """A time given as ISO 8601 (UTC unless it says otherwise) or as POSIX seconds."""
    text = text.strip()
    try:
        if text.lstrip("-").isdigit():
            return datetime.fromtimestamp(int(text), UTC)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time or epoch seconds: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _hex(text: str) -> bytes:
    try:
        return bytes.fromhex("".join(text.split()))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not hexadecimal: {text!r}") from None


def _kmip_version(text: str) -> Version:
    major, dot, minor = text.strip().partition(".")
    version = (int(major), int(minor)) if dot and major.isdigit() and minor.isdigit() else None
    if version not in CLIENT_VERSIONS:
        known = ", ".join(f"{a}.{b}" for a, b in CLIENT_VERSIONS)
        raise argparse.ArgumentTypeError(f"unsupported KMIP version {text!r} (one of: {known})")
    return version


def attribute_value(name: str, text: str) -> Any:
    """The typed value of attribute ``name`` given as text: integers stay ints, ``true``/``false``
    are booleans, a date attribute (name ending in "Date") takes ISO 8601 or epoch seconds, else text."""
    if name.endswith("Date"):
        return parse_time(text)
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    # A Name is a structure (value and type); people only ever mean its text.
    return name_attribute(text) if name == "Name" else text


def _assignment(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), attribute_value(name.strip(), value)


# ---------------------------------------------------------------------------------- connection


@dataclasses.dataclass(frozen=True)
class Connection:
    """Everything needed to open a :class:`Client`, resolved from flags, environment and profile."""

    servers: str
    cert: str
    ca: str | None = None
    key: str | None = None
    key_password: str | None = None
    timeout: float = 10.0
    version: Version | None = None

    def open(self) -> Client:
        return Client(
            self.servers,
            ca=self.ca,
            cert=self.cert,
            key=self.key,
            key_password=self.key_password,
            timeout=self.timeout,
            version=self.version,
        )


def load_profile(path: str | Path) -> dict[str, Any]:
    """A profile's settings, paths made absolute against the file's directory."""
    path = Path(path)
    try:
        with open(path, "rb") as stream:
            profile = tomllib.load(stream)
    except OSError as error:
        raise UsageError(f"cannot read the profile {path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"the profile {path} is not valid TOML: {error}") from None
    unknown = sorted(set(profile) - _PROFILE_KEYS)
    if unknown:
        raise UsageError(f"unknown setting(s) in the profile {path}: {', '.join(unknown)}")
    if isinstance(profile.get("server"), list):  # a list of servers is as natural in TOML as a comma list
        profile["server"] = ",".join(map(str, profile["server"]))
    for name in ("ca", "cert", "key"):
        if name in profile:
            profile[name] = str(path.parent / Path(str(profile[name])).expanduser())
    return profile


def resolve_connection(args: argparse.Namespace, environ: Mapping[str, str]) -> Connection:
    """The connection settings: flag, then environment variable, then profile."""
    profile_path = args.profile or environ.get("KMIP_PROFILE")
    profile = load_profile(profile_path) if profile_path else {}

    def pick(flag: Any, variable: str | None, key: str) -> Any:
        if flag is not None:
            return flag
        if variable and environ.get(variable):
            return environ[variable]
        return profile.get(key)

    servers = pick(args.server, "KMIP_SERVER", "server")
    if not servers:
        raise UsageError("no server given: use --server HOST:PORT, KMIP_SERVER or a profile")
    try:
        parse_servers(str(servers))
    except ValueError as error:
        raise UsageError(f"bad server address: {error}") from None
    cert = pick(args.cert, "KMIP_CERT", "cert")
    if not cert:
        raise UsageError("no client certificate given: use --cert FILE, KMIP_CERT or a profile")
    password_variable = pick(args.key_password_env, None, "key_password_env")
    password = None
    if password_variable:
        password = environ.get(str(password_variable))
        if password is None:
            raise UsageError(f"the environment variable {password_variable} (the key passphrase) is not set")
    timeout = pick(args.timeout, None, "timeout")
    version = pick(args.kmip_version, None, "kmip_version")
    try:
        if isinstance(version, (str, float)):  # from the profile: "1.4", or a TOML float 1.4
            version = _kmip_version(str(version))
        timeout = 10.0 if timeout is None else float(timeout)
    except (argparse.ArgumentTypeError, ValueError) as error:
        raise UsageError(f"in the profile {profile_path}: {error}") from None
    return Connection(
        servers=str(servers),
        cert=str(cert),
        ca=pick(args.ca, "KMIP_CA", "ca"),
        key=pick(args.key, "KMIP_KEY", "key"),
        key_password=password,
        timeout=timeout,
        version=version,
    )


# ------------------------------------------------------------------------------------ output


def jsonable(value: Any) -> Any:
    """``value`` as JSON data: bytes as hex, enumerations by name, dates in ISO 8601."""
    if isinstance(value, enum.Enum):
        return value.name if value.name is not None else value.value
    if isinstance(value, (bool, str, float)) or value is None:
        return value
    if isinstance(value, int):
        return int(value)  # an unnamed enumeration value (EnumValue) is still a number
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, Struct):
        return {
            field.name: jsonable(getattr(value, field.name))
            for field in dataclasses.fields(value)
            if field.name != "extras" and getattr(value, field.name) not in (None, ())
        }
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return str(value)


def human(value: Any) -> str:
    """``value`` for people: a Name by its text, structures as ``{field=value, ...}``."""
    data = jsonable(value.value if isinstance(value, Struct) and hasattr(value, "value") else value)
    if isinstance(data, dict):
        return "{" + ", ".join(f"{key}={human(item)}" for key, item in data.items()) + "}"
    if isinstance(data, list):
        return ", ".join(map(human, data))
    return str(data).lower() if isinstance(data, bool) else str(data)


def _emit(args: argparse.Namespace, data: Any, text: str | None) -> None:
    if args.json:
        print(json.dumps(jsonable(data), indent=2))
    elif text:
        print(text)


def _table(rows: list[tuple[str, Any]]) -> str:
    width = max(len(label) for label, _ in rows) + 1
    return "\n".join(f"{label + ':':<{width}} {value}" for label, value in rows)


# ---------------------------------------------------------------------------------- commands


def _create(client: Client, args: argparse.Namespace) -> None:
    uid = client.create(
        args.algorithm, args.length, name=args.name or None, usage_mask=args.usage, attributes=_extra(args)
    )
    _emit(args, {"unique_identifier": uid}, uid)


def _register(client: Client, args: argparse.Namespace) -> None:
    if args.hex is not None:
        data = args.hex
    elif args.file == "-":
        data = sys.stdin.buffer.read()
    else:
        data = Path(args.file).read_bytes()
    if not data:
        raise UsageError("the value to register is empty")
    names, extra = args.name or None, _extra(args)
    if args.kind == "key":
        uid = client.register_key(data, args.algorithm, name=names, usage_mask=args.usage, attributes=extra)
    elif args.kind == "secret":
        uid = client.register_secret(data, args.secret_type, name=names, attributes=extra)
    else:
        uid = client.register_opaque(data, args.data_type, name=names, attributes=extra)
    _emit(args, {"unique_identifier": uid}, uid)


def _extra(args: argparse.Namespace) -> dict[str, Any] | None:
    extra: dict[str, list[Any]] = {}
    for name, value in args.attribute:
        extra.setdefault(name, []).append(value)
    return dict(extra) or None


#: ``kmip get --wrap-method``: the Cryptographic Parameters of each wrapping mechanism.
WRAP_METHODS: dict[str, dict[str, str]] = {
    "nist-key-wrap": {"mode": "NISTKEYWRAP"},  # RFC 3394
    "aes-key-wrap-padding": {"mode": "AESKEYWRAPPADDING"},  # RFC 5649
    "aes-gcm": {"mode": "GCM"},
    "rsa-oaep-sha1": {"padding": "OAEP", "hashing": "SHA_1", "mask_generator_hashing": "SHA_1"},
    "rsa-oaep-sha256": {"padding": "OAEP", "hashing": "SHA_256", "mask_generator_hashing": "SHA_256"},
}


def _get(client: Client, args: argparse.Namespace) -> None:
    if args.wrap_with is None and (args.wrap_method or args.wrap_encoding):
        raise UsageError("--wrap-method and --wrap-encoding need --wrap-with KEY")
    wrap_options = WRAP_METHODS[args.wrap_method] if args.wrap_method else None
    found = client.get(
        args.uid,
        key_format=_FORMATS.get(args.format or ""),
        wrap_with=args.wrap_with,
        wrap_options=wrap_options,  # type: ignore[arg-type]
        wrap_encoding=args.wrap_encoding,
    )
    if args.output:
        _write_private(args.output, found.value)
    data = _describe(found)
    rows = [(label.replace("_", " ").title(), human(value)) for label, value in data.items() if value is not None]
    if args.output:
        data.update(value=None, output=args.output)
        rows.append(("Value", f"{len(found.value)} bytes written to {args.output}"))
    else:
        rows.append(("Value", found.value.hex()))
    _emit(args, {**data, "value": None if args.output else found.value}, _table(rows))


def _describe(found: ManagedObject) -> dict[str, Any]:
    return {
        "unique_identifier": found.unique_identifier,
        "object_type": found.object_type,
        "algorithm": found.algorithm,
        "length": found.length,
        "key_format": found.key_format,
        "data_type": found.data_type,
    }


def _write_private(path: str, data: bytes) -> None:
    # Created 0600 from the start (no window where the key is readable), and an existing file is
    # narrowed to 0600 too before the key goes in.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as stream:
        os.fchmod(fd, 0o600)
        stream.write(data)


def _locate(client: Client, args: argparse.Namespace) -> None:
    found = client.locate(
        name=args.name,
        object_type=args.type,
        algorithm=args.algorithm,
        length=args.length,
        state=args.state,
        attributes=_extra(args),
        max_items=args.max,
        offset=args.offset,
    )
    _emit(args, found, "\n".join(found))


def _lifecycle(done: str) -> Action:
    def run(client: Client, args: argparse.Namespace) -> None:
        if args.command == "activate":
            client.activate(args.uid)
        elif args.command == "destroy":
            client.destroy(args.uid)
        else:
            date = args.compromise_date
            if date is None and args.reason in _COMPROMISES:
                date = datetime.now(UTC)  # a compromise needs its date; "now" is the safe assumption
            client.revoke(args.uid, args.reason, message=args.message, compromise_date=date)
        _emit(args, {"unique_identifier": args.uid, "result": done}, f"{done} {args.uid}")

    return run


def _attributes_get(client: Client, args: argparse.Namespace) -> None:
    found = client.get_attributes(args.uid, args.names or None)
    lines = [f"{name}: {human(value)}" for name, values in found.items() for value in values]
    _emit(args, found, "\n".join(lines))


def _attributes_change(client: Client, args: argparse.Namespace) -> None:
    if args.attributes_command == "delete":
        client.delete_attribute(args.uid, args.name, index=args.index)
        done = "deleted"
    else:
        value = _value_or_usage_error(args.name, args.value)
        if args.attributes_command == "set":
            _set_attribute(client, args.uid, args.name, value)
            done = "set"
        else:
            client.add_attribute(args.uid, args.name, value)
            done = "added"
    _emit(args, {"unique_identifier": args.uid, "attribute": args.name, "result": done}, f"{done} {args.name}")


def _set_attribute(client: Client, uid: str, name: str, value: Any) -> None:
    """Set Attribute, or for a multi-valued attribute (custom ones are) what "set" means to a
    person: add it when absent, modify its only instance when present."""
    try:
        client.set_attribute(uid, name, value)
        return
    except KmipError as error:
        if error.reason != ResultReason.MULTI_VALUED_ATTRIBUTE:
            raise
    current = client.get_attributes(uid, [name]).get(name, [])
    if not current:
        client.add_attribute(uid, name, value)
    elif len(current) == 1:
        client.modify_attribute(uid, name, value, current=current[0])
    else:
        raise KmipError(
            f"{name!r} has {len(current)} values: change them with attributes add and delete",
            ResultReason.MULTI_VALUED_ATTRIBUTE,
        )


def _value_or_usage_error(name: str, text: str) -> Any:
    try:
        return attribute_value(name, text)
    except argparse.ArgumentTypeError as error:
        raise UsageError(f"{name}: {error}") from None


def _query(client: Client, args: argparse.Namespace) -> None:
    info = client.query()
    data = {
        "vendor_identification": info.vendor_identification,
        "operations": info.operations,
        "object_types": info.object_types,
    }
    text = _table(
        [
            ("Vendor", info.vendor_identification or "(not given)"),
            ("Operations", human(info.operations)),
            ("Object types", human(info.object_types)),
        ]
    )
    _emit(args, data, text)


def _versions(client: Client, args: argparse.Namespace) -> None:
    found = [f"{major}.{minor}" for major, minor in client.discover_versions()]
    _emit(args, found, "\n".join(found))


def run_client_command(args: argparse.Namespace) -> int:
    """Run a client subcommand; failures become one line on stderr and exit status 1. An
    action may return its own exit status (``verify``: 1 for an invalid signature)."""
    action: Action = args.action
    try:
        connection = resolve_connection(args, os.environ)
        with connection.open() as client:
            status = action(client, args)
        return status if isinstance(status, int) else 0
    except UsageError as error:
        args.parser.error(str(error))  # exits 2 with the subcommand's usage
    except KmipError as error:
        print(f"kmip: {error.reason.name}: {error.message}", file=sys.stderr)
    except KmipTransportError as error:
        print(f"kmip: {error}", file=sys.stderr)
    except OSError as error:  # files: --file, --output, certificates
        if isinstance(error, BrokenPipeError) and output_closed():
            raise  # the reader of our output went away: kmip_client.cli.main ends quietly
        where = f": {error.filename}" if error.filename else ""
        print(f"kmip: {error.strerror or error}{where}", file=sys.stderr)
    except ValueError as error:  # TLS files that do not load (client_ssl_context names them)
        print(f"kmip: {error}", file=sys.stderr)
    except KeyboardInterrupt:
        print("kmip: interrupted", file=sys.stderr)
        return 130
    return 1


# ------------------------------------------------------------------------------------ parser


def output_closed() -> bool:
    """Whether standard output is a pipe (or socket) that its reader has closed, as in
    ``kmip locate | head -1`` once head has its line; a write there fails with EPIPE."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by an object without a descriptor
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & select.POLLERR for _, events in poller.poll(0))


class _GivenBeforeCommand(argparse.Action):
    """Stores the value, and notes the option in ``options_before_command`` (for
    :func:`misplaced_options`)."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: str | None = None
    ) -> None:
        setattr(namespace, self.dest, values)
        namespace.options_before_command = (*namespace.options_before_command, option)


def connection_options(*, before_command: bool = False) -> argparse.ArgumentParser:
    """The connection options, as a parent parser.

    Both ``kmip`` itself (``before_command``) and every client subcommand take them. An option
    after the subcommand wins: argparse parses the subcommand's arguments into a namespace of
    their own and copies it over the main one, and here the subcommand's copies default to
    SUPPRESS, so only the options actually given there are copied.
    """
    options = argparse.ArgumentParser(add_help=False)
    where = "for the client commands, here or after the subcommand" if before_command else "also before the subcommand"
    group = options.add_argument_group(
        f"connection ({where}; after wins; flags override KMIP_* variables, which override the profile)"
    )
    extra: dict[str, Any] = {"action": _GivenBeforeCommand} if before_command else {"default": argparse.SUPPRESS}
    group.add_argument("--server", help="HOST:PORT[,HOST:PORT...]; several mean failover (env KMIP_SERVER)", **extra)
    group.add_argument("--ca", help="CA certificate(s) that signed the server's certificate (env KMIP_CA)", **extra)
    group.add_argument("--cert", help="client certificate, PEM (env KMIP_CERT)", **extra)
    group.add_argument("--key", help="client private key, PEM (env KMIP_KEY; default: in --cert)", **extra)
    group.add_argument(
        "--key-password-env", metavar="VAR", help="environment variable holding the key's passphrase", **extra
    )
    group.add_argument("--timeout", type=float, help="seconds to wait for a server (default 10)", **extra)
    group.add_argument(
        "--kmip-version", type=_kmip_version, help="protocol version, e.g. 1.4 (default: negotiate)", **extra
    )
    group.add_argument("--profile", metavar="FILE", help="TOML file with these settings (env KMIP_PROFILE)", **extra)
    group.add_argument(
        "--json",
        action="store_true",
        default=False if before_command else argparse.SUPPRESS,
        help="print JSON for scripts",
    )
    if before_command:
        options.set_defaults(options_before_command=())
    return options


def misplaced_options(args: argparse.Namespace) -> str | None:
    """Why connection options given before the subcommand cannot be used, or None: ``convert``
    talks to no server, and ``replay`` has options of its own, which go after it."""
    given: tuple[str, ...] = getattr(args, "options_before_command", ())
    if not given or args.handler is run_client_command:
        return None
    options = ", ".join(dict.fromkeys(given))
    if args.command == "convert":
        return f"{options}: convert talks to no server"
    return f"{options} before {args.command!r}: give {args.command} its own options after it"


def add_client_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the client subcommands to the ``kmip`` parser's ``commands``."""
    common = connection_options()

    def add(target: Any, name: str, action: Action, help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = target.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(handler=run_client_command, action=action, parser=sub)
        return sub

    def object_attributes(sub: argparse.ArgumentParser, usage: bool = True) -> None:
        sub.add_argument("--name", action="append", default=[], help="a Name for the object (repeatable)")
        if usage:
            sub.add_argument("--usage", type=_usage_mask, help="usage mask: encrypt,decrypt,... or a number")
        sub.add_argument("--attribute", type=_assignment, action="append", default=[], metavar="NAME=VALUE")

    sub = add(commands, "create", _create, "create a symmetric key; prints its Unique Identifier")
    sub.add_argument("--algorithm", type=_algorithm, default=CryptographicAlgorithm.AES, help="default AES")
    sub.add_argument("--length", type=int, default=256, help="bits (default 256)")
    object_attributes(sub)

    sub = add(commands, "register", _register, "register an existing key, secret or opaque object")
    sub.add_argument("kind", choices=("key", "secret", "opaque"))
    source = sub.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", help="read the value from FILE ('-': stdin)")
    source.add_argument("--hex", type=_hex, help="the value in hexadecimal")
    sub.add_argument("--algorithm", type=_algorithm, default=CryptographicAlgorithm.AES, help="key: default AES")
    sub.add_argument("--secret-type", type=_enum_type(SecretDataType), default=SecretDataType.PASSWORD)
    sub.add_argument("--data-type", type=lambda text: int(text, 0), default=0x80000000, help="opaque data type")
    object_attributes(sub)

    sub = add(commands, "get", _get, "get an object and its value")
    sub.add_argument("uid")
    sub.add_argument("--format", choices=sorted(_FORMATS), help="key format to ask for (default: the server's)")
    sub.add_argument("--output", metavar="FILE", help="write the value's bytes to FILE (mode 0600)")
    sub.add_argument("--wrap-with", metavar="KEY", help="return the key wrapped under the server's key KEY")
    sub.add_argument("--wrap-method", choices=sorted(WRAP_METHODS), help="with --wrap-with (default: KEY's own)")
    sub.add_argument("--wrap-encoding", choices=("none", "ttlv"), help="wrap the key bytes alone or the Key Value")

    sub = add(commands, "locate", _locate, "find objects; prints matching identifiers, one per line")
    sub.add_argument("--name")
    sub.add_argument("--type", type=_enum_type(ObjectType), help="symmetric-key, secret-data, opaque-object, ...")
    sub.add_argument("--algorithm", type=_algorithm)
    sub.add_argument("--length", type=int)
    sub.add_argument("--state", type=_enum_type(State), help="pre-active, active, deactivated, compromised, ...")
    sub.add_argument("--attribute", type=_assignment, action="append", default=[], metavar="NAME=VALUE")
    sub.add_argument("--max", type=int, help="at most N identifiers")
    sub.add_argument("--offset", type=int, help="skip the first N matches")

    add(commands, "activate", _lifecycle("activated"), "make an object Active").add_argument("uid")
    add(commands, "destroy", _lifecycle("destroyed"), "destroy an object's value").add_argument("uid")
    sub = add(commands, "revoke", _lifecycle("revoked"), "revoke an object")
    sub.add_argument("uid")
    sub.add_argument(
        "--reason",
        type=_enum_type(RevocationReasonCode),
        default=RevocationReasonCode.UNSPECIFIED,
        help="unspecified (default), key-compromise, ca-compromise, superseded, cessation-of-operation, ...",
    )
    sub.add_argument("--message", help="revocation message")
    sub.add_argument("--compromise-date", type=parse_time, help="ISO 8601 (default for compromises: now)")

    attributes = commands.add_parser("attributes", parents=[common], help="read and change an object's attributes")
    nested = attributes.add_subparsers(dest="attributes_command", required=True, metavar="ACTION")
    sub = add(nested, "get", _attributes_get, "print attributes (all, or the NAMEs given)")
    sub.add_argument("uid")
    sub.add_argument("names", nargs="*", metavar="NAME")
    for name, help_text in (("set", "give an attribute a value"), ("add", "add an instance of an attribute")):
        sub = add(nested, name, _attributes_change, help_text + " (custom attributes: x-NAME)")
        sub.add_argument("uid")
        sub.add_argument("name")
        sub.add_argument("value", help="integers, true/false, ISO 8601 for *Date attributes, else text")
    sub = add(nested, "delete", _attributes_change, "delete an attribute")
    sub.add_argument("uid")
    sub.add_argument("name")
    sub.add_argument("--index", type=int, help="only this instance (KMIP 1.x)")

    add(commands, "query", _query, "what the server supports and who it is")
    add(commands, "versions", _versions, "the KMIP versions the server speaks, preferred first")
