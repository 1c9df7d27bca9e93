"""``strongroom audit ...`` on a real data directory made by ``strongroom init``, its trail
written with the directory's own token (no server, no request engine): the exit codes and
messages of verify, verify-export and export on intact and tampered trails, tail (-n,
--follow) and search by time.

The token of a data directory can only be used from a process of its own (libsofthsm2 reads
its configuration once per process, and this one uses the test session's token), so the
commands and the appends run as subprocesses.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.server_process import strongroom_command, strongroom_init

#: Appends events to DIR's trail with DIR's token: argv = DIR FIRST COUNT [PER_APPEND].
APPENDER = """
import sys
import threading
from pathlib import Path
from kmip_server.audit import AuditEvent, AuditTrail
from kmip_server.audit.cli import _token
from kmip_server.config import load_config
from kmip_server.storage.repository import Repository

config = load_config(Path(sys.argv[1]))
first, count = int(sys.argv[2]), int(sys.argv[3])
per = int(sys.argv[4]) if len(sys.argv) > 4 else 1
repository = Repository(config.storage.url)
repository.create_schema()
with _token(config) as custody:
    trail = AuditTrail(custody, "node-a")
    numbers = list(range(first, first + count))
    for start in range(0, count, per):
        events = [
            AuditEvent(
                time=1_700_000_000 + n * 60, node="node-a", identity="alice" if n % 2 else "bob",
                address="10.0.0.7:4000", fingerprint=None, operation="Get" if n % 3 else "Destroy",
                object_ids=(f"uid-{n}",), attributes=(), result="Success", reason=None, detail=f"event {n}",
            )
            for n in numbers[start : start + per]
        ]
        with repository.write() as s:
            trail.append(s.connection, events)
repository.dispose()
"""


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*strongroom_command(), *args], capture_output=True, text=True, timeout=120, check=False)


def append(data_dir: Path, first: int, count: int, per: int = 1) -> None:
    subprocess.run(
        [sys.executable, "-c", APPENDER, str(data_dir), str(first), str(count), str(per)],
        check=True,
        timeout=120,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised data directory whose trail holds records 1-6 (appends of 2, 3 and 1)."""
    directory = tmp_path_factory.mktemp("audit-operator") / "data"
    strongroom_init(directory)
    before = cli("audit", "verify", "--data-dir", str(directory))
    assert before.returncode == 0 and "0 records" in before.stdout, before
    append(directory, 1, 2, per=2)
    append(directory, 3, 3, per=3)
    append(directory, 6, 1)
    return directory


def database(data_dir: Path) -> Path:
    return data_dir / "strongroom.db"


@contextmanager
def tampered(data_dir: Path, *statements: str) -> Iterator[None]:
    """Run ``statements`` on the store for the block, then put every audit row back."""
    with sqlite3.connect(database(data_dir)) as db:
        records = db.execute("SELECT * FROM audit_records").fetchall()
        head = db.execute("SELECT * FROM audit_head").fetchall()
        for statement in statements:
            db.execute(statement)
    try:
        yield
    finally:
        with sqlite3.connect(database(data_dir)) as db:
            db.execute("DELETE FROM audit_records")
            db.execute("DELETE FROM audit_head")
            db.executemany(f"INSERT INTO audit_records VALUES ({','.join('?' * len(records[0]))})", records)
            db.executemany(f"INSERT INTO audit_head VALUES ({','.join('?' * len(head[0]))})", head)
        assert cli("audit", "verify", "--data-dir", str(data_dir)).returncode == 0


def test_verify_exits_0_on_an_intact_trail(data_dir: Path) -> None:
    verified = cli("audit", "verify", "--data-dir", str(data_dir))
    assert (verified.returncode, verified.stdout.strip()) == (0, "audit trail intact: 6 records"), verified


@pytest.mark.parametrize(
    ("statements", "named"),
    [
        (["UPDATE audit_records SET identity = 'mallory' WHERE seq = 4"], "broken at record 4: record 4: its hash"),
        (["DELETE FROM audit_records WHERE seq = 3"], "broken at record 4: record 4: seq 4 where 3"),
        (["DELETE FROM audit_records WHERE seq > 5"], "broken at record 6: the trail ends at seq 5"),
        (["UPDATE audit_head SET mac = NULL"], "broken at record 7: the head row's MAC is not the token's"),
    ],
    ids=["edit", "delete", "truncate", "head"],
)
def test_verify_exits_2_naming_the_first_bad_record(data_dir: Path, statements: list[str], named: str) -> None:
    with tampered(data_dir, *statements):
        broken = cli("audit", "verify", "--data-dir", str(data_dir))
        assert broken.returncode == 2 and named in broken.stdout, broken


