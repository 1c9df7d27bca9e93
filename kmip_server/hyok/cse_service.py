"""The Google Workspace client-side encryption key service (KACLS) on the admin listener.

Google's CSE API reference, as published, under ``kacls_url``'s path (``[cse]``, cse_settings):

============================  =====================================================================
 POST .../wrap                 ``authentication``, ``authorization`` (role writer), ``key`` (the
                               base64 DEK, at most 128 bytes), ``reason`` -> ``{"wrapped_key"}``
 POST .../unwrap               ``authentication``, ``authorization`` (reader or writer),
                               ``wrapped_key``, ``reason`` -> ``{"key"}``
 POST .../privilegedunwrap     ``authentication`` (an IdP token, or another KACLS's token while it
                               migrates), ``resource_name``, ``wrapped_key``, ``reason`` -> ``{"key",
                               "perimeter_id"}``; the document's ACL is not consulted (Takeout)
 POST .../rewrap               ``authorization`` (role migrator), ``original_kacls_url``,
                               ``wrapped_key``, ``reason`` -> ``{"wrapped_key", "resource_key_hash"}``
 GET  .../status               ``{"server_type": "KACLS", "vendor_id", "version", "name",
                               "operations_supported"}``
 GET  .../certs                this KACLS's public JWKS (its migration tokens' signing key)
============================  =====================================================================

Every key operation is a KMIP request to the engine (engine_client) as an identity named from
the verified tokens, so the access policy decides it and the audit trail records it:
``cse:EMAIL`` for wrap and unwrap, ``cse-privileged:EMAIL`` for privilegedunwrap with an IdP
token, ``cse-kacls:ISSUER`` for one with another key service's token, ``cse-migrator:EMAIL`` for
rewrap, and ``service_identity`` for the signing key (rewrap's token, certs). Wrap is an
AES-256-GCM Encrypt under ``key`` (its newest Active version when it is a Name) with an IV the
engine draws; unwrap a Decrypt under the key the blob names (cse_blob: the resource_name,
perimeter_id and key id are the AAD), whichever version that is: the access policy decides which
keys a caller may unwrap with (grant Decrypt on the key's versions, by Object Group say).

Failures are Google's structured error reply ``{"code", "message", "details"}`` with the HTTP
status: 400 (INVALID_ARGUMENT: the body), 401 (UNAUTHENTICATED: a token does not verify), 403
(PERMISSION_DENIED: a verified token or the access policy does not allow it), 502 (the original
key service of a rewrap refused or is unreachable), 500 (our fault; logged, never the body).
Browsers call the key service directly, so the origins in ``allowed_origins`` get CORS answers
(preflight ``OPTIONS`` included).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.spec.enums import ObjectType, ResultReason

from .. import __version__
from ..transport.https_listener import Route, _Answer, _HttpsConnection, _Request
from . import cse_blob
from .cse_auth import (
    REWRAP_ROLES,
    UNWRAP_ROLES,
    WRAP_ROLES,
    Caller,
    CseError,
    authorization,
    caller,
    check_perimeter,
    kacls_caller,
    user_email,
)
from .cse_migration import Migration
from .cse_settings import CseSettings
from .engine_client import EngineClients, MessageHandler, refusal_of
from .json_api import b64decode, b64encode, json_answer, read_object
from .reloading import Staged

__all__ = ["CseService"]

log = logging.getLogger("strongroom.hyok.cse")

_POSTS = ("wrap", "unwrap", "privilegedunwrap", "rewrap")
_MAX_DEK = 128
_MAX_REASON = 1024
_MAX_WRAPPED = 1024  # Google's limit for wrapped_key
#: Seconds a worker reuses the key ``key`` names (one engine call per wrap instead of a Locate
#: and an Encrypt). A key retired meanwhile fails the Encrypt, which then finds the key afresh.
_REMEMBER_KEY = 5.0
_STALE = frozenset({ResultReason.WRONG_KEY_LIFECYCLE_STATE, ResultReason.ITEM_NOT_FOUND, ResultReason.OBJECT_NOT_FOUND})
_STATUS_TEXT = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 500: "INTERNAL"}

Operation = Callable[[dict[str, Any], str | None], dict[str, Any]]


def _invalid(message: str) -> CseError:
    return CseError(400, message, "INVALID_ARGUMENT")


def _string(data: dict[str, Any], field: str, *, limit: int = 4096, required: bool = True) -> str:
    value = data.get(field)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise _invalid(f"{field} is required (a string)")
    if len(value.encode()) > limit:
        raise _invalid(f"{field} is longer than {limit} bytes")
    return value


def _bytes(data: dict[str, Any], field: str, limit: int) -> bytes:
    try:
        value = b64decode(_string(data, field, limit=2 * limit))
    except ValueError as exc:
        raise _invalid(f"{field}: {exc}") from None
    if not value or len(value) > limit:
        raise _invalid(f"{field} must hold 1 to {limit} bytes")
    return value


def _blob(data: dict[str, Any]) -> cse_blob.WrappedKey:
    try:
        return cse_blob.unpack(_bytes(data, "wrapped_key", _MAX_WRAPPED))
    except ValueError as exc:
        raise _invalid(str(exc)) from None


class CseService:
    """The key service of one worker: its settings and its way into the engine."""

    def __init__(self, settings: CseSettings, handler: MessageHandler) -> None:
        self.settings = settings
        self.clients = EngineClients(handler)
        self.migration = Migration(settings, self.clients)
        #: [cse] as SIGHUP re-read it (new JWKS files when an identity provider rotates its keys).
        self.staged = Staged("cse", settings, lambda read: read.kacls_url)

    def _take_reloaded(self) -> None:
        settings = self.staged.take()
        if settings is not None:
            self.settings = settings
            self.migration = Migration(settings, self.clients)  # its TLS context may name a new CA file

    def routes(self) -> dict[str, Route]:
        base = self.settings.path
        operations: dict[str, Operation] = {
            "wrap": self.wrap,
            "unwrap": self.unwrap,
            "privilegedunwrap": self.privileged_unwrap,
            "rewrap": self.rewrap,
        }
        found = {
            f"{base}/{name}": Route(("POST", "OPTIONS"), self._route(name, operation), takes_body=True)
            for name, operation in operations.items()
        }
        found[f"{base}/status"] = Route(("GET", "OPTIONS"), self._route("status", lambda data, address: self.status()))
        found[f"{base}/certs"] = Route(
            ("GET", "OPTIONS"), self._route("certs", lambda data, ad: self.migration.jwks(ad))
        )
        return found

    # ---- the operations: a request body's JSON object in, the answer's out

    def wrap(self, data: dict[str, Any], address: str | None) -> dict[str, Any]:
        dek = _bytes(data, "key", _MAX_DEK)
        _string(data, "reason", limit=_MAX_REASON, required=False)
        user = caller(self.settings, data.get("authentication"), "cse:")
        claims = authorization(self.settings, data.get("authorization"), WRAP_ROLES, user)
        perimeter = claims.get("perimeter_id", "")
        check_perimeter(self.settings, perimeter, user)
        return {"wrapped_key": b64encode(self._wrap(user.identity, address, dek, claims["resource_name"], perimeter))}

    def unwrap(self, data: dict[str, Any], address: str | None) -> dict[str, Any]:
        blob = _blob(data)
        _string(data, "reason", limit=_MAX_REASON, required=False)
        user = caller(self.settings, data.get("authentication"), "cse:")
        claims = authorization(self.settings, data.get("authorization"), UNWRAP_ROLES, user)
        _same_resource(blob, claims["resource_name"])
        check_perimeter(self.settings, claims.get("perimeter_id", ""), user)
        return {"key": b64encode(self._unwrap(user.identity, address, blob))}

    def privileged_unwrap(self, data: dict[str, Any], address: str | None) -> dict[str, Any]:
        blob = _blob(data)
        resource = _string(data, "resource_name", limit=512)
        _string(data, "reason", limit=_MAX_REASON, required=False)
        token = data.get("authentication")
        who: Caller | None = kacls_caller(self.settings, token, resource)
        if who is None:
            who = caller(self.settings, token, "cse-privileged:")
            check_perimeter(self.settings, blob.perimeter_id, who)
        _same_resource(blob, resource)
        dek = self._unwrap(who.identity, address, blob)
        return {"key": b64encode(dek), "perimeter_id": blob.perimeter_id}

    def rewrap(self, data: dict[str, Any], address: str | None) -> dict[str, Any]:
        wrapped = _string(data, "wrapped_key", limit=2 * _MAX_WRAPPED)
        original = _string(data, "original_kacls_url", limit=2048).rstrip("/")
        reason = _string(data, "reason", limit=_MAX_REASON, required=False)
        claims = authorization(self.settings, data.get("authorization"), REWRAP_ROLES, None)
        identity = "cse-migrator:" + user_email(claims, "authorization")
        resource: str = claims["resource_name"]
        if original == self.settings.kacls_url:
            # A DEK of our own (wrapped under an earlier key): rewrapped under the current one.
            blob = _blob(data)
            _same_resource(blob, resource)
            dek, perimeter = self._unwrap(identity, address, blob), blob.perimeter_id
        elif original in self.settings.rewrap_sources:
            dek, said = self.migration.privileged_unwrap(original, wrapped, resource, reason, address)
            perimeter = claims.get("perimeter_id", "") if said is None else said
        else:
            raise CseError(403, "original_kacls_url is not a key service this one migrates from", "PERMISSION_DENIED")
        # The hash is over the wrap's resource and perimeter: Google compares it with the
        # original key service's digest of the same DEK.
        return {
            "wrapped_key": b64encode(self._wrap(identity, address, dek, resource, perimeter)),
            "resource_key_hash": b64encode(cse_blob.resource_key_hash(dek, resource, perimeter)),
        }

    def status(self) -> dict[str, Any]:
        return {
            "server_type": "KACLS",
            "vendor_id": "Strongroom",
            "version": __version__,
            "name": self.settings.name,
            "operations_supported": [*_POSTS, "status", "certs"],
        }

    # ---- the engine calls

    def _wrap(self, identity: str, address: str | None, dek: bytes, resource: str, perimeter: str) -> bytes:
        try:
            return self._seal(identity, address, dek, resource, perimeter, retry=True)
        except _Stale:
            # The key remembered for the Name may have been retired since: find it afresh, once.
            return self._seal(identity, address, dek, resource, perimeter, retry=False)

    def _seal(
        self, identity: str, address: str | None, dek: bytes, resource: str, perimeter: str, *, retry: bool
    ) -> bytes:
        key = self.settings.key
        try:
            key = self.clients.resolve(identity, address, key, ObjectType.SYMMETRIC_KEY, remember=_REMEMBER_KEY)
            aad = cse_blob.header(key, resource, perimeter)
            sealed = self.clients.client(identity, address).encrypt(
                key, dek, aad=aad, mode="GCM", random_iv=True, iv_length=8 * cse_blob.IV_LENGTH, tag_length=16
            )
        except ValueError as exc:
            raise _invalid(str(exc)) from None
        except KmipError as exc:
            if retry and exc.reason in _STALE and self.clients.forget(self.settings.key, ObjectType.SYMMETRIC_KEY):
                raise _Stale from None
            raise _refused(exc, key) from None
        if sealed.iv is None or len(sealed.iv) != cse_blob.IV_LENGTH or len(sealed.tag or b"") != cse_blob.TAG_LENGTH:
            raise CseError(500, "the engine's AES-GCM answer has no 12-byte IV and 16-byte tag", "INTERNAL")
        return aad + sealed.iv + (sealed.tag or b"") + sealed.data

    def _unwrap(self, identity: str, address: str | None, blob: cse_blob.WrappedKey) -> bytes:
        try:
            return self.clients.client(identity, address).decrypt(
                blob.key_id, blob.ciphertext, iv=blob.iv, aad=blob.header, tag=blob.tag, mode="GCM", tag_length=16
            )
        except KmipError as exc:
            raise _refused(exc, blob.key_id) from None

    # ---- HTTP

    def _route(self, name: str, operation: Operation) -> Callable[[_HttpsConnection, _Request, bytes], _Answer]:
        def answer(connection: _HttpsConnection, request: _Request, body: bytes) -> _Answer:
            self._take_reloaded()
            cors = self._cors(request)
            if request.method == "OPTIONS":
                return _Answer(204, "text/plain", b"", headers=cors)
            address = connection._peer
            try:
                data = read_object(body) if request.method == "POST" else {}
                result = operation(data, address)
            except ValueError as exc:
                return _error(CseError(400, str(exc), "INVALID_ARGUMENT"), name, address, cors)
            except CseError as refused:
                return _error(refused, name, address, cors)
            except Exception:
                # A bug or a failing store, not the caller's input; the body is never logged.
                log.exception("CSE %s failed for %s", name, address)
                return _error(
                    CseError(500, "internal error; the key service's log says more", "INTERNAL"), name, address, cors
                )
            return json_answer(200, result, cors)

        return answer

    def _cors(self, request: _Request) -> tuple[tuple[str, str], ...]:
        origin = next((value for name, value in request.headers if name == "origin"), None)
        if origin is None or origin.rstrip("/") not in self.settings.allowed_origins:
            return ()
        return (
            ("Access-Control-Allow-Origin", origin),
            ("Vary", "Origin"),
            ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
            ("Access-Control-Allow-Headers", "Content-Type, Authorization"),
            ("Access-Control-Max-Age", "3600"),
        )


class _Stale(Exception):
    """The key remembered for ``key`` failed: _wrap finds it afresh."""


def _same_resource(blob: cse_blob.WrappedKey, resource: str) -> None:
    if blob.resource_name != resource:
        raise CseError(403, "wrapped_key was wrapped for another resource_name", "PERMISSION_DENIED")


def _refused(error: KmipError, key_uid: str) -> CseError:
    refused = refusal_of(error, key_uid)
    return CseError(refused.status, refused.message, _STATUS_TEXT.get(refused.status, "INTERNAL"))


def _error(refused: CseError, name: str, address: str | None, cors: tuple[tuple[str, str], ...]) -> _Answer:
    log.info("CSE %s refused for %s: %d %s", name, address, refused.status, refused.message)
    body = {"code": refused.status, "message": refused.message, "details": refused.details}
    return json_answer(refused.status, body, cors)
