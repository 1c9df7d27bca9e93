"""RepeatLimiter: a burst of identical failures is logged once, then as a count."""

from __future__ import annotations

import logging
import time

import pytest

from kmip_server.logsafe import RepeatLimiter

LOGGER = "strongroom.test.logsafe"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _failure() -> BaseException:
    try:
        raise OSError("disk I/O error")
    except OSError as exc:
        return exc


def test_a_thousand_identical_failures_log_once_then_a_count(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    limiter = RepeatLimiter(logging.getLogger(LOGGER), interval=10.0, clock=clock, timer=False)
    exc = _failure()
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        for _ in range(1000):
            limiter.error("storage transaction failed: %s: %s", type(exc).__name__, exc, exc_info=exc)
            clock.now += 0.005  # 1,000 in 5 s
        assert len(caplog.records) == 1
        assert caplog.records[0].exc_info is not None  # the traceback, the first time
        clock.now += 10.0  # the burst is over; the next call of any kind sums it up
        other = RuntimeError("another failure")
        limiter.error("internal error during GET: %s", other, exc_info=other)
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0] == "storage transaction failed: OSError: disk I/O error"
    assert messages[1].startswith(
        "storage transaction failed: OSError: disk I/O error (repeated 999 times in the last "
    )
    assert caplog.records[1].exc_info is None
    assert messages[2] == "internal error during GET: another failure"
    assert len(messages) == 3


def test_a_different_failure_is_logged_at_once(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RepeatLimiter(logging.getLogger(LOGGER), interval=10.0, clock=Clock(), timer=False)
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        for _ in range(50):
            limiter.error("key custody failed during CREATE: %s", "GeneralError")
        limiter.error("key custody failed during GET: %s", "GeneralError")
        limiter.error("storage transaction failed: %s", "OperationalError: database is locked")
    assert [record.getMessage() for record in caplog.records] == [
        "key custody failed during CREATE: GeneralError",
        "key custody failed during GET: GeneralError",
        "storage transaction failed: OperationalError: database is locked",
    ]


def test_a_continuing_burst_is_counted_at_each_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    limiter = RepeatLimiter(logging.getLogger(LOGGER), interval=10.0, clock=clock, timer=False)
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        for _ in range(3000):  # 30 s of 100 failures a second
            limiter.error("storage transaction failed: %s", "OperationalError: disk full")
            clock.now += 0.01
        limiter.flush()
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0] == "storage transaction failed: OperationalError: disk full"
    counts = [int(m.split("repeated ")[1].split(" ")[0].replace(",", "")) for m in messages[1:]]
    assert 3 <= len(counts) <= 4  # one per 10 s, and the rest at flush
    assert sum(counts) == 2999


def test_flush_reports_pending_counts_and_forgets_them(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RepeatLimiter(logging.getLogger(LOGGER), interval=10.0, clock=Clock(), timer=False)
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        for _ in range(3):
            limiter.error("storage transaction failed: %s", "x")
        limiter.flush()
        limiter.flush()
        limiter.error("storage transaction failed: %s", "x")
    assert [record.getMessage() for record in caplog.records] == [
        "storage transaction failed: x",
        "storage transaction failed: x (repeated 2 times in the last 0 s)",
        "storage transaction failed: x",
    ]


def test_kinds_are_bounded(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RepeatLimiter(logging.getLogger(LOGGER), interval=10.0, clock=Clock(), max_kinds=4, timer=False)
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        for index in range(100):
            limiter.error("failure %d", index)
    assert len(caplog.records) == 100
    assert len(limiter._runs) <= 4


def test_a_burst_that_ends_is_summed_up_by_the_timer(caplog: pytest.LogCaptureFixture) -> None:
    # No further failure comes: the count must not wait for one (or for the worker's exit).
    limiter = RepeatLimiter(logging.getLogger(LOGGER), interval=0.2)
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        for _ in range(100):
            limiter.error("storage transaction failed: %s", "OperationalError: disk I/O error")
        deadline = time.monotonic() + 5.0
        while len(caplog.records) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # and nothing more after it: the timer stops once nothing is counted
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0] == "storage transaction failed: OperationalError: disk I/O error"
    assert messages[1].startswith("storage transaction failed: OperationalError: disk I/O error (repeated 99 times")
    assert len(messages) == 2
    assert limiter._timer is None
