"""The key derivation functions Derive Key offers, on bytes: what each KMIP Derivation Method computes.

PBKDF2 (RFC 8018), HKDF (RFC 5869) and NIST SP 800-108 in counter mode are the ``cryptography``
package's own (``PBKDF2HMAC``, ``HKDF``, ``KBKDFHMAC`` / ``KBKDFCMAC``). ``cryptography`` offers SP
800-108 in counter mode only (its ``kbkdf.Mode`` has ``CounterMode`` alone, up to release 50), so
the feedback mode (SP 800-108r1 §4.2) and the double-pipeline iteration mode (§4.3) are written
here: each is a loop that concatenates the previous block, the counter and the fixed input and
hands them to the PRF, and the PRF (HMAC or CMAC) is ``cryptography``'s. KMIP's HASH and HMAC
methods are one call of ``cryptography``'s hash or HMAC; its ENCRYPT method uses the cipher
table of :mod:`.ciphers`, as Encrypt does.

The SP 800-108 functions take the fixed input data as one string, as KMIP's Derivation Data
gives it ("Label || 0x00 || Context", KMIP 1.4 §4.6), and as the NIST CAVP vectors give it: no
``[L]`` is appended; a client that wants the length bound in includes it. The counter, when
there is one, is ``counter_bits`` wide and big-endian; it precedes the fixed input in counter
mode and follows the chaining value (K(i-1), or A(i)) in the other two, the CAVP
``BEFORE_FIXED`` and ``AFTER_ITER`` layouts.

Every function returns exactly ``length`` bytes (the leftmost bytes of the method's output) or
raises :class:`DerivationError`, whose message never holds key or data bytes.
"""

from __future__ import annotations

import dataclasses

from cryptography.hazmat.primitives import cmac, hashes, hmac
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.kbkdf import KBKDFCMAC, KBKDFHMAC, CounterLocation, Mode
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

__all__ = [
    "DerivationError",
    "Prf",
    "TooLong",
    "digest",
    "hkdf",
    "kbkdf_counter",
    "kbkdf_double_pipeline",
    "kbkdf_feedback",
    "mac",
    "pbkdf2",
]

#: SP 800-108 counters are 8, 16, 24 or 32 bits wide (the widths NIST validates).
COUNTER_WIDTHS = (8, 16, 24, 32)


class DerivationError(ValueError):
    """The derivation cannot run with these parameters; the message is safe to show a client."""


class TooLong(DerivationError):
    """The method gives fewer bits than the Cryptographic Length asked for."""


@dataclasses.dataclass(frozen=True, slots=True)
class Prf:
    """The pseudorandom function of an SP 800-108 KDF: HMAC with ``hash``, or CMAC with AES."""

    hash: hashes.HashAlgorithm | None = None  # None: CMAC-AES

    @property
    def size(self) -> int:
        return self.hash.digest_size if self.hash is not None else algorithms.AES.block_size // 8

    def __call__(self, key: bytes, *parts: bytes) -> bytes:
        if self.hash is not None:
            h = hmac.HMAC(key, self.hash)
            for part in parts:
                h.update(part)
            return h.finalize()
        try:
            c = cmac.CMAC(algorithms.AES(key))
        except ValueError as exc:
            raise DerivationError(f"CMAC needs an AES key of 128, 192 or 256 bits, not {len(key) * 8}") from exc
        for part in parts:
            c.update(part)
        return c.finalize()


def _fit(output: bytes, length: int, what: str) -> bytes:
    if length > len(output):
        raise TooLong(f"{what} gives {len(output) * 8} bits; {length * 8} were asked for")
    return output[:length]


def digest(algorithm: hashes.HashAlgorithm, data: bytes, length: int) -> bytes:
    """KMIP HASH: the leftmost ``length`` bytes of the hash of ``data``."""
    h = hashes.Hash(algorithm)
    h.update(data)
    return _fit(h.finalize(), length, f"{algorithm.name.upper()}")


