"""The ``strongroom`` command as an operator runs it: init, certs issue and serve, with a real
SoftHSM2 token, a real SQLite file and real TLS.

``init`` and ``certs issue`` run in this process through ``main([...])`` (the token set-up runs
in its own child process anyway); ``serve`` and anything touching the token from the test run
in subprocesses, since a PKCS#11 library is initialised once per process with the
SOFTHSM2_CONF it sees then.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from kmip_client.protocol.framing import Framer
from kmip_client.protocol.model import (
    ProtocolVersion,
    RequestBatchItem,
    RequestHeader,
    RequestMessage,
    ResponseMessage,
)
from kmip_client.protocol.model.base import to_bytes
from kmip_client.protocol.model.messages import decode_message
from kmip_client.protocol.model.payloads.server_info import DiscoverVersionsRequest, DiscoverVersionsResponse
from kmip_client.protocol.spec.enums import Operation, ResultStatus
from kmip_server.cli import main
from kmip_server.config import load_config
from kmip_server.custody.opening import TOKEN_LOCK
from kmip_server.pki import load_issued
from tests.support.server_process import (
    LOOPBACK,
    ServerProcess,
    admin_tls,
    client_ssl_context,
    free_port,
    running_server,
    strongroom_command,
    wait_for_tls,
)

from .conftest import postgres_schema_url
from .kmip_messages import V14, create_aes, item, ok, request_bytes

ROOT = Path(__file__).resolve().parents[2]

PRIVATE_FILES = ("pki/ca.key", "pki/server.key", "clients/admin.key", "hsm/user.pin", "hsm/so.pin", "strongroom.db")
PUBLIC_FILES = ("strongroom.toml", "pki/ca.crt", "pki/server.crt", "clients/admin.crt", "clients/ca.crt")
PRIVATE_DIRS = ("", "pki", "clients", "hsm")

# Opens the data directory's token as the server would and wraps or unwraps one value.
_CUSTODY_SCRIPT = """
import sys
from pathlib import Path
from kmip_server.config import load_config, read_pin
from kmip_server.custody import Pkcs11Custody, use_softhsm_conf

config = load_config(Path(sys.argv[1]))
use_softhsm_conf(config.custody.softhsm2_conf)
custody = config.custody
with Pkcs11Custody.open(custody.module, custody.token_label, read_pin(custody), custody.master_key_label) as opened:
    if sys.argv[2] == "wrap":
        print(opened.wrap(b"a key value worth keeping", b"uid=1").hex())
    else:
        print(opened.unwrap(bytes.fromhex(sys.argv[3]), b"uid=1").decode())
"""


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def init(capsys: pytest.CaptureFixture[str], data_dir: Path, *extra: str) -> str:
    status, out, err = run_main(capsys, "init", "--data-dir", str(data_dir), *extra)
    assert status == 0, err
    return out


def custody_call(data_dir: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", _CUSTODY_SCRIPT, str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def common_name(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory made once by `strongroom init`, shared by the tests that only read it."""
    data_dir = tmp_path_factory.mktemp("cli") / "data"
    assert main(["init", "--data-dir", str(data_dir)]) == 0
    return data_dir


# ---- init


