"""``kmip replay`` as an operator runs it: the installed command against ``strongroom serve``.

Real mutual TLS on loopback, over binary TTLV and over KMIP over HTTPS; the output lines, the
exit status, clean-up after each file, and a file that fails with the first difference named.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kmip_client import Client
from kmip_client.protocol.spec.enums import State
from tests.support.server_process import (
    ServerProcess,
    TlsFiles,
    free_port,
    issue_client_cert,
    running_server,
    strongroom_init,
)
from tests.support.terminal import run_on_terminal

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "oasis"
SKLC = VECTORS / "v1.4" / "mandatory" / "SKLC-M-1-14.xml"
OMOS = VECTORS / "v2.1" / "mandatory" / "OMOS-M-1-21.xml"
SASED_2 = VECTORS / "v1.4" / "mandatory" / "SASED-M-2-14.xml"
SASED_3 = VECTORS / "v1.4" / "mandatory" / "SASED-M-3-14.xml"
TL_2 = VECTORS / "v1.4" / "mandatory" / "TL-M-2-14.xml"
TL_3 = VECTORS / "v1.4" / "mandatory" / "TL-M-3-14.xml"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, TlsFiles, int]]:
    data_dir = tmp_path_factory.mktemp("replay") / "data"
    strongroom_init(data_dir)
    tls = issue_client_cert(data_dir, "replayer", data_dir.parent / "replayer")
    https_port = free_port()
    extra = ["--log-level", "WARNING", "--https-port", str(https_port)]
    with running_server(data_dir, free_port(), extra_args=extra) as server:
        yield server, tls, https_port


def kmip(*args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("kmip")), "replay", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def identity(tls: TlsFiles) -> list[str]:
    return ["--ca", str(tls.ca), "--cert", str(tls.cert), "--key", str(tls.key)]


def test_passing_files_print_pass_lines_a_summary_and_exit_0(served) -> None:
    server, tls, https_port = served
    done = kmip("--server", f"127.0.0.1:{server.port}", *identity(tls), str(SKLC), str(OMOS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [f"PASS {SKLC}", f"PASS {OMOS}", "2 passed, 0 failed"]
    # Over KMIP over HTTPS, in the JSON encoding, the same conversation passes as well.
    url = f"https://127.0.0.1:{https_port}/kmip"
    over_https = kmip("--url", url, "--encoding", "json", *identity(tls), str(SKLC))
    assert over_https.returncode == 0, over_https.stdout + over_https.stderr
    assert over_https.stdout.splitlines()[0] == f"PASS {SKLC}"


def test_on_a_terminal_each_line_says_how_far_the_run_is(served) -> None:
    # The same run with its output on a pseudo-terminal: each result line is numbered.
    server, tls, _ = served
    command = [str(Path(sys.executable).with_name("kmip")), "replay", "--server", f"127.0.0.1:{server.port}"]
    run = run_on_terminal([*command, *identity(tls), str(SKLC), str(OMOS)])
    assert run.status == 0, run.terminal
    assert run.terminal.splitlines() == [f"[1/2] PASS {SKLC}", f"[2/2] PASS {OMOS}", "2 passed, 0 failed"]


def test_a_failing_file_names_its_first_difference_and_what_it_created_is_destroyed(served, tmp_path) -> None:
    server, tls, _ = served
    wrong = tmp_path / "SKLC-M-1-14.xml"
    # The same conversation, expecting a 128-bit key where the request asks for 256 bits (in the
    # Get Attributes answer: the third "Cryptographic Length" of the file).
    text = SKLC.read_text()
    at = text.index('<AttributeValue type="Integer" value="256"/>', text.rindex('value="Cryptographic Length"'))
    wrong.write_text(text[:at] + text[at:].replace('value="256"', 'value="128"', 1))
    done = kmip("--server", f"127.0.0.1:{server.port}", *identity(tls), "-v", str(wrong))
    assert done.returncode == 1
    line, summary = done.stdout.splitlines()
    assert line.startswith(f"FAIL {wrong}: step ")
    assert "/AttributeValue: expected Integer 128, got Integer 256" in line
    assert summary == "0 passed, 1 failed"
    assert "<ResponseMessage>" in done.stderr  # -v shows the response that differed
    # The key the file created was revoked and destroyed after it. Locate leaves destroyed
    # objects out unless it filters on State (docs/compatibility.md).
    with Client(f"127.0.0.1:{server.port}", ca=tls.ca, cert=tls.cert, key=tls.key, version=(1, 4)) as client:
        assert client.locate(name="SKLC-M-1-14") == []
        # The file's key (and its earlier passing run's) is still there, destroyed.
        assert client.locate(name="SKLC-M-1-14", state=State.DESTROYED)


def test_a_directory_runs_its_files_and_usage_errors_exit_2(served, tmp_path) -> None:
    server, tls, _ = served
    folder = tmp_path / "cases"
    folder.mkdir()
    (folder / SKLC.name).write_bytes(SKLC.read_bytes())
    done = kmip("--server", f"127.0.0.1:{server.port}", *identity(tls), str(folder))
    assert done.stdout.splitlines() == [f"PASS {SKLC.name}", "1 passed, 0 failed"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert kmip("--server", f"127.0.0.1:{server.port}", *identity(tls), str(empty)).returncode == 2
    assert kmip("--server", f"127.0.0.1:{server.port}", *identity(tls), "--encoding", "json", str(SKLC)).returncode == 2
    unreadable = tmp_path / "broken.xml"
    unreadable.write_text("<KMIP><RequestMessage>")
    broken = kmip("--server", f"127.0.0.1:{server.port}", *identity(tls), str(unreadable))
    assert broken.returncode == 1 and broken.stdout.startswith(f"FAIL {unreadable}: ")


def per_file_identities(server: ServerProcess, files: list[Path], out: Path) -> Path:
    """``--cert-dir`` contents: a client identity of its own for each file, ``NAME.crt`` and
    ``NAME.key`` (under a fresh subject, so that nothing of an earlier test is visible)."""
    for number, path in enumerate(files):
        issued = issue_client_cert(server.data_dir, f"{out.name}-{number}", out / "issued")
        issued.cert.rename(out / f"{path.stem}.crt")
        issued.key.rename(out / f"{path.stem}.key")
    return out


def test_a_conversation_of_two_files_runs_as_one_identity_with_cert_dir(served, tmp_path) -> None:
    server, tls, _ = served
    # SASED-M-3 locates by Object Group, reads and destroys the Secret Data SASED-M-2 registered:
    # as a client of its own it would find nothing. Each file has an identity in the directory;
    # the second runs as the first's (kmip_client.replay.CONTINUES).
    identities = per_file_identities(server, [SASED_2, SASED_3], tmp_path / "sased")
    target = ["--server", f"127.0.0.1:{server.port}", "--ca", str(tls.ca), "--cert-dir", str(identities)]
    done = kmip(*target, str(SASED_2), str(SASED_3))
    assert done.stdout.splitlines() == [f"PASS {SASED_2}", f"PASS {SASED_3}", "2 passed, 0 failed"], done.stderr
    # Named in the other order, the continuation still runs right after the file it continues.
    identities = per_file_identities(server, [SASED_2, SASED_3], tmp_path / "again")
    target[-1] = str(identities)
    again = kmip(*target, str(SASED_3), str(SASED_2))
    assert again.stdout.splitlines() == [f"PASS {SASED_2}", f"PASS {SASED_3}", "2 passed, 0 failed"], again.stderr


def test_what_a_continued_file_created_is_destroyed_after_its_continuation(served, tmp_path) -> None:
    server, tls, _ = served
    # TL-M-2 creates a key and leaves it for TL-M-3, which here looks for another one and fails at
    # its first step, having found (and bound) nothing: the key is destroyed after it all the same.
    folder = tmp_path / "cases"
    folder.mkdir()
    (folder / TL_2.name).write_bytes(TL_2.read_bytes())
    text = TL_3.read_text()
    data = "123456789ABCDEF123456789123456789ABCDEF123456789ABCDEF1234000000"
    (folder / TL_3.name).write_text(text.replace(data, "not the tape TL-M-2 labelled", 1))
    identities = per_file_identities(server, [TL_2, TL_3], tmp_path / "tl")
    target = ["--server", f"127.0.0.1:{server.port}", "--ca", str(tls.ca), "--cert-dir", str(identities)]
    done = kmip(*target, str(folder / TL_2.name), str(folder / TL_3.name))
    assert done.stdout.splitlines()[1].startswith(f"FAIL {folder / TL_3.name}: step 1, "), done.stdout
    cert, key = identities / f"{TL_2.stem}.crt", identities / f"{TL_2.stem}.key"
    name = "AAAAAAA1A1AA12345678901234567"  # TL-M-2's key
    with Client(f"127.0.0.1:{server.port}", ca=tls.ca, cert=cert, key=key, version=(1, 4)) as client:
        assert client.locate(name=name) == []
        assert len(client.locate(name=name, state=State.DESTROYED)) == 1


def test_a_server_that_is_down_fails_each_file_instead_of_stopping_the_run(served) -> None:
    _, tls, _ = served
    done = kmip("--server", f"127.0.0.1:{free_port()}", *identity(tls), str(SKLC), str(OMOS))
    assert done.returncode == 1, done.stderr
    first, second, summary = done.stdout.splitlines()
    assert first.startswith(f"FAIL {SKLC}: step 1, ResponseMessage: expected a response, got ServerUnavailable")
    assert second.startswith(f"FAIL {OMOS}: ")
    assert summary == "0 passed, 2 failed"
    assert "Traceback" not in done.stderr


def test_clean_up_reports_what_it_could_not_destroy() -> None:
    from kmip_client.cli_replay import clean_up
    from kmip_client.protocol.model import ProtocolVersion, ResponseBatchItem, ResponseHeader, ResponseMessage
    from kmip_client.protocol.model.base import to_bytes
    from kmip_client.protocol.spec.enums import Operation, ResultReason, ResultStatus
    from kmip_client.transport import ConnectionLost

    def refusing(reason: ResultReason):  # an in-process server answering every request so
        def exchange(request: bytes) -> bytes:
            item = ResponseBatchItem(
                operation=Operation.DESTROY, result_status=ResultStatus.OPERATION_FAILED, result_reason=reason
            )
            header = ResponseHeader(protocol_version=ProtocolVersion(major=2, minor=1), batch_count=1)
            return to_bytes(ResponseMessage(header=header, batch_items=(item,)))

        return exchange

    assert clean_up(refusing(ResultReason.OBJECT_DESTROYED), (2, 1), "k") is None  # gone already
    assert clean_up(refusing(ResultReason.ITEM_NOT_FOUND), (1, 4), "k") is None
    refused = clean_up(refusing(ResultReason.PERMISSION_DENIED), (2, 1), "k")
    assert refused is not None and refused.startswith("PERMISSION_DENIED")

    def broken(request: bytes) -> bytes:
        raise ConnectionLost("reset by peer")

    assert clean_up(broken, (2, 1), "k") == "ConnectionLost: reset by peer"