def mac(algorithm: hashes.HashAlgorithm, key: bytes, data: bytes, length: int) -> bytes:
    """KMIP HMAC: the leftmost ``length`` bytes of HMAC(key, data)."""
    return _fit(Prf(algorithm)(key, data), length, f"HMAC-{algorithm.name.upper()}")


def pbkdf2(algorithm: hashes.HashAlgorithm, password: bytes, salt: bytes, iterations: int, length: int) -> bytes:
    """PBKDF2 with HMAC-``algorithm`` (RFC 8018 §5.2)."""
    return PBKDF2HMAC(algorithm=algorithm, length=length, salt=salt, iterations=iterations).derive(password)


def hkdf(algorithm: hashes.HashAlgorithm, key: bytes, salt: bytes | None, info: bytes, length: int) -> bytes:
    """HKDF extract-and-expand (RFC 5869); no salt means HashLen zero bytes, as the RFC says."""
    limit = 255 * algorithm.digest_size
    if length > limit:
        raise TooLong(f"HKDF-{algorithm.name.upper()} gives at most {limit * 8} bits")
    return HKDF(algorithm=algorithm, length=length, salt=salt, info=info).derive(key)


def _blocks(prf: Prf, length: int, counter_bits: int) -> int:
    """n = ceil(L / h), which SP 800-108 bounds by 2^r - 1 when a counter of r bits is used."""
    if counter_bits and counter_bits not in COUNTER_WIDTHS:
        raise DerivationError(f"an SP 800-108 counter is 8, 16, 24 or 32 bits wide, not {counter_bits}")
    n = -(-length // prf.size)
    if counter_bits and n > 2**counter_bits - 1:
        raise TooLong(f"a {counter_bits}-bit counter allows at most {2**counter_bits - 1} blocks, not {n}")
    return n


def kbkdf_counter(prf: Prf, key: bytes, fixed: bytes, length: int, counter_bits: int = 32) -> bytes:
    """SP 800-108 counter mode: K(i) = PRF(KI, [i]_r || fixed)."""
    if not counter_bits:
        raise DerivationError("counter mode needs a counter")
    _blocks(prf, length, counter_bits)
    args = (Mode.CounterMode, length, counter_bits // 8, None, CounterLocation.BeforeFixed, None, None, fixed)
    try:
        if prf.hash is not None:
            return KBKDFHMAC(prf.hash, *args).derive(key)
        return KBKDFCMAC(algorithms.AES, *args).derive(key)
    except ValueError as exc:  # an AES key of another size for CMAC
        raise DerivationError(f"SP 800-108 counter mode refused its inputs: {exc}") from exc


def kbkdf_feedback(prf: Prf, key: bytes, fixed: bytes, iv: bytes, length: int, counter_bits: int = 32) -> bytes:
    """SP 800-108 feedback mode: K(0) = IV; K(i) = PRF(KI, K(i-1) {|| [i]_r} || fixed).
    ``counter_bits`` 0: no counter."""
    n = _blocks(prf, length, counter_bits)
    out, previous = [], iv
    for i in range(1, n + 1):
        counter = i.to_bytes(counter_bits // 8, "big") if counter_bits else b""
        previous = prf(key, previous, counter, fixed)
        out.append(previous)
    return b"".join(out)[:length]


def kbkdf_double_pipeline(prf: Prf, key: bytes, fixed: bytes, length: int, counter_bits: int = 32) -> bytes:
    """SP 800-108 double-pipeline iteration mode: A(0) = fixed; A(i) = PRF(KI, A(i-1));
    K(i) = PRF(KI, A(i) {|| [i]_r} || fixed). ``counter_bits`` 0: no counter."""
    n = _blocks(prf, length, counter_bits)
    out, chain = [], fixed
    for i in range(1, n + 1):
        chain = prf(key, chain)
        counter = i.to_bytes(counter_bits // 8, "big") if counter_bits else b""
        out.append(prf(key, chain, counter, fixed))
    return b"".join(out)[:length]
