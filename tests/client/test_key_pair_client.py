"""Key pairs through the clients and the ``kmip`` command, against a real ``strongroom serve``:
Create Key Pair in 1.4 and 2.1 (sync and asyncio), the linked objects, and the keys signing
through the server with signatures checked independently by ``cryptography``."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, keywrap, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from kmip_client import Client, InvalidField, KeyPair, KmipError
from kmip_client.aio import AsyncClient
from kmip_client.aio_transport import AsyncConnectionPool
from kmip_client.cli import main
from kmip_client.operations import Version
from kmip_client.protocol.model.attributes import Link
from kmip_client.protocol.spec.enums import (
    CryptographicAlgorithm,
    CryptographicUsageMask,
    LinkType,
    ObjectType,
    ResultReason,
    ValidityIndicator,
)
from kmip_client.tls import client_ssl_context
from kmip_client.transport import Endpoint
from tests.support.server_process import ServerProcess, free_port, running_server, strongroom_init

Usage = CryptographicUsageMask
MESSAGE = b"signed by a key the server made"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("key-pairs") / "data"
    strongroom_init(data_dir)
    with running_server(data_dir, free_port(), workers=2) as process:
        yield process


@pytest.fixture(scope="module")
def context(server: ServerProcess) -> ssl.SSLContext:
    return client_ssl_context(ca=server.tls.ca, cert=server.tls.cert, key=server.tls.key)


def address(server: ServerProcess) -> str:
    return f"{server.host}:{server.port}"


@pytest.mark.parametrize("version", [(1, 4), (2, 1)])
def test_rsa_pair_signs_and_verifies(server: ServerProcess, context: ssl.SSLContext, version: Version) -> None:
    with Client(address(server), ssl_context=context, version=version) as kmip:
        pair = kmip.create_key_pair("RSA", 2048, private_name="app-signing", public_name="app-signing-public")
        assert isinstance(pair, KeyPair) and pair.private_key != pair.public_key
        private = kmip.get_attributes(pair.private_key, ["Object Type", "Link", "Name", "Cryptographic Usage Mask"])
        assert private["Object Type"] == [ObjectType.PRIVATE_KEY]
        assert private["Link"] == [Link(link_type=LinkType.PUBLIC_KEY_LINK, linked_object_identifier=pair.public_key)]
        assert [name.value for name in private["Name"]] == ["app-signing"]
        assert private["Cryptographic Usage Mask"] == [Usage.SIGN | Usage.DECRYPT | Usage.UNWRAP_KEY]
        kmip.activate(pair.private_key)
        kmip.activate(pair.public_key)
        signature = kmip.sign(pair.private_key, MESSAGE, padding="PKCS1_V1_5", hashing="SHA_256")
        assert kmip.verify(pair.public_key, MESSAGE, signature, padding="PKCS1_V1_5", hashing="SHA_256")
        public = serialization.load_der_public_key(kmip.get(pair.public_key).value)
        assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048
        public.verify(signature, MESSAGE, padding.PKCS1v15(), hashes.SHA256())


def test_ec_pair_with_own_usage_masks(server: ServerProcess, context: ssl.SSLContext) -> None:
    with Client(address(server), ssl_context=context) as kmip:
        pair = kmip.create_key_pair(
            "ECDSA", curve="P-384", private_usage_mask=int(Usage.SIGN), public_usage_mask=int(Usage.VERIFY)
        )
        assert kmip.get_attributes(pair.public_key, ["Cryptographic Length", "Cryptographic Usage Mask"]) == {
            "Cryptographic Length": [384],
            "Cryptographic Usage Mask": [Usage.VERIFY],
        }
        kmip.activate(pair.private_key)
        signature = kmip.sign(pair.private_key, MESSAGE, hashing="SHA_384")
        public = serialization.load_der_public_key(kmip.get(pair.public_key).value)
        assert isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp384r1"
        public.verify(signature, MESSAGE, ec.ECDSA(hashes.SHA384()))
        with pytest.raises(ValueError, match="unknown curve"):
            kmip.create_key_pair("ECDSA", curve="P-999")


def test_refusal_is_an_error_of_the_hierarchy(server: ServerProcess, context: ssl.SSLContext) -> None:
    with Client(address(server), ssl_context=context, version=(1, 4)) as kmip:
        with pytest.raises(InvalidField) as refused:
            kmip.create_key_pair("RSA", 1024)  # below the server's rsa_min_bits
        assert "2048" in refused.value.message


def test_async_client_creates_a_pair(server: ServerProcess, context: ssl.SSLContext) -> None:
    async def scenario() -> tuple[KeyPair, dict[str, list[object]]]:
        pool = AsyncConnectionPool([Endpoint(server.host, server.port)], context)
        async with AsyncClient(transport=pool) as kmip:
            pair = await kmip.create_key_pair(CryptographicAlgorithm.ED25519)
            return pair, await kmip.get_attributes(pair.public_key, ["Object Type", "Cryptographic Algorithm"])

    pair, public = asyncio.run(scenario())
    assert public == {
        "Object Type": [ObjectType.PUBLIC_KEY],
        "Cryptographic Algorithm": [CryptographicAlgorithm.ED25519],
    }


def test_cli_create_key_pair(capsys: pytest.CaptureFixture[str], server: ServerProcess) -> None:
    tls = server.tls
    flags = ["--server", address(server), "--ca", str(tls.ca), "--cert", str(tls.cert), "--key", str(tls.key)]
    status = main(["create-key-pair", "--length", "2048", "--private-name", "cli-pair", "--json", *flags])
    out, err = capsys.readouterr()
    assert status == 0, err
    made = json.loads(out)
    assert set(made) == {"private_key", "public_key"}
    status = main(["attributes", "get", made["public_key"], "Link", "--json", *flags])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert made["private_key"] in out
    status = main(["create-key-pair", "--algorithm", "ECDSA", "--curve", "P-256", "--private-usage", "sign", *flags])
    out, _ = capsys.readouterr()
    assert status == 0 and out.startswith("private key:") and "public key:" in out
    status = main(["create-key-pair", "--algorithm", "DSA", "--length", "2048", *flags])
    _, err = capsys.readouterr()
    assert status == 1 and "not supported" in err and "Traceback" not in err


def test_no_such_algorithm_never_reaches_the_server(server: ServerProcess, context: ssl.SSLContext) -> None:
    with Client(address(server), ssl_context=context) as kmip:
        with pytest.raises(ValueError, match="unknown cryptographic algorithm"):
            kmip.create_key_pair("NOT-AN-ALGORITHM", 2048)


@pytest.mark.parametrize("version", [(1, 4), (2, 1)])
def test_rekey_replaces_a_key_and_moves_its_name(
    server: ServerProcess, context: ssl.SSLContext, version: Version
) -> None:
    with Client(address(server), ssl_context=context, version=version) as kmip:
        name = f"orders-{version[0]}{version[1]}"
        old = kmip.create("AES", 256, name=name)
        kmip.activate(old)
        sealed = kmip.encrypt(old, b"old data", mode="CBC", padding="PKCS5", random_iv=True)
        new = kmip.rekey(old, offset=0)
        assert new != old and kmip.locate(name=name) == [new]
        assert kmip.get_attributes(new, ["Link"])["Link"] == [
            Link(link_type=LinkType.REPLACED_OBJECT_LINK, linked_object_identifier=old)
        ]
        assert kmip.get(new).value != kmip.get(old).value
        assert kmip.decrypt(old, sealed.data, mode="CBC", padding="PKCS5", iv=sealed.iv) == b"old data"


def test_rekey_key_pair_and_the_cli(
    capsys: pytest.CaptureFixture[str], server: ServerProcess, context: ssl.SSLContext
) -> None:
    with Client(address(server), ssl_context=context) as kmip:
        old = kmip.create_key_pair("ECDSA", curve="P-256")
        new = kmip.rekey_key_pair(old.private_key)
        assert isinstance(new, KeyPair) and {new.private_key, new.public_key}.isdisjoint(
            {old.private_key, old.public_key}
        )
        links = kmip.get_attributes(new.private_key, ["Link"])["Link"]
        assert Link(link_type=LinkType.PUBLIC_KEY_LINK, linked_object_identifier=new.public_key) in links
        assert Link(link_type=LinkType.REPLACED_OBJECT_LINK, linked_object_identifier=old.private_key) in links
        key = kmip.create("AES", 128)
    tls = server.tls
    flags = ["--server", address(server), "--ca", str(tls.ca), "--cert", str(tls.cert), "--key", str(tls.key)]
    assert main(["re-key", key, *flags]) == 0
    replacement = capsys.readouterr().out.strip()
    assert replacement and replacement != key
    assert main(["re-key-key-pair", new.private_key, "--json", *flags]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"private_key", "public_key"}


def test_a_ca_in_the_server_certifies_and_validates(
    capsys: pytest.CaptureFixture[str], server: ServerProcess, context: ssl.SSLContext, tmp_path: Path
) -> None:
    with Client(address(server), ssl_context=context) as kmip:
        ca = kmip.create_key_pair("ECDSA", curve="P-256", private_usage_mask=int(Usage.CERTIFICATE_SIGN))
        kmip.activate(ca.private_key)
        root = kmip.certify(
            ca.public_key,
            attributes={"Link": Link(link_type=LinkType.PRIVATE_KEY_LINK, linked_object_identifier=ca.private_key)},
        )
        leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "app.example")]))
            .sign(leaf_key, hashes.SHA256())
        )
        leaf_public = kmip.create_key_pair("RSA", 2048).public_key  # a key the server holds ...
        with pytest.raises(InvalidField, match="public key"):
            kmip.certify(
                leaf_public, issuer=root, request=csr.public_bytes(serialization.Encoding.PEM)
            )  # ... not the CSR's
        leaf = kmip.certify(leaf_public, issuer=root, name="app-cert")
        der = kmip.get(leaf).value
        x509.load_der_x509_certificate(der).verify_directly_issued_by(
            x509.load_der_x509_certificate(kmip.get(root).value)
        )
        assert kmip.validate(uids=[leaf, root]) == ValidityIndicator.VALID
        renewed = kmip.recertify(leaf)
        assert renewed != leaf and kmip.locate(name="app-cert") == [renewed]
    (tmp_path / "leaf.der").write_bytes(der)
    tls = server.tls
    flags = ["--server", address(server), "--ca", str(tls.ca), "--cert", str(tls.cert), "--key", str(tls.key)]
    assert main(["validate", "--certificate", str(tmp_path / "leaf.der"), root, *flags]) == 0
    assert capsys.readouterr().out.strip() == "valid"
    assert main(["validate", "--certificate", str(tmp_path / "leaf.der"), *flags]) == 0  # issued by a held CA
    capsys.readouterr()
    assert main(["certify", leaf_public, "--issuer", root, *flags]) == 0
    assert capsys.readouterr().out.strip()


@pytest.mark.parametrize("version", [(1, 4), (2, 1)])
def test_wrapped_get_and_wrapped_register(server: ServerProcess, context: ssl.SSLContext, version: Version) -> None:
    with Client(address(server), ssl_context=context, version=version) as kmip:
        kek = kmip.create("AES", 256, usage_mask=int(Usage.WRAP_KEY | Usage.UNWRAP_KEY))
        kmip.activate(kek)
        target = kmip.create("AES", 256)
        plain = kmip.get(target).value
        wrapped = kmip.get(target, wrap_with=kek, wrap_options={"mode": "NISTKEYWRAP"}, wrap_encoding="none")
        assert wrapped.raw.key_block.key_wrapping_data.encryption_key_information.unique_identifier == kek
        # An independent unwrap (RFC 3394) with the KEK's bytes gives the key.
        assert keywrap.aes_key_unwrap(kmip.get(kek).value, wrapped.value) == plain
        mine = os.urandom(32)
        sealed = keywrap.aes_key_wrap_with_padding(kmip.get(kek).value, mine)
        uid = kmip.register_wrapped_key(
            sealed, "AES", 256, wrapped_by=kek, wrap_options={"mode": "AESKEYWRAPPADDING"}, wrap_encoding="none"
        )
        assert kmip.get(uid).value == mine
        with pytest.raises(ValueError, match="wrap_with"):
            kmip.get(target, wrap_options={"mode": "NISTKEYWRAP"})


def test_cli_get_wrapped(capsys: pytest.CaptureFixture[str], server: ServerProcess, context: ssl.SSLContext) -> None:
    with Client(address(server), ssl_context=context) as kmip:
        kek = kmip.create("AES", 128, usage_mask=int(Usage.WRAP_KEY))
        kmip.activate(kek)
        target = kmip.create("AES", 128)
        kek_bytes, plain = kmip.get(kek).value, kmip.get(target).value
    tls = server.tls
    flags = ["--server", address(server), "--ca", str(tls.ca), "--cert", str(tls.cert), "--key", str(tls.key)]
    argv = ["get", target, "--wrap-with", kek, "--wrap-method", "aes-key-wrap-padding", "--wrap-encoding", "none"]
    assert main([*argv, "--json", *flags]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert keywrap.aes_key_unwrap_with_padding(kek_bytes, bytes.fromhex(shown["value"])) == plain
    with pytest.raises(SystemExit):
        main(["get", target, "--wrap-method", "nist-key-wrap", *flags])  # a usage error: no --wrap-with
    assert "--wrap-with" in capsys.readouterr().err


def test_rotation_attributes_through_the_client_and_the_cli(
    capsys: pytest.CaptureFixture[str], server: ServerProcess, context: ssl.SSLContext
) -> None:
    with Client(address(server), ssl_context=context, version=(2, 1)) as kmip:
        uid = kmip.create("AES", 256, attributes={"Rotate Interval": 86_400, "Rotate Automatic": True})
        got = kmip.get_attributes(uid, ["Rotate Interval", "Rotate Automatic"])
        assert got == {"Rotate Interval": [86_400], "Rotate Automatic": [True]}
        with pytest.raises(KmipError) as refused:
            kmip.set_attribute(uid, "Rotate Generation", 5)  # the server's to set
        assert refused.value.reason == ResultReason.ATTRIBUTE_READ_ONLY
    tls = server.tls
    flags = ["--server", address(server), "--ca", str(tls.ca), "--cert", str(tls.cert), "--key", str(tls.key)]
    argv = [
        "create",
        "--attribute",
        "Rotate Interval=3600",
        "--attribute",
        "Rotate Automatic=true",
        "--kmip-version",
        "2.1",
    ]
    assert main([*argv, *flags]) == 0
    made = capsys.readouterr().out.strip()
    assert main(["attributes", "get", made, "Rotate Interval", "--json", "--kmip-version", "2.1", *flags]) == 0
    assert json.loads(capsys.readouterr().out) == {"Rotate Interval": [3600]}
