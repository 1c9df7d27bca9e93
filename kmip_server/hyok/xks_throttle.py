"""Request rates per XKS credential: ``[[xks.credentials]] max_requests_per_second``.

The XKS proxy API specification names ThrottlingException (HTTP 429) for "the request was
denied due to request throttling"; AWS KMS retries such a call and reports it to its caller.
A credential with ``max_requests_per_second = R`` gets a token bucket: it holds at most
``max(1, R)`` requests' worth (the burst), one is taken per request, and it fills again at R a
second. Checked right after SigV4 authentication, so only the credential's holder spends its
tokens: an unsigned or wrongly signed request is refused before it can take one.

Each worker process has its own buckets (no shared memory between workers, which would cost
every request a lock across processes): with W workers the server as a whole admits up to W
times the rate, and which worker a connection lands on decides which bucket it draws from.
Set the rate per worker accordingly. On SIGHUP a credential whose limit is unchanged keeps
its bucket, tokens and all (a reload is no way to reset a limit); a new or changed limit
starts a full bucket.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

from .xks_settings import XksCredential

__all__ = ["TokenBucket", "buckets_for"]


class TokenBucket:
    """A token bucket: ``rate`` tokens a second, at most ``burst`` held; starts full."""

    __slots__ = ("rate", "burst", "_tokens", "_at", "_clock")

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(1.0, rate)
        self._clock = clock
        self._tokens = self.burst
        self._at = clock()

    def take(self) -> bool:
        """Take one token if there is one; False when the rate is exceeded."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def wait(self) -> float:
        """Seconds until the next token (0 when one is there), for the refusal's message."""
        return max(0.0, (1.0 - self._tokens) / self.rate)


def buckets_for(credentials: Iterable[XksCredential], kept: Mapping[str, TokenBucket]) -> dict[str, TokenBucket]:
    """A bucket for each limited credential, by access key ID: ``kept``'s when its rate is the
    same (the buckets in force before a reload), a new one otherwise."""
    buckets: dict[str, TokenBucket] = {}
    for credential in credentials:
        rate = credential.max_requests_per_second
        if rate is None:
            continue
        old = kept.get(credential.access_key_id)
        buckets[credential.access_key_id] = old if old is not None and old.rate == rate else TokenBucket(rate)
    return buckets
