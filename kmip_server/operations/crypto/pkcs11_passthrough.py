"""The PKCS#11 operation (KMIP 2.0 and 2.1)."""

from __future__ import annotations
