"""Running a command with its output on a pseudo-terminal, as a person at a terminal sees it:
what commands that behave differently on a terminal (progress lines) are tested with."""

from __future__ import annotations

import dataclasses
import os
import pty
import subprocess
import tempfile
from collections.abc import Sequence


@dataclasses.dataclass(frozen=True)
class TerminalRun:
    status: int
    terminal: str  # what the terminal received; its "\r\n" line ends made "\n"
    stdout: str  # stdout when it went elsewhere ("" when it went to the terminal too)

    def visible_lines(self) -> list[str]:
        """The lines as the terminal shows them at the end: of a line rewritten in place
        (``\\r``), what was written last."""
        return [line.rsplit("\r", 1)[-1].rstrip() for line in self.terminal.split("\n") if line.strip()]


def run_on_terminal(command: Sequence[str], *, stdout_too: bool = True, timeout: float = 120) -> TerminalRun:
    """Run ``command`` with stderr (and stdout, when ``stdout_too``; else a file) on a
    pseudo-terminal, to its end."""
    controller, terminal = pty.openpty()
    # A file rather than a pipe for stdout: a pipe nobody reads while the terminal is read
    # would stop a command with much to say.
    captured = tempfile.TemporaryFile()
    try:
        stdout = terminal if stdout_too else captured
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=stdout, stderr=terminal)
        os.close(terminal)
        terminal = -1
        received = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not chunk:
                break
            received += chunk
        status = process.wait(timeout=timeout)
        captured.seek(0)
        piped = captured.read()
    finally:
        captured.close()
        os.close(controller)
        if terminal != -1:
            os.close(terminal)
    return TerminalRun(status, received.decode().replace("\r\n", "\n"), piped.decode())
