"""The operator's commands on a real data directory after a real server ran: ``audit verify``
(intact, then tampered in the database), ``audit export`` and ``verify-export`` (intact, then
a line cut), ``audit tail|search``, ``policy check`` and ``policy explain``, and a SIGHUP
reload that keeps the policy in force when the new file is bad."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from kmip_client.protocol.spec.enums import Operation, ResultReason
from tests.support.server_process import (
    free_port,
    issue_client_cert,
    running_server,
    strongroom_command,
    strongroom_init,
    wait_for_log,
)

from .kmip_messages import V14, create_aes, item, ok, request_bytes
from .test_server_cli import exchange

EXAMPLE = Path(__file__).resolve().parents[2] / "policies" / "example.toml"


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*strongroom_command(), *args], capture_output=True, text=True, input=stdin, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A data directory whose server created a key, got it and refused a Get of a missing one."""
    data_dir = tmp_path_factory.mktemp("audit-cli") / "data"
    strongroom_init(data_dir)
    with running_server(data_dir, free_port(), workers=1) as server:
        uid = ok(exchange(server, request_bytes(V14, create_aes(V14, name="audited"))).batch_items[0]).unique_identifier
        ok(exchange(server, request_bytes(V14, item(Operation.GET, unique_identifier=uid))).batch_items[0])
        missing = exchange(server, request_bytes(V14, item(Operation.GET, unique_identifier="nope"))).batch_items[0]
        assert missing.result_reason == ResultReason.ITEM_NOT_FOUND
    return data_dir, uid


def _db(data_dir: Path) -> Path:
    (db,) = data_dir.glob("*.db") or data_dir.glob("**/*.db")
    return db


def test_verify_tail_and_search_read_the_trail(served) -> None:
    data_dir, uid = served
    verified = cli("audit", "verify", "--data-dir", str(data_dir))
    assert verified.returncode == 0 and "audit trail intact: 3 records" in verified.stdout, verified
    lines = cli("audit", "tail", "--data-dir", str(data_dir)).stdout.splitlines()
    assert [line.split()[5] for line in lines] == ["Create", "Get", "Get"]
    assert "admin@127.0.0.1:" in lines[0] and uid in lines[0] and "changed=" in lines[0]
    found = cli("audit", "search", "--data-dir", str(data_dir), "--object", uid, "--json").stdout.splitlines()
    assert [json.loads(line)["operation"] for line in found] == ["Get", "Create"]
    refused = cli("audit", "search", "--data-dir", str(data_dir), "--operation", "get", "--json").stdout.splitlines()
    assert json.loads(refused[0])["reason"] == "Item Not Found"


def test_export_verifies_and_a_cut_export_does_not(served, tmp_path: Path) -> None:
    data_dir, _ = served
    out = tmp_path / "trail.jsonl"
    assert cli("audit", "export", "--data-dir", str(data_dir), "--out", str(out)).returncode == 0
    assert cli("audit", "verify-export", "--data-dir", str(data_dir), str(out)).returncode == 0
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[:1] + lines[2:]) + "\n")
    broken = cli("audit", "verify-export", "--data-dir", str(data_dir), str(out))
    assert broken.returncode == 2 and "line 2" in broken.stdout, broken
    syslog = tmp_path / "trail.log"
    assert cli("audit", "export", "--data-dir", str(data_dir), "--format", "syslog", "--out", str(syslog)).returncode == 0
    assert all(line.startswith("<") and "[strongroom@32473 " in line for line in syslog.read_text().splitlines())


def test_policy_check_and_explain(served, tmp_path: Path) -> None:
    data_dir, uid = served
    checked = cli("policy", "check", str(EXAMPLE))
    assert checked.returncode == 0 and "ok (8 identity rules, 5 roles, 5 grants" in checked.stdout, checked
    bad = tmp_path / "bad.toml"
    bad.write_text('[[grants]]\nname = "x"\nroles = ["ghost"]\noperations = ["Get"]\n')
    refused = cli("policy", "check", str(bad))
    assert refused.returncode == 1 and "ghost" in refused.stderr and "not defined" in refused.stderr
    allow = cli("policy", "explain", "--data-dir", str(data_dir), "--identity", "admin", "--operation", "Destroy", "--object", uid)
    assert allow.returncode == 0 and "ALLOW Destroy by administrator" in allow.stdout, allow
    deny = cli("policy", "explain", "--data-dir", str(data_dir), "--identity", "mallory", "--operation", "Get", "--object", uid)
    assert deny.returncode == 3 and "DENY Get by default deny" in deny.stdout and "hidden" in deny.stdout, deny
    assert cli("audit", "verify", "--data-dir", str(data_dir)).stdout.startswith("audit trail intact: 3 ")  # explain did nothing


def test_verify_names_the_first_record_edited_in_the_database(served, tmp_path: Path) -> None:
    data_dir, _ = served
    with sqlite3.connect(_db(data_dir)) as db:
        db.execute("UPDATE audit_records SET identity = 'mallory' WHERE seq = 2")
    try:
        broken = cli("audit", "verify", "--data-dir", str(data_dir))
        assert broken.returncode == 2 and "broken at record 2" in broken.stdout, broken
    finally:
        with sqlite3.connect(_db(data_dir)) as db:
            db.execute("UPDATE audit_records SET identity = 'admin' WHERE seq = 2")
    assert cli("audit", "verify", "--data-dir", str(data_dir)).returncode == 0


def test_credentials_set_and_remove(served) -> None:
    data_dir, _ = served
    assert cli("credentials", "set", "--data-dir", str(data_dir), "--username", "vcenter", stdin="s3cret\n").returncode == 0
    stored = (data_dir / "credentials.json").read_text()
    assert "vcenter" in stored and "s3cret" not in stored and os.stat(data_dir / "credentials.json").st_mode & 0o077 == 0
    assert cli("credentials", "remove", "--data-dir", str(data_dir), "--username", "vcenter").returncode == 0
    assert cli("credentials", "remove", "--data-dir", str(data_dir), "--username", "vcenter").returncode == 1


def test_sighup_reloads_the_policy_and_a_bad_file_keeps_the_old_one(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    strongroom_init(data_dir)
    policy = data_dir / "policy.toml"
    policy.write_text('[settings]\nanyone = ["Discover Versions"]\n')
    config = data_dir / "strongroom.toml"
    config.write_text(config.read_text().replace("[policy]\n", f'[policy]\npolicy_file = "{policy}"\n', 1))
    bob_tls = issue_client_cert(data_dir, "bob", tmp_path / "bob")
    with running_server(data_dir, free_port(), workers=2) as server:
        as_bob = dataclasses.replace(server, tls=bob_tls)

        def bob_creates() -> ResultReason | None:
            return exchange(as_bob, request_bytes(V14, create_aes(V14))).batch_items[0].result_reason

        assert bob_creates() == ResultReason.PERMISSION_DENIED  # Create is not open to anyone
        policy.write_text("[settings\nbroken")
        os.kill(server.process.pid, signal.SIGHUP)
        wait_for_log(server, "the access policy was not reloaded", timeout=10)
        assert bob_creates() == ResultReason.PERMISSION_DENIED  # the old policy stays
        policy.write_text('[settings]\nanyone = ["*"]\n')
        os.kill(server.process.pid, signal.SIGHUP)
        for _ in range(50):  # each worker reloads on its own signal
            if server.stderr_text().count("access policy reloaded") >= 2:
                break
            time.sleep(0.1)
        assert bob_creates() is None and bob_creates() is None  # both workers: Success
