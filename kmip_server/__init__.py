"""Strongroom: the KMIP key server."""

__version__ = "0.1.0"
