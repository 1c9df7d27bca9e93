"""RSA encryption and the loading of private and public keys for the cryptographic operations.

A :class:`~.keys.KeyInUse` holds a Key Block as it was registered or created: encoded (PKCS#1,
PKCS#8, SEC 1 EC Private Key, X.509 SubjectPublicKeyInfo, Raw Ed25519/Ed448) or transparent
(the key's numbers as Big Integers). :func:`private_key` and :func:`public_key` turn it into a
``cryptography`` key object for the one call that needs it; nothing is kept afterwards.
"""

from __future__ import annotations

from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dh, dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.model.attributes import CryptographicParameters
from kmip_client.protocol.model.objects import TransparentKeyMaterial
from kmip_client.protocol.spec.enums import (
    CryptographicAlgorithm,
    HashingAlgorithm,
    KeyFormatType,
    MaskGenerator,
    ObjectType,
    PaddingMethod,
    RecommendedCurve,
    ResultReason,
)

from ...engine.context import RequestContext
from .keys import KeyInUse

R = ResultReason
F = KeyFormatType
A = CryptographicAlgorithm
H = HashingAlgorithm

#: KMIP Hashing Algorithm -> the ``cryptography`` hash (MD2, MD4, RIPEMD-160, Tiger and
#: Whirlpool are not offered by OpenSSL 3's default provider, so they are not listed).
HASHES: dict[int, type[hashes.HashAlgorithm]] = {
    H.MD5: hashes.MD5,
    H.SHA_1: hashes.SHA1,
    H.SHA_224: hashes.SHA224,
    H.SHA_256: hashes.SHA256,
    H.SHA_384: hashes.SHA384,
    H.SHA_512: hashes.SHA512,
    H.SHA_512_224: hashes.SHA512_224,
    H.SHA_512_256: hashes.SHA512_256,
    H.SHA3_224: hashes.SHA3_224,
    H.SHA3_256: hashes.SHA3_256,
    H.SHA3_384: hashes.SHA3_384,
    H.SHA3_512: hashes.SHA3_512,
}

#: KMIP Recommended Curve -> the ``cryptography`` curve, for transparent EC keys (the binary
#: K- and B-curves are gone from cryptography 46 and later).
CURVES: dict[int, type[ec.EllipticCurve]] = {
    RecommendedCurve.P_192: ec.SECP192R1,
    RecommendedCurve.P_224: ec.SECP224R1,
    RecommendedCurve.P_256: ec.SECP256R1,
    RecommendedCurve.P_384: ec.SECP384R1,
    RecommendedCurve.P_521: ec.SECP521R1,
    RecommendedCurve.SECP256K1: ec.SECP256K1,
    RecommendedCurve.BRAINPOOLP256R1: ec.BrainpoolP256R1,
    RecommendedCurve.BRAINPOOLP384R1: ec.BrainpoolP384R1,
    RecommendedCurve.BRAINPOOLP512R1: ec.BrainpoolP512R1,
}

_RSA_PRIVATE = F.TRANSPARENT_RSA_PRIVATE_KEY
_RSA_PUBLIC = F.TRANSPARENT_RSA_PUBLIC_KEY
_DSA_PRIVATE = F.TRANSPARENT_DSA_PRIVATE_KEY
_DSA_PUBLIC = F.TRANSPARENT_DSA_PUBLIC_KEY
_DH_PRIVATE = F.TRANSPARENT_DH_PRIVATE_KEY
_DH_PUBLIC = F.TRANSPARENT_DH_PUBLIC_KEY
#: KMIP 1.x names a transparent EC key by the algorithm it serves; 2.x has one EC structure.
EC_PRIVATE_FORMATS = frozenset(
    {
        F.TRANSPARENT_EC_PRIVATE_KEY,
        F.TRANSPARENT_ECDSA_PRIVATE_KEY,
        F.TRANSPARENT_ECDH_PRIVATE_KEY,
        F.TRANSPARENT_ECMQV_PRIVATE_KEY,
    }
)
EC_PUBLIC_FORMATS = frozenset(
    {
        F.TRANSPARENT_EC_PUBLIC_KEY,
        F.TRANSPARENT_ECDSA_PUBLIC_KEY,
        F.TRANSPARENT_ECDH_PUBLIC_KEY,
        F.TRANSPARENT_ECMQV_PUBLIC_KEY,
    }
)
_ENCODED_PRIVATE = frozenset({F.PKCS_1, F.PKCS_8, F.ECPRIVATEKEY})
_ENCODED_PUBLIC = frozenset({F.PKCS_1, F.X_509})


