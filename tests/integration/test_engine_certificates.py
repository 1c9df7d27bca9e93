"""Certify, Re-certify and Validate through the engine on the real token and both stores: the
certificates checked independently with ``cryptography`` (issuer, signature, key, extensions),
their links and attributes, the issuer's policy, and chains valid, invalid and unknown."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from cryptography.x509.oid import NameOID

from kmip_client.protocol.model import Attribute, Attributes, Name, TemplateAttribute
from kmip_client.protocol.model.attributes import Link
from kmip_client.protocol.model.objects import Certificate, KeyBlock, KeyValue, PrivateKey, PublicKey
from kmip_client.protocol.spec import Tag
from kmip_client.protocol.spec.attributes import ATTRIBUTE_TAGS
from kmip_client.protocol.spec.enums import (
    CertificateRequestType,
    CertificateType,
    CryptographicAlgorithm,
    CryptographicUsageMask,
    KeyFormatType,
    LinkType,
    NameType,
    ObjectType,
    Operation,
    ResultReason,
    ValidityIndicator,
)
from kmip_server.crypto_settings import CryptoSettings
from kmip_server.operations import certificates

from .engine_support import T0, attributes_of, failure, one, register, run
from .kmip_messages import V14, V21, item, ok
from .test_engine_key_pairs import create_pair, rsa_common

A = CryptographicAlgorithm
F = KeyFormatType
R = ResultReason
Usage = CryptographicUsageMask
PAST = datetime.datetime.fromtimestamp(T0 - 3600, datetime.UTC)


@pytest.fixture(autouse=True)
def default_settings() -> Iterator[None]:
    yield
    certificates.configure(CryptoSettings())


def _link(kind: LinkType, uid: str) -> Attribute:
    return Attribute(name="Link", value=Link(link_type=kind, linked_object_identifier=uid))


def _name(text: str) -> Attribute:
    return Attribute(name="Name", value=Name(value=text, type=NameType.UNINTERPRETED_TEXT_STRING))


def _block(fmt: F, material: bytes, algorithm: A, length: int) -> KeyBlock:
    return KeyBlock(
        key_format_type=fmt,
        key_value=KeyValue(key_material=material),
        cryptographic_algorithm=algorithm,
        cryptographic_length=length,
    )


class CA:
    """A CA made here with ``cryptography`` and registered: private key, public key, certificate."""

    def __init__(self, engine: Any, version: Any, name: str = "test-ca", usage: int = int(Usage.CERTIFICATE_SIGN)):
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.fromtimestamp(T0, datetime.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        pkcs8 = self.key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
        spki = self.key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        active = [Attribute(name="Activation Date", value=PAST)]
        self.private_uid = register(
            engine,
            version,
            ObjectType.PRIVATE_KEY,
            PrivateKey(key_block=_block(F.PKCS_8, pkcs8, A.ECDSA, 256)),
            [Attribute(name="Cryptographic Usage Mask", value=usage), *active],
        )
        self.public_uid = register(
            engine,
            version,
            ObjectType.PUBLIC_KEY,
            PublicKey(key_block=_block(F.X_509, spki, A.ECDSA, 256)),
            [_link(LinkType.PRIVATE_KEY_LINK, self.private_uid)],
        )
        der = self.certificate.public_bytes(Encoding.DER)
        self.uid = register(
            engine,
            version,
            ObjectType.CERTIFICATE,
            Certificate(certificate_type=CertificateType.X_509, certificate_value=der),
            [_link(LinkType.PUBLIC_KEY_LINK, self.public_uid), _name(name)],
        )


def certify(engine, version, uid, attributes=(), csr: bytes | None = None, kind=CertificateRequestType.PKCS_10):
    fields: dict[str, Any] = {"unique_identifier": uid}
    if csr is not None:
        fields["certificate_request_type"] = kind
        fields["certificate_request_value" if version >= (2, 0) else "certificate_request"] = csr
    if attributes:
        if version >= (2, 0):
            fields["attributes"] = Attributes(attributes=tuple(attributes))
        else:
            fields["template_attribute"] = TemplateAttribute(attributes=tuple(attributes))
    return one(engine, version, item(Operation.CERTIFY, **fields))


def certificate_of(engine, version, uid) -> x509.Certificate:
    managed = ok(one(engine, version, item(Operation.GET, unique_identifier=uid))).managed_object
    assert managed.certificate_type == CertificateType.X_509
    return x509.load_der_x509_certificate(managed.certificate_value)


def public_of(engine, version, uid) -> Any:
    block = ok(one(engine, version, item(Operation.GET, unique_identifier=uid, key_format_type=F.X_509)))
    return serialization.load_der_public_key(block.managed_object.key_block.key_value.key_material)


def _links(engine, version, uid) -> list[Link]:
    """Every Link of ``uid`` (attributes_of keeps one value per name)."""
    if version >= (2, 0):
        refs = (Tag(ATTRIBUTE_TAGS["Link"]),)
        got = ok(one(engine, version, item(Operation.GET_ATTRIBUTES, unique_identifier=uid, attribute_references=refs)))
        return [a.value for a in got.attributes.attributes]
    got = ok(one(engine, version, item(Operation.GET_ATTRIBUTES, unique_identifier=uid, attribute_names=("Link",))))
    return [a.value for a in got.attribute_list]


@pytest.mark.parametrize("version", [V14, V21])
def test_certify_a_public_key_under_a_ca_the_server_holds(engine, version):
    ca = CA(engine, version)
    private_uid, public_uid = create_pair(engine, version, rsa_common(), [], [_name("web-server")])
    uid = ok(certify(engine, version, public_uid, [_link(LinkType.CERTIFICATE_LINK, ca.uid)])).unique_identifier
    cert = certificate_of(engine, version, uid)
    cert.verify_directly_issued_by(ca.certificate)  # issuer name and signature, independently
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "web-server"
    public = public_of(engine, version, public_uid)
    assert cert.public_key().public_numbers() == public.public_numbers()
    assert cert.serial_number > 0 and cert.serial_number.bit_length() <= 128
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment and not usage.key_cert_sign  # verify, encrypt, wrap
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == x509.SubjectKeyIdentifier.from_public_key(ca.key.public_key()).digest
    assert cert.not_valid_before_utc == datetime.datetime.fromtimestamp(T0, datetime.UTC)
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 365
    assert Link(link_type=LinkType.PUBLIC_KEY_LINK, linked_object_identifier=public_uid) in _links(engine, version, uid)
    assert Link(link_type=LinkType.CERTIFICATE_LINK, linked_object_identifier=ca.uid) in _links(engine, version, uid)
    assert Link(link_type=LinkType.CERTIFICATE_LINK, linked_object_identifier=uid) in _links(
        engine, version, public_uid
    )
    attrs = attributes_of(engine, uid, version, names=("Object Type", "Certificate Type"))
    assert attrs == {"Object Type": ObjectType.CERTIFICATE, "Certificate Type": CertificateType.X_509}


def _csr(key: Any, common_name: str, dns: str) -> x509.CertificateSigningRequest:
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
        .sign(key, hashes.SHA256())
    )


def _registered_public(engine, version, key: Any) -> str:
    spki = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return register(engine, version, ObjectType.PUBLIC_KEY, PublicKey(key_block=_block(F.X_509, spki, A.RSA, 2048)))


@pytest.mark.parametrize(
    ("version", "kind"), [(V14, CertificateRequestType.PKCS_10), (V21, CertificateRequestType.PEM)]
)
def test_certify_a_pkcs10_request(engine, version, kind):
    ca = CA(engine, version)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_uid = _registered_public(engine, version, key)
    request = _csr(key, "db.example.com", "db.example.com")
    body = request.public_bytes(Encoding.PEM if kind == CertificateRequestType.PEM else Encoding.DER)
    uid = ok(
        certify(engine, version, public_uid, [_link(LinkType.CERTIFICATE_LINK, ca.uid)], body, kind)
    ).unique_identifier
    cert = certificate_of(engine, version, uid)
    cert.verify_directly_issued_by(ca.certificate)
    assert cert.subject == request.subject
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["db.example.com"]


def test_a_request_for_another_key_or_with_a_bad_signature_is_refused(engine):
    ca = CA(engine, V21)
    key, other = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
    public_uid = _registered_public(engine, V21, key)
    issuer = [_link(LinkType.CERTIFICATE_LINK, ca.uid)]
    foreign = _csr(other, "x", "x.example").public_bytes(Encoding.DER)
    assert "public key" in failure(certify(engine, V21, public_uid, issuer, foreign), R.INVALID_FIELD)
    good = bytearray(_csr(key, "y", "y.example").public_bytes(Encoding.DER))
    good[-5] ^= 0x01  # inside the signature
    assert "signature" in failure(certify(engine, V21, public_uid, issuer, bytes(good)), R.INVALID_FIELD)


def test_the_default_issuer_and_no_issuer(engine):
    _, public_uid = create_pair(engine, V21, rsa_common())
    assert "no issuer" in failure(certify(engine, V21, public_uid), R.INVALID_FIELD)
    ca = CA(engine, V21, name="default-ca")
    certificates.configure(CryptoSettings(certify_issuer="default-ca"))
    uid = ok(certify(engine, V21, public_uid)).unique_identifier
    certificate_of(engine, V21, uid).verify_directly_issued_by(ca.certificate)


def test_the_issuers_key_must_be_for_certificate_signing(engine):
    ca = CA(engine, V21, usage=int(Usage.SIGN))
    _, public_uid = create_pair(engine, V21, rsa_common())
    message = failure(
        certify(engine, V21, public_uid, [_link(LinkType.CERTIFICATE_LINK, ca.uid)]),
        R.INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK,
    )
    assert "CERTIFICATE_SIGN" in message


def test_only_a_public_key_is_certified(engine):
    ca = CA(engine, V21)
    private_uid, _ = create_pair(engine, V21, rsa_common())
    failure(certify(engine, V21, private_uid, [_link(LinkType.CERTIFICATE_LINK, ca.uid)]), R.INVALID_OBJECT_TYPE)


def test_the_id_placeholder_is_the_certificate(engine):
    ca = CA(engine, V21)
    _, public_uid = create_pair(engine, V21, rsa_common())
    made, got = run(
        engine,
        V21,
        item(
            Operation.CERTIFY,
            unique_identifier=public_uid,
            attributes=Attributes(attributes=(_link(LinkType.CERTIFICATE_LINK, ca.uid),)),
        ),
        item(Operation.GET),
    ).batch_items
    assert ok(got).unique_identifier == ok(made).unique_identifier
    assert ok(got).object_type == ObjectType.CERTIFICATE


@pytest.mark.parametrize("version", [V14, V21])
def test_re_certify_renews_for_the_same_key(engine, clock, version):
    ca = CA(engine, version)
    _, public_uid = create_pair(engine, version, rsa_common())
    issuer = [_link(LinkType.CERTIFICATE_LINK, ca.uid), _name("service-cert")]
    old_uid = ok(certify(engine, version, public_uid, issuer)).unique_identifier
    old = certificate_of(engine, version, old_uid)
    clock.now += 86_400
    new_uid = ok(
        one(engine, version, item(Operation.RE_CERTIFY, unique_identifier=old_uid, offset=3600))
    ).unique_identifier
    new = certificate_of(engine, version, new_uid)
    new.verify_directly_issued_by(ca.certificate)
    assert new.subject == old.subject and new.public_key().public_numbers() == old.public_key().public_numbers()
    assert new.serial_number != old.serial_number
    assert new.not_valid_before_utc == datetime.datetime.fromtimestamp(T0 + 86_400 + 3600, datetime.UTC)
    assert Link(link_type=LinkType.REPLACED_OBJECT_LINK, linked_object_identifier=old_uid) in _links(
        engine, version, new_uid
    )
    assert Link(link_type=LinkType.REPLACEMENT_OBJECT_LINK, linked_object_identifier=new_uid) in _links(
        engine, version, old_uid
    )
    assert attributes_of(engine, new_uid, version, names=("Name",))["Name"].value == "service-cert"
    assert "Name" not in attributes_of(engine, old_uid, version, names=("Name",))


def _validate(engine, certs=(), uids=(), when=None):
    request = item(
        Operation.VALIDATE,
        certificates=tuple(
            Certificate(certificate_type=CertificateType.X_509, certificate_value=c.public_bytes(Encoding.DER))
            for c in certs
        ),
        unique_identifiers=tuple(uids),
        validity_date=when,
    )
    return ok(one(engine, V21, request)).validity_indicator


def test_validate_chains(engine):
    ca = CA(engine, V21)
    _, public_uid = create_pair(engine, V21, rsa_common())
    uid = ok(certify(engine, V21, public_uid, [_link(LinkType.CERTIFICATE_LINK, ca.uid)])).unique_identifier
    cert = certificate_of(engine, V21, uid)
    assert _validate(engine, uids=[uid]) == ValidityIndicator.VALID  # issued by a held CA
    assert _validate(engine, certs=[cert, ca.certificate]) == ValidityIndicator.VALID
    assert _validate(engine, certs=[ca.certificate, cert]) == ValidityIndicator.INVALID  # wrong order
    later = datetime.datetime.fromtimestamp(T0 + 2 * 365 * 86_400, datetime.UTC)
    assert _validate(engine, uids=[uid], when=later) == ValidityIndicator.INVALID  # expired then
    stranger = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stranger")])
    now = datetime.datetime.fromtimestamp(T0, datetime.UTC)
    unknown = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(stranger.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(stranger, hashes.SHA256())
    )
    assert _validate(engine, certs=[unknown]) == ValidityIndicator.UNKNOWN  # no anchor here
    failure(one(engine, V21, item(Operation.VALIDATE)), R.INVALID_MESSAGE)


def test_a_self_signed_root_then_certificates_under_it(engine):
    """A CA whose key the server made and keeps: its own Private Key Link makes the root."""
    ca_private, ca_public = create_pair(
        engine,
        V21,
        [Attribute(name="Cryptographic Algorithm", value=A.ECDSA), Attribute(name="Cryptographic Length", value=256)],
        [Attribute(name="Cryptographic Usage Mask", value=int(Usage.CERTIFICATE_SIGN))],
        [_name("server-made-ca")],
    )
    ok(one(engine, V21, item(Operation.ACTIVATE, unique_identifier=ca_private)))
    root_uid = ok(certify(engine, V21, ca_public, [_link(LinkType.PRIVATE_KEY_LINK, ca_private)])).unique_identifier
    root = certificate_of(engine, V21, root_uid)
    root.verify_directly_issued_by(root)  # self-signed
    assert root.subject == root.issuer and root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert root.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    _, leaf_public = create_pair(engine, V21, rsa_common())
    leaf_uid = ok(certify(engine, V21, leaf_public, [_link(LinkType.CERTIFICATE_LINK, root_uid)])).unique_identifier
    certificate_of(engine, V21, leaf_uid).verify_directly_issued_by(root)
    assert _validate(engine, uids=[leaf_uid, root_uid]) == ValidityIndicator.VALID
    # Only the key's own private key self-signs.
    _, other_public = create_pair(engine, V21, rsa_common())
    failure(certify(engine, V21, other_public, [_link(LinkType.PRIVATE_KEY_LINK, ca_private)]), R.INVALID_FIELD)