def test_init_creates_everything_with_safe_modes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = tmp_path / "data"
    out = init(capsys, data_dir)

    for name in PRIVATE_DIRS:
        assert mode(data_dir / name) == 0o700, name
    for name in PRIVATE_FILES:
        assert mode(data_dir / name) == 0o600, name
    for name in PUBLIC_FILES:
        assert (data_dir / name).is_file(), name
    assert (data_dir / "hsm/softhsm2.conf").is_file()

    user_pin = (data_dir / "hsm/user.pin").read_text().strip()
    so_pin = (data_dir / "hsm/so.pin").read_text().strip()
    assert len(user_pin) >= 32 and len(so_pin) >= 32 and user_pin != so_pin

    config = load_config(data_dir)
    assert config.custody.token_label == "strongroom"
    assert config.custody.master_key_label == "strongroom-master"
    assert config.storage.url == f"sqlite:///{data_dir.resolve()}/strongroom.db"

    ca = certificate(data_dir / "pki/ca.crt")
    assert (data_dir / "clients/ca.crt").read_bytes() == (data_dir / "pki/ca.crt").read_bytes()
    server = certificate(data_dir / "pki/server.crt")
    server.verify_directly_issued_by(ca)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(a) for a in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    admin = load_issued(data_dir / "clients/admin.crt", data_dir / "clients/admin.key")
    assert admin.common_name == "admin"
    admin.certificate.verify_directly_issued_by(ca)

    # The token holds a usable master key, and the database has its schema.
    assert custody_call(data_dir, "unwrap", custody_call(data_dir, "wrap")) == "a key value worth keeping"
    import sqlite3

    with sqlite3.connect(data_dir / "strongroom.db") as db:
        assert db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0] > 0

    assert "created" in out
    assert f"strongroom serve --data-dir {data_dir.resolve()}" in out
    assert str(data_dir.resolve() / "clients/admin.crt") in out


