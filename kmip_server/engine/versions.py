"""The KMIP protocol versions this server speaks, most preferred first."""

from __future__ import annotations

Version = tuple[int, int]
SUPPORTED_VERSIONS: tuple[Version, ...] = ((2, 1), (2, 0), (1, 4), (1, 3), (1, 2), (1, 1), (1, 0))
