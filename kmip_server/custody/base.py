"""The key custody interface."""

from __future__ import annotations

import abc
import dataclasses


class CustodyError(Exception):
    """The token refused or failed an operation (bad blob, token error). Never carries secrets."""


class CustodyUnavailable(CustodyError):
    """The token cannot be used at all: library missing, token absent, wrong PIN, no master key.

    Raised at start-up so the server stops with a clear message instead of serving without keys.
    """


class SeedingNotSupported(CustodyError):
    """The token's random number generator takes no seed from outside (``C_SeedRandom``
    answers ``CKR_RANDOM_SEED_NOT_SUPPORTED`` or ``CKR_FUNCTION_NOT_SUPPORTED``, as many HSMs
    whose generator is seeded from their own entropy source do)."""


@dataclasses.dataclass(frozen=True, slots=True)
class RandomGenerator:
    """What a custody's :meth:`KeyCustody.random` draws from, as far as it is known: KMIP
    reports it as the Random Number Generator of the keys the server generates. ``kind`` is
    ``"unspecified"`` or ``"drbg"`` (NIST SP 800-90A); ``drbg`` names the DRBG (``"ctr"``),
    ``cipher`` and ``bits`` its block cipher and key size."""

    kind: str = "unspecified"
    drbg: str | None = None
    cipher: str | None = None
    bits: int | None = None


UNSPECIFIED_GENERATOR = RandomGenerator()


class KeyCustody(abc.ABC):
    """Wraps and unwraps key values under a master key held by the token.

    ``context`` is authenticated but not encrypted (for example the object's Unique Identifier
    and type), so a wrapped value copied onto another object's row fails to unwrap.
    Implementations are used by one thread at a time per instance; each worker process opens
    its own.
    """

    @property
    @abc.abstractmethod
    def master_key_id(self) -> str:
        """A stable, non-secret name of the master key that :meth:`wrap` uses now."""

    @abc.abstractmethod
    def wrap(self, plaintext: bytes, context: bytes) -> bytes:
        """Encrypt-and-authenticate ``plaintext`` under the master key; returns an opaque blob."""

    @abc.abstractmethod
    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        """Reverse :meth:`wrap`; raises :class:`CustodyError` if the blob or context was altered."""

    @abc.abstractmethod
    def random(self, length: int) -> bytes:
        """``length`` bytes from the token's random number generator (new key material)."""

    def seed_random(self, data: bytes) -> None:
        """Mix ``data`` into the token's random number generator; raises
        :class:`SeedingNotSupported` if the token takes no seed."""
        raise SeedingNotSupported(f"{type(self).__name__} cannot seed its random number generator")

    @property
    def random_generator(self) -> RandomGenerator:
        """The generator behind :meth:`random`; unspecified unless the token is known."""
        return UNSPECIFIED_GENERATOR

    @abc.abstractmethod
    def close(self) -> None:
        """Release the session; the instance is unusable afterwards."""
