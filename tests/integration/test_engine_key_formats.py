"""Get in another Key Format Type: asymmetric keys converted between PKCS#1, PKCS#8, SEC 1,
X.509 and the transparent structures, through the engine on both stores; every conversion
checked against ``cryptography``'s own reading of the key."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from kmip_client.protocol.model.attributes import CryptographicDomainParameters
from kmip_client.protocol.model.objects import KeyBlock, KeyValue, PrivateKey, TransparentKeyMaterial
from kmip_client.protocol.spec.enums import CryptographicAlgorithm, KeyFormatType, ObjectType, Operation, ResultReason
from kmip_client.protocol.spec.enums import RecommendedCurve as Curve

from .engine_support import failure, one, register
from .kmip_messages import V14, V21, item, ok
from .test_engine_key_pairs import _attr, create_pair, rsa_common

A = CryptographicAlgorithm
F = KeyFormatType


def get_as(engine, version, uid, fmt) -> Any:
    result = one(engine, version, item(Operation.GET, unique_identifier=uid, key_format_type=fmt))
    return ok(result).managed_object.key_block


def _private_numbers(block: KeyBlock) -> Any:
    material = block.key_value.key_material
    if block.key_format_type == F.TRANSPARENT_RSA_PRIVATE_KEY:
        return (material.modulus, material.public_exponent, material.private_exponent, material.p, material.q)
    key = serialization.load_der_private_key(material, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    n = key.private_numbers()
    return (n.public_numbers.n, n.public_numbers.e, n.d, n.p, n.q)


@pytest.mark.parametrize("version", [V14, V21])
def test_an_rsa_pair_in_every_format(engine, version):
    private_uid, public_uid = create_pair(engine, version, rsa_common())
    stored = get_as(engine, version, private_uid, None)
    assert stored.key_format_type == F.PKCS_1
    expected = _private_numbers(stored)
    for fmt in (F.PKCS_8, F.TRANSPARENT_RSA_PRIVATE_KEY, F.PKCS_1):
        block = get_as(engine, version, private_uid, fmt)
        assert block.key_format_type == fmt and _private_numbers(block) == expected
        assert (block.cryptographic_algorithm, block.cryptographic_length) == (A.RSA, 2048)
    transparent = get_as(engine, version, private_uid, F.TRANSPARENT_RSA_PRIVATE_KEY).key_value.key_material
    assert (transparent.prime_exponent_p, transparent.crt_coefficient) != (None, None)
    spki = get_as(engine, version, public_uid, F.X_509).key_value.key_material
    public = serialization.load_der_public_key(spki)
    assert isinstance(public, rsa.RSAPublicKey) and public.public_numbers().n == expected[0]
    numbers = get_as(engine, version, public_uid, F.TRANSPARENT_RSA_PUBLIC_KEY).key_value.key_material
    assert (numbers.modulus, numbers.public_exponent) == expected[:2]
    assert numbers.private_exponent is None  # a public key's transparent form holds no secret


@pytest.mark.parametrize(
    ("version", "transparent"), [(V14, F.TRANSPARENT_ECDSA_PRIVATE_KEY), (V21, F.TRANSPARENT_EC_PRIVATE_KEY)]
)
def test_an_ec_pair_in_every_format(engine, version, transparent):
    curve = CryptographicDomainParameters(recommended_curve=Curve.P_384)
    private_uid, public_uid = create_pair(
        engine, version, [_attr("Cryptographic Algorithm", A.ECDSA), _attr("Cryptographic Domain Parameters", curve)]
    )
    sec1 = get_as(engine, version, private_uid, None).key_value.key_material
    key = serialization.load_der_private_key(sec1, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    pkcs8 = get_as(engine, version, private_uid, F.PKCS_8).key_value.key_material
    assert pkcs8 == key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    numbers = get_as(engine, version, private_uid, transparent).key_value.key_material
    assert (numbers.recommended_curve, numbers.d) == (Curve.P_384, key.private_numbers().private_value)
    public = get_as(engine, version, public_uid, F.TRANSPARENT_EC_PUBLIC_KEY).key_value.key_material
    assert public.recommended_curve == Curve.P_384
    assert public.q_string == key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def test_a_registered_transparent_key_comes_back_encoded_and_back(engine):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    n = key.private_numbers()
    material = TransparentKeyMaterial(
        modulus=n.public_numbers.n, private_exponent=n.d, public_exponent=n.public_numbers.e, p=n.p, q=n.q
    )
    block = KeyBlock(
        key_format_type=F.TRANSPARENT_RSA_PRIVATE_KEY,
        key_value=KeyValue(key_material=material),
        cryptographic_algorithm=A.RSA,
        cryptographic_length=2048,
    )
    uid = register(engine, V21, ObjectType.PRIVATE_KEY, PrivateKey(key_block=block))
    pkcs8 = get_as(engine, V21, uid, F.PKCS_8).key_value.key_material
    assert pkcs8 == key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    # Its own format comes back as registered, without the CRT values the client left out.
    assert get_as(engine, V21, uid, F.TRANSPARENT_RSA_PRIVATE_KEY).key_value.key_material == material
    pkcs1 = get_as(engine, V21, uid, F.PKCS_1).key_value.key_material
    assert pkcs1 == key.private_bytes(Encoding.DER, PrivateFormat.TraditionalOpenSSL, NoEncryption())


def test_a_dsa_key_between_pkcs8_and_transparent(engine):
    key = dsa.generate_private_key(key_size=2048)
    block = KeyBlock(
        key_format_type=F.PKCS_8,
        key_value=KeyValue(key_material=key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())),
        cryptographic_algorithm=A.DSA,
        cryptographic_length=2048,
    )
    uid = register(engine, V21, ObjectType.PRIVATE_KEY, PrivateKey(key_block=block))
    numbers = get_as(engine, V21, uid, F.TRANSPARENT_DSA_PRIVATE_KEY).key_value.key_material
    expected = key.private_numbers()
    params = expected.public_numbers.parameter_numbers
    assert (numbers.p, numbers.q, numbers.g, numbers.x) == (params.p, params.q, params.g, expected.x)


@pytest.mark.parametrize(
    ("make", "fmt"),
    [
        ("rsa", F.ECPRIVATEKEY),
        ("rsa", F.TRANSPARENT_EC_PRIVATE_KEY),
        ("ed25519", F.TRANSPARENT_EC_PRIVATE_KEY),
        ("ed25519", F.PKCS_1),
        ("rsa", F.RAW),
    ],
)
@pytest.mark.parametrize("version", [V14, V21])
def test_a_format_that_cannot_hold_the_key_is_refused(engine, version, make, fmt):
    common = rsa_common() if make == "rsa" else [_attr("Cryptographic Algorithm", A.ED25519)]
    private_uid, _ = create_pair(engine, version, common)
    message = failure(
        one(engine, version, item(Operation.GET, unique_identifier=private_uid, key_format_type=fmt)),
        ResultReason.KEY_FORMAT_TYPE_NOT_SUPPORTED,
    )
    assert fmt.name in message and "PrivateKey" in message


_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_RSA_PKCS8 = _RSA.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
_RSA_SPKI = _RSA.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _register_as(engine, object_type, fmt, material, algorithm=A.AES, length=256):
    from kmip_client.protocol.model.objects import PublicKey, SymmetricKey

    block = KeyBlock(
        key_format_type=fmt,
        key_value=KeyValue(key_material=material),
        cryptographic_algorithm=algorithm,
        cryptographic_length=length,
    )
    cls = {ObjectType.SYMMETRIC_KEY: SymmetricKey, ObjectType.PRIVATE_KEY: PrivateKey, ObjectType.PUBLIC_KEY: PublicKey}
    request = item(Operation.REGISTER, object_type=object_type, managed_object=cls[object_type](key_block=block))
    return one(engine, V21, request)


_FIELD, _FORMAT = ResultReason.INVALID_FIELD, ResultReason.KEY_FORMAT_TYPE_NOT_SUPPORTED


@pytest.mark.parametrize(
    ("object_type", "fmt", "material", "reason", "named"),
    [
        (ObjectType.SYMMETRIC_KEY, F.RAW, _RSA_PKCS8, _FIELD, "a PKCS#8 RSA (2048 bits) private key"),
        (
            ObjectType.PRIVATE_KEY,
            F.PKCS_1,
            _RSA_PKCS8,
            _FIELD,
            "register it as a Private Key with Key Format Type PKCS_8",
        ),
        (ObjectType.PRIVATE_KEY, F.PKCS_8, _RSA_SPKI, _FIELD, "register it as a Public Key with Key Format Type X_509"),
        (ObjectType.PUBLIC_KEY, F.X_509, _RSA_PKCS8, _FIELD, "a PKCS#8 RSA (2048 bits) private key"),
        # A format the object type has not: Key Format Type Not Supported, and what the bytes are.
        (
            ObjectType.PUBLIC_KEY,
            F.PKCS_8,
            _RSA_PKCS8,
            _FORMAT,
            "register it as a Private Key with Key Format Type PKCS_8",
        ),
        (ObjectType.PRIVATE_KEY, F.RAW, _RSA_PKCS8, _FORMAT, "a PKCS#8 RSA (2048 bits) private key"),
    ],
)
def test_key_bytes_under_the_wrong_label_are_named(engine, object_type, fmt, material, reason, named):
    message = failure(_register_as(engine, object_type, fmt, material, A.RSA, 2048), reason)
    assert named in message
    assert material.hex()[:40] not in message  # what they are, never the bytes themselves


def test_right_labels_and_raw_bytes_are_not_second_guessed(engine):
    assert ok(_register_as(engine, ObjectType.PRIVATE_KEY, F.PKCS_8, _RSA_PKCS8, A.RSA, 2048)).unique_identifier
    assert ok(_register_as(engine, ObjectType.PUBLIC_KEY, F.X_509, _RSA_SPKI, A.RSA, 2048)).unique_identifier
    # Raw AES key bytes that happen to start like a DER SEQUENCE are still a key.
    assert ok(_register_as(engine, ObjectType.SYMMETRIC_KEY, F.RAW, b"\x30" + bytes(31))).unique_identifier


def test_a_dh_key_between_pkcs8_transparent_and_x509(engine):
    from cryptography.hazmat.primitives.asymmetric import dh

    # RFC 3526 group 14 (2048-bit MODP), generator 2: a fixed group, no parameter generation.
    p = int(
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
        "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
        "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
        "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
        "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
        "15728E5A8AACAA68FFFFFFFFFFFFFFFF",
        16,
    )
    key = dh.DHParameterNumbers(p, 2).parameters().generate_private_key()
    pkcs8 = key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    block = KeyBlock(
        key_format_type=F.PKCS_8,
        key_value=KeyValue(key_material=pkcs8),
        cryptographic_algorithm=A.DH,
        cryptographic_length=2048,
    )
    uid = register(engine, V21, ObjectType.PRIVATE_KEY, PrivateKey(key_block=block))
    numbers = get_as(engine, V21, uid, F.TRANSPARENT_DH_PRIVATE_KEY).key_value.key_material
    assert (numbers.p, numbers.g, numbers.x) == (p, 2, key.private_numbers().x)
    # And back: the transparent form registered comes out as the same PKCS#8.
    again = register(
        engine,
        V21,
        ObjectType.PRIVATE_KEY,
        PrivateKey(
            key_block=dataclasses.replace(
                block, key_format_type=F.TRANSPARENT_DH_PRIVATE_KEY, key_value=KeyValue(key_material=numbers)
            )
        ),
    )
    assert get_as(engine, V21, again, F.PKCS_8).key_value.key_material == pkcs8
