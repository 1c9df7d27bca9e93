"""The spec's names that policy files use: operations ("Get Attribute List", "Re-key"),
object types ("Symmetric Key"), algorithms ("AES"), usage mask bits ("Wrap Key"), and the
certificate fields identity rules match. Policy files spell them as the KMIP specification
does; matching ignores case, spaces, hyphens and underscores so "re-key" and "RE_KEY" work too."""

from __future__ import annotations

import re
from enum import Enum

from kmip_client.protocol.spec.enums import CryptographicAlgorithm, CryptographicUsageMask, ObjectType, Operation

# The spec's spelling where title-casing the enum name does not give it.
_OPERATION_SPELLING = {
    Operation.RE_KEY: "Re-key",
    Operation.RE_KEY_KEY_PAIR: "Re-key Key Pair",
    Operation.RE_CERTIFY: "Re-certify",
    Operation.MAC: "MAC",
    Operation.MAC_VERIFY: "MAC Verify",
    Operation.RNG_RETRIEVE: "RNG Retrieve",
    Operation.RNG_SEED: "RNG Seed",
    Operation.PKCS_11: "PKCS#11",
}

#: Every operation as the engine names it when it asks the policy.
OPERATIONS: tuple[str, ...] = tuple(
    _OPERATION_SPELLING.get(op) or op.name.replace("_", " ").title() for op in Operation
)

#: The certificate fields (see mapping.certificate_fields) and "name", the identity's name.
FIELDS = ("CN", "OU", "O", "subject", "dns", "email", "uri", "spiffe", "name")


def _key(text: str) -> str:
    return re.sub(r"[\s_\-#]", "", text).lower()


_OPERATION_KEYS = {_key(name): name for name in OPERATIONS}


def operation(text: str) -> str | None:
    """The spec spelling of operation ``text``, or None when KMIP has no such operation."""
    return _OPERATION_KEYS.get(_key(text))


def _enum_lookup(enum: type[Enum]) -> dict[str, int]:
    return {_key(member.name): int(member.value) for member in enum}


_ENUMS: dict[str, dict[str, int]] = {
    "object type": _enum_lookup(ObjectType),
    "algorithm": _enum_lookup(CryptographicAlgorithm),
    "usage mask bit": _enum_lookup(CryptographicUsageMask),
}


def enum_value(kind: str, text: str) -> int | None:
    """The value of ``text`` in the enumeration ``kind`` ("object type", "algorithm", "usage
    mask bit"), or None when it names no member."""
    return _ENUMS[kind].get(_key(text))


def enum_name(kind: str, value: int | None) -> str:
    """The spec-like name of ``value`` for explanations ("Symmetric Key", "AES")."""
    if value is None:
        return "none"
    enum = {"object type": ObjectType, "algorithm": CryptographicAlgorithm, "usage mask bit": CryptographicUsageMask}[
        kind
    ]
    try:
        name = enum(value).name or str(value)
    except ValueError:
        return f"0x{value:08X}"
    if kind == "algorithm":
        return name
    return name.replace("_", " ").title()
