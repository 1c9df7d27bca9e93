"""Derive Key (KMIP 1.4 §4.6, 2.1 §6.1.14): a new Symmetric Key or Secret Data computed from
objects the server holds, stored like the objects Create makes.

The base objects (each Unique Identifier of the request; never the ID Placeholder, which the
specification excludes here) are Symmetric Keys or Secret Data with Derive Key in their
Cryptographic Usage Mask, Active (deriving applies protection, KMIP 1.4 §3.22). Their roles:

* the *derivation key* is the Symmetric Key among them, or, when there is none, the first
  Secret Data (a password for PBKDF2, a key-derivation key for the others);
* a further Secret Data object supplies the *derivation data* in place of the Derivation Data
  field; both at once is the ambiguity KMIP 1.4 §11.7 answers with Invalid Message.

What each Derivation Method computes (:mod:`.kdf` holds the functions):

* PBKDF2: PBKDF2-HMAC over the derivation key, with the Salt and Iteration Count; the Hashing
  Algorithm of the Cryptographic Parameters, SHA-1 by default (RFC 8018's default PRF).
* HASH: the hash (Cryptographic Parameters' Hashing Algorithm) of the derivation key.
* HMAC: HMAC of the derivation data under the derivation key; the hash is the key's own
  algorithm (HMAC-SHA256 and so on, as KMIP says: "the attributes of the derivation key provide
  enough information about the PRF"), else the Cryptographic Parameters' Hashing Algorithm.
* ENCRYPT: the derivation data encrypted under the derivation key with the Cryptographic
  Parameters' algorithm, Block Cipher Mode and Padding Method and the Initialization Vector (an
  absent IV is the zero block: KMIP says an empty IV is assumed). Authenticated modes are refused.
* NIST800-108-C / -F / -DPI: SP 800-108 in counter, feedback or double-pipeline iteration mode.
  The PRF is HMAC with the Cryptographic Parameters' Hashing Algorithm or the key's HMAC
  algorithm, else CMAC when the algorithm is AES; the Derivation Data is the whole fixed input;
  the Counter Length (bits) is the counter's width, 32 by default (0: no counter, feedback and
  double-pipeline only); the Initialization Vector is the feedback mode's IV.
* HKDF (KMIP 2.x): HKDF over the derivation key with the Salt and the derivation data as info;
  SHA-256 unless the Cryptographic Parameters name another hash.

The output is Cryptographic Length bits (whole bytes); asking for more than a method gives is
an error. The Cryptographic Parameters are the request's, else the derivation key's attribute.
The new object gets a Derivation Base Object link to each base, each base a Derived Key link to
it, and its Original Creation Date is its Initial Date (KMIP 1.4 §3.43).
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import hashes

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.model import Struct
from kmip_client.protocol.model.attributes import CryptographicParameters, Link
from kmip_client.protocol.model.objects import KeyBlock, KeyValue, SecretData, SymmetricKey
from kmip_client.protocol.model.payloads.lifecycle import DeriveKeyRequest, DeriveKeyResponse
from kmip_client.protocol.model.payloads.structures import DerivationParameters
from kmip_client.protocol.spec.enums import (
    CryptographicAlgorithm,
    CryptographicUsageMask,
    DerivationMethod,
    KeyFormatType,
    LinkType,
    ObjectType,
    Operation,
    ResultReason,
    SecretDataType,
)

from ...engine.context import RequestContext
from ...engine.registry import operation
from ...objects.attribute_set import AttributeSet
from ..attribute_input import apply_initial
from ..common import ManagedObject, date_attribute, destroyed, load_object
from ..creation import SECRET_DATA_BITS, _key_block, _symmetric_parameters, key_size, store_new_object, with_odd_parity
from ..templates import requested_attributes
from . import ciphers, kdf
from .asymmetric import hash_of
from .keys import PROTECT_STATES, KeyInUse, key_for, parameters, unusable_state
from .mac import HMAC_HASHES as _HMAC_HASHES

R = ResultReason
M = DerivationMethod
A = CryptographicAlgorithm

#: A bound on PBKDF2's work per request: one request must not hold a worker for minutes. Ten
#: million iterations is several times what current guidance asks of password hashing.
MAX_PBKDF2_ITERATIONS = 10_000_000

_BASE_TYPES = frozenset({int(ObjectType.SYMMETRIC_KEY), int(ObjectType.SECRET_DATA)})
#: KMIP 1.x defines methods 1 to 7; Asymmetric Key, AWS Signature Version 4 and HKDF are 2.x's.
_V1_METHODS = frozenset({M.PBKDF2, M.HASH, M.HMAC, M.ENCRYPT, M.NIST800_108_C, M.NIST800_108_F, M.NIST800_108_DPI})
_NOT_OFFERED = frozenset({M.ASYMMETRIC_KEY, M.AWS_SIGNATURE_VERSION_4})
#: Methods of one input: they derive from the derivation key and take no derivation data.
_SINGLE_INPUT = frozenset({M.PBKDF2, M.HASH})


def _invalid(ctx: RequestContext, message: str) -> KmipError:
    """Invalid Derivation Method or Parameters: Invalid Field in KMIP 1.4 §11.7 and in 2.x."""
    return KmipError(message, R.INVALID_FIELD)


def _method(ctx: RequestContext, given: Any) -> M:
    try:
        method = M(int(given)) if given is not None else None
    except ValueError:
        method = None
    if method is None or (not ctx.v2 and method not in _V1_METHODS):
        raise _invalid(ctx, f"Derivation Method {getattr(given, 'name', given)} is not a method of this KMIP version")
    if method in _NOT_OFFERED:
        raise KmipError(
            f"the {method.name} derivation method is not supported",
            ctx.reason(R.FEATURE_NOT_SUPPORTED, R.INVALID_FIELD),
        )
    return method


def _object_type(ctx: RequestContext, given: Any) -> ObjectType:
    if given in (ObjectType.SYMMETRIC_KEY, ObjectType.SECRET_DATA):
        return ObjectType(given)
    raise KmipError(
        "Derive Key makes a Symmetric Key or Secret Data; the request's Object Type is neither",
        ctx.reason(R.INVALID_OBJECT_TYPE, R.INVALID_FIELD),
    )


def _base(ctx: RequestContext, given: Any) -> tuple[ManagedObject, KeyInUse]:
    """A base object, locked and with all its attributes (it gets a Derived Key link), checked with
    Derive Key's reasons, and its value unwrapped (a :class:`KeyInUse` holds only the attributes
    an operation uses)."""
    if not isinstance(given, str):
        raise _invalid(
            ctx, "Derive Key names its base objects by Unique Identifier (the ID Placeholder may not stand in)"
        )
    obj = load_object(ctx, given, for_update=True)
    if obj.destroyed:
        raise destroyed(ctx, obj.uid, "has been destroyed; its value is gone")
    if obj.record.object_type not in _BASE_TYPES:
        raise KmipError(
            f"object {obj.uid!r} is a {ObjectType(obj.record.object_type).name.replace('_', ' ').title()}: "
            "keys are derived from Symmetric Keys and Secret Data",
            ctx.reason(R.INVALID_OBJECT_TYPE, R.INVALID_FIELD),
        )
    if obj.state not in PROTECT_STATES:
        raise unusable_state(ctx, obj, "derive a key")
    mask = obj.attributes.first("Cryptographic Usage Mask")
    if mask is None or not int(mask) & CryptographicUsageMask.DERIVE_KEY:
        raise KmipError(
            f"object {obj.uid!r} may not be used to derive keys: its Cryptographic Usage Mask lacks DERIVE_KEY",
            ctx.reason(R.INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK, R.INVALID_FIELD),
        )
    return obj, key_for(ctx, obj.uid, usage=CryptographicUsageMask.DERIVE_KEY, protects=True, action="derive a key")


def _roles(
    ctx: RequestContext, bases: list[KeyInUse], method: M, given_data: bytes | None
) -> tuple[KeyInUse, bytes | None]:
    """The derivation key and the derivation data (field or Secret Data object) of the request."""
    symmetric = [b for b in bases if b.object_type == ObjectType.SYMMETRIC_KEY]
    if len(symmetric) > 1 or len(bases) > 2:
        raise _invalid(ctx, "Derive Key takes one derivation key and at most one Secret Data holding the data")
    key = symmetric[0] if symmetric else bases[0]
    others = [b for b in bases if b is not key]
    data_object = others[0].raw() if others else None
    ambiguous = data_object is not None or (method in _SINGLE_INPUT and key.object_type == ObjectType.SECRET_DATA)
    if given_data is not None and ambiguous:
        raise KmipError(
            "the derivation data is given twice: in Derivation Data and by a Secret Data object", R.INVALID_MESSAGE
        )
    if method in _SINGLE_INPUT and (given_data is not None or data_object is not None):
        raise _invalid(ctx, f"{method.name} derives from the derivation key alone; it takes no Derivation Data")
    return key, given_data if given_data is not None else data_object


def _new_object_size(ctx: RequestContext, object_type: ObjectType, attrs: AttributeSet) -> tuple[int | None, int, int]:
    """(algorithm, length in bits, bytes to derive) of the new object, checked as Create checks them."""
    if object_type == ObjectType.SYMMETRIC_KEY:
        algorithm, bits = _symmetric_parameters(ctx, attrs, None)
        return algorithm, bits, key_size(algorithm, bits)
    for name in ("Cryptographic Algorithm", "Cryptographic Parameters"):
        if name in attrs:
            raise KmipError(
                f"Secret Data has no {name}: send the Cryptographic Length alone",
                ctx.reason(R.INVALID_ATTRIBUTE_VALUE, R.INVALID_FIELD),
            )
    bits = attrs.first("Cryptographic Length")
    low, high = SECRET_DATA_BITS
    if bits is None:
        raise KmipError("Derive Key needs the Cryptographic Length of the new object", R.INVALID_FIELD)
    if int(bits) % 8 or not low <= int(bits) <= high:
        raise KmipError(
            f"derived Secret Data is {low} to {high} bits long, in whole bytes; not {bits}",
            ctx.reason(R.INVALID_ATTRIBUTE_VALUE, R.INVALID_FIELD),
        )
    return None, int(bits), int(bits) // 8


def _required(ctx: RequestContext, value: Any, what: str, method: M) -> Any:
    if value is None:
        raise _invalid(ctx, f"the {method.name} derivation needs {what} in the Derivation Parameters")
    return value


def _prf(ctx: RequestContext, crypto: CryptographicParameters, key: KeyInUse) -> kdf.Prf:
    if crypto.hashing_algorithm is not None:
        return kdf.Prf(hash_of(crypto.hashing_algorithm))
    for algorithm in (crypto.cryptographic_algorithm, key.algorithm):
        if algorithm is not None and int(algorithm) in _HMAC_HASHES:
            return kdf.Prf(_HMAC_HASHES[int(algorithm)]())
    if crypto.cryptographic_algorithm == A.AES:
        return kdf.Prf(None)
    raise _invalid(ctx, "an SP 800-108 derivation needs a PRF: a Hashing Algorithm (HMAC) or the AES algorithm (CMAC)")


def _encrypt(
    ctx: RequestContext, crypto: CryptographicParameters, key: bytes, iv: bytes | None, data: bytes, size: int
) -> bytes:
    try:
        suite = ciphers.suite_for(crypto.cryptographic_algorithm, crypto.block_cipher_mode)
        if suite.authenticated:
            raise ciphers.CipherError(ciphers.Fault.UNSUPPORTED, f"{suite.name} is authenticated: not a key derivation")
        ciphers.check_key(suite, key)
        if suite.iv_sizes is not None and not iv:
            iv = bytes(suite.random_iv_size)
        ciphers.check_iv(suite, iv)
        job = ciphers.Job(key=key, iv=iv, data=data, padding=ciphers.padding_for(suite, crypto.padding_method))
        out, _ = suite.encrypt(suite, job)
    except ciphers.CipherError as exc:
        if exc.fault is ciphers.Fault.UNSUPPORTED:
            reason = ctx.reason(R.UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS, R.INVALID_FIELD)
        else:
            reason = ctx.reason(R.BAD_CRYPTOGRAPHIC_PARAMETERS, R.INVALID_FIELD)
        raise KmipError(f"the ENCRYPT derivation: {exc}", reason) from None
    if size > len(out):
        raise kdf.TooLong(f"the ENCRYPT derivation gives {len(out) * 8} bits; {size * 8} were asked for")
    return out[:size]


def _derive(
    ctx: RequestContext, method: M, params: DerivationParameters, key: KeyInUse, data: bytes | None, size: int
) -> bytes:
    crypto = parameters(params.cryptographic_parameters, key)
    secret = key.raw()
    if method == M.PBKDF2:
        salt = _required(ctx, params.salt, "a Salt", method)
        iterations = int(_required(ctx, params.iteration_count, "an Iteration Count", method))
        if not 1 <= iterations <= MAX_PBKDF2_ITERATIONS:
            raise _invalid(ctx, f"the Iteration Count must be 1 to {MAX_PBKDF2_ITERATIONS}, not {iterations}")
        return kdf.pbkdf2(hash_of(crypto.hashing_algorithm, hashes.SHA1), secret, salt, iterations, size)
    if method == M.HASH:
        return kdf.digest(hash_of(crypto.hashing_algorithm), secret, size)
    if method == M.HKDF:
        info = data if data is not None else b""
        return kdf.hkdf(hash_of(crypto.hashing_algorithm, hashes.SHA256), secret, params.salt, info, size)
    data = _required(ctx, data, "Derivation Data (or a Secret Data object holding it)", method)
    if method == M.HMAC:
        algorithm = key.algorithm
        if algorithm is not None and int(algorithm) in _HMAC_HASHES:
            return kdf.mac(_HMAC_HASHES[int(algorithm)](), secret, data, size)
        return kdf.mac(hash_of(crypto.hashing_algorithm), secret, data, size)
    if method == M.ENCRYPT:
        return _encrypt(ctx, crypto, secret, params.initialization_vector, data, size)
    prf = _prf(ctx, crypto, key)
    counter = 32 if crypto.counter_length is None else int(crypto.counter_length)
    if method == M.NIST800_108_C:
        return kdf.kbkdf_counter(prf, secret, data, size, counter)
    if method == M.NIST800_108_F:
        return kdf.kbkdf_feedback(prf, secret, data, params.initialization_vector or b"", size, counter)
    assert method == M.NIST800_108_DPI  # _method admits no other
    return kdf.kbkdf_double_pipeline(prf, secret, data, size, counter)


def _new_object(object_type: ObjectType, value: bytes, algorithm: int | None, bits: int) -> Struct:
    if object_type == ObjectType.SYMMETRIC_KEY:
        return SymmetricKey(key_block=_key_block(value, KeyFormatType.RAW, algorithm, bits))
    # Derived secret material is a seed for whatever the client splits it into (keys, IVs).
    block = KeyBlock(key_format_type=KeyFormatType.OPAQUE, key_value=KeyValue(key_material=value))
    return SecretData(secret_data_type=SecretDataType.SEED, key_block=block)


@operation(Operation.DERIVE_KEY, writes=True)
def derive_key(ctx: RequestContext, request: DeriveKeyRequest) -> Struct:
    object_type = _object_type(ctx, request.object_type)
    method = _method(ctx, request.derivation_method)
    params = request.derivation_parameters
    if params is None:
        raise _invalid(ctx, "Derive Key needs Derivation Parameters")
    if not request.unique_identifiers:
        raise _invalid(ctx, "Derive Key needs the Unique Identifier of at least one base object")
    attrs = AttributeSet()
    apply_initial(ctx, attrs, requested_attributes(ctx, request.template_attribute, request.attributes))
    algorithm, bits, size = _new_object_size(ctx, object_type, attrs)
    loaded = [_base(ctx, uid) for uid in request.unique_identifiers]
    bases = [key for _, key in loaded]
    key, data = _roles(ctx, bases, method, params.derivation_data)
    try:
        value = _derive(ctx, method, params, key, data, size)
    except kdf.TooLong as exc:
        raise KmipError(str(exc), ctx.reason(R.INVALID_ATTRIBUTE_VALUE, R.INVALID_FIELD)) from None
    except kdf.DerivationError as exc:
        raise KmipError(str(exc), ctx.reason(R.BAD_CRYPTOGRAPHIC_PARAMETERS, R.INVALID_FIELD)) from None
    if algorithm == A.DES3:
        value = with_odd_parity(value)
    attrs.set_from("Original Creation Date", date_attribute("Original Creation Date", ctx.now))
    attrs.delete("Fresh")
    for base in bases:
        attrs.add("Link", Link(link_type=LinkType.DERIVATION_BASE_OBJECT_LINK, linked_object_identifier=base.uid))
    uid = store_new_object(
        ctx,
        object_type,
        attrs,
        _new_object(object_type, value, algorithm, bits),
        digest_of=value,
        key_format=KeyFormatType.RAW if object_type == ObjectType.SYMMETRIC_KEY else KeyFormatType.OPAQUE,
        algorithm=algorithm,
        length=bits,
    )
    for locked, _ in loaded:
        locked.attributes.add("Link", Link(link_type=LinkType.DERIVED_KEY_LINK, linked_object_identifier=uid))
        locked.touch(ctx)
        locked.save(ctx)
    return DeriveKeyResponse(unique_identifier=uid)
