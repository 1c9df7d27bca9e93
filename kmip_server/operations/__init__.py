"""Operation handlers, one module per group; importing this package registers them all."""

from __future__ import annotations

from . import attributes, creation, crypto, harness, lifecycle, locate, registration, retrieval, server_info  # noqa: F401
