"""MAC and MAC Verify."""

from __future__ import annotations
