"""Request and response payloads of every KMIP operation, one module per operation group.

Importing this package registers each payload class with the batch-item decoder
(:data:`..messages.REQUEST_PAYLOADS` / :data:`..messages.RESPONSE_PAYLOADS`).
"""

from __future__ import annotations

from . import (  # noqa: F401  (registration side effects)
    access,
    async_ops,
    attributes_ops,
    crypto,
    harness,
    lifecycle,
    locate,
    server_info,
    structures,
)
