"""PyKMIP 0.11's client making key pairs on our server (Create Key Pair in KMIP 1.2, 1.4 and
2.0), getting both keys and using them: every result checked with ``cryptography``."""

from __future__ import annotations

import datetime
import os
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from cryptography.x509.oid import NameOID
from kmip.core import enums
from kmip.core import exceptions as core_exceptions
from kmip.pie import exceptions
from kmip.pie import objects as pie_objects

from .conftest import ClientFactory
from .test_pykmip_client import attributes_of, unique_name

Mask = enums.CryptographicUsageMask
RSA_PKCS1_SHA256 = {
    "cryptographic_algorithm": enums.CryptographicAlgorithm.RSA,
    "hashing_algorithm": enums.HashingAlgorithm.SHA_256,
    "padding_method": enums.PaddingMethod.PKCS1v15,
}
MESSAGE = b"a key pair PyKMIP asked Strongroom to make"


def _pair(client: Any, name: str) -> tuple[str, str]:
    public_uid, private_uid = client.create_key_pair(
        enums.CryptographicAlgorithm.RSA,
        2048,
        public_name=f"{name}-public",
        public_usage_mask=[Mask.VERIFY],
        private_name=f"{name}-private",
        private_usage_mask=[Mask.SIGN],
    )
    return str(public_uid), str(private_uid)


def test_create_key_pair_then_get_both_keys(connect: ClientFactory) -> None:
    client = connect()
    public_uid, private_uid = _pair(client, unique_name("pair"))
    private = client.get(private_uid)
    public = client.get(public_uid)
    assert isinstance(private, pie_objects.PrivateKey) and isinstance(public, pie_objects.PublicKey)
    assert private.key_format_type == public.key_format_type == enums.KeyFormatType.PKCS_1
    assert private.cryptographic_algorithm == enums.CryptographicAlgorithm.RSA and private.cryptographic_length == 2048
    key = serialization.load_der_private_key(private.value, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.public_key().public_numbers() == serialization.load_der_public_key(public.value).public_numbers()
    for uid, kind, mask in (
        (private_uid, enums.ObjectType.PRIVATE_KEY, Mask.SIGN),
        (public_uid, enums.ObjectType.PUBLIC_KEY, Mask.VERIFY),
    ):
        attrs = attributes_of(client, uid, ["Object Type", "State", "Cryptographic Usage Mask"])
        assert attrs["Object Type"] == [kind]
        assert attrs["State"] == [enums.State.PRE_ACTIVE]
        assert attrs["Cryptographic Usage Mask"] == [mask.value]


def test_the_pair_signs_and_verifies_for_pykmip(connect: ClientFactory) -> None:
    client = connect()
    public_uid, private_uid = _pair(client, unique_name("signing"))
    client.activate(private_uid)
    client.activate(public_uid)
    signature = client.sign(MESSAGE, private_uid, RSA_PKCS1_SHA256)
    assert client.signature_verify(MESSAGE, signature, public_uid, RSA_PKCS1_SHA256) == enums.ValidityIndicator.VALID
    public = serialization.load_der_public_key(client.get(public_uid).value)
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(signature, MESSAGE, padding.PKCS1v15(), hashes.SHA256())


def test_a_short_rsa_pair_is_refused(connect: ClientFactory) -> None:
    client = connect()
    with pytest.raises(exceptions.KmipOperationFailure) as refused:
        client.create_key_pair(enums.CryptographicAlgorithm.RSA, 1024)
    assert refused.value.reason in (enums.ResultReason.INVALID_FIELD, enums.ResultReason.INVALID_ATTRIBUTE_VALUE)
    assert "2048" in refused.value.message


def _ca_certificate() -> tuple[bytes, bytes, bytes]:
    """A self-signed certificate made here: its DER, its key's PKCS#8 and SubjectPublicKeyInfo."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "interop-ca")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    pkcs8 = key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    spki = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return cert.public_bytes(Encoding.DER), pkcs8, spki


def test_register_and_get_a_key_pair_and_a_certificate(connect: ClientFactory, kmip_version: enums.KMIPVersion) -> None:
    client = connect()
    der, pkcs8, spki = _ca_certificate()
    private_uid = client.register(
        pie_objects.PrivateKey(
            enums.CryptographicAlgorithm.RSA, 2048, pkcs8, enums.KeyFormatType.PKCS_8, masks=[Mask.SIGN]
        )
    )
    public_uid = client.register(
        pie_objects.PublicKey(
            enums.CryptographicAlgorithm.RSA, 2048, spki, enums.KeyFormatType.X_509, masks=[Mask.VERIFY]
        )
    )
    cert_uid = client.register(pie_objects.X509Certificate(der))
    assert client.get(private_uid).value == pkcs8 and client.get(public_uid).value == spki
    got = client.get(cert_uid)
    assert isinstance(got, pie_objects.X509Certificate) and got.value == der
    if kmip_version < enums.KMIPVersion.KMIP_2_0:  # PyKMIP 0.11 decodes no 2.0 Certificate Type attribute
        attrs = attributes_of(client, cert_uid, ["Object Type", "Certificate Type"])
        assert attrs == {
            "Object Type": [enums.ObjectType.CERTIFICATE],
            "Certificate Type": [enums.CertificateType.X_509],
        }


def test_wrapped_get_reaches_pykmip_as_the_spec_has_it(connect: ClientFactory) -> None:
    """PyKMIP asks for a wrapped key correctly; the answer's Key Value is a Byte String, as KMIP
    and the AX-M-2 vectors have it, which PyKMIP 0.11's decoder cannot read (docs/compatibility.md)."""
    client = connect()
    kek_bytes, key_bytes = os.urandom(32), os.urandom(32)
    kek = client.register(
        pie_objects.SymmetricKey(enums.CryptographicAlgorithm.AES, 256, kek_bytes, masks=[Mask.WRAP_KEY])
    )
    client.activate(kek)
    target = client.register(
        pie_objects.SymmetricKey(enums.CryptographicAlgorithm.AES, 256, key_bytes, masks=[Mask.ENCRYPT])
    )
    spec = {
        "wrapping_method": enums.WrappingMethod.ENCRYPT,
        "encryption_key_information": {
            "unique_identifier": kek,
            "cryptographic_parameters": {"block_cipher_mode": enums.BlockCipherMode.NIST_KEY_WRAP},
        },
        "encoding_option": enums.EncodingOption.NO_ENCODING,
    }
    with pytest.raises(core_exceptions.ReadValueError, match="expected 1, received 8"):
        client.get(target, key_wrapping_specification=spec)


def test_rekey_for_pykmip(connect: ClientFactory) -> None:
    client = connect()
    old = client.create(enums.CryptographicAlgorithm.AES, 256, name=unique_name("rekey"))
    new = client.rekey(old)
    assert new != old
    assert client.get(new).value != client.get(old).value
    attrs = attributes_of(client, new, ["Cryptographic Algorithm", "Cryptographic Length"])
    assert attrs == {"Cryptographic Algorithm": [enums.CryptographicAlgorithm.AES], "Cryptographic Length": [256]}
