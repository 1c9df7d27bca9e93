"""The XKS key operations on Strongroom keys, each one or two KMIP messages (xks_kmip.py) of the
credential's identity: authorized, run and audited by the engine like any KMIP client's.

**Which key.** An XKS ``keyId`` is a Strongroom key's Name (the newest key carrying it), else
its Unique Identifier. What the key's attributes decide: ``keyUsage`` lists the XKS names of
the Cryptographic Usage Mask's bits; ``keyStatus`` is ENABLED for an Active key, DISABLED
otherwise; Encrypt and Decrypt need the keyId's key Active (the specification's
InvalidStateException for a disabled or deactivated key, although KMIP would let a
Deactivated key decrypt) with the usage bit (InvalidKeyUsageException without). A key that is
not AES-256 is InvalidKeyUsageException for Encrypt and Decrypt and
UnsupportedOperationException for GetKeyMetadata (version 1 of the API has only AES_256).

**Key versions.** Re-key, and the server's automatic rotation, give a key's Names to its
replacement: the Name then finds the new key, and ciphertexts made before could no longer be
decrypted. So every Encrypt returns a ``ciphertextMetadata`` naming the key version that made
it: a format byte (1) and the key's Unique Identifier as 16 bytes (Strongroom's identifiers are
UUIDs), bound into the AES-GCM AAD as the specification requires. Decrypt uses that version
when the keyId's current key is it or replaced it (a chain of Replacement Object Links from
the version to the current key, each hop read with Get Attributes); a version that is not the
keyId's is InvalidCiphertextException. The identity needs Decrypt (and Get Attributes for the
chain) on the old versions too: scope its grants by Object Group, which Re-key copies, rather
than by Name, which moves.

**One message on the common path.** Decrypt is one message: a Locate of the keyId restricted
to a usable key (:func:`xks_kmip.locate` with the Decrypt bit), and the Decrypt itself of the
version the metadata names (or, for a ciphertext without ours, of the key the Locate found,
through the ID Placeholder). The Locate runs in the operation's own read transaction, so a key
revoked, deactivated, destroyed or renamed a moment ago is never taken for the keyId's. When
the Locate finds nothing (the keyId is a Unique Identifier, or the key is unusable),
:meth:`XksKeys.facts` reads the key's attributes to say why, or names the key by Unique
Identifier; when it found another key than the metadata's version, the version chain decides.
In those cases the Decrypt has run already, and a refusal then withholds a plaintext the
audit trail records as decrypted.

Encrypt must know the key's identifier before it runs (it is in the AAD), so it asks in a
Locate of its own, and keeps the answer per identity and keyId for :data:`CURRENT_SECONDS`:
the engine itself refuses the Encrypt of a key destroyed, revoked or deactivated since (an
answer that then drops the remembered key and asks again), and a key replaced or renamed in
the meantime only means the old version made the ciphertext, which its metadata names. The
version chains found are kept too: that a key replaced another never changes.
"""

from __future__ import annotations

import dataclasses
import time
import uuid

from kmip_client.protocol.spec.enums import CryptographicUsageMask, Operation, State

from ..engine.identity import ClientIdentity
from . import xks_kmip as kmip
from .xks_kmip import KeyFacts, KmipEngine, MessageHandler
from .xks_protocol import ErrorName, XksError, gcm_aad

__all__ = ["CURRENT_SECONDS", "Sealed", "XksKeys", "version_metadata", "version_of"]

#: How long an Encrypt keeps using the key it found for a keyId before it looks again.
CURRENT_SECONDS = 5.0
_VERSION_FORMAT = 1
_MAX_CHAIN = 32  # replacements followed from a version to the keyId's current key
_MAX_REMEMBERED = 4096
_RETRY_REASONS = frozenset({ErrorName.KEY_NOT_FOUND, ErrorName.INVALID_STATE, ErrorName.INVALID_KEY_USAGE})
_ENCRYPT = CryptographicUsageMask.ENCRYPT
_DECRYPT = CryptographicUsageMask.DECRYPT


def version_metadata(uid: str) -> bytes | None:
    """The ciphertextMetadata naming key ``uid``; None for an identifier that is not a UUID."""
    try:
        parsed = uuid.UUID(uid)
    except ValueError:
        return None
    return bytes([_VERSION_FORMAT]) + parsed.bytes if str(parsed) == uid else None


def version_of(metadata: bytes | None) -> str | None:
    """The key version a ciphertextMetadata of :func:`version_metadata` names, else None."""
    if metadata is None or len(metadata) != 17 or metadata[0] != _VERSION_FORMAT:
        return None
    return str(uuid.UUID(bytes=metadata[1:]))


@dataclasses.dataclass(frozen=True)
class Sealed:
    """What Encrypt made: the key version, the AES-GCM output and the ciphertextMetadata."""

    uid: str
    ciphertext: bytes
    iv: bytes
    tag: bytes
    metadata: bytes | None


