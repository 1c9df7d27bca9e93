"""Key wrapping through the engine on both stores, 1.4 and 2.1 forms: Get with a Key Wrapping
Specification (RFC 3394 and RFC 5649 known answers byte for byte; every method unwrapped here
with ``cryptography`` alone), Sensitive and Extractable, Register of wrapped key blocks, and
each refusal with its Result Reason per version."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, hmac, keywrap, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from kmip_client.protocol.model import Attribute
from kmip_client.protocol.model.attributes import CryptographicParameters, Link
from kmip_client.protocol.model.base import decode_struct, to_bytes
from kmip_client.protocol.model.objects import (
    EncryptionKeyInformation,
    KeyBlock,
    KeyValue,
    KeyWrappingData,
    KeyWrappingSpecification,
    MACSignatureKeyInformation,
    OpaqueObject,
    PrivateKey,
    PublicKey,
    SecretData,
    SymmetricKey,
    TransparentKeyMaterial,
)
from kmip_client.protocol.spec.enums import (
    BlockCipherMode,
    CryptographicAlgorithm,
    CryptographicUsageMask,
    EncodingOption,
    HashingAlgorithm,
    KeyFormatType,
    KeyWrapType,
    LinkType,
    ObjectType,
    Operation,
    PaddingMethod,
    ResultReason,
    SecretDataType,
    WrappingMethod,
)
from kmip_client.protocol.ttlv import decode

from .engine_support import T0, attributes_of, failure, one, register, run
from .kmip_messages import V14, V21, attrs_for, item, ok

A = CryptographicAlgorithm
M = BlockCipherMode
F = KeyFormatType
W = WrappingMethod
R = ResultReason
Usage = CryptographicUsageMask
VERSIONS = [V14, V21]
NO_ENCODING = EncodingOption.NO_ENCODING
ACTIVE = Attribute(name="Activation Date", value=datetime.fromtimestamp(T0 - 3600, UTC))
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OAEP_SHA256 = CryptographicParameters(
    padding_method=PaddingMethod.OAEP,
    hashing_algorithm=HashingAlgorithm.SHA_256,
    mask_generator_hashing_algorithm=HashingAlgorithm.SHA_256,
)


def by_version(version, v2: R, v1: R) -> R:
    return v2 if version >= (2, 0) else v1


def params(**fields: Any) -> CryptographicParameters:
    return CryptographicParameters(**fields)


def _usage_and_params(usage: int, parameters: CryptographicParameters | None, active: bool) -> list[Attribute]:
    found = [Attribute(name="Cryptographic Usage Mask", value=int(usage))]
    if parameters is not None:
        found.append(Attribute(name="Cryptographic Parameters", value=parameters))
    return [*found, ACTIVE] if active else found


def aes(engine, version, material: bytes, usage=Usage.ENCRYPT | Usage.DECRYPT, parameters=None, extra=(), active=True):
    """``material`` registered as a Raw AES key; its Unique Identifier."""
    block = KeyBlock(
        key_format_type=F.RAW,
        key_value=KeyValue(key_material=material),
        cryptographic_algorithm=A.AES,
        cryptographic_length=8 * len(material),
    )
    attributes = [*_usage_and_params(usage, parameters, active), *extra]
    return register(engine, version, ObjectType.SYMMETRIC_KEY, SymmetricKey(key_block=block), attributes)


def kek(engine, version, material: bytes | None = None, mode=M.NISTKEYWRAP, usage=Usage.WRAP_KEY | Usage.UNWRAP_KEY):
    parameters = params(block_cipher_mode=mode) if mode is not None else None
    return aes(engine, version, material or os.urandom(32), usage, parameters)


def secret(engine, version, data: bytes) -> str:
    block = KeyBlock(key_format_type=F.OPAQUE, key_value=KeyValue(key_material=data))
    managed = SecretData(secret_data_type=SecretDataType.SEED, key_block=block)
    attributes = [Attribute(name="Cryptographic Usage Mask", value=int(Usage.DERIVE_KEY))]
    return register(engine, version, ObjectType.SECRET_DATA, managed, attributes)


def rsa_pair(engine, version, public_usage=Usage.WRAP_KEY | Usage.VERIFY, private_usage=Usage.UNWRAP_KEY | Usage.SIGN):
    """RSA_KEY's private (PKCS#8) and public (X.509) halves, Active; the public one links to the
    private one. Their Unique Identifiers."""
    der = RSA_KEY.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    private_block = KeyBlock(
        key_format_type=F.PKCS_8, key_value=KeyValue(key_material=der), cryptographic_algorithm=A.RSA,
        cryptographic_length=2048,
    )  # fmt: skip
    private_uid = register(
        engine, version, ObjectType.PRIVATE_KEY, PrivateKey(key_block=private_block),
        _usage_and_params(private_usage, None, True),
    )  # fmt: skip
    spki = RSA_KEY.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    public_block = KeyBlock(
        key_format_type=F.X_509, key_value=KeyValue(key_material=spki), cryptographic_algorithm=A.RSA,
        cryptographic_length=2048,
    )  # fmt: skip
    link = Attribute(name="Link", value=Link(link_type=LinkType.PRIVATE_KEY_LINK, linked_object_identifier=private_uid))
    public_uid = register(
        engine, version, ObjectType.PUBLIC_KEY, PublicKey(key_block=public_block),
        [*_usage_and_params(public_usage, None, True), link],
    )  # fmt: skip
    return private_uid, public_uid


def encrypt_spec(uid: str, parameters=None, encoding=None, names=(), method=W.ENCRYPT, mac=None):
    return KeyWrappingSpecification(
        wrapping_method=method,
        encryption_key_information=EncryptionKeyInformation(unique_identifier=uid, cryptographic_parameters=parameters)
        if uid is not None
        else None,
        mac_signature_key_information=mac,
        attribute_names=tuple(names),
        encoding_option=encoding,
    )


def get(engine, version, uid, spec=None, **fields) -> Any:
    return one(engine, version, item(Operation.GET, unique_identifier=uid, key_wrapping_specification=spec, **fields))


def wrapped_block(engine, version, uid, spec, **fields) -> KeyBlock:
    block = ok(get(engine, version, uid, spec, **fields)).managed_object.key_block
    assert isinstance(block.key_value, bytes)
    return block


def key_value(ttlv: bytes) -> KeyValue:
    return decode_struct(KeyValue, decode(ttlv))


# ----------------------------------------------------------------------------- known answers

# RFC 3394 §4.1 and §4.6: (KEK, key data, ciphertext).
RFC3394 = [
    (
        "000102030405060708090A0B0C0D0E0F",
        "00112233445566778899AABBCCDDEEFF",
        "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5",
    ),
    (
        "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
        "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F",
        "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21",
    ),
]
# RFC 5649 §6: a 192-bit KEK and two keys of 20 and 7 octets.
RFC5649_KEK = "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8"
RFC5649 = [
    ("c37b7e6492584340bed12207808941155068f738", "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"),
    ("466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"),
]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("kek_hex", "key_hex", "wrapped_hex"), RFC3394)
def test_rfc3394_known_answers(engine, version, kek_hex, key_hex, wrapped_hex):
    kek_uid = kek(engine, version, bytes.fromhex(kek_hex))
    uid = aes(engine, version, bytes.fromhex(key_hex))
    asked = params(block_cipher_mode=M.NISTKEYWRAP)
    block = wrapped_block(engine, version, uid, encrypt_spec(kek_uid, asked, NO_ENCODING))
    assert block.key_value == bytes.fromhex(wrapped_hex)
    assert (block.key_format_type, block.cryptographic_algorithm, block.cryptographic_length) == (
        F.RAW,
        A.AES,
        4 * len(key_hex),
    )
    assert block.key_wrapping_data == KeyWrappingData(
        wrapping_method=W.ENCRYPT,
        encryption_key_information=EncryptionKeyInformation(unique_identifier=kek_uid, cryptographic_parameters=asked),
        encoding_option=NO_ENCODING,
    )


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("key_hex", "wrapped_hex"), RFC5649)
def test_rfc5649_known_answers(engine, version, key_hex, wrapped_hex):
    kek_uid = kek(engine, version, bytes.fromhex(RFC5649_KEK), M.AESKEYWRAPPADDING)
    uid = secret(engine, version, bytes.fromhex(key_hex))
    spec = encrypt_spec(kek_uid, params(block_cipher_mode=M.AESKEYWRAPPADDING), NO_ENCODING)
    assert wrapped_block(engine, version, uid, spec).key_value == bytes.fromhex(wrapped_hex)
    # The KEK's own parameters apply when the request names none.
    assert wrapped_block(engine, version, uid, encrypt_spec(kek_uid, None, NO_ENCODING)).key_value == bytes.fromhex(
        wrapped_hex
    )


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("mode", [M.NISTKEYWRAP, M.AESKEYWRAPPADDING])
@pytest.mark.parametrize("encoding", [None, EncodingOption.TTLV_ENCODING])
def test_aes_key_wrap_of_the_ttlv_key_value(engine, version, mode, encoding):
    """TTLV Encoding, the default (1.4 Table 12): the whole Key Value structure is wrapped."""
    secret_key, material = os.urandom(32), os.urandom(32)
    kek_uid, uid = kek(engine, version, secret_key, mode), aes(engine, version, material)
    block = wrapped_block(engine, version, uid, encrypt_spec(kek_uid, params(block_cipher_mode=mode), encoding))
    unwrap = keywrap.aes_key_unwrap if mode == M.NISTKEYWRAP else keywrap.aes_key_unwrap_with_padding
    plain = unwrap(secret_key, block.key_value)
    assert key_value(plain) == KeyValue(key_material=material)
    assert plain == to_bytes(KeyValue(key_material=material))
    assert block.key_wrapping_data.encoding_option == encoding  # echoed as asked; absent means TTLV


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("tag_length", [None, 12])
def test_aes_gcm_puts_the_iv_in_the_wrapping_data_and_the_tag_after_the_ciphertext(engine, version, tag_length):
    secret_key, material = os.urandom(32), os.urandom(16)
    kek_uid = kek(engine, version, secret_key, M.GCM)
    uid = aes(engine, version, material)
    asked = params(block_cipher_mode=M.GCM, tag_length=tag_length)
    blocks = [wrapped_block(engine, version, uid, encrypt_spec(kek_uid, asked)) for _ in range(2)]
    for block in blocks:
        iv = block.key_wrapping_data.iv_counter_nonce
        assert len(iv) == 12
        plain = to_bytes(KeyValue(key_material=material))
        tag_bytes = tag_length or 16
        assert len(block.key_value) == len(plain) + tag_bytes
        if tag_length is None:
            assert AESGCM(secret_key).decrypt(iv, block.key_value, None) == plain
        else:  # a truncated tag: the ciphertext is GCM's keystream, the tag a prefix of the full one
            full = AESGCM(secret_key).encrypt(iv, plain, None)
            assert block.key_value == full[: len(plain)] + full[len(plain) : len(plain) + tag_bytes]
    assert blocks[0].key_wrapping_data.iv_counter_nonce != blocks[1].key_wrapping_data.iv_counter_nonce


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("asked", "oaep"),
    [
        (params(padding_method=PaddingMethod.OAEP), padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None)),
        (params(padding_method=PaddingMethod.OAEP, hashing_algorithm=HashingAlgorithm.SHA_256),
         padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA256(), None)),
        (OAEP_SHA256, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)),
    ],
)  # fmt: skip
def test_rsa_oaep_under_a_public_key(engine, version, asked, oaep):
    _, public_uid = rsa_pair(engine, version)
    material = os.urandom(32)
    uid = aes(engine, version, material)
    block = wrapped_block(engine, version, uid, encrypt_spec(public_uid, asked, NO_ENCODING))
    assert len(block.key_value) == 256
    assert RSA_KEY.decrypt(block.key_value, oaep) == material


def _hmac(secret_key: bytes, data: bytes) -> bytes:
    mac = hmac.HMAC(secret_key, hashes.SHA256())
    mac.update(data)
    return mac.finalize()


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("method", [W.MAC_SIGN, W.ENCRYPT_THEN_MAC_SIGN, W.MAC_SIGN_THEN_ENCRYPT])
def test_hmac_over_the_wrapped_or_plain_key_value(engine, version, method):
    mac_key, secret_key, material = os.urandom(32), os.urandom(32), os.urandom(32)
    mac_uid = aes(engine, version, mac_key, Usage.MAC_GENERATE, params(cryptographic_algorithm=A.HMAC_SHA256))
    kek_uid = kek(engine, version, secret_key)
    uid = aes(engine, version, material)
    info = MACSignatureKeyInformation(unique_identifier=mac_uid)
    spec = encrypt_spec(kek_uid if method != W.MAC_SIGN else None, None, NO_ENCODING, method=method, mac=info)
    block = wrapped_block(engine, version, uid, spec)
    wrapping = block.key_wrapping_data
    assert (wrapping.wrapping_method, wrapping.mac_signature_key_information) == (method, info)
    if method == W.MAC_SIGN:  # the Key Value in the clear, authenticated
        assert block.key_value == material and wrapping.encryption_key_information is None
        assert wrapping.mac_signature == _hmac(mac_key, material)
        return
    assert keywrap.aes_key_unwrap(secret_key, block.key_value) == material
    authenticated = block.key_value if method == W.ENCRYPT_THEN_MAC_SIGN else material
    assert wrapping.mac_signature == _hmac(mac_key, authenticated)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("by_public_key", [False, True])
def test_signed_key_value(engine, version, by_public_key):
    """The signature key named by its Private Key, or by its Public Key (1.4 Table 11)."""
    private_uid, public_uid = rsa_pair(engine, version)
    material = os.urandom(32)
    uid = aes(engine, version, material)
    pss = params(padding_method=PaddingMethod.PSS, hashing_algorithm=HashingAlgorithm.SHA_256)
    info = MACSignatureKeyInformation(unique_identifier=public_uid if by_public_key else private_uid,
                                      cryptographic_parameters=pss)  # fmt: skip
    block = wrapped_block(engine, version, uid, encrypt_spec(None, method=W.MAC_SIGN, mac=info))
    plain = to_bytes(KeyValue(key_material=material))
    assert block.key_value == plain
    RSA_KEY.public_key().verify(
        block.key_wrapping_data.mac_signature,
        plain,
        padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.AUTO),
        hashes.SHA256(),
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_attribute_names_are_wrapped_inside_the_key_value(engine, version):
    secret_key, material = os.urandom(32), os.urandom(32)
    kek_uid = kek(engine, version, secret_key)
    uid = aes(engine, version, material, extra=[Attribute(name="x-purpose", value="backup")])
    names = ("Cryptographic Algorithm", "Cryptographic Length", "x-purpose", "Unique Identifier", "Contact Information")
    block = wrapped_block(engine, version, uid, encrypt_spec(kek_uid, names=names))
    value = key_value(keywrap.aes_key_unwrap(secret_key, block.key_value))
    assert value.key_material == material
    inside = value.attributes.attributes if version >= (2, 0) else value.attributes_v1
    found = {(a.vendor + "-" + a.name if getattr(a, "vendor", None) else a.name): a.value for a in inside}
    # The object has no Contact Information: it is left out, as Get Attributes leaves it out.
    assert found == {
        "Cryptographic Algorithm": A.AES,
        "Cryptographic Length": 256,
        "x-purpose": "backup",
        "Unique Identifier": uid,
    }


@pytest.mark.parametrize("version", VERSIONS)
def test_a_reformatted_key_is_wrapped_in_the_format_asked(engine, version):
    secret_key, material = os.urandom(32), os.urandom(32)
    kek_uid, uid = kek(engine, version, secret_key), aes(engine, version, material)
    block = wrapped_block(engine, version, uid, encrypt_spec(kek_uid), key_format_type=F.TRANSPARENT_SYMMETRIC_KEY)
    assert block.key_format_type == F.TRANSPARENT_SYMMETRIC_KEY
    value = key_value(keywrap.aes_key_unwrap(secret_key, block.key_value))
    assert value.key_material == TransparentKeyMaterial(key=material)


def test_the_id_placeholder_stays_the_wrapped_object(engine):
    """Loading the wrapping key moves the placeholder; Get leaves it on the object it returned."""
    kek_uid, uid = kek(engine, V21), aes(engine, V21, os.urandom(32))
    result = run(
        engine,
        V21,
        item(Operation.GET, unique_identifier=uid, key_wrapping_specification=encrypt_spec(kek_uid)),
        item(Operation.GET_ATTRIBUTES, attribute_references=()),
    )
    assert ok(result.batch_items[1]).unique_identifier == uid


# ----------------------------------------------------------------------------- Sensitive, Extractable


@pytest.mark.parametrize("version", VERSIONS)
def test_a_sensitive_key_leaves_only_encrypted(engine, version):
    secret_key, material = os.urandom(32), os.urandom(32)
    kek_uid = kek(engine, version, secret_key)
    mac_uid = aes(engine, version, os.urandom(32), Usage.MAC_GENERATE, params(cryptographic_algorithm=A.HMAC_SHA256))
    uid = aes(engine, version, material, extra=[Attribute(name="Sensitive", value=True)])
    assert "sensitive" in failure(get(engine, version, uid), R.SENSITIVE)
    failure(get(engine, version, uid, key_wrap_type=KeyWrapType.NOT_WRAPPED), R.SENSITIVE)
    block = wrapped_block(engine, version, uid, encrypt_spec(kek_uid, encoding=NO_ENCODING))
    assert keywrap.aes_key_unwrap(secret_key, block.key_value) == material
    # A MAC alone leaves the key readable: not released so.
    mac_only = encrypt_spec(None, method=W.MAC_SIGN, mac=MACSignatureKeyInformation(unique_identifier=mac_uid))
    failure(get(engine, version, uid, mac_only), R.SENSITIVE)
    both = encrypt_spec(kek_uid, method=W.ENCRYPT_THEN_MAC_SIGN, mac=mac_only.mac_signature_key_information)
    ok(get(engine, version, uid, both))


@pytest.mark.parametrize("version", VERSIONS)
def test_a_key_not_extractable_never_leaves(engine, version):
    kek_uid = kek(engine, version)
    extra = [Attribute(name="Extractable", value=False), Attribute(name="Sensitive", value=True)]
    uid = aes(engine, version, os.urandom(32), extra=extra)
    assert "not extractable" in failure(get(engine, version, uid, encrypt_spec(kek_uid)), R.NOT_EXTRACTABLE)
    failure(get(engine, version, uid), R.NOT_EXTRACTABLE)


# ----------------------------------------------------------------------------- Register


def _wrapped_symmetric(material: bytes, wrapped: bytes | KeyValue, wrapping: KeyWrappingData) -> SymmetricKey:
    block = KeyBlock(
        key_format_type=F.RAW,
        key_value=wrapped,
        cryptographic_algorithm=A.AES,
        cryptographic_length=8 * len(material),
        key_wrapping_data=wrapping,
    )
    return SymmetricKey(key_block=block)


def _register_wrapped(engine, version, managed, object_type=ObjectType.SYMMETRIC_KEY):
    attributes = [Attribute(name="Cryptographic Usage Mask", value=int(Usage.ENCRYPT | Usage.DECRYPT))]
    return one(
        engine,
        version,
        item(Operation.REGISTER, object_type=object_type, managed_object=managed, **attrs_for(version, attributes)),
    )


def _encryption(uid: str, parameters=None, encoding=None, iv=None) -> KeyWrappingData:
    return KeyWrappingData(
        wrapping_method=W.ENCRYPT,
        encryption_key_information=EncryptionKeyInformation(unique_identifier=uid, cryptographic_parameters=parameters),
        iv_counter_nonce=iv,
        encoding_option=encoding,
    )


def _plain_material(engine, version, uid) -> bytes:
    block = ok(get(engine, version, uid)).managed_object.key_block
    assert block.key_wrapping_data is None
    return block.key_value.key_material


def _wrapping_links(engine, version, uid) -> list[Any]:
    links = attributes_of(engine, uid, version, names=["Link"]).get("Link")
    return [links] if links is not None else []


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("how", ["KW raw", "KWP TTLV", "GCM TTLV", "OAEP raw by private key", "OAEP raw by public key"])
def test_register_a_wrapped_key_then_get_it_plain(engine, version, how):
    secret_key, material = os.urandom(32), os.urandom(32)
    plain_ttlv = to_bytes(KeyValue(key_material=material))
    if how == "KW raw":
        wrapping_uid = kek(engine, version, secret_key)
        wrapping = _encryption(wrapping_uid, params(block_cipher_mode=M.NISTKEYWRAP), NO_ENCODING)
        wrapped = keywrap.aes_key_wrap(secret_key, material)
    elif how == "KWP TTLV":
        wrapping_uid = kek(engine, version, secret_key, M.AESKEYWRAPPADDING)
        wrapping = _encryption(wrapping_uid)  # the key's parameters; TTLV by default
        wrapped = keywrap.aes_key_wrap_with_padding(secret_key, plain_ttlv)
    elif how == "GCM TTLV":
        wrapping_uid = kek(engine, version, secret_key, M.GCM)
        iv = os.urandom(12)
        wrapping = _encryption(wrapping_uid, params(block_cipher_mode=M.GCM), EncodingOption.TTLV_ENCODING, iv)
        wrapped = AESGCM(secret_key).encrypt(iv, plain_ttlv, None)
    else:
        private_uid, public_uid = rsa_pair(engine, version)
        wrapping_uid = public_uid if how.endswith("public key") else private_uid
        wrapping = _encryption(wrapping_uid, OAEP_SHA256, NO_ENCODING)
        wrapped = RSA_KEY.public_key().encrypt(
            material, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
        )
        wrapping_uid = private_uid  # the key that unwraps
    uid = ok(_register_wrapped(engine, version, _wrapped_symmetric(material, wrapped, wrapping))).unique_identifier
    assert _plain_material(engine, version, uid) == material
    links = _wrapping_links(engine, version, uid)
    if version >= (2, 0):  # 2.1 §6.1.43: a Link to the key it was wrapped with
        assert links == [Link(link_type=LinkType.WRAPPING_KEY_LINK, linked_object_identifier=wrapping_uid)]
    else:  # 1.x has no Wrapping Key Link type
        assert links == []


@pytest.mark.parametrize("version", VERSIONS)
def test_register_reads_pykmip_s_wrapped_key_value_structure(engine, version):
    """PyKMIP puts the wrapped bytes in a Key Value structure's Key Material, not in a Byte
    String Key Value: with Key Wrapping Data beside it, they are unwrapped all the same."""
    secret_key, material = os.urandom(32), os.urandom(32)
    kek_uid = kek(engine, version, secret_key)
    wrapped = KeyValue(key_material=keywrap.aes_key_wrap(secret_key, material))
    managed = _wrapped_symmetric(material, wrapped, _encryption(kek_uid, encoding=NO_ENCODING))
    assert (
        _plain_material(engine, version, ok(_register_wrapped(engine, version, managed)).unique_identifier) == material
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_register_a_wrapped_private_key(engine, version):
    secret_key = os.urandom(32)
    kek_uid = kek(engine, version, secret_key, M.AESKEYWRAPPADDING)
    der = RSA_KEY.private_bytes(Encoding.DER, PrivateFormat.TraditionalOpenSSL, NoEncryption())
    block = KeyBlock(
        key_format_type=F.PKCS_1,
        key_value=keywrap.aes_key_wrap_with_padding(secret_key, der),
        cryptographic_algorithm=A.RSA,
        cryptographic_length=2048,
        key_wrapping_data=_encryption(kek_uid, None, NO_ENCODING),
    )
    uid = ok(_register_wrapped(engine, version, PrivateKey(key_block=block), ObjectType.PRIVATE_KEY)).unique_identifier
    assert _plain_material(engine, version, uid) == der
    loaded = serialization.load_der_private_key(der, None)
    assert isinstance(loaded, rsa.RSAPrivateKey) and loaded.private_numbers() == RSA_KEY.private_numbers()


@pytest.mark.parametrize("version", VERSIONS)
def test_a_wrapped_block_that_does_not_unwrap_is_a_cryptographic_failure(engine, version):
    secret_key, material = os.urandom(32), os.urandom(32)
    kw_uid, gcm_uid = kek(engine, version, secret_key), kek(engine, version, secret_key, M.GCM)
    wrapped = bytearray(keywrap.aes_key_wrap(secret_key, material))
    wrapped[5] ^= 1
    kw = _encryption(kw_uid, encoding=NO_ENCODING)
    failure(
        _register_wrapped(engine, version, _wrapped_symmetric(material, bytes(wrapped), kw)), R.CRYPTOGRAPHIC_FAILURE
    )
    iv = os.urandom(12)
    sealed = bytearray(AESGCM(secret_key).encrypt(iv, material, None))
    sealed[-1] ^= 1
    gcm = _encryption(gcm_uid, encoding=NO_ENCODING, iv=iv)
    failure(
        _register_wrapped(engine, version, _wrapped_symmetric(material, bytes(sealed), gcm)), R.CRYPTOGRAPHIC_FAILURE
    )
    # Under another key of the server's: the same failure (and nothing stored).
    other = _encryption(kek(engine, version), encoding=NO_ENCODING)
    wrapped_ok = keywrap.aes_key_wrap(secret_key, material)
    failure(
        _register_wrapped(engine, version, _wrapped_symmetric(material, wrapped_ok, other)), R.CRYPTOGRAPHIC_FAILURE
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_register_refuses_what_it_cannot_unwrap(engine, version):
    secret_key, material = os.urandom(32), os.urandom(32)
    wrapped = keywrap.aes_key_wrap(secret_key, material)

    def register_with(wrapping, value: Any = wrapped) -> Any:
        block = KeyBlock(
            key_format_type=F.RAW, key_value=value, cryptographic_algorithm=A.AES, cryptographic_length=256,
            key_wrapping_data=wrapping,
        )  # fmt: skip
        return _register_wrapped(engine, version, SymmetricKey(key_block=block))

    message = failure(
        register_with(_encryption("no-such-key")), by_version(version, R.WRAPPING_OBJECT_NOT_FOUND, R.ITEM_NOT_FOUND)
    )
    assert "unwrapping key" in message
    # A key without Unwrap Key in its usage mask.
    wrap_only = kek(engine, version, secret_key, usage=Usage.WRAP_KEY)
    failure(
        register_with(_encryption(wrap_only)),
        by_version(version, R.INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK, R.PERMISSION_DENIED),
    )
    unwrapper = kek(engine, version, secret_key)
    # A MAC/signed block is not unwrapped here.
    mac = KeyWrappingData(
        wrapping_method=W.ENCRYPT_THEN_MAC_SIGN,
        encryption_key_information=EncryptionKeyInformation(unique_identifier=unwrapper),
        mac_signature_key_information=MACSignatureKeyInformation(unique_identifier=unwrapper),
        mac_signature=b"\x00" * 32,
    )
    failure(register_with(mac), R.FEATURE_NOT_SUPPORTED)
    # Bytes with no Key Wrapping Data say nothing of how they were wrapped.
    failure(register_with(None), R.INVALID_FIELD)
    # CBC is not a wrapping mode here.
    failure(register_with(_encryption(unwrapper, params(block_cipher_mode=M.CBC))), R.FEATURE_NOT_SUPPORTED)
    # Raw key bytes said to be a TTLV Key Value (no Encoding Option: TTLV).
    assert "No Encoding" in failure(register_with(_encryption(unwrapper)), R.ENCODING_OPTION_ERROR)
    ok(register_with(_encryption(unwrapper, encoding=NO_ENCODING)))


# ----------------------------------------------------------------------------- Get refusals


@pytest.mark.parametrize("version", VERSIONS)
def test_the_wrapping_key_must_exist_and_be_usable(engine, version):
    uid = aes(engine, version, os.urandom(32))
    message = failure(get(engine, version, uid, encrypt_spec("no-such-key")),
                      by_version(version, R.WRAPPING_OBJECT_NOT_FOUND, R.ITEM_NOT_FOUND))  # fmt: skip
    assert "wrapping key" in message
    # Pre-Active, then destroyed.
    idle = aes(engine, version, os.urandom(32), Usage.WRAP_KEY, params(block_cipher_mode=M.NISTKEYWRAP), active=False)
    failure(
        get(engine, version, uid, encrypt_spec(idle)), R.PERMISSION_DENIED
    )  # 2.1 Table 222: no Wrong Key Lifecycle State
    ok(one(engine, version, item(Operation.DESTROY, unique_identifier=idle)))
    failure(
        get(engine, version, uid, encrypt_spec(idle)),
        by_version(version, R.WRAPPING_OBJECT_DESTROYED, R.ITEM_NOT_FOUND),
    )
    # Active, but not for wrapping.
    unwrap_only = kek(engine, version, usage=Usage.UNWRAP_KEY | Usage.ENCRYPT)
    failure(get(engine, version, uid, encrypt_spec(unwrap_only)),
            by_version(version, R.INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK, R.PERMISSION_DENIED))  # fmt: skip
    # Not a key at all.
    opaque = register(
        engine, version, ObjectType.OPAQUE_OBJECT, OpaqueObject(opaque_data_type=0x80000001, opaque_data_value=b"x")
    )
    failure(
        get(engine, version, uid, encrypt_spec(opaque)), by_version(version, R.INVALID_OBJECT_TYPE, R.ILLEGAL_OPERATION)
    )
    # Nothing changed the key it was asked for: it is still got plain.
    assert len(_plain_material(engine, version, uid)) == 32


@pytest.mark.parametrize("version", VERSIONS)
def test_the_wrapping_parameters_must_match_the_keys(engine, version):
    """1.4 §2.1.6 and Table 338: parameters that match none of the key's, or none at all, are
    Item Not Found; 2.x says Bad Cryptographic Parameters."""
    uid = aes(engine, version, os.urandom(32))
    unmatched = by_version(version, R.BAD_CRYPTOGRAPHIC_PARAMETERS, R.ITEM_NOT_FOUND)
    kw = kek(engine, version)
    failure(get(engine, version, uid, encrypt_spec(kw, params(block_cipher_mode=M.GCM))), unmatched)
    bare = kek(engine, version, mode=None)  # no Cryptographic Parameters attribute
    failure(get(engine, version, uid, encrypt_spec(bare)), unmatched)
    ok(get(engine, version, uid, encrypt_spec(bare, params(block_cipher_mode=M.AESKEYWRAPPADDING))))
    cbc = kek(engine, version, mode=M.CBC)
    failure(get(engine, version, uid, encrypt_spec(cbc)), R.FEATURE_NOT_SUPPORTED)


@pytest.mark.parametrize("version", VERSIONS)
def test_rsa_wrapping_refusals(engine, version):
    _, public_uid = rsa_pair(engine, version)
    uid = aes(engine, version, os.urandom(32))
    v15 = params(padding_method=PaddingMethod.PKCS1_V1_5)
    failure(get(engine, version, uid, encrypt_spec(public_uid, v15, NO_ENCODING)), R.FEATURE_NOT_SUPPORTED)
    # RSA-AES key wrap (PKCS#11 CKM_RSA_AES_KEY_WRAP) has no KMIP name: AES with an RSA key is refused.
    rsa_aes = params(padding_method=PaddingMethod.OAEP, cryptographic_algorithm=A.AES)
    message = failure(
        get(engine, version, uid, encrypt_spec(public_uid, rsa_aes)),
        by_version(version, R.BAD_CRYPTOGRAPHIC_PARAMETERS, R.INVALID_FIELD),
    )
    assert "CKM_RSA_AES_KEY_WRAP" in message
    # A PKCS#8 RSA private key is too long for one OAEP block.
    private_uid, _ = rsa_pair(engine, version)
    failure(get(engine, version, private_uid, encrypt_spec(public_uid, OAEP_SHA256, NO_ENCODING)), R.INVALID_FIELD)


@pytest.mark.parametrize("version", VERSIONS)
def test_encoding_option_errors(engine, version):
    kek_uid = kek(engine, version)
    uid = aes(engine, version, os.urandom(32))
    names = ("Cryptographic Length",)
    failure(
        get(engine, version, uid, encrypt_spec(kek_uid, encoding=NO_ENCODING, names=names)), R.ENCODING_OPTION_ERROR
    )
    failure(
        get(
            engine,
            version,
            uid,
            encrypt_spec(kek_uid, encoding=NO_ENCODING),
            key_format_type=F.TRANSPARENT_SYMMETRIC_KEY,
        ),
        R.ENCODING_OPTION_ERROR,
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_wrapping_specification_refusals(engine, version):
    kek_uid = kek(engine, version)
    uid = aes(engine, version, os.urandom(32))
    failure(get(engine, version, uid, encrypt_spec(kek_uid, method=W.TR_31)), R.FEATURE_NOT_SUPPORTED)
    failure(get(engine, version, uid, encrypt_spec(None, method=W.ENCRYPT)), R.INVALID_FIELD)
    mac = MACSignatureKeyInformation(unique_identifier=kek_uid)
    failure(get(engine, version, uid, encrypt_spec(kek_uid, mac=mac)), R.INVALID_FIELD)  # Encrypt takes no MAC key
    opaque = register(
        engine, version, ObjectType.OPAQUE_OBJECT, OpaqueObject(opaque_data_type=0x80000001, opaque_data_value=b"x")
    )
    failure(
        get(engine, version, opaque, encrypt_spec(kek_uid)),
        by_version(version, R.INVALID_OBJECT_TYPE, R.ILLEGAL_OPERATION),
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_key_wrap_type(engine, version):
    kek_uid = kek(engine, version)
    material = os.urandom(32)
    uid = aes(engine, version, material)
    block = ok(get(engine, version, uid, key_wrap_type=KeyWrapType.NOT_WRAPPED)).managed_object.key_block
    assert block.key_value.key_material == material
    failure(get(engine, version, uid, encrypt_spec(kek_uid), key_wrap_type=KeyWrapType.NOT_WRAPPED), R.INVALID_FIELD)
    unsupported = by_version(version, R.KEY_WRAP_TYPE_NOT_SUPPORTED, R.FEATURE_NOT_SUPPORTED)
    failure(get(engine, version, uid, key_wrap_type=KeyWrapType.AS_REGISTERED), unsupported)
