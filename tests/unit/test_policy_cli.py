"""``strongroom policy check|explain`` and ``strongroom credentials set|remove`` on a real data
directory: a strongroom.toml naming policies/example.toml, and a SQLite store holding objects."""

from __future__ import annotations

import argparse
import io
import shutil
from pathlib import Path

import pytest

from kmip_client.protocol.spec.enums import CryptographicAlgorithm, ObjectType
from kmip_server.config import CONFIG_FILE_NAME, load_config, render_default_config
from kmip_server.policy.cli import DENIED, add_policy_commands
from kmip_server.policy.credentials import CREDENTIALS_FILE, CredentialStore
from kmip_server.storage import ObjectRecord, StoredAttribute
from kmip_server.storage.repository import Repository

POLICIES = Path(__file__).resolve().parents[2] / "policies"
MODULE = "/usr/lib/softhsm/libsofthsm2.so"


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="strongroom")
    add_policy_commands(parser.add_subparsers())
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


def _text(name: str, value: str) -> StoredAttribute:
    return StoredAttribute(name, 0, b"T:" + value.encode(), text=value)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory serving the example policy, with two objects in its store."""
    directory = tmp_path / "data"
    directory.mkdir()
    config = render_default_config(module=Path(MODULE)).replace(
        '# policy_file = "policy.toml"', 'policy_file = "policy.toml"'
    )
    (directory / CONFIG_FILE_NAME).write_text(config)
    shutil.copy(POLICIES / "example.toml", directory / "policy.toml")
    repository = Repository(load_config(directory).storage.url)
    repository.create_schema()
    common = {
        "object_type": int(ObjectType.SYMMETRIC_KEY),
        "state": 2,
        "created": 1_900_000_000,
        "algorithm": int(CryptographicAlgorithm.AES),
        "length": 256,
        "value_format": 1,
        "wrapped_value": b"\x00wrapped",
        "custody_key": "master-1",
    }
    with repository.write() as session:
        session.insert(
            ObjectRecord(
                uid="root-1",
                owner="fin-alice",
                tenant="finance",
                attributes=[_text("Name", "kek-1"), _text("Object Group", "root-keys")],
                **common,
            )
        )
        session.insert(ObjectRecord(uid="eng-1", owner="eng-bob", tenant="eng", **common))
    repository.dispose()
    return directory


def test_check_reports_what_a_file_holds(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("policy", "check", str(POLICIES / "example.toml"), str(POLICIES / "default.toml")) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{POLICIES / 'example.toml'}: ok (") and "5 roles" in out[0] and "4 constraints" in out[0]
    assert "2 approval rules" in out[0]
    assert out[1] == f"{POLICIES / 'default.toml'}: ok (0 identity rules, 0 roles, 0 grants, 0 constraints, 0 approval rules, 0 operation policies)"


def test_check_of_a_bad_file_names_it_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[grants]]\nidentities = ["x"]\noperations = ["Fetch"]\n')
    assert run("policy", "check", str(POLICIES / "default.toml"), str(bad)) == 1
    captured = capsys.readouterr()
    assert "default.toml: ok" in captured.out
    [line] = captured.err.splitlines()
    assert line.startswith(f"strongroom: {bad}: ") and "'Fetch' is not a KMIP operation" in line


def test_explain_an_operation_naming_no_object(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("policy", "explain", "--data-dir", str(data_dir), "--identity", "fin-alice", "--operation", "Create") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "ALLOW Create by grant 'apps create keys'"
    # No identity rule maps "stranger": no role, and Create is not open to everyone here.
    assert run("policy", "explain", "--data-dir", str(data_dir), "--identity", "stranger", "--operation", "Create") == DENIED
    lines = capsys.readouterr().out.splitlines()
    assert "no identities rule matched" in lines[1] and lines[-1] == "DENY Create by default deny"


def test_explain_reads_the_object_from_the_store(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ("policy", "explain", "--data-dir", str(data_dir), "--object", "root-1")
    assert run(*base, "--identity", "fin-audit", "--operation", "Get Attributes") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "ALLOW Get Attributes by grant 'auditors read metadata'"
    assert run(*base, "--identity", "fin-audit", "--operation", "Get") == DENIED  # no key material for auditors
    out = capsys.readouterr().out
    assert "object 'root-1': owner 'fin-alice', tenant 'finance', names ['kek-1'], groups ['root-keys']" in out
    assert out.splitlines()[-1] == "DENY Get by default deny"
    assert run(*base, "--identity", "eng-bob", "--operation", "Get") == DENIED
    out = capsys.readouterr().out
    assert "DENY Get by another tenant's object" in out and "hidden" in out
    # The owner may destroy its root key, once two of the three approvers agree.
    assert run(*base, "--identity", "fin-alice", "--operation", "Destroy") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2] == "ALLOW Destroy by owner" and "needs 2 approval(s) from approver-carol" in lines[-1]
    # The administrators of the configuration ([policy] admin_identities) are added.
    assert run("policy", "explain", "--data-dir", str(data_dir), "--object", "eng-1", "--identity", "admin", "--operation", "Destroy") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "ALLOW Destroy by administrator"


def test_explain_with_another_tenant_and_roles(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("policy", "explain", "--data-dir", str(data_dir), "--object", "root-1", "--identity", "someone")
    assert run(*argv, "--operation", "Get Attributes") == DENIED  # default tenant: hidden
    capsys.readouterr()
    assert run(*argv, "--tenant", "finance", "--role", "auditor", "--operation", "Get Attributes") == 0
    assert "tenant 'finance', roles ['auditor']" in capsys.readouterr().out
    assert run(*argv, "--tenant", "finance", "--role", "tenant-admin", "--operation", "Destroy") == 0
    assert "ALLOW Destroy by tenant administrator" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "complaint"),
    [
        (("--object", "missing", "--operation", "Get"), "no object 'missing' in the store"),
        (("--operation", "Fetch"), "'Fetch' is not a KMIP operation"),
        (("--role", "wizard", "--operation", "Get"), "role(s) wizard not defined"),
    ],
)
def test_explain_errors_are_one_line_and_exit_1(
    data_dir: Path, capsys: pytest.CaptureFixture[str], extra: tuple[str, ...], complaint: str
) -> None:
    assert run("policy", "explain", "--data-dir", str(data_dir), "--identity", "x", *extra) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("strongroom: ") and complaint in line


def test_explain_of_a_bad_policy_file_says_why(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (data_dir / "policy.toml").write_text("[nonsense]\n")
    assert run("policy", "explain", "--data-dir", str(data_dir), "--identity", "x", "--operation", "Get") == 1
    [line] = capsys.readouterr().err.splitlines()
    assert "policy.toml" in line and "unknown section(s) nonsense" in line


def test_credentials_set_reads_the_password_from_stdin_and_remove_deletes(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret pass\n"))
    assert run("credentials", "set", "--data-dir", str(data_dir), "--username", "vcenter") == 0
    assert "s3cret" not in capsys.readouterr().out
    path = data_dir / CREDENTIALS_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert CredentialStore.load(path).check("vcenter", "s3cret pass")
    assert run("credentials", "remove", "--data-dir", str(data_dir), "--username", "vcenter") == 0
    assert CredentialStore.load(path).usernames() == []
    capsys.readouterr()
    assert run("credentials", "remove", "--data-dir", str(data_dir), "--username", "vcenter") == 1
    assert "no username 'vcenter'" in capsys.readouterr().err
    assert run("credentials", "set", "--data-dir", str(data_dir / "nowhere"), "--username", "u") == 1
    assert capsys.readouterr().err.startswith("strongroom: no configuration file")


def test_explain_lists_each_grant_it_considered(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("policy", "explain", "--data-dir", str(data_dir), "--object", "root-1", "--identity", "fin-audit")
    assert run(*argv, "--operation", "Get") == DENIED
    out = capsys.readouterr().out
    assert "  grant 'auditors read metadata': for this principal, does not list Get, the object is in its scope" in out
    assert "  grant 'apps create keys': not for this principal" in out
