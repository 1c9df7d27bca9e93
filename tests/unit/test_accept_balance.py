"""The connection table the worker processes share to spread connections evenly."""

from __future__ import annotations

import os

from kmip_server.transport.balance import AcceptBalancer, ConnectionTable


def test_a_worker_with_more_connections_than_a_sibling_lets_connections_pass() -> None:
    table = ConnectionTable(3)
    first, second, third = (AcceptBalancer(table, index) for index in range(3))
    first.publish(5)
    second.publish(3)
    third.publish(4)
    assert table.fewest_elsewhere(0) == 3
    assert first.should_pass(5)
    assert not second.should_pass(3)  # it holds the fewest: it accepts
    assert third.should_pass(4)


def test_equal_counts_accept() -> None:
    table = ConnectionTable(2)
    first, second = AcceptBalancer(table, 0), AcceptBalancer(table, 1)
    first.publish(2)
    second.publish(2)
    assert not first.should_pass(2) and not second.should_pass(2)


def test_siblings_that_do_not_accept_never_hold_a_worker_back() -> None:
    table = ConnectionTable(2)
    first, second = AcceptBalancer(table, 0), AcceptBalancer(table, 1)
    first.publish(10)
    assert table.fewest_elsewhere(0) is None  # the sibling has not started
    assert not first.should_pass(10)
    second.publish(0)
    assert first.should_pass(10)
    second.withdraw()  # stopping, or dead (the parent withdraws a dead worker's entry)
    assert not first.should_pass(10)


def test_a_worker_accepts_anyway_after_a_few_passes_in_a_row() -> None:
    # A sibling stuck in a long request, or a stale entry, must not starve new clients.
    table = ConnectionTable(2)
    first, second = AcceptBalancer(table, 0), AcceptBalancer(table, 1)
    first.publish(9)
    second.publish(1)
    decisions = [first.should_pass(9) for _ in range(6)]
    assert decisions == [True, True, True, True, False, True]


def test_the_table_is_shared_with_forked_workers() -> None:
    table = ConnectionTable(2)
    pid = os.fork()
    if pid == 0:  # the "worker": publishes, exits without running pytest's teardown
        AcceptBalancer(table, 1).publish(7)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert table.fewest_elsewhere(0) == 7
