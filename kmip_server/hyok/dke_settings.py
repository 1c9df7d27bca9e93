"""The ``[dke]`` settings: Microsoft Purview Double Key Encryption (kmip_server/hyok/dke_service.py).

Kept apart from :mod:`kmip_server.config`, which reads the file and calls :func:`read` with the
``[dke]`` table; without the section, or with ``enabled = false``, the service is off::

    [dke]
    url = "https://dke.example.com:9696/dke"        # the DKE URL's base: keys are url/NAME
    audience = "https://dke.example.com"             # the tokens' aud (the sample's JwtAudience)
    authorization_url = "https://login.microsoftonline.com/TENANT/oauth2/authorize"

    [dke.issuers]                                    # Entra ID: issuer -> its JWKS, a file
    "https://sts.windows.net/TENANT/" = "dke/entra-jwks.json"

    [dke.keys]                                       # key name -> RSA private keys, newest first
    finance = ["dke-finance"]                        # Names (or UIDs) of private keys
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

from .cse_settings import key_sets_setting, service_url, url_setting
from .jwt_tokens import KeySets

__all__ = ["KEYS", "DkeSettings", "read"]

KEYS = (
    "enabled",
    "url",
    "audience",
    "issuers",
    "authorization_url",
    "realm",
    "keys",
    "service_identity",
    "cache_days",
    "clock_skew",
)
DEFAULT_SERVICE_IDENTITY = "dke-service"
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_KEY_ID = re.compile(r"[A-Za-z0-9._~-]{1,128}\Z")  # a path segment as it is, unescaped


@dataclasses.dataclass(frozen=True)
class DkeSettings:
    """The DKE service as configured: its URL, token rules and keys."""

    url: str  # without a trailing "/"
    audience: str
    issuers: KeySets
    keys: Mapping[str, tuple[str, ...]]  # key name -> private keys (Names or Unique Identifiers), current first
    authorization_url: str = "https://login.windows.net/common/oauth2/authorize"
    realm: str = ""
    service_identity: str = DEFAULT_SERVICE_IDENTITY
    cache_days: int = 1  # the public key's "cache" "exp"; 0 leaves it out (clients then never cache)
    clock_skew: float = 60.0

    @property
    def path(self) -> str:
        return urllib.parse.urlsplit(self.url).path


def _keys(table: Any) -> dict[str, tuple[str, ...]]:
    raw = table.raw("keys", None)
    if not isinstance(raw, dict) or not raw:
        raise table.error("keys", 'missing (required): a table of key name = ["private key UID", ...]')
    found: dict[str, tuple[str, ...]] = {}
    for name, uids in raw.items():
        if not _NAME.match(name):
            raise table.error(f"keys.{name}", "a key name is 1 to 64 letters, digits, - and _")
        values = uids if isinstance(uids, list) else [uids]
        if not values or not all(isinstance(uid, str) and _KEY_ID.match(uid) for uid in values):
            raise table.error(
                f"keys.{name}",
                "must be a private key's Name or Unique Identifier (letters, digits, ._~-), or a list, newest first",
            )
        found[name] = tuple(values)
    return found


def read(table: Any) -> DkeSettings | None:
    """The settings from the ``[dke]`` table (a ``config._Table``); None when there is no
    such section or it says ``enabled = false``."""
    if not table.table or not table.boolean("enabled", True):
        return None
    url = service_url(table, "url", needs_path=True)
    audience = table.nonempty("audience").strip()
    if not audience.startswith("https://"):
        raise table.error("audience", "must be the https:// URL the tokens are issued for (Microsoft's tester checks)")
    realm = table.string("realm", "")
    if '"' in realm or "," in realm:
        raise table.error("realm", "may not hold quotes or commas (it goes in the WWW-Authenticate challenge)")
    authorization_url = url_setting(
        table, "authorization_url", table.raw("authorization_url", DkeSettings.authorization_url)
    )
    return DkeSettings(
        url=url,
        audience=audience,
        issuers=key_sets_setting(table, "issuers", required=True),
        keys=_keys(table),
        authorization_url=authorization_url,
        realm=realm,
        service_identity=table.nonempty("service_identity", DEFAULT_SERVICE_IDENTITY).strip(),
        cache_days=table.integer("cache_days", 1, (0, 365)),
        clock_skew=table.number("clock_skew", 60.0, (0, 600), False),
    )


def render(comment: Any) -> list[str]:
    """The commented ``[dke]`` section of the default configuration file (off)."""
    lines = [
        "Microsoft Purview Double Key Encryption, served on the admin listener under url's path:",
        "GET url/NAME (the public key), POST url/NAME/KEYID/decrypt. Off without this section;",
        "README.md, 'Microsoft Double Key Encryption', has every setting.",
        "[dke]",
        'url = "https://dke.example.com:9696/dke"',
        'audience = "https://dke.example.com"',
        "[dke.issuers]",
        '"https://sts.windows.net/TENANT-ID/" = "dke/entra-jwks.json"',
        "[dke.keys]",
        'finance = ["dke-finance"]       # the Names (or UIDs) of RSA private keys, newest first',
    ]
    return ["", *comment(lines)]
