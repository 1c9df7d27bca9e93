"""Sign and Signature Verify: RSA (PKCS#1 v1.5 and PSS), ECDSA, DSA, Ed25519 and Ed448.

The key decides the family of the signature; the Cryptographic Parameters (the request's, else
the key's attribute) choose within it: a Digital Signature Algorithm (SHA256_WITH_RSA_ENCRYPTION,
RSASSA_PSS, ECDSA_WITH_SHA384, ...) names the hash and padding at once, otherwise the Hashing
Algorithm and (RSA) the Padding Method do. A Cryptographic Algorithm in the parameters that
names another family than the key's is not used: CS-AC-M-3-ECC-13 verifies an ECDSA signature
with parameters naming RSA and PSS and expects Valid, so the Hashing Algorithm alone applies.

Defaults where the parameters leave a choice open:

* ECDSA without a hash: the one matching the curve (SHA-256 up to 256-bit curves, SHA-384 up
  to 384, SHA-512 above), as FIPS 186-5 and Suite B pair them. RSA and DSA name theirs.
* PSS without a Mask Generator Hashing Algorithm: the message's hash. KMIP's Table 59 says
  SHA-1, but the OASIS vectors (CS-AC-M-2 in 1.4 to 2.1) sign with MGF1 over SHA-256 under
  parameters that name only SHA-256, and RFC 8017 §9.1 recommends the same hash for both.
* PSS Salt Length omitted: the hash's length when signing (RFC 8017's usual choice); any salt
  length when verifying, since the salt length is recoverable from the encoded message and
  the vectors' signatures use the longest one (CS-AC-M-2: 222 bytes, parameters name none).

Data is the message; Digested Data (KMIP 1.4+) is its hash, signed as such (``Prehashed``).
Streamed parts gather the message and the signature is computed or checked at the final one.
An invalid signature is a successful Signature Verify with Validity Indicator Invalid.
Parameters that do not fit the key are Bad Cryptographic Parameters (2.x; Invalid Field in
1.x), valid ones OpenSSL 3 does not offer Unsupported Cryptographic Parameters (2.x;
Cryptographic Failure in 1.x), as KMIP 2.1 §6.1.55.1 lists them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.model.attributes import CryptographicParameters
from kmip_client.protocol.model.payloads.crypto import (
    SignatureVerifyRequest,
    SignatureVerifyResponse,
    SignRequest,
    SignResponse,
)
from kmip_client.protocol.spec.enums import (
    CryptographicUsageMask,
    DigitalSignatureAlgorithm,
    HashingAlgorithm,
    MaskGenerator,
    ObjectType,
    Operation,
    PaddingMethod,
    ResultReason,
    ValidityIndicator,
)

from ...engine.context import RequestContext
from ...engine.registry import operation
from .asymmetric import ParameterError, hash_of, private_key, public_key
from .digest import gathered, stream_parameters
from .keys import KeyInUse, key_for, parameters
from .streams import Stream, stream_of

R = ResultReason
D = DigitalSignatureAlgorithm
H = HashingAlgorithm
P = PaddingMethod

_RSA, _DSA, _EC, _ED = "RSA", "DSA", "ECDSA", "EdDSA"

#: Digital Signature Algorithm -> (family, hash, padding); RSASSA-PSS leaves the hash to the
#: Hashing Algorithm.
_SIGNATURE_ALGORITHMS: dict[int, tuple[str, H | None, P | None]] = {
    D.MD5_WITH_RSA_ENCRYPTION: (_RSA, H.MD5, P.PKCS1_V1_5),
    D.SHA_1_WITH_RSA_ENCRYPTION: (_RSA, H.SHA_1, P.PKCS1_V1_5),
    D.SHA_224_WITH_RSA_ENCRYPTION: (_RSA, H.SHA_224, P.PKCS1_V1_5),
    D.SHA_256_WITH_RSA_ENCRYPTION: (_RSA, H.SHA_256, P.PKCS1_V1_5),
    D.SHA_384_WITH_RSA_ENCRYPTION: (_RSA, H.SHA_384, P.PKCS1_V1_5),
    D.SHA_512_WITH_RSA_ENCRYPTION: (_RSA, H.SHA_512, P.PKCS1_V1_5),
    D.SHA3_256_WITH_RSA_ENCRYPTION: (_RSA, H.SHA3_256, P.PKCS1_V1_5),
    D.SHA3_384_WITH_RSA_ENCRYPTION: (_RSA, H.SHA3_384, P.PKCS1_V1_5),
    D.SHA3_512_WITH_RSA_ENCRYPTION: (_RSA, H.SHA3_512, P.PKCS1_V1_5),
    D.RSASSA_PSS: (_RSA, None, P.PSS),
    D.DSA_WITH_SHA_1: (_DSA, H.SHA_1, None),
    D.DSA_WITH_SHA224: (_DSA, H.SHA_224, None),
    D.DSA_WITH_SHA256: (_DSA, H.SHA_256, None),
    D.ECDSA_WITH_SHA_1: (_EC, H.SHA_1, None),
    D.ECDSA_WITH_SHA224: (_EC, H.SHA_224, None),
    D.ECDSA_WITH_SHA256: (_EC, H.SHA_256, None),
    D.ECDSA_WITH_SHA384: (_EC, H.SHA_384, None),
    D.ECDSA_WITH_SHA512: (_EC, H.SHA_512, None),
}


@dataclasses.dataclass(frozen=True, slots=True)
class _Scheme:
    """How one signature is made or checked: the hash (None for EdDSA, which hashes itself)
    and, for RSA, the padding."""

    family: str
    digest: hashes.HashAlgorithm | None
    padding: padding.AsymmetricPadding | None = None


def _family(key: PrivateKeyTypes | PublicKeyTypes) -> str:
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return _RSA
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return _EC
    if isinstance(key, (dsa.DSAPrivateKey, dsa.DSAPublicKey)):
        return _DSA
    edwards = (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey, ed448.Ed448PrivateKey, ed448.Ed448PublicKey)
    if isinstance(key, edwards):
        return _ED
    raise KmipError("this key's algorithm does not make signatures", R.INVALID_FIELD)


def _curve_hash(key: PrivateKeyTypes | PublicKeyTypes) -> type[hashes.HashAlgorithm]:
    size = key.key_size if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)) else 0
    return hashes.SHA256 if size <= 256 else hashes.SHA384 if size <= 384 else hashes.SHA512


def _scheme(params: CryptographicParameters, key: PrivateKeyTypes | PublicKeyTypes, verifying: bool) -> _Scheme:
    family = _family(key)
    hashing: Any = params.hashing_algorithm
    method: Any = params.padding_method
    if params.digital_signature_algorithm is not None:
        entry = _SIGNATURE_ALGORITHMS.get(int(params.digital_signature_algorithm))
        name = getattr(params.digital_signature_algorithm, "name", params.digital_signature_algorithm)
        if entry is None:
            raise ParameterError(f"Digital Signature Algorithm {name} is not supported", unsupported=True)
        if entry[0] != family:
            raise ParameterError(f"Digital Signature Algorithm {name} does not fit this {family} key")
        hashing = entry[1] if entry[1] is not None else hashing
        method = entry[2]
    if family == _ED:
        return _Scheme(family, None)
    if family == _EC:
        return _Scheme(family, hash_of(hashing, _curve_hash(key)))
    digest = hash_of(hashing)
    if family == _DSA:
        return _Scheme(family, digest)
    return _Scheme(family, digest, _rsa_padding(params, method, digest, verifying))


def _rsa_padding(
    params: CryptographicParameters, method: Any, digest: hashes.HashAlgorithm, verifying: bool
) -> padding.AsymmetricPadding:
    if method == P.PKCS1_V1_5:
        return padding.PKCS1v15()
    if method != P.PSS:
        shown = "none" if method is None else getattr(method, "name", method)
        raise ParameterError(f"RSA signatures use the PSS or PKCS1 v1.5 Padding Method, not {shown}")
    if params.mask_generator not in (None, MaskGenerator.MGF1):
        raise ParameterError("PSS supports the MGF1 Mask Generator only")
    if params.trailer_field not in (None, 1):
        raise ParameterError("PSS supports the standard trailer field (1, the byte 0xBC) only", unsupported=True)
    mgf_hash = hash_of(params.mask_generator_hashing_algorithm, type(digest))
    salt: Any = params.salt_length
    if salt is None:
        salt = padding.PSS.AUTO if verifying else padding.PSS.DIGEST_LENGTH
    elif salt < 0:
        raise ParameterError("the Salt Length must not be negative")
    return padding.PSS(mgf=padding.MGF1(mgf_hash), salt_length=salt)


def _message(scheme: _Scheme, data: bytes | None, digested: bytes | None) -> tuple[bytes, Any]:
    """What is signed and the algorithm argument ``cryptography`` takes for it."""
    if digested is None:
        return data or b"", scheme.digest
    if scheme.digest is None:
        raise ParameterError("EdDSA signs the message itself: send Data, not Digested Data")
    if len(digested) != scheme.digest.digest_size:
        raise ParameterError(
            f"Digested Data is {len(digested)} bytes; a {scheme.digest.name} digest is {scheme.digest.digest_size}"
        )
    return digested, utils.Prehashed(scheme.digest)


def _begun(
    ctx: RequestContext, op: Operation, request: Any, *, usage: CryptographicUsageMask, protects: bool, action: str
) -> tuple[Stream | None, KeyInUse, CryptographicParameters]:
    """The stream of a part (or None), the key checked for ``usage`` at every part (a stream
    fails at its first part, and its state and dates are checked again at the last), and the
    effective parameters: the first part's for the whole stream."""
    stream = stream_of(ctx, op, request)
    uid = request.unique_identifier
    if stream is not None:
        if request.digested_data is not None:
            raise KmipError("Digested Data is one value: it cannot be streamed", R.INVALID_FIELD)
        if not stream.new and uid is not None and ctx.uid(uid) != stream.key_uid:
            raise KmipError("a later part of a stream may not name another key than its first part", R.INVALID_FIELD)
        uid = stream.key_uid if not stream.new else uid
    key = key_for(ctx, uid, usage=usage, protects=protects, action=action)
    if stream is not None and stream.new:
        stream.key_uid = key.uid
    return stream, key, parameters(stream_parameters(stream, request.cryptographic_parameters), key)


