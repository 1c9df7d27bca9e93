"""Key custody against a real SoftHSM2 token: AES-GCM wrapping by the token, errors, set-up, fork."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pkcs11
import pytest
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11.exceptions import AttributeSensitive, UserAlreadyLoggedIn

from kmip_server.custody import (
    CustodyError,
    CustodyUnavailable,
    Pkcs11Custody,
    initialise_token,
    use_softhsm_conf,
)

if TYPE_CHECKING:  # the fixture's type; conftest modules are not imported by tests
    from .conftest import SoftHsmToken

CONTEXT = b"uid=7f1e2d3c/type=SymmetricKey"
HEADER_LEN = 1 + 12
TAG_LEN = 16


# ---- wrap / unwrap ----


@pytest.mark.parametrize("length", [0, 1, 16, 32, 64, 1000, 65536])
def test_round_trip(custody: Pkcs11Custody, length: int) -> None:
    plaintext = os.urandom(length)
    blob = custody.wrap(plaintext, CONTEXT)
    assert len(blob) == HEADER_LEN + length + TAG_LEN
    assert blob[0] == 1
    assert custody.unwrap(blob, CONTEXT) == plaintext


def test_empty_context_and_bytes_like_inputs(custody: Pkcs11Custody) -> None:
    blob = custody.wrap(bytearray(b"k" * 32), b"")
    assert custody.unwrap(memoryview(blob), bytearray()) == b"k" * 32
    with pytest.raises(TypeError):
        custody.wrap("not bytes", CONTEXT)  # type: ignore[arg-type]


def test_each_wrap_uses_a_fresh_iv(custody: Pkcs11Custody) -> None:
    plaintext = b"\x42" * 32
    blobs = {custody.wrap(plaintext, CONTEXT) for _ in range(50)}
    assert len(blobs) == 50
    assert len({blob[1:HEADER_LEN] for blob in blobs}) == 50


def test_plaintext_does_not_appear_in_the_blob(custody: Pkcs11Custody) -> None:
    plaintext = b"SECRET-KEY-MATERIAL-" * 4
    blob = custody.wrap(plaintext, CONTEXT)
    assert plaintext not in blob
    assert plaintext[:16] not in blob


@pytest.mark.parametrize("position", [0, 1, HEADER_LEN - 1, HEADER_LEN, HEADER_LEN + 31, -TAG_LEN, -1])
def test_any_flipped_bit_fails(custody: Pkcs11Custody, position: int) -> None:
    blob = bytearray(custody.wrap(os.urandom(32), CONTEXT))
    blob[position] ^= 0x01
    with pytest.raises(CustodyError):
        custody.unwrap(bytes(blob), CONTEXT)


@pytest.mark.parametrize("context", [b"", CONTEXT + b"x", CONTEXT[:-1], b"uid=other/type=SymmetricKey"])
def test_wrong_context_fails(custody: Pkcs11Custody, context: bytes) -> None:
    blob = custody.wrap(os.urandom(32), CONTEXT)
    with pytest.raises(CustodyError):
        custody.unwrap(blob, context)


def _unknown_version(blob: bytes) -> bytes:
    return b"\x02" + blob[1:]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda blob: b"",
        lambda blob: blob[:1],
        lambda blob: blob[: HEADER_LEN + TAG_LEN - 1],
        lambda blob: blob[:-1],
        lambda blob: blob + b"\x00",
        lambda blob: b"\x01" + os.urandom(len(blob) - 1),
        lambda blob: os.urandom(len(blob)),
        _unknown_version,
        lambda blob: b"\x00" + blob[1:],
    ],
    ids=["empty", "version-only", "short", "truncated", "extended", "garbage-v1", "garbage", "v2", "v0"],
)
def test_malformed_blobs_fail(custody: Pkcs11Custody, mangle: Callable[[bytes], bytes]) -> None:
    blob = custody.wrap(os.urandom(32), CONTEXT)
    with pytest.raises(CustodyError):
        custody.unwrap(mangle(blob), CONTEXT)


def test_unwrap_errors_reveal_nothing(custody: Pkcs11Custody) -> None:
    plaintext = b"P" * 32
    blob = custody.wrap(plaintext, CONTEXT)
    messages = []
    for bad_blob, context in [(blob, b"XYZZY"), (blob[:-1], CONTEXT), (_unknown_version(blob), CONTEXT)]:
        with pytest.raises(CustodyError) as caught:
            custody.unwrap(bad_blob, context)
        messages.append(str(caught.value))
    assert len(set(messages)) == 1  # which check failed is not disclosed
    assert plaintext.decode() not in messages[0] and "XYZZY" not in messages[0]


def test_blobs_survive_reopening(softhsm_token: SoftHsmToken) -> None:
    with softhsm_token.open() as first:
        blob = first.wrap(b"persisted" * 4, CONTEXT)
        key_id = first.master_key_id
    with softhsm_token.open() as second:
        assert second.master_key_id == key_id
        assert second.unwrap(blob, CONTEXT) == b"persisted" * 4


def test_master_key_id_is_stable_and_names_the_key(custody: Pkcs11Custody, softhsm_token: SoftHsmToken) -> None:
    prefix = f"pkcs11:{softhsm_token.label}/{softhsm_token.master_key_label}#"
    assert custody.master_key_id.startswith(prefix)
    assert len(custody.master_key_id) == len(prefix) + 32  # 16-byte CKA_ID in hex
    assert softhsm_token.pin not in repr(custody)


def test_concurrent_use_from_threads(custody: Pkcs11Custody) -> None:
    failures: list[BaseException] = []

    def worker(seed: int) -> None:
        try:
            for i in range(200):
                plaintext = bytes([seed, i % 256]) * 16
                context = CONTEXT + bytes([seed])
                assert custody.unwrap(custody.wrap(plaintext, context), context) == plaintext
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread below
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


# ---- random, close, token failure ----


def test_random_comes_in_the_requested_length(custody: Pkcs11Custody) -> None:
    first, second = custody.random(32), custody.random(32)
    assert len(first) == len(second) == 32
    assert first != second
    assert custody.random(0) == b""
    assert len(custody.random(1000)) == 1000
    with pytest.raises(ValueError):
        custody.random(-1)


def test_closed_custody_refuses_work(softhsm_token: SoftHsmToken) -> None:
    opened = softhsm_token.open()
    blob = opened.wrap(b"x" * 32, CONTEXT)
    opened.close()
    opened.close()  # idempotent
    for call in (lambda: opened.wrap(b"x", CONTEXT), lambda: opened.unwrap(blob, CONTEXT), lambda: opened.random(8)):
        with pytest.raises(CustodyError, match="closed"):
            call()


def test_token_failure_while_running_is_a_custody_error(softhsm_token: SoftHsmToken) -> None:
    opened = softhsm_token.open()
    blob = opened.wrap(b"x" * 32, CONTEXT)
    # A real failure, not a simulated one: the session disappears under the instance.
    opened._session.close()
    with pytest.raises(CustodyError):
        opened.wrap(b"y" * 32, CONTEXT)
    with pytest.raises(CustodyError):
        opened.unwrap(blob, CONTEXT)
    with pytest.raises(CustodyError):
        opened.random(8)
    opened.close()
    with softhsm_token.open() as again:  # the process-wide login is still sound
        assert again.unwrap(blob, CONTEXT) == b"x" * 32


# ---- opening: operator errors ----


def test_wrong_pin_is_unavailable_and_not_echoed(softhsm_token: SoftHsmToken) -> None:
    wrong = "wrong-pin-98765"
    with pytest.raises(CustodyUnavailable, match="wrong PIN") as caught:
        Pkcs11Custody.open(softhsm_token.module, softhsm_token.label, wrong, softhsm_token.master_key_label)
    assert wrong not in str(caught.value) and softhsm_token.pin not in str(caught.value)
    assert softhsm_token.label in str(caught.value)


def test_wrong_pin_is_refused_while_another_instance_is_logged_in(softhsm_token: SoftHsmToken) -> None:
    # PKCS#11 logins are per process: without the custody's own check, C_Login would just
    # answer "already logged in" and any PIN would do.
    with softhsm_token.open() as first:
        with pytest.raises(CustodyUnavailable, match="wrong PIN"):
            Pkcs11Custody.open(softhsm_token.module, softhsm_token.label, "not-the-pin", softhsm_token.master_key_label)
        with softhsm_token.open() as second:
            assert second.unwrap(first.wrap(b"shared", CONTEXT), CONTEXT) == b"shared"
        assert first.unwrap(first.wrap(b"still logged in", CONTEXT), CONTEXT) == b"still logged in"


def test_unknown_token_is_unavailable(softhsm_token: SoftHsmToken) -> None:
    with pytest.raises(CustodyUnavailable, match="'no-such-token' not found") as caught:
        Pkcs11Custody.open(softhsm_token.module, "no-such-token", softhsm_token.pin, softhsm_token.master_key_label)
    assert str(softhsm_token.module) in str(caught.value)
    assert softhsm_token.pin not in str(caught.value)


def test_missing_library_is_unavailable(softhsm_token: SoftHsmToken, tmp_path: Path) -> None:
    missing = tmp_path / "libnothing.so"
    with pytest.raises(CustodyUnavailable, match="not found") as caught:
        Pkcs11Custody.open(missing, softhsm_token.label, softhsm_token.pin, softhsm_token.master_key_label)
    assert str(missing) in str(caught.value)


def test_file_that_is_not_a_pkcs11_library_is_unavailable(softhsm_token: SoftHsmToken, tmp_path: Path) -> None:
    bogus = tmp_path / "libbogus.so"
    bogus.write_bytes(b"not an ELF file")
    with pytest.raises(CustodyUnavailable, match="cannot initialise"):
        Pkcs11Custody.open(bogus, softhsm_token.label, softhsm_token.pin, softhsm_token.master_key_label)


def test_missing_master_key_is_unavailable(softhsm_token: SoftHsmToken) -> None:
    with pytest.raises(CustodyUnavailable, match="'no-such-key'.*not found"):
        Pkcs11Custody.open(softhsm_token.module, softhsm_token.label, softhsm_token.pin, "no-such-key")
    with softhsm_token.open() as still_fine:  # the failed open released its share of the login
        assert still_fine.random(4)


def test_switching_softhsm_conf_in_a_running_process_is_refused(
    custody: Pkcs11Custody, softhsm_token: SoftHsmToken, tmp_path: Path
) -> None:
    other = tmp_path / "softhsm2.conf"
    other.write_text("directories.tokendir = /nonexistent\n")
    with pytest.raises(CustodyUnavailable, match="already initialised"):
        use_softhsm_conf(other)
    assert os.environ["SOFTHSM2_CONF"] == str(softhsm_token.conf)
    use_softhsm_conf(softhsm_token.conf)  # the same configuration again is fine


# ---- the token set-up ----


def _read_master_key_attributes(token: SoftHsmToken) -> dict[Any, Any]:
    lib = pkcs11.lib(str(token.module))
    pkcs11_token = lib.get_token(token_label=token.label)
    try:
        session = pkcs11_token.open(user_pin=token.pin)
    except UserAlreadyLoggedIn:  # another instance in this process holds the login
        session = pkcs11_token.open()
    with session:
        key = session.get_key(object_class=ObjectClass.SECRET_KEY, label=token.master_key_label)
        names = [
            Attribute.KEY_TYPE,
            Attribute.VALUE_LEN,
            Attribute.TOKEN,
            Attribute.PRIVATE,
            Attribute.SENSITIVE,
            Attribute.EXTRACTABLE,
            Attribute.ALWAYS_SENSITIVE,
            Attribute.NEVER_EXTRACTABLE,
            Attribute.ENCRYPT,
            Attribute.DECRYPT,
            Attribute.WRAP,
            Attribute.UNWRAP,
            Attribute.SIGN,
            Attribute.ID,
        ]
        attributes = key.get_attributes(names)
        with pytest.raises(AttributeSensitive):
            key[Attribute.VALUE]
    return attributes


def test_master_key_is_sensitive_and_never_extractable(softhsm_token: SoftHsmToken) -> None:
    attributes = _read_master_key_attributes(softhsm_token)
    assert attributes[Attribute.KEY_TYPE] == KeyType.AES
    assert attributes[Attribute.VALUE_LEN] == 32
    assert attributes[Attribute.TOKEN] and attributes[Attribute.PRIVATE]
    assert attributes[Attribute.SENSITIVE] and attributes[Attribute.ALWAYS_SENSITIVE]
    assert not attributes[Attribute.EXTRACTABLE] and attributes[Attribute.NEVER_EXTRACTABLE]
    assert attributes[Attribute.ENCRYPT] and attributes[Attribute.DECRYPT]
    assert attributes[Attribute.WRAP] and attributes[Attribute.UNWRAP]
    assert not attributes[Attribute.SIGN]
    assert len(attributes[Attribute.ID]) == 16


def test_token_directory_layout(softhsm_token: SoftHsmToken) -> None:
    assert softhsm_token.conf == softhsm_token.token_dir / "softhsm2.conf"
    assert stat.S_IMODE(softhsm_token.token_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((softhsm_token.token_dir / "tokens").stat().st_mode) == 0o700
    text = softhsm_token.conf.read_text()
    assert f"directories.tokendir = {softhsm_token.token_dir / 'tokens'}\n" in text
    assert "objectstore.backend = file\n" in text and "log.level = ERROR\n" in text
    assert softhsm_token.pin not in text and softhsm_token.so_pin not in text


def test_initialising_again_keeps_token_and_master_key(softhsm_token: SoftHsmToken) -> None:
    with softhsm_token.open() as before:
        blob = before.wrap(b"wrapped before re-init", CONTEXT)
        key_id = before.master_key_id
        conf = initialise_token(
            softhsm_token.token_dir,
            label=softhsm_token.label,
            pin=softhsm_token.pin,
            so_pin=softhsm_token.so_pin,
            master_key_label=softhsm_token.master_key_label,
            module=softhsm_token.module,
        )
        assert conf == softhsm_token.conf
    with softhsm_token.open() as after:
        assert after.master_key_id == key_id
        assert after.unwrap(blob, CONTEXT) == b"wrapped before re-init"


def test_initialising_an_existing_token_with_a_wrong_pin_is_refused(softhsm_token: SoftHsmToken) -> None:
    with pytest.raises(CustodyUnavailable, match="wrong PIN") as caught:
        initialise_token(
            softhsm_token.token_dir,
            label=softhsm_token.label,
            pin="a-wrong-user-pin",
            so_pin="a-wrong-so-pin",
            master_key_label=softhsm_token.master_key_label,
            module=softhsm_token.module,
        )
    assert "a-wrong" not in str(caught.value)
    assert _read_master_key_attributes(softhsm_token)[Attribute.SENSITIVE]


@pytest.mark.parametrize(
    "overrides",
    [{"label": "x" * 33}, {"label": " padded"}, {"pin": "123"}, {"so_pin": ""}, {"master_key_label": ""}],
)
def test_unusable_arguments_are_rejected(tmp_path: Path, overrides: dict[str, str]) -> None:
    arguments = {"label": "t", "pin": "1234", "so_pin": "5678", "master_key_label": "k", **overrides}
    with pytest.raises(ValueError):
        initialise_token(tmp_path / "token", **arguments)
    assert not (tmp_path / "token").exists()


def test_a_second_token_works_in_its_own_process(softhsm_token: SoftHsmToken, tmp_path: Path) -> None:
    # This process is committed to the session token's configuration; another token needs a process.
    token_dir = tmp_path / "second"
    conf = initialise_token(
        token_dir,
        label="second",
        pin="pin-two-2222",
        so_pin="so-two-2222",
        master_key_label="mk2",
        module=softhsm_token.module,
    )
    script = (
        "import sys; from kmip_server.custody import Pkcs11Custody, use_softhsm_conf\n"
        "use_softhsm_conf(sys.argv[1])\n"
        "with Pkcs11Custody.open(sys.argv[2], 'second', sys.stdin.read(), 'mk2') as c:\n"
        "    assert c.unwrap(c.wrap(b'abc', b'ctx'), b'ctx') == b'abc'\n"
        "    print(c.master_key_id)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(conf), str(softhsm_token.module)],
        input="pin-two-2222",
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("pkcs11:second/mk2#")
    with softhsm_token.open() as session_token:  # the session token is unaffected
        assert session_token.master_key_id.startswith(f"pkcs11:{softhsm_token.label}/")


# ---- fork ----


def _in_forked_child(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``work`` in a forked child, as the server's workers are, and return its JSON result."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        os.close(read_end)
        try:
            result = work()
        except BaseException as exc:  # noqa: BLE001 - everything must reach the parent
            result = {"error": repr(exc)}
        os.write(write_end, json.dumps(result).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def test_open_after_fork(softhsm_token: SoftHsmToken) -> None:
    with softhsm_token.open() as parent:
        blob = parent.wrap(b"made by the parent", CONTEXT)

        def child() -> dict[str, Any]:
            try:
                parent.wrap(b"x", CONTEXT)
                inherited = "worked"
            except CustodyError as exc:
                inherited = str(exc)
            parent.close()  # must not touch the parent's session
            with softhsm_token.open() as own:
                return {
                    "inherited": inherited,
                    "unwrapped": own.unwrap(blob, CONTEXT).decode(),
                    "blob": own.wrap(b"made by the child", CONTEXT).hex(),
                }

        result = _in_forked_child(child)
        assert "error" not in result, result["error"]
        assert "fork" in result["inherited"]
        assert result["unwrapped"] == "made by the parent"
        # The parent's instance and login are intact after the child has come and gone.
        assert parent.unwrap(bytes.fromhex(result["blob"]), CONTEXT) == b"made by the child"
