"""Strongroom's KMIP client library and the sans-I/O protocol layer it shares with the server."""

from __future__ import annotations

__version__ = "0.1.0"
