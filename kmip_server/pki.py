"""A small development PKI: a CA, server certificates and client certificates for mutual TLS.

``strongroom init`` and ``strongroom certs issue`` use it, and so do the TLS tests. It is meant
for development and small deployments; a production site would normally use its own CA, and
the server only needs the CA's certificate (``tls.client_ca``) to trust the clients.

Keys are ECDSA P-256 by default: a P-256 handshake costs the server a fraction of what an
RSA-2048 one does, which matters when a thousand clients connect at once. RSA is available
for peers that cannot do ECDSA.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "IssuedCertificate",
    "KeyType",
    "PrivateKey",
    "create_ca",
    "issue_server_certificate",
    "issue_client_certificate",
    "load_issued",
    "write_issued",
    "validate_name",
]

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
KeyType = Literal["ec", "rsa"]

# Backdating absorbs small clock differences between the issuing host and its peers.
_BACKDATE = datetime.timedelta(minutes=5)
_RSA_BITS = 3072  # the NIST size for use beyond 2030; the CA signs rarely, clients rarely handshake


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate and its private key."""

    certificate: x509.Certificate
    private_key: PrivateKey

    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def private_key_pem(self, passphrase: bytes | None = None) -> bytes:
        """PKCS#8 PEM, encrypted with the best scheme available when ``passphrase`` is given."""
        encryption: serialization.KeySerializationEncryption
        if passphrase:
            encryption = serialization.BestAvailableEncryption(passphrase)
        else:
            encryption = serialization.NoEncryption()
        return self.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)

    @property
    def common_name(self) -> str | None:
        values = self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(values[0].value) if values else None


def validate_name(value: str, what: str = "name") -> str:
    """Reject names that cannot safely become a client identity: empty, surrounding white
    space, or control/format characters (which could forge log lines or hide look-alikes)."""
    if not value or not value.strip():
        raise ValueError(f"the {what} must not be empty")
    if value != value.strip():
        raise ValueError(f"the {what} must not start or end with white space: {value!r}")
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            raise ValueError(f"the {what} contains a control character (U+{ord(char):04X}): {value!r}")
    return value