class XksKeys:
    """The engine's side of the XKS API, through ``handler`` (the worker's Dispatcher.handle)."""

    def __init__(self, handler: MessageHandler) -> None:
        self.engine = KmipEngine(handler)
        self._clock = time.monotonic
        self._current: dict[tuple[str, str], tuple[str, float]] = {}
        self._versions: set[tuple[str, str, str]] = set()  # (identity, old version, current key)

    # ---- GetKeyMetadata, and why a key cannot be used

    def facts(self, key_id: str, identity: ClientIdentity) -> KeyFacts | None:
        """The key ``key_id`` names (by Name, else Unique Identifier); None if there is none
        the identity may see."""
        found, described = self.engine.run(identity, kmip.locate(key_id), kmip.get_facts(None))
        KmipEngine.check(found, Operation.LOCATE)
        uid = kmip.located(found)
        if uid is not None:
            KmipEngine.check(described, Operation.GET_ATTRIBUTES)
            return kmip.facts_of(uid, described.payload)
        (described,) = self.engine.run(identity, kmip.get_facts(key_id))
        if described.result_reason in kmip.NOT_FOUND:
            return None
        KmipEngine.check(described, Operation.GET_ATTRIBUTES)
        return kmip.facts_of(key_id, described.payload)

    def _usable(self, key_id: str, identity: ClientIdentity, usage: CryptographicUsageMask, action: str) -> str:
        """The key ``key_id`` names, if it may ``action``; else the XKS error saying why not."""
        facts = self.facts(key_id, identity)
        if facts is None or facts.gone:
            raise XksError(ErrorName.KEY_NOT_FOUND, f"no key is named or identified {key_id!r}")
        if not facts.aes_256:
            raise XksError(ErrorName.INVALID_KEY_USAGE, f"key {key_id!r} is not an AES-256 key")
        if facts.state != State.ACTIVE:
            raise XksError(ErrorName.INVALID_STATE, f"key {key_id!r} is {facts.state_name}, not Active")
        if not facts.usage_mask & usage:
            raise XksError(ErrorName.INVALID_KEY_USAGE, f"key {key_id!r} may not {action}: its usage mask lacks it")
        return facts.uid

    # ---- Encrypt

    def encrypt(self, key_id: str, identity: ClientIdentity, plaintext: bytes, aad: bytes | None) -> Sealed:
        remembered = self._remembered(key_id, identity)
        uid = remembered or self._resolve(key_id, identity)
        while True:
            metadata = version_metadata(uid)
            (done,) = self.engine.run(identity, kmip.encrypt(uid, plaintext, gcm_aad(aad, metadata)))
            try:
                KmipEngine.check(done, Operation.ENCRYPT)
            except XksError as refused:
                self._current.pop((identity.name, key_id), None)
                if remembered is None or refused.name not in _RETRY_REASONS:
                    raise
                remembered = None  # the key changed since: once more with the keyId's key now
                uid = self._resolve(key_id, identity)
                continue
            self._remember(key_id, identity, uid)
            payload = done.payload
            return Sealed(uid, payload.data, payload.iv_counter_nonce, payload.authenticated_encryption_tag, metadata)

    def _resolve(self, key_id: str, identity: ClientIdentity) -> str:
        (found,) = self.engine.run(identity, kmip.locate(key_id, _ENCRYPT))
        KmipEngine.check(found, Operation.LOCATE)
        return kmip.located(found) or self._usable(key_id, identity, _ENCRYPT, "encrypt")

    def _remembered(self, key_id: str, identity: ClientIdentity) -> str | None:
        known = self._current.get((identity.name, key_id))
        return known[0] if known is not None and known[1] > self._clock() else None

    def _remember(self, key_id: str, identity: ClientIdentity, uid: str) -> None:
        if len(self._current) >= _MAX_REMEMBERED:
            self._current.clear()
        self._current[(identity.name, key_id)] = (uid, self._clock() + CURRENT_SECONDS)

    # ---- Decrypt

    def decrypt(
        self,
        key_id: str,
        identity: ClientIdentity,
        ciphertext: bytes,
        iv: bytes,
        tag: bytes,
        aad: bytes | None,
        metadata: bytes | None,
    ) -> bytes:
        version = version_of(metadata)
        item = kmip.decrypt(version, ciphertext, iv, tag, gcm_aad(aad, metadata))
        found, done = self.engine.run(identity, kmip.locate(key_id, _DECRYPT), item)
        KmipEngine.check(found, Operation.LOCATE)
        current = kmip.located(found)
        if current is None:
            current = self._usable(key_id, identity, _DECRYPT, "decrypt")
            if version is None:  # the Decrypt had no key: run it with the one now known
                (done,) = self.engine.run(identity, kmip.decrypt(current, ciphertext, iv, tag, gcm_aad(aad, metadata)))
        KmipEngine.check(done, Operation.DECRYPT)
        if version is not None and version != current and not self._replaced(identity, version, current):
            raise XksError(ErrorName.INVALID_CIPHERTEXT, f"the ciphertext was made by a key that is not {key_id!r}")
        return bytes(done.payload.data)

    def decrypt_with(
        self, uid: str, identity: ClientIdentity, ciphertext: bytes, iv: bytes, tag: bytes, aad: bytes
    ) -> bytes:
        """Decrypt with key ``uid`` as it is (the check of an Encrypt's output, Appendix C)."""
        (done,) = self.engine.run(identity, kmip.decrypt(uid, ciphertext, iv, tag, aad))
        KmipEngine.check(done, Operation.DECRYPT)
        return bytes(done.payload.data)

    def _replaced(self, identity: ClientIdentity, version: str, current: str) -> bool:
        """Whether key ``current`` replaced ``version`` (directly or through other Re-keys)."""
        known = (identity.name, version, current)
        if known in self._versions:
            return True
        step = version
        for _ in range(_MAX_CHAIN):
            (links,) = self.engine.run(identity, kmip.get_links(step))
            replacement = kmip.replacement_of(links.payload) if kmip.ok(links) else None
            if replacement is None:
                return False
            if replacement == current:
                if len(self._versions) >= _MAX_REMEMBERED:
                    self._versions.clear()
                self._versions.add(known)
                return True
            step = replacement
        return False
