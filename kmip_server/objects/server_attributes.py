"""The attributes every object has without a client asking, and what each KMIP version sees.

Some are derived from the object's row when read (Unique Identifier, Object Type, State,
Short Unique Identifier, Key Format Type: see the attribute operations). Others have a value
that most objects share, and are stored only where an object's value differs: a loaded
object is given the shared value of each that it has no row for (:func:`fill_defaults`),
so reading, listing and changing them work alike for both, while a Create inserts no rows for
them. That is Sensitive (False unless a client says otherwise), Extractable (True), Always
Sensitive and Never Extractable (what Sensitive and Extractable have always been: their
values at creation until those change, then stored, see :func:`record_history`), Fresh (True until the object is first
served by Get), Lease Time and Protection Storage Mask (the same for every object).

Attributes came with KMIP versions: a client sees only those its version defines
(:func:`defined_in`), and lists come in one order (:func:`listing_key`) — custom attributes,
then the identity of the object and its algorithm and length, then the rest by name, the
order of the OASIS test cases (KMIP Profiles 1.3 to 2.1, for example SKFF-M-9).
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

from kmip_client.protocol.model import Attribute
from kmip_client.protocol.model.attributes import RandomNumberGenerator
from kmip_client.protocol.spec.enums import (
    CryptographicAlgorithm,
    DRBGAlgorithm,
    ProtectionStorageMask,
    RNGAlgorithm,
)
from kmip_client.protocol.ttlv import ItemType

from ..custody.base import RandomGenerator
from .attribute_rules import CERTIFICATE_NAME_FIELDS, is_custom
from .attribute_set import AttributeSet

Version = tuple[int, int]

# --------------------------------------------------------------------------- versions

#: The version that introduced each attribute not in KMIP 1.0 (1.x: KMIP 1.4 §3 and the tags'
#: versions; 2.x: KMIP 2.1 §4). Key Format Type and Opaque Data Type were fields of objects
#: in 1.x and are attributes from 2.0.
_SINCE: dict[str, Version] = {
    **dict.fromkeys(
        (
            "Fresh",
            "Certificate Length",
            "X.509 Certificate Identifier",
            "X.509 Certificate Subject",
            "X.509 Certificate Issuer",
            "Digital Signature Algorithm",
        ),
        (1, 1),
    ),
    **dict.fromkeys(("Alternative Name", "Key Value Present", "Key Value Location", "Original Creation Date"), (1, 2)),
    "Random Number Generator": (1, 3),
    **dict.fromkeys(
        (
            "PKCS#12 Friendly Name",
            "Description",
            "Comment",
            "Sensitive",
            "Always Sensitive",
            "Extractable",
            "Never Extractable",
        ),
        (1, 4),
    ),
    **dict.fromkeys(
        (
            "Short Unique Identifier",
            "Key Format Type",
            "Opaque Data Type",
            "NIST Key Type",
            "Protection Level",
            "Protection Period",
            "Protection Storage Mask",
            "Quantum Safe",
            *(f"Certificate {part} {field}" for part in ("Subject", "Issuer") for field in CERTIFICATE_NAME_FIELDS),
        ),
        (2, 0),
    ),
    **dict.fromkeys(
        (
            "Rotate Automatic",
            "Rotate Date",
            "Rotate Generation",
            "Rotate Interval",
            "Rotate Latest",
            "Rotate Name",
            "Rotate Offset",
        ),
        (2, 1),
    ),
}
#: The 1.x attributes that KMIP 2.0 dropped.
_UNTIL: dict[str, Version] = dict.fromkeys(
    ("Certificate Identifier", "Certificate Subject", "Certificate Issuer", "Operation Policy Name"), (1, 4)
)


def defined_in(name: str, version: Version) -> bool:
    """Whether KMIP ``version`` has the attribute called ``name`` (custom ones: always)."""
    since = _SINCE.get(name)
    if since is not None and version < since:
        return False
    until = _UNTIL.get(name)
    return until is None or version <= until


# --------------------------------------------------------------------------- order

_LEADING = (
    "Unique Identifier",
    "Short Unique Identifier",
    "Object Type",
    "Cryptographic Algorithm",
    "Cryptographic Length",
)
# The test cases list Key Format Type next to Digest (whose value names a Key Format Type too).
_SORTS_AS = {"Key Format Type": "Digest\x00"}


@functools.lru_cache(maxsize=1024)
def listing_key(name: str) -> tuple[int, int, str]:
    """The sort key of ``name`` in Get Attribute List and in Get Attributes of everything."""
    if is_custom(name):
        return (0, 0, name)
    if name in _LEADING:
        return (1, _LEADING.index(name), "")
    return (2, 0, _SORTS_AS.get(name, name))


# --------------------------------------------------------------------------- values

#: Lease Time: the longest lease a client gets on an object (KMIP 2.1 §4.30); the value the
#: OASIS test cases show. This server grants no leases yet (no Obtain Lease).
LEASE_TIME_SECONDS = 3600
#: Where objects are kept: the database, in software (their values wrapped by the token).
PROTECTION_STORAGE = int(ProtectionStorageMask.SOFTWARE)

_BOOL = ItemType.BOOLEAN


def _flag(name: str, value: bool) -> Attribute:
    return Attribute(name=name, value=value, type=_BOOL)


# Attributes are immutable: these instances are shared by every object that has the value.
FLAGS: dict[tuple[str, bool], Attribute] = {
    (name, value): _flag(name, value)
    for name in ("Sensitive", "Extractable", "Always Sensitive", "Never Extractable", "Fresh")
    for value in (False, True)
}
_LEASE_TIME = Attribute(name="Lease Time", value=LEASE_TIME_SECONDS, type=ItemType.INTERVAL)
_PROTECTION_STORAGE = Attribute(name="Protection Storage Mask", value=PROTECTION_STORAGE, type=ItemType.INTEGER)


def fill_defaults(attrs: AttributeSet) -> None:
    """Give a loaded object the shared value of each attribute it stores no row for."""
    sensitive = attrs.first("Sensitive")
    if sensitive is None:
        sensitive = False
        attrs.default(FLAGS["Sensitive", False])
    extractable = attrs.first("Extractable")
    if extractable is None:
        extractable = True
        attrs.default(FLAGS["Extractable", True])
    if "Always Sensitive" not in attrs:
        attrs.default(FLAGS["Always Sensitive", sensitive is True])
    if "Never Extractable" not in attrs:
        attrs.default(FLAGS["Never Extractable", extractable is False])
    if "Fresh" not in attrs:
        attrs.default(FLAGS["Fresh", True])
    if "Lease Time" not in attrs:
        attrs.default(_LEASE_TIME)
    if "Protection Storage Mask" not in attrs:
        attrs.default(_PROTECTION_STORAGE)


def record_history(attrs: AttributeSet) -> None:
    """After a change: Always Sensitive is False once Sensitive has been False, Never
    Extractable False once Extractable has been True (KMIP 1.4 §3.49, §3.51), for good."""
    for name, history, keeps in (
        ("Sensitive", "Always Sensitive", True),
        ("Extractable", "Never Extractable", False),
    ):
        if attrs.is_dirty(name):
            # Stored from now on even if unchanged: without a row it would follow the value.
            still = attrs.first(history) is True and attrs.first(name) is keeps
            attrs.set_from(history, FLAGS[history, still])


def short_unique_identifier(uid: str) -> bytes:
    """KMIP 2.1 §4.56: the SHA-256 hash of the Unique Identifier, 32 bytes."""
    return hashlib.sha256(uid.encode()).digest()


_CIPHERS = {"aes": CryptographicAlgorithm.AES}
_DRBGS = {"ctr": DRBGAlgorithm.CTR, "hash": DRBGAlgorithm.HASH, "hmac": DRBGAlgorithm.HMAC}


@functools.lru_cache(maxsize=8)
def random_number_generator(generator: RandomGenerator) -> Attribute:
    """The Random Number Generator attribute of the keys generated with ``generator``: what
    is known of it, the RNG Algorithm alone (Unspecified) when nothing is (KMIP 1.4 §3.44)."""
    fields: dict[str, Any] = {"rng_algorithm": RNGAlgorithm.UNSPECIFIED}
    if generator.kind == "drbg":
        fields = {
            "rng_algorithm": RNGAlgorithm.DRBG,
            "cryptographic_algorithm": _CIPHERS.get(generator.cipher or ""),
            "cryptographic_length": generator.bits,
            "drbg_algorithm": _DRBGS.get(generator.drbg or ""),
        }
    return Attribute(name="Random Number Generator", value=RandomNumberGenerator(**fields))
