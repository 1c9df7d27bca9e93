"""The ``[cse]`` settings: the Google Workspace client-side encryption key service (a KACLS,
kmip_server/hyok/cse_service.py).

Kept apart from :mod:`kmip_server.config`, which reads the file and calls :func:`read` with the
``[cse]`` table; without the section, or with ``enabled = false``, the service is off. The key
set files are read here (at start, and again on SIGHUP: hyok/reloading.py), so a missing or
unusable one stops ``serve`` at start (a reload refuses it, in the log) with the file and the
setting named::

    [cse]
    kacls_url = "https://kms.example.com:9696/cse"   # what Google Admin is given; routes under its path
    key = "cse-kek"                                  # Name (or UID) of the AES-256 key wrapping DEKs
    authentication_audiences = ["IDP-CLIENT-ID"]

    [cse.authentication_issuers]                     # the IdP: issuer -> its JWKS, a file
    "https://accounts.google.com" = "cse/idp-jwks.json"

    [cse.authorization_issuers]                      # Google's token issuers -> their JWKS
    "gsuitecse-tokenissuer-drive@system.gserviceaccount.com" = "cse/drive-jwks.json"

    [cse.perimeters.""]                              # optional: the checks per perimeter_id
    email_domains = ["example.com"]
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .jwt_tokens import KeySets

__all__ = ["KEYS", "CseSettings", "Perimeter", "key_sets_setting", "read", "service_url", "url_setting"]

KEYS = (
    "enabled",
    "kacls_url",
    "key",
    "authentication_issuers",
    "authentication_audiences",
    "authorization_issuers",
    "authorization_audience",
    "kacls_issuers",
    "service_identity",
    "signing_key",
    "rewrap_sources",
    "rewrap_ca_file",
    "rewrap_timeout",
    "allowed_origins",
    "perimeters",
    "clock_skew",
    "name",
)
#: Google's authorization tokens for Drive, Docs, Calendar and Meet carry this audience.
DEFAULT_AUTHORIZATION_AUDIENCE = "cse-authorization"
DEFAULT_SERVICE_IDENTITY = "cse-service"
_PERIMETER_KEYS = ("email_domains", "claims")
# The admin listener's own first path segments: a KACLS path starting with one would shadow them.
_RESERVED_SEGMENTS = frozenset({"healthz", "readyz", "metrics", "dashboard"})
_PATH = re.compile(r"(/[A-Za-z0-9._~-]+)*\Z")
_MAX_KEY_ID = 255  # fits the wrapped key's one-byte length (cse_blob)


@dataclasses.dataclass(frozen=True)
class Perimeter:
    """Extra checks of the authentication token for documents of one perimeter_id."""

    email_domains: tuple[str, ...] = ()  # the user's email must be at one of these (empty: any)
    claims: tuple[tuple[str, tuple[str, ...]], ...] = ()  # claim -> accepted values (any one)

    def refusal(self, email: str, claims: Mapping[str, Any]) -> str | None:
        """Why a user with ``email`` and authentication ``claims`` is outside, or None."""
        domain = email.rpartition("@")[2].lower()
        if self.email_domains and domain not in self.email_domains:
            return f"the user's domain {domain!r} is outside the perimeter"
        for name, accepted in self.claims:
            value = claims.get(name)
            values = value if isinstance(value, list) else [value]
            if not any(isinstance(v, str | int | bool) and str(v) in accepted for v in values):
                return f"the authentication token's {name!r} claim is outside the perimeter"
        return None


@dataclasses.dataclass(frozen=True)
class CseSettings:
    """The key service as configured: its URL, keys, trusted token issuers and perimeters."""

    kacls_url: str  # without a trailing "/": authorization tokens' kacls_url must equal it
    key: str  # the wrapping key: a Name (its newest Active AES-256 key) or a Unique Identifier
    authentication: KeySets
    authentication_audiences: tuple[str, ...]
    authorization: KeySets
    authorization_audience: str = DEFAULT_AUTHORIZATION_AUDIENCE
    kacls: KeySets = dataclasses.field(default_factory=lambda: KeySets({}))  # other KACLS (migration)
    service_identity: str = DEFAULT_SERVICE_IDENTITY
    signing_key: str | None = None  # the RSA private key our KACLS JWTs are signed with
    rewrap_sources: tuple[str, ...] = ()
    rewrap_ca_file: Path | None = None
    rewrap_timeout: float = 5.0
    allowed_origins: tuple[str, ...] = ()
    #: perimeter_id ("" for none) -> its checks; None: no perimeter is checked.
    perimeters: Mapping[str, Perimeter] | None = None
    clock_skew: float = 60.0
    name: str = "Strongroom"

    @property
    def path(self) -> str:
        """Where the routes are: ``kacls_url``'s path ("" for the root)."""
        return urllib.parse.urlsplit(self.kacls_url).path


