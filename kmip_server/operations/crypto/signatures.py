"""Sign and Signature Verify."""

from __future__ import annotations
