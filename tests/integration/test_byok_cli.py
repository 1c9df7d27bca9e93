"""``strongroom byok export`` for every provider and method, on a real data directory (the test
session's SoftHSM2 token, SQLite, an access policy with an approval rule), run in this process
as the command's ``main``: each blob is unwrapped by the provider's documented algorithm
(byok_providers.py, ``cryptography`` alone) back to the key's bytes. Also: an export held for
M-of-N approval (exit 4 and the request id, the same request when asked again, written once
approved), the audit records, and the refusals, each one ``strongroom:`` line and exit 1 with
nothing written."""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kmip_client import Client
from kmip_client.protocol.model.objects import PrivateKey
from kmip_client.protocol.spec.enums import CryptographicAlgorithm, CryptographicUsageMask, KeyFormatType, ObjectType
from kmip_server.cli import main
from kmip_server.config import load_config
from kmip_server.engine.app import build_dispatcher
from tests.support.inprocess import DispatcherTransport

from .byok_providers import aws_unwrap, azure_unwrap, gcp_unwrap
from .conftest import SoftHsmToken
from .test_byok_kmip import PKCS8, key_block, register_active

DER = serialization.Encoding.DER
_SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
_PRIVATE = (ObjectType.PRIVATE_KEY, int(CryptographicUsageMask.SIGN))
KID = "https://contoso.vault.azure.net/keys/KEKforBYOK/664f5aa2797a4075b8e36ca4500636d8"
POLICY = """
[settings]
administrators = ["admin"]

[roles.approver]
approver = true

[[identities]]
match = { CN = "carol" }
roles = ["approver"]

[[approvals]]
name = "cloud export"
operations = ["Get"]
scope = { object_group = "cloud-export" }
required = 1
approvers = ["carol"]
expires_after = 3600
"""


@dataclass(frozen=True)
class DataDir:
    path: Path
    keys: dict[str, tuple[str, bytes]]  # kind -> (uid, the bytes a provider receives)
    wrapping: dict[int, tuple[rsa.RSAPrivateKey, Path]]  # bits -> (provider's private key, its public PEM)


def _config(data_dir: Path, token: SoftHsmToken) -> None:
    (data_dir / "hsm").mkdir(parents=True)
    pin = data_dir / "hsm" / "user.pin"
    pin.write_text(token.pin + "\n")
    pin.chmod(0o600)
    (data_dir / "policy.toml").write_text(POLICY)
    (data_dir / "strongroom.toml").write_text(
        f"""
# No server is started here: the certificates are named only because the file needs them.
[tls]
certificate = "pki/server.crt"
private_key = "pki/server.key"
client_ca = ["pki/ca.crt"]

[custody]
module = "{token.module}"
token_label = "{token.label}"
master_key_label = "{token.master_key_label}"
pin_file = "hsm/user.pin"
softhsm2_conf = "{token.conf}"

[storage]
url = "sqlite:///strongroom.db"

[policy]
admin_identities = ["admin"]
policy_file = "policy.toml"
"""
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, softhsm_token: SoftHsmToken) -> Iterator[DataDir]:
    """The data directory, with keys its administrator registered through its engine."""
    path = tmp_path_factory.mktemp("byok-cli") / "data"
    _config(path, softhsm_token)
    dispatcher = build_dispatcher(load_config(path))
    try:
        with Client(transport=DispatcherTransport(dispatcher, "admin"), version=(2, 1)) as kmip:
            aes = os.urandom(32)
            ec_der = ec.generate_private_key(ec.SECP256R1()).private_bytes(DER, PKCS8, serialization.NoEncryption())
            rsa_der = rsa.generate_private_key(65537, 2048).private_bytes(DER, PKCS8, serialization.NoEncryption())
            keys = {
                "aes": (kmip.register_key(aes, "AES"), aes),
                "ec": (register_active(kmip, _private(ec_der, CryptographicAlgorithm.EC, 256), *_PRIVATE), ec_der),
                "rsa": (register_active(kmip, _private(rsa_der, CryptographicAlgorithm.RSA, 2048), *_PRIVATE), rsa_der),
            }
            held = os.urandom(32)
            keys["held"] = (kmip.register_key(held, "AES", attributes={"Object Group": "cloud-export"}), held)
            sensitive = os.urandom(32)
            keys["sensitive"] = (kmip.register_key(sensitive, "AES", attributes={"Sensitive": True}), sensitive)
            keys["kept"] = (kmip.register_key(os.urandom(32), "AES", attributes={"Extractable": False}), b"")
    finally:
        dispatcher.close()
    wrapping = {}
    for bits in (2048, 3072, 4096):
        private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        pem = path.parent / f"wrapping-{bits}.pem"
        pem.write_bytes(private.public_key().public_bytes(serialization.Encoding.PEM, _SPKI))
        wrapping[bits] = (private, pem)
    yield DataDir(path, keys, wrapping)


