"""``strongroom init`` and ``strongroom certs``: making a data directory (CA, server and client
certificates, the SoftHSM2 token with its master key, the database) and issuing certificates
from its CA. ``init`` is safe to repeat: what exists is kept, never replaced; ``certs
renew-server`` replaces the server certificate, keeping the old pair as ``.bak``. On a terminal
(or with ``--progress``) ``init`` names each of its steps on stderr as it begins; its report on
stdout is the same either way. (Split out of :mod:`.cli`, which parses the command line and serves.)"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
import secrets
import stat
import sys
from collections.abc import Sequence
from pathlib import Path

from kmip_client.progress import ProgressPrinter, wanted

from .config import (
    CONFIG_FILE_NAME,
    ConfigError,
    ServerConfig,
    load_config,
    read_pin,
    render_default_config,
)
from .pki import (
    IssuedCertificate,
    create_ca,
    issue_client_certificate,
    issue_server_certificate,
    load_issued,
    write_file_atomically,
    write_issued,
)

PROG = "strongroom"
ADMIN_NAME = "admin"  # the client identity init issues; the default config makes it an administrator
TOKEN_LABEL = "strongroom"
MASTER_KEY_LABEL = "strongroom-master"
SO_PIN_NAME = "so.pin"
DEFAULT_SERVER_HOSTNAMES = ("localhost",)
DEFAULT_SERVER_ADDRESSES = ("127.0.0.1", "::1")
DEFAULT_NAMES = (*DEFAULT_SERVER_HOSTNAMES, *DEFAULT_SERVER_ADDRESSES)


class CliError(Exception):
    """A failure to report as ``strongroom: <message>`` with exit status 1."""


# ---- files


def _display(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def _private_dir(path: Path, *, warn: bool = True) -> bool:
    """Create ``path`` (and parents) with mode 0700; returns whether it was created.

    An existing directory keeps its mode (it may be shared on purpose), with a warning (if
    ``warn``) when others can enter it.
    """
    if path.is_dir():
        mode = stat.S_IMODE(path.stat().st_mode)
        if warn and mode & 0o077:
            print(f"{PROG}: warning: {path} is accessible to other users (mode {mode:04o})", file=sys.stderr)
        return False
    path.mkdir(mode=0o700, parents=True)
    os.chmod(path, 0o700)  # mkdir's mode is narrowed by the umask, never widened; make it exact
    return True


def _write_file(path: Path, data: bytes, mode: int, *, overwrite: bool) -> None:
    """Write ``data`` with exactly ``mode``, atomically (see :func:`write_file_atomically`)."""
    try:
        write_file_atomically(path, data, mode, overwrite=overwrite)
    except FileExistsError:
        raise CliError(f"{path} already exists") from None


def _write_pair(issued: IssuedCertificate, cert_path: Path, key_path: Path) -> None:
    write_issued(issued, cert_path, key_path, overwrite=True)


# ---- init


@dataclasses.dataclass
class _Report:
    base: Path
    lines: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    def add(self, status: str, what: str) -> None:
        self.lines.append((status, what))

    def names(self, *paths: Path) -> str:
        return ", ".join(_display(path, self.base) for path in paths)


class _Steps:
    """``init``'s steps on stderr as each begins, when progress is ``shown`` (a terminal, or
    ``--progress``): the token and the CA take seconds, and a silent terminal looks stuck."""

    TOTAL = 5  # configuration, CA and server certificate, client identity, token, database

    def __init__(self, shown: bool) -> None:
        self.printer = ProgressPrinter(sys.stderr, prefix=f"{PROG}: ") if shown else None
        self.number = 0

    def begin(self, text: str) -> None:
        self.number += 1
        if self.printer is not None:
            self.printer.step(self.number, self.TOTAL, text)


def _no_softhsm_message(module: Path | None = None) -> str:
    from .custody.softhsm import SOFTHSM_MODULE_CANDIDATES

    where = str(module) if module is not None else ", ".join(str(path) for path in SOFTHSM_MODULE_CANDIDATES)
    return (
        f"SoftHSM2 is not installed (no libsofthsm2.so at {where}); install it (Debian/Ubuntu: "
        "apt-get install softhsm2), or configure a hardware HSM in [custody] of strongroom.toml"
    )


def _ensure_ca(pki: Path, report: _Report) -> IssuedCertificate:
    cert_path, key_path = pki / "ca.crt", pki / "ca.key"
    if cert_path.exists() and key_path.exists():
        try:
            ca = load_issued(cert_path, key_path)
        except (ValueError, TypeError) as exc:
            raise CliError(f"cannot use the CA in {pki}: {exc}") from None
        report.add("kept", f"{report.names(cert_path, key_path)}  CA {ca.common_name!r}")
        return ca
    if cert_path.exists() or key_path.exists():
        present, missing = (cert_path, key_path) if cert_path.exists() else (key_path, cert_path)
        raise CliError(
            f"{present} exists but {missing} does not; refusing to replace the CA "
            "(restore the missing file, or move both away to start a new CA)"
        )
    # A random suffix tells the CAs of different installations apart in a trust store.
    ca = create_ca(common_name=f"Strongroom Development CA {secrets.token_hex(4)}")
    _write_pair(ca, cert_path, key_path)
    report.add("created", f"{report.names(cert_path, key_path)}  CA {ca.common_name!r} (keep ca.key secret)")
    return ca


def _split_names(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """Host names and IP addresses (normalised), each once, in order."""
    hostnames: list[str] = []
    addresses: list[str] = []
    for name in names:
        try:
            address = str(ipaddress.ip_address(name))
        except ValueError:
            if name.lower() not in (known.lower() for known in hostnames):
                hostnames.append(name)
        else:
            if address not in addresses:
                addresses.append(address)
    return hostnames, addresses


def _certificate_names(issued: IssuedCertificate) -> list[str]:
    """A server certificate's DNS and IP subject alternative names."""
    from cryptography import x509

    try:
        sans = issued.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [*sans.get_values_for_type(x509.DNSName), *(str(a) for a in sans.get_values_for_type(x509.IPAddress))]