def test_init_twice_keeps_the_ca_and_the_master_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = tmp_path / "data"
    init(capsys, data_dir)
    kept = {name: (data_dir / name).read_bytes() for name in (*PRIVATE_FILES[:-1], *PUBLIC_FILES)}
    blob = custody_call(data_dir, "wrap")

    out = init(capsys, data_dir)
    assert "created" not in out
    for name, content in kept.items():
        assert (data_dir / name).read_bytes() == content, name

    # Even a rewritten configuration and a lost server certificate leave the CA and the token alone.
    (data_dir / "pki/server.crt").unlink()
    out = init(capsys, data_dir, "--force-config", "--server-name", "kms.example.com", "--server-name", "10.0.0.7")
    assert "rewrote  strongroom.toml" in out
    for name in ("pki/ca.crt", "pki/ca.key", "hsm/user.pin", "hsm/so.pin", "clients/admin.crt"):
        assert (data_dir / name).read_bytes() == kept[name], name
    server = certificate(data_dir / "pki/server.crt")
    server.verify_directly_issued_by(certificate(data_dir / "pki/ca.crt"))
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "kms.example.com"]
    assert [str(a) for a in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1", "10.0.0.7"]

    assert custody_call(data_dir, "unwrap", blob) == "a key value worth keeping"


def test_init_refuses_to_replace_half_a_ca(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = tmp_path / "data"
    init(capsys, data_dir)
    ca_cert = (data_dir / "pki/ca.crt").read_bytes()
    (data_dir / "pki/ca.key").unlink()
    status, _, err = run_main(capsys, "init", "--data-dir", str(data_dir))
    assert status == 1
    assert err.startswith("strongroom: ") and "refusing to replace the CA" in err
    assert (data_dir / "pki/ca.crt").read_bytes() == ca_cert


def test_init_without_softhsm_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = tmp_path / "data"
    init(capsys, data_dir)
    config = data_dir / "strongroom.toml"
    text = config.read_text()
    module = str(load_config(data_dir).custody.module)
    config.write_text(text.replace(f'module = "{module}"', 'module = "/nonexistent/softhsm/libsofthsm2.so"'))
    status, out, err = run_main(capsys, "init", "--data-dir", str(data_dir))
    assert status == 1
    assert err == (
        "strongroom: SoftHSM2 is not installed (no libsofthsm2.so at /nonexistent/softhsm/libsofthsm2.so); "
        "install it (Debian/Ubuntu: apt-get install softhsm2), or configure a hardware HSM in [custody] of "
        "strongroom.toml\n"
    )
    assert out == ""


def test_init_reports_a_bad_configuration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    (data_dir / "strongroom.toml").write_text("[listener]\nprot = 5696\n")
    status, _, err = run_main(capsys, "init", "--data-dir", str(data_dir))
    assert status == 1
    assert "listener.prot: unknown key (did you mean 'port'?)" in err
    assert not (data_dir / "pki").exists()


# ---- certs issue


def test_certs_issue_writes_a_client_certificate(
    initialised: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "out"
    status, out, err = run_main(
        capsys, "certs", "issue", "--data-dir", str(initialised), "--name", "app-1", "--out", str(out_dir)
    )
    assert status == 0, err
    issued = load_issued(out_dir / "app-1.crt", out_dir / "app-1.key")  # also checks the key matches
    ca = certificate(initialised / "pki/ca.crt")
    issued.certificate.verify_directly_issued_by(ca)
    assert common_name(issued.certificate) == "app-1"
    assert mode(out_dir / "app-1.key") == 0o600
    assert (out_dir / "ca.crt").read_bytes() == (initialised / "pki/ca.crt").read_bytes()
    for name in ("app-1.crt", "app-1.key", "ca.crt"):
        assert str(out_dir / name) in out

    # Another client in the same directory: the identical ca.crt is no conflict.
    status, _, err = run_main(
        capsys, "certs", "issue", "--data-dir", str(initialised), "--name", "app-2", "--out", str(out_dir)
    )
    assert status == 0, err
    assert common_name(certificate(out_dir / "app-2.crt")) == "app-2"


def test_certs_issue_refuses_to_overwrite(
    initialised: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("certs", "issue", "--data-dir", str(initialised), "--name", "bob", "--out", str(tmp_path))
    assert run_main(capsys, *args)[0] == 0
    before = {name: (tmp_path / name).read_bytes() for name in ("bob.crt", "bob.key")}

    status, out, err = run_main(capsys, *args)
    assert status == 1 and out == ""
    assert err.startswith("strongroom: refusing to overwrite ")
    assert str(tmp_path / "bob.crt") in err and "--force" in err
    assert {name: (tmp_path / name).read_bytes() for name in before} == before

    assert run_main(capsys, *args, "--force")[0] == 0
    assert (tmp_path / "bob.key").read_bytes() != before["bob.key"]
    load_issued(tmp_path / "bob.crt", tmp_path / "bob.key")


def test_certs_issue_needs_an_initialised_data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run_main(
        capsys, "certs", "issue", "--data-dir", str(tmp_path), "--name", "x", "--out", str(tmp_path / "o")
    )
    assert status == 1
    assert "no CA in" in err and "strongroom init" in err


# ---- serve


def exchange(server: ServerProcess, request: bytes) -> ResponseMessage:
    """Send one request over mutual TLS as the admin client; the decoded response."""
    context = client_ssl_context(server.tls.ca, server.tls.cert, server.tls.key)
    framer = Framer()
    with socket.create_connection((server.host, server.port), timeout=10) as raw:
        with context.wrap_socket(raw) as tls:
            tls.sendall(request)
            messages: list[bytes] = []
            while not messages:
                data = tls.recv(65536)
                assert data, "the server closed the connection without answering"
                messages = framer.feed(data)
    response = decode_message(messages[0])
    assert isinstance(response, ResponseMessage)
    return response


def discover_versions(server: ServerProcess) -> ResponseMessage:
    request = RequestMessage(
        header=RequestHeader(protocol_version=ProtocolVersion(major=1, minor=4), batch_count=1),
        batch_items=(RequestBatchItem(operation=Operation.DISCOVER_VERSIONS, payload=DiscoverVersionsRequest()),),
    )
    return exchange(server, to_bytes(request))


def create_and_get(server: ServerProcess) -> None:
    """Create an AES-256 key and Get it back: the worker answering has the token and the store."""
    created = ok(exchange(server, request_bytes(V14, create_aes(V14))).batch_items[0])
    got = ok(
        exchange(
            server, request_bytes(V14, item(Operation.GET, unique_identifier=created.unique_identifier))
        ).batch_items[0]
    )
    assert len(got.managed_object.key_block.key_value.key_material) == 32


def test_serve_answers_and_stops_cleanly_on_sigterm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = tmp_path / "data"
    init(capsys, data_dir)
    with running_server(data_dir, free_port(), workers=2) as server:
        response = discover_versions(server)
        (item,) = response.batch_items
        assert item.operation == Operation.DISCOVER_VERSIONS
        assert item.result_status == ResultStatus.SUCCESS, (item.result_reason, item.result_message)
        assert isinstance(item.payload, DiscoverVersionsResponse)
        assert ProtocolVersion(major=1, minor=4) in item.payload.protocol_versions
        assert server.stop() == 0
    log = server.stderr_text()
    assert "listening on 127.0.0.1" in log
    assert f"[{server.process.pid}] strongroom.transport" in log  # time, level, pid, logger
    assert "Traceback" not in log


def run_serve(data_dir: Path, *extra: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [*strongroom_command(), "serve", "--data-dir", str(data_dir), "--port", str(free_port()), *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return result, time.monotonic() - started


def test_serve_with_a_wrong_pin_exits_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = tmp_path / "data"
    init(capsys, data_dir)
    pin_file = data_dir / "hsm/user.pin"
    pin_file.write_text("not-the-right-pin\n")
    result, elapsed = run_serve(data_dir, "--workers", "1")
    assert result.returncode != 0
    assert elapsed < 20
    assert "wrong PIN" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (None, "strongroom: no configuration file "),
        (("\nport = 5696\n", "\nport = 99999\n"), "listener.port: must be from 1 to 65535, not 99999"),
        (
            ('pin_file = "hsm/user.pin"', 'pin_env = "STRONGROOM_TEST_UNSET_PIN"'),
            "STRONGROOM_TEST_UNSET_PIN is not set",
        ),
    ],
)
def test_serve_configuration_errors(
    initialised: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit: tuple[str, str] | None, expected: str
) -> None:
    data_dir = tmp_path / "data"
    if edit is not None:
        data_dir.mkdir()
        text = (initialised / "strongroom.toml").read_text()
        assert edit[0] in text
        (data_dir / "strongroom.toml").write_text(text.replace(edit[0], edit[1], 1))
    monkeypatch.delenv("STRONGROOM_TEST_UNSET_PIN", raising=False)
    result, _ = run_serve(data_dir, timeout=30)
    assert result.returncode == 1
    assert expected in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("strongroom: ")
    assert "Traceback" not in result.stderr


def test_serve_stops_on_sigint_too(initialised: Path) -> None:
    port = free_port()
    with running_server(initialised, port, workers=1) as server:
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(timeout=30) == 0
    assert server.host == LOOPBACK
    assert admin_tls(initialised).cert.exists()


def test_workers_open_the_token_one_at_a_time(initialised: Path) -> None:
    # Opening the token writes to it (SoftHSM2 rewrites token.object at login), so the workers
    # take turns: while another process holds the data directory's token lock, no worker gets
    # the token open and the server does not listen; once released, it starts.
    lock = os.open(initialised / TOKEN_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    port = free_port()
    command = [*strongroom_command(), "serve", "--data-dir", str(initialised), "--port", str(port), "--workers", "2"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        with pytest.raises(TimeoutError):
            wait_for_tls(LOOPBACK, port, admin_tls(initialised), timeout=2.0, process=process)
        os.close(lock)  # releases it
        wait_for_tls(LOOPBACK, port, admin_tls(initialised), timeout=30.0, process=process)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


def test_help_texts() -> None:
    for args in (["--help"], ["init", "--help"], ["serve", "--help"], ["certs", "issue", "--help"]):
        result = subprocess.run([*strongroom_command(), *args], capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 0
        assert "--data-dir" in result.stdout or "init" in result.stdout
    version = subprocess.run([*strongroom_command(), "--version"], capture_output=True, text=True, check=False)
    assert version.stdout.strip() == "strongroom 0.1.0"


def test_serve_on_postgresql_creates_its_tables_and_keeps_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The store named in the configuration after `init` (here a PostgreSQL schema of its own)
    # gets its tables when the workers start; keys then round-trip through it.
    data_dir = tmp_path / "data"
    init(capsys, data_dir)
    config = data_dir / "strongroom.toml"
    with postgres_schema_url() as url:
        text = config.read_text()
        start = text.index("\nurl = ")
        end = text.index("\n", start + 1)
        config.write_text(text[:start] + f"\nurl = {url!r}".replace("'", '"') + text[end:])
        assert load_config(data_dir).storage.url == url
        with running_server(data_dir, free_port(), workers=2) as server:
            create_and_get(server)
            assert server.stop() == 0
