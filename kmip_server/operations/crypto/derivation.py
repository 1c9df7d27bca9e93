"""Derive Key."""

from __future__ import annotations
