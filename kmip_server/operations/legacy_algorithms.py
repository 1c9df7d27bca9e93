"""Legacy block ciphers: Blowfish, CAST5, IDEA and Camellia, off unless ``[crypto]
legacy_algorithms = true``.

Existing clients still hold keys for these (backup software, old storage arrays), so a site
migrating them may turn the switch on. Off, the server refuses to create, register or use such
keys (Invalid Attribute Value / Invalid Field naming the setting), as a server built today
should: Blowfish, CAST5 and IDEA have 64-bit blocks (birthday-bound attacks after some GB
under one key: Sweet32) and no current standard recommends any of the four. On, each takes the
key sizes its definition allows and Encrypt/Decrypt in ECB, CBC, CFB and OFB, through the
``cryptography`` package's decrepit ciphers (OpenSSL 3's legacy provider).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from cryptography.hazmat.decrepit.ciphers import algorithms as decrepit
from cryptography.hazmat.primitives.ciphers import CipherAlgorithm

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.spec.enums import CryptographicAlgorithm, ResultReason

from ..crypto_settings import CryptoSettings
from ..engine.context import RequestContext
from .common import invalid_attribute_value

A = CryptographicAlgorithm
R = ResultReason


@dataclasses.dataclass(frozen=True)
class LegacyCipher:
    name: str
    key_bits: frozenset[int]
    block: int  # bytes
    make: Callable[[bytes], CipherAlgorithm]


LEGACY: dict[int, LegacyCipher] = {
    A.BLOWFISH: LegacyCipher("Blowfish", frozenset(range(32, 449, 8)), 8, decrepit.Blowfish),  # 4 to 56 bytes
    A.CAST5: LegacyCipher("CAST5", frozenset(range(40, 129, 8)), 8, decrepit.CAST5),  # RFC 2144: 40 to 128 bits
    A.IDEA: LegacyCipher("IDEA", frozenset({128}), 8, decrepit.IDEA),
    A.CAMELLIA: LegacyCipher("Camellia", frozenset({128, 192, 256}), 16, decrepit.Camellia),  # RFC 3713
}

_enabled = False


def configure(settings: CryptoSettings) -> None:
    """Set this process's switch (called once per worker at start)."""
    global _enabled
    _enabled = settings.legacy_algorithms


def enabled() -> bool:
    return _enabled


def refused(ctx: RequestContext, algorithm: int) -> KmipError:
    name = LEGACY[algorithm].name
    return invalid_attribute_value(
        ctx, f"{name} is a legacy algorithm, refused on this server ([crypto] legacy_algorithms is false)"
    )


def check_key(ctx: RequestContext, algorithm: int, length: int) -> None:
    """A legacy key of ``length`` bits may be created, registered or used here."""
    if not _enabled:
        raise refused(ctx, algorithm)
    cipher = LEGACY[algorithm]
    if length not in cipher.key_bits:
        low, high = min(cipher.key_bits), max(cipher.key_bits)
        sizes = f"{low}" if low == high else f"{low} to {high} (in whole bytes)"
        raise KmipError(
            f"{cipher.name} keys are {sizes} bits long, not {length}",
            ctx.reason(R.INVALID_ATTRIBUTE_VALUE, R.INVALID_FIELD),
        )
