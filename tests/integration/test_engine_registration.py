"""Register: objects come back in the form they were registered in; public and private keys
and certificates are stored, described by their attributes and go through the lifecycle."""

from __future__ import annotations

import dataclasses
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from cryptography.x509.oid import NameOID

from kmip_client.protocol.model import Attribute, Attributes, Name
from kmip_client.protocol.model.attributes import CertificateIdentifier, RevocationReason, X509CertificateIdentifier
from kmip_client.protocol.model.objects import (
    Certificate,
    KeyBlock,
    KeyValue,
    PrivateKey,
    PublicKey,
    SymmetricKey,
    TransparentKeyMaterial,
)
from kmip_client.protocol.spec.enums import (
    CertificateType,
    CryptographicAlgorithm,
    KeyFormatType,
    NameType,
    ObjectType,
    Operation,
    ResultReason,
    RevocationReasonCode,
    State,
)

from .engine_support import attributes_of, failure, one, register, state_of
from .kmip_messages import V14, V21, attrs_for, item, ok

KEY = bytes.fromhex("0123456789abcdef0123456789abcdef")


@pytest.mark.parametrize("version", [V14, V21])
def test_transparent_symmetric_key_comes_back_transparent(engine, version):
    """v2.1 BL-M-3: a key registered as a Transparent Symmetric Key is returned so by a Get
    that names no format; Raw on request."""
    key = SymmetricKey(
        key_block=KeyBlock(
            key_format_type=KeyFormatType.TRANSPARENT_SYMMETRIC_KEY,
            key_value=KeyValue(key_material=TransparentKeyMaterial(key=KEY)),
            cryptographic_algorithm=CryptographicAlgorithm.AES,
            cryptographic_length=128,
        )
    )
    uid = register(engine, version, ObjectType.SYMMETRIC_KEY, key)
    got = ok(one(engine, version, item(Operation.GET, unique_identifier=uid))).managed_object
    assert got == key
    raw = ok(one(engine, version, item(Operation.GET, unique_identifier=uid, key_format_type=KeyFormatType.RAW)))
    block = raw.managed_object.key_block
    assert block.key_format_type == KeyFormatType.RAW and block.key_value.key_material == KEY
    same = ok(
        one(
            engine,
            version,
            item(Operation.GET, unique_identifier=uid, key_format_type=KeyFormatType.TRANSPARENT_SYMMETRIC_KEY),
        )
    )
    assert same.managed_object == key
    attrs = attributes_of(engine, uid, version)
    if version >= (2, 0):  # a 2.x attribute
        assert attrs["Key Format Type"] == KeyFormatType.TRANSPARENT_SYMMETRIC_KEY
    assert attrs["Cryptographic Length"] == 128


# --------------------------------------------------------------------------- asymmetric keys, certificates

_RSA = rsa.generate_private_key(public_exponent=65537, key_size=1024)
RSA_NUMBERS = _RSA.private_numbers()
PKCS8 = _RSA.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
PKCS1_PRIVATE = _RSA.private_bytes(Encoding.DER, PrivateFormat.TraditionalOpenSSL, NoEncryption())
PKCS1_PUBLIC = _RSA.public_key().public_bytes(Encoding.DER, PublicFormat.PKCS1)
SPKI = _RSA.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _certificate_der() -> bytes:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "strongroom test"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example"),
        ]
    )
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(_RSA.public_key())
        .serial_number(42)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(_RSA, hashes.SHA256())
    )
    return cert.public_bytes(Encoding.DER)


CERT = _certificate_der()


def _key(cls, fmt, material, algorithm=CryptographicAlgorithm.RSA, length=1024):
    block = KeyBlock(
        key_format_type=fmt,
        key_value=KeyValue(key_material=material),
        cryptographic_algorithm=algorithm,
        cryptographic_length=length,
    )
    return cls(key_block=block)


