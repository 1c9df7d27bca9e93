"""Register: objects a client made, stored as they were given (wrapped by custody).

A Key Block wrapped under a key of this server's is unwrapped first (:mod:`.wrapping`) and
stored unwrapped, like every other value; in 2.x the object gets a Wrapping Key Link to that
key (2.1 §6.1.43).

Symmetric keys are checked like the keys Create makes; Secret Data and Opaque Objects are kept
as bytes; Public Keys, Private Keys and Certificates are stored, not used: the server keeps
their key block or certificate value and the attributes that describe it (Cryptographic
Algorithm and Length from the key block; Certificate Type, Length and the subject and issuer
names from an X.509 certificate), and Get returns them in the format they were registered in.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dh, dsa, ec, rsa

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.model import Struct
from kmip_client.protocol.model.attributes import (
    CertificateIdentifier,
    CertificateIssuer,
    CertificateSubject,
    Link,
    X509CertificateIdentifier,
    X509CertificateIssuer,
    X509CertificateSubject,
)
from kmip_client.protocol.model.base import to_bytes
from kmip_client.protocol.model.objects import (
    Certificate,
    KeyBlock,
    KeyValue,
    OpaqueObject,
    PrivateKey,
    PublicKey,
    SecretData,
    SplitKey,
    SymmetricKey,
    Template,
    TransparentKeyMaterial,
)
from kmip_client.protocol.model.payloads.lifecycle import RegisterRequest, RegisterResponse
from kmip_client.protocol.spec.enums import (
    CertificateType,
    CryptographicAlgorithm,
    KeyFormatType,
    LinkType,
    ObjectType,
    Operation,
    ResultReason,
)
from kmip_client.protocol.ttlv import ItemType

from ..engine.context import RequestContext
from ..engine.registry import operation
from ..objects.attribute_set import AttributeSet
from .attribute_input import apply_initial
from .creation import _check_storage_masks, _key_block, _symmetric_parameters, store_new_object
from .crypto.asymmetric import check_private
from .key_formats import mislabelled
from .split_keys import split_key
from .templates import checked_template, requested_attributes
from .wrapping import unwrap_object, wrapped_block

R = ResultReason
F = KeyFormatType
A = CryptographicAlgorithm

_REGISTRABLE: dict[int, type[Struct]] = {
    ObjectType.SYMMETRIC_KEY: SymmetricKey,
    ObjectType.SECRET_DATA: SecretData,
    ObjectType.OPAQUE_OBJECT: OpaqueObject,
    ObjectType.PUBLIC_KEY: PublicKey,
    ObjectType.PRIVATE_KEY: PrivateKey,
    ObjectType.CERTIFICATE: Certificate,
    ObjectType.TEMPLATE: Template,
    ObjectType.SPLIT_KEY: SplitKey,
}
_SYMMETRIC_FORMATS = (F.RAW, F.OPAQUE, F.TRANSPARENT_SYMMETRIC_KEY)
#: The formats a registered asymmetric key may come in (KMIP 2.1 §11.15): encoded (a Byte
#: String of Key Material) or transparent (a structure of Big Integers).
_PUBLIC_FORMATS = frozenset(
    {
        F.PKCS_1,
        F.X_509,
        F.TRANSPARENT_RSA_PUBLIC_KEY,
        F.TRANSPARENT_DSA_PUBLIC_KEY,
        F.TRANSPARENT_DH_PUBLIC_KEY,
        F.TRANSPARENT_EC_PUBLIC_KEY,
    }
)
_PRIVATE_FORMATS = frozenset(
    {
        F.PKCS_1,
        F.PKCS_8,
        F.ECPRIVATEKEY,
        F.TRANSPARENT_RSA_PRIVATE_KEY,
        F.TRANSPARENT_DSA_PRIVATE_KEY,
        F.TRANSPARENT_DH_PRIVATE_KEY,
        F.TRANSPARENT_EC_PRIVATE_KEY,
    }
)
_TRANSPARENT_ASYMMETRIC = frozenset(f for f in _PUBLIC_FORMATS | _PRIVATE_FORMATS if f.name.startswith("TRANSPARENT"))


def _plain_block(block: KeyBlock | None) -> tuple[KeyBlock, KeyValue]:
    """The block of a registered key and its (unwrapped) Key Value."""
    if block is None or block.key_value is None:
        raise KmipError("the object has no Key Block with a Key Value", R.INVALID_FIELD)
    if block.key_wrapping_data is not None or isinstance(block.key_value, bytes):  # register() unwraps first
        raise KmipError("the Key Block is still wrapped", R.INVALID_FIELD)
    return block, block.key_value


def _key_bytes(block: KeyBlock | None) -> tuple[bytes, int]:
    """The plain key bytes and format of a registered symmetric key or secret."""
    block, key_value = _plain_block(block)
    material = key_value.key_material
    fmt = block.key_format_type
    if fmt == F.TRANSPARENT_SYMMETRIC_KEY and isinstance(material, TransparentKeyMaterial):
        material = material.key
    if not isinstance(material, bytes) or not material:
        raise KmipError("the Key Material must be a non-empty Byte String", R.INVALID_FIELD)
    if fmt not in _SYMMETRIC_FORMATS:
        raise KmipError(
            f"Key Format Type {getattr(fmt, 'name', fmt)} is not supported for this object",
            R.KEY_FORMAT_TYPE_NOT_SUPPORTED,
        )
    return material, int(fmt)


def _attributes_from_block(attrs: AttributeSet, block: KeyBlock) -> None:
    """The key block's Cryptographic Algorithm and Length, as attributes where the client gave none."""
    if block.cryptographic_algorithm is not None and "Cryptographic Algorithm" not in attrs:
        attrs.set("Cryptographic Algorithm", block.cryptographic_algorithm, ItemType.ENUMERATION)
    if block.cryptographic_length is not None and "Cryptographic Length" not in attrs:
        attrs.set("Cryptographic Length", block.cryptographic_length, ItemType.INTEGER)


