"""JSON Web Tokens for the cloud key services: verified against key sets read from files, and
made (for Google's KACLS-to-KACLS calls) with a signature the engine computes.

Verification is PyJWT's (signature, ``exp``/``nbf``/``iat`` with a clock skew, ``aud``,
``iss``, required claims); what is ours is choosing the key: the token's issuer must be one of
the configured ones, and its ``kid`` names the key in that issuer's set (a set of one key also
serves a token without ``kid``). The key sets are read from files named in the configuration
(offline: a key service must not depend on reaching an identity provider for each call), once,
when the configuration is read. Only asymmetric algorithms are accepted: ``none`` and the HMAC
ones never are (a public key must not be usable as an HMAC secret).

A :class:`TokenError` says what is wrong with a token without repeating it: tokens are bearer
credentials.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import RSAAlgorithm

__all__ = ["ALGORITHMS", "KeySets", "TokenError", "compact_jws", "rsa_jwk", "unverified_issuer", "verify"]

#: The signature algorithms a token may use (Google's and Microsoft Entra's tokens use RS256).
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
_MAX_TOKEN = 16 * 1024  # identity tokens are a few KB; anything far longer is not one


class TokenError(Exception):
    """A token that is not accepted; the message says why, never what the token holds."""


class KeySets:
    """Issuer -> the JSON Web Key Set its tokens are verified with."""

    def __init__(self, sets: Mapping[str, jwt.PyJWKSet]) -> None:
        self._sets = dict(sets)

    @classmethod
    def from_files(cls, files: Mapping[str, Path]) -> KeySets:
        """Read each issuer's JWKS file; ValueError names the file that cannot be used."""
        return cls({issuer: _read_jwks(path) for issuer, path in files.items()})

    @property
    def issuers(self) -> tuple[str, ...]:
        return tuple(self._sets)

    def __contains__(self, issuer: object) -> bool:
        return issuer in self._sets

    def __bool__(self) -> bool:
        return bool(self._sets)

    def key_for(self, issuer: str, kid: str | None) -> jwt.PyJWK:
        keys = self._sets[issuer]
        if kid is None:
            if len(keys.keys) == 1:
                return keys.keys[0]
            raise TokenError(f"the token names no key (kid) and issuer {issuer!r} has {len(keys.keys)}")
        for key in keys.keys:
            if key.key_id == kid:
                return key
        raise TokenError(f"issuer {issuer!r} has no key {_shown(kid)} (is its key set file current?)")


def _shown(value: object) -> str:
    """A claim or header value for a message: quoted, escaped and short (it is the caller's)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _read_jwks(path: Path) -> jwt.PyJWKSet:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"no key set file {path}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"cannot read the key set file {path}: {exc}") from None
    if isinstance(data, dict) and "keys" not in data and "kty" in data:
        data = {"keys": [data]}  # a single JWK is a set of one
    try:
        keys = jwt.PyJWKSet.from_dict(data)
    except (jwt.PyJWKError, jwt.PyJWKSetError, TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"{path} is not a JSON Web Key Set with usable public keys: {exc}") from None
    for key in keys.keys:
        if getattr(key.key, "private_bytes", None) is not None:
            raise ValueError(f"{path} holds a private key; a key set file must hold public keys only")
        if key.key_type == "oct":
            raise ValueError(f"{path} holds a symmetric (oct) key; only public keys verify tokens")
    return keys


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims, read only to choose the verifying key (PyJWT then checks the
    token whole). Read here rather than by PyJWT's unverified decoding, which validates each
    segment character by character in Python: twice more per token, a third of a verification."""
    parts = token.split(".")
    try:
        if len(parts) != 3:
            raise ValueError
        header, claims = (json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))) for part in parts[:2])
    except (ValueError, TypeError, binascii.Error, RecursionError):
        raise TokenError("not a signed JWT (header.payload.signature, base64url JSON)") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenError("not a signed JWT (its header and payload must be JSON objects)")
    return header, claims


def unverified_issuer(token: object) -> str | None:
    """The ``iss`` a token claims, unverified: which of several issuer kinds to verify it as."""
    if not isinstance(token, str) or len(token) > _MAX_TOKEN:
        return None
    try:
        issuer = _unverified(token)[1].get("iss")
    except TokenError:
        return None
    return issuer if isinstance(issuer, str) else None


def verify(
    token: object,
    keys: KeySets,
    audiences: Iterable[str],
    *,
    leeway: float,
    required: Iterable[str] = ("exp", "iat", "iss", "aud"),
) -> dict[str, Any]:
    """The claims of ``token`` once its issuer is one of ``keys``, its signature verifies with
    that issuer's key, it is within its validity (``leeway`` seconds of clock skew) and its
    audience is one of ``audiences``; else :class:`TokenError`."""
    if not isinstance(token, str) or not token:
        raise TokenError("missing (a JWT string is required)")
    if len(token) > _MAX_TOKEN:
        raise TokenError(f"longer than {_MAX_TOKEN} characters")
    header, unverified = _unverified(token)
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        raise TokenError(f"signature algorithm {_shown(algorithm)} is not accepted (only {', '.join(ALGORITHMS)})")
    issuer = unverified.get("iss")
    if not isinstance(issuer, str) or issuer not in keys:
        raise TokenError(
            f"issuer {_shown(issuer)} is not trusted here" if isinstance(issuer, str) else "no issuer (iss)"
        )
    kid = header.get("kid")
    key = keys.key_for(issuer, kid if isinstance(kid, str) else None)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=[algorithm],
            audience=list(audiences),
            issuer=issuer,
            leeway=leeway,
            options={"require": list(required)},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("expired") from None
    except jwt.ImmatureSignatureError:
        raise TokenError("not valid yet (nbf or iat in the future)") from None
    except jwt.InvalidAudienceError:
        raise TokenError("its audience (aud) is not accepted here") from None
    except jwt.InvalidSignatureError:
        raise TokenError("its signature does not verify") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError(f"the {exc.claim} claim is missing") from None
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        # PyJWT's other messages (a malformed claim, a key unfit for the algorithm) name the
        # problem, not the token's content.
        raise TokenError(str(exc) or type(exc).__name__) from None
    return claims


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def compact_jws(header: Mapping[str, Any], claims: Mapping[str, Any], sign: Callable[[bytes], bytes]) -> str:
    """A JWS in compact serialization (RFC 7515 7.1) whose signature ``sign`` computes over
    the signing input: how a key that never leaves the engine signs a token."""
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    ).encode("ascii")
    return signing_input.decode("ascii") + "." + _b64url(sign(signing_input))


def rsa_jwk(public_key: RSAPublicKey, kid: str) -> dict[str, Any]:
    """The public JWK (RFC 7517) of an RS256 signing key."""
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(public_key, as_dict=True)
    jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
    return jwk
