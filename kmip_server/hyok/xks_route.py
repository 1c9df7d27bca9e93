"""The AWS KMS External Key Store (XKS) proxy API on the admin listener.

With an ``[xks]`` section (xks_settings.py) the admin listener serves, under
``https://HOST:ADMIN_PORT{uri_prefix}/kms/xks/v1``, the four operations of the XKS proxy API
specification (github.com/aws/aws-kms-xksproxy-api-spec), each a POST with a JSON body:

=================================  =====================================================
 ``/keys/{keyId}/metadata``         GetKeyMetadata: keySpec, keyUsage, keyStatus
 ``/keys/{keyId}/encrypt``          Encrypt: AES-GCM; the ciphertextMetadata names the key
                                    version (xks_keys.py); the ciphertextDataIntegrityValue
                                    when asked, its output then decrypted once (Appendix C)
 ``/keys/{keyId}/decrypt``          Decrypt
 ``/health``                        GetHealthStatus: the readiness checks of /readyz
=================================  =====================================================

A GET of them is 405 (the specification's MUST), another path under the prefix
InvalidUriPathException. Each request is checked in this order: its path, the client
certificate when ``client_certificate_subject`` asks for mTLS (the connection's certificate,
verified by the TLS layer against ``[tls] client_ca``, must have that subject CN), the SigV4
signature of one of the configured credentials (xks_sigv4.py), the JSON body
(xks_protocol.py); then the key operation runs through the engine as a KMIP request of the
credential's ``identity`` (xks_keys.py), so the access policy decides it and the audit trail
records it. GetHealthStatus is authenticated but, as the specification requires, not put to
the policy; it reads the same checks as /readyz (one HMAC on the token and a database read)
and is not an audit record.

Every request is logged on one line at INFO: the operation, keyId, outcome and time, and the
requestMetadata the specification says to log (kmsRequestId, to find the call in CloudTrail,
kmsOperation, the principal and key ARNs), never the body. An answer slower than AWS KMS's
250 ms budget is logged as a warning.

Credentials rotate without a restart: SIGHUP (which reloads the access policy) also reads the
``[xks]`` section again in every worker and serves its credentials, Region and client
certificate subject from then on (a changed ``uri_prefix`` needs a restart).
"""

from __future__ import annotations

import functools
import hmac
import logging
import re
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from cryptography import x509
from cryptography.x509.oid import NameOID

from kmip_client.protocol.spec.enums import State

from .. import __version__
from ..engine.identity import ClientIdentity
from ..transport.https_listener import Route, _Answer, _HttpsConnection, _Request
from . import xks_protocol as protocol
from .xks_keys import XksKeys
from .xks_kmip import BUDGET_SECONDS
from .xks_protocol import ErrorName, Operation, XksError
from .xks_settings import XKS_API_PATH, XksCredential, XksSettings
from .xks_sigv4 import SignatureRefused, verify

if TYPE_CHECKING:
    from ..config import ServerConfig

__all__ = ["XksService", "xks_routes"]

log = logging.getLogger("strongroom.hyok.xks")

_JSON = "application/json"
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,128}\Z")
_KEY_OPERATIONS = {
    operation.value: operation for operation in (Operation.METADATA, Operation.ENCRYPT, Operation.DECRYPT)
}


def _answer(status: int, body: bytes) -> _Answer:
    return _Answer(status, _JSON, body)


@functools.lru_cache(maxsize=64)
def _common_names(der: bytes) -> tuple[str, ...]:
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError:
        return ()
    return tuple(str(attribute.value) for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME))


class _InForce(NamedTuple):
    """The settings a request is served under: one object, so that a reload (SIGHUP, which
    runs between two statements of the event loop's thread) never mixes two sections."""

    settings: XksSettings
    credentials: dict[str, XksCredential]  # by access key ID
    secrets: dict[str, str]  # the same keys: what SigV4 verification takes


