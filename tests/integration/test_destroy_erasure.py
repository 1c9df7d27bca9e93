"""Destroy is irreversible on SQLite: once a Destroy is acknowledged, the destroyed object's
wrapped value is in none of the store's files, even if the server dies the next instant.

A real ``strongroom serve`` (two workers, background checkpoints) creates keys, each is read
back once (so more pages pass through the write-ahead log), one is destroyed, and every server
process is killed with SIGKILL right after the Destroy's answer: no clean shutdown, no final
checkpoint. Then the raw bytes of strongroom.db, its -wal and its -shm are searched.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from kmip_client import Client
from tests.support.server_process import child_pids, free_port, strongroom_command, strongroom_init, wait_for_tls

KEYS = 40


def _kill_all(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the server and its workers at once (workers first: a worker left alive could
    close its connections cleanly and checkpoint)."""
    for pid in [*child_pids(process.pid), process.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # already gone
    process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while child_pids(process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _wrapped_values(db: Path) -> dict[str, bytes]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT uid, wrapped_value FROM managed_objects").fetchall()
    return {uid: value for uid, value in rows if value is not None}


def test_a_destroyed_value_is_in_no_file_after_sigkill(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    tls = strongroom_init(data_dir)
    port = free_port()
    stderr = (tmp_path / "serve.stderr").open("wb")
    process = subprocess.Popen(
        [*strongroom_command(), "serve", "--data-dir", str(data_dir), "--port", str(port), "--workers", "2"],
        stdout=stderr,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_for_tls("127.0.0.1", port, tls, timeout=60, process=process)
        with Client(f"127.0.0.1:{port}", ca=tls.ca, cert=tls.cert, key=tls.key) as kmip:
            uids = [kmip.create("AES", 256, name=f"erasure-{i}") for i in range(KEYS)]
            for uid in uids:
                kmip.get(uid)  # ends each key's freshness: another write of its pages
            db = data_dir / "strongroom.db"
            values = _wrapped_values(db)
            assert set(values) == set(uids)
            doomed = uids[KEYS // 2]
            kmip.destroy(doomed)
            _kill_all(process)  # the moment the Destroy is acknowledged
    finally:
        if process.poll() is None:
            _kill_all(process)
        stderr.close()

    files = sorted(p for p in data_dir.iterdir() if p.name.startswith("strongroom.db"))
    assert db in files
    contents = {p.name: p.read_bytes() for p in files}
    assert [name for name, data in contents.items() if values[doomed] in data] == []  # where it survives
    raw = b"".join(contents.values())
    # The search can find what it looks for: every other key's value is still stored.
    missing = [uid for uid in uids if uid != doomed and values[uid] not in raw]
    assert not missing
    with sqlite3.connect(db) as conn:  # and the store opens, the Destroy recorded
        assert conn.execute("SELECT wrapped_value FROM managed_objects WHERE uid = ?", (doomed,)).fetchone() == (None,)
        assert conn.execute("SELECT COUNT(*) FROM managed_objects WHERE wrapped_value IS NOT NULL").fetchone() == (
            KEYS - 1,
        )
