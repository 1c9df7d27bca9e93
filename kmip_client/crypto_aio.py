"""The cryptographic services of :class:`~kmip_client.aio.AsyncClient`.

The same methods, arguments and results as the blocking client's
(:class:`~kmip_client.crypto_client.CryptoMethods`, where each is described), awaited; the
streams are used with ``async with`` and ``await stream.update(...)``::

    async with kmip.hasher(hashing="SHA-256") as digest:
        for chunk in chunks:
            await digest.update(chunk)
        value = await digest.finalize()
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Unpack

from . import streaming
from .calls import Calls
from .crypto_calls import CryptoOptions, EncryptResult, VerifyResult
from .crypto_client import raise_first_error
from .operations import BatchResult, Call, Version
from .protocol.spec.enums import BatchErrorContinuationOption, CryptographicAlgorithm, DerivationMethod, ObjectType
from .streaming import DEFAULT_PART_SIZE, AsyncCryptoStream

__all__ = ["AsyncCryptoMethods"]


class AsyncCryptoMethods:
    """Encrypt, Decrypt, Sign, Signature Verify, MAC, MAC Verify, Hash, RNG and Derive Key."""

    if TYPE_CHECKING:

        async def version(self) -> Version: ...

        async def _calls(self) -> Calls: ...

        async def _run(self, make: Any, *args: Any, **kwargs: Any) -> Any: ...

        async def _send(self, call: Call) -> Any: ...

        async def _send_batch(
            self, calls: Sequence[Call], option: BatchErrorContinuationOption
        ) -> list[BatchResult]: ...

    # ------------------------------------------------------------------ whole operations

    async def encrypt(
        self,
        uid: str,
        data: bytes,
        *,
        iv: bytes | None = None,
        aad: bytes | None = None,
        **options: Unpack[CryptoOptions],
    ) -> EncryptResult:
        """Encrypt ``data`` with key ``uid``: ciphertext, the IV to decrypt with, and the tag."""
        result: EncryptResult = await self._run(Calls.encrypt, uid, data, iv, aad, options)
        return result

    async def decrypt(
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
        return bytes(await self._run(Calls.decrypt, uid, data, iv, aad, tag, options))

    async def sign(self, uid: str, data: bytes, *, digested: bool = False, **options: Unpack[CryptoOptions]) -> bytes:
        """The signature of ``data`` (or of the digest ``data`` with ``digested``) by key ``uid``."""
        return bytes(await self._run(Calls.sign, uid, data, digested, options))

    async def verify(
        self, uid: str, data: bytes, signature: bytes, *, digested: bool = False, **options: Unpack[CryptoOptions]
    ) -> VerifyResult:
        """Whether ``signature`` over ``data`` is valid for key ``uid`` (true when valid)."""
        result: VerifyResult = await self._run(Calls.verify, uid, data, signature, digested, options)
        return result

    async def mac(self, uid: str, data: bytes, **options: Unpack[CryptoOptions]) -> bytes:
        """The MAC of ``data`` under key ``uid``."""
        return bytes(await self._run(Calls.mac, uid, data, options))

    async def mac_verify(self, uid: str, data: bytes, mac: bytes, **options: Unpack[CryptoOptions]) -> VerifyResult:
        """Whether ``mac`` is the MAC of ``data`` under key ``uid`` (true when valid)."""
        result: VerifyResult = await self._run(Calls.mac_verify, uid, data, mac, options)
        return result

    async def hash(self, data: bytes, **options: Unpack[CryptoOptions]) -> bytes:
        """The digest of ``data`` (give ``hashing=...``)."""
        return bytes(await self._run(Calls.hash, data, options))

    async def rng(self, length: int) -> bytes:
        """``length`` random bytes from the server's generator (RNG Retrieve)."""
        return bytes(await self._run(Calls.rng_retrieve, length))

    async def rng_seed(self, data: bytes) -> int:
        """Give the server's generator seed material (RNG Seed); how many bytes it took."""
        return int(await self._run(Calls.rng_seed, data))

    async def derive_key(
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
        """Derive a new key from ``base``; its Unique Identifier (see ``Client.derive_key``)."""
        uid = await self._run(
            Calls.derive_key,
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
        return str(uid)

    # ------------------------------------------------------------------ several in one message

    async def _many(self, make: Callable[[Calls], list[Call]]) -> list[Any]:
        calls = make(await self._calls())
        if not calls:
            return []
        return raise_first_error(await self._send_batch(calls, BatchErrorContinuationOption.STOP))

    async def encrypt_many(
        self, uid: str, messages: Iterable[bytes], *, aad: bytes | None = None, **options: Unpack[CryptoOptions]
    ) -> list[EncryptResult]:
        """Encrypt each of ``messages`` in one request message (give ``random_iv=True``)."""
        return await self._many(lambda calls: [calls.encrypt(uid, m, None, aad, options) for m in messages])

    async def decrypt_many(
        self,
        uid: str,
        sealed: Iterable[EncryptResult],
        *,
        aad: bytes | None = None,
        **options: Unpack[CryptoOptions],
    ) -> list[bytes]:
        """Decrypt each of ``sealed`` (from :meth:`encrypt_many`) in one request message."""
        return await self._many(lambda calls: [calls.decrypt(uid, s.data, s.iv, aad, s.tag, options) for s in sealed])

    # ------------------------------------------------------------------ streams

    def _stream(self, plan: streaming.StreamPlan[Any], part_size: int) -> AsyncCryptoStream[Any]:
        return AsyncCryptoStream(self._send, self.version, plan, part_size)

    def encryptor(
        self,
        uid: str,
        *,
        iv: bytes | None = None,
        aad: bytes | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        **options: Unpack[CryptoOptions],
    ) -> AsyncCryptoStream[bytes]:
        """A streamed Encrypt (``.tag`` and ``.iv`` after ``finalize``)."""
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
    ) -> AsyncCryptoStream[bytes]:
        """A streamed Decrypt (the ``tag`` is checked at the final part: act on no plaintext before)."""
        return self._stream(streaming.decrypt_plan(uid, iv, aad, tag, options), part_size)

    def signer(
        self, uid: str, *, digested: bool = False, part_size: int = DEFAULT_PART_SIZE, **options: Unpack[CryptoOptions]
    ) -> AsyncCryptoStream[bytes]:
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
    ) -> AsyncCryptoStream[VerifyResult]:
        """A streamed Signature Verify: ``finalize`` returns the VerifyResult."""
        return self._stream(streaming.verify_plan(uid, signature, digested, options), part_size)

    def mac_generator(
        self, uid: str, *, part_size: int = DEFAULT_PART_SIZE, **options: Unpack[CryptoOptions]
    ) -> AsyncCryptoStream[bytes]:
        """A streamed MAC: ``finalize`` returns the MAC."""
        return self._stream(streaming.mac_plan(uid, options), part_size)

    def mac_verifier(
        self, uid: str, mac: bytes, *, part_size: int = DEFAULT_PART_SIZE, **options: Unpack[CryptoOptions]
    ) -> AsyncCryptoStream[VerifyResult]:
        """A streamed MAC Verify: ``finalize`` returns the VerifyResult."""
        return self._stream(streaming.mac_verify_plan(uid, mac, options), part_size)

    def hasher(
        self, *, part_size: int = DEFAULT_PART_SIZE, **options: Unpack[CryptoOptions]
    ) -> AsyncCryptoStream[bytes]:
        """A streamed Hash (give ``hashing=...``): ``finalize`` returns the digest."""
        return self._stream(streaming.hash_plan(options), part_size)
