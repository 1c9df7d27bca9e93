"""The XKS request rate's token bucket (kmip_server/hyok/xks_throttle.py) on a clock of its own."""

from __future__ import annotations

from kmip_server.hyok.xks_settings import XksCredential
from kmip_server.hyok.xks_throttle import TokenBucket, buckets_for


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_of_the_rate_then_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(2.0, clock)
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    assert bucket.wait() == 0.5
    clock.now += 0.5
    assert [bucket.take(), bucket.take()] == [True, False]
    clock.now += 60  # idle for long: still no more than the burst
    assert [bucket.take() for _ in range(3)] == [True, True, False]


def test_a_rate_below_one_still_lets_one_request_through() -> None:
    clock = Clock()
    bucket = TokenBucket(0.2, clock)
    assert [bucket.take(), bucket.take()] == [True, False]
    assert round(bucket.wait(), 6) == 5.0
    clock.now += 4.9
    assert not bucket.take()
    clock.now += 0.1
    assert bucket.take()


def test_a_reload_keeps_the_buckets_whose_rate_is_unchanged() -> None:
    def credential(key: str, rate: float | None) -> XksCredential:
        return XksCredential(key, "secret", max_requests_per_second=rate)

    before = buckets_for([credential("A", 2.0), credential("B", 5.0), credential("C", None)], {})
    assert sorted(before) == ["A", "B"]  # no limit, no bucket
    after = buckets_for([credential("A", 2.0), credential("B", 6.0), credential("D", 1.0)], before)
    assert after["A"] is before["A"]
    assert after["B"] is not before["B"] and after["B"].rate == 6.0
    assert sorted(after) == ["A", "B", "D"]
