"""The first Gets of a fresh key, from several processes at once, all succeed.

A key is Fresh until a Get serves it, and that first Get writes the Fresh attribute. On
PostgreSQL two such Gets in two worker processes (or on two nodes) used to race: each
deleted the (absent) Fresh row, each inserted one, and the second failed on the primary key
with General Failure. Each process here has its own token session, Repository and engine on
the same store, as a worker does; a barrier starts every key's Gets together.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

from kmip_client.protocol.spec.enums import Operation, ResultStatus
from kmip_server.engine.dispatcher import Dispatcher

from .conftest import SoftHsmToken
from .engine_support import ALICE, create, one
from .kmip_messages import V14, item, ok

PROCESSES = 4
KEYS = 40


def _first_gets(url: str, token: SoftHsmToken, uids: list[str], opening: Any, barrier: Any, results: Any) -> None:
    from kmip_server import operations  # noqa: F401  (registers the handlers)
    from kmip_server.policy import Policy
    from kmip_server.storage.repository import Repository

    failures: list[str] = []
    try:
        with opening:  # SoftHSM2 rewrites its token files at login: one process at a time
            custody = token.open()
        repository = Repository(url)
        engine = Dispatcher(repository, custody, Policy(administrators=frozenset({"admin"})))
        for uid in uids:
            barrier.wait(timeout=60)
            result = one(engine, V14, item(Operation.GET, unique_identifier=uid), identity=ALICE)
            if result.result_status != ResultStatus.SUCCESS:
                failures.append(f"{uid}: {result.result_reason!r} {result.result_message}")
        repository.dispose()
        custody.close()
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the test
        failures.append(f"process failed: {exc!r}")
        barrier.abort()
    results.put(failures)


def test_simultaneous_first_gets_of_fresh_keys(engine: Dispatcher, softhsm_token: SoftHsmToken) -> None:
    uids = [create(engine) for _ in range(KEYS)]
    url = engine.repository.engine.url.render_as_string(hide_password=False)
    spawn = multiprocessing.get_context("spawn")  # a PKCS#11 session must not cross a fork
    opening, barrier, results = spawn.Lock(), spawn.Barrier(PROCESSES), spawn.Queue()
    workers = [
        spawn.Process(target=_first_gets, args=(url, softhsm_token, uids, opening, barrier, results))
        for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    failures = [failure for _ in workers for failure in results.get(timeout=300)]
    for worker in workers:
        worker.join(timeout=60)
    assert failures == []
    assert all(worker.exitcode == 0 for worker in workers)
    named = item(Operation.GET_ATTRIBUTES, unique_identifier=uids[0], attribute_names=("Fresh",))
    assert [(a.name, a.value) for a in ok(one(engine, V14, named)).attribute_list] == [("Fresh", False)]
