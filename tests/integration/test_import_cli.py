"""``kmip import`` as an operator runs it: the installed command against one ``strongroom serve``
(real mutual TLS on loopback, SoftHSM2, SQLite), with its admin listener for the server's own
count of request messages and batch items.

A few hundred mixed keys go in and are read back with Get, byte for byte; the server counts
fewer request messages than keys; failures are reported per line with their Result Reason or
the manifest field at fault, and the exit status says so; progress shows on a terminal and not
in a pipe; and no key material appears in anything the command prints.
"""

from __future__ import annotations

import base64
import datetime
import http.client
import json
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from kmip_client import Client
from kmip_client.protocol.spec.enums import State
from tests.support.metrics import metric_samples
from tests.support.server_process import (
    LOOPBACK,
    ServerProcess,
    client_ssl_context,
    free_port,
    running_server,
    strongroom_init,
)
from tests.support.terminal import run_on_terminal

KMIP = str(Path(sys.executable).with_name("kmip"))
#: The server takes at most this many items per message, fewer than --batch 100 sends.
SERVER_MAX_BATCH_ITEMS = 64
REGISTERED = "strongroom_batch_items_total{operation=Register,outcome=Success}"
ACTIVATED = "strongroom_batch_items_total{operation=Activate,outcome=Success}"
REQUESTS = "strongroom_requests_total{}"


class Served:
    def __init__(self, server: ServerProcess, admin_port: int) -> None:
        self.server = server
        self.admin_port = admin_port

    def flags(self) -> list[str]:
        tls = self.server.tls
        return ["--server", f"{LOOPBACK}:{self.server.port}", "--ca", str(tls.ca), "--cert", str(tls.cert)] + [
            "--key",
            str(tls.key),
        ]

    def client(self) -> Client:
        tls = self.server.tls
        return Client(f"{LOOPBACK}:{self.server.port}", ca=tls.ca, cert=tls.cert, key=tls.key)

    def metrics(self) -> dict[str, float]:
        tls = self.server.tls
        context = client_ssl_context(tls.ca, tls.cert, tls.key)
        conn = http.client.HTTPSConnection(LOOPBACK, self.admin_port, timeout=10, context=context)
        try:
            conn.request("GET", "/metrics")
            response = conn.getresponse()
            body = response.read().decode()
            assert response.status == 200, body
        finally:
            conn.close()
        return metric_samples(body)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("import") / "data"
    strongroom_init(data_dir)
    config = data_dir / "strongroom.toml"
    text = config.read_text()
    assert "max_batch_items = 1000" in text
    config.write_text(text.replace("max_batch_items = 1000", f"max_batch_items = {SERVER_MAX_BATCH_ITEMS}"))
    admin_port = free_port()
    extra = ["--log-level", "WARNING", "--admin-port", str(admin_port)]
    with running_server(data_dir, free_port(), workers=1, extra_args=extra) as server:
        yield Served(server, admin_port)


