"""The cryptographic services: keys in use without leaving the server, one module per family.

``keys`` loads and checks the key an operation uses; ``streams`` keeps the state of streamed
operations; the other modules register their handlers when imported.
"""

from __future__ import annotations

from ...crypto_settings import CryptoSettings
from .. import legacy_algorithms
from . import derivation, digest, encryption, keys, mac, pkcs11_passthrough, rng, signatures, streams  # noqa: F401


def configure(settings: CryptoSettings) -> None:
    """Apply the ``[crypto]`` settings in this process (each worker, after fork)."""
    keys.configure(settings)
    streams.configure(settings)
    rng.configure(settings)
    legacy_algorithms.configure(settings)
