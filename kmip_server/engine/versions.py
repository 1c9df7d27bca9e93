"""The KMIP protocol versions this server speaks, most preferred first."""

from __future__ import annotations

Version = tuple[int, int]
SUPPORTED_VERSIONS: tuple[Version, ...] = ((2, 1), (2, 0), (1, 4), (1, 3), (1, 2), (1, 1), (1, 0))

#: The KMIP 1.x version that introduced each Result Reason added after 1.0 (KMIP 1.1 to 1.4;
#: 1.3 added none; the 1.4 list is the specification's Table 317). Those past 0x18 are 2.0's.
_RESULT_REASON_SINCE: dict[int, Version] = {
    0x12: (1, 1),  # Encoding Option Error
    0x13: (1, 2),  # Key Value Not Present
    0x14: (1, 2),  # Attestation Required
    0x15: (1, 2),  # Attestation Failed
    0x16: (1, 4),  # Sensitive
    0x17: (1, 4),  # Not Extractable
    0x18: (1, 4),  # Object Already Exists
}
_GENERAL_FAILURE = 0x100


def result_reason_since(reason: int) -> Version:
    """The first KMIP version whose Result Reason enumeration has ``reason``."""
    if reason <= 0x11 or reason == _GENERAL_FAILURE:
        return (1, 0)
    return _RESULT_REASON_SINCE.get(reason, (2, 0))
