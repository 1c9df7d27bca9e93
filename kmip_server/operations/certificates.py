"""Certify, Re-certify and Validate (KMIP 1.4 §4.7, §4.8, §4.24; 2.1 §6.1.6, §6.1.45, §6.1.62).

**Certify** makes an X.509 certificate for a Public Key the server holds, from a PKCS#10
request (DER, or PEM; its signature is checked, and its public key must be that object's) or
from the Public Key alone (the subject then is ``CN=`` the key's Name, or its identifier). A
request with a Private Key Link naming the key's own private key makes a self-signed root
(Basic Constraints CA: the start of a CA whose key never leaves the server). Otherwise the
issuer is a CA whose certificate and private key are managed objects here: the request names
the CA's certificate with a Certificate Link attribute (KMIP: "for Certificate objects: the
parent certificate ... in a certificate chain"), or the server's default (``[crypto]
certify_issuer``, a certificate's Name). The CA's private key, found from its certificate's Public Key Link and
that key's Private Key Link, must be one the caller may use, Active, with Certificate Sign in
its usage mask: that is the policy on who may issue. The serial number is 128 bits from the
token's generator; the certificate is valid from now for ``[crypto] certify_days`` (365); its Key
Usage follows the public key's Cryptographic Usage Mask. The new Certificate gets a Public Key
Link to the key and a Certificate Link to the CA's certificate, the key a Certificate Link to
it, and the ID Placeholder is the certificate.

**Re-certify** renews a certificate the server made or holds for the same public key: a new
serial and validity (moved by the Offset, like Re-key's dates), the subject and extensions
kept or taken from a new request, Replaced/Replacement Object Links, the Name moved.

**Validate** checks a chain: certificates given in the request and by identifier, in order from
the end entity, each issued (name and signature) by the next, each valid at the Validity Date
(default now); the chain must end at a certificate the server holds that is self-signed or
issued by one it holds. Valid or Invalid; Unknown when it ends elsewhere.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.model.attributes import Link, Name
from kmip_client.protocol.model.objects import Certificate
from kmip_client.protocol.model.payloads.crypto import ValidateRequest, ValidateResponse
from kmip_client.protocol.model.payloads.lifecycle import (
    CertifyRequest,
    CertifyResponse,
    ReCertifyRequest,
    ReCertifyResponse,
)
from kmip_client.protocol.spec.enums import (
    CertificateRequestType,
    CertificateType,
    CryptographicUsageMask,
    LinkType,
    ObjectType,
    Operation,
    ResultReason,
    ValidityIndicator,
)

from ..crypto_settings import CryptoSettings
from ..engine.access import scoped_locate
from ..engine.context import RequestContext
from ..engine.registry import operation
from ..objects import lifecycle
from ..objects.attribute_set import AttributeSet
from ..storage.records import AttributeFilter, LocateQuery
from .attribute_input import apply_initial
from .common import ManagedObject, as_seconds, decoded_object, destroyed, linked, load_object, wrap_context
from .creation import store_new_object
from .crypto.asymmetric import load_public, private_key
from .crypto.keys import key_for
from .registration import _certificate
from .templates import requested_attributes

R = ResultReason
Usage = CryptographicUsageMask
_SERIAL_BYTES = 16  # RFC 5280 §4.1.2.2: positive, at most 20 octets; 128 bits of the token's randomness

_settings = CryptoSettings()
#: How an issuer's private key is used: to apply protection, not as the operation's object.
_SIGNS_CERTIFICATES: dict[str, Any] = {
    "usage": Usage.CERTIFICATE_SIGN,
    "protects": True,
    "action": "sign certificates",
    "sets_placeholder": False,
}


def configure(settings: CryptoSettings) -> None:
    """Set this process's Certify issuer and validity (called once per worker at start)."""
    global _settings
    _settings = settings


# ----------------------------------------------------------------------------- loading


def _unwrapped(ctx: RequestContext, obj: ManagedObject) -> Any:
    record = obj.record
    if record.wrapped_value is None:
        raise KmipError(f"object {obj.uid!r} has no value on this server", R.ILLEGAL_OPERATION)
    return decoded_object(ctx.custody.unwrap(record.wrapped_value, wrap_context(record.uid, record.object_type)))