def _input(ctx: RequestContext, stream: Stream | None, request: Any, what: str) -> bytes | None:
    """The message (all parts of a stream), b"" beside Digested Data, or None while a stream
    expects more parts (this one saved)."""
    if request.digested_data is not None:  # a whole operation (see _begun)
        return request.data or b""
    return gathered(ctx, stream, request.data, what=what)


def _not_type(ctx: RequestContext, key: KeyInUse, wanted: ObjectType, action: str) -> KmipError:
    shown = ObjectType(key.object_type).name.replace("_", " ").title()
    return KmipError(
        f"cannot {action} with object {key.uid!r}: it is a {shown}, not a {wanted.name.replace('_', ' ').title()}",
        R.INVALID_OBJECT_TYPE if ctx.v2 else R.ILLEGAL_OPERATION,
    )


@operation(Operation.SIGN, writes=False)
def sign(ctx: RequestContext, request: SignRequest) -> SignResponse:
    try:
        return _sign(ctx, request)
    except ParameterError as exc:
        raise exc.for_version(ctx) from None


def _sign(ctx: RequestContext, request: SignRequest) -> SignResponse:
    stream, key, params = _begun(
        ctx, Operation.SIGN, request, usage=CryptographicUsageMask.SIGN, protects=True, action="sign"
    )
    if key.object_type != ObjectType.PRIVATE_KEY:
        raise _not_type(ctx, key, ObjectType.PRIVATE_KEY, "sign")
    private = private_key(key)
    scheme = _scheme(params, private, verifying=False)
    data = _input(ctx, stream, request, "Data to sign")
    if data is None:
        assert stream is not None
        return SignResponse(unique_identifier=key.uid, correlation_value=stream.correlation_value)
    message, algorithm = _message(scheme, data, request.digested_data)
    try:
        signature = _signed(private, scheme, message, algorithm)
    except ValueError:
        # e.g. a PSS Salt Length too long for the key, or a hash too long for it.
        raise ParameterError("these Cryptographic Parameters cannot sign with this key") from None
    return SignResponse(unique_identifier=key.uid, signature_data=signature)