def _issue_server_pair(ca: IssuedCertificate, names: Sequence[str], cert_path: Path, key_path: Path, days: int) -> str:
    hostnames, addresses = _split_names(names)
    try:
        issued = issue_server_certificate(ca, hostnames=hostnames, addresses=addresses, days=days)
    except ValueError as exc:
        raise CliError(f"cannot issue the server certificate: {exc}") from None
    _write_pair(issued, cert_path, key_path)
    return ", ".join(hostnames + addresses)


def _ensure_server_certificate(pki: Path, ca: IssuedCertificate, extra_names: Sequence[str], report: _Report) -> None:
    cert_path, key_path = pki / "server.crt", pki / "server.key"
    if cert_path.exists() and key_path.exists():
        try:
            names = _certificate_names(load_issued(cert_path, key_path))
        except (ValueError, TypeError) as exc:
            raise CliError(f"cannot use the server certificate in {pki}: {exc}") from None
        report.add("kept", f"{report.names(cert_path, key_path)}  server certificate for {', '.join(names)}")
        if extra_names:
            wanted_hosts, wanted_addresses = _split_names(extra_names)
            have = {name.lower() for name in names}
            absent = [name for name in wanted_hosts + wanted_addresses if name.lower() not in have]
            kept = f"kept the existing server certificate {report.names(cert_path)}, for {', '.join(names)}"
            if absent:
                renew = " ".join(f"--server-name {name}" for name in extra_names)
                report.notes.append(
                    f"{kept}: --server-name does not change an existing certificate, so {', '.join(absent)} "
                    f"{'is' if len(absent) == 1 else 'are'} not in it. A new one from the same CA: "
                    f"{PROG} certs renew-server --data-dir {report.base} {renew}"
                )
            else:
                report.notes.append(f"{kept}, which already has the --server-name names")
        return
    shown = _issue_server_pair(ca, [*DEFAULT_NAMES, *extra_names], cert_path, key_path, 825)
    report.add("created", f"{report.names(cert_path, key_path)}  server certificate for {shown}")


def _ensure_client(clients: Path, ca: IssuedCertificate, report: _Report) -> None:
    _private_dir(clients)
    cert_path, key_path, ca_path = clients / f"{ADMIN_NAME}.crt", clients / f"{ADMIN_NAME}.key", clients / "ca.crt"
    if cert_path.exists() and key_path.exists():
        report.add("kept", f"{report.names(cert_path, key_path)}  client identity {ADMIN_NAME!r}")
    else:
        _write_pair(issue_client_certificate(ca, ADMIN_NAME), cert_path, key_path)
        report.add("created", f"{report.names(cert_path, key_path)}  client identity {ADMIN_NAME!r}")
    ca_pem = ca.certificate_pem()
    if not ca_path.exists() or ca_path.read_bytes() != ca_pem:
        _write_file(ca_path, ca_pem, 0o644, overwrite=True)
        report.add("created", f"{report.names(ca_path)}  the CA clients verify the server with")


def _ensure_secret(path: Path) -> bool:
    """A random PIN in ``path`` (mode 0600) unless the file exists; returns whether it was made."""
    if path.exists():
        return False
    _private_dir(path.parent)
    # 32 URL-safe characters (192 bits): typeable, and within every token's PIN length limit.
    _write_file(path, (secrets.token_urlsafe(24) + "\n").encode("ascii"), 0o600, overwrite=False)
    return True


