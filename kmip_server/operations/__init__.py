"""Operation handlers, one module per group; importing this package registers them all."""

from __future__ import annotations

from . import (  # noqa: F401
    asynchronous,
    attributes,
    certificates,
    creation,
    crypto,
    harness,
    import_export,
    key_pairs,
    lifecycle,
    locate,
    registration,
    rekey,
    retrieval,
    server_info,
)
