"""Declarative tables of the symmetric ciphers, modes and paddings Encrypt and Decrypt use.

One :class:`Suite` per (Cryptographic Algorithm, Block Cipher Mode): the key lengths it takes,
its IV/Counter/Nonce lengths, the tag lengths of an authenticated mode, whether a Padding
Method applies, and the two functions that run it on the ``cryptography`` package. The
handlers in :mod:`.encryption` only look a suite up and call it; every length and combination
rule lives here, once, and the table is built at import (nothing per call).

A suite is *incremental* when output can be returned part by part in a stream (ECB, CBC, CFB,
OFB, CTR, GCM, ChaCha20): a non-final part runs ``update`` over the input so far, and what it
yields is a prefix of the final output. The others (CCM, XTS, the key wraps, ChaCha20-Poly1305)
have no such update in the library, or are defined over the whole input: they return
everything at the final part.

Errors are :class:`CipherError` with a :class:`Fault`; the handler turns the fault into the
Result Reason of the client's KMIP version. Messages never hold key, IV or data bytes.
"""

from __future__ import annotations

import dataclasses
import enum
import hmac
from collections.abc import Callable
from typing import Any, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.decrepit.ciphers import modes as decrepit_modes
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import keywrap, padding
from cryptography.hazmat.primitives.ciphers import Cipher, CipherAlgorithm, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305

from kmip_client.protocol.spec.enums import BlockCipherMode, CryptographicAlgorithm, PaddingMethod

from .. import legacy_algorithms as legacy

A = CryptographicAlgorithm
M = BlockCipherMode


class Fault(enum.Enum):
    BAD_PARAMETERS = "bad"  # a length or combination the suite does not take
    UNSUPPORTED = "unsupported"  # a suite, mode or padding this server does not offer
    MISSING_IV = "missing-iv"
    TAG_LENGTH = "tag-length"
    FAILED = "failed"  # authentication, padding or unwrap check failed: one message for all


class CipherError(Exception):
    def __init__(self, fault: Fault, message: str) -> None:
        super().__init__(message)
        self.fault = fault


def _bad(message: str) -> CipherError:
    return CipherError(Fault.BAD_PARAMETERS, message)


# One message whatever failed (tag, padding, integrity check value): no padding oracle.
_FAILED = "decryption failed: the data, IV, tag or additional data do not match the key"


@dataclasses.dataclass(slots=True)
class Job:
    """One run of a suite over all the input of an operation (or of a stream so far)."""

    key: bytes = dataclasses.field(repr=False)
    iv: bytes | None = dataclasses.field(repr=False)
    data: bytes = dataclasses.field(repr=False)
    final: bool = True
    aad: bytes | None = dataclasses.field(default=None, repr=False)
    tag: bytes | None = None  # Decrypt: the tag to verify
    tag_size: int = 0  # Encrypt: the tag length to produce
    padding: type[padding.PKCS7] | type[padding.ANSIX923] | None = None
    initial_counter: int | None = None
    counter_bits: int | None = None


Encrypt = Callable[["Suite", Job], tuple[bytes, bytes | None]]
Decrypt = Callable[["Suite", Job], bytes]


@dataclasses.dataclass(frozen=True, slots=True)
class Suite:
    name: str
    key_sizes: frozenset[int]  # bytes
    iv_sizes: frozenset[int] | None  # bytes; None: the suite takes no IV/Counter/Nonce
    random_iv_size: int  # bytes of a generated IV when the request gives no IV Length
    tag_sizes: frozenset[int]  # empty: not authenticated
    block: int  # bytes a Padding Method pads to; 0: padding does not apply
    incremental: bool
    encrypt: Encrypt
    decrypt: Decrypt
    algorithm: Callable[[bytes], CipherAlgorithm] | None = None
    mode: Callable[[bytes], modes.Mode] | None = None

    @property
    def authenticated(self) -> bool:
        return bool(self.tag_sizes)


# ----------------------------------------------------------------------------- Cipher contexts


def _cipher(suite: Suite, job: Job) -> Cipher[Any]:  # Any: the mode is the table's
    assert suite.algorithm is not None
    mode = suite.mode(job.iv or b"") if suite.mode is not None else None
    return Cipher(suite.algorithm(job.key), mode)


def _check_blocks(suite: Suite, job: Job) -> None:
    if job.final and suite.block and job.padding is None and len(job.data) % suite.block:
        raise _bad(f"{suite.name} without padding needs whole {suite.block}-byte blocks, got {len(job.data)} bytes")