TRANSPARENT_RSA_PRIVATE = TransparentKeyMaterial(
    modulus=RSA_NUMBERS.public_numbers.n,
    private_exponent=RSA_NUMBERS.d,
    public_exponent=RSA_NUMBERS.public_numbers.e,
    p=RSA_NUMBERS.p,
    q=RSA_NUMBERS.q,
    prime_exponent_p=RSA_NUMBERS.dmp1,
    prime_exponent_q=RSA_NUMBERS.dmq1,
    crt_coefficient=RSA_NUMBERS.iqmp,
)
KEYS = {
    "private PKCS#8": (ObjectType.PRIVATE_KEY, _key(PrivateKey, KeyFormatType.PKCS_8, PKCS8)),
    "private PKCS#1": (ObjectType.PRIVATE_KEY, _key(PrivateKey, KeyFormatType.PKCS_1, PKCS1_PRIVATE)),
    "private transparent RSA": (
        ObjectType.PRIVATE_KEY,
        _key(PrivateKey, KeyFormatType.TRANSPARENT_RSA_PRIVATE_KEY, TRANSPARENT_RSA_PRIVATE),
    ),
    "public PKCS#1": (ObjectType.PUBLIC_KEY, _key(PublicKey, KeyFormatType.PKCS_1, PKCS1_PUBLIC)),
    "public X.509": (ObjectType.PUBLIC_KEY, _key(PublicKey, KeyFormatType.X_509, SPKI)),
    "public transparent DSA": (
        ObjectType.PUBLIC_KEY,
        _key(
            PublicKey,
            KeyFormatType.TRANSPARENT_DSA_PUBLIC_KEY,
            TransparentKeyMaterial(p=2**511 + 111, q=2**159 + 7, g=5, y=2**500 + 3),
            CryptographicAlgorithm.DSA,
            512,
        ),
    ),
}


@pytest.mark.parametrize("version", [V14, V21])
@pytest.mark.parametrize("kind", list(KEYS))
def test_register_asymmetric_key_round_trip(engine, version, kind):
    object_type, key = KEYS[kind]
    uid = register(engine, version, object_type, key)
    got = ok(one(engine, version, item(Operation.GET, unique_identifier=uid)))
    assert got.object_type == object_type and got.managed_object == key
    attrs = attributes_of(engine, uid, version)
    assert attrs["Object Type"] == object_type
    assert attrs["Cryptographic Algorithm"] == key.key_block.cryptographic_algorithm
    assert attrs["Cryptographic Length"] == key.key_block.cryptographic_length
    assert attrs["State"] == State.PRE_ACTIVE
    if version >= (2, 0):
        assert attrs["Key Format Type"] == key.key_block.key_format_type
    # A format no key of its type has is refused (key_formats.py converts between the others).
    other = KeyFormatType.RAW
    request = item(Operation.GET, unique_identifier=uid, key_format_type=other)
    failure(one(engine, version, request), ResultReason.KEY_FORMAT_TYPE_NOT_SUPPORTED)


@pytest.mark.parametrize(
    ("object_type", "key"),
    [
        (ObjectType.PUBLIC_KEY, _key(PublicKey, KeyFormatType.PKCS_8, PKCS8)),
        (ObjectType.PRIVATE_KEY, _key(PrivateKey, KeyFormatType.X_509, SPKI)),
        (ObjectType.PRIVATE_KEY, _key(PrivateKey, KeyFormatType.RAW, PKCS8)),
    ],
)
def test_register_refuses_a_format_the_key_type_has_not(engine, object_type, key):
    request = item(Operation.REGISTER, object_type=object_type, managed_object=key, **attrs_for(V21, []))
    failure(one(engine, V21, request), ResultReason.KEY_FORMAT_TYPE_NOT_SUPPORTED)


def test_register_refuses_an_object_of_another_type(engine):
    key = KEYS["public PKCS#1"][1]
    request = item(Operation.REGISTER, object_type=ObjectType.PRIVATE_KEY, managed_object=key, **attrs_for(V21, []))
    failure(one(engine, V21, request), ResultReason.INVALID_FIELD)


