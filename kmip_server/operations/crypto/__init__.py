"""The cryptographic services: keys in use without leaving the server, one module per family.

``keys`` loads and checks the key an operation uses; ``streams`` keeps the state of streamed
operations; the other modules register their handlers when imported.
"""

from __future__ import annotations

from . import derivation, digest, encryption, mac, pkcs11_passthrough, rng, signatures  # noqa: F401