class ParameterError(KmipError):
    """Cryptographic Parameters that do not fit the key or the operation, or (``unsupported``)
    valid ones this server does not implement. KMIP 2.x has a Result Reason for each, Bad and
    Unsupported Cryptographic Parameters; 1.x has not, and ``reason`` is the 1.x one, so a
    handler that does not call :meth:`for_version` still answers every version sensibly."""

    def __init__(self, message: str, *, unsupported: bool = False, v1: ResultReason | None = None) -> None:
        super().__init__(message, v1 or (R.CRYPTOGRAPHIC_FAILURE if unsupported else R.INVALID_FIELD))
        self.unsupported = unsupported

    def for_version(self, ctx: RequestContext) -> KmipError:
        """The error with the Result Reason of the client's KMIP version."""
        wanted = R.UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS if self.unsupported else R.BAD_CRYPTOGRAPHIC_PARAMETERS
        return KmipError(self.message, ctx.reason(wanted, self.reason))


def hash_of(algorithm: Any, default: type[hashes.HashAlgorithm] | None = None) -> hashes.HashAlgorithm:
    """The ``cryptography`` hash a Hashing Algorithm names (``default`` when it is None)."""
    if algorithm is None:
        if default is None:
            raise ParameterError("the Cryptographic Parameters name no Hashing Algorithm")
        return default()
    try:
        return HASHES[int(algorithm)]()
    except KeyError:
        name = getattr(algorithm, "name", algorithm)
        raise ParameterError(f"Hashing Algorithm {name} is not supported", unsupported=True) from None


def _unreadable(whose: str, fmt: int | None) -> KmipError:
    # The loader's own message may quote parts of the key, so it is not passed on.
    name = KeyFormatType(fmt).name if fmt is not None else "unnamed"
    return KmipError(f"the key material of {whose} is not a valid {name} key", R.INVALID_FIELD)


def _unsupported(whose: str, fmt: int | None) -> KmipError:
    name = KeyFormatType(fmt).name if fmt is not None else "unnamed"
    return KmipError(
        f"{whose}: Key Format Type {name} is not supported for this operation", R.KEY_FORMAT_TYPE_NOT_SUPPORTED
    )


def _curve(material: TransparentKeyMaterial, whose: str) -> ec.EllipticCurve:
    curve = CURVES.get(int(material.recommended_curve)) if material.recommended_curve is not None else None
    if curve is None:
        raise KmipError(f"{whose}: its Recommended Curve is not supported", R.CRYPTOGRAPHIC_FAILURE)
    return curve()


def _transparent_private(fmt: int, m: TransparentKeyMaterial, whose: str, skip_rsa_check: bool) -> PrivateKeyTypes:
    if fmt == _RSA_PRIVATE:
        n, e, d = m.modulus, m.public_exponent, m.private_exponent
        if n is None or e is None or d is None:
            raise _unreadable(whose, fmt)
        # KMIP makes only Modulus required; the CRT values follow from n, e and d.
        p, q = (m.p, m.q) if m.p and m.q else rsa.rsa_recover_prime_factors(n, e, d)
        numbers = rsa.RSAPrivateNumbers(
            p=p,
            q=q,
            d=d,
            dmp1=m.prime_exponent_p or rsa.rsa_crt_dmp1(d, p),
            dmq1=m.prime_exponent_q or rsa.rsa_crt_dmq1(d, q),
            iqmp=m.crt_coefficient or rsa.rsa_crt_iqmp(p, q),
            public_numbers=rsa.RSAPublicNumbers(e, n),
        )
        return numbers.private_key(unsafe_skip_rsa_key_validation=skip_rsa_check)
    if fmt == _DSA_PRIVATE:
        if m.p is None or m.q is None or m.g is None or m.x is None:
            raise _unreadable(whose, fmt)
        y = m.y if m.y is not None else pow(m.g, m.x, m.p)
        return dsa.DSAPrivateNumbers(m.x, dsa.DSAPublicNumbers(y, dsa.DSAParameterNumbers(m.p, m.q, m.g))).private_key()
    if fmt in EC_PRIVATE_FORMATS:
        if m.d is None:
            raise _unreadable(whose, fmt)
        return ec.derive_private_key(m.d, _curve(m, whose))
    if fmt == _DH_PRIVATE:
        if m.p is None or m.g is None or m.x is None:
            raise _unreadable(whose, fmt)
        y = m.y if m.y is not None else pow(m.g, m.x, m.p)
        return dh.DHPrivateNumbers(m.x, dh.DHPublicNumbers(y, dh.DHParameterNumbers(m.p, m.g, m.q))).private_key()
    raise _unsupported(whose, fmt)


