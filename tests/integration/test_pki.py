"""The development PKI: what it issues, and how it writes keys to disk."""

from __future__ import annotations

import ipaddress
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kmip_server.pki import (
    IssuedCertificate,
    create_ca,
    issue_client_certificate,
    issue_server_certificate,
    load_issued,
    write_issued,
)


@pytest.fixture(scope="module")
def ca() -> IssuedCertificate:
    return create_ca()


@pytest.fixture
def zero_umask() -> Iterator[None]:
    # The modes must not depend on the umask: with 0 nothing would narrow a careless 0666.
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def _eku(certificate: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_ca_is_a_self_signed_ca_limited_to_end_entities(ca: IssuedCertificate) -> None:
    certificate = ca.certificate
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    assert certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    certificate.verify_directly_issued_by(certificate)
    assert ca.common_name == "Strongroom Development CA"
    assert isinstance(ca.private_key, ec.EllipticCurvePrivateKey)
    assert ca.private_key.curve.name == "secp256r1"


def test_client_certificate_chains_to_the_ca(ca: IssuedCertificate) -> None:
    client = issue_client_certificate(ca, "alice", organizational_unit="payments")
    certificate = client.certificate
    certificate.verify_directly_issued_by(ca.certificate)
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    assert certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "payments"
    assert _eku(certificate) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    # An independent validator (cryptography's RFC 5280 path builder) accepts the chain.
    from cryptography.x509 import verification

    other = issue_client_certificate(ca, "bob", emails=("bob@example.org",))
    verifier = verification.PolicyBuilder().store(verification.Store([ca.certificate])).build_client_verifier()
    verified = verifier.verify(other.certificate, [])
    assert verified.chain[-1] == ca.certificate


def test_client_certificate_from_another_ca_does_not_chain(ca: IssuedCertificate) -> None:
    other = issue_client_certificate(create_ca("Other CA"), "mallory")
    with pytest.raises((ValueError, TypeError)):
        other.certificate.verify_directly_issued_by(ca.certificate)


def test_server_certificate_names_and_usage(ca: IssuedCertificate) -> None:
    server = issue_server_certificate(ca, hostnames=("kms.example.org", "localhost"), addresses=("127.0.0.1", "::1"))
    certificate = server.certificate
    certificate.verify_directly_issued_by(ca.certificate)
    assert _eku(certificate) == [ExtendedKeyUsageOID.SERVER_AUTH]
    sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["kms.example.org", "localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    assert server.common_name == "kms.example.org"
    # Never outlives the CA, whatever validity was asked for.
    short_ca = create_ca("Short-lived CA", days=10)
    long_lived = issue_client_certificate(short_ca, "x", days=825)
    assert long_lived.certificate.not_valid_after_utc <= short_ca.certificate.not_valid_after_utc


@pytest.mark.parametrize(
    "name", ["", "   ", " alice", "alice\n", "ali\x00ce", "a\x1b[31mb", "evil\u202etxt", "a\u2028b"]
)
def test_client_names_with_control_characters_or_empty_are_rejected(ca: IssuedCertificate, name: str) -> None:
    with pytest.raises(ValueError):
        issue_client_certificate(ca, name)


def test_other_bad_arguments_are_rejected(ca: IssuedCertificate) -> None:
    with pytest.raises(ValueError):
        issue_client_certificate(ca, "x" * 65)  # longer than X.520 allows for a CN
    with pytest.raises(ValueError):
        issue_client_certificate(ca, "alice", days=0)
    with pytest.raises(ValueError):
        issue_server_certificate(ca, addresses=("not-an-address",))
    with pytest.raises(ValueError):
        issue_client_certificate(issue_client_certificate(ca, "leaf"), "child")  # a leaf is not a CA
    with pytest.raises(ValueError):
        create_ca(key_type="dsa")  # type: ignore[arg-type]


def test_rsa_keys_on_request(ca: IssuedCertificate) -> None:
    client = issue_client_certificate(ca, "legacy", key_type="rsa")
    assert isinstance(client.private_key, rsa.RSAPrivateKey)
    client.certificate.verify_directly_issued_by(ca.certificate)
    usage = client.certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment


def test_written_files_have_safe_modes_and_load_back(ca: IssuedCertificate, tmp_path: Path, zero_umask: None) -> None:
    client = issue_client_certificate(ca, "alice")
    cert_path, key_path = tmp_path / "alice.crt", tmp_path / "alice.key"
    write_issued(client, cert_path, key_path)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cert_path.stat().st_mode) == 0o644
    assert b"BEGIN PRIVATE KEY" in key_path.read_bytes()  # PKCS#8
    loaded = load_issued(cert_path, key_path)
    assert loaded.certificate == client.certificate
    assert loaded.private_key_pem() == client.private_key_pem()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alice.crt", "alice.key"]  # no temporary left


def test_existing_files_are_not_replaced_unless_asked(ca: IssuedCertificate, tmp_path: Path) -> None:
    first, second = issue_client_certificate(ca, "alice"), issue_client_certificate(ca, "alice")
    cert_path, key_path = tmp_path / "alice.crt", tmp_path / "alice.key"
    write_issued(first, cert_path, key_path)
    with pytest.raises(FileExistsError):
        write_issued(second, cert_path, key_path)
    assert load_issued(cert_path, key_path).certificate == first.certificate
    write_issued(second, cert_path, key_path, overwrite=True)
    assert load_issued(cert_path, key_path).certificate == second.certificate
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600


def test_passphrase_protected_key(ca: IssuedCertificate, tmp_path: Path) -> None:
    client = issue_client_certificate(ca, "alice")
    cert_path, key_path = tmp_path / "alice.crt", tmp_path / "alice.key"
    write_issued(client, cert_path, key_path, passphrase=b"correct horse")
    assert b"BEGIN ENCRYPTED PRIVATE KEY" in key_path.read_bytes()
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    loaded = load_issued(cert_path, key_path, passphrase=b"correct horse")
    assert loaded.private_key_pem() == client.private_key_pem()
    with pytest.raises(TypeError):  # encrypted, and no passphrase given
        load_issued(cert_path, key_path)
    with pytest.raises(ValueError):
        load_issued(cert_path, key_path, passphrase=b"wrong")


def test_a_key_that_is_not_the_certificates_is_rejected(ca: IssuedCertificate, tmp_path: Path) -> None:
    alice, bob = issue_client_certificate(ca, "alice"), issue_client_certificate(ca, "bob")
    write_issued(alice, tmp_path / "alice.crt", tmp_path / "alice.key")
    write_issued(bob, tmp_path / "bob.crt", tmp_path / "bob.key")
    with pytest.raises(ValueError, match="not the private key"):
        load_issued(tmp_path / "alice.crt", tmp_path / "bob.key")
