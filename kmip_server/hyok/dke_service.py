"""Microsoft Purview Double Key Encryption on the admin listener, as Microsoft's DKE service
(the DoubleKeyEncryptionService sample and its key_store_tester) defines it, under ``url``'s
path (``[dke]``, dke_settings):

==================================  ===============================================================
 GET  .../NAME                       ``{"key": {"kty": "RSA", "n": base64 modulus, "e": 65537,
                                     "alg": "RS256", "kid": "URL/NAME/KEYID"}, "cache": {"exp":
                                     "yyyy-MM-ddTHH:mm:ss"}}``: the current key of NAME; anyone
 POST .../NAME/KEYID/decrypt         ``Authorization: Bearer JWT``; ``{"alg": "RSA-OAEP-256",
                                     "value": base64}`` -> ``{"value": base64}``
==================================  ===============================================================

The bearer token is verified against ``issuers`` (issuer -> its JWKS, a file) with ``audience``
as its ``aud``; without one, or with one that does not verify, the answer is 401 with the
challenge Microsoft's tester expects: ``WWW-Authenticate: Bearer realm="...",
authorization="...", resource="AUDIENCE"``. The user (``email`` claim, else ``upn``) decrypts as
identity ``dke:USER``: a KMIP Decrypt (RSA-OAEP, SHA-256 and MGF1 with SHA-256, as RSA-OAEP-256
is) with the private key KEYID, which must be one of NAME's, so the access policy decides and
the audit trail records it. NAME's keys are ``[dke.keys]`` entries, the current one first, each
a Strongroom Name (its newest Active private key, found by a Locate as ``service_identity``) or
a Unique Identifier; the public key is a KMIP Get of the current private key's linked public
key, as ``service_identity``.

Other answers are ``{"error": "..."}``: 400 a body, algorithm or ``protocol-version`` that is not
served (only 1.0), 403 refused by the access policy or a token that names no user, 404 a key
name or key id this service does not have, 405 another method, 500 our fault (logged).
"""

from __future__ import annotations

import datetime
import logging
import urllib.parse
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_der_public_key

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.spec.enums import ObjectType

from ..transport.https_listener import Route, _Answer, _HttpsConnection, _Request
from .dke_settings import DkeSettings
from .engine_client import EngineClients, MessageHandler, Refusal, refusal_of
from .json_api import b64decode, b64encode, json_answer, read_object
from .jwt_tokens import TokenError, verify
from .reloading import Staged

__all__ = ["DkeService"]

log = logging.getLogger("strongroom.hyok.dke")

ALGORITHM = "RSA-OAEP-256"
_PROTOCOL_VERSIONS = ("1.0",)
_MAX_CIPHERTEXT = 1024  # an RSA-8192 block; DKE keys are RSA-2048


class _Unauthenticated(Exception):
    """No bearer token, or one that does not verify: 401 with the challenge."""

    def __init__(self, message: str, token_given: bool) -> None:
        super().__init__(message)
        self.message = message
        self.token_given = token_given


