"""MAC and MAC Verify: HMAC (SHA-1, SHA-2, SHA-3) and CMAC-AES, whole or streamed.

Which MAC a request gets, from its Cryptographic Parameters (the request's, else the key's
Cryptographic Parameters attribute, as KMIP says):

* a Cryptographic Algorithm HMAC_SHA256 (etc.): HMAC with that hash, whatever the key's own
  algorithm (the CS-AC-M profile files MAC with an AES key whose parameters say HMAC_SHA256);
* else a Hashing Algorithm: HMAC with it (CMAC uses no hash, so naming one asks for HMAC);
* else the Cryptographic Algorithm named there or, if none, the key's: HMAC_* as above, AES
  CMAC (NIST SP 800-38B) with the key as the AES key.

MAC needs an Active key with MAC Generate in its usage mask; MAC Verify needs MAC Verify in
the mask and a key that is Active, Deactivated or Compromised (KMIP 1.4 §3.22). A verification compares in
constant time (the ``cryptography`` contexts' ``verify``). A stream gathers the data of its
parts and computes at the final one: the key is checked at the first part and again at the
final part, whose state decides.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import cmac, hashes, hmac
from cryptography.hazmat.primitives.ciphers import algorithms

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.model.attributes import CryptographicParameters
from kmip_client.protocol.model.payloads.crypto import MACRequest, MACResponse, MACVerifyRequest, MACVerifyResponse
from kmip_client.protocol.spec.enums import (
    CryptographicAlgorithm,
    CryptographicUsageMask,
    Operation,
    ResultReason,
    ValidityIndicator,
)

from ...engine.context import RequestContext
from ...engine.registry import operation
from .asymmetric import hash_of
from .digest import gathered, stream_parameters
from .keys import KeyInUse, key_for
from .streams import Stream, stream_of

R = ResultReason
A = CryptographicAlgorithm
Usage = CryptographicUsageMask

#: The HMAC Cryptographic Algorithms and their hashes (Derive Key's HMAC method names the same).
HMAC_HASHES: dict[int, type[hashes.HashAlgorithm]] = {
    A.HMAC_SHA1: hashes.SHA1,
    A.HMAC_SHA224: hashes.SHA224,
    A.HMAC_SHA256: hashes.SHA256,
    A.HMAC_SHA384: hashes.SHA384,
    A.HMAC_SHA512: hashes.SHA512,
    A.HMAC_SHA3_224: hashes.SHA3_224,
    A.HMAC_SHA3_256: hashes.SHA3_256,
    A.HMAC_SHA3_384: hashes.SHA3_384,
    A.HMAC_SHA3_512: hashes.SHA3_512,
}
_AES_KEY_BYTES = frozenset({16, 24, 32})

Context = hmac.HMAC | cmac.CMAC


def _bad_parameters(ctx: RequestContext, message: str) -> KmipError:
    # 2.x lists Bad Cryptographic Parameters among the MAC errors; 1.x only Cryptographic Failure.
    return KmipError(message, ctx.reason(R.BAD_CRYPTOGRAPHIC_PARAMETERS, R.CRYPTOGRAPHIC_FAILURE))


def _context(ctx: RequestContext, key: KeyInUse, given: CryptographicParameters | None) -> Context:
    """A fresh MAC context over ``key`` for the request's method (see the module docstring)."""
    stored = key.stored_parameters()
    chosen = given or (stored[0] if stored else CryptographicParameters())
    named = chosen.cryptographic_algorithm
    if named is None or int(named) not in HMAC_HASHES:
        if chosen.hashing_algorithm is not None:
            return hmac.HMAC(key.raw(), hash_of(chosen.hashing_algorithm))
    algorithm = named if named is not None else key.algorithm
    if algorithm is not None and int(algorithm) in HMAC_HASHES:
        return hmac.HMAC(key.raw(), HMAC_HASHES[int(algorithm)]())
    if algorithm is not None and int(algorithm) == A.AES:
        secret = key.raw()
        if len(secret) not in _AES_KEY_BYTES:
            raise _bad_parameters(ctx, f"object {key.uid!r} is not an AES key of 128, 192 or 256 bits")
        return cmac.CMAC(algorithms.AES(secret))
    name = getattr(algorithm, "name", algorithm) if algorithm is not None else "none"
    raise _bad_parameters(
        ctx, f"no MAC with Cryptographic Algorithm {name}: name HMAC_SHA* or AES (CMAC), or a Hashing Algorithm"
    )


def _key_uid(stream: Stream | None, given: object) -> object:
    """The key of this part: the given one (or the ID Placeholder); a later part of a stream
    may omit it, and may not name another key."""
    if stream is None or stream.new:
        return given
    if given is not None and given != stream.key_uid:
        raise KmipError("a later part of a stream may not name another key than its first part", R.INVALID_FIELD)
    return stream.key_uid


def _key(ctx: RequestContext, stream: Stream | None, given: object, *, verify: bool) -> KeyInUse | None:
    """The key, checked, at a whole operation, a stream's first part and its final part;
    None for the parts between (they only add data, and name the key the stream keeps)."""
    uid = _key_uid(stream, given)
    if stream is not None and not stream.new and not stream.final:
        return None
    if verify:
        key = key_for(ctx, uid, usage=Usage.MAC_VERIFY, protects=False, action="verify a MAC")
    else:
        key = key_for(ctx, uid, usage=Usage.MAC_GENERATE, protects=True, action="compute a MAC")
    if stream is not None and stream.new:
        stream.key_uid = key.uid
    return key


@operation(Operation.MAC, writes=False, min_version=(1, 2))
def mac(ctx: RequestContext, request: MACRequest) -> MACResponse:
    stream = stream_of(ctx, Operation.MAC, request)
    given = stream_parameters(stream, request.cryptographic_parameters)
    key = _key(ctx, stream, request.unique_identifier, verify=False)
    context = _context(ctx, key, given) if key is not None else None  # at the first part: fail early
    data = gathered(ctx, stream, request.data, what="Data to MAC")
    if data is None or context is None:
        assert stream is not None
        return MACResponse(unique_identifier=stream.key_uid, correlation_value=stream.correlation_value)
    context.update(data)
    return MACResponse(unique_identifier=key.uid if key else None, mac_data=context.finalize())


@operation(Operation.MAC_VERIFY, writes=False, min_version=(1, 2))
def mac_verify(ctx: RequestContext, request: MACVerifyRequest) -> MACVerifyResponse:
    stream = stream_of(ctx, Operation.MAC_VERIFY, request)
    given = stream_parameters(stream, request.cryptographic_parameters)
    key = _key(ctx, stream, request.unique_identifier, verify=True)
    context = _context(ctx, key, given) if key is not None else None
    if stream is not None and request.mac_data is not None:
        stream.values["mac"] = request.mac_data  # KMIP lets any part carry it; the final one uses it
    data = gathered(ctx, stream, request.data, what="Data to verify")
    if data is None or context is None:
        assert stream is not None
        # 2.1 §6.1.33: non-final parts "SHALL NOT include the Validity Indicator".
        return MACVerifyResponse(unique_identifier=stream.key_uid, correlation_value=stream.correlation_value)
    expected = stream.values.get("mac") if stream is not None else request.mac_data
    if expected is None:
        raise KmipError("MAC Verify needs the MAC Data to verify", R.INVALID_FIELD)
    context.update(data)
    try:
        context.verify(expected)
    except InvalidSignature:
        validity = ValidityIndicator.INVALID
    else:
        validity = ValidityIndicator.VALID
    return MACVerifyResponse(unique_identifier=key.uid if key else None, validity_indicator=validity)
