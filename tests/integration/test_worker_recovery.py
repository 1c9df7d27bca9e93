"""Worker supervision under faults, against `strongroom serve` with a real SoftHSM2 token: a
worker that dies while the token is unavailable must not take the server down."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from kmip_client.protocol.spec.enums import ResultStatus
from kmip_server.transport.workers import retry_delay
from tests.support.server_process import (
    ServerProcess,
    child_pids,
    free_port,
    running_server,
    strongroom_init,
    wait_for_log,
)

from .test_server_cli import create_and_get, discover_versions


def _workers(server: ServerProcess) -> set[int]:
    return child_pids(server.process.pid)


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _serves(server: ServerProcess) -> None:
    (answer,) = discover_versions(server).batch_items
    assert answer.result_status == ResultStatus.SUCCESS, (answer.result_reason, answer.result_message)


def test_retries_back_off_from_half_a_second_to_half_a_minute() -> None:
    assert [retry_delay(attempt) for attempt in range(1, 9)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_a_replacement_that_cannot_open_the_token_is_retried_while_the_others_serve(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    strongroom_init(data_dir)
    (token,) = (data_dir / "hsm/tokens").iterdir()
    away = data_dir / "hsm/token-away"
    with running_server(data_dir, free_port(), workers=2, extra_args=["--log-level", "DEBUG"]) as server:
        _wait_for(lambda: len(_workers(server)) == 2, 10.0, "two workers")
        victim, survivor = sorted(_workers(server))
        token.rename(away)  # SoftHSM2 no longer finds the token: no new process can open it
        os.kill(victim, signal.SIGKILL)
        wait_for_log(server, "(attempt 2 failed)", timeout=10.0)
        # The survivor answers all the while, and the parent is still there.
        for _ in range(6):
            _serves(server)
        assert server.process.poll() is None
        assert survivor in _workers(server)
        log = server.stderr_text(100_000)
        assert f"worker 0 (pid {victim}) was killed by SIGKILL unexpectedly; restarting it" in log or (
            f"worker 1 (pid {victim}) was killed by SIGKILL unexpectedly; restarting it" in log
        )
        for attempt in (1, 2):
            line = next(line for line in log.splitlines() if f"(attempt {attempt} failed)" in line)
            assert "could not start" in line and "not found" in line, line
            assert log.count(f"(attempt {attempt} failed)") == 1, log
        assert "trying again in 0.5 s (attempt 1 failed)" in log and "trying again in 1.0 s (attempt 2 failed)" in log
        # At DEBUG (which this server logs at, to show which worker answers) a failed start
        # comes with its traceback; at INFO and above there is none.
        assert log.count("Traceback") == log.count("the request handler could not be created")

        away.rename(token)  # the token is back: the next attempt starts the worker
        wait_for_log(server, "started after", timeout=20.0)
        _wait_for(lambda: len(_workers(server)) == 2, 5.0, "two workers again")
        assert survivor in _workers(server)
        (newcomer,) = _workers(server) - {survivor}
        # The new worker serves, the token included: a Create (random key, wrapped) or a Get
        # (unwrapped) answered by it. Connections are spread over both workers, and as each
        # exchange opens one, the Creates may all go to one worker and the Gets to the other.
        wanted = tuple(
            f"[{newcomer}] strongroom.audit: identity=admin operation={op} result=Success" for op in ("Create", "Get")
        )
        for _ in range(30):
            create_and_get(server)
            if any(line in server.stderr_text(100_000) for line in wanted):
                break
        else:
            raise AssertionError(f"the new worker (pid {newcomer}) answered nothing\n{server.stderr_text()}")
        assert server.stop() == 0
    final = server.stderr_text(100_000)
    assert final.count("Traceback") == final.count("the request handler could not be created")
