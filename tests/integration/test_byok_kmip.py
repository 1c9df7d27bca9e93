"""BYOK through plain KMIP: a real ``strongroom serve`` (SoftHSM2, SQLite) on loopback, real
mutual TLS, the client library. A KMIP client's Get with a Key Wrapping Specification under a
registered RSA public key makes the blobs the providers import: OAEP (SHA-1 or SHA-256, MGF1
matching, No Encoding) is AWS RSAES_OAEP_SHA_* and Google rsa-oaep-*-sha256; OAEP with Block
Cipher Mode AES Key Wrap Padding is RSA-AES key wrap (AWS RSA_AES_KEY_WRAP_SHA_*, Google
rsa-oaep-*-aes-256, Azure). Each blob is unwrapped by the provider's algorithm written in
byok_providers.py with ``cryptography`` alone. Register takes an RSA-AES-wrapped key too.
The ``strongroom byok export`` console script runs once against this server's data directory
while it serves."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

from kmip_client import Client, CryptographicFailure, KmipError
from kmip_client.calls import Calls
from kmip_client.protocol.model.objects import KeyBlock, KeyValue, PrivateKey, PublicKey
from kmip_client.protocol.spec.enums import (
    CryptographicAlgorithm,
    CryptographicUsageMask,
    KeyFormatType,
    ObjectType,
    ResultReason,
)
from tests.support.server_process import (
    LOOPBACK,
    ServerProcess,
    free_port,
    running_server,
    strongroom_command,
    strongroom_init,
)

from .byok_providers import aws_unwrap, gcp_unwrap, rsa_aes_unwrap

DER = serialization.Encoding.DER
PKCS8 = serialization.PrivateFormat.PKCS8
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
Usage = CryptographicUsageMask


@dataclass(frozen=True)
class Served:
    server: ServerProcess
    kmip: Client
    providers: dict[int, tuple[rsa.RSAPrivateKey, str]]  # bits -> (provider's private key, its public key's uid)
    aes: tuple[str, bytes]
    ec: tuple[str, bytes]
    rsa: tuple[str, bytes]


def register_active(kmip: Client, managed: Any, kind: ObjectType, usage: int) -> str:
    # The client has no Register for asymmetric keys; its call layer builds the request.
    uid = str(kmip._run(Calls(kmip.version).register(managed, kind, None, usage, None)))
    kmip.activate(uid)
    return uid


def key_block(fmt: KeyFormatType, material: bytes, algorithm: CryptographicAlgorithm, bits: int) -> KeyBlock:
    return KeyBlock(
        key_format_type=fmt,
        key_value=KeyValue(key_material=material),
        cryptographic_algorithm=algorithm,
        cryptographic_length=bits,
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("byok-kmip") / "data"
    tls = strongroom_init(data_dir)
    with running_server(data_dir, free_port(), workers=1) as server:
        with Client(f"{LOOPBACK}:{server.port}", ca=tls.ca, cert=tls.cert, key=tls.key) as kmip:
            providers = {}
            for bits in (2048, 3072, 4096):  # what AWS, Azure and Google hand out
                private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
                spki = private.public_key().public_bytes(DER, SPKI)
                block = key_block(KeyFormatType.X_509, spki, CryptographicAlgorithm.RSA, bits)
                providers[bits] = (
                    private,
                    register_active(kmip, PublicKey(key_block=block), ObjectType.PUBLIC_KEY, Usage.WRAP_KEY),
                )
            material = os.urandom(32)
            aes = kmip.register_key(material, "AES")
            ec_der = ec.generate_private_key(ec.SECP256R1()).private_bytes(DER, PKCS8, serialization.NoEncryption())
            ec_block = key_block(KeyFormatType.PKCS_8, ec_der, CryptographicAlgorithm.EC, 256)
            ec_uid = register_active(kmip, PrivateKey(key_block=ec_block), ObjectType.PRIVATE_KEY, Usage.SIGN)
            rsa_der = rsa.generate_private_key(65537, 2048).private_bytes(DER, PKCS8, serialization.NoEncryption())
            rsa_block = key_block(KeyFormatType.PKCS_8, rsa_der, CryptographicAlgorithm.RSA, 2048)
            rsa_uid = register_active(kmip, PrivateKey(key_block=rsa_block), ObjectType.PRIVATE_KEY, Usage.SIGN)
            yield Served(server, kmip, providers, (aes, material), (ec_uid, ec_der), (rsa_uid, rsa_der))


def _oaep(hashing: str, mode: str | None = None) -> dict[str, Any]:
    options = {"padding": "OAEP", "hashing": hashing, "mask_generator_hashing": hashing}
    return options if mode is None else {**options, "mode": mode}


def _wrapped(served: Served, uid: str, bits: int, options: dict[str, Any], fmt: KeyFormatType) -> bytes:
    got = served.kmip.get(
        uid, key_format=fmt, wrap_with=served.providers[bits][1], wrap_options=options, wrap_encoding="none"
    )
    assert got.raw is not None and got.raw.key_block.key_wrapping_data is not None
    return got.value


@pytest.mark.parametrize(
    ("provider", "method", "bits", "hashing"),
    [
        ("aws", "RSAES_OAEP_SHA_1", 2048, "SHA_1"),
        ("aws", "RSAES_OAEP_SHA_256", 4096, "SHA_256"),
        ("gcp", "rsa-oaep-3072-sha256", 3072, "SHA_256"),
        ("gcp", "rsa-oaep-4096-sha256", 4096, "SHA_256"),
    ],
)
def test_a_kmip_get_wrapped_by_oaep_is_what_aws_and_google_import(served, provider, method, bits, hashing) -> None:
    uid, material = served.aes
    blob = _wrapped(served, uid, bits, _oaep(hashing), KeyFormatType.RAW)
    private = served.providers[bits][0]
    assert (aws_unwrap if provider == "aws" else gcp_unwrap)(private, method, blob) == material
    if provider == "aws":  # AWS takes EC private keys (PKCS#8) this way too
        ec_uid, ec_der = served.ec
        assert (
            aws_unwrap(private, method, _wrapped(served, ec_uid, bits, _oaep(hashing), KeyFormatType.PKCS_8)) == ec_der
        )


@pytest.mark.parametrize(("bits", "hashing"), [(3072, "SHA_1"), (4096, "SHA_256")])
def test_a_kmip_get_wrapped_by_rsa_aes_key_wrap_carries_private_keys(served, bits, hashing) -> None:
    private = served.providers[bits][0]
    rsa_uid, rsa_der = served.rsa
    blob = _wrapped(served, rsa_uid, bits, _oaep(hashing, "AESKEYWRAPPADDING"), KeyFormatType.PKCS_8)
    assert rsa_aes_unwrap(private, hashing, blob) == rsa_der
    digest = "sha1" if hashing == "SHA_1" else "sha256"
    assert gcp_unwrap(private, f"rsa-oaep-{bits}-{digest}-aes-256", blob) == rsa_der
    # A fresh AES key each time: the same key never wraps to the same blob.
    assert _wrapped(served, rsa_uid, bits, _oaep(hashing, "AESKEYWRAPPADDING"), KeyFormatType.PKCS_8) != blob


def test_rsa_wrapping_refusals_leave_the_server_serving(served) -> None:
    uid, material = served.aes
    rsa_uid, _ = served.rsa
    with pytest.raises(KmipError) as other_mode:
        _wrapped(served, uid, 2048, _oaep("SHA_256", "NISTKEYWRAP"), KeyFormatType.RAW)
    assert other_mode.value.reason == ResultReason.FEATURE_NOT_SUPPORTED
    assert "AES Key Wrap Padding" in other_mode.value.message
    with pytest.raises(KmipError) as too_long:  # an RSA private key does not fit one OAEP block
        _wrapped(served, rsa_uid, 4096, _oaep("SHA_256"), KeyFormatType.PKCS_8)
    assert too_long.value.reason == ResultReason.INVALID_FIELD
    assert served.kmip.get(uid).value == material


def test_register_unwraps_an_rsa_aes_wrapped_key(served) -> None:
    """The inverse, as an HSM's CKM_RSA_AES_KEY_WRAP export arrives: a private key of the
    server's with Unwrap Key takes it; a blob altered anywhere is one Cryptographic Failure."""
    unwrapping = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    der = unwrapping.private_bytes(DER, PKCS8, serialization.NoEncryption())
    block = key_block(KeyFormatType.PKCS_8, der, CryptographicAlgorithm.RSA, 3072)
    private_uid = register_active(served.kmip, PrivateKey(key_block=block), ObjectType.PRIVATE_KEY, Usage.UNWRAP_KEY)
    material, transport = os.urandom(32), os.urandom(32)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    blob = unwrapping.public_key().encrypt(transport, oaep) + aes_key_wrap_with_padding(transport, material)
    options = _oaep("SHA_256", "AESKEYWRAPPADDING")

    def register(wrapped: bytes) -> str:
        return served.kmip.register_wrapped_key(
            wrapped, "AES", 256, wrapped_by=private_uid, wrap_options=options, wrap_encoding="none"
        )

    assert served.kmip.get(register(blob)).value == material
    for altered in (blob[:10] + bytes([blob[10] ^ 1]) + blob[11:], blob[:-1] + bytes([blob[-1] ^ 1]), blob[:384]):
        with pytest.raises(CryptographicFailure, match="does not unwrap under this key"):
            register(altered)


def test_the_console_command_exports_while_the_server_runs(served, tmp_path: Path) -> None:
    """``strongroom byok export`` on the serving node's data directory, as its administrator."""
    private = served.providers[3072][0]
    pem = tmp_path / "wrapping.pem"
    pem.write_bytes(private.public_key().public_bytes(serialization.Encoding.PEM, SPKI))
    uid, material = served.aes
    out = tmp_path / "EncryptedKeyMaterial.bin"
    args = ["byok", "export", "--data-dir", str(served.server.data_dir), "--provider", "aws", "--key", uid]
    args += ["--wrapping-key", str(pem), "--algorithm", "RSA_AES_KEY_WRAP_SHA_256", "--out", str(out)]
    done = subprocess.run([*strongroom_command(), *args], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done
    assert "aws kms import-key-material" in done.stdout and f"fileb://{out}" in done.stdout
    assert aws_unwrap(private, "RSA_AES_KEY_WRAP_SHA_256", out.read_bytes()) == material
    assert material.hex() not in done.stdout + done.stderr
    assert served.kmip.get(uid).value == material  # the server went on serving
