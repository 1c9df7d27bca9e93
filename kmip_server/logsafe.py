"""Logging that survives a fault under load: a failure repeated thousands of times a second is
logged once, with its traceback, and then as a count.

A store that fails under load fails every request: each logging an ERROR with a traceback
filled the log (2,464 tracebacks in 6 s) and cost the worker more than the failing requests.
:class:`RepeatLimiter` logs the first of a run of identical failures as usual and counts the
rest; the count is logged ("... repeated 2,463 times in the last 10 s") once the interval has
passed: at the next failure after it, or from a timer the first repeat starts (a
:class:`threading.Timer`, so a burst that ends for good is summed up within the interval, not
at the next failure, which may be days away), and at :meth:`RepeatLimiter.flush` (a worker
calls it when it stops). A different failure is logged at once.

The standard library has no such filter, and the usual third-party ones (structlog's, say)
drop repeats without counting them; this is about fifty lines.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["RepeatLimiter"]


@dataclass
class _Run:
    level: int
    text: str
    started: float  # when the current summary period began
    last: float  # the last occurrence
    suppressed: int = 0


class RepeatLimiter:
    """Logs each distinct failure once per ``interval`` seconds, then how often it recurred.

    Two failures are the same when their formatted message is (or the ``key`` given is): the
    caller puts the kind of failure in the message, as ``"%s: %s", type(exc).__name__, exc``.
    Safe to call from several threads.
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 10.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_kinds: int = 256,
        timer: bool = True,
    ) -> None:
        self.logger = logger
        self.interval = interval
        self._clock = clock
        self._max_kinds = max_kinds
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()
        self._use_timer = timer  # tests with a fake clock drive the summaries themselves
        self._timer: threading.Timer | None = None  # pending while repeats await their count

    def log(self, level: int, msg: str, *args: Any, exc_info: Any = None, key: str | None = None) -> None:
        """Log ``msg % args`` at ``level`` (with ``exc_info``) unless it is a repeat; then count it."""
        if not self.logger.isEnabledFor(level):
            return
        text = msg % args if args else msg
        now = self._clock()
        with self._lock:
            due = self._take_due(now)
            run = self._runs.get(key or text)
            first = run is None
            if run is None:
                if len(self._runs) >= self._max_kinds:
                    due.append(self._runs.pop(next(iter(self._runs))))  # the oldest kind
                self._runs[key or text] = _Run(level, text, now, now)
            else:
                run.suppressed += 1
                run.last = now
                self._arm()
        for summary in due:
            self._summarise(summary, now)
        if first:
            self.logger.log(level, "%s", text, exc_info=exc_info)

    def error(self, msg: str, *args: Any, exc_info: Any = None, key: str | None = None) -> None:
        self.log(logging.ERROR, msg, *args, exc_info=exc_info, key=key)

    def flush(self) -> None:
        """Log the count of every failure repeated since it was last logged (at exit, say)."""
        now = self._clock()
        with self._lock:
            runs, self._runs = list(self._runs.values()), {}
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        for run in runs:
            self._summarise(run, now)

    def _arm(self) -> None:
        """Start the timer that sums up repeats, unless one is pending (caller holds the lock)."""
        if self._use_timer and self._timer is None:
            self._timer = threading.Timer(self.interval, self._on_timer)
            self._timer.daemon = True  # a summary is not worth keeping a process alive for
            self._timer.start()

    def _on_timer(self) -> None:
        now = self._clock()
        with self._lock:
            self._timer = None
            due = self._take_due(now)
            if any(run.suppressed for run in self._runs.values()):
                self._arm()  # repeats of a period still open: their count comes next time
        for summary in due:
            self._summarise(summary, now)

    def _take_due(self, now: float) -> list[_Run]:
        """Runs whose interval is over (caller holds the lock): counted ones are summed up and
        start a new period; quiet ones are dropped, so their next occurrence logs in full."""
        due: list[_Run] = []
        for name, run in list(self._runs.items()):
            if now - run.started < self.interval:
                continue
            if run.suppressed:
                due.append(_Run(run.level, run.text, run.started, run.last, run.suppressed))
            if now - run.last >= self.interval or not run.suppressed:
                del self._runs[name]  # the burst is over
            else:
                run.started, run.suppressed = now, 0
        return due

    def _summarise(self, run: _Run, now: float) -> None:
        if run.suppressed:
            self.logger.log(
                run.level,
                "%s (repeated %s times in the last %.0f s)",
                run.text,
                f"{run.suppressed:,}",
                max(now - run.started, 0.0),
            )
