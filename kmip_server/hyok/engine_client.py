"""The cloud key services' way into the engine: the KMIP client library over the worker's
dispatcher, as a named identity.

Each call is a KMIP request message that ``Dispatcher.handle`` decodes, authorizes, runs and
audits like one from a TLS client, under a :class:`ClientIdentity` that the service names from
the token it verified (no certificate: the policy sees the name, and its ``CN`` field, alone).
The client library builds the messages and reads the answers, so no operation is re-written here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kmip_client import Client
from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.model.attributes import Link
from kmip_client.protocol.spec.enums import KeyFormatType, LinkType, ObjectType, ResultReason, State

from ..engine.identity import ClientIdentity

__all__ = ["EngineClients", "Refusal", "refusal_of"]

MessageHandler = Callable[[bytes, ClientIdentity], bytes]
_VERSION = (2, 1)  # the engine's newest: Authenticated Encryption Additional Data needs 1.4 or later


class _EngineTransport:
    """A client transport that hands each request message to the dispatcher as one identity."""

    def __init__(self, handler: MessageHandler, identity: ClientIdentity) -> None:
        self._handler = handler
        self._identity = identity

    def exchange(self, request: bytes, *, idempotent: bool) -> bytes:
        return self._handler(request, self._identity)


class EngineClients:
    """KMIP clients of the engine, one per call, each acting as the identity it is given."""

    def __init__(self, handler: MessageHandler) -> None:
        self._handler = handler
        self._public_links: dict[str, str] = {}  # private key -> its public key (a Link never changes)
        self._resolved: dict[tuple[str, int], tuple[float, str]] = {}  # (Name, type) -> (until, uid)

    def client(self, identity: str, address: str | None) -> Client:
        who = ClientIdentity(identity, address=address)
        return Client(transport=_EngineTransport(self._handler, who), version=_VERSION)

    def resolve(
        self, identity: str, address: str | None, ref: str, object_type: ObjectType, *, remember: float = 0.0
    ) -> str:
        """The Unique Identifier ``ref`` means: the newest Active object of ``object_type``
        with that Name (a Locate, decided by the policy for ``identity``), else ``ref`` itself.

        ``remember``: seconds the answer may be reused (by any identity: the operation on the
        object is still decided for each one), so that a hot path is one engine call, not two;
        a caller whose operation then fails calls :meth:`forget` and resolves afresh.
        """
        key = (ref, int(object_type))
        if remember:
            known = self._resolved.get(key)
            if known is not None and known[0] > time.monotonic():
                return known[1]
        found = self.client(identity, address).locate(
            name=ref, object_type=object_type, state=State.ACTIVE, max_items=1
        )
        uid = found[0] if found else ref
        if remember and found:
            self._resolved[key] = (time.monotonic() + remember, uid)
        return uid

    def forget(self, ref: str, object_type: ObjectType) -> bool:
        """Drop what :meth:`resolve` remembers of ``ref``; whether it remembered anything."""
        return self._resolved.pop((ref, int(object_type)), None) is not None

    def public_link(self, identity: str, address: str | None, private_uid: str) -> str:
        """The Unique Identifier of the public key linked to private key ``private_uid`` (a Get
        Attributes the first time, decided by the policy for ``identity``; a Link never changes)."""
        public_uid = self._public_links.get(private_uid)
        if public_uid is None:
            attributes = self.client(identity, address).get_attributes(private_uid, ["Link"])
            public_uid = self._public_links[private_uid] = _public_link(attributes, private_uid)
        return public_uid

    def public_key_der(self, identity: str, address: str | None, private_uid: str) -> tuple[str, bytes]:
        """The Unique Identifier and SubjectPublicKeyInfo (DER) of the public key linked to
        private key ``private_uid``: a Get of it for ``identity``, every time."""
        public_uid = self.public_link(identity, address, private_uid)
        found = self.client(identity, address).get(public_uid, key_format=KeyFormatType.X_509)
        return public_uid, found.value


def _public_link(attributes: dict[str, list[Any]], private_uid: str) -> str:
    for link in attributes.get("Link", []):
        if isinstance(link, Link) and link.link_type == LinkType.PUBLIC_KEY_LINK and link.linked_object_identifier:
            return str(link.linked_object_identifier)
    raise KmipError(f"key {private_uid} has no Public Key Link (is it a private key?)", ResultReason.INVALID_FIELD)


class Refusal(Exception):
    """An engine failure as an HTTP service reports it: a status and a message for people."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def refusal_of(error: KmipError, key_uid: str) -> Refusal:
    """The HTTP refusal for a KMIP failure with key ``key_uid``. Denied and hidden read alike
    (the policy hides objects as missing), and a failed authenticated decryption says only
    that: KMIP's messages name no key material, but a cloud caller needs less than a KMIP one."""
    reason = error.reason
    if reason in (ResultReason.PERMISSION_DENIED, ResultReason.ITEM_NOT_FOUND, ResultReason.OBJECT_NOT_FOUND):
        return Refusal(403, f"the access policy does not let this identity use key {key_uid}")
    if reason == ResultReason.WRONG_KEY_LIFECYCLE_STATE:
        return Refusal(403, f"key {key_uid} may not be used in its state: {error.message}")
    if reason == ResultReason.CRYPTOGRAPHIC_FAILURE:
        return Refusal(400, "the wrapped data does not decrypt (altered, or wrapped for something else)")
    if reason == ResultReason.AUTHENTICATION_NOT_SUCCESSFUL:
        return Refusal(403, error.message)
    return Refusal(500, f"the key server failed: {reason.name.replace('_', ' ').title()}")
