"""The ``[crypto]`` settings: the unwrapped-key cache and the bounds on streamed operations.

Kept apart from :mod:`kmip_server.config`, which reads the file and calls :func:`read`.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class CryptoSettings:
    # Plaintext keys each worker may keep after an operation (0: none, the default) and for how
    # long: each cached key saves one HSM call per operation and stays in memory that long.
    key_cache_size: int = 0
    key_cache_seconds: float = 60.0
    # Streamed operations (Init Indicator ... Final Indicator): how many one identity may have
    # open, how long one may sit idle between parts, and how much input one may gather.
    streams_per_identity: int = 16
    stream_idle_seconds: int = 300
    stream_max_bytes: int = 4 * 1024 * 1024
    # RNG Seed: "token" passes the client's seed to the HSM (refused when it takes none),
    # "ignore" takes none and says so (Data Length 0), "refuse" answers Permission Denied.
    # rng_seed_max_bytes (0: no limit) caps how much of one seed the token is given.
    rng_seed: str = "token"
    rng_seed_max_bytes: int = 0
    # Create Key Pair: the shortest RSA key made (2048: NIST SP 800-131A; 1024 for old clients
    # and test suites only).
    rsa_min_bits: int = 2048
    # Certify: the CA certificate (by Name) that issues when a request names none ("": a request
    # must name one), and how many days a certificate it issues is valid.
    certify_issuer: str = ""
    certify_days: int = 365
    # Blowfish, CAST5, IDEA and Camellia keys (create, register, Encrypt/Decrypt): off.
    legacy_algorithms: bool = False


KEYS = tuple(field.name for field in dataclasses.fields(CryptoSettings))
_DEFAULTS = CryptoSettings()

_COMMENTS: dict[str, tuple[str, ...]] = {
    "key_cache_size": (
        "Unwrapped keys each worker keeps for reuse by Encrypt, Sign, MAC ... (0: none). Each saves",
        "an HSM call per operation; each is a plaintext key in the worker's memory meanwhile.",
    ),
    "key_cache_seconds": ("How long a cached key is kept after it was unwrapped.",),
    "streams_per_identity": ("Streamed operations (Init/Final Indicator) one client identity may have open.",),
    "stream_idle_seconds": ("A stream whose next part does not come within this many seconds is dropped.",),
    "stream_max_bytes": ("Input one stream may gather (its state is sealed under the master key meanwhile).",),
    "rng_seed": (
        'RNG Seed from clients: "token" mixes the seed into the HSM\'s generator (refused if the',
        'HSM takes none), "ignore" accepts none and answers Data Length 0, "refuse" refuses it.',
    ),
    "rng_seed_max_bytes": ("At most this much of one seed goes to the HSM (0: all of it).",),
    "rsa_min_bits": ("The shortest RSA key Create Key Pair makes (1024 only for old clients and test suites).",),
    "certify_issuer": (
        'Certify: the Name of the CA certificate that issues when a request names none ("": none).',
        "Its Public Key must link to a Private Key the caller may use for Certificate Sign.",
    ),
    "certify_days": ("How many days a certificate from Certify or Re-certify is valid.",),
    "legacy_algorithms": (
        "Blowfish, CAST5, IDEA and Camellia keys: created, registered and used only when true (for",
        "migrating old clients' keys; 64-bit blocks and no current standard behind them).",
    ),
}
RNG_SEED_MODES = ("token", "ignore", "refuse")


def read(table: Any) -> CryptoSettings:
    """The settings from the ``[crypto]`` table (a ``config._Table``)."""
    return CryptoSettings(
        key_cache_size=table.integer("key_cache_size", _DEFAULTS.key_cache_size, (0, 1_000_000)),
        key_cache_seconds=table.number("key_cache_seconds", _DEFAULTS.key_cache_seconds, (0, 86_400), True),
        streams_per_identity=table.integer("streams_per_identity", _DEFAULTS.streams_per_identity, (0, 100_000)),
        stream_idle_seconds=table.integer("stream_idle_seconds", _DEFAULTS.stream_idle_seconds, (1, 86_400)),
        stream_max_bytes=table.integer("stream_max_bytes", _DEFAULTS.stream_max_bytes, (1024, 2**31 - 1)),
        rng_seed=_rng_seed(table),
        rng_seed_max_bytes=table.integer("rng_seed_max_bytes", _DEFAULTS.rng_seed_max_bytes, (0, 2**31 - 1)),
        rsa_min_bits=table.integer("rsa_min_bits", _DEFAULTS.rsa_min_bits, (1024, 4096)),
        certify_issuer=table.string("certify_issuer", _DEFAULTS.certify_issuer),
        certify_days=table.integer("certify_days", _DEFAULTS.certify_days, (1, 36_500)),
        legacy_algorithms=table.boolean("legacy_algorithms", _DEFAULTS.legacy_algorithms),
    )


def _rng_seed(table: Any) -> str:
    mode = table.string("rng_seed", _DEFAULTS.rng_seed)
    if mode not in RNG_SEED_MODES:
        raise table.error("rng_seed", f"must be one of {', '.join(RNG_SEED_MODES)}, not {mode!r}")
    return str(mode)


def render(comment: Any, value: Any) -> list[str]:
    """The ``[crypto]`` section of the default configuration file."""
    out = ["", "[crypto]"]
    for name in KEYS:
        out += [*comment(_COMMENTS[name]), f"{name} = {value(getattr(_DEFAULTS, name))}"]
    return out
