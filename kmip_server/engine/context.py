"""The per-request context handed to operation handlers."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from kmip_client.protocol.errors import InvalidField, KmipError
from kmip_client.protocol.spec.enums import ResultReason, UniqueIdentifier

from ..custody import KeyCustody
from ..policy import Policy
from ..policy.facts import Principal
from ..storage.repository import Session
from .identity import ClientIdentity
from .versions import result_reason_since

if TYPE_CHECKING:
    from kmip_client.protocol.model import ResponseBatchItem

Version = tuple[int, int]
V2 = (2, 0)


class WriteNeeded(Exception):
    """A handler running in a read transaction found that it must write after all (a Get of a
    Fresh object: serving it ends its freshness). The dispatcher, which opened the read
    transaction, then runs the message again in a write transaction."""


@dataclasses.dataclass(slots=True)
class RequestContext:
    """Everything one batch item may use. ``id_placeholder`` carries the Unique Identifier
    an earlier item of the same message produced (KMIP's ID Placeholder)."""

    identity: ClientIdentity
    version: Version
    session: Session
    custody: KeyCustody
    policy: Policy
    now: int
    principal: Principal
    #: The item's operation as the spec names it ("Get", "Re-key"): what the policy decides.
    operation: str = ""
    id_placeholder: str | None = None
    test_harness: bool = False  # the server answers the test-harness operations (Interop)
    #: The objects the item loaded through the access gate (for its audit record).
    touched: list[str] = dataclasses.field(default_factory=list)
    #: Running a request whose M-of-N approval is complete: the policy's approval is not asked again.
    approved: bool = False
    #: Writes a read-only item leaves for the write transaction that ends its message (the
    #: Fresh flag a Get clears), so that the item need not run again as a writer.
    deferred: list[Callable[[Session], None]] = dataclasses.field(default_factory=list)
    #: Runs an approved request's stored batch item through the dispatcher (Poll): set by it.
    run_approved: Callable[[int, bytes], ResponseBatchItem] | None = None

    @property
    def v2(self) -> bool:
        return self.version >= V2

    def reason(self, v2: ResultReason, v1: ResultReason) -> ResultReason:
        """Pick the Result Reason of the client's KMIP generation (2.x added finer ones)."""
        return v2 if self.version >= V2 else v1

    def defined_reason(self, wanted: ResultReason, otherwise: ResultReason) -> ResultReason:
        """``wanted`` if the client's KMIP version defines that Result Reason, else ``otherwise``
        (Sensitive and Not Extractable exist from 1.4, Key Value Not Present from 1.2 ...)."""
        return wanted if self.version >= result_reason_since(wanted) else otherwise

    def uid(self, given: Any) -> str:
        """The object an item is about: the given Unique Identifier or the ID Placeholder."""
        if given is None or (isinstance(given, IntEnum) and given == UniqueIdentifier.ID_PLACEHOLDER):
            if self.id_placeholder is None:
                raise KmipError(
                    "no Unique Identifier given and no earlier batch item set the ID Placeholder",
                    self.reason(ResultReason.MISSING_DATA, ResultReason.ITEM_NOT_FOUND),
                )
            return self.id_placeholder
        if isinstance(given, str):
            return given
        raise InvalidField(f"Unique Identifier {given!r} is not supported here; send a text identifier")