def url_setting(table: Any, key: str, value: Any) -> str:
    if value is None:
        raise table.error(key, "missing (required)")
    if not isinstance(value, str) or not value.strip():
        raise table.error(key, "must be an https:// URL")
    parts = urllib.parse.urlsplit(value.strip())
    if parts.scheme != "https" or not parts.netloc or parts.query or parts.fragment:
        raise table.error(key, f"must be an https:// URL without query or fragment, not {value!r}")
    return value.strip().rstrip("/")


def service_url(table: Any, key: str, *, needs_path: bool) -> str:
    """An https:// URL a service is served at, on the admin listener: its path must be
    /segments (``needs_path``: at least one) and not under the listener's own paths."""
    url = url_setting(table, key, table.raw(key, None))
    path = urllib.parse.urlsplit(url).path
    if needs_path and not path:
        raise table.error(key, "needs a path (https://host/dke, say): the key names follow it")
    if not _PATH.match(path):
        raise table.error(key, f"its path {path!r} must be /segments of letters, digits and ._~-")
    first = path.split("/")[1] if path else ""
    if first in _RESERVED_SEGMENTS:
        raise table.error(key, f"its path may not start with /{first}: the admin listener serves that")
    return url


def key_sets_setting(table: Any, key: str, required: bool) -> KeySets:
    raw = table.raw(key, {} if not required else None)
    if raw is None:
        raise table.error(key, "missing (required): a table of issuer = JWKS file")
    if not isinstance(raw, dict) or not all(isinstance(v, str) and v.strip() for v in raw.values()):
        raise table.error(key, 'must be a table of issuer = "path of its JWKS file"')
    if required and not raw:
        raise table.error(key, "must name at least one issuer")
    files = {issuer: _resolve(table.data_dir, path) for issuer, path in raw.items()}
    try:
        return KeySets.from_files(files)
    except ValueError as exc:
        raise table.error(key, str(exc)) from None


