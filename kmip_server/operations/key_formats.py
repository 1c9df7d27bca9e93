"""Get in another Key Format Type: a key converted from the format it is stored in.

KMIP 1.4 §4.11 / 2.1 §6.1.23: Get's Key Format Type asks for the key "in the specified
format"; a server that cannot convert answers Key Format Type Not Supported. Strongroom
converts what the ``cryptography`` package reads and writes:

* Symmetric keys: Raw and Transparent Symmetric Key. Secret Data: Raw and Opaque.
* Private keys: RSA between PKCS#1, PKCS#8 and Transparent RSA Private Key; EC (NIST curves)
  between SEC 1 ECPrivateKey, PKCS#8 and Transparent EC Private Key (1.x also its ECDSA,
  ECDH and ECMQV names); DSA and DH between PKCS#8 and their Transparent Private Key; Ed25519, Ed448,
  X25519 and X448 as PKCS#8.
* Public keys: RSA between PKCS#1, X.509 SubjectPublicKeyInfo and Transparent RSA Public Key;
  EC between X.509 and Transparent EC Public Key (the point uncompressed, X9.62); DSA between
  X.509 and Transparent DSA Public Key, DH between X.509 and Transparent DH Public Key; Edwards
  and Montgomery keys as X.509.

A stored key is loaded without OpenSSL's RSA consistency check, which ran when it entered the
server (crypto/asymmetric.py). The Digest attribute stays that of the stored format.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dh, dsa, ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.model import Struct
from kmip_client.protocol.model.objects import (
    KeyBlock,
    KeyValue,
    PrivateKey,
    PublicKey,
    SecretData,
    SymmetricKey,
    TransparentKeyMaterial,
)
from kmip_client.protocol.spec.enums import KeyFormatType, ObjectType, RecommendedCurve, ResultReason

from .crypto.asymmetric import CURVES, EC_PRIVATE_FORMATS, EC_PUBLIC_FORMATS, load_private, load_public

R = ResultReason
F = KeyFormatType

_SYMMETRIC = (F.RAW, F.TRANSPARENT_SYMMETRIC_KEY)
# KMIP 1.x names a transparent EC key by the algorithm it serves; 2.x has one EC structure.
_EC_PRIVATE_NAMES, _EC_PUBLIC_NAMES = EC_PRIVATE_FORMATS, EC_PUBLIC_FORMATS
#: The formats each kind of key may be asked for (whether this key fits one is decided on loading it).
_PRIVATE_TARGETS = frozenset(
    {
        F.PKCS_1,
        F.PKCS_8,
        F.ECPRIVATEKEY,
        F.TRANSPARENT_RSA_PRIVATE_KEY,
        F.TRANSPARENT_DSA_PRIVATE_KEY,
        F.TRANSPARENT_DH_PRIVATE_KEY,
    }
    | _EC_PRIVATE_NAMES
)
_PUBLIC_TARGETS = frozenset(
    {F.PKCS_1, F.X_509, F.TRANSPARENT_RSA_PUBLIC_KEY, F.TRANSPARENT_DSA_PUBLIC_KEY, F.TRANSPARENT_DH_PUBLIC_KEY}
    | _EC_PUBLIC_NAMES
)
#: A curve's ``cryptography`` name -> its KMIP Recommended Curve (for transparent EC keys).
_CURVE_IDS: dict[str, RecommendedCurve] = {cls().name: RecommendedCurve(curve_id) for curve_id, cls in CURVES.items()}


def _unsupported(wanted: int, what: str) -> KmipError:
    name = getattr(wanted, "name", None) or KeyFormatType(wanted).name
    return KmipError(f"Key Format Type {name} is not available for {what}", R.KEY_FORMAT_TYPE_NOT_SUPPORTED)


def _curve_id(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> RecommendedCurve:
    curve = _CURVE_IDS.get(key.curve.name)
    if curve is None:
        raise KmipError(f"the curve {key.curve.name} has no KMIP Recommended Curve", R.KEY_FORMAT_TYPE_NOT_SUPPORTED)
    return curve


def _private_material(key: Any, wanted: int) -> bytes | TransparentKeyMaterial | None:
    """``key`` in format ``wanted``, or None where that format does not hold this kind of key."""
    if wanted == F.PKCS_8:
        return bytes(key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption()))
    if isinstance(key, rsa.RSAPrivateKey):
        if wanted == F.PKCS_1:
            return key.private_bytes(Encoding.DER, PrivateFormat.TraditionalOpenSSL, NoEncryption())
        if wanted == F.TRANSPARENT_RSA_PRIVATE_KEY:
            n = key.private_numbers()
            return TransparentKeyMaterial(
                modulus=n.public_numbers.n,
                private_exponent=n.d,
                public_exponent=n.public_numbers.e,
                p=n.p,
                q=n.q,
                prime_exponent_p=n.dmp1,
                prime_exponent_q=n.dmq1,
                crt_coefficient=n.iqmp,
            )
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if wanted == F.ECPRIVATEKEY:
            return key.private_bytes(Encoding.DER, PrivateFormat.TraditionalOpenSSL, NoEncryption())
        if wanted in _EC_PRIVATE_NAMES:
            return TransparentKeyMaterial(recommended_curve=_curve_id(key), d=key.private_numbers().private_value)
    if isinstance(key, dsa.DSAPrivateKey) and wanted == F.TRANSPARENT_DSA_PRIVATE_KEY:
        private = key.private_numbers()
        params = private.public_numbers.parameter_numbers
        return TransparentKeyMaterial(p=params.p, q=params.q, g=params.g, x=private.x)
    if isinstance(key, dh.DHPrivateKey) and wanted == F.TRANSPARENT_DH_PRIVATE_KEY:
        dh_private = key.private_numbers()
        group = dh_private.public_numbers.parameter_numbers
        return TransparentKeyMaterial(p=group.p, q=group.q, g=group.g, x=dh_private.x)
    return None


def _public_material(key: Any, wanted: int) -> bytes | TransparentKeyMaterial | None:
    if wanted == F.X_509:
        return bytes(key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))
    if isinstance(key, rsa.RSAPublicKey):
        if wanted == F.PKCS_1:
            return key.public_bytes(Encoding.DER, PublicFormat.PKCS1)
        if wanted == F.TRANSPARENT_RSA_PUBLIC_KEY:
            numbers = key.public_numbers()
            return TransparentKeyMaterial(modulus=numbers.n, public_exponent=numbers.e)
    if isinstance(key, ec.EllipticCurvePublicKey) and wanted in _EC_PUBLIC_NAMES:
        point = key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return TransparentKeyMaterial(recommended_curve=_curve_id(key), q_string=point)
    if isinstance(key, dsa.DSAPublicKey) and wanted == F.TRANSPARENT_DSA_PUBLIC_KEY:
        public = key.public_numbers()
        params = public.parameter_numbers
        return TransparentKeyMaterial(p=params.p, q=params.q, g=params.g, y=public.y)
    if isinstance(key, dh.DHPublicKey) and wanted == F.TRANSPARENT_DH_PUBLIC_KEY:
        dh_public = key.public_numbers()
        group = dh_public.parameter_numbers
        return TransparentKeyMaterial(p=group.p, q=group.q, g=group.g, y=dh_public.y)
    return None


def encoded(key: Any, fmt: int) -> bytes:
    """A ``cryptography`` private or public key in the encoded Key Format Type ``fmt`` (PKCS#1,
    PKCS#8, SEC 1, X.509): what Create Key Pair stores."""
    private = hasattr(key, "private_bytes")
    material = _private_material(key, fmt) if private else _public_material(key, fmt)
    if not isinstance(material, bytes):
        raise ValueError(f"{KeyFormatType(fmt).name} is no encoding of a {type(key).__name__}")
    return material


def _with_material(block: KeyBlock, wanted: int, material: bytes | TransparentKeyMaterial) -> KeyBlock:
    return dataclasses.replace(block, key_format_type=KeyFormatType(wanted), key_value=KeyValue(key_material=material))


def reformat(managed: Struct, wanted: int | None, uid: str) -> Struct:
    """``managed`` (as stored, plaintext) in Key Format Type ``wanted``; the same object when
    it already is, or when ``wanted`` is None."""
    block = getattr(managed, "key_block", None)
    if wanted is None or block is None or wanted == block.key_format_type:
        return managed
    if isinstance(block.key_value, bytes):
        raise _unsupported(wanted, f"object {uid!r}: its Key Value is wrapped")
    material = block.key_value.key_material
    algorithm = int(block.cryptographic_algorithm) if block.cryptographic_algorithm is not None else None
    if isinstance(managed, SymmetricKey) and wanted in _SYMMETRIC:
        raw = material.key if isinstance(material, TransparentKeyMaterial) else material
        new: bytes | TransparentKeyMaterial | None = (
            TransparentKeyMaterial(key=raw) if wanted == F.TRANSPARENT_SYMMETRIC_KEY else raw
        )
        return SymmetricKey(key_block=_with_material(block, wanted, new))  # type: ignore[arg-type]
    if isinstance(managed, SecretData) and wanted in (F.RAW, F.OPAQUE):
        return SecretData(
            secret_data_type=managed.secret_data_type,
            key_block=dataclasses.replace(block, key_format_type=KeyFormatType(wanted)),
        )
    fmt = int(block.key_format_type) if block.key_format_type is not None else None
    whose = f"object {uid!r}"
    if isinstance(managed, PrivateKey) and wanted in _PRIVATE_TARGETS:
        new = _private_material(load_private(fmt, material, algorithm, whose, checked=True), wanted)
        if new is not None:
            return PrivateKey(key_block=_with_material(block, wanted, new))
    elif isinstance(managed, PublicKey) and wanted in _PUBLIC_TARGETS:
        new = _public_material(load_public(fmt, material, algorithm, whose), wanted)
        if new is not None:
            return PublicKey(key_block=_with_material(block, wanted, new))
    stored = getattr(block.key_format_type, "name", block.key_format_type)
    raise _unsupported(wanted, f"{whose} (a {type(managed).__name__} stored as {stored})")


#: Keys and certificates in DER are at least this long; shorter bytes are not worth parsing.
_SMALLEST_DER_KEY = 40


def _kind(key: Any) -> str:
    name = type(key).__name__.removeprefix("_")
    for family, label in (("RSA", "RSA"), ("EllipticCurve", "EC"), ("DSA", "DSA"), ("DH", "DH")):
        if name.startswith(family):
            return f"{label} ({key.key_size} bits)"
    return name.removesuffix("PrivateKey").removesuffix("PublicKey")


def encoded_kind(material: bytes) -> tuple[str, ObjectType, KeyFormatType] | None:
    """What DER bytes are when they are a key or a certificate: a description, the Object Type
    and Key Format Type to register them with; None for anything else (raw key bytes)."""
    if len(material) < _SMALLEST_DER_KEY or material[0] != 0x30:  # every DER key is a SEQUENCE
        return None
    try:
        private = serialization.load_der_private_key(material, password=None, unsafe_skip_rsa_key_validation=True)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        pass
    else:
        if private.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption()) == material:
            return f"a PKCS#8 {_kind(private)} private key", ObjectType.PRIVATE_KEY, F.PKCS_8
        fmt = F.ECPRIVATEKEY if isinstance(private, ec.EllipticCurvePrivateKey) else F.PKCS_1
        return f"a {fmt.name} {_kind(private)} private key", ObjectType.PRIVATE_KEY, fmt
    try:
        public = serialization.load_der_public_key(material)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        pass
    else:
        if public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo) == material:
            return f"an X.509 SubjectPublicKeyInfo {_kind(public)} public key", ObjectType.PUBLIC_KEY, F.X_509
        return f"a PKCS#1 {_kind(public)} public key", ObjectType.PUBLIC_KEY, F.PKCS_1
    try:
        x509.load_der_x509_certificate(material)
    except ValueError:
        return None
    return "an X.509 certificate", ObjectType.CERTIFICATE, F.X_509


def mislabelled(material: bytes, object_type: ObjectType, fmt: Any) -> str | None:
    """What is wrong with key bytes registered under the wrong label (PKCS#8 bytes marked Raw, a
    private key as a Public Key ...), naming what they are; None when the label may be right."""
    found = encoded_kind(material)
    if found is None:
        return None
    description, right_type, right_format = found
    if (right_type, right_format) == (object_type, fmt):
        return None
    label = f"{object_type.name.replace('_', ' ').title()} with Key Format Type {getattr(fmt, 'name', fmt)}"
    if right_type == ObjectType.CERTIFICATE:
        advice = "register it as a Certificate"
    else:
        right = right_type.name.replace("_", " ").title()
        advice = f"register it as a {right} with Key Format Type {right_format.name}"
    return f"the Key Material is {description}, not a {label}: {advice}"