def _generate_key(key_type: KeyType) -> PrivateKey:
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
    raise ValueError(f"unknown key type {key_type!r} (expected 'ec' or 'rsa')")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _key_usage(*, signing: bool, key_encipherment: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signing,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _check_days(days: int) -> None:
    if days <= 0:
        raise ValueError(f"validity must be at least one day, got {days}")


def create_ca(
    common_name: str = "Strongroom Development CA", *, days: int = 3650, key_type: KeyType = "ec"
) -> IssuedCertificate:
    """A self-signed CA that may sign end-entity certificates only (path length 0)."""
    validate_name(common_name, "CA name")
    _check_days(days)
    key = _generate_key(key_type)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signing=False, cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return IssuedCertificate(certificate, key)


def _end_entity_builder(
    ca: IssuedCertificate, subject: x509.Name, key: PrivateKey, days: int
) -> x509.CertificateBuilder:
    _check_days(days)
    now = _now()
    not_after = now + datetime.timedelta(days=days)
    # A certificate must not outlive its issuer: validators reject the chain from that moment.
    not_after = min(not_after, ca.certificate.not_valid_after_utc)
    ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    is_rsa = isinstance(key, rsa.RSAPrivateKey)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        # RSA key exchange is disabled on the server, but some client stacks still insist on
        # keyEncipherment being present on RSA certificates.
        .add_extension(_key_usage(signing=True, key_encipherment=is_rsa), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    )


def _require_ca(ca: IssuedCertificate) -> None:
    try:
        constraints = ca.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise ValueError("the issuer certificate is not a CA (no basicConstraints)") from None
    if not constraints.ca:
        raise ValueError("the issuer certificate is not a CA")


def issue_server_certificate(
    ca: IssuedCertificate,
    *,
    hostnames: Sequence[str] = ("localhost",),
    addresses: Sequence[str] = ("127.0.0.1", "::1"),
    days: int = 825,
    key_type: KeyType = "ec",
) -> IssuedCertificate:
    """A TLS server certificate valid for ``hostnames`` (DNS SANs) and ``addresses`` (IP SANs).
    825 days is the longest validity mainstream TLS clients accept for a server certificate."""
    _require_ca(ca)
    if isinstance(hostnames, str) or isinstance(addresses, str):
        raise TypeError("hostnames and addresses are sequences of strings, not a single string")
    if not hostnames and not addresses:
        raise ValueError("a server certificate needs at least one host name or address")
    sans: list[x509.GeneralName] = []
    for hostname in hostnames:
        validate_name(hostname, "host name")
        sans.append(x509.DNSName(hostname))
    for address in addresses:
        sans.append(x509.IPAddress(ipaddress.ip_address(address)))  # ValueError for a bad one
    common_name = hostnames[0] if hostnames else addresses[0]
    key = _generate_key(key_type)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (
        _end_entity_builder(ca, subject, key, days)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(ca.private_key, hashes.SHA256())
    )
    return IssuedCertificate(certificate, key)


def issue_client_certificate(
    ca: IssuedCertificate,
    name: str,
    *,
    days: int = 825,
    organizational_unit: str | None = None,
    dns_names: Sequence[str] = (),
    emails: Sequence[str] = (),
    key_type: KeyType = "ec",
) -> IssuedCertificate:
    """A TLS client certificate whose subject CN is ``name`` (the server's default identity).

    ``dns_names`` and ``emails`` become subject alternative names, for servers that take the
    identity from ``san-dns`` or ``san-email`` instead.
    """
    _require_ca(ca)
    validate_name(name, "client name")
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, name)]  # ValueError over 64 characters
    if organizational_unit is not None:
        validate_name(organizational_unit, "organizational unit")
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, organizational_unit))
    sans: list[x509.GeneralName] = []
    for dns_name in dns_names:
        sans.append(x509.DNSName(validate_name(dns_name, "DNS name")))
    for email in emails:
        sans.append(x509.RFC822Name(validate_name(email, "e-mail address")))
    key = _generate_key(key_type)
    builder = _end_entity_builder(ca, x509.Name(attributes), key, days).add_extension(
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return IssuedCertificate(builder.sign(ca.private_key, hashes.SHA256()), key)


def load_issued(cert_path: Path, key_path: Path, passphrase: bytes | None = None) -> IssuedCertificate:
    """Read a certificate (the first in the PEM file) and its private key, and check they match.

    Raises ValueError (or TypeError for a missing or wrong passphrase) when either does not
    parse or the key is not the certificate's.
    """
    certificates = x509.load_pem_x509_certificates(Path(cert_path).read_bytes())
    certificate = certificates[0]
    key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=passphrase)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"{key_path}: unsupported key type {type(key).__name__}")
    if _spki(key.public_key()) != _spki(certificate.public_key()):
        raise ValueError(f"{key_path} is not the private key of the certificate in {cert_path}")
    return IssuedCertificate(certificate, key)


def _spki(public_key: object) -> bytes:
    return public_key.public_bytes(  # type: ignore[attr-defined,no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def write_file_atomically(path: Path, data: bytes, mode: int, *, overwrite: bool = False) -> None:
    """Write ``data`` so that ``path`` never exists, even briefly, with wider permissions than
    ``mode``, and never half-written: a temporary file created with ``mode`` (O_EXCL, so no
    one else's file is reused) is filled, synced and renamed over the target."""
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} already exists")
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    try:
        try:
            os.fchmod(fd, mode)  # the umask may only have narrowed it; make it exactly ``mode``
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if overwrite:
            os.replace(temporary, path)
        else:
            # link() fails if the target appeared meanwhile, where rename() would clobber it.
            os.link(temporary, path)
            os.unlink(temporary)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


def write_issued(
    issued: IssuedCertificate,
    cert_path: Path,
    key_path: Path,
    *,
    passphrase: bytes | None = None,
    overwrite: bool = False,
) -> None:
    """Write the certificate (mode 0644) and the private key (PKCS#8, mode 0600).

    Refuses (FileExistsError) to replace existing files unless ``overwrite``: replacing a key
    by mistake loses it. The key is written first, so a failure never leaves a certificate
    without its key.
    """
    key_path, cert_path = Path(key_path), Path(cert_path)
    if not overwrite:
        for path in (key_path, cert_path):
            if path.exists():
                raise FileExistsError(f"{path} already exists")
    write_file_atomically(key_path, issued.private_key_pem(passphrase), 0o600, overwrite=overwrite)
    write_file_atomically(cert_path, issued.certificate_pem(), 0o644, overwrite=overwrite)
