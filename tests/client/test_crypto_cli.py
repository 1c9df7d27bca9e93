"""``kmip encrypt|decrypt|sign|verify|mac|hash|rng`` end to end: the installed console script,
run as a subprocess against a real ``strongroom serve`` over mutual TLS, with files and with
stdin and stdout. Known answers as in test_crypto_client (AES-GCM test case 5, RFC 4231 case 1,
SHA-256 "abc"); one test runs the command in process to count the streamed requests.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from kmip_client import Client
from kmip_client.cli import main
from kmip_client.tls import client_ssl_context
from kmip_client.transport import ConnectionPool
from tests.client.test_crypto_client import (
    GCM_AAD,
    GCM_CIPHER,
    GCM_IV,
    GCM_KEY,
    GCM_PLAIN,
    GCM_TAG,
    HMAC_DATA,
    HMAC_KEY,
    HMAC_SHA256,
    SHA256_ABC,
    active_key,
    rsa_pair,
)
from tests.support.server_process import ServerProcess, free_port, running_server, strongroom_init

KMIP = Path(sys.executable).with_name("kmip")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("crypto-cli") / "data"
    strongroom_init(data_dir)
    with running_server(data_dir, free_port(), workers=2) as process:
        yield process


@pytest.fixture(scope="module")
def env(server: ServerProcess) -> dict[str, str]:
    found = {k: v for k, v in os.environ.items() if not k.startswith("KMIP_")}
    found |= {"KMIP_SERVER": f"{server.host}:{server.port}", "KMIP_CERT": str(server.tls.cert)}
    return found | {"KMIP_CA": str(server.tls.ca), "KMIP_KEY": str(server.tls.key)}


@pytest.fixture(scope="module")
def kmip_lib(server: ServerProcess) -> Iterator[Client]:
    context = client_ssl_context(ca=server.tls.ca, cert=server.tls.cert, key=server.tls.key)
    with Client(f"{server.host}:{server.port}", ssl_context=context) as client:
        yield client


def run(env: dict[str, str], *argv: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([str(KMIP), *argv], input=stdin, capture_output=True, env=env, timeout=120)


def ok(env: dict[str, str], *argv: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    done = run(env, *argv, stdin=stdin)
    assert done.returncode == 0, done.stderr.decode()
    return done


def reported(stderr: bytes) -> dict[str, str]:
    """The ``NAME: HEX`` lines encrypt writes on stderr."""
    return dict(line.split(": ", 1) for line in stderr.decode().splitlines())


def test_gcm_known_answer_from_stdin_to_stdout(env: dict[str, str], kmip_lib: Client) -> None:
    uid = active_key(kmip_lib, GCM_KEY)
    gcm = ["--mode", "gcm", "--tag-length", "16", "--iv", GCM_IV.hex(), "--aad", GCM_AAD.hex()]
    sealed = ok(env, "encrypt", uid, *gcm, stdin=GCM_PLAIN)
    assert sealed.stdout == GCM_CIPHER
    assert reported(sealed.stderr) == {"tag": GCM_TAG.hex()}  # the IV was given: not repeated
    opened = ok(env, "decrypt", uid, *gcm, "--tag", GCM_TAG.hex(), stdin=GCM_CIPHER)
    assert opened.stdout == GCM_PLAIN and opened.stderr == b""


def test_large_file_streamed_round_trip(env: dict[str, str], kmip_lib: Client, tmp_path: Path) -> None:
    uid = kmip_lib.create("AES", 256)
    kmip_lib.activate(uid)
    plain = tmp_path / "plain.bin"
    plain.write_bytes(os.urandom(10_000))
    sealed, opened = tmp_path / "sealed.bin", tmp_path / "opened.bin"
    gcm = ["--mode", "gcm", "--tag-length", "16"]
    done = ok(env, "encrypt", uid, *gcm, "--random-iv", "--in", str(plain), "--out", str(sealed), "--part-size", "4096")
    meta = reported(done.stderr)
    assert set(meta) == {"iv", "tag"} and len(bytes.fromhex(meta["iv"])) == 12
    assert done.stdout == b"" and sealed.stat().st_size == 10_000
    assert stat.S_IMODE(sealed.stat().st_mode) == 0o600
    # The streamed ciphertext is the whole-message one: the library encrypts it again in one go.
    whole = kmip_lib.encrypt(uid, plain.read_bytes(), mode="GCM", tag_length=16, iv=bytes.fromhex(meta["iv"]))
    assert (whole.data, whole.tag) == (sealed.read_bytes(), bytes.fromhex(meta["tag"]))

    args = ["--iv", meta["iv"], "--tag", meta["tag"], "--in", str(sealed), "--out", str(opened)]
    ok(env, "decrypt", uid, *gcm, *args, "--part-size", "3000")
    assert opened.read_bytes() == plain.read_bytes()


def test_wrong_tag_fails_and_leaves_no_output(env: dict[str, str], kmip_lib: Client, tmp_path: Path) -> None:
    uid = active_key(kmip_lib, GCM_KEY)
    sealed = tmp_path / "sealed.bin"
    sealed.write_bytes(GCM_CIPHER)
    target = tmp_path / "opened.bin"
    gcm = ["--mode", "gcm", "--iv", GCM_IV.hex(), "--aad", GCM_AAD.hex(), "--tag", bytes(16).hex()]
    for part_size in ("1024", "16"):  # whole, then streamed (the tag fails at the final part)
        failed = run(env, "decrypt", uid, *gcm, "--in", str(sealed), "--out", str(target), "--part-size", part_size)
        assert failed.returncode == 1
        assert failed.stderr.decode().startswith("kmip: CRYPTOGRAPHIC_FAILURE:")
        assert b"Traceback" not in failed.stderr and GCM_PLAIN.hex().encode() not in failed.stderr
        assert not target.exists() and list(tmp_path.iterdir()) == [sealed]


def test_streaming_sends_one_request_per_part(
    server: ServerProcess,
    kmip_lib: Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    uid = active_key(kmip_lib, HMAC_KEY, "HMAC_SHA256")
    source = tmp_path / "data.bin"
    source.write_bytes(HMAC_DATA)
    sent: list[int] = []
    real = ConnectionPool.exchange

    def counting(self: ConnectionPool, request: bytes, *, idempotent: bool) -> bytes:
        sent.append(len(request))
        return real(self, request, idempotent=idempotent)

    monkeypatch.setattr(ConnectionPool, "exchange", counting)
    connection = ["--server", f"{server.host}:{server.port}", "--ca", str(server.tls.ca)]
    connection += ["--cert", str(server.tls.cert), "--key", str(server.tls.key), "--kmip-version", "2.1"]
    assert main(["mac", uid, "--in", str(source), "--hex", "--part-size", "3", *connection]) == 0
    assert capfd.readouterr().out == HMAC_SHA256.hex() + "\n"
    assert len(sent) == 3  # "Hi " and "The" with Init / Correlation Value, "re" with Final
    sent.clear()
    assert main(["mac", uid, "--in", str(source), "--hex", *connection]) == 0
    assert capfd.readouterr().out == HMAC_SHA256.hex() + "\n"
    assert len(sent) == 1  # smaller than a part: one whole MAC request


def test_hash_known_answer(env: dict[str, str], tmp_path: Path) -> None:
    assert ok(env, "hash", "--hash", "sha-256", stdin=b"abc").stdout == SHA256_ABC
    assert (
        ok(env, "hash", "--hash", "SHA256", "--hex", "--part-size", "1", stdin=b"abc").stdout
        == (SHA256_ABC.hex() + "\n").encode()
    )
    source = tmp_path / "abc"
    source.write_bytes(b"abc")
    out = tmp_path / "digest"
    ok(env, "hash", "--hash", "sha-256", "--in", str(source), "--out", str(out))
    assert out.read_bytes() == SHA256_ABC

    missing = run(env, "hash", stdin=b"abc")
    assert missing.returncode == 2 and b"--hash" in missing.stderr
    unknown = run(env, "hash", "--hash", "sha-999", stdin=b"abc")
    assert unknown.returncode == 2 and b"sha-256" in unknown.stderr


def test_sign_and_verify_files(env: dict[str, str], kmip_lib: Client, tmp_path: Path) -> None:
    private_uid, public_uid, private = rsa_pair(kmip_lib)
    document = tmp_path / "document.txt"
    document.write_bytes(b"pay the bearer one hundred pounds\n" * 50)
    signature = tmp_path / "document.sig"
    rsa = ["--padding", "pkcs1-v1.5", "--hash", "sha-256"]
    ok(env, "sign", private_uid, *rsa, "--in", str(document), "--out", str(signature), "--part-size", "600")
    assert signature.read_bytes() == private.sign(document.read_bytes(), padding.PKCS1v15(), hashes.SHA256())

    valid = ok(env, "verify", public_uid, *rsa, "--signature", str(signature), "--in", str(document))
    assert valid.stdout == b"valid\n"
    tampered = run(env, "verify", public_uid, *rsa, "--signature", str(signature), stdin=b"pay the bearer 1000")
    assert (tampered.returncode, tampered.stdout, tampered.stderr) == (1, b"invalid\n", b"")
    as_json = run(env, "verify", public_uid, *rsa, "--signature", str(signature), "--json", stdin=b"x")
    assert as_json.returncode == 1 and as_json.stdout == b'{"valid": false, "indicator": "INVALID"}\n'


def test_mac_and_mac_verify(env: dict[str, str], tmp_path: Path) -> None:
    uid = ok(env, "register", "key", "--hex", HMAC_KEY.hex(), "--algorithm", "hmac-sha256").stdout.decode().strip()
    ok(env, "activate", uid)
    assert ok(env, "mac", uid, stdin=HMAC_DATA).stdout == HMAC_SHA256
    mac = tmp_path / "mac"
    mac.write_bytes(HMAC_SHA256)
    assert ok(env, "mac", uid, "--verify", str(mac), stdin=HMAC_DATA).stdout == b"valid\n"
    wrong = run(env, "mac", uid, "--verify", str(mac), stdin=b"Hi there")
    assert (wrong.returncode, wrong.stdout) == (1, b"invalid\n")


def test_rng(env: dict[str, str], tmp_path: Path) -> None:
    shown = ok(env, "rng", "--length", "16", "--hex").stdout
    assert len(shown) == 33 and bytes.fromhex(shown.decode().strip())
    out = tmp_path / "random.bin"
    ok(env, "rng", "--length", "64", "--out", str(out))
    assert len(out.read_bytes()) == 64 and stat.S_IMODE(out.stat().st_mode) == 0o600
    assert run(env, "rng", "--length", "0").returncode == 2


def test_failures_are_one_line_with_the_reason(env: dict[str, str]) -> None:
    missing = run(env, "encrypt", "no-such-key", "--mode", "gcm", "--random-iv", stdin=b"data")
    assert missing.returncode == 1 and missing.stdout == b""
    assert missing.stderr.decode().startswith("kmip: OBJECT_NOT_FOUND:") and len(missing.stderr.splitlines()) == 1
    absent = run(env, "encrypt", "no-such-key", "--in", "/nonexistent/input")
    assert absent.returncode == 1 and b"/nonexistent/input" in absent.stderr and b"Traceback" not in absent.stderr


def test_connection_options_before_the_subcommand(server: ServerProcess) -> None:
    # Nothing from the environment: the flags before the subcommand alone connect.
    flags = ["--server", f"{server.host}:{server.port}", "--ca", str(server.tls.ca), "--cert", str(server.tls.cert)]
    flags += ["--key", str(server.tls.key)]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KMIP_")}
    done = subprocess.run(
        [str(KMIP), *flags, "hash", "--hash", "sha-256"], input=b"abc", capture_output=True, env=clean, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == SHA256_ABC