def _transparent_public(fmt: int, m: TransparentKeyMaterial, whose: str) -> PublicKeyTypes:
    if fmt == _RSA_PUBLIC:
        if m.modulus is None or m.public_exponent is None:
            raise _unreadable(whose, fmt)
        return rsa.RSAPublicNumbers(m.public_exponent, m.modulus).public_key()
    if fmt == _DSA_PUBLIC:
        if m.p is None or m.q is None or m.g is None or m.y is None:
            raise _unreadable(whose, fmt)
        return dsa.DSAPublicNumbers(m.y, dsa.DSAParameterNumbers(m.p, m.q, m.g)).public_key()
    if fmt in EC_PUBLIC_FORMATS:
        if not m.q_string:
            raise _unreadable(whose, fmt)
        return ec.EllipticCurvePublicKey.from_encoded_point(_curve(m, whose), m.q_string)
    if fmt == _DH_PUBLIC:
        if m.p is None or m.g is None or m.y is None:
            raise _unreadable(whose, fmt)
        return dh.DHPublicNumbers(m.y, dh.DHParameterNumbers(m.p, m.g, m.q)).public_key()
    raise _unsupported(whose, fmt)


def _raw_edwards_private(material: bytes, algorithm: int | None, whose: str) -> PrivateKeyTypes:
    if algorithm == A.ED25519:
        return ed25519.Ed25519PrivateKey.from_private_bytes(material)
    if algorithm == A.ED448:
        return ed448.Ed448PrivateKey.from_private_bytes(material)
    raise _unsupported(whose, F.RAW)


def _raw_edwards_public(material: bytes, algorithm: int | None, whose: str) -> PublicKeyTypes:
    if algorithm == A.ED25519:
        return ed25519.Ed25519PublicKey.from_public_bytes(material)
    if algorithm == A.ED448:
        return ed448.Ed448PublicKey.from_public_bytes(material)
    raise _unsupported(whose, F.RAW)


def load_private(
    fmt: int | None, material: Any, algorithm: int | None, whose: str, *, checked: bool
) -> PrivateKeyTypes:
    """The ``cryptography`` object of private key material in any supported format.

    ``checked``: the key entered the server before and was checked then, so OpenSSL's RSA
    consistency check (RSA_check_key, which proves that the primes and CRT values fit the
    modulus: about 60 ms for a 2048-bit key, a hundred signatures' worth) is not run again.
    The check is what keeps a key with a wrong CRT value from leaking its factors through a
    faulty signature; it runs when a key is registered (:func:`check_private`), and the stored
    value cannot change afterwards without failing custody's authenticated unwrap.
    """
    try:
        if isinstance(material, TransparentKeyMaterial) and fmt is not None:
            return _transparent_private(fmt, material, whose, checked)
        if isinstance(material, bytes) and fmt in _ENCODED_PRIVATE:
            # load_der_private_key reads PKCS#8 and the traditional PKCS#1 and SEC 1 forms.
            return serialization.load_der_private_key(material, password=None, unsafe_skip_rsa_key_validation=checked)
        if isinstance(material, bytes) and fmt == F.RAW:
            return _raw_edwards_private(material, algorithm, whose)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise _unreadable(whose, fmt) from None
    raise _unsupported(whose, fmt)


def check_private(fmt: int, material: Any, algorithm: int | None) -> PrivateKeyTypes:
    """Private key material a client registers, loaded with every consistency check."""
    return load_private(fmt, material, algorithm, "the registered Private Key", checked=False)


