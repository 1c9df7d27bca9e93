"""What the CSE and DKE tests' clients are made of, written from the published documents and
``cryptography`` alone, never from Strongroom's code: JWTs as RFC 7515/7519 define them
(base64url header.payload.signature, RS256 = RSASSA-PKCS1-v1_5 with SHA-256), JWKS as RFC 7517
does, and a JSON-over-HTTPS caller like a browser's or Office's."""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass
class Signer:
    """An issuer of tokens: its name, its RSA key and the key's id."""

    issuer: str
    kid: str
    key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))

    def jwks(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        jwk = {
            "kty": "RSA",
            "kid": self.kid,
            "use": "sig",
            "alg": "RS256",
            "n": _uint(numbers.n),
            "e": _uint(numbers.e),
        }
        return {"keys": [jwk]}

    def token(self, claims: dict[str, Any], *, lifetime: int = 300, header: dict[str, Any] | None = None) -> str:
        now = int(time.time())
        body = {"iss": self.issuer, "iat": now, "exp": now + lifetime, **claims}
        return sign(self.key, {"alg": "RS256", "typ": "JWT", "kid": self.kid, **(header or {})}, body)


def sign(key: rsa.RSAPrivateKey, header: dict[str, Any], claims: dict[str, Any]) -> str:
    parts = [
        b64url(json.dumps(part, separators=(",", ":")).encode())
        for part in (header, {k: v for k, v in claims.items() if v is not None})
    ]
    signing_input = ".".join(parts).encode("ascii")
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return signing_input.decode("ascii") + "." + b64url(signature)


def unsigned(claims: dict[str, Any]) -> str:
    """An ``alg: none`` token (RFC 7519 6.1), which a key service must never accept."""
    return ".".join(b64url(json.dumps(part).encode()) for part in ({"alg": "none", "typ": "JWT"}, claims)) + "."


def verify_rs256(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """The claims of an RS256 ``token`` whose signature verifies with the key of ``jwks`` its
    ``kid`` names (raises otherwise): how the tests' original KACLS checks a migration token."""
    header_b64, payload_b64, signature_b64 = token.split(".")
    header = json.loads(unb64url(header_b64))
    assert header["alg"] == "RS256", header
    jwk = next(key for key in jwks["keys"] if key["kid"] == header["kid"])
    n, e = (int.from_bytes(unb64url(jwk[part]), "big") for part in ("n", "e"))
    public = rsa.RSAPublicNumbers(e, n).public_key()
    public.verify(unb64url(signature_b64), f"{header_b64}.{payload_b64}".encode(), padding.PKCS1v15(), hashes.SHA256())
    claims: dict[str, Any] = json.loads(unb64url(payload_b64))
    return claims


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    host: str,
    port: int,
    context: ssl.SSLContext,
    method: str,
    path: str,
    body: dict[str, Any] | bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """One HTTPS request on its own connection (as a browser's first request is)."""
    connection = http.client.HTTPSConnection(host, port, timeout=15, context=context)
    try:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        sent = {"Content-Type": "application/json"} if data is not None else {}
        connection.request(method, path, data, {**sent, **(headers or {})})
        response = connection.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()