@pytest.mark.parametrize("version", [V14, V21])
def test_register_certificate(engine, version):
    cert = Certificate(certificate_type=CertificateType.X_509, certificate_value=CERT)
    given = [Attribute(name="Certificate Type", value=CertificateType.X_509)]
    uid = register(engine, version, ObjectType.CERTIFICATE, cert, given)
    got = ok(one(engine, version, item(Operation.GET, unique_identifier=uid)))
    assert got.object_type == ObjectType.CERTIFICATE and got.managed_object == cert
    attrs = attributes_of(engine, uid, version)
    assert attrs["Certificate Type"] == CertificateType.X_509
    assert attrs["Certificate Length"] == len(CERT)
    if version >= (2, 0):
        assert attrs["Certificate Subject CN"] == "strongroom test"
        assert attrs["Certificate Subject O"] == "Example"
        assert attrs["Certificate Issuer CN"] == "test CA"
        change = item(
            Operation.MODIFY_ATTRIBUTE,
            unique_identifier=uid,
            new_attribute=Attributes(attributes=(Attribute(name="Certificate Length", value=123),)),
        )
        failure(one(engine, version, change), ResultReason.ATTRIBUTE_READ_ONLY)  # v2.1 BL-M-10
    else:
        assert "Certificate Subject CN" not in attrs  # a 2.x attribute
        assert attrs["Certificate Subject"].distinguished_name == "O=Example,CN=strongroom test"
        assert attrs["Certificate Identifier"] == CertificateIdentifier(issuer="CN=test CA", serial_number="42")
    parsed = x509.load_der_x509_certificate(CERT)
    assert attrs["X.509 Certificate Identifier"] == X509CertificateIdentifier(
        issuer_distinguished_name=parsed.issuer.public_bytes(), certificate_serial_number=b"\x2a"
    )
    assert attrs["X.509 Certificate Subject"].subject_distinguished_name == parsed.subject.public_bytes()
    assert attrs["X.509 Certificate Issuer"].issuer_distinguished_name == parsed.issuer.public_bytes()


def test_register_refuses_a_certificate_that_is_not_x509_der(engine):
    cert = Certificate(certificate_type=CertificateType.X_509, certificate_value=b"not a certificate")
    request = item(Operation.REGISTER, object_type=ObjectType.CERTIFICATE, managed_object=cert, **attrs_for(V21, []))
    failure(one(engine, V21, request), ResultReason.INVALID_FIELD)


@pytest.mark.parametrize("version", [V14, V21])
@pytest.mark.parametrize("kind", ["private PKCS#8", "public transparent DSA", "certificate"])
def test_revoke_compromised_then_destroy(engine, version, kind):
    if kind == "certificate":
        object_type, managed = (
            ObjectType.CERTIFICATE,
            Certificate(certificate_type=CertificateType.X_509, certificate_value=CERT),
        )
    else:
        object_type, managed = KEYS[kind]
    uid = register(engine, version, object_type, managed)
    ok(one(engine, version, item(Operation.ACTIVATE, unique_identifier=uid)))
    revoke = item(
        Operation.REVOKE,
        unique_identifier=uid,
        revocation_reason=RevocationReason(code=RevocationReasonCode.KEY_COMPROMISE, message="breach"),
        compromise_occurrence_date=datetime.datetime(2000, 2, 1, tzinfo=datetime.UTC),
    )
    ok(one(engine, version, revoke))
    assert state_of(engine, uid, version) == State.COMPROMISED
    ok(one(engine, version, item(Operation.DESTROY, unique_identifier=uid)))
    assert state_of(engine, uid, version) == State.DESTROYED_COMPROMISED
    gone = ResultReason.OBJECT_DESTROYED if version >= (2, 0) else ResultReason.ITEM_NOT_FOUND
    failure(one(engine, version, item(Operation.GET, unique_identifier=uid)), gone)


@pytest.mark.parametrize(("version", "reason"), [(V14, ResultReason.SENSITIVE), (V21, ResultReason.SENSITIVE)])
def test_sensitive_private_key_is_not_released(engine, version, reason):
    """v2.1 BL-M-12: Get of a Sensitive object fails with Sensitive (1.4 has it too: Table 317)."""
    object_type, key = KEYS["private PKCS#8"]
    uid = register(engine, version, object_type, key, [Attribute(name="Sensitive", value=True)])
    failure(one(engine, version, item(Operation.GET, unique_identifier=uid)), reason)
    assert attributes_of(engine, uid, version)["Always Sensitive"] is True


