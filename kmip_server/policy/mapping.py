"""From a client certificate to the fields identity rules match: CN, OU, O, the whole subject,
and the subjectAltName entries (DNS names, email addresses, URIs, SPIFFE IDs among them)."""

from __future__ import annotations

import functools

from cryptography import x509
from cryptography.x509.oid import NameOID

FIELDS = ("CN", "OU", "O", "subject", "dns", "email", "uri", "spiffe", "name")


@functools.lru_cache(maxsize=4096)
def certificate_fields(der: bytes) -> dict[str, tuple[str, ...]]:
    """The matchable fields of a DER certificate (cached: clients reconnect with the same one)."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return {}
    subject = cert.subject
    fields: dict[str, tuple[str, ...]] = {
        "CN": _values(subject, NameOID.COMMON_NAME),
        "OU": _values(subject, NameOID.ORGANIZATIONAL_UNIT_NAME),
        "O": _values(subject, NameOID.ORGANIZATION_NAME),
        "subject": (subject.rfc4514_string(),),
    }
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    if san is not None:
        fields["dns"] = tuple(san.get_values_for_type(x509.DNSName))
        fields["email"] = tuple(san.get_values_for_type(x509.RFC822Name))
        uris = tuple(san.get_values_for_type(x509.UniformResourceIdentifier))
        fields["uri"] = uris
        fields["spiffe"] = tuple(uri for uri in uris if uri.startswith("spiffe://"))
    return fields


def _values(name: x509.Name, oid: x509.ObjectIdentifier) -> tuple[str, ...]:
    return tuple(str(attr.value) for attr in name.get_attributes_for_oid(oid))
