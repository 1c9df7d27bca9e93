"""The cryptographic services of the blocking :class:`~kmip_client.Client`: the server's keys
encrypt, decrypt, sign, verify, MAC and derive without leaving it.

    with Client("kms:5696", ca="ca.crt", cert="app.crt", key="app.key") as kmip:
        sealed = kmip.encrypt(uid, b"secret", mode="GCM", random_iv=True, tag_length=16)
        plain = kmip.decrypt(uid, sealed.data, mode="GCM", iv=sealed.iv, tag=sealed.tag)
        assert kmip.verify(signing_key, b"doc", kmip.sign(signing_key, b"doc", hashing="SHA-256"))

Cryptographic Parameters are keyword arguments (:class:`~kmip_client.crypto_calls.CryptoOptions`);
a KMIP failure raises the :class:`~kmip_client.KmipError` subclass of its Result Reason (a wrong
tag or padding: :class:`~kmip_client.protocol.errors.CryptographicFailure`). Large inputs go in
parts with the streams (:meth:`CryptoMethods.encryptor` ..., :mod:`kmip_client.streaming`), and
several items in one message with :meth:`CryptoMethods.encrypt_many` or a
:meth:`~kmip_client.Client.batch`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Unpack

from . import streaming
from .calls import Calls
from .crypto_calls import CryptoOptions, EncryptResult, VerifyResult
from .operations import BatchResult, Call, Version
from .protocol.spec.enums import (
    BatchErrorContinuationOption,
    CryptographicAlgorithm,
    DerivationMethod,
    ObjectType,
)
from .streaming import DEFAULT_PART_SIZE, CryptoStream

__all__ = ["CryptoMethods", "CryptoBatchItems", "raise_first_error"]


def raise_first_error(results: Sequence[BatchResult]) -> list[Any]:
    """The ``value`` of every item, in order; raises the first failed item's error (or
    OperationPending for an item the server holds)."""
    for result in results:
        if result.error is not None:
            raise result.error
        if result.pending is not None:
            raise result.pending
    return [result.value for result in results]


class CryptoMethods:
    """Encrypt, Decrypt, Sign, Signature Verify, MAC, MAC Verify, Hash, RNG and Derive Key."""

    if TYPE_CHECKING:

        @property
        def version(self) -> Version: ...

        @property
        def _calls(self) -> Calls: ...

        def _run(self, call: Call) -> Any: ...

        def _send_batch(self, calls: Sequence[Call], option: BatchErrorContinuationOption) -> list[BatchResult]: ...

    # ------------------------------------------------------------------ whole operations

    def encrypt(
        self,
        uid: str,
        data: bytes,
        *,
        iv: bytes | None = None,
        aad: bytes | None = None,
        **options: Unpack[CryptoOptions],
    ) -> EncryptResult:
        """Encrypt ``data`` with key ``uid``: ciphertext, the IV to decrypt with, and the tag.

        ``iv`` is the IV/Counter/Nonce (or ``random_iv=True`` lets the server choose one);
        ``aad`` the additional authenticated data of GCM or CCM.
        """
        result: EncryptResult = self._run(self._calls.encrypt(uid, data, iv, aad, options))
        return result

    def decrypt(
        self,
        uid: str,
        data: bytes,
        *,
        iv: bytes | None = None,
        aad: bytes | None = None,
        tag: bytes | None = None,
        **options: Unpack[CryptoOptions],
    ) -> bytes:
        """Decrypt ``data`` with key ``uid``; a tag that does not match raises CryptographicFailure."""
        return bytes(self._run(self._calls.decrypt(uid, data, iv, aad, tag, options)))

    def sign(self, uid: str, data: bytes, *, digested: bool = False, **options: Unpack[CryptoOptions]) -> bytes:
        """The signature of ``data`` by private key ``uid`` (``digested``: ``data`` is already
        the hash to sign, sent as Digested Data)."""
        return bytes(self._run(self._calls.sign(uid, data, digested, options)))

    def verify(
        self, uid: str, data: bytes, signature: bytes, *, digested: bool = False, **options: Unpack[CryptoOptions]
    ) -> VerifyResult:
        """Whether ``signature`` over ``data`` is valid for key ``uid`` (true when valid). An
        invalid signature is a result, not an error."""
        result: VerifyResult = self._run(self._calls.verify(uid, data, signature, digested, options))
        return result

    def mac(self, uid: str, data: bytes, **options: Unpack[CryptoOptions]) -> bytes:
        """The MAC of ``data`` under key ``uid`` (an HMAC key, or AES with ``mode="CMAC"``)."""
        return bytes(self._run(self._calls.mac(uid, data, options)))

    def mac_verify(self, uid: str, data: bytes, mac: bytes, **options: Unpack[CryptoOptions]) -> VerifyResult:
        """Whether ``mac`` is the MAC of ``data`` under key ``uid`` (true when valid)."""
        result: VerifyResult = self._run(self._calls.mac_verify(uid, data, mac, options))
        return result

    def hash(self, data: bytes, **options: Unpack[CryptoOptions]) -> bytes:
        """The digest of ``data`` (give ``hashing="SHA-256"`` or another Hashing Algorithm)."""
        return bytes(self._run(self._calls.hash(data, options)))

    def rng(self, length: int) -> bytes:
        """``length`` random bytes from the server's generator (RNG Retrieve)."""
        return bytes(self._run(self._calls.rng_retrieve(length)))

    def rng_seed(self, data: bytes) -> int:
        """Give the server's generator seed material (RNG Seed); how many bytes it took."""
        return int(self._run(self._calls.rng_seed(data)))

    def derive_key(
        self,
        base: str | Sequence[str],
        method: DerivationMethod | str,
        *,
        key_length: int | None = 256,
        key_algorithm: CryptographicAlgorithm | str | None = CryptographicAlgorithm.AES,
        object_type: ObjectType = ObjectType.SYMMETRIC_KEY,
        derivation_data: bytes | None = None,
        salt: bytes | None = None,
        iterations: int | None = None,
        iv: bytes | None = None,
        name: str | Sequence[str] | None = None,
        usage_mask: int | None = None,
        attributes: Any = None,
        **options: Unpack[CryptoOptions],
    ) -> str:
        """Derive a new key on the server from the object(s) ``base`` by ``method`` (PBKDF2,
        HMAC, HKDF, Encrypt, Hash ...); returns the new key's Unique Identifier.

        ``key_length`` (bits) and ``key_algorithm`` describe the new key (None: not sent, as
        for Secret Data); the Cryptographic Parameters (``hashing=...``) go in the Derivation
        Parameters with ``salt``, ``iterations``, ``derivation_data`` and ``iv``.
        """
        call = self._calls.derive_key(
            base,
            method,
            object_type=object_type,
            algorithm=key_algorithm,
            length=key_length,
            derivation_data=derivation_data,
            salt=salt,
            iterations=iterations,
            iv=iv,
            name=name,
            usage_mask=usage_mask,
            extra=attributes,
            options=options,
        )
        return str(self._run(call))

    # ------------------------------------------------------------------ several in one message

    def _many(self, make: Callable[[Calls], list[Call]]) -> list[Any]:
        calls = make(self._calls)
        if not calls:
            return []
        return raise_first_error(self._send_batch(calls, BatchErrorContinuationOption.STOP))

    def encrypt_many(
        self, uid: str, messages: Iterable[bytes], *, aad: bytes | None = None, **options: Unpack[CryptoOptions]
    ) -> list[EncryptResult]:
        """Encrypt each of ``messages`` with key ``uid``, all in one request message; the
        results in order. Each needs its own IV: give ``random_iv=True`` (or rely on the key's
        parameters). Raises the first item's failure."""
        return self._many(lambda calls: [calls.encrypt(uid, m, None, aad, options) for m in messages])

    def decrypt_many(
        self,
        uid: str,
        sealed: Iterable[EncryptResult],
        *,
        aad: bytes | None = None,
        **options: Unpack[CryptoOptions],
    ) -> list[bytes]:
        """Decrypt each of ``sealed`` (what :meth:`encrypt_many` returned) with key ``uid``, in
        one request message; the plaintexts in order."""
        return self._many(lambda calls: [calls.decrypt(uid, s.data, s.iv, aad, s.tag, options) for s in sealed])

    # ------------------------------------------------------------------ streams

    def _stream(self, plan: streaming.StreamPlan[Any], part_size: int) -> CryptoStream[Any]:
        return CryptoStream(self._run, lambda: self.version, plan, part_size)

    def encryptor(
        self,
        uid: str,
        *,
        iv: bytes | None = None,
        aad: bytes | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        **options: Unpack[CryptoOptions],
    ) -> CryptoStream[bytes]:
        """A streamed Encrypt: ``update`` and ``finalize`` return ciphertext; ``.tag`` and
        ``.iv`` after ``finalize`` (see :mod:`kmip_client.streaming`)."""
        return self._stream(streaming.encrypt_plan(uid, iv, aad, options), part_size)

    def decryptor(
        self,
        uid: str,
        *,
        iv: bytes | None = None,
        aad: bytes | None = None,
        tag: bytes | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        **options: Unpack[CryptoOptions],
    ) -> CryptoStream[bytes]:
        """A streamed Decrypt; the ``tag`` goes with the final part, which is where a wrong one fails.

        Plaintext that ``update`` returns in an authenticated mode (GCM, CCM) is not yet
        authenticated: act on none of it before ``finalize`` has returned.
        """
        return self._stream(streaming.decrypt_plan(uid, iv, aad, tag, options), part_size)

    def signer(
        self, uid: str, *, digested: bool = False, part_size: int = DEFAULT_PART_SIZE, **options: Unpack[CryptoOptions]
    ) -> CryptoStream[bytes]:
        """A streamed Sign: ``finalize`` returns the signature."""
        return self._stream(streaming.sign_plan(uid, digested, options), part_size)

    def verifier(
        self,
        uid: str,
        signature: bytes,
        *,
        digested: bool = False,
        part_size: int = DEFAULT_PART_SIZE,
        **options: Unpack[CryptoOptions],
    ) -> CryptoStream[VerifyResult]:
        """A streamed Signature Verify of ``signature``: ``finalize`` returns the VerifyResult."""
        return self._stream(streaming.verify_plan(uid, signature, digested, options), part_size)

    def mac_generator(
        self, uid: str, *, part_size: int = DEFAULT_PART_SIZE, **options: Unpack[CryptoOptions]
    ) -> CryptoStream[bytes]:
        """A streamed MAC: ``finalize`` returns the MAC."""
        return self._stream(streaming.mac_plan(uid, options), part_size)

    def mac_verifier(
        self, uid: str, mac: bytes, *, part_size: int = DEFAULT_PART_SIZE, **options: Unpack[CryptoOptions]
    ) -> CryptoStream[VerifyResult]:
        """A streamed MAC Verify of ``mac``: ``finalize`` returns the VerifyResult."""
        return self._stream(streaming.mac_verify_plan(uid, mac, options), part_size)

    def hasher(self, *, part_size: int = DEFAULT_PART_SIZE, **options: Unpack[CryptoOptions]) -> CryptoStream[bytes]:
        """A streamed Hash (give ``hashing=...``): ``finalize`` returns the digest."""
        return self._stream(streaming.hash_plan(options), part_size)


