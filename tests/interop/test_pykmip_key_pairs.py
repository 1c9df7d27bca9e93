"""PyKMIP 0.11's client making key pairs on our server (Create Key Pair in KMIP 1.2, 1.4 and
2.0), getting both keys and using them: every result checked with ``cryptography``."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from kmip.core import enums
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
