"""A custody that reports how long each token call took and whether it failed (the admin
listener's HSM metrics), around another custody that does the work."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from .base import KeyCustody, RandomGenerator, RsaKeyNumbers

_T = TypeVar("_T")
#: (call, seconds, failed): what a token call reports.
Observer = Callable[[str, float, bool], None]


class MeteredCustody(KeyCustody):
    """Delegates every call to ``inner`` and reports each to ``observe``. What needs the
    concrete custody (the PKCS#11 pass-through operation) reaches it as :attr:`inner`."""

    def __init__(self, inner: KeyCustody, observe: Observer) -> None:
        self.inner = inner
        self._observe = observe

    def _timed(self, call: str, run: Callable[[], _T]) -> _T:
        started = time.perf_counter()
        failed = True
        try:
            result = run()
            failed = False
            return result
        finally:
            self._observe(call, time.perf_counter() - started, failed)

    @property
    def master_key_id(self) -> str:
        return self.inner.master_key_id

    def wrap(self, plaintext: bytes, context: bytes) -> bytes:
        return self._timed("wrap", lambda: self.inner.wrap(plaintext, context))

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        return self._timed("unwrap", lambda: self.inner.unwrap(blob, context))

    def random(self, length: int) -> bytes:
        return self._timed("random", lambda: self.inner.random(length))

    def seed_random(self, data: bytes) -> None:
        self._timed("seed_random", lambda: self.inner.seed_random(data))

    @property
    def random_generator(self) -> RandomGenerator:
        return self.inner.random_generator

    def generate_rsa(self, bits: int, public_exponent: int) -> RsaKeyNumbers:
        return self._timed("generate_rsa", lambda: self.inner.generate_rsa(bits, public_exponent))

    def audit_mac(self, data: bytes) -> bytes:
        return self._timed("audit_mac", lambda: self.inner.audit_mac(data))

    def close(self) -> None:
        self.inner.close()