def _object_of(ctx: RequestContext, uid: Any, object_type: ObjectType, role: str) -> ManagedObject:
    obj = load_object(ctx, uid)
    if obj.destroyed:
        raise destroyed(ctx, obj.uid)
    if obj.record.object_type != object_type:
        raise KmipError(
            f"{role} {obj.uid!r} is not a {object_type.name.replace('_', ' ').title()}",
            ctx.reason(R.INVALID_OBJECT_TYPE, R.INVALID_FIELD),
        )
    return obj


def _certificate_of(ctx: RequestContext, obj: ManagedObject) -> x509.Certificate:
    managed = _unwrapped(ctx, obj)
    value = managed.certificate_value if isinstance(managed, Certificate) else None
    if managed.certificate_type != CertificateType.X_509 or not isinstance(value, bytes):
        raise KmipError(f"certificate {obj.uid!r} is not an X.509 certificate", R.INVALID_FIELD)
    return x509.load_der_x509_certificate(value)


def _public_key_of(ctx: RequestContext, obj: ManagedObject) -> Any:
    block = _unwrapped(ctx, obj).key_block
    material = block.key_value.key_material
    algorithm = int(block.cryptographic_algorithm) if block.cryptographic_algorithm is not None else None
    fmt = int(block.key_format_type) if block.key_format_type is not None else None
    return load_public(fmt, material, algorithm, f"public key {obj.uid!r}")


# ----------------------------------------------------------------------------- the issuer


@dataclasses.dataclass(frozen=True)
class _Issuer:
    """Who signs: a CA certificate the server holds and its private key, or (``uid`` and
    ``certificate`` None) the subject's own private key, for a self-signed root."""

    uid: str | None
    certificate: x509.Certificate | None
    key: Any  # the cryptography private key

    def name(self, subject: x509.Name) -> x509.Name:
        return subject if self.certificate is None else self.certificate.subject

    def public_key(self) -> Any:
        return self.key.public_key() if self.certificate is None else self.certificate.public_key()


def _self_signer(ctx: RequestContext, key: ManagedObject, private_uid: str) -> _Issuer:
    """The subject's own private key (named by a Private Key Link in the request) signs: a
    self-signed certificate, the root of a CA the server keeps (its key never leaves)."""
    if linked(key.attributes, LinkType.PRIVATE_KEY_LINK) != private_uid:
        raise KmipError(
            f"a self-signed certificate is signed by the key's own private key; {private_uid!r} is not {key.uid!r}'s",
            R.INVALID_FIELD,
        )
    signer = key_for(ctx, private_uid, **_SIGNS_CERTIFICATES)
    return _Issuer(None, None, private_key(signer))


def _issuer(ctx: RequestContext, named: str | None) -> _Issuer:
    if named is None:
        if not _settings.certify_issuer:
            raise KmipError(
                "no issuer: give the CA's certificate as a Certificate Link attribute, or set [crypto] certify_issuer",
                R.INVALID_FIELD,
            )
        named = _issuer_by_name(ctx, _settings.certify_issuer)
    ca = _object_of(ctx, named, ObjectType.CERTIFICATE, "the issuer's certificate")
    public_uid = linked(ca.attributes, LinkType.PUBLIC_KEY_LINK)
    private_uid = linked(load_object(ctx, public_uid).attributes, LinkType.PRIVATE_KEY_LINK) if public_uid else None
    if private_uid is None:
        raise KmipError(
            f"certificate {ca.uid!r} is no issuer here: no Public Key Link to a key whose Private Key this server holds",
            R.INVALID_FIELD,
        )
    key = key_for(ctx, private_uid, **_SIGNS_CERTIFICATES)
    return _Issuer(ca.uid, _certificate_of(ctx, ca), private_key(key))