def _private(der: bytes, algorithm: CryptographicAlgorithm, bits: int) -> PrivateKey:
    return PrivateKey(key_block=key_block(KeyFormatType.PKCS_8, der, algorithm, bits))


def export(
    capsys: pytest.CaptureFixture[str], data: DataDir, provider: str, key: str, bits: int, out: Path, *extra: str
) -> tuple[int, str, str]:
    args = ["byok", "export", "--data-dir", str(data.path), "--provider", provider, "--key", data.keys[key][0]]
    args += ["--wrapping-key", str(data.wrapping[bits][1]), "--out", str(out), *extra]
    status = main(args)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


CASES = [
    ("aws", "RSAES_OAEP_SHA_1", 2048, "aes"),
    ("aws", "RSAES_OAEP_SHA_256", 3072, "ec"),
    ("aws", "RSA_AES_KEY_WRAP_SHA_1", 4096, "rsa"),
    ("aws", "RSA_AES_KEY_WRAP_SHA_256", 2048, "rsa"),
    ("aws", "rsa_aes_key_wrap_sha_256", 3072, "aes"),  # the provider's names, in any case
    ("azure", "CKM_RSA_AES_KEY_WRAP", 2048, "rsa"),
    ("azure", None, 4096, "ec"),  # the one Azure method is the default
    ("azure", None, 3072, "aes"),  # Managed HSM's oct-HSM keys
    ("gcp", "rsa-oaep-3072-sha1-aes-256", 3072, "aes"),
    ("gcp", "rsa-oaep-4096-sha1-aes-256", 4096, "rsa"),
    ("gcp", "rsa-oaep-3072-sha256-aes-256", 3072, "ec"),
    ("gcp", "RSA_OAEP_4096_SHA256_AES_256", 4096, "rsa"),  # Google's API enum spelling
    ("gcp", "rsa-oaep-3072-sha256", 3072, "aes"),
    ("gcp", "rsa-oaep-4096-sha256", 4096, "ec"),
]


@pytest.mark.parametrize(("provider", "method", "bits", "key"), CASES)
def test_every_method_unwraps_to_the_key(capsys, data_dir, tmp_path, provider, method, bits, key) -> None:
    out = tmp_path / ("key.byok" if provider == "azure" else "wrapped.bin")
    extra = [] if method is None else ["--algorithm", method]
    if provider == "azure":
        extra += ["--kek-id", KID]
    status, stdout, stderr = export(capsys, data_dir, provider, key, bits, out, *extra)
    assert (status, stderr) == (0, ""), stdout
    private, material = data_dir.wrapping[bits][0], data_dir.keys[key][1]
    written = out.read_bytes()
    if provider == "azure":
        unwrapped, blob = azure_unwrap(private, written)
        assert blob["header"]["kid"] == KID
    elif provider == "aws":
        unwrapped = aws_unwrap(private, method.upper(), written)
    else:
        unwrapped = gcp_unwrap(private, method.lower().replace("_", "-"), written)
    assert unwrapped == material
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    command = {
        "aws": "aws kms import-key-material",
        "azure": "az keyvault key import",
        "gcp": "gcloud kms keys versions import",
    }
    assert command[provider] in stdout and str(out) in stdout
    assert material.hex() not in stdout