def _ensure_token(config: ServerConfig, report: _Report) -> None:
    from .custody import CustodyError, initialise_token
    from .custody.softhsm import CONF_NAME

    custody = config.custody
    assert custody.softhsm2_conf is not None
    if custody.softhsm2_conf.name != CONF_NAME:
        raise CliError(f"custody.softhsm2_conf must name a file called {CONF_NAME} (the token directory's)")
    token_dir = custody.softhsm2_conf.parent
    _private_dir(token_dir)
    made = []
    if custody.pin_file is not None and _ensure_secret(custody.pin_file):
        made.append(custody.pin_file)
    so_pin_path = token_dir / SO_PIN_NAME
    if _ensure_secret(so_pin_path):
        made.append(so_pin_path)
    if made:
        report.add("created", f"{report.names(*made)}  random token PIN(s), mode 0600")
    tokens = token_dir / "tokens"
    existed = tokens.is_dir() and any(tokens.iterdir())
    try:
        so_pin = so_pin_path.read_text(encoding="utf-8").strip()
        initialise_token(
            token_dir,
            label=custody.token_label,
            pin=read_pin(custody),
            so_pin=so_pin,
            master_key_label=custody.master_key_label,
            module=custody.module,
        )
    except (CustodyError, ValueError, OSError) as exc:
        raise CliError(f"cannot set up the SoftHSM2 token in {token_dir}: {exc}") from None
    what = f"SoftHSM2 token {custody.token_label!r}, master key {custody.master_key_label!r}"
    report.add("kept" if existed else "created", f"{report.names(token_dir)}/  {what}")


def _ensure_database(config: ServerConfig, report: _Report) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from .storage.repository import Repository

    url = make_url(config.storage.url)
    shown = url.render_as_string(hide_password=True)
    sqlite_file = Path(url.database) if url.get_backend_name() == "sqlite" and url.database else None
    existed = sqlite_file.exists() if sqlite_file is not None else None
    try:
        repository = Repository(config.storage.url)
        try:
            repository.create_schema()
        finally:
            repository.engine.dispose()
    except (SQLAlchemyError, ValueError, ImportError) as exc:
        detail = getattr(exc, "orig", None) or exc
        raise CliError(f"cannot create the database schema in {shown}: {detail}") from None
    if sqlite_file is not None:
        if not existed:
            os.chmod(sqlite_file, 0o600)
        report.add("kept" if existed else "created", f"{report.names(sqlite_file)}  SQLite database")
    else:
        report.add("checked", f"{shown}  database schema")


def cmd_init(args: argparse.Namespace) -> int:
    from .custody.softhsm import find_softhsm_module

    data_dir = Path(args.data_dir).expanduser().resolve()
    config_path = data_dir / CONFIG_FILE_NAME
    write_config = args.force_config or not config_path.exists()
    module = find_softhsm_module()
    if write_config and module is None:
        raise CliError(_no_softhsm_message())  # before anything is created

    steps = _Steps(wanted(sys.stderr, args.progress))
    report = _Report(data_dir)
    created_dir = _private_dir(data_dir)
    steps.begin(f"configuration ({CONFIG_FILE_NAME})...")
    if write_config:
        existed = config_path.exists()
        assert module is not None
        _write_file(config_path, render_default_config(module).encode("utf-8"), 0o644, overwrite=True)
        report.add("rewrote" if existed else "created", f"{CONFIG_FILE_NAME}  configuration")
    else:
        report.add("kept", f"{CONFIG_FILE_NAME}  configuration (--force-config rewrites it)")
    config = load_config(data_dir)
    embedded = config.custody.softhsm2_conf is not None
    if embedded and not config.custody.module.is_file():
        raise CliError(_no_softhsm_message(config.custody.module))

    pki = data_dir / "pki"
    steps.begin("PKI: the CA and the server certificate...")
    _private_dir(pki)
    ca = _ensure_ca(pki, report)
    _ensure_server_certificate(pki, ca, args.server_name, report)
    steps.begin(f"PKI: the {ADMIN_NAME!r} client identity...")
    _ensure_client(data_dir / "clients", ca, report)
    if embedded:
        steps.begin("the SoftHSM2 token and its master key...")
        _ensure_token(config, report)
    else:
        steps.begin(f"the token: none to set up ([custody] names {config.custody.module})")
        report.add("skipped", f"token set-up: [custody] uses {config.custody.module} (no softhsm2_conf)")
    steps.begin("the database schema...")
    _ensure_database(config, report)

    _print_init_summary(config, report, created_dir)
    return 0