class XksService:
    """The XKS API of one worker: its settings, credentials and the engine's handler."""

    def __init__(self, settings: XksSettings, handler: Callable[[bytes, ClientIdentity], bytes], node: str) -> None:
        self.keys = XksKeys(handler)
        self.node = node
        self.prefix = settings.uri_prefix
        self.api = settings.uri_prefix + XKS_API_PATH + "/"
        self._use(settings)

    def _use(self, settings: XksSettings) -> None:
        credentials = {c.access_key_id: c for c in settings.credentials}
        secrets = {c.access_key_id: c.secret_access_key for c in settings.credentials}
        self.in_force = _InForce(settings, credentials, secrets)

    def reload(self, settings: XksSettings | None) -> None:
        """Serve ``settings``' credentials, Region and client certificate subject from now on."""
        if settings is None:
            log.error("the [xks] section is gone or disabled; keeping the XKS settings in force (restart to stop it)")
            return
        if settings.uri_prefix != self.prefix:
            log.warning("[xks] uri_prefix changed to %r: it takes effect at the next restart", settings.uri_prefix)
            settings = XksSettings(
                self.prefix,
                settings.region,
                settings.credentials,
                settings.client_certificate_subject,
                settings.insecure_http,
            )
        self._use(settings)
        log.info("XKS credentials reloaded: %s", ", ".join(sorted(self.in_force.credentials)))

    # ---- one request

    def route(self, connection: _HttpsConnection, request: _Request, body: bytes) -> _Answer:
        started = time.monotonic()
        operation: Operation | None = None
        key_id = ""
        credential: XksCredential | None = None
        metadata: protocol.RequestMetadata | None = None
        in_force = self.in_force
        try:
            operation, key_id = self._operation(request.path)
            self._check_certificate(connection, in_force.settings.client_certificate_subject)
            credential = self._authenticate(request, body, in_force)
            if request.media_type != _JSON:
                raise XksError(ErrorName.VALIDATION, "the request body must be application/json")
            if operation is not Operation.HEALTH and not _KEY_ID.match(key_id):
                raise XksError(
                    ErrorName.VALIDATION, "a keyId is 1 to 128 letters, digits, '.', '-' and '_' (the specification's)"
                )
            identity = ClientIdentity(credential.identity, address=connection._peer)
            data = protocol.read_body(body)
            metadata = protocol.read_metadata(data, operation)
            answer_data = self._perform(connection, operation, key_id, identity, data, metadata)
            answer = _answer(200, protocol.json_body(answer_data))
            outcome = "200"
        except XksError as error:
            answer = _answer(error.name.status, protocol.error_body(error))
            outcome = f"{error.name.status} {error.name.title} ({error.message})"
        except Exception:
            # A bug here, not the caller's input; the body is not logged (it may hold plaintext).
            log.exception("the XKS request from %s failed", connection._peer)
            failure = XksError(ErrorName.INTERNAL, "internal error; the server's log says more")
            answer = _Answer(500, _JSON, protocol.error_body(failure), close=True)
            outcome = "500 InternalException"
        elapsed = time.monotonic() - started
        self._log(connection, operation, key_id, credential, metadata, outcome, elapsed)
        return answer

    def _operation(self, path: str) -> tuple[Operation, str]:
        """The operation and keyId of a path under the prefix; InvalidUriPathException else."""
        if path.startswith(self.api):
            rest = path[len(self.api) :]
            if rest == Operation.HEALTH.value:
                return Operation.HEALTH, ""
            parts = rest.split("/")
            if len(parts) == 3 and parts[0] == "keys" and parts[1] and parts[2] in _KEY_OPERATIONS:
                return _KEY_OPERATIONS[parts[2]], parts[1]
        raise XksError(ErrorName.INVALID_URI_PATH, f"no XKS API operation at this path; the API is at {self.api[:-1]}")

    def _check_certificate(self, connection: _HttpsConnection, subject: str | None) -> None:
        if subject is None:
            return
        identity = connection._identity
        der = identity.certificate if identity is not None else None
        if der is None:
            raise XksError(ErrorName.AUTHENTICATION_FAILED, "this proxy requires a TLS client certificate (mTLS)")
        if subject.lower() not in (name.lower() for name in _common_names(der)):
            raise XksError(
                ErrorName.AUTHENTICATION_FAILED, "the TLS client certificate's subject is not the one configured"
            )

    def _authenticate(self, request: _Request, body: bytes, in_force: _InForce) -> XksCredential:
        try:
            access_key_id = verify(
                request.method,
                request.target,
                request.headers,
                body,
                secrets=in_force.secrets,
                region=in_force.settings.region,
            )
        except SignatureRefused as refused:
            raise XksError(ErrorName.AUTHENTICATION_FAILED, f"SigV4: {refused}") from None
        return in_force.credentials[access_key_id]

    def _perform(
        self,
        connection: _HttpsConnection,
        operation: Operation,
        key_id: str,
        identity: ClientIdentity,
        data: dict[str, Any],
        metadata: protocol.RequestMetadata,
    ) -> dict[str, Any]:
        if operation is Operation.HEALTH:
            return self._health(connection)
        if operation is Operation.METADATA:
            return self._metadata(key_id, identity)
        if operation is Operation.ENCRYPT:
            return self._encrypt(key_id, identity, protocol.read_encrypt(data, metadata))
        request = protocol.read_decrypt(data, metadata)
        plaintext = self.keys.decrypt(
            key_id, identity, request.ciphertext, request.iv, request.tag, request.aad, request.ciphertext_metadata
        )
        return {"plaintext": protocol.b64(plaintext)}

    def _metadata(self, key_id: str, identity: ClientIdentity) -> dict[str, Any]:
        facts = self.keys.facts(key_id, identity)
        if facts is None or facts.gone:
            raise XksError(ErrorName.KEY_NOT_FOUND, f"no key is named or identified {key_id!r}")
        if not facts.aes_256:
            raise XksError(
                ErrorName.UNSUPPORTED_OPERATION, f"key {key_id!r} is not an AES-256 key, the only kind XKS v1 has"
            )
        status = "ENABLED" if facts.state == State.ACTIVE else "DISABLED"
        return {"keySpec": "AES_256", "keyUsage": facts.key_usage(), "keyStatus": status}

    def _encrypt(self, key_id: str, identity: ClientIdentity, request: protocol.EncryptRequest) -> dict[str, Any]:
        sealed = self.keys.encrypt(key_id, identity, request.plaintext, request.aad)
        answer = {
            "ciphertext": protocol.b64(sealed.ciphertext),
            "initializationVector": protocol.b64(sealed.iv),
            "authenticationTag": protocol.b64(sealed.tag),
        }
        if sealed.metadata is not None:
            answer["ciphertextMetadata"] = protocol.b64(sealed.metadata)
        if request.cdiv_wanted:
            # Appendix C: the value first, over the output as it is now, then a decryption of
            # that output, so that what the value vouches for is known to decrypt.
            value = protocol.cdiv(request.aad, sealed.metadata, sealed.iv, sealed.ciphertext, sealed.tag)
            aad = protocol.gcm_aad(request.aad, sealed.metadata)
            opened = self.keys.decrypt_with(sealed.uid, identity, sealed.ciphertext, sealed.iv, sealed.tag, aad)
            if not hmac.compare_digest(opened, request.plaintext):
                raise XksError(ErrorName.INTERNAL, "the encryption did not decrypt to its plaintext")
            answer["ciphertextDataIntegrityValue"] = value
        return answer

    def _health(self, connection: _HttpsConnection) -> dict[str, Any]:
        # Imported here: the admin package is loaded only where an admin listener runs.
        from ..admin.health import readiness

        view = getattr(connection._listener, "view", None)
        if view is None:
            raise XksError(ErrorName.INTERNAL, "no readiness checks on this listener")
        checks = readiness(view)["checks"]
        failed = {name: check.get("error", "") for name, check in checks.items() if not check["ok"]}
        if "token" in failed or "database" in failed:
            why = "; ".join(f"{name}: {error}" for name, error in failed.items())
            raise XksError(ErrorName.INTERNAL, f"the key manager cannot serve: {why}")
        return {
            "xksProxyFleetSize": 1,
            "xksProxyVendor": "Strongroom",
            "xksProxyModel": f"Strongroom XKS proxy {__version__}",
            "ekmVendor": "Strongroom",
            "ekmFleetDetails": [
                {
                    "id": self.node,
                    "model": f"Strongroom {__version__} key server, keys under a PKCS#11 token's master key",
                    "healthStatus": "DEGRADED" if failed else "ACTIVE",
                }
            ],
        }

    def _log(
        self,
        connection: _HttpsConnection,
        operation: Operation | None,
        key_id: str,
        credential: XksCredential | None,
        metadata: protocol.RequestMetadata | None,
        outcome: str,
        elapsed: float,
    ) -> None:
        shown = " ".join(
            f"{name}={value!r}"
            for name in protocol.LOGGED_METADATA
            if metadata is not None and (value := metadata.get(name)) is not None
        )
        level = logging.WARNING if elapsed > BUDGET_SECONDS else logging.INFO
        log.log(
            level,
            "XKS %s%s from %s as %s: %s in %.1f ms%s%s",
            operation.name.title() if operation is not None else "request",
            f" {key_id!r}" if key_id else "",
            connection._peer,
            credential.identity if credential is not None else "(not authenticated)",
            outcome,
            elapsed * 1000,
            f", over the {BUDGET_SECONDS * 1000:.0f} ms AWS KMS waits" if elapsed > BUDGET_SECONDS else "",
            f"; {shown}" if shown else "",
        )


def _reload_on_sighup(service: XksService, data_dir: Path) -> None:
    """Chain a reload of the ``[xks]`` section to the worker's SIGHUP handler (engine/app.py's
    reloads the policy)."""
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers belong to the main thread (an in-process test's server)
    previous = signal.getsignal(signal.SIGHUP)

    def reload(signum: int, frame: Any) -> None:
        from ..config import ConfigError, load_config

        try:
            service.reload(load_config(data_dir).xks)
        except ConfigError as exc:
            log.error("the XKS settings were not reloaded; the ones in force stay: %s", exc)
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGHUP, reload)


def xks_routes(config: ServerConfig, dispatcher: Any) -> dict[str, Route]:
    """The route serving the XKS API, for the admin listener (kmip_server/hyok)."""
    settings = config.xks
    assert settings is not None
    service = XksService(settings, dispatcher.handle, getattr(dispatcher, "node", "strongroom"))
    _reload_on_sighup(service, config.data_dir)
    # Every path under the prefix, so that a wrong one is answered in the API's own terms.
    key = settings.uri_prefix + "/" if settings.uri_prefix else "/kms/"
    return {key: Route(("POST",), service.route, takes_body=True, prefix=True)}