class CryptoBatchItems:
    """The cryptographic items of a :class:`~kmip_client.Batch`; ``uid`` None means the ID
    Placeholder (the object of an earlier item). Each result's ``value`` is what the client
    method of the same name returns."""

    if TYPE_CHECKING:

        def _add(self, make: Callable[[Calls], Call]) -> Any: ...

        def _uid(self, uid: str | None) -> Any: ...

    def encrypt(
        self,
        uid: str | None,
        data: bytes,
        *,
        iv: bytes | None = None,
        aad: bytes | None = None,
        **options: Unpack[CryptoOptions],
    ) -> Any:
        """Add an Encrypt (arguments as :meth:`CryptoMethods.encrypt`)."""
        return self._add(lambda calls: calls.encrypt(self._uid(uid), data, iv, aad, options))

    def decrypt(
        self,
        uid: str | None,
        data: bytes,
        *,
        iv: bytes | None = None,
        aad: bytes | None = None,
        tag: bytes | None = None,
        **options: Unpack[CryptoOptions],
    ) -> Any:
        """Add a Decrypt."""
        return self._add(lambda calls: calls.decrypt(self._uid(uid), data, iv, aad, tag, options))

    def sign(self, uid: str | None, data: bytes, *, digested: bool = False, **options: Unpack[CryptoOptions]) -> Any:
        """Add a Sign."""
        return self._add(lambda calls: calls.sign(self._uid(uid), data, digested, options))

    def verify(
        self,
        uid: str | None,
        data: bytes,
        signature: bytes,
        *,
        digested: bool = False,
        **options: Unpack[CryptoOptions],
    ) -> Any:
        """Add a Signature Verify."""
        return self._add(lambda calls: calls.verify(self._uid(uid), data, signature, digested, options))

    def mac(self, uid: str | None, data: bytes, **options: Unpack[CryptoOptions]) -> Any:
        """Add a MAC."""
        return self._add(lambda calls: calls.mac(self._uid(uid), data, options))

    def mac_verify(self, uid: str | None, data: bytes, mac: bytes, **options: Unpack[CryptoOptions]) -> Any:
        """Add a MAC Verify."""
        return self._add(lambda calls: calls.mac_verify(self._uid(uid), data, mac, options))

    def hash(self, data: bytes, **options: Unpack[CryptoOptions]) -> Any:
        """Add a Hash."""
        return self._add(lambda calls: calls.hash(data, options))

    def rng(self, length: int) -> Any:
        """Add an RNG Retrieve of ``length`` bytes."""
        return self._add(lambda calls: calls.rng_retrieve(length))
