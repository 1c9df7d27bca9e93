"""RNG Retrieve and RNG Seed: the HSM's random number generator, offered to clients.

RNG Retrieve returns bytes from the token's ``C_GenerateRandom``, the generator the server's
own keys come from. A request is bounded by :data:`MAX_RANDOM_BYTES`: the bytes are made
before the response is, so a huge Data Length would otherwise be allocated (and then refused
by the message size limit) first.

RNG Seed, by the ``[crypto] rng_seed`` setting: ``token`` (the default) passes the seed, or
its first ``rng_seed_max_bytes``, to the token (``C_SeedRandom``) and answers how much it
took; a token that takes no seed is a refusal, Permission Denied as the OASIS file of such a
server (CS-RNG-O-4) shows. ``ignore`` takes none and answers Data Length 0; KMIP 1.4 §4.36 /
2.1 §6.1.50: "The server MAY elect to ignore the information provided by the client (i.e. not
accept the seeding material) and MAY indicate this to the client by returning zero as the
value in the Data Length response. A client SHALL NOT consider a response from a server which
does not use the provided data as an error." ``refuse`` refuses every seed (Permission Denied),
for a site that wants no client to influence the HSM's generator. The four CS-RNG-O files are
the four behaviours: all taken (O-1), 16 bytes taken (O-2, ``rng_seed_max_bytes = 16``),
ignored (O-3) and refused (O-4).
"""

from __future__ import annotations

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.model.payloads.crypto import (
    RNGRetrieveRequest,
    RNGRetrieveResponse,
    RNGSeedRequest,
    RNGSeedResponse,
)
from kmip_client.protocol.spec.enums import Operation, ResultReason

from ...crypto_settings import CryptoSettings
from ...custody import CustodyError
from ...custody.base import SeedingNotSupported
from ...engine.context import RequestContext
from ...engine.registry import operation

R = ResultReason

#: The most RNG Retrieve returns at once: far beyond any key or nonce, far below the default
#: message size limit (1 MiB).
MAX_RANDOM_BYTES = 64 * 1024

_settings = CryptoSettings()


def configure(settings: CryptoSettings) -> None:
    """Set this process's RNG Seed behaviour (called once per worker at start)."""
    global _settings
    _settings = settings


def _refused(why: str) -> KmipError:
    return KmipError(f"RNG Seed is refused: {why}", R.PERMISSION_DENIED)


@operation(Operation.RNG_RETRIEVE, writes=False, min_version=(1, 2))
def rng_retrieve(ctx: RequestContext, request: RNGRetrieveRequest) -> RNGRetrieveResponse:
    length = request.data_length
    if length is None or length < 0:
        raise KmipError("RNG Retrieve needs a Data Length of 0 bytes or more", R.INVALID_FIELD)
    if length > MAX_RANDOM_BYTES:
        # Response Too Large is among the RNG Retrieve errors of KMIP 2.1 (Table 318).
        raise KmipError(
            f"RNG Retrieve returns at most {MAX_RANDOM_BYTES} bytes at once; ask several times",
            R.RESPONSE_TOO_LARGE,
        )
    try:
        data = ctx.custody.random(length)
    except CustodyError as exc:
        raise KmipError(f"the HSM's random number generator failed: {exc}", R.CRYPTOGRAPHIC_FAILURE) from exc
    return RNGRetrieveResponse(data=data)


@operation(Operation.RNG_SEED, writes=False, min_version=(1, 2))
def rng_seed(ctx: RequestContext, request: RNGSeedRequest) -> RNGSeedResponse:
    seed = request.data
    if seed is None:
        raise KmipError("RNG Seed needs the Data to seed with", R.INVALID_FIELD)
    if _settings.rng_seed == "refuse":
        raise _refused("this server takes no seed from clients")
    if not seed or _settings.rng_seed == "ignore":
        return RNGSeedResponse(data_length=0)  # ignored, and said so (the module docstring)
    if _settings.rng_seed_max_bytes:
        seed = seed[: _settings.rng_seed_max_bytes]
    try:
        ctx.custody.seed_random(seed)
    except SeedingNotSupported:
        raise _refused("the server's HSM takes no seed") from None
    except CustodyError as exc:
        raise KmipError(f"the HSM could not be seeded: {exc}", R.CRYPTOGRAPHIC_FAILURE) from exc
    return RNGSeedResponse(data_length=len(seed))
