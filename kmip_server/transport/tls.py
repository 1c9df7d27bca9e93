"""The server's TLS policy and how a client certificate becomes a :class:`ClientIdentity`."""

from __future__ import annotations

import functools
import ssl

from cryptography import x509
from cryptography.x509.oid import NameOID

from ..config import IDENTITY_MODES, TlsSettings
from ..engine.identity import ClientIdentity
from ..pki import validate_name

__all__ = ["IDENTITY_MODES", "TLS12_CIPHERS", "server_ssl_context", "identity_from_certificate"]

#: TLS 1.2 suites: forward secret (ECDHE) and AEAD only, so no CBC, no RSA key exchange and no
#: SHA-1 MACs. TLS 1.3 suites are all AEAD and OpenSSL's defaults are kept for it.
TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
    )
)


def server_ssl_context(tls: TlsSettings) -> ssl.SSLContext:
    """The context every worker serves with: TLS 1.2 or 1.3, client certificate required.

    Raises OSError / ssl.SSLError when a certificate, key or CA file is missing or unreadable,
    and ValueError for an unknown identity mode, so a bad configuration stops the server
    before it binds.
    """
    if tls.identity_from not in IDENTITY_MODES:
        raise ValueError(f"tls.identity_from must be one of {', '.join(IDENTITY_MODES)}; got {tls.identity_from!r}")
    if not tls.client_ca:
        raise ValueError("tls.client_ca is empty: no client certificate could ever be accepted")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_SINGLE_ECDH_USE
    # Renegotiation is a TLS 1.2 denial-of-service lever (the client makes the server redo the
    # expensive part of the handshake on an open connection); KMIP never needs it.
    context.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    context.load_cert_chain(certfile=str(tls.certificate), keyfile=str(tls.private_key))
    for ca_file in tls.client_ca:
        context.load_verify_locations(cafile=str(ca_file))
    # The context is built in the parent before the workers fork, so they all share one
    # session-ticket key: a client that reconnects to another worker can still resume.
    return context


def _single(values: list[str], field: str) -> str:
    if not values:
        raise ValueError(f"the client certificate has no {field}")
    if len(values) > 1:
        # Picking one would let whoever controls the extra value choose which identity counts.
        raise ValueError(f"the client certificate has {len(values)} {field} values; the identity is ambiguous")
    return values[0]


def _name_values(name: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(attribute.value) for attribute in name.get_attributes_for_oid(oid)]


@functools.lru_cache(maxsize=4096)
def _identity_name(der: bytes, mode: str) -> str:
    # Cached: a fleet reconnects with the same few certificates, and parsing one costs more
    # than the rest of the per-connection bookkeeping together.
    certificate = x509.load_der_x509_certificate(der)
    if mode == "cn":
        name = _single(_name_values(certificate.subject, NameOID.COMMON_NAME), "subject common name (CN)")
    elif mode == "ou":
        name = _single(_name_values(certificate.subject, NameOID.ORGANIZATIONAL_UNIT_NAME), "organizational unit (OU)")
    elif mode == "subject":
        name = certificate.subject.rfc4514_string()
    elif mode in ("san-dns", "san-email"):
        kind: type[x509.DNSName] | type[x509.RFC822Name] = x509.DNSName if mode == "san-dns" else x509.RFC822Name
        label = "DNS subject alternative name" if mode == "san-dns" else "e-mail subject alternative name"
        try:
            sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            raise ValueError(f"the client certificate has no {label}") from None
        name = _single(list(sans.get_values_for_type(kind)), label)
    else:
        raise ValueError(f"unknown identity mode {mode!r}")
    # The name ends up in logs, ownership records and policy decisions.
    return validate_name(name, "client identity")


def identity_from_certificate(der: bytes, mode: str = "cn") -> ClientIdentity:
    """The client identity named by the peer certificate ``der`` (DER) under ``mode``.

    Raises ValueError when the certificate lacks the field, has it more than once, or its
    value is empty or contains control characters.
    """
    return ClientIdentity(name=_identity_name(bytes(der), mode), certificate=der)
