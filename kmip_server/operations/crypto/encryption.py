"""Encrypt and Decrypt."""

from __future__ import annotations