def private_key(key: KeyInUse) -> PrivateKeyTypes:
    """The private key object of a Private Key (any supported format)."""
    if key.object_type != ObjectType.PRIVATE_KEY:
        raise KmipError(f"object {key.uid!r} is not a Private Key", R.ILLEGAL_OPERATION)
    return load_private(key.key_format_type, key.material, key.algorithm, f"object {key.uid!r}", checked=True)


def load_public(fmt: int | None, material: Any, algorithm: int | None, whose: str) -> PublicKeyTypes:
    """The ``cryptography`` object of public key material in any supported format."""
    try:
        if isinstance(material, TransparentKeyMaterial) and fmt is not None:
            return _transparent_public(fmt, material, whose)
        if isinstance(material, bytes) and fmt in _ENCODED_PUBLIC:
            # load_der_public_key reads SubjectPublicKeyInfo and the PKCS#1 RSAPublicKey form.
            return serialization.load_der_public_key(material)
        if isinstance(material, bytes) and fmt == F.RAW:
            return _raw_edwards_public(material, algorithm, whose)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise _unreadable(whose, fmt) from None
    raise _unsupported(whose, fmt)


def public_key(key: KeyInUse) -> PublicKeyTypes:
    """The public key object of a Public Key, or the public half of a Private Key."""
    if key.object_type == ObjectType.PRIVATE_KEY:
        return private_key(key).public_key()
    if key.object_type != ObjectType.PUBLIC_KEY:
        raise KmipError(f"object {key.uid!r} is not a Public or Private Key", R.ILLEGAL_OPERATION)
    return load_public(key.key_format_type, key.material, key.algorithm, f"object {key.uid!r}")


def _rsa_padding(params: CryptographicParameters) -> padding.AsymmetricPadding:
    """OAEP or PKCS#1 v1.5 encryption padding. OAEP's omitted hashes are SHA-1, the default of
    RSAES-OAEP-params (RFC 8017 §A.2.1) and of KMIP (2.1 Table 59, Mask Generator Hashing
    Algorithm); an omitted P Source is the empty label."""
    method = params.padding_method
    if method == PaddingMethod.PKCS1_V1_5:
        return padding.PKCS1v15()
    if method == PaddingMethod.OAEP:
        if params.mask_generator not in (None, MaskGenerator.MGF1):
            raise ParameterError("OAEP supports the MGF1 Mask Generator only")
        return padding.OAEP(
            mgf=padding.MGF1(hash_of(params.mask_generator_hashing_algorithm, hashes.SHA1)),
            algorithm=hash_of(params.hashing_algorithm, hashes.SHA1),
            label=params.p_source or None,
        )
    if method is None:
        raise ParameterError("RSA encryption needs a Padding Method (OAEP or PKCS1 v1.5)")
    raise ParameterError(f"Padding Method {getattr(method, 'name', method)} does not encrypt with RSA")


def rsa_encrypt(key: KeyInUse, params: CryptographicParameters, data: bytes) -> bytes:
    """``data`` encrypted with the RSA public key of ``key`` (a Public Key, or a Private Key's public half)."""
    public = public_key(key)
    if not isinstance(public, rsa.RSAPublicKey):
        raise KmipError(f"object {key.uid!r} is not an RSA key", R.INVALID_FIELD)
    pad = _rsa_padding(params)
    try:
        return public.encrypt(data, pad)
    except ValueError:
        raise KmipError(
            f"{len(data)} bytes are too many to encrypt with this {public.key_size}-bit RSA key and padding",
            R.INVALID_FIELD,
        ) from None


def rsa_decrypt(key: KeyInUse, params: CryptographicParameters, data: bytes) -> bytes:
    """``data`` decrypted with the RSA private key of ``key``.

    Every failure of the decryption itself is the same Cryptographic Failure with the same
    message, so that a caller learns nothing about why (a padding oracle: Bleichenbacher,
    Manger)."""
    private = private_key(key)
    if not isinstance(private, rsa.RSAPrivateKey):
        raise KmipError(f"object {key.uid!r} is not an RSA key", R.INVALID_FIELD)
    pad = _rsa_padding(params)
    try:
        return private.decrypt(data, pad)
    except ValueError:
        raise KmipError("decryption failed", R.CRYPTOGRAPHIC_FAILURE) from None
