"""The ``kmip`` command's client subcommands against a real ``strongroom serve`` over mutual TLS.

Most tests run :func:`kmip_client.cli.main` in process (capsys sees stdout and stderr); one goes
through the installed ``kmip`` console script to prove the entry point and exit codes.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kmip_client.cli import main
from kmip_client.cli_commands import attribute_value
from tests.support.server_process import ServerProcess, TlsFiles, free_port, running_server, strongroom_init

KMIP = Path(sys.executable).with_name("kmip")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("cli") / "data"
    strongroom_init(data_dir)
    with running_server(data_dir, free_port(), workers=1) as process:
        yield process


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's own KMIP_* settings must not leak into what a test thinks it configured.
    for name in ("KMIP_SERVER", "KMIP_CA", "KMIP_CERT", "KMIP_KEY", "KMIP_PROFILE"):
        monkeypatch.delenv(name, raising=False)


def tls_flags(tls: TlsFiles) -> list[str]:
    return ["--ca", str(tls.ca), "--cert", str(tls.cert), "--key", str(tls.key)]


def conn(server: ServerProcess) -> list[str]:
    return ["--server", f"{server.host}:{server.port}", *tls_flags(server.tls)]


def kmip(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def ok(capsys: pytest.CaptureFixture[str], server: ServerProcess, *argv: str) -> str:
    status, out, err = kmip(capsys, *argv, *conn(server))
    assert status == 0, err
    assert err == ""
    return out


def ok_json(capsys: pytest.CaptureFixture[str], server: ServerProcess, *argv: str) -> object:
    return json.loads(ok(capsys, server, *argv, "--json"))


def unique_name() -> str:
    return f"cli-{uuid.uuid4().hex[:12]}"


def state_of(capsys: pytest.CaptureFixture[str], server: ServerProcess, uid: str) -> str:
    found = ok_json(capsys, server, "attributes", "get", uid, "State")
    assert isinstance(found, dict)
    return str(found["State"][0])


# ------------------------------------------------------------------------------ objects


def test_create_prints_only_the_unique_identifier(capsys: pytest.CaptureFixture[str], server: ServerProcess) -> None:
    out = ok(capsys, server, "create", "--name", unique_name(), "--usage", "encrypt,decrypt")
    lines = out.splitlines()
    assert len(lines) == 1 and lines[0].strip() == lines[0] and lines[0]
    attributes = ok_json(capsys, server, "attributes", "get", lines[0])
    assert isinstance(attributes, dict)
    assert attributes["Cryptographic Algorithm"] == ["AES"]
    assert attributes["Cryptographic Length"] == [256]
    assert attributes["Cryptographic Usage Mask"][0] in ("ENCRYPT|DECRYPT", "DECRYPT|ENCRYPT")


def test_get_raw_output_writes_the_key_privately(
    capsys: pytest.CaptureFixture[str], server: ServerProcess, tmp_path: Path
) -> None:
    uid = ok(capsys, server, "create", "--length", "256").strip()
    target = tmp_path / "key.bin"
    target.write_bytes(b"old contents")
    target.chmod(0o644)  # an existing, readable file is narrowed before the key goes in
    summary = ok(capsys, server, "get", uid, "--format", "raw", "--output", str(target))
    assert "32 bytes written" in summary and uid in summary
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    key = target.read_bytes()
    assert len(key) == 32

    transparent = ok_json(capsys, server, "get", uid, "--format", "transparent")
    assert isinstance(transparent, dict)
    assert transparent["key_format"] == "TRANSPARENT_SYMMETRIC_KEY"
    assert transparent["object_type"] == "SYMMETRIC_KEY" and transparent["algorithm"] == "AES"
    assert bytes.fromhex(transparent["value"]) == key

    human = ok(capsys, server, "get", uid)
    assert f"Value:             {key.hex()}" in human


def test_register_from_hex_and_from_file(
    capsys: pytest.CaptureFixture[str], server: ServerProcess, tmp_path: Path
) -> None:
    secret_uid = ok(capsys, server, "register", "secret", "--hex", "68756e74657232", "--name", unique_name()).strip()
    secret = ok_json(capsys, server, "get", secret_uid)
    assert isinstance(secret, dict)
    assert secret["object_type"] == "SECRET_DATA" and secret["data_type"] == "PASSWORD"
    assert bytes.fromhex(secret["value"]) == b"hunter2"

    (tmp_path / "blob").write_bytes(b"\x00opaque\xff")
    opaque_uid = ok(capsys, server, "register", "opaque", "--file", str(tmp_path / "blob")).strip()
    opaque = ok_json(capsys, server, "get", opaque_uid)
    assert isinstance(opaque, dict)
    assert opaque["object_type"] == "OPAQUE_OBJECT" and opaque["value"] == b"\x00opaque\xff".hex()

    key = bytes(range(16))
    key_uid = ok(capsys, server, "register", "key", "--hex", key.hex(), "--algorithm", "aes").strip()
    registered = ok_json(capsys, server, "get", key_uid)
    assert isinstance(registered, dict)
    assert registered["length"] == 128 and registered["value"] == key.hex()


def test_locate_by_name_type_and_state(capsys: pytest.CaptureFixture[str], server: ServerProcess) -> None:
    name = unique_name()
    uid = ok(capsys, server, "create", "--name", name, "--attribute", "x-team=payments").strip()
    assert ok(capsys, server, "locate", "--name", name).splitlines() == [uid]
    assert ok_json(capsys, server, "locate", "--name", name, "--type", "symmetric-key", "--state", "pre-active") == [
        uid
    ]
    assert ok(capsys, server, "locate", "--name", name, "--type", "secret-data") == ""
    assert uid in ok(capsys, server, "locate", "--attribute", "x-team=payments").splitlines()
    assert len(ok_json(capsys, server, "locate", "--max", "1")) == 1  # type: ignore[arg-type]


@pytest.mark.parametrize("version", [[], ["--kmip-version", "1.4"]], ids=["negotiated", "1.4"])
def test_activate_revoke_destroy(capsys: pytest.CaptureFixture[str], server: ServerProcess, version: list[str]) -> None:
    uid = ok(capsys, server, "create", *version).strip()
    assert state_of(capsys, server, uid) == "PRE_ACTIVE"
    assert uid in ok(capsys, server, "activate", uid, *version)
    assert state_of(capsys, server, uid) == "ACTIVE"
    ok(capsys, server, "revoke", uid, "--reason", "superseded", "--message", "rotated", *version)
    assert state_of(capsys, server, uid) == "DEACTIVATED"
    assert ok_json(capsys, server, "destroy", uid, *version) == {"unique_identifier": uid, "result": "destroyed"}
    assert state_of(capsys, server, uid) == "DESTROYED"


def test_revoke_for_compromise_records_the_date(capsys: pytest.CaptureFixture[str], server: ServerProcess) -> None:
    uid = ok(capsys, server, "create").strip()
    ok(capsys, server, "activate", uid)
    ok(capsys, server, "revoke", uid, "--reason", "key-compromise", "--compromise-date", "2024-05-01T12:00:00Z")
    found = ok_json(capsys, server, "attributes", "get", uid, "State", "Compromise Occurrence Date")
    assert found == {"State": ["COMPROMISED"], "Compromise Occurrence Date": ["2024-05-01T12:00:00+00:00"]}


@pytest.mark.parametrize("version", [[], ["--kmip-version", "1.4"]], ids=["negotiated", "1.4"])
def test_custom_attribute_set_replace_and_delete(
    capsys: pytest.CaptureFixture[str], server: ServerProcess, version: list[str]
) -> None:
    uid = ok(capsys, server, "create", *version).strip()
    ok(capsys, server, "attributes", "set", uid, "x-owner", "bob", *version)
    ok(capsys, server, "attributes", "set", uid, "x-owner", "alice", *version)  # replaces, does not add
    ok(capsys, server, "attributes", "set", uid, "x-count", "42", *version)
    ok(capsys, server, "attributes", "set", uid, "x-review-Date", "2030-01-02T03:04:05Z", *version)
    found = ok_json(capsys, server, "attributes", "get", uid, "x-owner", "x-count", "x-review-Date")
    assert found == {"x-owner": ["alice"], "x-count": [42], "x-review-Date": ["2030-01-02T03:04:05+00:00"]}
    assert ok(capsys, server, "attributes", "get", uid, "x-owner") == "x-owner: alice\n"

    ok(capsys, server, "attributes", "delete", uid, "x-owner", *version)
    assert ok_json(capsys, server, "attributes", "get", uid, "x-owner") == {}


def test_query_and_versions(capsys: pytest.CaptureFixture[str], server: ServerProcess) -> None:
    info = ok_json(capsys, server, "query")
    assert isinstance(info, dict)
    assert "CREATE" in info["operations"] and "SYMMETRIC_KEY" in info["object_types"]
    assert info["vendor_identification"]
    human = ok(capsys, server, "query")
    assert "Operations:" in human and "CREATE" in human

    versions = ok(capsys, server, "versions").split()
    assert "2.1" in versions and "1.4" in versions
    assert ok_json(capsys, server, "versions") == versions


def test_json_flag_before_the_subcommand(capsys: pytest.CaptureFixture[str], server: ServerProcess) -> None:
    status, out, err = kmip(capsys, "--json", "create", *conn(server))
    assert status == 0, err
    assert set(json.loads(out)) == {"unique_identifier"}


# ------------------------------------------------------------------------------ failures


def test_missing_object_is_reported_by_reason(capsys: pytest.CaptureFixture[str], server: ServerProcess) -> None:
    status, out, err = kmip(capsys, "get", "no-such-uid", *conn(server))
    assert status == 1 and out == ""
    assert err.startswith("kmip: OBJECT_NOT_FOUND: ") and "no-such-uid" in err  # the CLI speaks 2.x
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_server_down_is_a_clear_failure(capsys: pytest.CaptureFixture[str], server: ServerProcess) -> None:
    dead = f"127.0.0.1:{free_port()}"
    status, out, err = kmip(capsys, "create", "--server", dead, "--timeout", "5", *tls_flags(server.tls))
    assert status == 1 and out == ""
    assert "no KMIP server available" in err and dead in err
    assert "Traceback" not in err


def test_failover_skips_a_dead_server(capsys: pytest.CaptureFixture[str], server: ServerProcess) -> None:
    servers = f"127.0.0.1:{free_port()},{server.host}:{server.port}"
    status, out, err = kmip(capsys, "create", "--server", servers, *tls_flags(server.tls))
    assert status == 0, err
    assert len(out.split()) == 1


@pytest.mark.parametrize(
    ("drop", "complaint"), [("--server", "no server given"), ("--cert", "no client certificate given")]
)
def test_missing_server_or_certificate_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], server: ServerProcess, drop: str, complaint: str
) -> None:
    argv = conn(server)
    at = argv.index(drop)
    del argv[at : at + 2]
    with pytest.raises(SystemExit) as exited:
        main(["query", *argv])
    assert exited.value.code == 2
    assert complaint in capsys.readouterr().err


def test_passphrase_variable_must_exist(capsys: pytest.CaptureFixture[str], server: ServerProcess) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["query", *conn(server), "--key-password-env", "KMIP_TEST_UNSET_PASSPHRASE"])
    assert exited.value.code == 2
    assert "KMIP_TEST_UNSET_PASSPHRASE" in capsys.readouterr().err


# ------------------------------------------------------------------------------ configuration


def test_profile_supplies_the_connection_with_relative_paths(
    capsys: pytest.CaptureFixture[str], server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls = server.tls
    (tmp_path / "certs").mkdir()
    for source in (tls.ca, tls.cert, tls.key):
        (tmp_path / "certs" / source.name).write_bytes(source.read_bytes())
    profile = tmp_path / "prod.toml"
    profile.write_text(
        f'server = "{server.host}:{server.port}"\n'
        f'ca = "certs/{tls.ca.name}"\ncert = "certs/{tls.cert.name}"\nkey = "certs/{tls.key.name}"\n'
        'timeout = 5\nkmip_version = "1.4"\n'
    )
    monkeypatch.chdir("/")  # relative to the profile, not to where the command runs
    status, out, err = kmip(capsys, "versions", "--profile", str(profile))
    assert status == 0, err
    assert "2.1" in out.split()

    monkeypatch.setenv("KMIP_PROFILE", str(profile))
    status, out, err = kmip(capsys, "create")
    assert status == 0, err
    assert len(out.split()) == 1


def test_environment_supplies_the_connection_and_flags_win(
    capsys: pytest.CaptureFixture[str], server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KMIP_SERVER", f"{server.host}:{server.port}")
    monkeypatch.setenv("KMIP_CA", str(server.tls.ca))
    monkeypatch.setenv("KMIP_CERT", str(server.tls.cert))
    monkeypatch.setenv("KMIP_KEY", str(server.tls.key))
    status, out, err = kmip(capsys, "create")
    assert status == 0, err

    # A flag beats the environment, which beats the profile.
    dead = f"127.0.0.1:{free_port()}"
    profile = tmp_path / "dead.toml"
    profile.write_text(f'server = "{dead}"\n')
    monkeypatch.setenv("KMIP_PROFILE", str(profile))
    assert kmip(capsys, "versions")[0] == 0
    status, _, err = kmip(capsys, "versions", "--server", dead, "--timeout", "5")
    assert status == 1 and dead in err


def test_installed_kmip_command(server: ServerProcess, tmp_path: Path) -> None:
    env = {**os.environ, "KMIP_SERVER": f"{server.host}:{server.port}", "KMIP_CERT": str(server.tls.cert)}
    env |= {"KMIP_CA": str(server.tls.ca), "KMIP_KEY": str(server.tls.key)}
    env.pop("KMIP_PROFILE", None)
    made = subprocess.run(
        [str(KMIP), "create", "--name", unique_name(), "--json"], capture_output=True, text=True, env=env, timeout=60
    )
    assert made.returncode == 0, made.stderr
    uid = json.loads(made.stdout)["unique_identifier"]

    found = subprocess.run([str(KMIP), "get", uid], capture_output=True, text=True, env=env, timeout=60)
    assert found.returncode == 0 and uid in found.stdout

    missing = subprocess.run([str(KMIP), "destroy", "nope"], capture_output=True, text=True, env=env, timeout=60)
    assert missing.returncode == 1
    assert missing.stderr.startswith("kmip: OBJECT_NOT_FOUND:") and "Traceback" not in missing.stderr


# ------------------------------------------------------------------------------ value parsing


def test_attribute_values_from_text() -> None:
    assert attribute_value("x-count", "42") == 42
    assert attribute_value("x-flag", "true") is True and attribute_value("x-flag", "False") is False
    assert attribute_value("x-expiry-Date", "2030-01-02T03:04:05Z") == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert attribute_value("x-expiry-Date", "2030-01-02") == datetime(2030, 1, 2, tzinfo=UTC)
    assert attribute_value("x-note", "2030-01-02") == "2030-01-02"  # only date attributes take dates
    assert attribute_value("x-note", "hello") == "hello"


# ------------------------------------------------------------------------------ options before the subcommand


def test_connection_options_before_the_subcommand(capsys: pytest.CaptureFixture[str], server: ServerProcess) -> None:
    status, out, err = kmip(capsys, *conn(server), "--json", "--kmip-version", "1.4", "--timeout", "5", "create")
    assert status == 0, err
    uid = json.loads(out)["unique_identifier"]
    # Some before, some after; and before a nested subcommand.
    server_ca = ["--server", f"{server.host}:{server.port}", "--ca", str(server.tls.ca)]
    cert, key = ["--cert", str(server.tls.cert)], ["--key", str(server.tls.key)]
    status, out, err = kmip(capsys, *server_ca, "attributes", *cert, "get", uid, "State", *key)
    assert status == 0, err
    assert out == "State: PRE_ACTIVE\n"


def test_connection_options_after_the_subcommand_win(
    capsys: pytest.CaptureFixture[str], server: ServerProcess, tmp_path: Path
) -> None:
    good, dead = f"{server.host}:{server.port}", f"127.0.0.1:{free_port()}"
    tls = tls_flags(server.tls)
    status, out, err = kmip(capsys, "--server", dead, "versions", "--server", good, *tls)
    assert status == 0, err
    assert "2.1" in out.split()
    status, out, err = kmip(capsys, "--server", good, "versions", "--server", dead, "--timeout", "5", *tls)
    assert status == 1 and dead in err
    # --json before, none after: still JSON (the subcommand's absent --json does not reset it).
    profile = tmp_path / "p.toml"
    profile.write_text(
        f'server = "{good}"\nca = "{server.tls.ca}"\ncert = "{server.tls.cert}"\nkey = "{server.tls.key}"\n'
    )
    status, out, err = kmip(capsys, "--json", "--profile", str(profile), "versions")
    assert status == 0, err
    assert "2.1" in json.loads(out)


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--server", "h:1", "convert", "--from", "hex", "--to", "xml"], "--server: convert talks to no server"),
        (
            ["--timeout", "5", "--ca", "c", "replay", "--server", "h:1", "--ca", "c", "--cert", "x", "f.xml"],
            "--timeout, --ca before 'replay': give replay its own options after it",
        ),
    ],
)
def test_connection_options_before_a_command_without_them_are_refused(
    capsys: pytest.CaptureFixture[str], argv: list[str], complaint: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert complaint in capsys.readouterr().err


# ------------------------------------------------------------------------------ closed pipes


def kmip_environment(server: ServerProcess) -> dict[str, str]:
    env = {**os.environ, "KMIP_SERVER": f"{server.host}:{server.port}", "KMIP_CERT": str(server.tls.cert)}
    env |= {"KMIP_CA": str(server.tls.ca), "KMIP_KEY": str(server.tls.key)}
    env.pop("KMIP_PROFILE", None)
    return env


def test_output_into_a_pipe_closed_early_ends_quietly(server: ServerProcess, tmp_path: Path) -> None:
    """``kmip get UID | head -1`` on a value far larger than a pipe's buffer: head has its line
    and exits while kmip still writes."""
    env = kmip_environment(server)
    (tmp_path / "big").write_bytes(os.urandom(300_000))  # 600,000 hex digits on the Value line
    registered = subprocess.run(
        [str(KMIP), "register", "opaque", "--file", str(tmp_path / "big")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert registered.returncode == 0, registered.stderr
    uid = registered.stdout.strip()
    command = f'"{KMIP}" get {uid} 2>"{tmp_path}/stderr" | head -1; echo "${{PIPESTATUS[0]}}" >"{tmp_path}/status"'
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env, timeout=60)
    assert done.stdout == f"Unique Identifier: {uid}\n"
    assert (tmp_path / "stderr").read_text() == ""  # no traceback, no "BrokenPipeError", no "Broken pipe"
    assert (tmp_path / "status").read_text() == "141\n"


def test_output_into_a_pipe_already_closed_ends_quietly(server: ServerProcess) -> None:
    """``kmip locate`` (one line, buffered until exit) into a pipe whose reader has gone."""
    env, name = kmip_environment(server), unique_name()
    made = subprocess.run([str(KMIP), "create", "--name", name], capture_output=True, text=True, env=env, timeout=60)
    assert made.returncode == 0, made.stderr
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [str(KMIP), "locate", "--name", name],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert done.stderr == ""
    assert done.returncode == 141
