"""SIGHUP re-reads the cloud key services' sections, as it re-reads the access policy.

What a service trusts changes while it runs: an identity provider publishes a new signing key
(Google and Entra rotate theirs; the JWKS files are then replaced), an XKS credential rotates.
A restart for each would drop every connection, so each service's worker chains a reload of
its section to the worker's SIGHUP handler (engine/app.py's reloads the policy). The section is
read and checked whole; a section that no longer reads keeps the settings in force, and says why.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

__all__ = ["Staged", "reload_on_sighup"]

S = TypeVar("S")

log = logging.getLogger("strongroom.hyok")


def reload_on_sighup(data_dir: Path, section: str, apply: Callable[[Any], None]) -> None:
    """On SIGHUP, read ``data_dir``'s configuration again and hand its ``section`` attribute
    (the service's settings, or None when the section is gone or disabled) to ``apply``."""
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers belong to the main thread (an in-process test's server)
    previous = signal.getsignal(signal.SIGHUP)

    def reload(signum: int, frame: Any) -> None:
        from ..config import ConfigError, load_config

        try:
            apply(getattr(load_config(data_dir), section))
        except ConfigError as exc:
            log.error("the [%s] settings were not reloaded; the ones in force stay: %s", section, exc)
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGHUP, reload)


class Staged(Generic[S]):
    """A service's settings as SIGHUP re-read them, held until the next request takes them.

    Not applied by the signal handler itself: a signal may arrive in the middle of a request,
    which must see one section throughout. Where the service is served (``place``: its URL)
    is bound to the listener's routes at start, so a section that moves it is refused whole.
    """

    def __init__(self, section: str, current: S, place: Callable[[S], str]) -> None:
        self.section = section
        self._place = place
        self._served_at = place(current)
        self._next: S | None = None

    def offer(self, settings: S | None) -> None:
        """SIGHUP's reading of the section (None: it is gone or disabled)."""
        if settings is None:
            log.error(
                "the [%s] section is gone or disabled; keeping the settings in force (restart to stop it)", self.section
            )
            return
        if self._place(settings) != self._served_at:
            log.error(
                "[%s] moves the service to %r: the settings in force stay until a restart",
                self.section,
                self._place(settings),
            )
            return
        self._next = settings
        log.info("the [%s] settings were reloaded; the next request is served by them", self.section)

    def take(self) -> S | None:
        """The settings offered since the last call, if any."""
        settings, self._next = self._next, None
        return settings
