"""Reading the admin listener's ``/metrics`` (the Prometheus text format) in tests."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def metric_samples(text: str) -> dict[str, float]:
    """Every sample of a Prometheus text exposition by ``name{label=value,...}`` (labels sorted,
    ``name{}`` without labels), as the tests look them up."""
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples
