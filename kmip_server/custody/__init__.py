"""Key custody: where the master key lives and how stored key values are protected.

Every key value the server stores is wrapped (encrypted and authenticated) under a master key
that never leaves a PKCS#11 token. :class:`KeyCustody` is the small interface the engine uses;
:mod:`.pkcs11` implements it with python-pkcs11 (SoftHSM2 by default, any PKCS#11 HSM by
configuration), and :mod:`.softhsm` creates the embedded SoftHSM2 token. It is an interface
because tokens differ, not for testing: tests use a real SoftHSM2 token.
"""

from __future__ import annotations

from .base import CustodyError, CustodyUnavailable, KeyCustody, RandomGenerator, RsaKeyNumbers
from .pkcs11 import Pkcs11Custody
from .softhsm import DEFAULT_SOFTHSM_MODULE, find_softhsm_module, initialise_token, use_softhsm_conf

__all__ = [
    "KeyCustody",
    "RandomGenerator",
    "RsaKeyNumbers",
    "CustodyError",
    "CustodyUnavailable",
    "Pkcs11Custody",
    "DEFAULT_SOFTHSM_MODULE",
    "find_softhsm_module",
    "initialise_token",
    "use_softhsm_conf",
]
