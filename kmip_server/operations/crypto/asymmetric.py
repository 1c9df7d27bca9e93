"""RSA encryption and the loading of private and public keys for the cryptographic operations."""

from __future__ import annotations
