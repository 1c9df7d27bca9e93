"""The operation registry: operation modules declare their handlers; dispatch is a dict lookup."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from kmip_client.protocol.model import Struct
from kmip_client.protocol.spec.enums import Operation

Version = tuple[int, int]
Handler = Callable[[Any, Any], Struct]


@dataclasses.dataclass(frozen=True, slots=True)
class OperationSpec:
    operation: Operation
    handler: Handler
    # Whether the handler may write: a message whose items are all read-only runs in a read
    # transaction, which on SQLite does not take the database's write lock.
    writes: bool
    min_version: Version
    # A test-harness operation (Interop): answered only by a server started for testing.
    harness: bool = False
    # Slow work that may run before the message's write transaction, so that it does not hold
    # the store's write lock (SQLite: every writer of every worker waits on it): called with
    # the request payload and the custody; returns what to call once the message is done (to
    # drop what the handler did not use), or None. It writes nothing, and its failures are
    # the handler's to find and report.
    before: Callable[[Any, Any], Callable[[], None] | None] | None = None


HANDLERS: dict[int, OperationSpec] = {}


def operation(
    op: Operation,
    *,
    writes: bool,
    min_version: Version = (1, 0),
    harness: bool = False,
    before: Callable[[Any, Any], Callable[[], None] | None] | None = None,
) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of ``op`` (``before``: see OperationSpec)."""

    def register(handler: Handler) -> Handler:
        if op in HANDLERS:
            raise RuntimeError(f"two handlers registered for {op.name}")
        HANDLERS[op] = OperationSpec(op, handler, writes, min_version, harness, before)
        return handler

    return register


def supported_operations(version: Version, *, test_harness: bool = False) -> list[Operation]:
    """The operations a client speaking ``version`` may use, in the spec's numbering order."""
    return sorted(
        spec.operation
        for spec in HANDLERS.values()
        if version >= spec.min_version and (test_harness or not spec.harness)
    )
