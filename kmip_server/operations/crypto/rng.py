"""RNG Retrieve and RNG Seed."""

from __future__ import annotations