def _resolve(data_dir: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else data_dir / path


def _strings(table: Any, key: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in table.strings(key, ()))


def _perimeters(table: Any) -> dict[str, Perimeter] | None:
    raw = table.raw("perimeters", None)
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise table.error("perimeters", "must be a table of perimeter_id = { email_domains = [...], claims = {...} }")
    found: dict[str, Perimeter] = {}
    for perimeter_id, rules in raw.items():
        where = f"perimeters.{perimeter_id!r}"
        if not isinstance(rules, dict) or set(rules) - set(_PERIMETER_KEYS):
            raise table.error(where, f"must be a table of {' and '.join(_PERIMETER_KEYS)}")
        domains = rules.get("email_domains", [])
        if not isinstance(domains, list) or not all(isinstance(d, str) and d.strip() for d in domains):
            raise table.error(f"{where}.email_domains", "must be a list of domain names")
        claims = rules.get("claims", {})
        if not isinstance(claims, dict):
            raise table.error(f"{where}.claims", "must be a table of claim = value or [values]")
        checks: list[tuple[str, tuple[str, ...]]] = []
        for name, accepted in claims.items():
            values = accepted if isinstance(accepted, list) else [accepted]
            if not values or not all(isinstance(v, str | int | bool) for v in values):
                raise table.error(f"{where}.claims.{name}", "must be a value or a list of values")
            checks.append((name, tuple(str(v) for v in values)))
        found[perimeter_id] = Perimeter(tuple(d.strip().lower() for d in domains), tuple(checks))
    return found


def _key_id(table: Any, key: str, value: Any) -> str:
    if value is None:
        raise table.error(key, "missing (required): a key's Name or Unique Identifier")
    if not isinstance(value, str) or not value.strip() or len(value.encode()) > _MAX_KEY_ID:
        raise table.error(key, f"must be a key's Name or Unique Identifier (at most {_MAX_KEY_ID} bytes)")
    return value.strip()


def read(table: Any) -> CseSettings | None:
    """The settings from the ``[cse]`` table (a ``config._Table``); None when there is no
    such section or it says ``enabled = false``."""
    if not table.table or not table.boolean("enabled", True):
        return None
    kacls_url = service_url(table, "kacls_url", needs_path=False)
    audiences = _strings(table, "authentication_audiences")
    if not audiences:
        raise table.error("authentication_audiences", "missing (required): the IdP client ids its tokens carry as aud")
    signing = table.nonempty("signing_key", None)
    sources = tuple(url_setting(table, "rewrap_sources", value) for value in table.strings("rewrap_sources", ()))
    if sources and signing is None:
        raise table.error("rewrap_sources", "needs signing_key: the original KACLS verifies our signed requests")
    origins = _strings(table, "allowed_origins")
    if any(origin == "*" or not origin.startswith("https://") for origin in origins):
        raise table.error("allowed_origins", "must list https:// origins (no wildcard)")
    return CseSettings(
        kacls_url=kacls_url,
        key=_key_id(table, "key", table.raw("key", None)),
        authentication=key_sets_setting(table, "authentication_issuers", required=True),
        authentication_audiences=audiences,
        authorization=key_sets_setting(table, "authorization_issuers", required=True),
        authorization_audience=table.nonempty("authorization_audience", DEFAULT_AUTHORIZATION_AUDIENCE).strip(),
        kacls=key_sets_setting(table, "kacls_issuers", required=False),
        service_identity=table.nonempty("service_identity", DEFAULT_SERVICE_IDENTITY).strip(),
        signing_key=None if signing is None else _key_id(table, "signing_key", signing),
        rewrap_sources=sources,
        rewrap_ca_file=table.path("rewrap_ca_file", None, local=False),
        rewrap_timeout=table.number("rewrap_timeout", 5.0, (0.1, 60), True),
        allowed_origins=tuple(origin.rstrip("/") for origin in origins),
        perimeters=_perimeters(table),
        clock_skew=table.number("clock_skew", 60.0, (0, 600), False),
        name=table.nonempty("name", "Strongroom").strip(),
    )


def render(comment: Any) -> list[str]:
    """The commented ``[cse]`` section of the default configuration file (off)."""
    lines = [
        "Google Workspace client-side encryption key service (KACLS), served on the admin listener",
        "under kacls_url's path: wrap, unwrap, privilegedunwrap, rewrap, status, certs. Off without",
        "this section; README.md, 'Google Workspace client-side encryption', has every setting.",
        "[cse]",
        'kacls_url = "https://kms.example.com:9696/cse"',
        'key = "cse-kek"                 # the Name (or UID) of an AES-256 key',
        'authentication_audiences = ["the IdP client id"]',
        "[cse.authentication_issuers]",
        '"https://accounts.google.com" = "cse/idp-jwks.json"',
        "[cse.authorization_issuers]",
        '"gsuitecse-tokenissuer-drive@system.gserviceaccount.com" = "cse/drive-jwks.json"',
    ]
    out: list[str] = [""]
    out += comment(lines)
    return out
