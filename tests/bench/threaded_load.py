"""The load generator behind bench_cse.py, bench_xks.py and bench_https.py: N connections, each
driven by a thread of its own running the benchmark's request loop on a blocking socket,
spread over a few client processes (so that the client is not held to one core by the GIL),
for a warm-up and then a measured window of wall-clock time; the latencies of the requests
started in the window, the errors, and the server's CPU (all its processes) over the window.

A benchmark supplies ``connection(setting, window, latencies, errors)``, a module-level
function (it is sent to the client processes) that opens one connection and sends requests
on it until ``window.stop``, appending each measured request's latency in seconds to
``latencies`` and each failure's description to ``errors``.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from loadgen import process_tree_cpu_seconds

IO_TIMEOUT = 30.0  # how long past the window a client thread may take to finish
STARTUP = 0.5  # seconds for the client processes to start before the warm-up begins

S = TypeVar("S")


@dataclass(frozen=True)
class Window:
    """Wall-clock instants (``time.time()``): warm-up until ``measure``, measured until ``stop``."""

    measure: float
    stop: float


Connection = Callable[[S, Window, list[float], list[str]], None]


@dataclass(frozen=True)
class Cell:
    """One run: the measured latencies in seconds (sorted), the errors, and the server's CPU."""

    latencies: list[float]
    errors: list[str]
    duration: float
    server_cpu_seconds: float

    @property
    def rate(self) -> float:
        """Requests per second in the measured window."""
        return len(self.latencies) / self.duration

    def percentile_ms(self, fraction: float) -> float:
        """The latency at ``fraction`` (0.5, 0.99) in milliseconds: the sorted sample's
        element at that fraction of its length (0 when there are none)."""
        if not self.latencies:
            return 0.0
        return self.latencies[min(len(self.latencies) - 1, int(len(self.latencies) * fraction))] * 1e3

    @property
    def max_ms(self) -> float:
        return self.latencies[-1] * 1e3 if self.latencies else 0.0

    def over(self, budget: float) -> int:
        """How many requests took longer than ``budget`` seconds."""
        return sum(1 for latency in self.latencies if latency > budget)

    @property
    def server_us_per_request(self) -> float:
        return self.server_cpu_seconds / len(self.latencies) * 1e6 if self.latencies else 0.0


def _client(
    connection: Connection[Any], setting: Any, count: int, window: Window, pipe: multiprocessing.connection.Connection
) -> None:
    """A client process: ``count`` connection threads, then their latencies and errors to ``pipe``."""
    latencies: list[float] = []
    errors: list[str] = []
    threads = [
        threading.Thread(target=connection, args=(setting, window, latencies, errors), daemon=True)
        for _ in range(count)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(window.stop - time.time() + IO_TIMEOUT)
    pipe.send((latencies, errors))


def _sleep_until(instant: float) -> None:
    time.sleep(max(0.0, instant - time.time()))


def run_cell(
    connection: Connection[S],
    settings: Sequence[S],
    connections: int,
    *,
    processes: int,
    warmup: float,
    duration: float,
    server_pid: int,
) -> Cell:
    """Run ``connections`` connections of ``connection`` over at most ``processes`` client
    processes, client process ``i`` giving its connections ``settings[i % len(settings)]``."""
    processes = min(processes, connections)
    share = [connections // processes + (n < connections % processes) for n in range(processes)]
    measure = time.time() + STARTUP + warmup
    window = Window(measure, measure + duration)
    children = []
    for index, count in enumerate(share):
        ours, theirs = multiprocessing.Pipe(duplex=False)
        setting = settings[index % len(settings)]
        process = multiprocessing.Process(target=_client, args=(connection, setting, count, window, theirs))
        process.start()
        children.append((process, ours))
    _sleep_until(window.measure)
    cpu_before = process_tree_cpu_seconds(server_pid)
    _sleep_until(window.stop)
    cpu = process_tree_cpu_seconds(server_pid) - cpu_before
    latencies: list[float] = []
    errors: list[str] = []
    for process, pipe in children:
        got, failed = pipe.recv()
        latencies += got
        errors += failed
        process.join()
    latencies.sort()
    return Cell(latencies, errors, duration, cpu)
