"""Hash, whole or streamed, and :func:`gathered`, the input of an operation computed at its end.

Hash takes no key: the Hashing Algorithm of the request's Cryptographic Parameters names the
function (KMIP 1.4 §4.37, 2.1 §6.1.24); 2.x may name a SHA-3 function as the Cryptographic
Algorithm instead. MD5 is refused: it is broken, and no profile test case hashes with it.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.model.attributes import CryptographicParameters
from kmip_client.protocol.model.payloads.crypto import HashRequest, HashResponse
from kmip_client.protocol.spec.enums import CryptographicAlgorithm, HashingAlgorithm, Operation, ResultReason

from ...engine.context import RequestContext
from ...engine.registry import operation
from .asymmetric import hash_of
from .streams import Stream, stream_of

R = ResultReason
A = CryptographicAlgorithm
H = HashingAlgorithm

#: 2.x Cryptographic Algorithms that are hash functions, as the Hashing Algorithm they equal.
_HASH_ALGORITHMS: dict[int, HashingAlgorithm] = {
    A.SHA3_224: H.SHA3_224,
    A.SHA3_256: H.SHA3_256,
    A.SHA3_384: H.SHA3_384,
    A.SHA3_512: H.SHA3_512,
}
_REFUSED = frozenset({H.MD5})


def gathered(ctx: RequestContext, stream: Stream | None, data: bytes | None, *, what: str) -> bytes | None:
    """All input of an operation computed over the whole of it (Hash, MAC, Sign, Verify), or
    None while a stream still expects parts: a non-final part is added to the stream's input
    and saved, the final part closes the stream. ``what`` names the input in an error."""
    if stream is None:
        if data is None:
            raise KmipError(f"the request has no {what}", R.INVALID_FIELD)
        return data
    stream.data += data or b""
    if not stream.final:
        stream.save(ctx)
        return None
    stream.close(ctx)
    return stream.data


def stream_parameters(stream: Stream | None, given: CryptographicParameters | None) -> CryptographicParameters | None:
    """The Cryptographic Parameters a part runs with: the first part's, kept in the stream
    (set here), unless a later part gives the same ones again; other ones are refused, since
    the input of earlier parts was accepted for the first part's method."""
    if stream is None:
        return given
    if stream.new:
        stream.parameters = given
        return given
    if given is not None and given != stream.parameters:
        raise KmipError(
            "a later part of a stream may not change the Cryptographic Parameters of its first part",
            R.INVALID_FIELD,
        )
    return stream.parameters


def _hash_for(given: CryptographicParameters | None) -> hashes.HashAlgorithm:
    if given is None:
        raise KmipError("Hash needs Cryptographic Parameters naming the Hashing Algorithm", R.INVALID_FIELD)
    algorithm = given.hashing_algorithm
    if algorithm is None and given.cryptographic_algorithm is not None:
        algorithm = _HASH_ALGORITHMS.get(int(given.cryptographic_algorithm))
        if algorithm is None:
            name = getattr(given.cryptographic_algorithm, "name", given.cryptographic_algorithm)
            raise KmipError(f"Cryptographic Algorithm {name} is not a hash function", R.CRYPTOGRAPHIC_FAILURE)
    if algorithm is not None and int(algorithm) in _REFUSED:
        raise KmipError("Hashing Algorithm MD5 is not offered: it is broken", R.CRYPTOGRAPHIC_FAILURE)
    return hash_of(algorithm)


@operation(Operation.HASH, writes=False, min_version=(1, 2))
def hash_data(ctx: RequestContext, request: HashRequest) -> HashResponse:
    stream = stream_of(ctx, Operation.HASH, request)
    # Checked at every part, so a stream with an unusable algorithm fails at its first part.
    algorithm = _hash_for(stream_parameters(stream, request.cryptographic_parameters))
    data = gathered(ctx, stream, request.data, what="Data to hash")
    if data is None:
        assert stream is not None
        return HashResponse(correlation_value=stream.correlation_value)
    digest = hashes.Hash(algorithm)
    digest.update(data)
    return HashResponse(data=digest.finalize())
