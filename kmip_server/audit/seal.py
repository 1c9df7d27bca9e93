"""The trail's MACs: HMAC-SHA256 in memory, under sealing keys that only the token can derive.

A sealing key is ``K_e = HMAC_token(audit key, DERIVE || e)``: the token's CKM_SHA256_HMAC
under its audit key (sensitive, never extractable) over this module's domain and an epoch
``e``, 16 random bytes a :class:`Sealer` picks the first time it seals (one per process: each
server worker, each operator command). A MAC is ``e || HMAC-SHA256(K_e, input)``, 48 bytes. A
:class:`SealChecker` reads ``e`` from the MAC, asks the token for ``K_e`` once per epoch and
checks the rest.

Why not one token call per MAC (as the trail was first built): a PKCS#11 library is initialised
without threads (python-pkcs11 calls ``C_Initialize(NULL)``), so a worker makes one token call at
a time, and every batch item needs its audit record sealed before it is answered. A slow call
(an RSA key-pair generation, hundreds of milliseconds on SoftHSM2, a network round trip on a
network HSM) then held every other client's answer, even a Discover Versions, behind it.

What it keeps: someone who can write the database or the log files but not use the token
cannot make a MAC that checks, since ``K_e`` comes only from the token, and a verifier trusts
no key it did not derive itself. What it changes: ``K_e`` lives in the worker's memory, beside
the token PIN that the same process holds; whoever can read that memory can use the token anyway.
"""

from __future__ import annotations

import hmac
import os

from ..custody import KeyCustody

#: The domain of the token HMAC that derives a sealing key (distinct from every MAC domain).
DERIVE = b"strongroom audit v1 sealing key\x00"
EPOCH_LEN = 16
TAG_LEN = 32
MAC_LEN = EPOCH_LEN + TAG_LEN


def _derive(custody: KeyCustody, epoch: bytes) -> bytes:
    return custody.audit_mac(DERIVE + epoch)


class Sealer:
    """Makes MACs under one epoch's key, derived from the token on first use (so a custody
    that cannot derive fails the first append, and that append's transaction)."""

    def __init__(self, custody: KeyCustody) -> None:
        self.custody = custody
        self._current: tuple[bytes, bytes] | None = None

    def seal(self, data: bytes) -> bytes:
        """``epoch || HMAC-SHA256(K_epoch, data)``; raises CustodyError if the key cannot be derived."""
        current = self._current
        if current is None:
            epoch = os.urandom(EPOCH_LEN)
            current = self._current = (epoch, _derive(self.custody, epoch))
        epoch, key = current
        return epoch + hmac.digest(key, data, "sha256")


class SealChecker:
    """Checks MACs of any epoch, deriving each epoch's key from the token once."""

    def __init__(self, custody: KeyCustody) -> None:
        self.custody = custody
        self._keys: dict[bytes, bytes] = {}

    def check(self, data: bytes, mac: bytes) -> bool:
        """True if ``mac`` is a :class:`Sealer` MAC of ``data``; raises CustodyError if the
        token cannot derive the key."""
        if len(mac) != MAC_LEN:
            return False
        epoch, tag = mac[:EPOCH_LEN], mac[EPOCH_LEN:]
        key = self._keys.get(epoch)
        if key is None:
            key = self._keys[epoch] = _derive(self.custody, epoch)
        return hmac.compare_digest(hmac.digest(key, data, "sha256"), tag)
