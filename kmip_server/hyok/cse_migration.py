"""Moving wrapped keys between key services: this KACLS's signing key, its ``certs``, and the
call to the original KACLS that ``rewrap`` makes.

Google's migration flow (CSE reference: rewrap, privilegedunwrap, "KACLS authentication token
for PrivilegedUnwrap"): Google asks the new KACLS (here) to rewrap a DEK that the original KACLS
wrapped; the new one asks the original's ``privilegedunwrap`` for the DEK with a JWT it signs
itself (``aud`` ``kacls-migration``, ``iss`` its own URL, ``kacls_url`` the original's,
``resource_name``), and the original verifies that JWT against the new one's ``certs`` (its
public JWKS). So:

* the signing key is an RSA private key kept in Strongroom (``signing_key``, a Name or a Unique
  Identifier): tokens are signed by a KMIP Sign (RSASSA-PKCS1-v1_5 with SHA-256, RS256) as
  ``service_identity``, and ``certs`` is a KMIP Get of the linked public key, so the private key
  never leaves the engine;
* only the original key services listed in ``rewrap_sources`` are called (a migrator's token
  must not make this server call arbitrary URLs), over TLS verified against ``rewrap_ca_file``
  (else the system's CAs), within ``rewrap_timeout`` seconds. The call is made from the worker
  serving the request, which waits for it: rewrap is a bulk migration, not an interactive path.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
import urllib.parse
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_der_public_key

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.spec.enums import ObjectType

from .cse_auth import KACLS_AUDIENCE, CseError
from .cse_settings import CseSettings
from .engine_client import EngineClients, refusal_of
from .json_api import b64decode
from .jwt_tokens import compact_jws, rsa_jwk

__all__ = ["Migration"]

_TOKEN_SECONDS = 300  # our KACLS tokens' lifetime: one call, with room for clock skew
_MAX_ANSWER = 64 * 1024


class Migration:
    """This key service's signing key, and its calls to the key services it migrates from."""

    def __init__(self, settings: CseSettings, clients: EngineClients) -> None:
        self.settings = settings
        self.clients = clients
        self._tls: ssl.SSLContext | None = None

    def jwks(self, address: str | None) -> dict[str, Any]:
        """The ``certs`` answer: the signing key's public JWK (none without a signing key)."""
        configured = self.settings.signing_key
        if configured is None:
            return {"keys": []}
        identity = self.settings.service_identity
        try:
            signing = self.clients.resolve(identity, address, configured, ObjectType.PRIVATE_KEY)
            public_uid, der = self.clients.public_key_der(identity, address, signing)
        except KmipError as exc:
            refused = refusal_of(exc, configured)
            raise CseError(refused.status, refused.message, "signing key") from None
        public = load_der_public_key(der)
        if not isinstance(public, RSAPublicKey):
            raise CseError(500, "the signing key is not an RSA key", "signing key")
        return {"keys": [rsa_jwk(public, public_uid)]}

    def token(self, original: str, resource_name: str, address: str | None) -> str:
        """A KACLS authentication token for the original key service's privilegedunwrap."""
        configured = self.settings.signing_key
        assert configured is not None  # cse_settings requires it with rewrap_sources
        identity = self.settings.service_identity
        try:
            signing = self.clients.resolve(identity, address, configured, ObjectType.PRIVATE_KEY)
            kid = self.clients.public_link(identity, address, signing)
            now = int(time.time())
            claims = {
                "iss": self.settings.kacls_url,
                "aud": KACLS_AUDIENCE,
                "kacls_url": original,
                "resource_name": resource_name,
                "iat": now,
                "exp": now + _TOKEN_SECONDS,
            }
            kmip = self.clients.client(identity, address)
            return compact_jws(
                {"alg": "RS256", "typ": "JWT", "kid": kid},
                claims,
                lambda data: kmip.sign(signing, data, padding="PKCS1_V1_5", hashing="SHA_256"),
            )
        except KmipError as exc:
            refused = refusal_of(exc, configured)
            raise CseError(refused.status, f"cannot sign the migration token: {refused.message}") from None

    def privileged_unwrap(
        self, original: str, wrapped_key: str, resource_name: str, reason: str, address: str | None
    ) -> tuple[bytes, str | None]:
        """The DEK (and the perimeter_id, when the original says) from ``original``'s
        privilegedunwrap; CseError 502 when it refuses or cannot be reached."""
        body = json.dumps(
            {
                "wrapped_key": wrapped_key,
                "resource_name": resource_name,
                "authentication": self.token(original, resource_name, address),
                "reason": reason,
            }
        ).encode()
        status, answer = self._post(original + "/privilegedunwrap", body)
        if status != 200:
            message = answer.get("message")
            said = message if isinstance(message, str) else ""
            raise CseError(502, f"the original key service answered {status}: {_printable(said)}", "rewrap")
        try:
            dek = b64decode(answer.get("key"))
        except ValueError:
            dek = b""
        if not 0 < len(dek) <= 128:
            raise CseError(502, "the original key service's answer holds no key", "rewrap")
        perimeter = answer.get("perimeter_id")
        return dek, perimeter if isinstance(perimeter, str) else None

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            ca = self.settings.rewrap_ca_file
            self._tls = ssl.create_default_context(cafile=None if ca is None else str(ca))
        return self._tls

    def _post(self, url: str, body: bytes) -> tuple[int, dict[str, Any]]:
        parts = urllib.parse.urlsplit(url)
        connection = http.client.HTTPSConnection(
            parts.hostname or "", parts.port or 443, timeout=self.settings.rewrap_timeout, context=self._context()
        )
        try:
            connection.request("POST", parts.path, body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            data = response.read(_MAX_ANSWER + 1)
            status = response.status
        except (OSError, http.client.HTTPException) as exc:  # TLS, time-out, refused connection
            raise CseError(502, f"cannot reach the original key service: {_printable(str(exc))}", "rewrap") from None
        finally:
            connection.close()
        try:
            answer = json.loads(data) if len(data) <= _MAX_ANSWER else None
        except ValueError:
            answer = None
        return status, answer if isinstance(answer, dict) else {}


def _printable(text: str, limit: int = 200) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text[:limit])