def _context_encrypt(suite: Suite, job: Job) -> tuple[bytes, bytes | None]:
    _check_blocks(suite, job)
    data = job.data
    if job.padding is not None:
        padder = job.padding(suite.block * 8).padder()
        data = padder.update(data) + (padder.finalize() if job.final else b"")
    encryptor = _cipher(suite, job).encryptor()
    out = encryptor.update(data)
    if not job.final:
        return out, None
    return out + encryptor.finalize(), None


def _context_decrypt(suite: Suite, job: Job) -> bytes:
    if job.final and suite.block and len(job.data) % suite.block:
        raise _bad(f"{suite.name} ciphertext is whole {suite.block}-byte blocks, got {len(job.data)} bytes")
    decryptor = _cipher(suite, job).decryptor()
    out = decryptor.update(job.data)
    if job.final:
        out += decryptor.finalize()
    if job.padding is None:
        return out
    unpadder = job.padding(suite.block * 8).unpadder()
    try:
        return unpadder.update(out) + (unpadder.finalize() if job.final else b"")
    except ValueError:
        raise CipherError(Fault.FAILED, _FAILED) from None


# ----------------------------------------------------------------------------- counters


def _counter_block(
    job: Job, order: Literal["big", "little"], keystream_block: int, whole_iv_counter_bits: int
) -> bytes:
    """The first 16-byte counter block: the IV itself when it is a whole block, else the nonce
    and the Initial Counter Value in the rest of the block (Counter Length bits). Refuses data
    that would run the counter past its length: the library would carry into the nonce, which
    neither SP 800-38A's m-bit counter nor RFC 8439's 32-bit one does."""
    iv = job.iv or b""
    bits = job.counter_bits
    if bits is not None and (bits <= 0 or bits % 8 or bits > 128):
        raise _bad(f"Counter Length {bits} is not a whole number of bytes within the 128-bit block")
    blocks = -(-len(job.data) // keystream_block)
    if len(iv) == 16:
        if job.initial_counter is not None:
            raise _bad("the IV/Counter/Nonce is a whole counter block: Initial Counter Value does not apply")
        counter_bits = bits if bits is not None else whole_iv_counter_bits
        width = counter_bits // 8
        start = int.from_bytes(iv[-width:] if order == "big" else iv[:width], order)
        first = iv
    else:
        counter_bits = 128 - len(iv) * 8
        if bits is not None and bits != counter_bits:
            raise _bad(f"a {len(iv)}-byte nonce leaves a {counter_bits}-bit counter, not Counter Length {bits}")
        start = job.initial_counter or 0
        if not 0 <= start < 1 << counter_bits:
            raise _bad(f"Initial Counter Value does not fit a {counter_bits}-bit counter")
        count = start.to_bytes(counter_bits // 8, order)
        first = iv + count if order == "big" else count + iv
    if counter_bits < 128 and start + blocks > 1 << counter_bits:
        raise _bad(f"{len(job.data)} bytes would overflow the {counter_bits}-bit counter")
    return first


def _ctr(suite: Suite, job: Job) -> Job:
    return dataclasses.replace(job, iv=_counter_block(job, "big", 16, 128))


def _ctr_encrypt(suite: Suite, job: Job) -> tuple[bytes, bytes | None]:
    return _context_encrypt(suite, _ctr(suite, job))


def _ctr_decrypt(suite: Suite, job: Job) -> bytes:
    return _context_decrypt(suite, _ctr(suite, job))


def _chacha_iv(job: Job) -> bytes:
    """OpenSSL's ChaCha20 takes 16 bytes: the 32-bit block counter (little-endian) and RFC
    8439's 96-bit nonce, which is also the original ChaCha20's 64-bit counter and 64-bit nonce
    (the CS-BC-M-CHACHA20 cases use 8-byte nonces)."""
    iv = job.iv or b""
    if len(iv) != 8:
        return _counter_block(job, "little", 64, 32)
    start = job.initial_counter or 0
    if job.counter_bits not in (None, 64):
        raise _bad("an 8-byte ChaCha20 nonce goes with a 64-bit counter")
    if not 0 <= start or start + -(-len(job.data) // 64) > 1 << 64:
        raise _bad("Initial Counter Value does not fit the 64-bit counter")
    return start.to_bytes(8, "little") + iv


def _chacha(suite: Suite, job: Job) -> bytes:
    context = Cipher(algorithms.ChaCha20(job.key, _chacha_iv(job)), None).encryptor()
    return context.update(job.data) + (context.finalize() if job.final else b"")


def _chacha_encrypt(suite: Suite, job: Job) -> tuple[bytes, bytes | None]:
    return _chacha(suite, job), None


# ----------------------------------------------------------------------------- authenticated modes


def _gcm_encrypt(suite: Suite, job: Job) -> tuple[bytes, bytes | None]:
    assert job.iv is not None
    if job.final:  # one call into the library: the common whole Encrypt
        sealed = AESGCM(job.key).encrypt(job.iv, job.data, job.aad or None)
        return sealed[:-16], sealed[-16 : len(sealed) - 16 + job.tag_size]
    encryptor = Cipher(algorithms.AES(job.key), modes.GCM(job.iv)).encryptor()
    if job.aad:
        encryptor.authenticate_additional_data(job.aad)
    return encryptor.update(job.data), None


def _gcm_decrypt(suite: Suite, job: Job) -> bytes:
    assert job.iv is not None
    tag = job.tag
    if job.final and tag is not None and len(tag) == 16:
        try:
            return AESGCM(job.key).decrypt(job.iv, job.data + tag, job.aad or None)
        except InvalidTag:
            raise CipherError(Fault.FAILED, _FAILED) from None
    mode = modes.GCM(job.iv, tag, min_tag_length=len(tag)) if job.final and tag else modes.GCM(job.iv)
    decryptor = Cipher(algorithms.AES(job.key), mode).decryptor()
    if job.aad:
        decryptor.authenticate_additional_data(job.aad)
    out = decryptor.update(job.data)
    if not job.final:
        return out
    try:
        return out + decryptor.finalize()
    except InvalidTag:
        raise CipherError(Fault.FAILED, _FAILED) from None


def _ccm_encrypt(suite: Suite, job: Job) -> tuple[bytes, bytes | None]:
    assert job.iv is not None
    sealed = _ccm(job.key, job.tag_size).encrypt(job.iv, job.data, job.aad or None)
    return sealed[: -job.tag_size], sealed[-job.tag_size :]


def _ccm_decrypt(suite: Suite, job: Job) -> bytes:
    assert job.iv is not None and job.tag is not None
    try:
        return _ccm(job.key, len(job.tag)).decrypt(job.iv, job.data + job.tag, job.aad or None)
    except InvalidTag:
        raise CipherError(Fault.FAILED, _FAILED) from None


def _ccm(key: bytes, tag_size: int) -> AESCCM:
    return AESCCM(key, tag_length=tag_size)


def _chacha_poly_encrypt(suite: Suite, job: Job) -> tuple[bytes, bytes | None]:
    assert job.iv is not None
    sealed = ChaCha20Poly1305(job.key).encrypt(job.iv, job.data, job.aad or None)
    return sealed[:-16], sealed[-16 : len(sealed) - 16 + job.tag_size]


def _chacha_poly_decrypt(suite: Suite, job: Job) -> bytes:
    assert job.iv is not None and job.tag is not None
    aead = ChaCha20Poly1305(job.key)
    if len(job.tag) == 16:
        try:
            return aead.decrypt(job.iv, job.data + job.tag, job.aad or None)
        except InvalidTag:
            raise CipherError(Fault.FAILED, _FAILED) from None
    # A truncated tag (the profile's cases verify 12 bytes): the library verifies full tags
    # only, so recompute the full tag by sealing the candidate plaintext again (RFC 8439 §2.8:
    # the ciphertext is the keystream from block counter 1) and compare its prefix; the
    # plaintext is released only when it matches.
    keystream = Cipher(algorithms.ChaCha20(job.key, (1).to_bytes(4, "little") + job.iv), None).decryptor()
    plain = keystream.update(job.data) + keystream.finalize()
    expected = aead.encrypt(job.iv, plain, job.aad or None)[-16:]
    if not hmac.compare_digest(expected[: len(job.tag)], job.tag):
        raise CipherError(Fault.FAILED, _FAILED)
    return plain


# ----------------------------------------------------------------------------- whole-input modes


def _xts_check(suite: Suite, job: Job) -> None:
    if len(job.data) < 16:
        raise _bad(f"XTS needs at least 16 bytes of data, got {len(job.data)}")
    half = len(job.key) // 2
    if hmac.compare_digest(job.key[:half], job.key[half:]):
        raise _bad("an XTS key's two halves must differ (IEEE 1619-2018 §5.1)")


def _xts_encrypt(suite: Suite, job: Job) -> tuple[bytes, bytes | None]:
    _xts_check(suite, job)
    return _context_encrypt(suite, job)


def _xts_decrypt(suite: Suite, job: Job) -> bytes:
    _xts_check(suite, job)
    return _context_decrypt(suite, job)


def _wrap(wrap: Callable[[bytes, bytes], bytes], padded: bool) -> Encrypt:
    def encrypt(suite: Suite, job: Job) -> tuple[bytes, bytes | None]:
        if not padded and (len(job.data) < 16 or len(job.data) % 8):
            raise _bad(f"NIST Key Wrap takes a multiple of 8 bytes, at least 16; got {len(job.data)}")
        if padded and not job.data:
            raise _bad("AES Key Wrap with Padding needs at least one byte")
        return wrap(job.key, job.data), None

    return encrypt


def _unwrap(unwrap: Callable[[bytes, bytes], bytes]) -> Decrypt:
    def decrypt(suite: Suite, job: Job) -> bytes:
        try:
            return unwrap(job.key, job.data)
        except keywrap.InvalidUnwrap:
            raise CipherError(Fault.FAILED, _FAILED) from None

    return decrypt


# ----------------------------------------------------------------------------- the table

_AES_KEYS = frozenset({16, 24, 32})
_context = (_context_encrypt, _context_decrypt)


def _aes(key: bytes) -> CipherAlgorithm:
    return algorithms.AES(key)


def _tdes(key: bytes) -> CipherAlgorithm:
    return TripleDES(key)


def _block_suite(
    name: str, algorithm: Callable[[bytes], CipherAlgorithm], keys: frozenset[int], size: int, mode: M
) -> Suite:
    if mode == M.ECB:
        return Suite(name, keys, None, 0, frozenset(), size, True, *_context, algorithm, lambda iv: modes.ECB())
    if mode == M.CBC:
        return Suite(name, keys, frozenset({size}), size, frozenset(), size, True, *_context, algorithm, modes.CBC)
    builder = {M.CFB: decrepit_modes.CFB, M.OFB: decrepit_modes.OFB}[mode]
    return Suite(name, keys, frozenset({size}), size, frozenset(), 0, True, *_context, algorithm, builder)


SUITES: dict[tuple[int, int | None], Suite] = {
    **{(A.AES, mode): _block_suite(f"AES-{mode.name}", _aes, _AES_KEYS, 16, mode) for mode in (M.ECB, M.CBC, M.CFB, M.OFB)},
    **{(A.DES3, mode): _block_suite(f"3DES-{mode.name}", _tdes, frozenset({16, 24}), 8, mode) for mode in (M.ECB, M.CBC)},
    (A.AES, M.CTR): Suite(
        "AES-CTR", _AES_KEYS, frozenset(range(1, 17)), 16, frozenset(), 0, True, _ctr_encrypt, _ctr_decrypt, _aes, modes.CTR,
    ),
    (A.AES, M.GCM): Suite(
        "AES-GCM", _AES_KEYS, frozenset(range(8, 129)), 12, frozenset({4, 8, 12, 13, 14, 15, 16}), 0, True,  # SP 800-38D §5.2.1.2
        _gcm_encrypt, _gcm_decrypt,
    ),
    (A.AES, M.CCM): Suite(
        "AES-CCM", _AES_KEYS, frozenset(range(7, 14)), 12, frozenset({4, 6, 8, 10, 12, 14, 16}), 0, False,  # SP 800-38C §A.1
        _ccm_encrypt, _ccm_decrypt,
    ),
    (A.AES, M.XTS): Suite(
        "AES-XTS", frozenset({32, 64}), frozenset({16}), 16, frozenset(), 0, False,
        _xts_encrypt, _xts_decrypt, _aes, modes.XTS,
    ),
    (A.AES, M.NISTKEYWRAP): Suite(
        "AES-KW", _AES_KEYS, None, 0, frozenset(), 0, False, _wrap(keywrap.aes_key_wrap, False), _unwrap(keywrap.aes_key_unwrap)
    ),
    (A.AES, M.AESKEYWRAPPADDING): Suite(
        "AES-KWP", _AES_KEYS, None, 0, frozenset(), 0, False,
        _wrap(keywrap.aes_key_wrap_with_padding, True), _unwrap(keywrap.aes_key_unwrap_with_padding),
    ),
    (A.CHACHA20, None): Suite(
        "ChaCha20", frozenset({32}), frozenset({8, 12, 16}), 12, frozenset(), 0, True, _chacha_encrypt, _chacha,
    ),
    # RFC 8439 defines a 16-byte tag; the profile's cases also verify a 12-byte truncation.
    (A.CHACHA20POLY1305, None): Suite(
        "ChaCha20-Poly1305", frozenset({32}), frozenset({12}), 12, frozenset({12, 13, 14, 15, 16}), 0, False,
        _chacha_poly_encrypt, _chacha_poly_decrypt,
    ),
}  # fmt: skip
# ANS X9.102 AESKW is the key wrap of RFC 3394, which SP 800-38F names KW.
SUITES[(A.AES, M.X9_102_AESKW)] = SUITES[(A.AES, M.NISTKEYWRAP)]
SUITES[(A.CHACHA20POLY1305, M.AEAD)] = SUITES[(A.CHACHA20POLY1305, None)]

PADDINGS: dict[int | None, type[padding.PKCS7] | type[padding.ANSIX923] | None] = {
    None: None,
    PaddingMethod.NONE: None,
    PaddingMethod.PKCS5: padding.PKCS7,  # PKCS#5 padding generalised to the block size is PKCS#7
    PaddingMethod.ANSI_X9_23: padding.ANSIX923,
}


def _label(value: int | None, enum_type: type[enum.IntEnum]) -> str:
    if value is None:
        return "none"
    try:
        return enum_type(value).name
    except ValueError:
        return f"0x{int(value):08X}"


#: Blowfish, CAST5, IDEA and Camellia, used only while legacy.enabled() (legacy_algorithms.py says why).
LEGACY_SUITES: dict[tuple[int, int | None], Suite] = {
    (algorithm, mode): _block_suite(
        f"{cipher.name}-{mode.name}", cipher.make, frozenset(bits // 8 for bits in cipher.key_bits), cipher.block, mode
    )
    for algorithm, cipher in legacy.LEGACY.items()
    for mode in (M.ECB, M.CBC, M.CFB, M.OFB)
}


def suite_for(algorithm: int | None, mode: int | None) -> Suite:
    """The suite of ``algorithm`` in ``mode`` (a stream cipher or AEAD takes no mode)."""
    key = (int(algorithm), int(mode) if mode is not None else None) if algorithm is not None else None
    found = SUITES.get(key) if key is not None else None
    if found is not None:
        return found
    if key is not None and algorithm in legacy.LEGACY:
        if not legacy.enabled():
            raise CipherError(Fault.UNSUPPORTED, f"{legacy.LEGACY[algorithm].name} is a legacy algorithm, off here")
        if key in LEGACY_SUITES:
            return LEGACY_SUITES[key]
    if algorithm is None:
        raise _bad("no Cryptographic Algorithm: neither the request nor the key names one")
    if mode is None and any(a == algorithm for a, _ in SUITES):
        raise _bad(f"{_label(algorithm, A)} needs a Block Cipher Mode (none in the request or the key's parameters)")
    raise CipherError(
        Fault.UNSUPPORTED, f"{_label(algorithm, A)} in mode {_label(mode, M)} is not supported for Encrypt and Decrypt"
    )


def padding_for(suite: Suite, method: int | None) -> type[padding.PKCS7] | type[padding.ANSIX923] | None:
    if method not in PADDINGS:
        raise CipherError(Fault.UNSUPPORTED, f"Padding Method {_label(method, PaddingMethod)} is not supported")
    found = PADDINGS[method]
    if found is not None and not suite.block:
        raise _bad(f"{suite.name} takes no padding (Padding Method {_label(method, PaddingMethod)})")
    return found


def check_key(suite: Suite, key: bytes) -> None:
    if len(key) not in suite.key_sizes:
        sizes = ", ".join(str(8 * size) for size in sorted(suite.key_sizes))
        raise _bad(f"{suite.name} takes keys of {sizes} bits, not {8 * len(key)}")


def check_iv(suite: Suite, iv: bytes | None) -> None:
    if suite.iv_sizes is None:
        if iv:
            raise _bad(f"{suite.name} takes no IV/Counter/Nonce")
        return
    if iv is None:
        raise CipherError(Fault.MISSING_IV, f"{suite.name} needs an IV/Counter/Nonce")
    if len(iv) not in suite.iv_sizes:
        sizes = sorted(suite.iv_sizes)
        contiguous = sizes[-1] - sizes[0] == len(sizes) - 1
        wanted = f"{sizes[0]} to {sizes[-1]}" if contiguous and len(sizes) > 2 else " or ".join(map(str, sizes))
        raise _bad(f"{suite.name} takes an IV/Counter/Nonce of {wanted} bytes, not {len(iv)}")


def check_tag_size(suite: Suite, size: int) -> None:
    if size not in suite.tag_sizes:
        allowed = ", ".join(map(str, sorted(suite.tag_sizes)))
        raise CipherError(Fault.TAG_LENGTH, f"{suite.name} tags are {allowed} bytes long, not {size}")