def test_registered_private_key_is_fresh_until_got(engine):
    """v2.1 BL-M-13: a key registered Fresh stays so until a Get serves it."""
    object_type, key = KEYS["private transparent RSA"]
    uid = register(engine, V21, object_type, key, [Attribute(name="Fresh", value=True)])
    assert attributes_of(engine, uid, V21)["Fresh"] is True
    ok(one(engine, V21, item(Operation.GET, unique_identifier=uid)))
    assert attributes_of(engine, uid, V21)["Fresh"] is False


@pytest.mark.parametrize(
    ("version", "reason"), [(V14, ResultReason.INVALID_FIELD), (V21, ResultReason.NON_UNIQUE_NAME_ATTRIBUTE)]
)
def test_adding_a_name_the_object_has_is_refused(engine, version, reason):
    """v2.1 BL-M-8: Add Attribute of the Name an object already has."""
    name = Attribute(name="Name", value=Name(value="BL-M-8", type=NameType.UNINTERPRETED_TEXT_STRING))
    object_type, key = KEYS["public PKCS#1"]
    uid = register(engine, version, object_type, key, [name])
    field = {"new_attribute": Attributes(attributes=(name,))} if version >= (2, 0) else {"attribute": name}
    failure(one(engine, version, item(Operation.ADD_ATTRIBUTE, unique_identifier=uid, **field)), reason)
    other = dataclasses.replace(name, value=Name(value="another", type=NameType.UNINTERPRETED_TEXT_STRING))
    field = {"new_attribute": Attributes(attributes=(other,))} if version >= (2, 0) else {"attribute": other}
    ok(one(engine, version, item(Operation.ADD_ATTRIBUTE, unique_identifier=uid, **field)))


@pytest.mark.parametrize("kind", ["private PKCS#8", "private PKCS#1", "public PKCS#1", "public X.509"])
def test_algorithm_and_length_come_from_the_key_when_not_given(engine, kind):
    object_type, key = KEYS[kind]
    bare = type(key)(
        key_block=dataclasses.replace(key.key_block, cryptographic_algorithm=None, cryptographic_length=None)
    )
    uid = register(engine, V21, object_type, bare)
    attrs = attributes_of(engine, uid, V21)
    assert attrs["Cryptographic Algorithm"] == CryptographicAlgorithm.RSA and attrs["Cryptographic Length"] == 1024


@pytest.mark.parametrize(
    "block_change",
    [
        {"cryptographic_length": 2048},
        {"cryptographic_algorithm": CryptographicAlgorithm.DSA},
        {"key_value": KeyValue(key_material=b"\x30\x03not DER")},
    ],
)
def test_a_key_that_contradicts_its_block_is_refused(engine, block_change):
    object_type, key = KEYS["private PKCS#8"]
    bad = PrivateKey(key_block=dataclasses.replace(key.key_block, **block_change))
    request = item(Operation.REGISTER, object_type=object_type, managed_object=bad, **attrs_for(V21, []))
    failure(one(engine, V21, request), ResultReason.INVALID_FIELD)


@pytest.mark.parametrize("field", ["crt_coefficient", "prime_exponent_p"])
def test_an_inconsistent_rsa_private_key_is_refused(engine, field):
    # A wrong CRT value makes signatures that leak the key's factors; the uses of a key skip
    # OpenSSL's consistency check because Register ran it (asymmetric.load_private).
    material = dataclasses.replace(TRANSPARENT_RSA_PRIVATE, **{field: getattr(TRANSPARENT_RSA_PRIVATE, field) + 2})
    key = _key(PrivateKey, KeyFormatType.TRANSPARENT_RSA_PRIVATE_KEY, material)
    request = item(Operation.REGISTER, object_type=ObjectType.PRIVATE_KEY, managed_object=key, **attrs_for(V21, []))
    reply = one(engine, V21, request)
    failure(reply, ResultReason.INVALID_FIELD)
    assert str(RSA_NUMBERS.d)[:12] not in (reply.result_message or "")