def _signed(private: PrivateKeyTypes, scheme: _Scheme, message: bytes, algorithm: Any) -> bytes:
    if isinstance(private, rsa.RSAPrivateKey) and scheme.padding is not None:
        return private.sign(message, scheme.padding, algorithm)
    if isinstance(private, ec.EllipticCurvePrivateKey):
        return private.sign(message, ec.ECDSA(algorithm))  # DER, as KMIP carries it
    if isinstance(private, dsa.DSAPrivateKey):
        return private.sign(message, algorithm)
    if isinstance(private, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return private.sign(message)
    raise KmipError("this key's algorithm does not make signatures", R.INVALID_FIELD)


@operation(Operation.SIGNATURE_VERIFY, writes=False)
def signature_verify(ctx: RequestContext, request: SignatureVerifyRequest) -> SignatureVerifyResponse:
    try:
        return _signature_verify(ctx, request)
    except ParameterError as exc:
        raise exc.for_version(ctx) from None


def _signature_verify(ctx: RequestContext, request: SignatureVerifyRequest) -> SignatureVerifyResponse:
    stream, key, params = _begun(
        ctx,
        Operation.SIGNATURE_VERIFY,
        request,
        usage=CryptographicUsageMask.VERIFY,
        protects=False,
        action="verify a signature",
    )
    if key.object_type not in (ObjectType.PUBLIC_KEY, ObjectType.PRIVATE_KEY):
        raise _not_type(ctx, key, ObjectType.PUBLIC_KEY, "verify a signature")
    public = public_key(key)
    scheme = _scheme(params, public, verifying=True)
    signature = request.signature_data
    if stream is not None:
        if signature is None:
            signature = stream.values.get("signature")
        elif not stream.final:  # a client may send it with an earlier part
            stream.values["signature"] = signature
    data = _input(ctx, stream, request, "Data to verify")
    if data is None:
        assert stream is not None
        return SignatureVerifyResponse(unique_identifier=key.uid, correlation_value=stream.correlation_value)
    if signature is None:
        raise KmipError("Signature Verify needs the Signature Data", R.INVALID_FIELD)
    message, algorithm = _message(scheme, data, request.digested_data)
    valid = _verified(public, scheme, signature, message, algorithm)
    indicator = ValidityIndicator.VALID if valid else ValidityIndicator.INVALID
    return SignatureVerifyResponse(unique_identifier=key.uid, validity_indicator=indicator)


def _verified(public: PublicKeyTypes, scheme: _Scheme, signature: bytes, message: bytes, algorithm: Any) -> bool:
    try:
        if isinstance(public, rsa.RSAPublicKey) and scheme.padding is not None:
            public.verify(signature, message, scheme.padding, algorithm)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, message, ec.ECDSA(algorithm))
        elif isinstance(public, dsa.DSAPublicKey):
            public.verify(signature, message, algorithm)
        elif isinstance(public, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            public.verify(signature, message)
        else:
            raise KmipError("this key's algorithm does not check signatures", R.INVALID_FIELD)
    except InvalidSignature:
        return False
    return True