def _issuer_by_name(ctx: RequestContext, name: str) -> str:
    query = LocateQuery(
        object_types=(int(ObjectType.CERTIFICATE),),
        states=lifecycle.LIVE_STATES,
        owners=None,
        attributes=(AttributeFilter(name="Name", text=name),),
        max_items=2,
        now=ctx.now,
    )
    found = ctx.session.locate(query)
    if len(found) != 1:
        raise KmipError(f"[crypto] certify_issuer {name!r} names {len(found)} certificates, not one", R.GENERAL_FAILURE)
    return str(found[0])


# ----------------------------------------------------------------------------- building


def _request_of(kind: Any, value: bytes | None) -> x509.CertificateSigningRequest | None:
    if value is None:
        return None
    try:
        if kind == CertificateRequestType.PKCS_10:
            csr = x509.load_der_x509_csr(value)
        elif kind == CertificateRequestType.PEM:
            csr = x509.load_pem_x509_csr(value)
        else:
            shown = getattr(kind, "name", kind)
            raise KmipError(f"Certificate Request Type {shown} is not supported (PKCS#10 or PEM)", R.INVALID_FIELD)
    except ValueError as exc:
        raise KmipError(f"the Certificate Request is not a {kind.name} request: {exc}", R.INVALID_FIELD) from None
    if not csr.is_signature_valid:
        raise KmipError("the Certificate Request's signature does not verify with its public key", R.INVALID_FIELD)
    return csr


def _same_key(one: Any, other: Any) -> bool:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    return bool(one.public_bytes(der, spki) == other.public_bytes(der, spki))


def _key_usage(mask: int, public: Any) -> x509.KeyUsage:
    signs = bool(mask & (Usage.VERIFY | Usage.SIGN))
    encrypts = bool(mask & (Usage.ENCRYPT | Usage.WRAP_KEY | Usage.DECRYPT | Usage.UNWRAP_KEY))
    agrees = bool(mask & Usage.KEY_AGREEMENT)
    return x509.KeyUsage(
        digital_signature=signs,
        content_commitment=False,
        key_encipherment=encrypts and isinstance(public, rsa.RSAPublicKey),
        data_encipherment=False,
        key_agreement=agrees,
        key_cert_sign=bool(mask & Usage.CERTIFICATE_SIGN),
        crl_sign=bool(mask & Usage.CRL_SIGN),
        encipher_only=False,
        decipher_only=False,
    )


def _signature_hash(key: Any) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512 | None:
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size > 256:
        return hashes.SHA384() if key.curve.key_size <= 384 else hashes.SHA512()
    return hashes.SHA256()


def _issued(
    ctx: RequestContext,
    issuer: _Issuer,
    subject: x509.Name,
    public: Any,
    mask: int,
    extensions: list[x509.Extension[Any]],
    not_before: int,
) -> bytes:
    start = datetime.datetime.fromtimestamp(not_before, datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.name(subject))
        .public_key(public)
        .serial_number(int.from_bytes(ctx.custody.random(_SERIAL_BYTES), "big") >> 1 | 1)  # positive, never 0
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=_settings.certify_days))
        .add_extension(x509.BasicConstraints(ca=bool(mask & Usage.CERTIFICATE_SIGN), path_length=None), critical=True)
        .add_extension(_key_usage(mask, public), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key()),
            critical=False,
        )
    )
    for extension in extensions:  # what the request asks for that the server does not set itself
        if extension.oid not in _SERVER_SET_EXTENSIONS:
            builder = builder.add_extension(extension.value, critical=extension.critical)
    try:
        return builder.sign(issuer.key, _signature_hash(issuer.key)).public_bytes(serialization.Encoding.DER)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KmipError(f"the issuer's key cannot sign this certificate: {exc}", R.CRYPTOGRAPHIC_FAILURE) from None


_SERVER_SET_EXTENSIONS = frozenset(
    {
        x509.BasicConstraints.oid,
        x509.KeyUsage.oid,
        x509.SubjectKeyIdentifier.oid,
        x509.AuthorityKeyIdentifier.oid,
    }
)


def _default_subject(key: ManagedObject) -> x509.Name:
    names = [attr.value for _, attr in key.attributes.instances("Name")]
    common_name = names[0].value if names and isinstance(names[0], Name) else key.uid
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(common_name)[:64])])


