"""The clients' cryptographic services against a real ``strongroom serve`` over mutual TLS.

Known answers from the standards go through the server: AES-GCM (McGrew & Viega test case 5,
the OASIS CS-BC-M-GCM-3 vector), HMAC-SHA-256 (RFC 4231 case 1), SHA-256 ("abc", FIPS 180-4)
and PBKDF2-HMAC-SHA-256 (RFC 7914 §11). Streams are sent in small parts, each over a fresh
connection (a pool that keeps none idle) to a server with two worker processes: the stream's
state must live in the server's database, not in a connection or a process.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kmip_client import Client, CryptographicFailure, EncryptResult, ItemNotFound, KmipError, VerifyResult
from kmip_client.aio import AsyncClient
from kmip_client.aio_transport import AsyncConnectionPool
from kmip_client.calls import Calls
from kmip_client.crypto_calls import CryptoOptions, crypto_parameters, enum_member
from kmip_client.operations import Version
from kmip_client.protocol.model.attributes import CryptographicParameters
from kmip_client.protocol.model.objects import KeyBlock, KeyValue, PrivateKey, PublicKey
from kmip_client.protocol.spec.enums import (
    BlockCipherMode,
    CryptographicAlgorithm,
    CryptographicUsageMask,
    HashingAlgorithm,
    KeyFormatType,
    ObjectType,
    Operation,
    PaddingMethod,
    ResultReason,
    SecretDataType,
    ValidityIndicator,
)
from kmip_client.tls import client_ssl_context
from kmip_client.transport import ConnectionPool, Endpoint
from tests.support.server_process import ServerProcess, free_port, running_server, strongroom_init

VERSIONS = [(1, 4), (2, 1)]
NOT_FOUND = (ResultReason.ITEM_NOT_FOUND, ResultReason.OBJECT_NOT_FOUND)

# AES-128-GCM, 64-bit IV: McGrew & Viega, "The Galois/Counter Mode of Operation", test case 5
# (also the OASIS vector CS-BC-M-GCM-3).
GCM_KEY = bytes.fromhex("feffe9928665731c6d6a8f9467308308")
GCM_IV = bytes.fromhex("cafebabefacedbad")
GCM_AAD = bytes.fromhex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
GCM_PLAIN = bytes.fromhex(
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
)
GCM_CIPHER = bytes.fromhex(
    "61353b4c2806934a777ff51fa22a4755699b2a714fcdc6f83766e5f97b6c742373806900e49f24b22b097544d4896b424989b5e1ebac0f07c23f4598"
)
GCM_TAG = bytes.fromhex("3612d2e79e3b0785561be14aaca2fccb")
GCM: CryptoOptions = {"mode": "GCM", "tag_length": 16}

# RFC 4231 test case 1: HMAC-SHA-256.
HMAC_KEY = bytes.fromhex("0b" * 20)
HMAC_DATA = b"Hi There"
HMAC_SHA256 = bytes.fromhex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")

# FIPS 180-4 example: SHA-256("abc").
SHA256_ABC = bytes.fromhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")

# RFC 7914 §11: PBKDF2-HMAC-SHA-256, P="passwd", S="salt", c=1; the first 32 of its 64 bytes.
PBKDF2_KEY = bytes.fromhex("55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("crypto-client") / "data"
    strongroom_init(data_dir)
    with running_server(data_dir, free_port(), workers=2) as process:
        yield process


@pytest.fixture(scope="module")
def context(server: ServerProcess) -> ssl.SSLContext:
    tls = server.tls
    return client_ssl_context(ca=tls.ca, cert=tls.cert, key=tls.key)


def endpoint(server: ServerProcess) -> Endpoint:
    return Endpoint(server.host, server.port)


def fresh_connections(server: ServerProcess, context: ssl.SSLContext) -> ConnectionPool:
    """A pool that keeps no connection idle: every request goes over a connection of its own."""
    return ConnectionPool([endpoint(server)], context, max_idle_per_endpoint=0)


@pytest.fixture
def kmip(server: ServerProcess, context: ssl.SSLContext) -> Iterator[Client]:
    with Client(str(endpoint(server)), ssl_context=context) as client:
        yield client


def active_key(kmip: Client, key: bytes, algorithm: str = "AES") -> str:
    uid = kmip.register_key(key, algorithm)
    kmip.activate(uid)
    return uid


def rsa_pair(kmip: Client) -> tuple[str, str, rsa.RSAPrivateKey]:
    """A fresh RSA-2048 key registered as an active private key (Sign) and public key (Verify)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = serialization.Encoding.DER
    pkcs8 = private.private_bytes(der, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    spki = private.public_key().public_bytes(der, serialization.PublicFormat.SubjectPublicKeyInfo)
    # The client has no Register for asymmetric keys; its call layer builds the request.
    calls = Calls(kmip.version)
    uids = []
    for managed, kind, fmt, usage in (
        (PrivateKey, ObjectType.PRIVATE_KEY, KeyFormatType.PKCS_8, CryptographicUsageMask.SIGN),
        (PublicKey, ObjectType.PUBLIC_KEY, KeyFormatType.X_509, CryptographicUsageMask.VERIFY),
    ):
        material = pkcs8 if kind == ObjectType.PRIVATE_KEY else spki
        block = KeyBlock(
            key_format_type=fmt,
            key_value=KeyValue(key_material=material),
            cryptographic_algorithm=CryptographicAlgorithm.RSA,
            cryptographic_length=2048,
        )
        uid = str(kmip._run(calls.register(managed(key_block=block), kind, None, int(usage), None)))
        kmip.activate(uid)
        uids.append(uid)
    return uids[0], uids[1], private


# ------------------------------------------------------------------------------ parameters


def test_parameters_by_name_or_member() -> None:
    assert enum_member(HashingAlgorithm, "sha-256") is HashingAlgorithm.SHA_256
    assert enum_member(HashingAlgorithm, "SHA256") is HashingAlgorithm.SHA_256
    assert enum_member(PaddingMethod, "pkcs1-v1.5") is PaddingMethod.PKCS1_V1_5
    assert enum_member(BlockCipherMode, BlockCipherMode.CBC) is BlockCipherMode.CBC
    with pytest.raises(ValueError, match="BlockCipherMode"):
        enum_member(BlockCipherMode, "GCMX")
    built = crypto_parameters({"mode": "gcm", "tag_length": 16, "random_iv": True})
    assert built == CryptographicParameters(block_cipher_mode=BlockCipherMode.GCM, tag_length=16, random_iv=True)
    base = CryptographicParameters(block_cipher_mode=BlockCipherMode.CBC, padding_method=PaddingMethod.PKCS5)
    assert crypto_parameters({"parameters": base, "mode": "ECB"}) == CryptographicParameters(
        block_cipher_mode=BlockCipherMode.ECB, padding_method=PaddingMethod.PKCS5
    )
    assert crypto_parameters({}) is None
    with pytest.raises(TypeError, match="blocksize"):
        crypto_parameters({"blocksize": 16})


# ------------------------------------------------------------------------------ encrypt, decrypt


@pytest.mark.parametrize("version", VERSIONS)
def test_gcm_known_answer_whole(server: ServerProcess, context: ssl.SSLContext, version: Version) -> None:
    with Client(str(endpoint(server)), ssl_context=context, version=version) as kmip:
        uid = active_key(kmip, GCM_KEY)
        sealed = kmip.encrypt(uid, GCM_PLAIN, iv=GCM_IV, aad=GCM_AAD, **GCM)
        assert sealed == EncryptResult(GCM_CIPHER, GCM_IV, GCM_TAG)
        assert kmip.decrypt(uid, GCM_CIPHER, iv=GCM_IV, aad=GCM_AAD, tag=GCM_TAG, **GCM) == GCM_PLAIN
        wrong = bytes([GCM_TAG[0] ^ 1]) + GCM_TAG[1:]
        with pytest.raises(CryptographicFailure) as failed:
            kmip.decrypt(uid, GCM_CIPHER, iv=GCM_IV, aad=GCM_AAD, tag=wrong, **GCM)
        assert failed.value.reason == ResultReason.CRYPTOGRAPHIC_FAILURE
        assert GCM_PLAIN.hex() not in failed.value.message and GCM_KEY.hex() not in failed.value.message


@pytest.mark.parametrize("version", VERSIONS)
def test_gcm_streamed_over_fresh_connections(server: ServerProcess, context: ssl.SSLContext, version: Version) -> None:
    pool = fresh_connections(server, context)
    with Client(transport=pool, version=version) as kmip:
        uid = active_key(kmip, GCM_KEY)
        opened = pool.stats().opened
        with kmip.encryptor(uid, iv=GCM_IV, aad=GCM_AAD, part_size=16, **GCM) as enc:
            out = b"".join(enc.update(GCM_PLAIN[i : i + 10]) for i in range(0, len(GCM_PLAIN), 10))
            out += enc.finalize()
        assert (out, enc.tag) == (GCM_CIPHER, GCM_TAG)
        assert enc.parts == 4  # 16 + 16 + 16 with Init / Correlation Value, then 12 with Final
        assert pool.stats().opened - opened == 4  # each part over a connection of its own

        with kmip.decryptor(uid, iv=GCM_IV, aad=GCM_AAD, tag=GCM_TAG, part_size=20, **GCM) as dec:
            plain = dec.update(GCM_CIPHER) + dec.finalize()
        assert plain == GCM_PLAIN and dec.parts == 3

        wrong = GCM_TAG[:-1] + bytes([GCM_TAG[-1] ^ 0x80])
        dec = kmip.decryptor(uid, iv=GCM_IV, aad=GCM_AAD, tag=wrong, part_size=20, **GCM)
        dec.update(GCM_CIPHER)
        with pytest.raises(CryptographicFailure):
            dec.finalize()  # the tag is checked with the final part
        with pytest.raises(ValueError, match="ended"):
            dec.update(b"more")


def test_random_iv_and_encrypt_many(kmip: Client) -> None:
    uid = kmip.create("AES", 256)
    kmip.activate(uid)
    sealed = kmip.encrypt(uid, b"attack at dawn", mode="GCM", random_iv=True, tag_length=16)
    assert sealed.iv is not None and len(sealed.iv) == 12 and sealed.tag is not None and len(sealed.tag) == 16
    assert kmip.decrypt(uid, sealed.data, mode="GCM", iv=sealed.iv, tag=sealed.tag, tag_length=16) == b"attack at dawn"

    messages = [f"message {n}".encode() for n in range(5)]
    many = kmip.encrypt_many(uid, messages, mode="GCM", random_iv=True, tag_length=16)
    assert len({result.iv for result in many}) == 5  # one fresh IV each
    assert kmip.decrypt_many(uid, many, mode="GCM", tag_length=16) == messages
    assert kmip.encrypt_many(uid, []) == []


def test_cbc_with_padding_streamed(kmip: Client) -> None:
    uid = kmip.create("AES", 128)
    kmip.activate(uid)
    data = bytes(range(256)) * 3 + b"tail"
    iv = bytes(16)
    whole = kmip.encrypt(uid, data, mode="CBC", padding="PKCS5", iv=iv)
    with kmip.encryptor(uid, mode="CBC", padding="PKCS5", iv=iv, part_size=100) as enc:
        streamed = enc.update(data[:333]) + enc.update(data[333:]) + enc.finalize()
    assert streamed == whole.data and len(streamed) == (len(data) // 16 + 1) * 16
    with kmip.decryptor(uid, mode="CBC", padding="PKCS5", iv=iv, part_size=64) as dec:
        assert dec.update(streamed) + dec.finalize() == data


def test_batch_of_crypto_items(kmip: Client) -> None:
    aes = kmip.create("AES", 256)
    kmip.activate(aes)
    hmac_key = active_key(kmip, HMAC_KEY, "HMAC_SHA256")
    batch = kmip.batch()
    batch.encrypt(aes, b"one", mode="GCM", random_iv=True, tag_length=16).mac(hmac_key, HMAC_DATA)
    batch.hash(b"abc", hashing="SHA-256").rng(16)
    results = batch.send()
    assert [r.operation for r in results] == [Operation.ENCRYPT, Operation.MAC, Operation.HASH, Operation.RNG_RETRIEVE]
    assert all(r.ok for r in results)
    sealed = results[0].value
    assert isinstance(sealed, EncryptResult) and sealed.iv is not None
    assert kmip.decrypt(aes, sealed.data, mode="GCM", iv=sealed.iv, tag=sealed.tag, tag_length=16) == b"one"
    assert results[1].value == HMAC_SHA256
    assert results[2].value == SHA256_ABC
    assert isinstance(results[3].value, bytes) and len(results[3].value) == 16

    # uid None: the ID Placeholder, the key the batch's Create made.
    made = kmip.batch().create("AES", 128).activate().encrypt(None, b"two", mode="GCM", random_iv=True).send()
    assert [r.ok for r in made] == [True, True, True]
    new_key, sealed = made[0].value, made[2].value
    assert kmip.decrypt(new_key, sealed.data, mode="GCM", iv=sealed.iv, tag=sealed.tag) == b"two"

    with pytest.raises(KmipError) as missing:
        kmip.encrypt_many("no-such-key", [b"x"], mode="GCM", random_iv=True)
    assert missing.value.reason in NOT_FOUND


# ------------------------------------------------------------------------------ sign, verify


def test_rsa_sign_and_verify(kmip: Client) -> None:
    private_uid, public_uid, private = rsa_pair(kmip)
    message = b"the quarterly numbers" * 100
    params: CryptoOptions = {"padding": "PKCS1_V1_5", "hashing": "SHA-256"}
    signature = kmip.sign(private_uid, message, **params)
    # PKCS#1 v1.5 is deterministic: the server's signature is the one the key makes here.
    assert signature == private.sign(message, padding.PKCS1v15(), hashes.SHA256())

    valid = kmip.verify(public_uid, message, signature, **params)
    assert valid == VerifyResult(ValidityIndicator.VALID) and valid.valid and valid
    tampered = kmip.verify(public_uid, message + b"!", signature, **params)
    assert not tampered and tampered.indicator == ValidityIndicator.INVALID

    with kmip.signer(private_uid, part_size=500, **params) as signer:
        for start in range(0, len(message), 300):
            assert signer.update(message[start : start + 300]) == b""
        streamed = signer.finalize()
    assert streamed == signature and signer.parts == 5
    with kmip.verifier(public_uid, signature, part_size=700, **params) as verifier:
        verifier.update(message)
        assert verifier.finalize().valid

    digest = hashes.Hash(hashes.SHA256())
    digest.update(message)
    assert kmip.sign(private_uid, digest.finalize(), digested=True, **params) == signature


# ------------------------------------------------------------------------------ MAC, hash, RNG


def test_hmac_known_answer(kmip: Client) -> None:
    uid = active_key(kmip, HMAC_KEY, "HMAC_SHA256")
    assert kmip.mac(uid, HMAC_DATA) == HMAC_SHA256
    assert kmip.mac_verify(uid, HMAC_DATA, HMAC_SHA256).valid
    assert not kmip.mac_verify(uid, HMAC_DATA, bytes(32)).valid
    with kmip.mac_generator(uid, part_size=3) as mac:
        mac.update(b"Hi ")
        mac.update(b"There")
        assert mac.finalize() == HMAC_SHA256
    assert mac.parts == 3
    with kmip.mac_verifier(uid, HMAC_SHA256, part_size=4) as check:
        check.update(HMAC_DATA)
        assert check.finalize().valid


def test_sha256_known_answer(kmip: Client) -> None:
    assert kmip.hash(b"abc", hashing="SHA-256") == SHA256_ABC
    assert kmip.hash(b"abc", hashing=HashingAlgorithm.SHA_256) == SHA256_ABC
    with kmip.hasher(hashing="sha256", part_size=1) as digest:
        for byte in b"abc":
            digest.update(bytes([byte]))
        assert digest.finalize() == SHA256_ABC
    assert digest.parts == 3


def test_rng(kmip: Client) -> None:
    first, second = kmip.rng(32), kmip.rng(32)
    assert len(first) == len(second) == 32 and first != second
    assert 0 <= kmip.rng_seed(b"\x01" * 32) <= 32
    with pytest.raises(ValueError):
        kmip.rng(0)


# ------------------------------------------------------------------------------ derive key


def test_pbkdf2_known_answer(kmip: Client) -> None:
    password = kmip.register_secret(
        b"passwd",
        SecretDataType.PASSWORD,
        attributes={"Cryptographic Usage Mask": int(CryptographicUsageMask.DERIVE_KEY)},
    )
    kmip.activate(password)
    uid = kmip.derive_key(password, "PBKDF2", salt=b"salt", iterations=1, hashing="SHA-256", key_length=256)
    derived = kmip.get(uid)
    assert derived.object_type == ObjectType.SYMMETRIC_KEY and derived.algorithm == CryptographicAlgorithm.AES
    assert derived.value == PBKDF2_KEY


# ------------------------------------------------------------------------------ errors and misuse


@pytest.mark.parametrize("version", VERSIONS)
def test_errors_carry_the_result_reason(server: ServerProcess, context: ssl.SSLContext, version: Version) -> None:
    with Client(str(endpoint(server)), ssl_context=context, version=version) as kmip:
        with pytest.raises(KmipError) as missing:
            kmip.encrypt("no-such-key", b"data", mode="GCM", random_iv=True)
        # Item Not Found in 1.x, Object Not Found in 2.x: the ItemNotFound class in both.
        expected = ResultReason.ITEM_NOT_FOUND if version < (2, 0) else ResultReason.OBJECT_NOT_FOUND
        assert missing.value.reason == expected
        assert isinstance(missing.value, ItemNotFound)
        uid = kmip.create("AES", 256)  # Pre-Active: may not protect
        with pytest.raises(KmipError) as refused:
            kmip.encrypt(uid, b"data", mode="GCM", random_iv=True)
        # As the OASIS vectors have it: Permission Denied up to 2.0, Wrong Key Lifecycle State in 2.1.
        lifecycle = ResultReason.PERMISSION_DENIED if version < (2, 1) else ResultReason.WRONG_KEY_LIFECYCLE_STATE
        assert refused.value.reason == lifecycle


def test_streams_need_kmip_1_3(server: ServerProcess, context: ssl.SSLContext) -> None:
    pool = fresh_connections(server, context)
    with Client(transport=pool, version=(1, 2)) as kmip:
        sent = pool.stats().opened
        hasher = kmip.hasher(hashing="SHA-256", part_size=2)
        with pytest.raises(KmipError) as refused:
            hasher.update(b"abc")
        assert refused.value.reason == ResultReason.OPERATION_NOT_SUPPORTED and "1.3" in refused.value.message
        assert pool.stats().opened == sent  # refused before anything was sent


def test_a_stream_left_without_finalize_is_an_error(kmip: Client) -> None:
    with pytest.raises(ValueError, match="without finalize"):
        with kmip.hasher(hashing="SHA-256") as digest:
            digest.update(b"abc")
    done = kmip.hasher(hashing="SHA-256")
    assert done.finalize() == hashes_of(b"")
    with pytest.raises(ValueError, match="finalized"):
        done.finalize()


def hashes_of(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    return digest.finalize()


# ------------------------------------------------------------------------------ asyncio


def test_async_client(server: ServerProcess, context: ssl.SSLContext) -> None:
    async def scenario() -> None:
        pool = AsyncConnectionPool([endpoint(server)], context, max_idle_per_endpoint=0)
        async with AsyncClient(transport=pool) as kmip:
            uid = await kmip.register_key(GCM_KEY, "AES")
            await kmip.activate(uid)
            assert await kmip.encrypt(uid, GCM_PLAIN, iv=GCM_IV, aad=GCM_AAD, **GCM) == EncryptResult(
                GCM_CIPHER, GCM_IV, GCM_TAG
            )
            async with kmip.encryptor(uid, iv=GCM_IV, aad=GCM_AAD, part_size=16, **GCM) as enc:
                out = await enc.update(GCM_PLAIN) + await enc.finalize()
            assert (out, enc.tag, enc.parts) == (GCM_CIPHER, GCM_TAG, 4)
            async with kmip.decryptor(uid, iv=GCM_IV, aad=GCM_AAD, tag=GCM_TAG, part_size=16, **GCM) as dec:
                assert await dec.update(GCM_CIPHER) + await dec.finalize() == GCM_PLAIN
            with pytest.raises(CryptographicFailure):
                await kmip.decrypt(uid, GCM_CIPHER, iv=GCM_IV, aad=GCM_AAD, tag=bytes(16), **GCM)

            digests = await asyncio.gather(*(kmip.hash(b"abc", hashing="SHA-256") for _ in range(4)))
            assert digests == [SHA256_ABC] * 4
            async with kmip.hasher(hashing="SHA-256", part_size=1) as digest:
                await digest.update(b"abc")
                assert await digest.finalize() == SHA256_ABC

            hmac_uid = await kmip.register_key(HMAC_KEY, "HMAC_SHA256")
            await kmip.activate(hmac_uid)
            assert await kmip.mac(hmac_uid, HMAC_DATA) == HMAC_SHA256
            assert (await kmip.mac_verify(hmac_uid, HMAC_DATA, HMAC_SHA256)).valid
            assert len(await kmip.rng(8)) == 8

            many = await kmip.encrypt_many(uid, [b"a", b"b"], mode="GCM", random_iv=True, tag_length=16)
            assert await kmip.decrypt_many(uid, many, mode="GCM", tag_length=16) == [b"a", b"b"]

    asyncio.run(scenario())
