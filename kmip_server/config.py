"""Server settings: one TOML file in the data directory, plus environment for secrets.

The dataclasses below are the contract the rest of the server reads. :func:`load_config`
fills them from ``DATA_DIR/strongroom.toml``; relative paths in the file are relative to the
data directory. Secrets (the token PIN) are never in the file or on a command line: the file
names an environment variable or a file that holds them.

A data directory is relocatable: ``init`` names every file in it relatively (the SQLite URL
too), so a copy or a moved directory uses its own files. Files written by older versions named
the database absolutely; such a path is honoured where it is, but one that lies inside
*another* data directory (the directory is a copy of that one) is taken as this directory's
file of the same relative name, with a warning, or refused when this directory has no such
file; and an old ``<dir>/strongroom.db`` whose directory no longer exists (the data directory
was moved) is taken as this directory's ``strongroom.db``. A copy never uses the original's
files.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import re
import stat
import tomllib
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import crypto_settings, rotation_settings
from .crypto_settings import CryptoSettings
from .hyok import cse_settings, dke_settings, xks_settings
from .hyok.cse_settings import CseSettings
from .hyok.dke_settings import DkeSettings
from .hyok.xks_settings import XksSettings
from .logformat import LOG_FORMATS
from .rotation_settings import RotationSettings

__all__ = [
    "CONFIG_FILE_NAME",
    "DATABASE_FILE_NAME",
    "IDENTITY_MODES",
    "LOG_LEVELS",
    "AdminSettings",
    "ConfigError",
    "CustodySettings",
    "ListenerSettings",
    "PolicySettings",
    "ServerConfig",
    "StorageSettings",
    "TlsSettings",
    "load_config",
    "read_pin",
    "render_default_config",
]

CONFIG_FILE_NAME = "strongroom.toml"
DATABASE_FILE_NAME = "strongroom.db"  # the SQLite database `init` creates in the data directory
# Kept here rather than imported from the transport, which itself imports this module.
IDENTITY_MODES = ("cn", "subject", "ou", "san-dns", "san-email")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

log = logging.getLogger("strongroom.config")


@dataclasses.dataclass(frozen=True)
class TlsSettings:
    certificate: Path  # server certificate chain (PEM)
    private_key: Path  # server private key (PEM)
    client_ca: tuple[Path, ...]  # CA bundle(s) client certificates must chain to
    # Where the client identity comes from: "cn" (subject common name), "san-dns", "san-email",
    # "subject" (the RFC 4514 string), or "ou" (organizational unit).
    identity_from: str = "cn"


@dataclasses.dataclass(frozen=True)
class ListenerSettings:
    host: str = "127.0.0.1"
    port: int = 5696
    workers: int = 0  # 0: one worker process per CPU core
    max_message_size: int = 1024 * 1024  # bytes, whole TTLV message including its header
    idle_timeout: float = 300.0  # seconds a connection may sit without a complete request
    max_connections: int = 4096  # per worker
    # Seconds a new connection has for its TLS handshake: a real client needs milliseconds,
    # and every second is a second a silent socket holds a place (see transport/admission.py).
    handshake_timeout: float = 5.0
    # Connections per worker still in their TLS handshake, and as many again that have not sent
    # a byte yet; past it a new connection takes the place of one of them instead of being
    # refused (see transport/admission.py).
    max_handshakes: int = 256
    # The largest share of max_connections one source address (IPv4 address, IPv6 /64) may
    # hold in a worker; its connections beyond that are closed at once.
    max_source_share: float = 0.5
    shutdown_grace: float = 10.0  # seconds a stopping worker lets in-flight requests finish
    # Seconds a worker holding requests that write waits for more before running them, so
    # that one durable commit serves more of them (group commit); 0 runs them at once.
    group_commit_wait: float = 0.0005
    # A second port on the same host for KMIP over HTTPS (POST /kmip with a TTLV, JSON or XML
    # body; see transport/https_listener.py): the same TLS settings and client identities as
    # `port`, and the size, time-out and connection limits above; 0: no HTTPS listener.
    https_port: int = 0
    # Most batch items one request message may carry; a message with more is refused (Invalid
    # Message) from its Batch Count, before the rest of it is decoded. Real clients send a
    # handful and the OASIS test cases at most 4; a message of 1,000 is a second of work.
    max_batch_items: int = 1000


@dataclasses.dataclass(frozen=True)
class CustodySettings:
    module: Path  # the PKCS#11 library (.so)
    token_label: str
    master_key_label: str = "strongroom-master"
    pin_env: str | None = None  # name of an environment variable holding the user PIN
    pin_file: Path | None = None  # a file holding the user PIN (first line)
    softhsm2_conf: Path | None = None  # SOFTHSM2_CONF for the embedded SoftHSM2 token


@dataclasses.dataclass(frozen=True)
class StorageSettings:
    url: str  # SQLAlchemy URL: sqlite:///... or postgresql+psycopg://...
    # Whether the audit records of read-only requests are flushed to disk before the answer
    # (true) or, like the rest of the log, within the next checkpoint (false; see the README).
    sync_read_records: bool = False


@dataclasses.dataclass(frozen=True)
class PolicySettings:
    admin_identities: tuple[str, ...] = ("admin",)
    policy_file: Path | None = None


@dataclasses.dataclass(frozen=True)
class AdminSettings:
    """The admin HTTPS listener (kmip_server/admin): health, readiness and metrics."""

    host: str = "127.0.0.1"  # load balancers probe /healthz: set the address they reach
    port: int = 0  # 0: no admin listener


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    data_dir: Path
    listener: ListenerSettings
    tls: TlsSettings
    custody: CustodySettings
    storage: StorageSettings
    policy: PolicySettings
    crypto: CryptoSettings = CryptoSettings()
    rotation: RotationSettings = RotationSettings()
    admin: AdminSettings = AdminSettings()
    xks: XksSettings | None = None  # [xks]: the AWS KMS External Key Store proxy API (kmip_server/hyok)
    cse: CseSettings | None = None  # [cse]: the Google Workspace client-side encryption key service
    dke: DkeSettings | None = None  # [dke]: Microsoft Purview Double Key Encryption
    log_level: str = "INFO"
    log_format: str = "text"  # or "json": one object per line (kmip_server/logformat.py)
    # Answer the test-harness operation Interop, which conformance test suites open and close
    # their test cases with; KMIP forbids it on a production server (2.1 6.1.26).
    test_harness: bool = False


class ConfigError(ValueError):
    """A configuration (or PIN source) that cannot be used; the message names the file and key."""


_MISSING: Any = object()
_TOP_LEVEL_KEYS = ("log_level", "log_format", "test_harness")
_SECTION_KEYS: dict[str, tuple[str, ...]] = {
    "listener": tuple(field.name for field in dataclasses.fields(ListenerSettings)),
    "tls": ("certificate", "private_key", "client_ca", "identity_from"),
    "custody": ("module", "token_label", "master_key_label", "pin_env", "pin_file", "softhsm2_conf"),
    "storage": ("url", "sync_read_records"),
    "policy": ("admin_identities", "policy_file"),
    "crypto": crypto_settings.KEYS,
    "rotation": rotation_settings.KEYS,
    "admin": ("host", "port"),
    "xks": xks_settings.KEYS,
    "cse": cse_settings.KEYS,
    "dke": dke_settings.KEYS,
}
_SECTIONS = tuple(_SECTION_KEYS)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# Inclusive bounds of the numeric listener settings (None: unbounded). A listener field added
# later without an entry here only has to be non-negative.
_LISTENER_BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "port": (1, 65535),
    "workers": (0, 4096),
    "max_message_size": (1024, 2**31 - 1),
    "max_connections": (1, None),
    "max_handshakes": (1, None),
    "max_source_share": (0, 1),
    "shutdown_grace": (0, None),
    "group_commit_wait": (0, 0.1),
    "https_port": (0, 65535),
    "max_batch_items": (1, 1_000_000),
}
# Zero would mean "time out at once", which is never what anyone wants.
_LISTENER_POSITIVE = frozenset({"idle_timeout", "handshake_timeout", "max_source_share"})


class _Table:
    """One table of the file and the keys it may hold, read key by key."""

    def __init__(self, source: Path, data_dir: Path, name: str, table: dict[str, Any], keys: Iterable[str]) -> None:
        self.source = source
        self.data_dir = data_dir
        self.name = name
        self.table = table
        self.keys = tuple(keys)

    def error(self, key: str, problem: str) -> ConfigError:
        qualified = f"{self.name}.{key}" if self.name else key
        return ConfigError(f"{self.source}: {qualified}: {problem}")

    def raw(self, key: str, default: Any) -> Any:
        assert key in self.keys, key
        if key in self.table:
            return self.table[key]
        if default is _MISSING:
            raise self.error(key, "missing (required)")
        return default

    def string(self, key: str, default: Any = _MISSING) -> Any:
        value = self.raw(key, default)
        if value is not default and not isinstance(value, str):
            raise self.error(key, f"must be a string, not {_describe(value)}")
        return value

    def nonempty(self, key: str, default: Any = _MISSING) -> Any:
        value = self.string(key, default)
        if isinstance(value, str) and not value.strip():
            raise self.error(key, "must not be empty")
        return value

    def boolean(self, key: str, default: Any) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {_describe(value)}")
        return value

    def integer(self, key: str, default: Any, bounds: tuple[float | None, float | None]) -> int:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be an integer, not {_describe(value)}")
        self._check_bounds(key, value, bounds)
        return value

    def number(self, key: str, default: Any, bounds: tuple[float | None, float | None], positive: bool) -> float:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"must be a number, not {_describe(value)}")
        if positive and not value > 0:
            raise self.error(key, f"must be greater than 0, not {value}")
        self._check_bounds(key, value, bounds)
        return float(value)

    def _check_bounds(self, key: str, value: float, bounds: tuple[float | None, float | None]) -> None:
        low, high = bounds
        if (low is not None and value < low) or (high is not None and value > high):
            if high is None:
                wanted = f"at least {low}"
            elif low is None:
                wanted = f"at most {high}"
            else:
                wanted = f"from {low} to {high}"
            raise self.error(key, f"must be {wanted}, not {value}")

    def path(self, key: str, default: Any = _MISSING, *, local: bool = True) -> Any:
        """A path relative to the data directory; ``local``: a file of this data directory's
        own when it lies in another data directory (see :meth:`local`)."""
        value = self.nonempty(key, default)
        if value is default:
            return value
        path = _resolve(self.data_dir, value)
        return self.local(key, path) if local else path

    def paths(self, key: str) -> tuple[Path, ...]:
        value = self.raw(key, _MISSING)
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(item, str) and item.strip() for item in items):
            raise self.error(key, f"must be a path or a list of paths, not {_describe(value)}")
        if not items:
            raise self.error(key, "must name at least one file")
        return tuple(self.local(key, _resolve(self.data_dir, item)) for item in items)

    def local(self, key: str, path: Path, spelled: str = "{}") -> Path:
        """``path``, unless it lies inside another data directory than this one.

        That is a copied data directory whose file names the original's file: then this
        directory's file of the same relative name, with a warning, or a refusal when there is
        none (using the original's would change another server's files). ``spelled`` formats
        the relative name as the setting would be written (the SQLite URL).
        """
        real = Path(os.path.realpath(path))
        if _within(real, self.data_dir):
            return path
        origin = _other_data_dir(real)
        if origin is None:
            return path
        relative = real.relative_to(origin)
        own = self.data_dir / relative
        written = spelled.format(relative.as_posix())
        if not own.exists():
            raise self.error(
                key,
                f"{path} is inside another data directory ({origin}) and this one has no {relative} of its own; "
                "refusing to use another data directory's files (was this directory copied from it? "
                f"name the file relative to this data directory: {written!r})",
            )
        log.warning(
            "%s: %s: %s is inside another data directory (%s), which this one was copied from; using this "
            "directory's %s instead (name it relative to the data directory, %r, to silence this warning)",
            self.source,
            f"{self.name}.{key}",
            path,
            origin,
            own,
            written,
        )
        return own

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.raw(key, list(default))
        if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
            raise self.error(key, f"must be a list of non-empty strings, not {_describe(value)}")
        return tuple(value)

    def check_keys(self) -> None:
        # Before any value is read, so a misspelt key is reported as such, not as a missing one.
        unknown = sorted(set(self.table) - set(self.keys))
        if unknown:
            key = unknown[0]
            close = difflib.get_close_matches(key, self.keys, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(self.keys)}"
            raise self.error(key, f"unknown key ({hint})")


def _describe(value: Any) -> str:
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a table"}
    for kind, text in kinds.items():
        if isinstance(value, kind):
            return f"{text} ({value!r})" if kind in (bool, int, float, str) else text
    return type(value).__name__


def _resolve(data_dir: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return Path(os.path.normpath(path if path.is_absolute() else data_dir / path))


def _within(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


def _other_data_dir(path: Path) -> Path | None:
    """The nearest directory above ``path`` that holds a ``strongroom.toml``, if any."""
    for ancestor in path.parents:
        if (ancestor / CONFIG_FILE_NAME).is_file():
            return ancestor
    return None


def _section(source: Path, data_dir: Path, document: dict[str, Any], name: str) -> _Table:
    table = document.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: {name} must be a table ([{name}]), not {_describe(table)}")
    section = _Table(source, data_dir, name, table, _SECTION_KEYS[name])
    section.check_keys()
    return section


def _listener(section: _Table) -> ListenerSettings:
    # Driven by the dataclass, so a field added to ListenerSettings is configurable at once.
    hints = typing.get_type_hints(ListenerSettings)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(ListenerSettings):
        kind = hints[field.name]
        bounds = _LISTENER_BOUNDS.get(field.name, (0, None))
        if kind is int:
            values[field.name] = section.integer(field.name, field.default, bounds)
        elif kind is float:
            positive = field.name in _LISTENER_POSITIVE
            values[field.name] = section.number(field.name, field.default, bounds, positive)
        elif kind is str:
            values[field.name] = section.string(field.name, field.default)
        elif kind is bool:
            values[field.name] = section.boolean(field.name, field.default)
        elif field.name in section.table:  # a type this reader cannot check: only its default is safe
            raise section.error(field.name, "cannot be set in the configuration file")
    return ListenerSettings(**values)


def _tls(section: _Table) -> TlsSettings:
    identity_from = section.string("identity_from", "cn")
    if identity_from not in IDENTITY_MODES:
        raise section.error("identity_from", f"must be one of {', '.join(IDENTITY_MODES)}, not {identity_from!r}")
    return TlsSettings(
        certificate=section.path("certificate"),
        private_key=section.path("private_key"),
        client_ca=section.paths("client_ca"),
        identity_from=identity_from,
    )


def _custody(section: _Table) -> CustodySettings:
    module = section.path("module", local=False)  # a system library, wherever it is
    token_label = section.nonempty("token_label")
    master_key_label = section.nonempty("master_key_label", "strongroom-master")
    pin_env = section.nonempty("pin_env", None)
    pin_file = section.path("pin_file", None)
    softhsm2_conf = section.path("softhsm2_conf", None)
    if pin_env is not None and not _ENV_NAME.match(pin_env):
        raise section.error("pin_env", f"must be an environment variable name (letters, digits, _), not {pin_env!r}")
    if (pin_env is None) == (pin_file is None):
        which = "both are set" if pin_env is not None else "neither is set"
        raise ConfigError(
            f"{section.source}: custody: set exactly one of pin_env (an environment variable holding the "
            f"token PIN) and pin_file (a file holding it); {which}"
        )
    return CustodySettings(
        module=module,
        token_label=token_label,
        master_key_label=master_key_label,
        pin_env=pin_env,
        pin_file=pin_file,
        softhsm2_conf=softhsm2_conf,
    )


def _storage_url(section: _Table, data_dir: Path) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    text: str = section.nonempty("url")
    try:
        url = make_url(text)
    except ArgumentError:
        # Not echoed: a URL may carry a password.
        raise section.error("url", "is not a database URL (sqlite:///PATH or postgresql+psycopg://...)") from None
    database = url.database or ""
    if url.get_backend_name() == "sqlite" and database and database != ":memory:" and not database.startswith("file:"):
        resolved = section.local("url", _resolve(data_dir, database), "sqlite:///{}")
        if _moved_database(resolved, data_dir):
            own = data_dir / DATABASE_FILE_NAME
            log.warning(
                "%s: storage.url: %s does not exist, nor does its directory; using %s (the data directory was "
                "moved?). Write url = %r to silence this warning",
                section.source,
                resolved,
                own,
                f"sqlite:///{DATABASE_FILE_NAME}",
            )
            resolved = own
        if str(resolved) != database:
            return url.set(database=str(resolved)).render_as_string(hide_password=False)
    return text


def _moved_database(path: Path, data_dir: Path) -> bool:
    """Whether ``path`` is what an older ``init`` wrote for a data directory since moved here:
    ``<dir>/strongroom.db`` with ``<dir>`` gone, and this directory holding a ``strongroom.db``."""
    return (
        path.name == DATABASE_FILE_NAME
        and not path.parent.exists()
        and path.parent != data_dir
        and (data_dir / DATABASE_FILE_NAME).is_file()
    )


def load_config(data_dir: Path) -> ServerConfig:
    """Read and check ``DATA_DIR/strongroom.toml``.

    Relative paths (and a relative SQLite database path) are taken relative to ``data_dir``.
    Raises :class:`ConfigError` naming the file and the key for a missing file, invalid TOML,
    an unknown key (a typo would otherwise silently fall back to a default), a value of the
    wrong type or out of range, or a missing or doubled PIN source.
    """
    data_dir = Path(data_dir).expanduser().resolve()
    source = data_dir / CONFIG_FILE_NAME
    try:
        document = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"no configuration file {source} (run `strongroom init --data-dir {data_dir}` first)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {source}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None

    top = _Table(source, data_dir, "", {k: v for k, v in document.items() if k not in _SECTIONS}, _TOP_LEVEL_KEYS)
    unknown = sorted(set(top.table) - set(_TOP_LEVEL_KEYS))
    if unknown:
        close = difflib.get_close_matches(unknown[0], [*_SECTIONS, *_TOP_LEVEL_KEYS], n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join([*_TOP_LEVEL_KEYS, *_SECTIONS])}"
        raise ConfigError(f"{source}: {unknown[0]}: unknown key or section ({hint})")
    sections = {name: _section(source, data_dir, document, name) for name in _SECTIONS}

    log_level = top.string("log_level", "INFO")
    if log_level.upper() not in LOG_LEVELS:
        raise top.error("log_level", f"must be one of {', '.join(LOG_LEVELS)}, not {log_level!r}")
    test_harness = top.boolean("test_harness", False)
    log_format = top.string("log_format", "text")
    if log_format not in LOG_FORMATS:
        raise top.error("log_format", f"must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    listener = _listener(sections["listener"])
    tls = _tls(sections["tls"])
    custody = _custody(sections["custody"])
    storage = StorageSettings(
        url=_storage_url(sections["storage"], data_dir),
        sync_read_records=sections["storage"].boolean("sync_read_records", StorageSettings.sync_read_records),
    )
    policy_section = sections["policy"]
    policy = PolicySettings(
        admin_identities=policy_section.strings("admin_identities", PolicySettings.admin_identities),
        policy_file=policy_section.path("policy_file", None),
    )
    return ServerConfig(
        data_dir=data_dir,
        listener=listener,
        tls=tls,
        custody=custody,
        storage=storage,
        policy=policy,
        crypto=crypto_settings.read(sections["crypto"]),
        rotation=rotation_settings.read(sections["rotation"]),
        admin=AdminSettings(
            host=sections["admin"].string("host", AdminSettings.host),
            port=sections["admin"].integer("port", AdminSettings.port, (0, 65535)),
        ),
        xks=xks_settings.read(sections["xks"]),
        cse=cse_settings.read(sections["cse"]),
        dke=dke_settings.read(sections["dke"]),
        log_level=log_level.upper(),
        log_format=log_format,
        test_harness=test_harness,
    )


# PIN files already warned about in this process (forked workers inherit it: one warning per server).
_warned_pin_files: set[Path] = set()


def read_pin(custody: CustodySettings) -> str:
    """The token's user PIN, from the environment variable or the file the settings name.

    A PIN file's first line is the PIN (surrounding white space is dropped). Raises
    :class:`ConfigError` when the source is missing or empty; logs a warning when the PIN file
    is accessible to other users. Never includes the PIN in a message.
    """
    if custody.pin_env is not None:
        value = os.environ.get(custody.pin_env)
        if value is None:
            raise ConfigError(
                f"environment variable {custody.pin_env} is not set (custody.pin_env names it as the token PIN source)"
            )
        if not value:
            raise ConfigError(f"environment variable {custody.pin_env} is empty (custody.pin_env: the token PIN)")
        return value
    if custody.pin_file is None:
        raise ConfigError("no token PIN source: set custody.pin_env or custody.pin_file")
    path = custody.pin_file
    try:
        with open(path, encoding="utf-8") as handle:
            mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
            first_line = handle.readline()
    except FileNotFoundError:
        raise ConfigError(f"PIN file {path} not found (custody.pin_file)") from None
    except UnicodeDecodeError:
        raise ConfigError(f"PIN file {path} is not UTF-8 text (custody.pin_file)") from None
    except OSError as exc:
        raise ConfigError(f"cannot read PIN file {path} (custody.pin_file): {exc.strerror or exc}") from None
    if mode & 0o077 and path not in _warned_pin_files:
        _warned_pin_files.add(path)
        log.warning("PIN file %s is accessible to other users (mode %04o); run: chmod 600 %s", path, mode, path)
    pin = first_line.strip()
    if not pin:
        raise ConfigError(f"PIN file {path} is empty (custody.pin_file)")
    return pin


# ---- the file `strongroom init` writes

_LISTENER_COMMENTS = {
    "host": (
        'Address to listen on. "127.0.0.1" accepts local clients only; "0.0.0.0" (every IPv4',
        'address) or "::" (every IPv6 address) accepts clients from the network.',
    ),
    "port": ("TCP port; 5696 is the IANA port for KMIP over TLS.",),
    "workers": ("Worker processes serving requests; 0 starts one per CPU core.",),
    "max_message_size": (
        "Largest request accepted, in bytes (the whole TTLV message, or the body of an HTTPS",
        "request); larger ones are refused.",
    ),
    "idle_timeout": ("Seconds a connection may stay open without sending a complete request.",),
    "max_connections": (
        "Open connections per worker; when every one has completed its TLS handshake, new",
        "connections are closed at once.",
    ),
    "handshake_timeout": ("Seconds a client has to complete the TLS handshake.",),
    "max_handshakes": (
        "Connections per worker in their TLS handshake, and as many again that have connected",
        "but not sent a byte. Past it, a new connection takes the place of one of them more",
        "than 2 s old (from the address holding the most, the oldest first) rather than being",
        "refused, so sockets that connect and never speak cannot lock clients out; a burst of",
        "younger ones may exceed it. Clients past their handshake are never displaced.",
    ),
    "max_source_share": (
        "The largest share (above 0, at most 1) of max_connections that one client address (an",
        "IPv4 address, or an IPv6 /64) may hold in a worker; its further connections are closed",
        "at once. Behind a proxy or load balancer that hides client addresses, set 1.",
    ),
    "shutdown_grace": ("Seconds a stopping server lets requests in progress finish (SIGTERM, Ctrl-C).",),
    "group_commit_wait": (
        "Seconds a worker holding requests that write waits for others (at most 0.1) so that one",
        "durable commit serves them all: up to 4 times while the clients of the last batch (and",
        "any new ones) have not all sent, and no longer once they have; 0 commits each turn's",
        "requests at once.",
    ),
    "https_port": (
        "TCP port for KMIP over HTTPS (the KMIP HTTPS profile), served beside the port above by",
        "every worker: POST /kmip with a TTLV (application/octet-stream), JSON (application/json)",
        "or XML (text/xml) body, answered in kind; the same TLS, client certificates, identities,",
        "message size and time-outs. 0 turns it off.",
    ),
    "max_batch_items": (
        "Most batch items (operations) in one request message; a message with more is refused",
        "with Invalid Message. Real clients send a handful. Messages of more than 32 items run",
        "beside the worker's other requests, not in front of them, their writes committed in",
        "parts (under Undo, in one transaction).",
    ),
}


def _toml_string(value: str) -> str:
    # TOML basic string: escape what TOML requires escaped, keep the rest (paths may be non-ASCII).
    escaped = []
    for char in value:
        if char in '"\\':
            escaped.append("\\" + char)
        elif (ord(char) < 0x20 and char != "\t") or ord(char) == 0x7F:
            escaped.append(f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def _toml_value(value: object) -> str:
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)  # int, or a finite float (repr always has a "." or an exponent)


def _comment(lines: Iterable[str]) -> list[str]:
    return [f"# {line}" if line else "#" for line in lines]


def render_default_config(module: Path | None = None) -> str:
    """The ``strongroom.toml`` that ``strongroom init`` writes, with comments.

    Files live in the data directory and are named relative to it, the SQLite database too,
    so the directory can be copied or moved: nothing in the file names the directory.
    ``module`` is the PKCS#11 library (default: the installed SoftHSM2).
    """
    if module is None:
        from .custody.softhsm import DEFAULT_SOFTHSM_MODULE, find_softhsm_module

        module = find_softhsm_module() or DEFAULT_SOFTHSM_MODULE
    from sqlalchemy.engine import URL

    database_url = URL.create("sqlite", database=DATABASE_FILE_NAME).render_as_string(hide_password=False)

    out: list[str] = _comment(
        [
            "Strongroom key server configuration, written by `strongroom init`.",
            "",
            "Relative paths are relative to the data directory, the directory holding this file, so",
            "the directory can be copied or moved (`strongroom backup` and `restore` do it online).",
            "Secrets are never written here: the token PIN is read from a file or an environment",
            "variable. `strongroom serve --host/--port/--workers/--https-port` override the [listener]",
            "values.",
            "Unknown keys are errors, so a misspelt setting is reported rather than ignored.",
        ]
    )
    out += ["", *_comment(["Log verbosity: DEBUG, INFO, WARNING, ERROR or CRITICAL (logs go to stderr)."])]
    out += [f"log_level = {_toml_string('INFO')}", ""]
    out += _comment(
        [
            'Log line format: "text", or "json" (one object per line: time, level, logger, message,',
            "and for what is logged while a request runs its request id, identity, operation and",
            "objects). `strongroom serve --log-format` overrides it.",
        ]
    )
    out += [f"log_format = {_toml_string('text')}", ""]
    out += _comment(
        [
            "Answer KMIP's test-harness operation (Interop), which conformance test suites use;",
            "never on a production server (KMIP 2.1 6.1.26). `strongroom serve --test-harness`.",
        ]
    )
    out += ["test_harness = false", "", "[listener]"]
    for field in dataclasses.fields(ListenerSettings):
        comment = _LISTENER_COMMENTS.get(field.name, (f"{field.name}: see kmip_server.config.ListenerSettings.",))
        out += [*_comment(comment), f"{field.name} = {_toml_value(field.default)}"]

    out += ["", "[tls]"]
    out += _comment(["The server's certificate chain and private key (PEM). `strongroom init` made these with"])
    out += _comment(["its development CA; replace them with your own for production."])
    out += [f"certificate = {_toml_string('pki/server.crt')}", f"private_key = {_toml_string('pki/server.key')}"]
    out += _comment(
        [
            "Clients must present a certificate signed by one of these CAs (PEM files).",
            "`strongroom certs issue` signs client certificates with pki/ca.key.",
        ]
    )
    out += [f"client_ca = [{_toml_string('pki/ca.crt')}]"]
    out += _comment(
        [
            "Which part of the client certificate is the client's identity (object owner, admin check):",
            '"cn" subject common name, "subject" the whole subject (RFC 4514), "ou" organizational',
            'unit, "san-dns" / "san-email" the DNS / e-mail subject alternative name.',
        ]
    )
    out += [f"identity_from = {_toml_string('cn')}"]

    out += ["", "[custody]"]
    out += _comment(
        [
            "Every stored key value is encrypted under a master key that never leaves a PKCS#11 token.",
            "The PKCS#11 library (.so). Default: SoftHSM2, a software token kept in hsm/.",
        ]
    )
    out += [f"module = {_toml_string(str(module))}"]
    out += _comment(
        [
            "A hardware HSM instead: its vendor's library, its token label and a PIN source, and",
            "remove softhsm2_conf. For example:",
            'module = "/usr/safenet/lunaclient/lib/libCryptoki2_64.so"     # Thales Luna',
            'module = "/opt/nfast/toolkits/pkcs11/libcknfast.so"           # Entrust nShield',
        ]
    )
    out += _comment(["Label of the token (slot) holding the master key, and of the master key on it."])
    out += [f"token_label = {_toml_string('strongroom')}", f"master_key_label = {_toml_string('strongroom-master')}"]
    out += _comment(
        [
            "The token's user PIN: exactly one of pin_file (first line of the file; keep it mode 0600)",
            "and pin_env (the name of an environment variable holding the PIN).",
        ]
    )
    out += [f"pin_file = {_toml_string('hsm/user.pin')}", *_comment(['pin_env = "STRONGROOM_PIN"'])]
    out += _comment(["SoftHSM2's configuration file (SOFTHSM2_CONF); only for the SoftHSM2 token."])
    out += [f"softhsm2_conf = {_toml_string('hsm/softhsm2.conf')}"]

    out += ["", "[storage]"]
    out += _comment(
        [
            "Where objects and their (encrypted) key values are stored: a SQLAlchemy URL. A relative",
            'SQLite path is relative to the data directory ("sqlite:///strongroom.db").',
            "SQLite suits one machine; PostgreSQL suits larger sites (install strongroom[postgres]).",
            "Keep passwords out of the URL: libpq reads PGPASSWORD or ~/.pgpass. For example:",
            'url = "postgresql+psycopg://strongroom@db.example.com/strongroom"',
        ]
    )
    out += [f"url = {_toml_string(database_url)}"]
    out += _comment(
        [
            "Every change and its audit record are on disk before the client is answered. The audit",
            "records of read-only requests (Get, Locate ...) are written before the answer too, and",
            "reach the disk within a fraction of a second (the next checkpoint): a power cut can lose",
            "the last of those, never a change. true flushes them before answering as well (slower).",
            "sync_read_records = false",
        ]
    )

    out += ["", "[policy]"]
    out += _comment(["Client identities (see tls.identity_from) that may use and locate every object."])
    out += [f"admin_identities = [{_toml_string('admin')}]"]
    out += _comment(
        [
            "An access policy file (format: policies/default.toml in the Strongroom sources); without",
            "one, the creator of an object owns it and only the owner and administrators may use it.",
            'policy_file = "policy.toml"',
        ]
    )
    out += crypto_settings.render(_comment, _toml_value)
    out += rotation_settings.render(_comment, _toml_value)
    out += ["", "[admin]"]
    out += _comment(
        [
            "The admin HTTPS listener, served by every worker with the server certificate:",
            "GET /healthz and /readyz answer without a client certificate (for load balancers);",
            "GET /metrics (Prometheus text format, all workers) needs a client certificate of an",
            "administrator (policy.admin_identities, or a policy role with administrator = true);",
            "/dashboard is a web dashboard for administrators and auditors (strongroom dashboard-link).",
            "port = 0 turns it off; host is the address it listens on.",
            'host = "127.0.0.1"',
            "port = 0",
        ]
    )
    out += xks_settings.render(_comment)
    out += cse_settings.render(_comment)
    out += dke_settings.render(_comment)
    return "\n".join(out) + "\n"