def test_an_export_verifies_and_a_tampered_one_exits_2(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "trail.jsonl"
    exported = cli("audit", "export", "--data-dir", str(data_dir), "--format", "jsonl", "--out", str(out))
    assert exported.returncode == 0 and "exported 6 records" in exported.stderr, exported
    lines = out.read_text().splitlines()
    assert len(lines) == 7 and json.loads(lines[-1])["seal"]["seq"] == 6
    good = cli("audit", "verify-export", "--data-dir", str(data_dir), str(out))
    assert good.returncode == 0 and "intact: 6 records" in good.stdout, good
    record = json.loads(lines[1])
    record["detail"] = "nothing happened"
    out.write_text("\n".join([lines[0], json.dumps(record), *lines[2:]]) + "\n")
    bad = cli("audit", "verify-export", "--data-dir", str(data_dir), str(out))
    assert bad.returncode == 2 and "export broken at line 2" in bad.stdout, bad


def test_a_tampered_trail_is_not_exported(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "trail.jsonl"
    with tampered(data_dir, "UPDATE audit_records SET result = 'Operation Failed' WHERE seq = 2"):
        refused = cli("audit", "export", "--data-dir", str(data_dir), "--out", str(out))
    assert refused.returncode == 2 and "broken at record 2" in refused.stdout and "not exported" in refused.stdout
    assert not out.exists()


def test_a_syslog_export_has_one_rfc_5424_line_per_record(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "trail.log"
    assert cli("audit", "export", "--data-dir", str(data_dir), "--format", "syslog", "--out", str(out)).returncode == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 6
    assert lines[0].startswith("<38>1 2023-11-14T22:14:20.000000Z ")  # auth.info, record 1 at 1_700_000_060
    assert ' strongroom - AUDIT [strongroom@32473 seq="1" ' in lines[0] and lines[0].endswith("] event 1")


def test_tail_and_search_by_time(data_dir: Path) -> None:
    lines = cli("audit", "tail", "--data-dir", str(data_dir), "-n", "2").stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["#5", "#6"]
    found = cli(
        "audit", "search", "--data-dir", str(data_dir), "--json",
        "--since", "2023-11-14T22:16:00", "--until", "2023-11-14T22:18:00+00:00", "--identity", "alice",
    )  # fmt: skip
    assert found.returncode == 0, found
    assert [json.loads(line)["seq"] for line in found.stdout.splitlines()] == [3]  # 2-4 by time, alice: odd
    destroys = cli("audit", "search", "--data-dir", str(data_dir), "--operation", "destroy", "--json").stdout
    assert [json.loads(line)["seq"] for line in destroys.splitlines()] == [6, 3]
    bad = cli("audit", "search", "--data-dir", str(data_dir), "--since", "yesterday")
    assert bad.returncode == 2 and "not an ISO 8601 time" in bad.stderr


def _lines_of(process: subprocess.Popen[str]) -> queue.Queue[str]:
    """The process's output lines, read by a thread (so a test waits with a timeout, not forever)."""
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout

    def read() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    return lines


def test_tail_follow_prints_records_as_they_are_appended(data_dir: Path) -> None:
    with tampered(data_dir):  # no tampering: puts the trail back to records 1-6 afterwards
        follow = subprocess.Popen(
            [*strongroom_command(), "audit", "tail", "--data-dir", str(data_dir), "-n", "1", "-f", "--interval", "0.1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            lines = _lines_of(follow)
            assert lines.get(timeout=30).startswith("#6 ")
            append(data_dir, 7, 2, per=2)
            assert [lines.get(timeout=30).split()[0] for _ in range(2)] == ["#7", "#8"]
        finally:
            follow.terminate()
            follow.wait(timeout=10)
        verified = cli("audit", "verify", "--data-dir", str(data_dir))
        assert verified.returncode == 0 and "8 records" in verified.stdout, verified
