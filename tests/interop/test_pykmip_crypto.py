"""PyKMIP 0.11's client against our server's cryptographic services: Encrypt, Decrypt, Sign,
Signature Verify, MAC and Derive Key.

The keys are registered with bytes made here, so every result the server returns is checked
independently with ``cryptography``: ciphertext decrypted locally, signatures verified with
the public key (and, PKCS#1 v1.5 being deterministic, equal to a local signature), MACs and
derived keys recomputed. Known-answer vectors from the standards pin the bytes exactly.

PyKMIP's ProxyKmipClient has no way to send Authenticated Encryption Additional Data or to
see an Authenticated Encryption Tag; its payload classes carry both (KMIP 1.4+), so the GCM
tests send PyKMIP's own Encrypt and Decrypt payloads through its ``send_request_payload``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, hmac, padding
from cryptography.hazmat.primitives.asymmetric import padding as asymmetric_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from kmip.core import enums
from kmip.core import exceptions as core_exceptions
from kmip.core.attributes import CryptographicParameters
from kmip.core.messages import payloads
from kmip.pie import exceptions
from kmip.pie import objects as pie_objects
from kmip.pie.client import ProxyKmipClient

from .conftest import VERSIONS, ClientFactory, InteropServer, open_pykmip

V2 = enums.KMIPVersion.KMIP_2_0
Mask = enums.CryptographicUsageMask
CBC_PKCS5 = {
    "cryptographic_algorithm": enums.CryptographicAlgorithm.AES,
    "block_cipher_mode": enums.BlockCipherMode.CBC,
    "padding_method": enums.PaddingMethod.PKCS5,
}
RSA_PKCS1_SHA256 = {
    "cryptographic_algorithm": enums.CryptographicAlgorithm.RSA,
    "hashing_algorithm": enums.HashingAlgorithm.SHA_256,
    "padding_method": enums.PaddingMethod.PKCS1v15,
}
MESSAGE = b"The quick brown fox jumps over the lazy dog, signed and sealed by Strongroom."

# One RSA-2048 key pair for the module: generating one takes a noticeable fraction of a second.
_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PKCS8 = _RSA.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
RSA_SPKI = _RSA.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def usage_mask_reason(version: enums.KMIPVersion) -> enums.ResultReason:
    """A key whose usage mask lacks the operation: 2.x has Incompatible Cryptographic Usage
    Mask; 1.x has no such reason, and its refusals are Permission Denied."""
    return (
        enums.ResultReason.INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK
        if version >= V2
        else enums.ResultReason.PERMISSION_DENIED
    )


def lifecycle_reason(version: enums.KMIPVersion) -> enums.ResultReason:
    """A key used outside its lifecycle state: the OASIS vectors expect Wrong Key Lifecycle
    State from 2.1 only (1.4 and 2.0: Permission Denied, e.g. CS-BC-M-14-20), and PyKMIP speaks
    at most 2.0."""
    assert version <= V2
    return enums.ResultReason.PERMISSION_DENIED


def active(client: ProxyKmipClient, managed: Any) -> str:
    uid = client.register(managed)
    client.activate(uid)
    return str(uid)


def aes_key(client: ProxyKmipClient, value: bytes, masks: list[enums.CryptographicUsageMask] | None = None) -> str:
    masks = [Mask.ENCRYPT, Mask.DECRYPT] if masks is None else masks
    return active(
        client, pie_objects.SymmetricKey(enums.CryptographicAlgorithm.AES, 8 * len(value), value, masks=masks)
    )


def cbc_decrypt_locally(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


# --------------------------------------------------------------------------- Encrypt / Decrypt, AES-CBC


def test_cbc_pkcs5_with_a_random_iv_decrypts_locally_and_back(connect: ClientFactory) -> None:
    client = connect()
    key = os.urandom(32)
    uid = aes_key(client, key)
    data = os.urandom(100)  # not a whole number of blocks: PKCS#5 pads to 112 bytes
    params = {**CBC_PKCS5, "random_iv": True}

    ciphertext, iv = client.encrypt(data, uid, params)
    assert iv is not None and len(iv) == 16
    assert len(ciphertext) == 112
    assert cbc_decrypt_locally(key, iv, ciphertext) == data
    # A second encryption of the same data gets a fresh IV, so different ciphertext.
    again, other_iv = client.encrypt(data, uid, params)
    assert other_iv != iv and again != ciphertext

    assert client.decrypt(ciphertext, uid, CBC_PKCS5, iv_counter_nonce=iv) == data
    assert client.decrypt(again, uid, CBC_PKCS5, iv_counter_nonce=other_iv) == data


def test_cbc_pkcs5_with_a_given_iv_is_byte_exact(connect: ClientFactory) -> None:
    client = connect()
    key, iv = os.urandom(16), os.urandom(16)
    uid = aes_key(client, key)
    data = b"sixteen byte blk" * 2  # whole blocks: PKCS#5 adds one block of 0x10

    ciphertext, returned_iv = client.encrypt(data, uid, CBC_PKCS5, iv_counter_nonce=iv)
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    expected = encryptor.update(padder.update(data) + padder.finalize()) + encryptor.finalize()
    assert ciphertext == expected
    assert returned_iv is None  # the client gave it; the server returns an IV only when it made one
    assert client.decrypt(ciphertext, uid, CBC_PKCS5, iv_counter_nonce=iv) == data


def test_cbc_nist_sp800_38a_f25_known_answer(connect: ClientFactory) -> None:
    """NIST SP 800-38A F.2.5 CBC-AES256.Encrypt and F.2.6 Decrypt, no padding."""
    client = connect()
    key = bytes.fromhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
    iv = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
    plaintext = bytes.fromhex(
        "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
        "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
    )
    ciphertext = bytes.fromhex(
        "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d"
        "39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b"
    )
    uid = aes_key(client, key)
    params = {**CBC_PKCS5, "padding_method": enums.PaddingMethod.NONE}
    assert client.encrypt(plaintext, uid, params, iv_counter_nonce=iv)[0] == ciphertext
    assert client.decrypt(ciphertext, uid, params, iv_counter_nonce=iv) == plaintext


def test_cbc_decrypt_with_the_wrong_key_is_a_cryptographic_failure(connect: ClientFactory) -> None:
    client = connect()
    key, other, iv = bytes(range(32)), bytes(range(1, 33)), bytes(16)
    data = b"attack at dawn, bring the keys.."  # 32 bytes
    uid, other_uid = aes_key(client, key), aes_key(client, other)
    ciphertext, _ = client.encrypt(data, uid, CBC_PKCS5, iv_counter_nonce=iv)
    # Fixed values, checked here: under the other key the last block's padding is not PKCS#5.
    with pytest.raises(ValueError):
        cbc_decrypt_locally(other, iv, ciphertext)
    with pytest.raises(exceptions.KmipOperationFailure) as failure:
        client.decrypt(ciphertext, other_uid, CBC_PKCS5, iv_counter_nonce=iv)
    assert failure.value.reason == enums.ResultReason.CRYPTOGRAPHIC_FAILURE
    assert data.decode() not in str(failure.value)


def test_encrypt_needs_the_encrypt_usage_mask(connect: ClientFactory, kmip_version: enums.KMIPVersion) -> None:
    client = connect()
    uid = aes_key(client, os.urandom(32), masks=[Mask.DECRYPT])
    with pytest.raises(exceptions.KmipOperationFailure) as failure:
        client.encrypt(b"x" * 16, uid, {**CBC_PKCS5, "random_iv": True})
    assert failure.value.reason == usage_mask_reason(kmip_version)


def test_encrypt_with_a_pre_active_key_is_refused(connect: ClientFactory, kmip_version: enums.KMIPVersion) -> None:
    client = connect()
    uid = client.register(
        pie_objects.SymmetricKey(enums.CryptographicAlgorithm.AES, 256, os.urandom(32), masks=[Mask.ENCRYPT])
    )
    with pytest.raises(exceptions.KmipOperationFailure) as failure:
        client.encrypt(b"x" * 16, uid, {**CBC_PKCS5, "random_iv": True})
    assert failure.value.reason == lifecycle_reason(kmip_version)


# --------------------------------------------------------------------------- AES-GCM (PyKMIP's payloads)

# The Galois/Counter Mode of Operation (McGrew, Viega), Test Case 16: AES-256, 96-bit IV, with
# additional authenticated data. Also in NIST's GCM validation suite.
GCM_KEY = bytes.fromhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
GCM_IV = bytes.fromhex("cafebabefacedbaddecaf888")
GCM_AAD = bytes.fromhex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
GCM_PLAINTEXT = bytes.fromhex(
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
)
GCM_CIPHERTEXT = bytes.fromhex(
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
    "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
)
GCM_TAG = bytes.fromhex("76fc6ece0f4e1768cddf8853bb2d551b")
GCM_VERSIONS = ["1.4", "2.0"]  # Authenticated Encryption Additional Data and Tag are KMIP 1.4's


def gcm_parameters(**extra: Any) -> CryptographicParameters:
    return CryptographicParameters(
        cryptographic_algorithm=enums.CryptographicAlgorithm.AES,
        block_cipher_mode=enums.BlockCipherMode.GCM,
        tag_length=16,
        **extra,
    )


@pytest.fixture(params=GCM_VERSIONS, ids=[f"kmip{v}" for v in GCM_VERSIONS])
def gcm_client(request: pytest.FixtureRequest, interop_server: InteropServer) -> Iterator[ProxyKmipClient]:
    client = open_pykmip(interop_server, "admin", VERSIONS[request.param])
    yield client
    client.close()


def gcm_encrypt(
    client: ProxyKmipClient, uid: str, data: bytes, iv: bytes | None, aad: bytes | None, **params: Any
) -> Any:
    request = payloads.EncryptRequestPayload(
        unique_identifier=uid,
        cryptographic_parameters=gcm_parameters(**params),
        data=data,
        iv_counter_nonce=iv,
        auth_additional_data=aad,
    )
    return client.proxy.send_request_payload(enums.Operation.ENCRYPT, request)


def gcm_decrypt(client: ProxyKmipClient, uid: str, data: bytes, iv: bytes, aad: bytes | None, tag: bytes) -> bytes:
    request = payloads.DecryptRequestPayload(
        unique_identifier=uid,
        cryptographic_parameters=gcm_parameters(),
        data=data,
        iv_counter_nonce=iv,
        auth_additional_data=aad,
        auth_tag=tag,
    )
    response = client.proxy.send_request_payload(enums.Operation.DECRYPT, request)
    assert response.unique_identifier == uid
    return bytes(response.data)


def test_gcm_known_answer_with_additional_data(gcm_client: ProxyKmipClient) -> None:
    # The vector, checked locally first, so a failure below is the server's.
    assert AESGCM(GCM_KEY).encrypt(GCM_IV, GCM_PLAINTEXT, GCM_AAD) == GCM_CIPHERTEXT + GCM_TAG
    uid = aes_key(gcm_client, GCM_KEY)
    response = gcm_encrypt(gcm_client, uid, GCM_PLAINTEXT, GCM_IV, GCM_AAD)
    assert response.unique_identifier == uid
    assert response.data == GCM_CIPHERTEXT
    assert response.auth_tag == GCM_TAG
    assert gcm_decrypt(gcm_client, uid, GCM_CIPHERTEXT, GCM_IV, GCM_AAD, GCM_TAG) == GCM_PLAINTEXT


def test_gcm_with_a_server_made_iv_decrypts_locally(gcm_client: ProxyKmipClient) -> None:
    key, data, aad = os.urandom(32), os.urandom(1024), b"header: interop"
    uid = aes_key(gcm_client, key)
    response = gcm_encrypt(gcm_client, uid, data, None, aad, random_iv=True, iv_length=96)
    iv = response.iv_counter_nonce
    assert iv is not None and len(iv) == 12
    assert len(response.auth_tag) == 16
    assert AESGCM(key).decrypt(iv, response.data + response.auth_tag, aad) == data
    assert gcm_decrypt(gcm_client, uid, response.data, iv, aad, response.auth_tag) == data


def test_gcm_decrypt_with_a_wrong_tag_or_data_is_a_cryptographic_failure(gcm_client: ProxyKmipClient) -> None:
    uid = aes_key(gcm_client, GCM_KEY)
    bad_tag = bytes([GCM_TAG[0] ^ 1]) + GCM_TAG[1:]
    other_aad = GCM_AAD[:-1] + b"\x00"
    for data, aad, tag in ((GCM_CIPHERTEXT, GCM_AAD, bad_tag), (GCM_CIPHERTEXT, other_aad, GCM_TAG)):
        with pytest.raises(core_exceptions.OperationFailure) as failure:
            gcm_decrypt(gcm_client, uid, data, GCM_IV, aad, tag)
        assert failure.value.reason == enums.ResultReason.CRYPTOGRAPHIC_FAILURE
        assert GCM_PLAINTEXT.hex() not in str(failure.value)


# --------------------------------------------------------------------------- Sign / Signature Verify


def rsa_pair(client: ProxyKmipClient) -> tuple[str, str]:
    private = pie_objects.PrivateKey(
        enums.CryptographicAlgorithm.RSA, 2048, RSA_PKCS8, enums.KeyFormatType.PKCS_8, masks=[Mask.SIGN]
    )
    public = pie_objects.PublicKey(
        enums.CryptographicAlgorithm.RSA, 2048, RSA_SPKI, enums.KeyFormatType.X_509, masks=[Mask.VERIFY]
    )
    return active(client, private), active(client, public)


def test_rsa_pkcs1_sha256_sign_matches_a_local_signature_and_verifies(connect: ClientFactory) -> None:
    client = connect()
    private_uid, public_uid = rsa_pair(client)
    signature = client.sign(MESSAGE, private_uid, RSA_PKCS1_SHA256)
    # PKCS#1 v1.5 signatures are deterministic: the server's must be this one exactly.
    assert signature == _RSA.sign(MESSAGE, asymmetric_padding.PKCS1v15(), hashes.SHA256())
    _RSA.public_key().verify(signature, MESSAGE, asymmetric_padding.PKCS1v15(), hashes.SHA256())

    valid = client.signature_verify(MESSAGE, signature, public_uid, RSA_PKCS1_SHA256)
    assert valid == enums.ValidityIndicator.VALID
    altered = client.signature_verify(MESSAGE + b"!", signature, public_uid, RSA_PKCS1_SHA256)
    assert altered == enums.ValidityIndicator.INVALID
    flipped = bytes([signature[0] ^ 0x80]) + signature[1:]
    assert client.signature_verify(MESSAGE, flipped, public_uid, RSA_PKCS1_SHA256) == enums.ValidityIndicator.INVALID


def test_rsa_sign_named_by_digital_signature_algorithm(connect: ClientFactory) -> None:
    client = connect()
    private_uid, public_uid = rsa_pair(client)
    params = {
        "digital_signature_algorithm": enums.DigitalSignatureAlgorithm.SHA256_WITH_RSA_ENCRYPTION,
        "padding_method": enums.PaddingMethod.PKCS1v15,
    }
    signature = client.sign(MESSAGE, private_uid, params)
    _RSA.public_key().verify(signature, MESSAGE, asymmetric_padding.PKCS1v15(), hashes.SHA256())
    assert client.signature_verify(MESSAGE, signature, public_uid, params) == enums.ValidityIndicator.VALID


def test_sign_needs_the_sign_usage_mask(connect: ClientFactory, kmip_version: enums.KMIPVersion) -> None:
    client = connect()
    uid = active(
        client,
        pie_objects.PrivateKey(
            enums.CryptographicAlgorithm.RSA, 2048, RSA_PKCS8, enums.KeyFormatType.PKCS_8, masks=[Mask.DECRYPT]
        ),
    )
    with pytest.raises(exceptions.KmipOperationFailure) as failure:
        client.sign(MESSAGE, uid, RSA_PKCS1_SHA256)
    assert failure.value.reason == usage_mask_reason(kmip_version)


# --------------------------------------------------------------------------- MAC


def hmac_key(client: ProxyKmipClient, value: bytes) -> str:
    key = pie_objects.SymmetricKey(
        enums.CryptographicAlgorithm.HMAC_SHA256, 8 * len(value), value, masks=[Mask.MAC_GENERATE]
    )
    return active(client, key)


def local_hmac_sha256(key: bytes, data: bytes) -> bytes:
    local = hmac.HMAC(key, hashes.SHA256())
    local.update(data)
    return local.finalize()


def test_hmac_sha256_rfc4231_test_case_1(connect: ClientFactory) -> None:
    """RFC 4231 §4.2 (case 2's 4-byte key "Jefe" is below the 64 bits Register accepts)."""
    client = connect()
    key, data = b"\x0b" * 20, b"Hi There"
    expected = bytes.fromhex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
    assert local_hmac_sha256(key, data) == expected  # the vector itself, so a failure below is the server's
    uid = hmac_key(client, key)
    returned_uid, mac = client.mac(data, uid, enums.CryptographicAlgorithm.HMAC_SHA256)
    assert returned_uid == uid
    assert mac == expected


def test_hmac_sha256_of_1_kib_matches_a_local_hmac(connect: ClientFactory) -> None:
    client = connect()
    key, data = os.urandom(32), os.urandom(1024)
    uid = hmac_key(client, key)
    # No algorithm in the request: the server takes the key's own (HMAC-SHA256).
    _, mac = client.mac(data, uid)
    assert mac == local_hmac_sha256(key, data)


def test_mac_needs_the_mac_generate_usage_mask(connect: ClientFactory, kmip_version: enums.KMIPVersion) -> None:
    client = connect()
    uid = active(
        client,
        pie_objects.SymmetricKey(enums.CryptographicAlgorithm.HMAC_SHA256, 256, os.urandom(32), masks=[Mask.ENCRYPT]),
    )
    with pytest.raises(exceptions.KmipOperationFailure) as failure:
        client.mac(b"data", uid, enums.CryptographicAlgorithm.HMAC_SHA256)
    assert failure.value.reason == usage_mask_reason(kmip_version)


# --------------------------------------------------------------------------- Derive Key


def password(client: ProxyKmipClient, value: bytes) -> str:
    return active(client, pie_objects.SecretData(value, enums.SecretDataType.PASSWORD, masks=[Mask.DERIVE_KEY]))


def test_pbkdf2_hmac_sha1_rfc6070_test_case_2(connect: ClientFactory) -> None:
    """RFC 6070 §2: P = "password", S = "salt", c = 2, dkLen = 20 (as Secret Data, 160 bits)."""
    client = connect()
    uid = password(client, b"password")
    derived = client.derive_key(
        enums.ObjectType.SECRET_DATA,
        [uid],
        enums.DerivationMethod.PBKDF2,
        {
            "cryptographic_parameters": {"hashing_algorithm": enums.HashingAlgorithm.SHA_1},
            "salt": b"salt",
            "iteration_count": 2,
        },
        cryptographic_length=160,
    )
    secret = client.get(derived)
    assert isinstance(secret, pie_objects.SecretData)
    assert secret.value == bytes.fromhex("ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957")


def test_pbkdf2_hmac_sha256_aes_key_matches_a_local_derivation(connect: ClientFactory) -> None:
    client = connect()
    secret, salt = os.urandom(20), os.urandom(16)
    uid = password(client, secret)
    derived = client.derive_key(
        enums.ObjectType.SYMMETRIC_KEY,
        [uid],
        enums.DerivationMethod.PBKDF2,
        {
            "cryptographic_parameters": {"hashing_algorithm": enums.HashingAlgorithm.SHA_256},
            "salt": salt,
            "iteration_count": 1000,
        },
        cryptographic_algorithm=enums.CryptographicAlgorithm.AES,
        cryptographic_length=256,
    )
    key = client.get(derived)
    assert isinstance(key, pie_objects.SymmetricKey)
    assert key.cryptographic_algorithm == enums.CryptographicAlgorithm.AES
    assert key.cryptographic_length == 256
    assert key.value == PBKDF2HMAC(hashes.SHA256(), 32, salt, 1000).derive(secret)


def test_derive_key_needs_the_derive_key_usage_mask(connect: ClientFactory, kmip_version: enums.KMIPVersion) -> None:
    client = connect()
    uid = active(client, pie_objects.SecretData(b"password", enums.SecretDataType.PASSWORD, masks=[Mask.ENCRYPT]))
    with pytest.raises(exceptions.KmipOperationFailure) as failure:
        client.derive_key(
            enums.ObjectType.SECRET_DATA,
            [uid],
            enums.DerivationMethod.PBKDF2,
            {
                "cryptographic_parameters": {"hashing_algorithm": enums.HashingAlgorithm.SHA_256},
                "salt": b"salt",
                "iteration_count": 2,
            },
            cryptographic_length=256,
        )
    # KMIP 1.4 §11.7 (Table 333): objects "not able to be used to derive a new key" are
    # Invalid Field in 1.x; 2.x has Incompatible Cryptographic Usage Mask.
    wanted = usage_mask_reason(kmip_version) if kmip_version >= V2 else enums.ResultReason.INVALID_FIELD
    assert failure.value.reason == wanted


def test_hmac_derivation_is_hmac_sha256_of_the_derivation_data(connect: ClientFactory) -> None:
    """The HMAC method (KMIP 1.4 §4.6) under an HMAC-SHA256 key: the derived AES-256 key is
    HMAC(key, Derivation Data), here RFC 4231 §4.2's value."""
    client = connect()
    source = active(
        client,
        pie_objects.SymmetricKey(enums.CryptographicAlgorithm.HMAC_SHA256, 160, b"\x0b" * 20, masks=[Mask.DERIVE_KEY]),
    )
    derived = client.derive_key(
        enums.ObjectType.SYMMETRIC_KEY,
        [source],
        enums.DerivationMethod.HMAC,
        {"derivation_data": b"Hi There"},
        cryptographic_algorithm=enums.CryptographicAlgorithm.AES,
        cryptographic_length=256,
    )
    key = client.get(derived)
    assert isinstance(key, pie_objects.SymmetricKey)
    assert key.value == bytes.fromhex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
    assert key.value == local_hmac_sha256(b"\x0b" * 20, b"Hi There")
