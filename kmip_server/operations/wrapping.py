"""Key wrapping: Get's Key Wrapping Specification and the Key Wrapping Data of a key registered
wrapped (KMIP 1.4 §2.1.5, §2.1.6, §4.11, 2.1 §3.3, §7.18, §6.1.19, §6.1.43).

Get wraps the Key Value it would return under a key of this server's and returns it as a Byte
String beside the Key Wrapping Data saying how. Register unwraps a wrapped Key Value with a key
of this server's; the value is then stored unwrapped like every other (under custody's master
key, which is no KMIP wrapping).

What is wrapped (the Encoding Option): TTLV Encoding, the default (1.4 Table 12), is the Key
Value structure TTLV-encoded, with the attributes the specification names inside it (in the
client's version's form); No Encoding is the bytes of a Byte String Key Material alone, which
takes no attributes (Encoding Option Error, 1.4 Table 338).

How (the Wrapping Method):

* Encrypt, under a Symmetric Key: AES Key Wrap (Block Cipher Mode NIST Key Wrap or X9.102
  AESKW, RFC 3394), AES Key Wrap with Padding (RFC 5649), or AES-GCM. GCM's fresh 12-byte IV
  (or IV Length bits) is the Key Wrapping Data's IV/Counter/Nonce; KMIP has no field for the
  tag, so the Key Value is the ciphertext followed by the tag (Tag Length bytes, 16 when not
  given), as PKCS#11's CKM_AES_GCM wrap and ``cryptography``'s AESGCM lay them out. Other
  modes (CBC, ...) are not offered: unauthenticated, and an unwrap oracle at Register.
* Encrypt, under an RSA Public Key (or a Private Key's public half): RSAES-OAEP, its hash and
  MGF1 hash as the parameters say (SHA-1 when they do not, RFC 8017 and 2.1 Table 59). Not
  PKCS#1 v1.5, whose unwrap at Register would be a Bleichenbacher oracle.
* RSA-AES key wrap, PKCS#11's CKM_RSA_AES_KEY_WRAP (what AWS KMS calls RSA_AES_KEY_WRAP_SHA_*,
  Google Cloud KMS rsa-oaep-*-aes-256 and Azure's .byok files use): a fresh AES-256 key
  encrypted by RSAES-OAEP as above, followed by the value wrapped under that AES key with AES
  Key Wrap with Padding (RFC 5649). KMIP 1.4 and 2.1 have no name for it; a Block Cipher Mode
  means nothing for an RSA key otherwise, so here an RSA key's parameters with the OAEP
  Padding Method and Block Cipher Mode AES Key Wrap Padding ask for it (a Strongroom reading,
  documented in the README; other modes with an RSA key are refused, as are parameters naming
  AES as the algorithm). Register unwraps it the same way. The AES key exists only in memory
  for the one call.
* MAC/sign, under a Symmetric Key (HMAC or CMAC, chosen as MAC chooses) or a Private Key (a
  signature, as Sign makes it; a Public Key names its Private Key Link): the MAC or signature
  is the Key Wrapping Data's MAC/Signature. Alone, over the encoded Key Value, which then is
  the Key Value Byte String in the clear; Encrypt then MAC/sign authenticates the ciphertext;
  MAC/sign then Encrypt the encoded value before it is encrypted. TR-31 is not offered.

The keys: the encryption key is used to *apply* protection, so it is Active with Wrap Key in
its usage mask (MAC Generate or Sign for the MAC/signature key), through :func:`.crypto.keys.key_for`;
the key that unwraps at Register processes protected data (Unwrap Key; Active, Deactivated or
Compromised). Reasons: a missing or destroyed key is Wrapping Object Not Found / Destroyed in
2.x, Item Not Found in 1.x (1.4 Table 338); Get's error list (2.1 Table 222) has no Wrong Key
Lifecycle State, so a key in the wrong state is Permission Denied, as 1.4 says.

Cryptographic Parameters (1.4 §2.1.6, 2.1 §7.18): those in a Key Wrapping Specification must
agree with one of the key's Cryptographic Parameters attribute instances (every field both
give is equal), and fill in from it what they leave out; without them, the lowest-indexed
instance applies; no parameters anywhere, or none agreeing, is Item Not Found in 1.x (Table
338) and Bad Cryptographic Parameters in 2.x. One departure: a key without the attribute is
used with the parameters the request gives (a literal reading refuses it), as Encrypt does
and as clients that name their wrapping keys' usage only expect. Key Wrapping Data received
at Register says what was used: its parameters, else the key's attribute.

Sensitive (1.4 §3.48: the value leaves only "wrapped by another key") is released by a method
that encrypts; a MAC or signature alone leaves the key readable and is refused it.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric import rsa

from kmip_client.protocol.errors import KmipError, ProtocolError
from kmip_client.protocol.model import Attribute, Attributes, Struct
from kmip_client.protocol.model.attributes import CryptographicParameters
from kmip_client.protocol.model.base import decode_struct, to_bytes
from kmip_client.protocol.model.objects import (
    EncryptionKeyInformation,
    KeyBlock,
    KeyValue,
    KeyWrappingData,
    KeyWrappingSpecification,
    MACSignatureKeyInformation,
)
from kmip_client.protocol.spec import Tag
from kmip_client.protocol.spec.enums import (
    BlockCipherMode,
    CryptographicAlgorithm,
    CryptographicUsageMask,
    EncodingOption,
    KeyWrapType,
    LinkType,
    ObjectType,
    PaddingMethod,
    ResultReason,
    WrappingMethod,
)
from kmip_client.protocol.ttlv import decode

from ..engine.context import RequestContext
from .attributes import _present
from .common import linked, load_object
from .crypto import ciphers
from .crypto.asymmetric import ParameterError, private_key, rsa_decrypt, rsa_encrypt
from .crypto.encryption import _random_iv
from .crypto.keys import KeyInUse, key_for
from .crypto.mac import _context as mac_context
from .crypto.signatures import _scheme, _signed

R = ResultReason
A = CryptographicAlgorithm
M = BlockCipherMode
W = WrappingMethod
Usage = CryptographicUsageMask

_ENCRYPTING = frozenset({W.ENCRYPT, W.ENCRYPT_THEN_MAC_SIGN, W.MAC_SIGN_THEN_ENCRYPT})
_AUTHENTICATING = frozenset({W.MAC_SIGN, W.ENCRYPT_THEN_MAC_SIGN, W.MAC_SIGN_THEN_ENCRYPT})
_AES_WRAP_MODES = frozenset({M.NISTKEYWRAP, M.X9_102_AESKW, M.AESKEYWRAPPADDING, M.GCM})
_ASYMMETRIC = frozenset({int(ObjectType.PUBLIC_KEY), int(ObjectType.PRIVATE_KEY)})
_PARAMETER_FIELDS = tuple(f.name for f in dataclasses.fields(CryptographicParameters) if f.name != "extras")
_DEFAULT_TAG_BYTES = 16

KeyInformation = EncryptionKeyInformation | MACSignatureKeyInformation
Info = TypeVar("Info", EncryptionKeyInformation, MACSignatureKeyInformation)


def encrypts(spec: KeyWrappingSpecification | None) -> bool:
    """Whether ``spec`` conceals the value (what a Sensitive object may be released under)."""
    return spec is not None and spec.wrapping_method in _ENCRYPTING


def check_key_wrap_type(ctx: RequestContext, wrap_type: Any, spec: KeyWrappingSpecification | None) -> None:
    """Get's Key Wrap Type (1.4 §4.11, 2.1 §6.1.19). Not Wrapped is the value unwrapped, what
    Get returns without a Key Wrapping Specification. As Registered cannot be honoured: this
    server unwraps what is registered wrapped and keeps no registered wrapping to return."""
    if wrap_type == KeyWrapType.NOT_WRAPPED:
        if spec is not None:
            raise KmipError("Key Wrap Type Not Wrapped contradicts the Key Wrapping Specification", R.INVALID_FIELD)
        return
    shown = getattr(wrap_type, "name", wrap_type)
    raise KmipError(
        f"Key Wrap Type {shown} is not supported: values registered wrapped are unwrapped and stored so; "
        "ask for Not Wrapped, or give a Key Wrapping Specification",
        ctx.reason(R.KEY_WRAP_TYPE_NOT_SUPPORTED, R.FEATURE_NOT_SUPPORTED),
    )


# ----------------------------------------------------------------------------- errors


def _bad(ctx: RequestContext, message: str) -> KmipError:
    return KmipError(message, ctx.reason(R.BAD_CRYPTOGRAPHIC_PARAMETERS, R.INVALID_FIELD))


def _no_parameters(ctx: RequestContext, message: str) -> KmipError:
    # 1.4 Table 338: "Cryptographic Parameters associated with the object do not exist or do
    # not match those provided": Item Not Found.
    return KmipError(message, ctx.reason(R.BAD_CRYPTOGRAPHIC_PARAMETERS, R.ITEM_NOT_FOUND))


def _unsupported(message: str) -> KmipError:
    return KmipError(message, R.FEATURE_NOT_SUPPORTED)


def _encoding_error(ctx: RequestContext, message: str) -> KmipError:
    return KmipError(message, ctx.defined_reason(R.ENCODING_OPTION_ERROR, R.INVALID_FIELD))


def _parameter_error(ctx: RequestContext, exc: ParameterError) -> KmipError:
    # Get's and Register's error lists have no Unsupported Cryptographic Parameters.
    if exc.unsupported:
        return _unsupported(exc.message)
    return _bad(ctx, exc.message)


def _cipher_error(ctx: RequestContext, exc: ciphers.CipherError) -> KmipError:
    if exc.fault is ciphers.Fault.FAILED:
        return KmipError("the wrapped Key Value does not unwrap under this key", R.CRYPTOGRAPHIC_FAILURE)
    if exc.fault is ciphers.Fault.UNSUPPORTED:
        return _unsupported(str(exc))
    return _bad(ctx, str(exc))


_WRAPPING_REASONS = {
    R.OBJECT_NOT_FOUND: R.WRAPPING_OBJECT_NOT_FOUND,
    R.OBJECT_DESTROYED: R.WRAPPING_OBJECT_DESTROYED,
    R.WRONG_KEY_LIFECYCLE_STATE: R.PERMISSION_DENIED,
}


def _as_wrapping_error(exc: KmipError, role: str) -> KmipError:
    """An error about the wrapping key, with the reasons Get gives for one (the 1.x reasons
    are the object's already)."""
    return KmipError(f"{role}: {exc.message}", _WRAPPING_REASONS.get(exc.reason, exc.reason))


# ----------------------------------------------------------------------------- the keys


def _uid_of(ctx: RequestContext, info: KeyInformation, role: str) -> str:
    if info.unique_identifier is None:
        raise KmipError(f"the {role} Information needs the key's Unique Identifier", R.INVALID_FIELD)
    return ctx.uid(info.unique_identifier)


def _resolved(ctx: RequestContext, info: Info | None, role: str) -> Info | None:
    """``info`` naming its key by Unique Identifier (not the ID Placeholder): what Key Wrapping Data echoes."""
    return None if info is None else dataclasses.replace(info, unique_identifier=_uid_of(ctx, info, role))


def _private_of(ctx: RequestContext, uid: str) -> tuple[str, int]:
    """The key to decrypt or sign with for ``uid`` and its Object Type: a Public Key's Private
    Key Link (1.4 Table 11: a signature key may be named by its Public Key), else ``uid``."""
    obj = load_object(ctx, uid, names=("Link",))
    if obj.record.object_type != ObjectType.PUBLIC_KEY:
        return uid, obj.record.object_type
    private = linked(obj.attributes, LinkType.PRIVATE_KEY_LINK)
    if private is not None:
        return private, int(ObjectType.PRIVATE_KEY)
    raise KmipError(f"Public Key {uid!r} has no Private Key Link to a key of this server", R.PERMISSION_DENIED)


def _private_key_for(ctx: RequestContext, uid: str, role: str) -> tuple[str, int]:
    try:
        return _private_of(ctx, uid)
    except KmipError as exc:
        raise _as_wrapping_error(exc, role) from None


def _key(ctx: RequestContext, uid: str, role: str, **use: Any) -> KeyInUse:
    try:
        # A wrapping key is used, not operated on: the ID Placeholder stays the wrapped object.
        return key_for(ctx, uid, sets_placeholder=False, **use)
    except KmipError as exc:
        raise _as_wrapping_error(exc, role) from None


def _parameters(
    ctx: RequestContext, key: KeyInUse, given: CryptographicParameters | None, *, received: bool
) -> CryptographicParameters:
    """The parameters to wrap (or, ``received``, unwrap) with; see the module docstring."""
    stored = key.stored_parameters()
    if given is None:
        if not stored:
            raise _no_parameters(ctx, f"neither the request nor key {key.uid!r} gives Cryptographic Parameters")
        return stored[0]
    if received or not stored:
        return given
    for instance in stored:
        pairs = [(getattr(given, name), getattr(instance, name)) for name in _PARAMETER_FIELDS]
        if all(mine is None or theirs is None or mine == theirs for mine, theirs in pairs):
            filled = {name: getattr(instance, name) for name in _PARAMETER_FIELDS if getattr(given, name) is None}
            return dataclasses.replace(given, **filled)
    raise _no_parameters(ctx, f"the Cryptographic Parameters given match none of key {key.uid!r}'s")


def _optional_parameters(
    ctx: RequestContext, key: KeyInUse, given: CryptographicParameters | None
) -> CryptographicParameters:
    """The parameters of a MAC or signature, which the key alone may decide (HMAC-SHA256, Ed25519)."""
    if not key.stored_parameters():
        return given or CryptographicParameters()
    return _parameters(ctx, key, given, received=False)


# ----------------------------------------------------------------------------- encryption


def _aes_suite(ctx: RequestContext, key: KeyInUse, params: CryptographicParameters) -> ciphers.Suite:
    if key.object_type != ObjectType.SYMMETRIC_KEY:
        kind = ObjectType(key.object_type).name.replace("_", " ").title()
        raise KmipError(
            f"object {key.uid!r} is a {kind}: keys are wrapped under a Symmetric Key or an RSA key",
            ctx.reason(R.INVALID_OBJECT_TYPE, R.ILLEGAL_OPERATION),
        )
    if key.algorithm != A.AES or params.cryptographic_algorithm not in (None, A.AES):
        raise _bad(ctx, f"key wrapping under a Symmetric Key is AES; object {key.uid!r} is not an AES key")
    mode = params.block_cipher_mode
    if mode is None:
        raise _no_parameters(ctx, "the Cryptographic Parameters name no Block Cipher Mode to wrap with")
    if mode not in _AES_WRAP_MODES:
        raise _unsupported(
            f"Block Cipher Mode {getattr(mode, 'name', mode)} does not wrap keys here: "
            "NIST Key Wrap, AES Key Wrap Padding and GCM do"
        )
    suite = ciphers.suite_for(A.AES, mode)
    ciphers.check_key(suite, key.raw())
    return suite


def _tag_size(suite: ciphers.Suite, params: CryptographicParameters) -> int:
    size = params.tag_length if params.tag_length is not None else _DEFAULT_TAG_BYTES
    ciphers.check_tag_size(suite, size)
    return size


def _rsa_parameters(ctx: RequestContext, key: KeyInUse, params: CryptographicParameters) -> CryptographicParameters:
    if params.cryptographic_algorithm not in (None, A.RSA):
        raise _bad(
            ctx,
            f"Cryptographic Algorithm {getattr(params.cryptographic_algorithm, 'name', '?')} with an RSA key: "
            "RSA wraps by OAEP; for RSA-AES key wrap (CKM_RSA_AES_KEY_WRAP) give the OAEP Padding Method "
            "with Block Cipher Mode AES Key Wrap Padding",
        )
    if key.algorithm is not None and key.algorithm != A.RSA:
        raise _unsupported(f"object {key.uid!r} is not an RSA key: only RSA public keys wrap keys here")
    if params.padding_method != PaddingMethod.OAEP:
        raise _unsupported("RSA key wrapping uses the OAEP Padding Method")
    if params.block_cipher_mode not in (None, M.AESKEYWRAPPADDING):
        raise _unsupported(
            f"Block Cipher Mode {getattr(params.block_cipher_mode, 'name', params.block_cipher_mode)} with an RSA "
            "key: only AES Key Wrap Padding applies (RSA-AES key wrap, CKM_RSA_AES_KEY_WRAP)"
        )
    return params


_RSA_AES_KEY_BYTES = 32  # AES-256: what CKM_RSA_AES_KEY_WRAP's users (AWS, Azure, Google Cloud) take


def _rsa_wrap(ctx: RequestContext, key: KeyInUse, params: CryptographicParameters, data: bytes) -> bytes:
    """``data`` wrapped under an RSA key: OAEP, or RSA-AES key wrap (see the module docstring)."""
    params = _rsa_parameters(ctx, key, params)
    if params.block_cipher_mode is None:
        return rsa_encrypt(key, params, data)
    transport = os.urandom(_RSA_AES_KEY_BYTES)
    suite = ciphers.suite_for(A.AES, M.AESKEYWRAPPADDING)
    wrapped = suite.encrypt(suite, ciphers.Job(key=transport, iv=None, data=data))[0]
    return rsa_encrypt(key, params, transport) + wrapped


def _rsa_unwrap(ctx: RequestContext, key: KeyInUse, params: CryptographicParameters, data: bytes) -> bytes:
    """The inverse of :func:`_rsa_wrap` with the private key. Every failure is the same
    Cryptographic Failure, whichever stage failed (no oracle on the OAEP block)."""
    params = _rsa_parameters(ctx, key, params)
    if params.block_cipher_mode is None:
        return rsa_decrypt(key, params, data)
    failed = KmipError("the wrapped Key Value does not unwrap under this key", R.CRYPTOGRAPHIC_FAILURE)
    private = private_key(key)
    if not isinstance(private, rsa.RSAPrivateKey):
        raise KmipError(f"object {key.uid!r} is not an RSA key", R.INVALID_FIELD)
    size = (private.key_size + 7) // 8
    if len(data) <= size:
        raise failed
    try:
        transport = rsa_decrypt(key, params, data[:size])
        suite = ciphers.suite_for(A.AES, M.AESKEYWRAPPADDING)
        return suite.decrypt(suite, ciphers.Job(key=transport, iv=None, data=data[size:]))
    except ciphers.CipherError:
        raise failed from None
    except KmipError as exc:
        if exc.reason == R.CRYPTOGRAPHIC_FAILURE:
            raise failed from None
        raise


def _encrypt(ctx: RequestContext, info: EncryptionKeyInformation, data: bytes) -> tuple[bytes, bytes | None]:
    """``data`` encrypted as ``info`` (resolved) says: the ciphertext (GCM: with its tag) and
    the IV if one was made."""
    uid = _uid_of(ctx, info, "Encryption Key")
    key = _key(ctx, uid, "the wrapping key", usage=Usage.WRAP_KEY, protects=True, action="wrap keys")
    params = _parameters(ctx, key, info.cryptographic_parameters, received=False)
    try:
        if key.object_type in _ASYMMETRIC:
            return _rsa_wrap(ctx, key, params, data), None
        suite = _aes_suite(ctx, key, params)
        if not suite.authenticated:
            return suite.encrypt(suite, ciphers.Job(key=key.raw(), iv=None, data=data))[0], None
        iv = _random_iv(suite, params)
        job = ciphers.Job(key=key.raw(), iv=iv, data=data, tag_size=_tag_size(suite, params))
        sealed, tag = suite.encrypt(suite, job)
        return sealed + (tag or b""), iv
    except ParameterError as exc:
        raise _parameter_error(ctx, exc) from None
    except ciphers.CipherError as exc:
        raise _cipher_error(ctx, exc) from None


def _decrypt(ctx: RequestContext, info: EncryptionKeyInformation, data: bytes, iv: bytes | None) -> tuple[bytes, str]:
    """The plaintext of a wrapped Key Value and the Unique Identifier of the key that unwrapped it."""
    role = "the unwrapping key"
    uid, _ = _private_key_for(ctx, _uid_of(ctx, info, "Encryption Key"), role)
    key = _key(ctx, uid, role, usage=Usage.UNWRAP_KEY, protects=False, action="unwrap keys")
    params = _parameters(ctx, key, info.cryptographic_parameters, received=True)
    try:
        if key.object_type in _ASYMMETRIC:
            if key.object_type != ObjectType.PRIVATE_KEY:
                raise KmipError(f"object {key.uid!r} is a Public Key: it cannot unwrap", R.INVALID_FIELD)
            return _rsa_unwrap(ctx, key, params, data), key.uid
        suite = _aes_suite(ctx, key, params)
        if not suite.authenticated:
            return suite.decrypt(suite, ciphers.Job(key=key.raw(), iv=None, data=data)), key.uid
        if not iv:
            raise KmipError(f"{suite.name} unwrapping needs the Key Wrapping Data's IV/Counter/Nonce", R.INVALID_FIELD)
        ciphers.check_iv(suite, iv)
        size = _tag_size(suite, params)
        if len(data) < size:
            raise KmipError("the wrapped Key Value is shorter than its tag", R.CRYPTOGRAPHIC_FAILURE)
        job = ciphers.Job(key=key.raw(), iv=iv, data=data[:-size], tag=data[-size:])
        return suite.decrypt(suite, job), key.uid
    except ParameterError as exc:
        raise _parameter_error(ctx, exc) from None
    except ciphers.CipherError as exc:
        raise _cipher_error(ctx, exc) from None


# ----------------------------------------------------------------------------- MAC and signature


def _authenticate(ctx: RequestContext, info: MACSignatureKeyInformation, data: bytes) -> bytes:
    """The MAC (a symmetric key) or signature (a private key, or a public key's private half)
    of ``data`` as ``info`` (resolved) says."""
    role = "the MAC/signature key"
    given = info.cryptographic_parameters
    signer, kind = _private_key_for(ctx, _uid_of(ctx, info, "MAC/Signature Key"), role)
    if kind == ObjectType.PRIVATE_KEY:
        key = _key(ctx, signer, role, usage=Usage.SIGN, protects=True, action="sign wrapped keys")
        params = _optional_parameters(ctx, key, given)
        try:
            private = private_key(key)
            scheme = _scheme(params, private, verifying=False)
            return _signed(private, scheme, data, scheme.digest)
        except ParameterError as exc:
            raise _parameter_error(ctx, exc) from None
        except ValueError:
            raise _bad(ctx, "these Cryptographic Parameters cannot sign with this key") from None
    key = _key(ctx, signer, role, usage=Usage.MAC_GENERATE, protects=True, action="MAC wrapped keys")
    context = mac_context(ctx, key, _optional_parameters(ctx, key, given))
    context.update(data)
    return context.finalize()


# ----------------------------------------------------------------------------- encodings


def _attributes_named(ctx: RequestContext, uid: str, names: tuple[str, ...]) -> list[Attribute]:
    """The object's instances of ``names`` in the client's version's form (absent ones left out)."""
    obj = load_object(ctx, uid)
    return [attr for name in dict.fromkeys(names) for attr in _present(obj, ctx, name)]


def _encoded(ctx: RequestContext, uid: str, value: KeyValue, spec: KeyWrappingSpecification) -> bytes:
    """The bytes to wrap: the Key Material alone (No Encoding) or the TTLV Key Value."""
    option = spec.encoding_option
    if option == EncodingOption.NO_ENCODING:
        if spec.attribute_names:
            raise _encoding_error(ctx, "Encoding Option No Encoding wraps the Key Material alone: no Attribute Names")
        if not isinstance(value.key_material, bytes):
            raise _encoding_error(
                ctx, f"object {uid!r} has structured Key Material: it is wrapped with TTLV Encoding only"
            )
        return value.key_material
    if option not in (None, EncodingOption.TTLV_ENCODING):
        raise _encoding_error(ctx, f"Encoding Option {getattr(option, 'name', option)} is not supported")
    if spec.attribute_names:
        added = _attributes_named(ctx, uid, spec.attribute_names)
        if ctx.v2:
            held = value.attributes.attributes if value.attributes is not None else ()
            value = dataclasses.replace(value, attributes=Attributes(attributes=(*held, *added)))
        else:
            value = dataclasses.replace(value, attributes_v1=(*value.attributes_v1, *added))
    return to_bytes(value)


def _decoded(ctx: RequestContext, plain: bytes, option: Any) -> KeyValue:
    """The Key Value an unwrapped Byte String stands for."""
    if option == EncodingOption.NO_ENCODING:
        return KeyValue(key_material=plain)
    if option not in (None, EncodingOption.TTLV_ENCODING):
        raise _encoding_error(ctx, f"Encoding Option {getattr(option, 'name', option)} is not supported")
    try:
        item = decode(plain)
        if item.tag != Tag.KEY_VALUE:
            raise ProtocolError("not a Key Value")
        return decode_struct(KeyValue, item)
    except (ProtocolError, ValueError):
        raise _encoding_error(
            ctx,
            "the unwrapped Key Value is not a TTLV-encoded Key Value structure "
            "(raw Key Material is sent with Encoding Option No Encoding)",
        ) from None


# ----------------------------------------------------------------------------- Get and Register


def _method(spec: KeyWrappingSpecification | KeyWrappingData) -> W:
    method = spec.wrapping_method
    if method is None:
        raise KmipError("a Wrapping Method is required", R.INVALID_FIELD)
    if method not in _ENCRYPTING | _AUTHENTICATING:
        raise _unsupported(f"Wrapping Method {getattr(method, 'name', method)} is not supported")
    encrypting, authenticating = method in _ENCRYPTING, method in _AUTHENTICATING
    if encrypting != (spec.encryption_key_information is not None):
        raise KmipError(
            f"Wrapping Method {method.name} {'needs' if encrypting else 'takes no'} Encryption Key Information",
            R.INVALID_FIELD,
        )
    if authenticating != (spec.mac_signature_key_information is not None):
        raise KmipError(
            f"Wrapping Method {method.name} {'needs' if authenticating else 'takes no'} MAC/Signature Key Information",
            R.INVALID_FIELD,
        )
    return W(method)


def wrap_object(ctx: RequestContext, managed: Struct, spec: KeyWrappingSpecification, uid: str) -> Struct:
    """``managed`` (plaintext, as Get would return it) with its Key Value wrapped as ``spec`` says."""
    block = getattr(managed, "key_block", None)
    if not isinstance(block, KeyBlock) or not isinstance(block.key_value, KeyValue):
        raise KmipError(
            f"object {uid!r} has no Key Block to wrap", ctx.reason(R.INVALID_OBJECT_TYPE, R.ILLEGAL_OPERATION)
        )
    method = _method(spec)
    enc = _resolved(ctx, spec.encryption_key_information, "Encryption Key")
    mac = _resolved(ctx, spec.mac_signature_key_information, "MAC/Signature Key")
    data = _encoded(ctx, uid, block.key_value, spec)
    out, iv, signature = data, None, None
    if mac is not None and method == W.MAC_SIGN_THEN_ENCRYPT:
        signature = _authenticate(ctx, mac, data)
    if enc is not None:
        out, iv = _encrypt(ctx, enc, data)
    if mac is not None and method != W.MAC_SIGN_THEN_ENCRYPT:
        signature = _authenticate(ctx, mac, out)
    wrapping = KeyWrappingData(
        wrapping_method=method,
        encryption_key_information=enc,
        mac_signature_key_information=mac,
        mac_signature=signature,
        iv_counter_nonce=iv,
        encoding_option=spec.encoding_option,
    )
    wrapped = dataclasses.replace(block, key_value=out, key_wrapping_data=wrapping)
    return dataclasses.replace(managed, key_block=wrapped)  # type: ignore[call-arg]


def wrapped_block(block: Any) -> bool:
    """Whether a registered object's Key Block holds a wrapped Key Value."""
    return (
        isinstance(block, KeyBlock)
        and block.key_value is not None
        and (block.key_wrapping_data is not None or isinstance(block.key_value, bytes))
    )


def unwrap_object(ctx: RequestContext, managed: Any) -> tuple[Any, str]:
    """A registered object whose Key Block is wrapped, unwrapped with this server's key, and
    the Unique Identifier of that key (2.1 §6.1.43 links the object to it)."""
    block: KeyBlock = managed.key_block
    wrapping, wrapped = block.key_wrapping_data, block.key_value
    if isinstance(wrapped, KeyValue) and isinstance(wrapped.key_material, bytes) and wrapping is not None:
        # PyKMIP writes (and reads) a wrapped Key Value as a structure whose Key Material holds
        # the wrapped bytes; the Key Wrapping Data says they are wrapped, so they are read so.
        wrapped = wrapped.key_material
    if wrapping is None or not isinstance(wrapped, bytes):
        raise KmipError(
            "a wrapped Key Value is a Byte String with Key Wrapping Data saying how it was wrapped", R.INVALID_FIELD
        )
    method = _method(wrapping)
    if method != W.ENCRYPT:
        raise _unsupported(f"registering keys wrapped by {method.name} is not supported: only by Encrypt")
    assert wrapping.encryption_key_information is not None
    plain, kek = _decrypt(ctx, wrapping.encryption_key_information, wrapped, wrapping.iv_counter_nonce)
    value = _decoded(ctx, plain, wrapping.encoding_option)
    plain_block = dataclasses.replace(block, key_value=value, key_wrapping_data=None)
    return dataclasses.replace(managed, key_block=plain_block), kek