def _asymmetric(managed: PublicKey | PrivateKey, attrs: AttributeSet) -> tuple[Struct, bytes, int]:
    """A public or private key kept as given: its block, the bytes its Digest is of, its format."""
    block, key_value = _plain_block(managed.key_block)
    fmt = block.key_format_type
    formats = _PUBLIC_FORMATS if isinstance(managed, PublicKey) else _PRIVATE_FORMATS
    material = key_value.key_material
    kind = ObjectType.PUBLIC_KEY if isinstance(managed, PublicKey) else ObjectType.PRIVATE_KEY
    wrong_label = mislabelled(material, kind, fmt) if isinstance(material, bytes) else None
    if fmt not in formats:
        raise KmipError(
            wrong_label
            or f"Key Format Type {getattr(fmt, 'name', fmt)} is not supported for a {type(managed).__name__}",
            R.KEY_FORMAT_TYPE_NOT_SUPPORTED,
        )
    if wrong_label is not None:
        raise KmipError(wrong_label, R.INVALID_FIELD)
    if fmt in _TRANSPARENT_ASYMMETRIC:
        if not isinstance(material, TransparentKeyMaterial):
            raise KmipError(f"{fmt.name} Key Material is a structure of its values", R.INVALID_FIELD)
        digest_of = to_bytes(material)
    else:
        if not isinstance(material, bytes) or not material:
            raise KmipError(f"{fmt.name} Key Material is a non-empty Byte String", R.INVALID_FIELD)
        digest_of = material
    _attributes_from_block(attrs, block)
    # What the key itself says: it fills in what the client left out and must agree with what it said.
    algorithm, length = _described(fmt, material, isinstance(managed, PrivateKey))
    for name, value in (("Cryptographic Algorithm", algorithm), ("Cryptographic Length", length)):
        given = attrs.first(name)
        if value is None:
            continue
        if given is None:
            attrs.set(name, value, ItemType.ENUMERATION if name.endswith("Algorithm") else ItemType.INTEGER)
        elif int(given) != int(value):
            shown = getattr(value, "name", value)
            raise KmipError(f"the key's {name} is {shown}, not {getattr(given, 'name', given)}", R.INVALID_FIELD)
    return type(managed)(key_block=block), digest_of, int(fmt)


def _described(fmt: int, material: Any, private: bool) -> tuple[A | None, int | None]:
    """The algorithm and length a key's material shows (None where it does not say: an EC
    key may be EC, ECDSA or ECDH)."""
    key: Any = None
    if private and (fmt == F.TRANSPARENT_RSA_PRIVATE_KEY or not isinstance(material, TransparentKeyMaterial)):
        # Every check now, RSA's consistency check included, so that the uses of the key need
        # not repeat it (asymmetric.load_private). Transparent DSA, DH and EC numbers are checked
        # at each use instead: a key the cryptography package cannot use (a 512-bit DSA key,
        # BL-M-13) may still be stored and got.
        key = check_private(fmt, material, None)
    if isinstance(material, TransparentKeyMaterial):
        if fmt in (F.TRANSPARENT_RSA_PUBLIC_KEY, F.TRANSPARENT_RSA_PRIVATE_KEY) and material.modulus:
            return A.RSA, material.modulus.bit_length()
        if fmt in (F.TRANSPARENT_DSA_PUBLIC_KEY, F.TRANSPARENT_DSA_PRIVATE_KEY) and material.p:
            return A.DSA, material.p.bit_length()
        if fmt in (F.TRANSPARENT_DH_PUBLIC_KEY, F.TRANSPARENT_DH_PRIVATE_KEY) and material.p:
            return A.DH, material.p.bit_length()
        return None, None
    if key is None:
        try:
            key = serialization.load_der_public_key(material)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise KmipError(f"the Key Material is not a DER {F(fmt).name} key: {exc}", R.INVALID_FIELD) from exc
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return A.RSA, key.key_size
    if isinstance(key, (dsa.DSAPrivateKey, dsa.DSAPublicKey)):
        return A.DSA, key.key_size
    if isinstance(key, (dh.DHPrivateKey, dh.DHPublicKey)):
        return A.DH, key.key_size
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return None, key.key_size
    return None, None


#: The X.509 name attributes KMIP 2.x names (§4.9, §4.10) by their OID dotted strings.
_NAME_FIELDS = {
    "2.5.4.3": "CN",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "1.2.840.113549.1.9.1": "Email",
    "2.5.4.6": "C",
    "2.5.4.8": "ST",
    "2.5.4.7": "L",
    "0.9.2342.19200300.100.1.1": "UID",
    "2.5.4.5": "Serial Number",
    "2.5.4.12": "Title",
    "0.9.2342.19200300.100.1.25": "DC",
    "2.5.4.46": "DN Qualifier",
}


def _certificate(managed: Certificate, attrs: AttributeSet) -> tuple[Struct, bytes]:
    value = managed.certificate_value
    if managed.certificate_type is None or not isinstance(value, bytes) or not value:
        raise KmipError("a Certificate needs a Certificate Type and a Certificate Value", R.INVALID_FIELD)
    given = attrs.first("Certificate Type")
    if given is not None and int(given) != int(managed.certificate_type):
        raise KmipError("the Certificate Type attribute differs from the certificate's", R.INVALID_FIELD)
    attrs.set("Certificate Type", managed.certificate_type, ItemType.ENUMERATION)
    attrs.set("Certificate Length", len(value), ItemType.INTEGER)
    if managed.certificate_type == CertificateType.X_509:
        _x509_names(value, attrs)
    return Certificate(certificate_type=managed.certificate_type, certificate_value=value), value


def _x509_names(der: bytes, attrs: AttributeSet) -> None:
    """The attributes an X.509 certificate's names give it: X.509 Certificate Identifier,
    Subject and Issuer (KMIP 1.1+: DER names), Certificate Identifier, Subject and Issuer (KMIP
    1.0 to 1.4: text) and Certificate Subject/Issuer CN, O, ... (KMIP 2.x). Each version's client
    sees those its version defines."""
    try:
        cert = x509.load_der_x509_certificate(der)
        serial = cert.serial_number
        issuer_der, subject_der = cert.issuer.public_bytes(), cert.subject.public_bytes()
        issuer_text, subject_text = cert.issuer.rfc4514_string(), cert.subject.rfc4514_string()
        names = (("Subject", cert.subject), ("Issuer", cert.issuer))
        fields = [
            (f"Certificate {part} {field}", rdn.value)
            for part, name in names
            for rdn in name
            if (field := _NAME_FIELDS.get(rdn.oid.dotted_string)) is not None and isinstance(rdn.value, str)
        ]
    except ValueError as exc:
        raise KmipError(f"the Certificate Value is not a DER X.509 certificate: {exc}", R.INVALID_FIELD) from exc
    serial_bytes = serial.to_bytes(max(1, (serial.bit_length() + 8) // 8), "big", signed=True)
    attrs.set(
        "X.509 Certificate Identifier",
        X509CertificateIdentifier(issuer_distinguished_name=issuer_der, certificate_serial_number=serial_bytes),
    )
    attrs.set("X.509 Certificate Subject", X509CertificateSubject(subject_distinguished_name=subject_der))
    attrs.set("X.509 Certificate Issuer", X509CertificateIssuer(issuer_distinguished_name=issuer_der))
    attrs.set("Certificate Identifier", CertificateIdentifier(issuer=issuer_text, serial_number=str(serial)))
    attrs.set("Certificate Subject", CertificateSubject(distinguished_name=subject_text))
    attrs.set("Certificate Issuer", CertificateIssuer(distinguished_name=issuer_text))
    for name, value in fields:
        attrs.add(name, value, ItemType.TEXT_STRING)


def _without_value(ctx: RequestContext, managed: Any) -> bool:
    """A key object registered for its attributes alone: a Key Block without a Key Value
    (KMIP 1.2 and later allow it; the value lives elsewhere, see Key Value Location)."""
    block = getattr(managed, "key_block", None)
    return ctx.version >= (1, 2) and block is not None and block.key_value is None


def _attributes_only(managed: Any, attrs: AttributeSet) -> int | None:
    """The attributes of a key object registered without a value (kept as given: nothing to
    wrap or digest): its key block's, and Key Value Present False, which the server sets on
    such an object (KMIP 1.4 §3.41, 2.1 §4.28; Get answers Key Value Not Present). Its Key
    Format Type."""
    block = managed.key_block
    if block.key_wrapping_data is not None:
        raise KmipError("a Key Block without a Key Value cannot have Key Wrapping Data", R.INVALID_FIELD)
    _attributes_from_block(attrs, block)
    attrs.set("Key Value Present", False, ItemType.BOOLEAN)
    return None if block.key_format_type is None else int(block.key_format_type)


@dataclasses.dataclass(frozen=True, slots=True)
class Prepared:
    """A registered object as it is stored, and what its row and Digest need."""

    stored: Struct
    digest_of: bytes | None
    key_format: int | None
    algorithm: int | None
    length: int | None
    has_value: bool


def checked_object(ctx: RequestContext, object_type: Any, managed: Any, *, templates: bool = True) -> Any:
    """The object a Register (or Import) gives, checked to be of a type it takes and of its Object Type."""
    cls = _REGISTRABLE.get(object_type) if object_type is not None else None
    if cls is None or (cls is Template and not templates):
        kinds = "Split Key and (KMIP 1.x) Template" if templates else "and Split Key"
        raise KmipError(
            f"{'Register' if templates else 'Import'} accepts Symmetric Key, Secret Data, Opaque Object, "
            f"Public Key, Private Key, Certificate, {kinds} objects",
            ctx.reason(R.INVALID_OBJECT_TYPE, R.INVALID_FIELD),
        )
    if not isinstance(managed, cls):
        raise KmipError(f"the Object Type says {object_type.name} but the object is another type", R.INVALID_FIELD)
    return managed


def prepare_object(ctx: RequestContext, managed: Any, attrs: AttributeSet) -> Prepared:
    """An unwrapped registered object checked and put in its stored form; ``attrs`` gains the
    attributes the object itself gives (its algorithm and length, a certificate's names)."""
    algorithm = length = key_format = None
    value: bytes | None
    stored_object: Struct
    valueless = _without_value(ctx, managed)
    if isinstance(managed, Template):
        stored_object, value = checked_template(ctx, managed), None
    elif valueless:
        stored_object, value, key_format = managed, None, _attributes_only(managed, attrs)
        algorithm, length = attrs.first("Cryptographic Algorithm"), attrs.first("Cryptographic Length")
    elif isinstance(managed, OpaqueObject):
        if not isinstance(managed.opaque_data_value, bytes):
            raise KmipError("an Opaque Object needs an Opaque Data Value", R.INVALID_FIELD)
        value = managed.opaque_data_value
        stored_object = OpaqueObject(
            opaque_data_type=managed.opaque_data_type, opaque_data_value=managed.opaque_data_value
        )
    elif isinstance(managed, Certificate):
        stored_object, value = _certificate(managed, attrs)
    elif isinstance(managed, SplitKey):
        stored_object, value, key_format = split_key(ctx, managed, attrs)
        algorithm, length = attrs.first("Cryptographic Algorithm"), attrs.first("Cryptographic Length")
    elif isinstance(managed, (PublicKey, PrivateKey)):
        stored_object, value, key_format = _asymmetric(managed, attrs)
        algorithm, length = attrs.first("Cryptographic Algorithm"), attrs.first("Cryptographic Length")
    else:
        assert isinstance(managed, (SymmetricKey, SecretData))  # the rest of _REGISTRABLE
        block = managed.key_block
        value, key_format = _key_bytes(block)
        assert block is not None
        if isinstance(managed, SymmetricKey):
            # (Secret Data may hold any bytes, an encoded key among them; a Symmetric Key not.)
            wrong_label = mislabelled(value, ObjectType.SYMMETRIC_KEY, key_format)
            if wrong_label is not None:
                raise KmipError(wrong_label, R.INVALID_FIELD)
            _attributes_from_block(attrs, block)
            algorithm, length = _symmetric_parameters(ctx, attrs, len(value))
            # A Transparent Symmetric Key keeps its form: Get returns a key in the format it
            # was registered in (v2.1 BL-M-3).
            material = TransparentKeyMaterial(key=value) if key_format == F.TRANSPARENT_SYMMETRIC_KEY else value
            stored_object = SymmetricKey(key_block=_key_block(material, key_format, algorithm, length))
        else:
            stored_object = SecretData(
                secret_data_type=managed.secret_data_type,
                key_block=_key_block(value, key_format, block.cryptographic_algorithm, block.cryptographic_length),
            )
    return Prepared(
        stored=stored_object,
        digest_of=value,
        key_format=key_format,
        algorithm=None if algorithm is None else int(algorithm),
        length=length,
        has_value=not valueless,
    )


@operation(Operation.REGISTER, writes=True)
def register(ctx: RequestContext, request: RegisterRequest) -> Struct:
    object_type = request.object_type
    managed: Any = checked_object(ctx, object_type, request.managed_object)
    _check_storage_masks(request.protection_storage_masks)
    attrs = AttributeSet()
    apply_initial(ctx, attrs, requested_attributes(ctx, request.template_attribute, request.attributes))
    if wrapped_block(getattr(managed, "key_block", None)):
        managed, wrapping_key = unwrap_object(ctx, managed)
        if ctx.v2:
            attrs.add("Link", Link(link_type=LinkType.WRAPPING_KEY_LINK, linked_object_identifier=wrapping_key))
    prepared = prepare_object(ctx, managed, attrs)
    uid = store_new_object(
        ctx,
        object_type,  # type: ignore[arg-type]
        attrs,
        prepared.stored,
        digest_of=prepared.digest_of,
        has_value=prepared.has_value,
        key_format=prepared.key_format,
        algorithm=prepared.algorithm,
        length=prepared.length,
    )
    return RegisterResponse(unique_identifier=uid)