def _print_init_summary(config: ServerConfig, report: _Report, created_dir: bool) -> None:
    data_dir = config.data_dir
    clients = data_dir / "clients"
    width = max(len(status) for status, _ in report.lines)
    print(f"{PROG}: data directory {data_dir}{' (created)' if created_dir else ''}")
    for status, what in report.lines:
        print(f"  {status:<{width}}  {what}")
    for note in report.notes:
        print(f"Note: {note}")
    listener = config.listener
    print()
    print("Start the server:")
    print(f"  {PROG} serve --data-dir {data_dir}")
    print(f"Then connect a KMIP client with mutual TLS to {listener.host}:{listener.port} using:")
    print(f"  client certificate  {clients / (ADMIN_NAME + '.crt')}")
    print(f"  client private key  {clients / (ADMIN_NAME + '.key')}")
    print(f"  CA certificate      {clients / 'ca.crt'}")
    print("More client identities:")
    print(f"  {PROG} certs issue --data-dir {data_dir} --name NAME --out DIR")


# ---- certs issue, certs renew-server


def _load_ca(data_dir: Path) -> IssuedCertificate:
    pki = data_dir / "pki"
    ca_cert, ca_key = pki / "ca.crt", pki / "ca.key"
    if not (ca_cert.exists() and ca_key.exists()):
        raise CliError(f"no CA in {pki} (run `{PROG} init --data-dir {data_dir}` first)")
    try:
        return load_issued(ca_cert, ca_key)
    except (ValueError, TypeError) as exc:
        raise CliError(f"cannot use the CA in {pki}: {exc}") from None


def cmd_certs_renew_server(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).expanduser().resolve()
    ca = _load_ca(data_dir)
    pki = data_dir / "pki"
    cert_path, key_path = pki / "server.crt", pki / "server.key"
    old = None
    if cert_path.exists() and key_path.exists():
        try:
            old = load_issued(cert_path, key_path)
        except (ValueError, TypeError):
            old = None  # unusable: replaced all the same (and still kept as .bak)
    if args.server_name:
        names = [*DEFAULT_NAMES, *args.server_name]
    else:
        names = (_certificate_names(old) if old is not None else []) or list(DEFAULT_NAMES)
    backups = []
    for path, mode in ((cert_path, 0o644), (key_path, 0o600)):
        if path.exists():
            backup = path.with_name(path.name + ".bak")
            _write_file(backup, path.read_bytes(), mode, overwrite=True)
            backups.append(backup)
    shown = _issue_server_pair(ca, names, cert_path, key_path, args.days)
    print(f"{PROG}: issued a new server certificate {cert_path} for {shown} (valid {args.days} days)")
    print(f"  signed by the data directory's CA {ca.common_name!r}: clients that trust {pki / 'ca.crt'} accept it")
    if backups:
        print(f"  the previous certificate and key are kept as {', '.join(str(path) for path in backups)}")
    print(
        f"  a running server goes on serving the certificate it loaded at start: restart `{PROG} serve` to serve this one"
    )
    try:
        configured = load_config(data_dir).tls.certificate
    except ConfigError:
        configured = cert_path
    if configured != cert_path:
        print(f"  warning: tls.certificate in strongroom.toml names {configured}, so the server does not use this one")
    return 0


def cmd_certs_issue(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).expanduser().resolve()
    name: str = args.name
    if "/" in name or name in (".", ".."):
        raise CliError(f"--name {name!r} cannot be used as a file name")
    ca = _load_ca(data_dir)

    out = Path(args.out).expanduser().resolve()
    cert_path, key_path, ca_path = out / f"{name}.crt", out / f"{name}.key", out / "ca.crt"
    ca_pem = ca.certificate_pem()
    existing = [path for path in (cert_path, key_path) if path.exists()]
    # An identical ca.crt is no conflict: several clients may share one directory.
    ca_differs = ca_path.exists() and ca_path.read_bytes() != ca_pem
    if (existing or ca_differs) and not args.force:
        clash = ", ".join(str(path) for path in [*existing, *([ca_path] if ca_differs else [])])
        raise CliError(f"refusing to overwrite {clash} (use --force to replace)")
    try:
        issued = issue_client_certificate(
            ca,
            name,
            days=args.days,
            organizational_unit=args.ou,
            dns_names=args.san_dns,
            emails=args.san_email,
        )
    except ValueError as exc:
        raise CliError(f"cannot issue a certificate for {name!r}: {exc}") from None
    _private_dir(out, warn=False)  # the key itself is written with mode 0600
    _write_pair(issued, cert_path, key_path)
    if not ca_path.exists() or ca_differs:
        _write_file(ca_path, ca_pem, 0o644, overwrite=True)
    print(f"{PROG}: issued a client certificate for {name!r} (valid {args.days} days)")
    print(f"  client certificate  {cert_path}")
    print(f"  client private key  {key_path}  (mode 0600: keep it secret)")
    print(f"  CA certificate      {ca_path}")
    return 0
