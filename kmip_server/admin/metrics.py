"""Prometheus metrics aggregated over every worker process (prometheus_client multiprocess).

The supervisor names a fresh directory in ``PROMETHEUS_MULTIPROC_DIR`` before it forks the
workers (:func:`use_metrics_directory`): prometheus_client picks its file-backed values when
it is first imported, and each worker then writes its counters and histograms to files of
its own there; a scrape, answered by any worker, reads all of them (MultiProcessCollector).
What is a state rather than a count (workers accepting, open connections, objects by type
and state, pending approvals, the trail's length) is read when scraped (:class:`StateCollector`).

Names only, never values: labels are operation names and Result Reasons. A scrape asking for
OpenMetrics also gets, as exemplars, the request id of a recent request behind each latency
bucket and each outcome count (exemplars.py): what ties the metrics to a connection's log lines
and audit records.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..logformat import ITEM_CONTEXT
from .exemplars import ExemplarTable, with_exemplars

ENVIRONMENT = "PROMETHEUS_MULTIPROC_DIR"
#: Where in the data directory the workers' metric files live (emptied at every start).
METRICS_DIRECTORY = Path("run") / "metrics"
# Item latencies: from a cached Get (sub-millisecond) to an RSA key pair on a slow token.
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024)
_ITEM_SECONDS = "strongroom_batch_item_seconds"
_ITEMS = "strongroom_batch_items"
OPENMETRICS = "application/openmetrics-text"


def use_metrics_directory(data_dir: Path) -> Path:
    """Empty (or make) the data directory's metrics directory and name it in the environment,
    for the workers forked after this call; the server's own metrics are per run."""
    directory = data_dir / METRICS_DIRECTORY
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True, mode=0o700)
    os.environ[ENVIRONMENT] = str(directory)
    return directory


def metrics_enabled() -> bool:
    return bool(os.environ.get(ENVIRONMENT))


_exemplars: ExemplarTable | None = None


def exemplar_table() -> ExemplarTable:
    """This worker's exemplar table (made at first use, after the fork), in the metrics directory."""
    global _exemplars
    if _exemplars is None:
        _exemplars = ExemplarTable(Path(os.environ[ENVIRONMENT]), _BUCKETS)
    return _exemplars


class EngineMetrics:
    """What the dispatcher reports (engine/items.py's Metrics): every batch item, by operation
    and outcome, its latency, and how many messages each call answered together."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self.items = Counter(_ITEMS, "Batch items answered, by operation and outcome", ["operation", "outcome"])
        self.seconds = Histogram(_ITEM_SECONDS, "Time to answer one batch item", ["operation"], buckets=_BUCKETS)
        self.exemplars = exemplar_table()
        self.messages = Counter("strongroom_requests", "KMIP request messages answered")
        self.batch_sizes = Histogram(
            "strongroom_group_commit_messages",
            "Request messages answered by one engine call (one commit for their writes)",
            buckets=_BATCH_BUCKETS,
        )
        self.transactions = Histogram(
            "strongroom_database_transaction_seconds",
            "Time of one storage transaction, commit included",
            ["kind"],
            buckets=_BUCKETS,
        )

    def observe(self, operation: str, outcome: str, seconds: float) -> None:
        self.items.labels(operation, outcome).inc()
        self.seconds.labels(operation).observe(seconds)
        item = ITEM_CONTEXT.get()  # observed while the item runs (engine/items.py)
        if item is not None:
            self.exemplars.note(item.request_id, operation, outcome, seconds)

    def transaction(self, kind: str, seconds: float) -> None:
        self.transactions.labels(kind).observe(seconds)

    def batch(self, messages: int) -> None:
        self.messages.inc(messages)
        self.batch_sizes.observe(messages)


class TokenMetrics:
    """Each call to the key custody token (custody/metered.py): its latency, and failures."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self.seconds = Histogram(
            "strongroom_hsm_call_seconds", "Time of one call to the token", ["call"], buckets=_BUCKETS
        )
        self.errors = Counter("strongroom_hsm_call_errors", "Token calls that failed", ["call"])

    def observe(self, call: str, seconds: float, failed: bool) -> None:
        self.seconds.labels(call).observe(seconds)
        if failed:
            self.errors.labels(call).inc()


class TransportMetrics:
    """What the listeners report (transport/listener.py's ``events``)."""

    def __init__(self) -> None:
        from prometheus_client import Counter

        self.handshakes = Counter(
            "strongroom_tls_handshake_failures", "TLS handshakes that failed or sent no usable certificate"
        )

    def handshake_failed(self) -> None:
        self.handshakes.inc()


class StateCollector:
    """Gauges read at scrape time from ``read_state``, which returns (name, help, samples)
    triples, samples being (labels, value) pairs."""

    def __init__(self, read_state: Callable[[], Iterable[tuple[str, str, list[tuple[dict[str, str], float]]]]]) -> None:
        self.read_state = read_state

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        for name, text, samples in self.read_state():
            labels = sorted({key for sample_labels, _ in samples for key in sample_labels})
            family = GaugeMetricFamily(name, text, labels=labels)
            for sample_labels, value in samples:
                family.add_metric([sample_labels.get(key, "") for key in labels], value)
            yield family


class _WorkerCollector:
    """Every worker's counts (MultiProcessCollector), with the exemplars when asked for."""

    def __init__(self, exemplars: bool) -> None:
        from prometheus_client.multiprocess import MultiProcessCollector

        self.counts = MultiProcessCollector(None)  # type: ignore[no-untyped-call]
        self.exemplars = exemplars

    def collect(self) -> Iterable[Any]:
        families: Iterable[Any] = self.counts.collect()  # type: ignore[no-untyped-call]
        if not self.exemplars:
            return families
        return with_exemplars(families, exemplar_table().merged(), _ITEM_SECONDS, _ITEMS)


def wants_openmetrics(accept: str) -> bool:
    """Whether an Accept header field asks for OpenMetrics (as Prometheus's scrapes do)."""
    return any(part.split(";", 1)[0].strip().lower() == OPENMETRICS for part in accept.split(","))


def render(state: StateCollector, *, openmetrics: bool = False) -> tuple[bytes, str]:
    """The exposition of every worker's metrics and the current state: (body, content type);
    OpenMetrics with the exemplars when ``openmetrics``, else the classic text format."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.openmetrics import exposition

    registry = CollectorRegistry()
    registry.register(_WorkerCollector(openmetrics))
    registry.register(state)
    if openmetrics:
        return exposition.generate_latest(registry), exposition.CONTENT_TYPE_LATEST  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST
