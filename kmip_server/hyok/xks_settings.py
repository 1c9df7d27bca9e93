"""The ``[xks]`` settings: the AWS KMS External Key Store proxy API (kmip_server/hyok/xks_route.py).

Kept apart from :mod:`kmip_server.config`, which reads the file and calls :func:`read` with the
``[xks]`` table. The section turns the service on (``enabled = false`` keeps it written but off)::

    [xks]
    uri_prefix = "/keystores/prod"          # XksProxyUriPath is uri_prefix + "/kms/xks/v1"
    region = "eu-west-1"                    # the AWS Region whose KMS calls (the SigV4 scope)
    client_certificate_subject = "cks.kms.eu-west-1.amazonaws.com"   # optional mTLS
    # insecure_http = true                  # local testing only: also plain HTTP on
    # insecure_http_port = 9697             # 127.0.0.1:9697 (never another address)

    [[xks.credentials]]                     # one or more: two at once while rotating
    access_key_id = "BX2JQZ7KD5LSRNHW4YTF"
    secret_access_key_file = "xks/prod-1.secret"   # mode 0600, the secret on its first line
    identity = "aws-xks"                    # whom the access policy and the audit trail see
    max_requests_per_second = 500           # optional, per worker: ThrottlingException over it

The secret access keys are read here, once, from their files: a file that group or others may
read is refused, and nothing read from one appears in a message (only its path and length).
The formats are the ones AWS KMS accepts (XKS proxy API specification, Appendix A and the
console's configuration file): an access key id of 20 to 30 characters ``A``-``Z`` and
``2``-``7``; a secret of 43 to 64 characters ``A``-``Z a``-``z 0``-``9 + / =``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from pathlib import Path
from typing import Any

__all__ = ["KEYS", "XKS_API_PATH", "XksCredential", "XksSettings", "read"]

KEYS = (
    "enabled",
    "uri_prefix",
    "region",
    "client_certificate_subject",
    "insecure_http",
    "insecure_http_port",
    "credentials",
)
CREDENTIAL_KEYS = ("access_key_id", "secret_access_key_file", "identity", "max_requests_per_second")
#: What follows the configured prefix in every XKS API path (version 1 of the API).
XKS_API_PATH = "/kms/xks/v1"
DEFAULT_IDENTITY = "aws-xks"

_PREFIX = re.compile(r"(/[A-Za-z0-9_-]+)*\Z")
_MAX_URI_PATH = 128  # XksProxyUriPath, the prefix and "/kms/xks/v1" together
# The admin listener's own first path segments (kmip_server/admin/listener.py and the
# dashboard's routes): a prefix starting with one would take over or shadow their paths.
_RESERVED_SEGMENTS = frozenset({"healthz", "readyz", "metrics", "dashboard"})
_ACCESS_KEY_ID = re.compile(r"[A-Z2-7]{20,30}\Z")
_SECRET = re.compile(r"[A-Za-z0-9+/=]{43,64}\Z")
_REGION = re.compile(r"[a-z]{2}(-[a-z0-9]+)+\Z")
_MAX_RATE = 1_000_000.0  # requests a second: a bound that keeps out inf, not a real limit


@dataclasses.dataclass(frozen=True)
class XksCredential:
    """One SigV4 credential AWS KMS signs with, and the identity its requests act as."""

    access_key_id: str
    secret_access_key: str = dataclasses.field(repr=False)  # never printed, logged or sent
    identity: str = DEFAULT_IDENTITY
    source: Path | None = None  # the file the secret came from, for messages
    #: Requests a second this credential may make of one worker process (a token bucket,
    #: xks_throttle.py); None: no limit.
    max_requests_per_second: float | None = None


@dataclasses.dataclass(frozen=True)
class XksSettings:
    """The XKS proxy API as configured: where it is served, whom it accepts."""

    uri_prefix: str  # "" or "/segment/...": the API is under uri_prefix + XKS_API_PATH
    region: str
    credentials: tuple[XksCredential, ...]
    #: With mTLS: the subject CN the client certificate of an XKS request must carry (AWS KMS
    #: presents cks.kms.<Region>.amazonaws.com); None: no client certificate is asked for.
    client_certificate_subject: str | None = None
    #: Also plain HTTP on 127.0.0.1:insecure_http_port (local testing; transport/plain_http.py).
    insecure_http: bool = False
    insecure_http_port: int | None = None  # set exactly when insecure_http is

    @property
    def api_path(self) -> str:
        """The XksProxyUriPath to give AWS KMS: the prefix and ``/kms/xks/v1``."""
        return self.uri_prefix + XKS_API_PATH


def read(table: Any) -> XksSettings | None:
    """The settings from the ``[xks]`` table (a ``config._Table``); None when there is no such
    section or it says ``enabled = false``."""
    if not table.table:
        return None
    if not table.boolean("enabled", True):
        return None
    subject = table.nonempty("client_certificate_subject", None)
    insecure_http, insecure_http_port = _insecure_http(table, subject)
    return XksSettings(
        uri_prefix=_uri_prefix(table),
        region=_region(table),
        credentials=_credentials(table),
        client_certificate_subject=subject,
        insecure_http=insecure_http,
        insecure_http_port=insecure_http_port,
    )


def _insecure_http(table: Any, subject: str | None) -> tuple[bool, int | None]:
    """Whether plain HTTP is asked for, and its port. Whether the port is free of the other
    listeners' and the admin listener is on is checked where they are bound (transport/workers.py):
    ``serve --admin-port`` may set the admin port after the file is read."""
    insecure = table.boolean("insecure_http", False)
    port = table.raw("insecure_http_port", None)
    if not insecure:
        if port is not None:
            raise table.error("insecure_http_port", "is only for insecure_http = true (plain HTTP for local testing)")
        return False, None
    if subject is not None:
        raise table.error(
            "insecure_http", "cannot go with client_certificate_subject: a plain HTTP request carries no certificate"
        )
    if port is None:
        raise table.error(
            "insecure_http_port",
            "missing: insecure_http = true serves the XKS API without TLS on 127.0.0.1 at this port",
        )
    return True, table.integer("insecure_http_port", None, (1, 65535))


def _uri_prefix(table: Any) -> str:
    given = table.string("uri_prefix", "")
    prefix = "/" + given.strip("/") if given.strip("/") else ""
    if not _PREFIX.match(prefix):
        raise table.error("uri_prefix", f"may hold only letters, digits, '/', '-' and '_', not {given!r}")
    if len(prefix + XKS_API_PATH) > _MAX_URI_PATH:
        raise table.error("uri_prefix", f"with {XKS_API_PATH!r} it must be at most {_MAX_URI_PATH} characters")
    first = prefix.split("/")[1] if prefix else ""
    if first in _RESERVED_SEGMENTS:
        raise table.error("uri_prefix", f"must not start with /{first}, a path the admin listener serves itself")
    return prefix


def _region(table: Any) -> str:
    region: str = table.nonempty("region")
    if not _REGION.match(region):
        raise table.error("region", f"must be an AWS Region name such as 'us-east-1', not {region!r}")
    return region


def _credentials(table: Any) -> tuple[XksCredential, ...]:
    entries = table.raw("credentials", [])
    if not isinstance(entries, list) or not entries or not all(isinstance(entry, dict) for entry in entries):
        raise table.error(
            "credentials", "needs one or more [[xks.credentials]] tables (access_key_id, secret_access_key_file)"
        )
    found: list[XksCredential] = []
    for index, entry in enumerate(entries):
        # The same kind of table as the section's (config._Table), for its messages and checks.
        credential = type(table)(table.source, table.data_dir, f"xks.credentials[{index}]", entry, CREDENTIAL_KEYS)
        credential.check_keys()
        found.append(_credential(credential))
    ids = [credential.access_key_id for credential in found]
    doubled = sorted({key for key in ids if ids.count(key) > 1})
    if doubled:
        raise table.error("credentials", f"access key id {doubled[0]} is given more than once")
    return tuple(found)


def _credential(table: Any) -> XksCredential:
    access_key_id: str = table.nonempty("access_key_id")
    if not _ACCESS_KEY_ID.match(access_key_id):
        raise table.error(
            "access_key_id", "must be 20 to 30 characters, each 'A' to 'Z' or '2' to '7' (what AWS KMS accepts)"
        )
    path: Path = table.path("secret_access_key_file")
    identity: str = table.nonempty("identity", DEFAULT_IDENTITY)
    rate = None
    if table.raw("max_requests_per_second", None) is not None:
        rate = table.number("max_requests_per_second", None, (None, _MAX_RATE), positive=True)
    return XksCredential(access_key_id, _secret(table, path), identity.strip(), path, rate)


def _secret(table: Any, path: Path) -> str:
    """The secret on the file's first line; the file must be private to its owner."""
    key = "secret_access_key_file"
    try:
        with open(path, encoding="utf-8") as handle:
            mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
            first_line = handle.readline()
    except FileNotFoundError:
        raise table.error(key, f"{path} not found") from None
    except UnicodeDecodeError:
        raise table.error(key, f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise table.error(key, f"cannot read {path}: {exc.strerror or exc}") from None
    if mode & 0o077:
        raise table.error(key, f"{path} may be read by other users (mode {mode:04o}); run: chmod 600 {path}")
    secret = first_line.strip()
    if not _SECRET.match(secret):
        # The length only: the content is the secret.
        raise table.error(
            key,
            f"{path} must hold a secret of 43 to 64 characters A-Z a-z 0-9 + / = on its first line "
            f"(it holds {len(secret)} characters; make one with: openssl rand -base64 32)",
        )
    return secret


def render(comment: Any) -> list[str]:
    """The commented-out ``[xks]`` example of the default configuration file (off until written)."""
    return [
        "",
        *comment(
            [
                "AWS KMS External Key Store (XKS) proxy API, served on the admin listener (set [admin] port) at",
                "https://HOST:ADMIN_PORT<uri_prefix>/kms/xks/v1; see README.md. Uncomment to turn it on:",
                "[xks]",
                'uri_prefix = "/keystores/prod"        # AWS KMS XksProxyUriPath: uri_prefix + "/kms/xks/v1"',
                'region = "us-east-1"                   # the Region of the AWS KMS that calls (SigV4 scope)',
                '#client_certificate_subject = "cks.kms.us-east-1.amazonaws.com"   # require mTLS from KMS',
                "#insecure_http = true                  # LOCAL TESTING ONLY: the XKS API also as plain HTTP,",
                "#insecure_http_port = 9697             # on 127.0.0.1 (never another address) at this port",
                "[[xks.credentials]]                    # one or more; two while rotating them (SIGHUP reloads)",
                'access_key_id = "..."                  # 20-30 characters A-Z, 2-7',
                'secret_access_key_file = "xks/prod.secret"   # mode 0600; `openssl rand -base64 32` makes one',
                'identity = "aws-xks"                   # the identity the access policy and audit trail see',
                "#max_requests_per_second = 500         # per worker process; over it: ThrottlingException (429)",
            ]
        ),
    ]