def kmip_import(served: Served, manifest: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [KMIP, "import", str(manifest), *served.flags(), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def write_manifest(path: Path, lines: Sequence[dict[str, Any] | str]) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def prefix() -> str:
    return f"imp-{uuid.uuid4().hex[:8]}"


def pem_private(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()


def der_private(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def der_public(key: Any) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def self_signed(key: ec.EllipticCurvePrivateKey, name: str) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
    builder = builder.serial_number(x509.random_serial_number()).not_valid_before(now)
    return builder.not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256())


def mixed_manifest(directory: Path, tag: str) -> tuple[list[dict[str, Any]], dict[str, bytes], set[str]]:
    """About three hundred lines of every type: the lines, each name's expected value (what Get
    returns), and the names to be activated. Half the PEM inline, half in files beside it."""
    lines: list[dict[str, Any]] = []
    expected: dict[str, bytes] = {}
    activated: set[str] = set()
    for number in range(185):
        key = secrets.token_bytes((16, 24, 32)[number % 3])
        line: dict[str, Any] = {"type": "symmetric", "algorithm": "AES", "name": f"{tag}-aes-{number}"}
        if number % 2:
            line["key_b64"] = base64.b64encode(key).decode()
        else:
            line |= {"key_hex": key.hex(), "length": len(key) * 8, "usage": ["encrypt", "decrypt", "wrap-key"]}
        if number % 3 == 0:
            line["activate"] = True
            activated.add(line["name"])
        lines.append(line)
        expected[line["name"]] = key
    for number in range(40):
        key = secrets.token_bytes(32)
        name = f"{tag}-hmac-{number}"
        lines.append({"type": "symmetric", "algorithm": "HMAC-SHA256", "key_hex": key.hex(), "name": name})
        expected[name] = key
    for number in range(50):
        value = secrets.token_bytes(20)
        name = f"{tag}-secret-{number}"
        kind = ("password", "seed")[number % 2]
        lines.append({"type": "secret", "secret_type": kind, "key_b64": base64.b64encode(value).decode(), "name": name})
        expected[name] = value
    keys: list[Any] = [rsa.generate_private_key(65537, 2048) for _ in range(3)]
    keys += [ec.generate_private_key(ec.SECP256R1()) for _ in range(7)]
    for number, key in enumerate(keys):
        private, public = f"{tag}-private-{number}", f"{tag}-public-{number}"
        public_pem = pem_public(key)
        if number % 2:
            (directory / f"{private}.pem").write_text(pem_private(key))
            (directory / f"{public}.pem").write_text(public_pem)
            lines.append({"type": "private", "pem_file": f"{private}.pem", "name": private, "usage": ["sign"]})
            lines.append({"type": "public", "pem_file": f"{public}.pem", "name": public, "usage": ["verify"]})
        else:
            lines.append({"type": "private", "pem": pem_private(key), "name": private, "usage": ["sign"]})
            lines.append({"type": "public", "pem": public_pem, "name": public, "usage": ["verify"]})
        expected[private], expected[public] = der_private(key), der_public(key)
    for number in range(5):
        certificate = self_signed(keys[3 + number], f"{tag} {number}")
        name = f"{tag}-cert-{number}"
        pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
        lines.append({"type": "certificate", "pem": pem, "name": name})
        expected[name] = certificate.public_bytes(serialization.Encoding.DER)
    return lines, expected, activated


def pem_public(key: Any) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def secrets_of(lines: Sequence[dict[str, Any] | str], expected: dict[str, bytes]) -> list[str]:
    """Every form of key material the manifest holds: none may appear in what the command prints."""
    found = []
    for value in expected.values():
        found += [value.hex(), value.hex().upper(), base64.b64encode(value).decode()]
    for line in lines:
        if isinstance(line, dict):
            found += [str(line[field]) for field in ("key_hex", "key_b64") if field in line]
            found += [row for row in str(line.get("pem", "")).splitlines() if row and not row.startswith("-----")]
    return [text for text in found if len(text) >= 16]


def assert_no_secrets(output: str, lines: Sequence[dict[str, Any] | str], expected: dict[str, bytes]) -> None:
    for secret in secrets_of(lines, expected):
        assert secret not in output


def read_back(served: Served, uids: dict[str, str]) -> dict[str, tuple[bytes, State]]:
    """Each object's value (Get) and State, 25 objects (50 items) a message."""
    found: dict[str, tuple[bytes, State]] = {}
    names = list(uids)
    with served.client() as client:
        for start in range(0, len(names), 25):
            part = names[start : start + 25]
            batch = client.batch()
            for name in part:
                batch.get(uids[name]).get_attributes(uids[name], ["State"])
            answers = batch.send()
            for index, name in enumerate(part):
                got, attributes = answers[2 * index], answers[2 * index + 1]
                assert got.ok and attributes.ok, (got.error, attributes.error)
                found[name] = (got.value.value, attributes.value["State"][0])
    return found


def test_a_mixed_manifest_is_imported_in_batches_and_reads_back_byte_for_byte(served: Served, tmp_path: Path) -> None:
    lines, expected, activated = mixed_manifest(tmp_path, prefix())
    manifest = write_manifest(tmp_path / "keys.jsonl", [*lines[:100], "", *lines[100:]])  # a blank line is no item
    before = served.metrics()
    done = kmip_import(served, manifest, "--json")
    after = served.metrics()
    assert done.returncode == 0, done.stdout + done.stderr
    results = [json.loads(row) for row in done.stdout.splitlines()]
    assert len(results) == len(lines) == 300
    # One result per line, in the manifest's order (its physical line numbers: 101 was blank).
    assert [r["line"] for r in results] == [*range(1, 101), *range(102, 302)]
    assert {r["status"] for r in results} == {"imported"}
    assert [r["name"] for r in results] == [line["name"] for line in lines]
    assert {r["name"] for r in results if r.get("activated")} == activated
    # Piped, stderr has the summary alone: no progress.
    assert done.stderr == "kmip import: 300 imported, 0 skipped, 0 failed, 0 invalid\n"
    assert_no_secrets(done.stdout + done.stderr, lines, expected)

    # The server registered every key in few messages: 6 of Registers (50 each), 4 of
    # Activates (the batches holding a key to activate), and the client's Discover Versions.
    assert after[REGISTERED] - before.get(REGISTERED, 0) == 300
    assert after[ACTIVATED] - before.get(ACTIVATED, 0) == len(activated)
    messages = after[REQUESTS] - before.get(REQUESTS, 0)
    assert messages <= 6 + 6 + 1, messages

    uids = {r["name"]: r["unique_identifier"] for r in results}
    for name, (value, state) in read_back(served, uids).items():
        assert value == expected[name], name
        assert state == (State.ACTIVE if name in activated else State.PRE_ACTIVE), name


def test_failures_are_reported_per_line_with_their_reason_and_exit_1(served: Served, tmp_path: Path) -> None:
    tag = prefix()
    key = secrets.token_bytes(32)
    lines: list[dict[str, Any] | str] = [
        {"type": "symmetric", "algorithm": "AES", "key_hex": key.hex(), "name": f"{tag}-good"},
        {"type": "symmetric", "algorithm": "AES", "key_hex": "0g" * 16, "name": f"{tag}-bad-hex"},
        {"type": "symmetric", "algorithm": "AES", "key_hex": secrets.token_hex(20), "name": f"{tag}-160-bits"},
        {"type": "symmetric", "algorithm": "AES", "length": 256, "key_hex": secrets.token_hex(16), "name": f"{tag}-x"},
        {
            "type": "symmetric",
            "algorithm": "AES",
            "key_hex": secrets.token_hex(16),
            "name": f"{tag}-u",
            "colour": "red",
        },
        {"type": "symmetric", "algorithm": "AES", "key_hex": secrets.token_hex(16), "name": f"{tag}-good"},  # again
        {"type": "symmetric", "key_b64": base64.b64encode(secrets.token_bytes(16)).decode(), "name": f"{tag}-no-alg"},
        {"type": "secret", "key_b64": "not base64!", "name": f"{tag}-secret"},
        {"type": "private", "pem": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"},
        {"type": "symmetric", "algorithm": "AES", "key_hex": secrets.token_hex(16), "attributes": {"Name": "x"}},
        '{"type": "symmetric", "key_hex": "00112233445566778899aabbccddeeff"',  # cut short
        {"type": "symmetric", "algorithm": "AES", "key_hex": secrets.token_hex(16), "activate": "yes"},
        {"type": "symmetric", "algorithm": "AES", "key_hex": key.hex(), "name": f"{tag}-good", "activate": True},
    ]
    manifest = write_manifest(tmp_path / "mixed.jsonl", lines)
    # A name the server already has, from an earlier import.
    first = kmip_import(served, write_manifest(tmp_path / "first.jsonl", [lines[0]]), "--json")
    assert first.returncode == 0, first.stderr
    existing = json.loads(first.stdout)["unique_identifier"]

    done = kmip_import(served, manifest, "--skip-existing", "--json", "--batch", "4")
    assert done.returncode == 1, done.stderr
    results = {r["line"]: r for r in map(json.loads, done.stdout.splitlines())}
    assert sorted(results) == list(range(1, 14))

    def shape(line: int) -> tuple[Any, ...]:
        r = results[line]
        return r["status"], r.get("reason"), r.get("field")

    assert results[1] == {
        "line": 1,
        "status": "skipped",
        "name": f"{tag}-good",
        "unique_identifier": existing,
        "message": "exists",
    }
    assert shape(2) == ("invalid", None, "key_hex") and results[2]["name"] == f"{tag}-bad-hex"
    # The server's own rules: an AES key is 128, 192 or 256 bits; a 16-byte key is not 256 bits.
    assert shape(3) == ("failed", "INVALID_ATTRIBUTE_VALUE", None)
    assert "AES keys are 128, 192 or 256 bits long, not 160" in results[3]["message"]
    assert shape(4) == ("failed", "INVALID_ATTRIBUTE_VALUE", None)
    assert shape(5) == ("invalid", None, None) and results[5]["message"] == 'unknown field "colour"'
    assert shape(6) == ("skipped", None, None) and results[6]["unique_identifier"] == existing
    assert shape(7) == ("invalid", None, "algorithm")
    assert shape(8) == ("invalid", None, "key_b64")
    assert shape(9) == ("invalid", None, "pem")
    assert shape(10) == ("invalid", None, "attributes.Name")
    assert shape(11)[0] == "invalid" and results[11]["message"].startswith("not valid JSON")
    assert shape(12) == ("invalid", None, "activate")
    assert shape(13) == ("skipped", None, None) and results[13]["unique_identifier"] == existing
    assert done.stderr.splitlines() == ["kmip import: 0 imported, 3 skipped, 2 failed, 8 invalid"]
    assert_no_secrets(done.stdout + done.stderr, lines, {"good": key})

    # Without --skip-existing a name is no obstacle (KMIP names need not be unique); the text
    # form names each line, and what failed is still reported and counted in the status.
    again = kmip_import(served, write_manifest(tmp_path / "two.jsonl", [lines[0], lines[2]]))
    assert again.returncode == 1
    imported, failed = again.stdout.splitlines()
    assert imported.startswith(f'line 1: imported "{tag}-good" as ') and existing not in imported
    assert failed.startswith(f'line 2: failed "{tag}-160-bits": INVALID_ATTRIBUTE_VALUE: ')
    with served.client() as client:
        assert len(client.locate(name=f"{tag}-good")) == 2


def test_a_name_repeated_in_one_batch_is_imported_once_with_skip_existing(served: Served, tmp_path: Path) -> None:
    tag = prefix()
    first, second = secrets.token_bytes(16), secrets.token_bytes(16)
    lines = [
        {"type": "symmetric", "algorithm": "AES", "key_hex": first.hex(), "name": f"{tag}-same"},
        {"type": "symmetric", "algorithm": "AES", "key_hex": second.hex(), "name": f"{tag}-same"},
        {"type": "symmetric", "algorithm": "AES", "key_hex": second.hex(), "name": f"{tag}-other"},
    ]
    done = kmip_import(served, write_manifest(tmp_path / "repeat.jsonl", lines), "--skip-existing")
    assert done.returncode == 0, done.stderr
    one, two, three = done.stdout.splitlines()
    uid = one.rsplit(" ", 1)[-1]
    assert two == f'line 2: skipped "{tag}-same": line 1 of this manifest imported it as {uid}'
    assert three.startswith(f'line 3: imported "{tag}-other" as ')
    with served.client() as client:
        assert client.locate(name=f"{tag}-same") == [uid]
        assert client.get(uid).value == first


def test_a_batch_above_the_servers_limit_is_sent_again_in_halves(served: Served, tmp_path: Path) -> None:
    tag = prefix()
    keys = [secrets.token_bytes(32) for _ in range(100)]
    lines = [
        {"type": "symmetric", "algorithm": "AES", "key_hex": k.hex(), "name": f"{tag}-{i}"} for i, k in enumerate(keys)
    ]
    before = served.metrics()
    done = kmip_import(served, write_manifest(tmp_path / "big.jsonl", lines), "--batch", "100", "--json")
    after = served.metrics()
    assert done.returncode == 0, done.stdout + done.stderr
    results = [json.loads(row) for row in done.stdout.splitlines()]
    assert [r["status"] for r in results] == ["imported"] * 100
    # The message of 100 was refused whole (the server takes 64), its halves of 50 were not.
    assert after[REGISTERED] - before.get(REGISTERED, 0) == 100
    assert after[REQUESTS] - before.get(REQUESTS, 0) == 1 + 1 + 2  # Discover Versions, refused, halves
    uids = {r["name"]: r["unique_identifier"] for r in results}
    values = read_back(served, uids)
    assert [values[f"{tag}-{i}"][0] for i in range(100)] == keys


def test_progress_is_shown_on_a_terminal_and_forced_with_progress(served: Served, tmp_path: Path) -> None:
    tag = prefix()
    lines = [
        {"type": "symmetric", "algorithm": "AES", "key_hex": secrets.token_hex(16), "name": f"{tag}-{i}"}
        for i in range(120)
    ]
    manifest = write_manifest(tmp_path / "progress.jsonl", lines)
    # Results and progress on one terminal: the progress line is taken away before results are
    # written, and drawn again after them, so every result line shows whole.
    run = run_on_terminal([KMIP, "import", str(manifest), *served.flags(), "--batch", "10"])
    assert run.status == 0, run.terminal
    shown = run.visible_lines()
    assert len(shown) == 122, shown
    assert [row.split(":")[0] for row in shown[:120]] == [f"line {i}" for i in range(1, 121)]
    assert all(f'imported "{tag}-' in row for row in shown[:120])
    assert shown[120:] == [
        "kmip import: 120/120 keys done, 0 failed (100%)",
        "kmip import: 120 imported, 0 skipped, 0 failed, 0 invalid",
    ]
    assert "kmip import: 10/120 keys done, 0 failed (8%)" in run.terminal  # after the first batch

    # Piped with --progress: plain lines, at most one a second and the last.
    again = write_manifest(tmp_path / "again.jsonl", [{**line, "name": line["name"] + "-b"} for line in lines])
    forced = kmip_import(served, again, "--batch", "10", "--progress", "--out", str(tmp_path / "results.txt"))
    assert forced.returncode == 0, forced.stderr
    progress = forced.stderr.splitlines()
    assert progress[-2:] == [
        "kmip import: 120/120 keys done, 0 failed (100%)",
        "kmip import: 120 imported, 0 skipped, 0 failed, 0 invalid",
    ]
    assert "\r" not in forced.stderr and forced.stdout == ""
    assert len((tmp_path / "results.txt").read_text().splitlines()) == 120
    assert_no_secrets(run.terminal + forced.stderr, lines, {})


def test_a_server_that_is_not_there_stops_the_import_at_the_first_batch(served: Served, tmp_path: Path) -> None:
    lines = [{"type": "symmetric", "algorithm": "AES", "key_hex": secrets.token_hex(16)} for _ in range(5)]
    manifest = write_manifest(tmp_path / "nowhere.jsonl", lines)
    flags = served.flags()
    flags[1] = f"{LOOPBACK}:{free_port()}"
    command = [KMIP, "import", str(manifest), *flags, "--batch", "2", "--timeout", "5"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    first, second = done.stdout.splitlines()  # the lines after the failed batch are not attempted
    assert first.startswith("line 1: failed: the exchange failed (ServerUnavailable: ")
    assert second.startswith("line 2: failed: ")
    assert "the lines after line 2 were not attempted" in done.stderr
    assert "Traceback" not in done.stderr
    assert_no_secrets(done.stdout + done.stderr, lines, {})
