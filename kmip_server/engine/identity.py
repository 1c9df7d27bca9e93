"""Who is asking: the client identity taken from the TLS client certificate."""

from __future__ import annotations

import dataclasses
import functools
import hashlib


@dataclasses.dataclass(frozen=True, slots=True)
class ClientIdentity:
    """The authenticated peer. ``name`` is what policies and ownership use (the certificate's
    subject CN by default); ``certificate`` is the peer certificate in DER, when there is one."""

    name: str
    certificate: bytes | None = dataclasses.field(default=None, repr=False, compare=False)
    #: The peer's "host:port", for the audit trail.
    address: str | None = dataclasses.field(default=None, compare=False)

    @property
    def fingerprint(self) -> str | None:
        """SHA-256 of the client certificate (DER), in hex: what the audit trail records."""
        return None if self.certificate is None else _fingerprint(self.certificate)


@functools.lru_cache(maxsize=4096)
def _fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()