def test_the_export_is_a_get_in_the_audit_trail_and_reuses_the_wrapping_key(capsys, data_dir, tmp_path) -> None:
    uid, material = data_dir.keys["sensitive"]  # Sensitive: released only wrapped, and so here
    objects = []
    for name in ("one.bin", "two.bin"):
        status, stdout, _ = export(
            capsys, data_dir, "aws", "sensitive", 3072, tmp_path / name, "--algorithm", "RSAES_OAEP_SHA_256"
        )
        assert status == 0
        objects.append(re.search(r"\(object (\S+)\)", stdout).group(1))
        assert aws_unwrap(data_dir.wrapping[3072][0], "RSAES_OAEP_SHA_256", (tmp_path / name).read_bytes()) == material
    assert objects[0] == objects[1]  # one registered wrapping key per provider public key
    assert main(["audit", "search", "--data-dir", str(data_dir.path), "--object", uid, "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    gets = [r for r in records if r["operation"] == "Get"]
    assert len(gets) == 2 and all(r["identity"] == "admin" and r["result"] == "Success" for r in gets)
    assert all(objects[0] in r["object_ids"] for r in gets)  # the wrapping key is named with the key
    assert material.hex() not in json.dumps(records)


def test_an_export_held_for_approval_runs_once_approved(capsys, data_dir, tmp_path) -> None:
    out = tmp_path / "held.bin"
    args = ("--algorithm", "rsa-oaep-3072-sha256")
    status, _, stderr = export(capsys, data_dir, "gcp", "held", 3072, out, *args)
    assert status == 4 and "awaits approval" in stderr and "carol" in stderr and not out.exists()
    request_id = re.search(r"request ([0-9a-f]{32})", stderr).group(1)
    # Asked again before the approval: the same request, still pending (no second one).
    again = export(capsys, data_dir, "gcp", "held", 3072, out, *args)
    assert again[0] == 4 and request_id in again[2]
    assert main(["approvals", "list", "--data-dir", str(data_dir.path), "--as", "carol", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["operation"], r["requester"]) for r in listed] == [(request_id, "Get", "admin")]
    # A different export of the key is a different request: it does not take this one's approval.
    other = export(
        capsys, data_dir, "gcp", "held", 3072, tmp_path / "other.bin", "--algorithm", "rsa-oaep-3072-sha1-aes-256"
    )
    assert other[0] == 4 and request_id not in other[2]

    assert main(["approvals", "approve", "--data-dir", str(data_dir.path), "--as", "carol", request_id]) == 0
    capsys.readouterr()
    status, stdout, stderr = export(capsys, data_dir, "gcp", "held", 3072, out, *args)
    assert (status, stderr) == (0, ""), stdout
    assert gcp_unwrap(data_dir.wrapping[3072][0], "rsa-oaep-3072-sha256", out.read_bytes()) == data_dir.keys["held"][1]
    assert main(["approvals", "show", "--data-dir", str(data_dir.path), "--as", "carol", request_id, "--json"]) == 0
    (shown,) = json.loads(capsys.readouterr().out)
    assert (shown["status"], shown["outcome"]) == ("done", "Success")


@pytest.mark.parametrize(
    ("provider", "key", "bits", "extra", "expected"),
    [
        ("aws", "aes", 2048, ["--algorithm", "RSAES_PKCS1_V1_5"], "aws has no wrapping method 'RSAES_PKCS1_V1_5'"),
        (
            "gcp",
            "aes",
            3072,
            ["--algorithm", "rsa-oaep-4096-sha256"],
            "needs an RSA wrapping key of 4096 bits, not 3072",
        ),
        ("gcp", "aes", 2048, [], "--algorithm is needed for gcp"),
        ("aws", "rsa", 4096, ["--algorithm", "RSAES_OAEP_SHA_256"], "cannot carry an RSA private key"),
        ("gcp", "rsa", 3072, ["--algorithm", "rsa-oaep-3072-sha256"], "cannot carry an RSA private key"),
        ("azure", "rsa", 2048, [], "azure needs --kek-id"),
        ("azure", "rsa", 2048, ["--kek-id", "https://contoso.vault.azure.net/keys/KEKforBYOK"], "with its version"),
        ("aws", "aes", 2048, ["--algorithm", "RSAES_OAEP_SHA_1", "--kek-id", KID], "--kek-id is for azure"),
        (
            "aws",
            "kept",
            2048,
            ["--algorithm", "RSAES_OAEP_SHA_1"],
            "is not extractable (Extractable is False) (Not Extractable)",
        ),
        (
            "aws",
            "aes",
            2048,
            ["--algorithm", "RSAES_OAEP_SHA_1", "--as", "mallory"],
            "no object with Unique Identifier",
        ),
    ],
)
def test_refusals_say_why_and_write_nothing(capsys, data_dir, tmp_path, provider, key, bits, extra, expected) -> None:
    out = tmp_path / "refused.bin"
    status, stdout, stderr = export(capsys, data_dir, provider, key, bits, out, *extra)
    assert status == 1 and stdout == "" and expected in stderr, stderr
    assert stderr.startswith("strongroom: ") and stderr.count("\n") == 1
    assert not out.exists()
    if data_dir.keys[key][1]:
        assert data_dir.keys[key][1].hex() not in stderr


def test_bad_files_are_refused_before_the_engine_is_asked(capsys, data_dir, tmp_path) -> None:
    not_a_key = tmp_path / "wrapping.pem"
    not_a_key.write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    args = ["byok", "export", "--data-dir", str(data_dir.path), "--provider", "aws", "--key", data_dir.keys["aes"][0]]
    args += ["--algorithm", "RSAES_OAEP_SHA_1", "--out", str(tmp_path / "out.bin")]
    assert main([*args, "--wrapping-key", str(not_a_key)]) == 1
    assert "is not a public key" in capsys.readouterr().err
    ec_pem = tmp_path / "ec.pem"
    ec_pem.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(serialization.Encoding.PEM, _SPKI)
    )
    assert main([*args, "--wrapping-key", str(ec_pem)]) == 1
    assert "wraps under an RSA public key" in capsys.readouterr().err
    existing = tmp_path / "out.bin"
    existing.write_bytes(b"keep me")
    der = tmp_path / "wrapping.der"  # AWS hands out DER (base64 in its JSON): both are read
    der.write_bytes(data_dir.wrapping[2048][0].public_key().public_bytes(DER, _SPKI))
    assert main([*args, "--wrapping-key", str(der)]) == 1
    assert "already exists (--force replaces it)" in capsys.readouterr().err
    assert existing.read_bytes() == b"keep me"
    assert main([*args, "--wrapping-key", str(der), "--force"]) == 0
    capsys.readouterr()
    assert aws_unwrap(data_dir.wrapping[2048][0], "RSAES_OAEP_SHA_1", existing.read_bytes()) == data_dir.keys["aes"][1]
    printed = tmp_path / "WrappingPublicKey.b64"  # `aws kms get-parameters-for-import --output text`
    printed.write_bytes(base64.b64encode(der.read_bytes()) + b"\n")
    assert main([*args, "--wrapping-key", str(printed), "--force"]) == 0
    capsys.readouterr()
    assert aws_unwrap(data_dir.wrapping[2048][0], "RSAES_OAEP_SHA_1", existing.read_bytes()) == data_dir.keys["aes"][1]
