"""Exemplars: the request id of a recent request behind each latency bucket and each outcome.

A request id (the client connection's address, logformat.py) ties a connection's log lines
and its audit records together; in the metrics it would be a label of unbounded cardinality,
so it rides as an OpenMetrics exemplar instead: for each operation's latency bucket, and each
operation and outcome count, the last request that landed there, with its value and time.
A scraper asking for ``application/openmetrics-text`` gets them (Prometheus with exemplar
storage, Grafana's "exemplars" toggle); the classic text format has no place for them.

prometheus_client keeps no exemplars in multiprocess mode, so each worker keeps its own table
in memory and a thread of its writes it to ``exemplars-PID.json`` in the metrics directory
once a second when it changed (MultiProcessCollector reads only ``*.db`` files there); a
scrape merges every worker's table, the newest per key, the scraping worker's own unwritten
notes included. Labels are the request id only: never an identity's secrets or a value.
"""

from __future__ import annotations

import json
import os
import threading
import time
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["ExemplarTable", "with_exemplars"]

_FLUSH_SECONDS = 1.0
# One key per (operation, bucket) and (operation, outcome): bounded, but not by the clients.
_MAX_KEYS = 4096
_PREFIX = "exemplars-"
_LABEL_MAX = 120  # OpenMetrics caps an exemplar's labels at 128 characters in all

Note = tuple[str, float, float]  # request id, observed value, time


class ExemplarTable:
    """One worker's exemplars, flushed to its file in ``directory`` by a daemon thread."""

    def __init__(self, directory: Path, buckets: Sequence[float]) -> None:
        self.directory = directory
        from prometheus_client.utils import floatToGoString

        self.bounds = tuple(buckets)
        # The ``le`` labels as the exposition spells them, once: bucket() runs for every item.
        self.labels = tuple(floatToGoString(bound) for bound in self.bounds)  # type: ignore[no-untyped-call]
        self.path = directory / f"{_PREFIX}{os.getpid()}.json"
        self.notes: dict[str, Note] = {}
        self._lock = threading.Lock()
        self._dirty = False
        self._thread: threading.Thread | None = None

    def bucket(self, seconds: float) -> str:
        """The ``le`` label of the histogram bucket ``seconds`` is counted in (its upper bound)."""
        index = bisect_left(self.bounds, seconds)
        return self.labels[index] if index < len(self.labels) else "+Inf"

    def note(self, request_id: str | None, operation: str, outcome: str, seconds: float) -> None:
        if not request_id:
            return
        now = time.time()
        request_id = request_id[:_LABEL_MAX]
        with self._lock:
            for key, value in (
                (f"seconds\0{operation}\0{self.bucket(seconds)}", seconds),
                (f"items\0{operation}\0{outcome}", 1.0),
            ):
                if key in self.notes or len(self.notes) < _MAX_KEYS:
                    self.notes[key] = (request_id, value, now)
            self._dirty = True
            if self._thread is None:  # started by the first note: after the worker's fork
                self._thread = threading.Thread(target=self._flush_forever, name="exemplars", daemon=True)
                self._thread.start()

    def _flush_forever(self) -> None:
        while True:
            time.sleep(_FLUSH_SECONDS)
            self.flush()

    def flush(self) -> None:
        """Write the table to this worker's file if it changed (atomically: a scrape never
        reads half of it)."""
        with self._lock:
            if not self._dirty:
                return
            data = json.dumps(self.notes, separators=(",", ":"))
            self._dirty = False
        partial = self.path.with_suffix(".partial")
        partial.write_text(data)
        partial.replace(self.path)

    def merged(self) -> dict[str, Note]:
        """Every worker's notes, the newest per key, this worker's unwritten ones included."""
        merged: dict[str, Note] = {}
        for path in self.directory.glob(f"{_PREFIX}*.json"):
            try:
                notes = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # a worker's file replaced or removed while read: the next scrape has it
            _newest(merged, ((key, (str(n[0]), float(n[1]), float(n[2]))) for key, n in notes.items()))
        with self._lock:
            _newest(merged, list(self.notes.items()))
        return merged


def _newest(into: dict[str, Note], notes: Iterable[tuple[str, Note]]) -> None:
    for key, note in notes:
        if key not in into or note[2] > into[key][2]:
            into[key] = note


def with_exemplars(
    families: Iterable[Any], notes: dict[str, Note], seconds_name: str, items_name: str
) -> Iterable[Any]:
    """``families`` with the exemplars of ``notes`` on the latency buckets of ``seconds_name``
    and the counts of ``items_name``."""
    from prometheus_client.samples import Exemplar

    for family in families:
        if family.name in (seconds_name, items_name):
            samples = []
            for sample in family.samples:
                key = _key(family.name == seconds_name, sample.name, sample.labels)
                note = notes.get(key) if key else None
                if note is not None:
                    sample = sample._replace(exemplar=Exemplar({"request_id": note[0]}, note[1], note[2]))
                samples.append(sample)
            family.samples = samples
        yield family


def _key(latency: bool, name: str, labels: dict[str, str]) -> str | None:
    operation = labels.get("operation", "")
    if latency:
        return f"seconds\0{operation}\0{labels['le']}" if name.endswith("_bucket") else None
    return f"items\0{operation}\0{labels.get('outcome', '')}" if name.endswith("_total") else None