def _store_certificate(
    ctx: RequestContext,
    der: bytes,
    given: list[Any],
    key: ManagedObject,
    issuer_uid: str | None,
    extra_links: list[Link],
) -> str:
    attrs = AttributeSet()
    apply_initial(ctx, attrs, [attr for attr in given if getattr(attr, "name", None) != "Link"])
    stored, value = _certificate(Certificate(certificate_type=CertificateType.X_509, certificate_value=der), attrs)
    attrs.add("Link", Link(link_type=LinkType.PUBLIC_KEY_LINK, linked_object_identifier=key.uid))
    if issuer_uid is not None:  # a self-signed root has no parent certificate
        attrs.add("Link", Link(link_type=LinkType.CERTIFICATE_LINK, linked_object_identifier=issuer_uid))
    for link in extra_links:
        attrs.add("Link", link)
    uid = store_new_object(ctx, ObjectType.CERTIFICATE, attrs, stored, digest_of=value, key_format=None)
    locked = load_object(ctx, key.uid, for_update=True)
    locked.attributes.add("Link", Link(link_type=LinkType.CERTIFICATE_LINK, linked_object_identifier=uid))
    locked.touch(ctx)
    locked.save(ctx)
    ctx.id_placeholder = uid
    return uid


def _named_link(given: list[Any], link_type: LinkType) -> str | None:
    for attr in given:
        if getattr(attr, "name", None) == "Link" and isinstance(attr.value, Link):
            if attr.value.link_type == link_type:
                return str(attr.value.linked_object_identifier)
    return None


def _named_issuer(given: list[Any]) -> str | None:
    return _named_link(given, LinkType.CERTIFICATE_LINK)


def _subject_key(ctx: RequestContext, uid: Any) -> tuple[ManagedObject, Any]:
    key = _object_of(ctx, uid, ObjectType.PUBLIC_KEY, "the key to certify")
    return key, _public_key_of(ctx, key)


@operation(Operation.CERTIFY, writes=True)
def certify(ctx: RequestContext, request: CertifyRequest) -> CertifyResponse:
    given = requested_attributes(ctx, request.template_attribute, request.attributes)
    csr = _request_of(
        request.certificate_request_type, request.certificate_request or request.certificate_request_value
    )
    key, public = _subject_key(ctx, request.unique_identifier)
    if csr is not None and not _same_key(csr.public_key(), public):
        raise KmipError(f"the Certificate Request's public key is not that of {key.uid!r}", R.INVALID_FIELD)
    own_private = _named_link(given, LinkType.PRIVATE_KEY_LINK)
    issuer = _self_signer(ctx, key, own_private) if own_private else _issuer(ctx, _named_issuer(given))
    mask = int(key.attributes.first("Cryptographic Usage Mask") or 0)
    if own_private:
        mask |= Usage.CERTIFICATE_SIGN  # a root: its key signs certificates (the private key's mask allowed it)
    subject = csr.subject if csr is not None and len(csr.subject) else _default_subject(key)
    extensions = list(csr.extensions) if csr is not None else []
    der = _issued(ctx, issuer, subject, public, mask, extensions, ctx.now)
    return CertifyResponse(unique_identifier=_store_certificate(ctx, der, given, key, issuer.uid, []))


