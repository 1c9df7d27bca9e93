"""Nothing secret of a cryptographic operation leaves the server except in its answer.

A real ``strongroom serve`` logging at DEBUG runs the cryptographic services with fresh random
keys, passwords, plaintexts and IVs (whole and streamed, succeeding and failing); afterwards
neither its log, nor an error message the client saw, nor any file of its data directory
(database, write-ahead log, token) holds any of them, as raw bytes, hex or base64.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from kmip_client import Client, CryptographicFailure, KmipError
from kmip_client.protocol.spec.enums import CryptographicUsageMask, SecretDataType
from kmip_client.tls import client_ssl_context
from tests.support.server_process import free_port, running_server, strongroom_init

Usage = CryptographicUsageMask


def _spellings(secret: bytes) -> list[bytes]:
    """``secret`` as a log or a file might hold it: raw, hex either case, base64, and the
    middle eight bytes of each (a part of a key is a leak too)."""
    middle = secret[len(secret) // 2 - 4 : len(secret) // 2 + 4]
    forms = []
    for part in (secret, middle):
        forms += [part, part.hex().encode(), part.hex().upper().encode()]
    forms.append(base64.b64encode(secret)[:-4])  # without the padding, which depends on the end
    forms.append(repr(middle)[2:-1].encode())  # Python's bytes repr, as in an f-string
    return forms


def _exercise(kmip: Client, secrets: dict[str, bytes], errors: list[str]) -> None:
    aes = kmip.register_key(secrets["aes key"], "AES", usage_mask=int(Usage.ENCRYPT | Usage.DECRYPT))
    kmip.activate(aes)
    hmac_key = kmip.register_key(
        secrets["hmac key"], "HMAC_SHA256", usage_mask=int(Usage.MAC_GENERATE | Usage.MAC_VERIFY)
    )
    kmip.activate(hmac_key)
    encrypt_only = kmip.register_key(secrets["encrypt-only key"], "AES", usage_mask=int(Usage.ENCRYPT))
    kmip.activate(encrypt_only)
    password = kmip.register_secret(
        secrets["password"], SecretDataType.PASSWORD, attributes={"Cryptographic Usage Mask": int(Usage.DERIVE_KEY)}
    )
    kmip.activate(password)

    plaintext, iv, aad = secrets["plaintext"], secrets["iv"], secrets["aad"]
    sealed = kmip.encrypt(aes, plaintext, iv=iv, aad=aad, mode="GCM", tag_length=16)
    assert kmip.decrypt(aes, sealed.data, iv=iv, aad=aad, tag=sealed.tag, mode="GCM", tag_length=16) == plaintext
    cbc = kmip.encrypt(aes, plaintext, iv=secrets["cbc iv"], mode="CBC", padding="PKCS5")
    assert kmip.decrypt(aes, cbc.data, iv=secrets["cbc iv"], mode="CBC", padding="PKCS5") == plaintext

    with kmip.encryptor(aes, iv=iv, part_size=1024, mode="GCM", tag_length=16) as stream:
        streamed = stream.update(secrets["streamed plaintext"]) + stream.finalize()
        tag = stream.tag
    with kmip.decryptor(aes, iv=iv, tag=tag, part_size=1024, mode="GCM", tag_length=16) as stream:
        assert stream.update(streamed) + stream.finalize() == secrets["streamed plaintext"]

    mac = kmip.mac(hmac_key, plaintext)
    assert kmip.mac_verify(hmac_key, plaintext, mac)
    assert kmip.hash(plaintext, hashing="SHA_256")
    secrets["rng output"] = kmip.rng(32)
    derived = kmip.derive_key(
        password, "PBKDF2", salt=secrets["salt"], iterations=1000, hashing="SHA_256", usage_mask=int(Usage.ENCRYPT)
    )
    secrets["derived key"] = kmip.get(derived).value

    # Refusals: a wrong tag, a wrong IV length, a key without the usage, an unknown stream.
    failures = (
        lambda: kmip.decrypt(aes, sealed.data, iv=iv, aad=aad, tag=bytes(16), mode="GCM", tag_length=16),
        lambda: kmip.decrypt(aes, cbc.data, iv=secrets["cbc iv"][:5], mode="CBC", padding="PKCS5"),
        lambda: kmip.encrypt(aes, plaintext, iv=iv[:3], mode="GCM", tag_length=16),
        lambda: kmip.decrypt(encrypt_only, cbc.data, iv=secrets["cbc iv"], mode="CBC", padding="PKCS5"),
        lambda: kmip.decrypt(aes, plaintext[:15], mode="ECB"),
    )
    refusals = []
    for fail in failures:
        with pytest.raises(KmipError) as refused:
            fail()
        refusals.append(refused.value)
        errors.append(str(refused.value))
    assert isinstance(refusals[0], CryptographicFailure)


def test_no_secret_in_the_log_the_errors_or_the_data_directory(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    tls = strongroom_init(data_dir)
    secrets = {
        name: os.urandom(size)
        for name, size in (
            ("aes key", 32),
            ("hmac key", 32),
            ("encrypt-only key", 16),
            ("password", 24),
            ("plaintext", 48),
            ("iv", 12),
            ("cbc iv", 16),
            ("aad", 20),
            ("salt", 16),
            ("streamed plaintext", 5000),
        )
    }
    errors: list[str] = []
    with running_server(data_dir, free_port(), workers=2, extra_args=["--log-level", "DEBUG"]) as server:
        context = client_ssl_context(ca=tls.ca, cert=tls.cert, key=tls.key)
        with Client(f"{server.host}:{server.port}", ssl_context=context) as kmip:
            _exercise(kmip, secrets, errors)
        stderr_path = server.stderr_path
    log = stderr_path.read_bytes()
    # The log is at DEBUG and saw the operations: the search below searched something.
    assert b"DEBUG" in log and b"connection from" in log
    assert b"operation=Encrypt" in log and b"operation=Derive Key" in log
    assert len(errors) == 5 and all(errors)
    places = {"the server's log": log, "the client's errors": "\n".join(errors).encode()}
    for path in sorted(data_dir.rglob("*")):
        if path.is_file() and path != stderr_path:
            places[str(path.relative_to(data_dir))] = path.read_bytes()
    assert any(name.endswith(".db") for name in places), sorted(places)
    leaks = [
        f"{name} in {place}"
        for name, secret in secrets.items()
        for place, content in places.items()
        if any(form in content for form in _spellings(secret))
    ]
    assert not leaks, leaks
