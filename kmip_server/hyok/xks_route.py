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

A GET of the key operations is 405 (the specification's MUST), another path under the prefix
InvalidUriPathException. ``/health`` also answers a GET (and so a HEAD): the specification
and AWS KMS use POST for GetHealthStatus, but the issue this API was built for writes
``GET {prefix}/kms/xks/v1/health``, and ``curl --aws-sigv4`` checks are simplest that way. A
GET must be SigV4-signed like a POST (over an empty body); it needs no ``requestMetadata``
(it has no body) and gets the same answer. Each request is checked in this order: its path,
the client certificate when ``client_certificate_subject`` asks for mTLS (the connection's
certificate, verified by the TLS layer against ``[tls] client_ca``, must have that subject
CN), the SigV4 signature of one of the configured credentials (xks_sigv4.py), the
credential's request rate when it has ``max_requests_per_second`` (ThrottlingException over
it, xks_throttle.py), the JSON body (xks_protocol.py); then the key operation runs through
the engine as a KMIP request of the credential's ``identity`` (xks_keys.py), so the access
policy decides it and the audit trail records it. GetHealthStatus is authenticated but, as
the specification requires, not put to the policy; it reads the same checks as /readyz (one
HMAC on the token and a database read) and is not an audit record.

With ``insecure_http`` the same routes, served by the same :class:`XksService` (so a reload
applies to both), are also served as plain HTTP on 127.0.0.1 (transport/plain_http.py).

Every request is logged on one line at INFO: the operation, keyId, outcome and time, and the
requestMetadata the specification says to log (kmsRequestId, to find the call in CloudTrail,
kmsOperation, the principal and key ARNs), never the body. An answer slower than AWS KMS's
250 ms budget is logged as a warning.

Credentials rotate without a restart: SIGHUP (which reloads the access policy) also reads the
``[xks]`` section again in every worker and serves its credentials, Region, client
certificate subject and request rates from then on (a changed ``uri_prefix``, ``insecure_http``
or ``insecure_http_port`` needs a restart). A credential whose ``max_requests_per_second`` is
unchanged keeps its token bucket across the reload.
"""

from __future__ import annotations

import dataclasses
import functools
import hmac
import logging
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from cryptography import x509
from cryptography.x509.oid import NameOID

from kmip_client.protocol.spec.enums import State

from .. import __version__
from ..engine.identity import ClientIdentity
from ..transport.https_listener import Route, _Answer, _HttpsConnection, _Request
from . import xks_protocol as protocol
from .reloading import reload_on_sighup
from .xks_keys import XksKeys
from .xks_kmip import BUDGET_SECONDS
from .xks_protocol import ErrorName, Operation, XksError
from .xks_settings import XKS_API_PATH, XksCredential, XksSettings
from .xks_sigv4 import SignatureRefused, verify
from .xks_throttle import TokenBucket, buckets_for

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
    buckets: dict[str, TokenBucket]  # the same keys, those with max_requests_per_second


class XksService:
    """The XKS API of one worker: its settings, credentials and the engine's handler."""

    def __init__(self, settings: XksSettings, handler: Callable[[bytes, ClientIdentity], bytes], node: str) -> None:
        self.keys = XksKeys(handler)
        self.node = node
        self.prefix = settings.uri_prefix
        self.api = settings.uri_prefix + XKS_API_PATH + "/"
        self._use(settings, {})

    def _use(self, settings: XksSettings, buckets: dict[str, TokenBucket]) -> None:
        credentials = {c.access_key_id: c for c in settings.credentials}
        secrets = {c.access_key_id: c.secret_access_key for c in settings.credentials}
        self.in_force = _InForce(settings, credentials, secrets, buckets_for(settings.credentials, buckets))

    def reload(self, settings: XksSettings | None) -> None:
        """Serve ``settings``' credentials, Region, client certificate subject and request rates
        from now on (what is bound at start stays as it was)."""
        if settings is None:
            log.error("the [xks] section is gone or disabled; keeping the XKS settings in force (restart to stop it)")
            return
        started = self.in_force.settings
        for name in ("uri_prefix", "insecure_http", "insecure_http_port"):
            if getattr(settings, name) != getattr(started, name):
                log.warning(
                    "[xks] %s changed to %r: it takes effect at the next restart", name, getattr(settings, name)
                )
        settings = dataclasses.replace(
            settings,
            uri_prefix=started.uri_prefix,
            insecure_http=started.insecure_http,
            insecure_http_port=started.insecure_http_port,
        )
        self._use(settings, self.in_force.buckets)
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
            self._throttle(credential, in_force)
            if request.method == "POST":
                if request.media_type != _JSON:
                    raise XksError(ErrorName.VALIDATION, "the request body must be application/json")
                if operation is not Operation.HEALTH and not _KEY_ID.match(key_id):
                    raise XksError(
                        ErrorName.VALIDATION,
                        "a keyId is 1 to 128 letters, digits, '.', '-' and '_' (the specification's)",
                    )
                data = protocol.read_body(body)
                metadata = protocol.read_metadata(data, operation)
            else:  # a GET or HEAD of /health (its own route): no body to read (see the module notes)
                data, metadata = {}, protocol.RequestMetadata({})
            identity = ClientIdentity(credential.identity, address=connection._peer)
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

    @staticmethod
    def _throttle(credential: XksCredential, in_force: _InForce) -> None:
        bucket = in_force.buckets.get(credential.access_key_id)
        if bucket is not None and not bucket.take():
            raise XksError(
                ErrorName.THROTTLING,
                f"this credential is limited to {bucket.rate:g} requests a second by this proxy's worker "
                f"(max_requests_per_second); try again in {bucket.wait():.2f} s",
            )

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


def xks_routes(config: ServerConfig, dispatcher: Any) -> dict[str, Route]:
    """The route serving the XKS API, for the admin listener (kmip_server/hyok)."""
    settings = config.xks
    assert settings is not None
    service = XksService(settings, dispatcher.handle, getattr(dispatcher, "node", "strongroom"))
    reload_on_sighup(config.data_dir, "xks", service.reload)
    # Every path under the prefix, so that a wrong one is answered in the API's own terms.
    key = settings.uri_prefix + "/" if settings.uri_prefix else "/kms/"
    return {
        key: Route(("POST",), service.route, takes_body=True, prefix=True),
        # An exact path goes before the prefix: GET too here, the key operations stay POST only.
        service.api + Operation.HEALTH.value: Route(("POST", "GET"), service.route, takes_body=True),
    }
