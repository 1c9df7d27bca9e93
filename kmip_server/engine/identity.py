"""Who is asking: the client identity taken from the TLS client certificate."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class ClientIdentity:
    """The authenticated peer. ``name`` is what policies and ownership use (the certificate's
    subject CN by default); ``certificate`` is the peer certificate in DER, when there is one."""

    name: str
    certificate: bytes | None = dataclasses.field(default=None, repr=False, compare=False)
