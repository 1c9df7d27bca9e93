"""Strongroom: the KMIP key server."""