class DkeService:
    """The DKE key store of one worker: its settings and its way into the engine."""

    def __init__(self, settings: DkeSettings, handler: MessageHandler) -> None:
        self.settings = settings
        self.clients = EngineClients(handler)
        self.prefix = settings.path + "/"
        #: [dke] as SIGHUP re-read it (new JWKS files when Entra rotates its keys, new key versions).
        self.staged = Staged("dke", settings, lambda read: read.url)

    def routes(self) -> dict[str, Route]:
        return {self.prefix: Route(("GET", "POST"), self._answer, prefix=True)}

    # ---- the two operations

    def public_key(self, name: str, address: str | None) -> dict[str, Any]:
        current = self._keys(name)[0]
        uid = current
        try:
            uid = self.clients.resolve(self.settings.service_identity, address, current, ObjectType.PRIVATE_KEY)
            _, der = self.clients.public_key_der(self.settings.service_identity, address, uid)
        except KmipError as exc:
            raise refusal_of(exc, uid) from None
        public = load_der_public_key(der)
        if not isinstance(public, RSAPublicKey):
            raise Refusal(500, f"key {name!r} is not an RSA key")
        numbers = public.public_numbers()
        modulus = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        answer: dict[str, Any] = {
            "key": {
                "kty": "RSA",
                "n": b64encode(modulus),
                "e": numbers.e,
                "alg": "RS256",
                "kid": f"{self.settings.url}/{name}/{uid}",
            }
        }
        if self.settings.cache_days:
            expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=self.settings.cache_days)
            answer["cache"] = {"exp": expires.strftime("%Y-%m-%dT%H:%M:%S")}
        return answer

    def decrypt(self, name: str, key_id: str, request: _Request, body: bytes, address: str | None) -> dict[str, Any]:
        claims = self._authenticated(request)
        versions = urllib.parse.parse_qs(request.query).get("protocol-version", ["1.0"])
        if len(versions) != 1 or versions[0].strip() not in _PROTOCOL_VERSIONS:
            raise Refusal(400, f"protocol-version must be one of {', '.join(_PROTOCOL_VERSIONS)}")
        self._check_key_id(name, key_id, address)
        try:
            data = read_object(body)
        except ValueError as exc:
            raise Refusal(400, str(exc)) from None
        if data.get("alg") != ALGORITHM:
            raise Refusal(400, f"alg must be {ALGORITHM}")
        try:
            ciphertext = b64decode(data.get("value"))
        except ValueError as exc:
            raise Refusal(400, f"value: {exc}") from None
        if not 0 < len(ciphertext) <= _MAX_CIPHERTEXT:
            raise Refusal(400, f"value must hold 1 to {_MAX_CIPHERTEXT} bytes")
        user = claims.get("email") or claims.get("upn")
        if not isinstance(user, str) or not user.strip():
            raise Refusal(403, "the token names no user (email or upn claim)")
        kmip = self.clients.client("dke:" + user.strip().lower(), address)
        try:
            plaintext = kmip.decrypt(
                key_id,
                ciphertext,
                algorithm="RSA",
                padding="OAEP",
                hashing="SHA_256",
                mask_generator="MGF1",
                mask_generator_hashing="SHA_256",
            )
        except KmipError as exc:
            raise refusal_of(exc, key_id) from None
        return {"value": b64encode(plaintext)}

    # ---- checks

    def _keys(self, name: str) -> tuple[str, ...]:
        uids = self.settings.keys.get(name)
        if uids is None:
            raise Refusal(404, f"no key named {name!r}")
        return uids

    def _check_key_id(self, name: str, key_id: str, address: str | None) -> None:
        """Refuse (404) a key id that is none of key ``name``'s: neither one of its entries nor
        the newest Active private key of an entry that is a Name."""
        entries = self._keys(name)
        if key_id in entries:
            return
        identity = self.settings.service_identity
        for entry in entries:
            try:
                if self.clients.resolve(identity, address, entry, ObjectType.PRIVATE_KEY) == key_id:
                    return
            except KmipError as exc:
                raise refusal_of(exc, entry) from None
        raise Refusal(404, f"key {name!r} has no key id {key_id!r}")

    def _authenticated(self, request: _Request) -> dict[str, Any]:
        values = [value for field, value in request.headers if field == "authorization"]
        if not values:
            raise _Unauthenticated("a bearer token is required", token_given=False)
        scheme, _, token = values[0].strip().partition(" ")
        if len(values) > 1 or scheme.lower() != "bearer" or not token.strip():
            raise _Unauthenticated("the Authorization header must be one 'Bearer <JWT>'", token_given=True)
        try:
            return verify(
                token.strip(), self.settings.issuers, (self.settings.audience,), leeway=self.settings.clock_skew
            )
        except TokenError as exc:
            raise _Unauthenticated(f"the bearer token is not accepted: {exc}", token_given=True) from None

    def _challenge(self, token_given: bool) -> tuple[tuple[str, str], ...]:
        settings = self.settings
        fields = [f'realm="{settings.realm}"', f'authorization="{settings.authorization_url}"']
        fields.append(f'resource="{settings.audience}"')
        if token_given:
            fields.append('error="invalid_token"')  # RFC 6750 3.1; no description: it may hold commas
        return (("WWW-Authenticate", "Bearer " + ", ".join(fields)),)

    # ---- HTTP

    def _answer(self, connection: _HttpsConnection, request: _Request, body: bytes) -> _Answer:
        self.settings = self.staged.take() or self.settings
        address = connection._peer
        parts = [urllib.parse.unquote(part) for part in request.path[len(self.prefix) :].split("/")]
        try:
            if len(parts) == 1 and parts[0]:
                if request.method not in ("GET", "HEAD"):
                    return json_answer(405, {"error": "a key's public key is read with GET"}, (("Allow", "GET"),))
                return json_answer(200, self.public_key(parts[0], address))
            if len(parts) == 3 and parts[2].lower() == "decrypt" and all(parts):
                if request.method != "POST":
                    return json_answer(405, {"error": "decrypt is a POST"}, (("Allow", "POST"),))
                return json_answer(200, self.decrypt(parts[0], parts[1], request, body, address))
            return json_answer(404, {"error": "DKE serves GET URL/NAME and POST URL/NAME/KEYID/decrypt"})
        except _Unauthenticated as refused:
            log.info("DKE request from %s unauthenticated: %s", address, refused.message)
            return json_answer(401, {"error": refused.message}, self._challenge(refused.token_given))
        except Refusal as refused:
            log.info("DKE request from %s refused: %d %s", address, refused.status, refused.message)
            return json_answer(refused.status, {"error": refused.message})
        except Exception:
            # A bug or a failing store, not the caller's input; the body is never logged.
            log.exception("DKE request from %s failed", address)
            return json_answer(500, {"error": "internal error; the key service's log says more"})
