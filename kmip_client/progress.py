"""Progress of a long-running command on standard error: shown on a terminal or when asked for
(``--progress``), absent when the output goes to a pipe or a file, so that scripts and logs get
the results alone.

One helper serves every long command: ``kmip import`` (lines of the manifest done), and the
server's ``strongroom init`` (its steps), ``backup`` (database pages copied) and ``restore``
(bytes written). A count is one line rewritten in place on a terminal (at most ten times a
second); elsewhere (``--progress`` into a file) a line at most every second, and the last one.
A step is a line of its own, printed as the step begins: ``[2/5] CA and server certificate...``.
"""

from __future__ import annotations

import time
from typing import IO

__all__ = ["ProgressPrinter", "wanted"]

_TERMINAL_INTERVAL = 0.1
_LOG_INTERVAL = 1.0


def wanted(stream: IO[str], forced: bool = False) -> bool:
    """Whether to show progress on ``stream``: asked for (``--progress``), or a terminal."""
    if forced:
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced by an object without one, or closed
        return False


class ProgressPrinter:
    """Progress lines on ``stream``, each starting with ``prefix``.

    Called as ``printer(done, total, **values)`` it reports a count: ``what`` is formatted with
    ``done``, ``total`` and the ``values``, and the percentage is appended. :meth:`step` reports
    a step. Call :meth:`clear` before writing anything else to the same terminal, and
    :meth:`finish` at the end.
    """

    def __init__(self, stream: IO[str], what: str = "{done}/{total}", *, prefix: str = "strongroom: ") -> None:
        self.stream = stream
        self.what = what
        self.prefix = prefix
        self.tty = wanted(stream)
        self.last = 0.0
        self.open_line = 0  # the length of the count line the terminal shows now, 0 for none

    def __call__(self, done: int, total: int, **values: object) -> None:
        now = time.monotonic()
        complete = done >= total
        # A terminal line taken away by clear() is drawn again at once; otherwise no more often
        # than the interval, except the last count, which is always shown.
        recent = now - self.last < (_TERMINAL_INTERVAL if self.tty else _LOG_INTERVAL)
        if not complete and recent and (self.open_line or not self.tty):
            return
        self.last = now
        percent = 100 * done // total if total else 100
        text = f"{self.prefix}{self.what.format(done=done, total=total, **values)} ({percent}%)"
        if self.tty:
            # Padded to the previous line's length: a shorter line leaves none of it behind.
            self.stream.write("\r" + text.ljust(self.open_line) + ("\n" if complete else ""))
            self.open_line = 0 if complete else len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def step(self, number: int, total: int, text: str) -> None:
        """Step ``number`` of ``total`` begins: ``[number/total] text``, a line of its own."""
        self.clear()
        width = len(str(total))
        self.stream.write(f"{self.prefix}[{number:>{width}}/{total}] {text}\n")
        self.stream.flush()

    def clear(self) -> None:
        """Take a count line off the terminal (other output is about to go there)."""
        if self.open_line:
            self.stream.write("\r" + " " * self.open_line + "\r")
            self.stream.flush()
            self.open_line = 0

    def finish(self) -> None:
        """End an unfinished count line, so that what follows starts on a line of its own."""
        if self.open_line:
            self.stream.write("\n")
            self.stream.flush()
            self.open_line = 0