@operation(Operation.RE_CERTIFY, writes=True)
def re_certify(ctx: RequestContext, request: ReCertifyRequest) -> ReCertifyResponse:
    given = requested_attributes(ctx, request.template_attribute, request.attributes)
    old = _object_of(ctx, request.unique_identifier, ObjectType.CERTIFICATE, "the certificate to renew")
    old_certificate = _certificate_of(ctx, old)
    public_uid = linked(old.attributes, LinkType.PUBLIC_KEY_LINK)
    if public_uid is None:
        raise KmipError(f"certificate {old.uid!r} has no Public Key Link: nothing to renew it for", R.INVALID_FIELD)
    key, public = _subject_key(ctx, public_uid)
    csr = _request_of(
        request.certificate_request_type, request.certificate_request or request.certificate_request_value
    )
    if csr is not None and not _same_key(csr.public_key(), public):
        raise KmipError("Re-certify renews a certificate for the same key; the request's key differs", R.INVALID_FIELD)
    issuer = _issuer(ctx, _named_issuer(given) or linked(old.attributes, LinkType.CERTIFICATE_LINK))
    mask = int(key.attributes.first("Cryptographic Usage Mask") or 0)
    subject = csr.subject if csr is not None and len(csr.subject) else old_certificate.subject
    extensions = list(csr.extensions if csr is not None else old_certificate.extensions)
    der = _issued(ctx, issuer, subject, public, mask, extensions, ctx.now + (request.offset or 0))
    names = [attr for _, attr in old.attributes.instances("Name")]
    replaced = Link(link_type=LinkType.REPLACED_OBJECT_LINK, linked_object_identifier=old.uid)
    uid = _store_certificate(
        ctx, der, [*given, *names] if not _gives_name(given) else given, key, issuer.uid, [replaced]
    )
    locked = load_object(ctx, old.uid, for_update=True)
    if not _gives_name(given):
        locked.attributes.delete("Name")  # the Name moves to the new certificate (1.4 §4.8)
    locked.attributes.add("Link", Link(link_type=LinkType.REPLACEMENT_OBJECT_LINK, linked_object_identifier=uid))
    locked.touch(ctx)
    locked.save(ctx)
    ctx.id_placeholder = uid
    return ReCertifyResponse(unique_identifier=uid)


def _gives_name(given: list[Any]) -> bool:
    return any(getattr(attr, "name", None) == "Name" for attr in given)


# ----------------------------------------------------------------------------- Validate


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _held(ctx: RequestContext) -> list[x509.Certificate]:
    """The live X.509 certificates the caller may use: the trust anchors of Validate."""
    query = LocateQuery(
        object_types=(int(ObjectType.CERTIFICATE),),
        states=lifecycle.LIVE_STATES,
        attributes=(),
        max_items=None,
        now=ctx.now,
    )
    held = []
    for uid in scoped_locate(ctx, query)[0]:
        try:
            held.append(_certificate_of(ctx, load_object(ctx, uid)))
        except KmipError:
            continue  # not X.509: no anchor
    return held


@operation(Operation.VALIDATE, writes=False)
def validate(ctx: RequestContext, request: ValidateRequest) -> ValidateResponse:
    chain: list[x509.Certificate] = []
    for given in request.certificates:
        if given.certificate_type != CertificateType.X_509 or not isinstance(given.certificate_value, bytes):
            raise KmipError("Validate checks X.509 certificates", R.INVALID_FIELD)
        try:
            chain.append(x509.load_der_x509_certificate(given.certificate_value))
        except ValueError as exc:
            raise KmipError(f"a Certificate is not a DER X.509 certificate: {exc}", R.INVALID_FIELD) from None
    for uid in request.unique_identifiers:
        chain.append(_certificate_of(ctx, _object_of(ctx, uid, ObjectType.CERTIFICATE, "certificate")))
    if not chain:
        raise KmipError("Validate needs at least one certificate", R.INVALID_MESSAGE)
    when = as_seconds(request.validity_date)
    moment = datetime.datetime.fromtimestamp(ctx.now if when is None else when, datetime.UTC)
    valid = all(c.not_valid_before_utc <= moment <= c.not_valid_after_utc for c in chain) and all(
        _issued_by(cert, issuer) for cert, issuer in zip(chain, chain[1:], strict=False)
    )
    if not valid:
        return ValidateResponse(validity_indicator=ValidityIndicator.INVALID)
    last = chain[-1]
    anchors = _held(ctx)
    anchored = any(
        anchor.fingerprint(hashes.SHA256()) == last.fingerprint(hashes.SHA256()) and _issued_by(last, last)
        for anchor in anchors
    ) or any(_issued_by(last, anchor) and _issued_by(anchor, anchor) for anchor in anchors)
    return ValidateResponse(validity_indicator=ValidityIndicator.VALID if anchored else ValidityIndicator.UNKNOWN)
