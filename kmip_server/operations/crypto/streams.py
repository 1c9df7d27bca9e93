"""Streamed cryptographic operations: Init Indicator, Final Indicator and Correlation Value."""

from __future__ import annotations
