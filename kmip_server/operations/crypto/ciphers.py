"""Declarative tables of the symmetric ciphers, modes and paddings Encrypt and Decrypt use."""

from __future__ import annotations
