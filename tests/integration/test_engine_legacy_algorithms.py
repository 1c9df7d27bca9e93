"""Blowfish, CAST5, IDEA and Camellia behind ``[crypto] legacy_algorithms`` (off by default):
refused while off (create, register, use), created and used while on, the ciphertext checked
against ``cryptography``'s own decrepit ciphers."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from cryptography.hazmat.decrepit.ciphers import algorithms as decrepit
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from kmip_client.protocol.model.attributes import CryptographicParameters
from kmip_client.protocol.model.objects import KeyBlock, KeyValue, SymmetricKey
from kmip_client.protocol.spec.enums import (
    BlockCipherMode,
    CryptographicAlgorithm,
    CryptographicUsageMask,
    KeyFormatType,
    ObjectType,
    Operation,
    ResultReason,
)
from kmip_server.crypto_settings import CryptoSettings
from kmip_server.operations import legacy_algorithms

from .engine_support import failure, one
from .kmip_messages import V14, V21, attrs_for, item, ok
from .test_engine_encryption import decrypt, encrypt, key

A = CryptographicAlgorithm
R = ResultReason
CBC = CryptographicParameters(block_cipher_mode=BlockCipherMode.CBC)
CASES = [
    (A.BLOWFISH, 128, decrepit.Blowfish, 8),
    (A.CAST5, 128, decrepit.CAST5, 8),
    (A.IDEA, 128, decrepit.IDEA, 8),
    (A.CAMELLIA, 256, decrepit.Camellia, 16),
]


@pytest.fixture
def legacy_on() -> Iterator[None]:
    legacy_algorithms.configure(CryptoSettings(legacy_algorithms=True))
    yield
    legacy_algorithms.configure(CryptoSettings())


def create(engine, version, algorithm, bits):
    from kmip_client.protocol.model import Attribute

    given = [
        Attribute(name="Cryptographic Algorithm", value=algorithm),
        Attribute(name="Cryptographic Length", value=bits),
        Attribute(
            name="Cryptographic Usage Mask", value=int(CryptographicUsageMask.ENCRYPT | CryptographicUsageMask.DECRYPT)
        ),
    ]
    return one(
        engine, version, item(Operation.CREATE, object_type=ObjectType.SYMMETRIC_KEY, **attrs_for(version, given))
    )


@pytest.mark.parametrize(("version", "reason"), [(V14, R.INVALID_FIELD), (V21, R.INVALID_ATTRIBUTE_VALUE)])
@pytest.mark.parametrize(("algorithm", "bits", "cipher", "block"), CASES)
def test_off_by_default(engine, version, reason, algorithm, bits, cipher, block):
    assert "legacy_algorithms" in failure(create(engine, version, algorithm, bits), reason)
    block = KeyBlock(
        key_format_type=KeyFormatType.RAW,
        key_value=KeyValue(key_material=os.urandom(bits // 8)),
        cryptographic_algorithm=algorithm,
        cryptographic_length=bits,
    )
    register = item(
        Operation.REGISTER,
        object_type=ObjectType.SYMMETRIC_KEY,
        managed_object=SymmetricKey(key_block=block),
        **attrs_for(version, []),
    )
    assert "legacy_algorithms" in failure(one(engine, version, register), reason)


@pytest.mark.parametrize(("algorithm", "bits", "cipher", "block"), CASES)
def test_on_they_encrypt_as_their_definitions_say(engine, legacy_on, algorithm, bits, cipher, block):
    material = os.urandom(bits // 8)
    uid = key(engine, V21, material, algorithm)
    iv, data = os.urandom(block), os.urandom(4 * block)
    sealed = ok(encrypt(engine, V21, uid, data, CBC, iv_counter_nonce=iv)).data
    expected = Cipher(cipher(material), modes.CBC(iv)).encryptor()
    assert sealed == expected.update(data) + expected.finalize()
    assert ok(decrypt(engine, V21, uid, sealed, CBC, iv_counter_nonce=iv)).data == data
    assert ok(create(engine, V21, algorithm, bits)).unique_identifier


def test_a_key_made_while_on_is_unusable_once_off(engine, legacy_on):
    uid = key(engine, V21, os.urandom(16), A.BLOWFISH)
    legacy_algorithms.configure(CryptoSettings())
    result = encrypt(engine, V21, uid, bytes(16), CBC, iv_counter_nonce=bytes(8))
    assert "legacy" in failure(result, R.UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS)


@pytest.mark.parametrize(("algorithm", "bits"), [(A.IDEA, 64), (A.CAMELLIA, 100), (A.BLOWFISH, 24), (A.CAST5, 136)])
def test_lengths_their_definitions_do_not_allow(engine, legacy_on, algorithm, bits):
    assert "bits long" in failure(create(engine, V21, algorithm, bits), R.INVALID_ATTRIBUTE_VALUE)
