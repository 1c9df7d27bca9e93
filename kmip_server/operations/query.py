"""What Query reports about this server beyond its operations, objects and identity: the
answers to the Query Functions KMIP 1.1 to 2.0 added (KMIP 2.1 §6.1.40, 1.4 §4.25).

Each answer is a fact about this server, not a reference server's list: what it does not have
(extensions, attestation, validations) is an empty answer, never a refusal. The handler is
:func:`kmip_server.operations.server_info.query`; the Profiles answer is there too, beside the
list of conformant profiles it reports.
"""

from __future__ import annotations

from enum import IntEnum

from kmip_client.protocol.errors import InvalidField
from kmip_client.protocol.model import Attribute, Attributes
from kmip_client.protocol.model.attributes import ProtectionStorageMasks, RandomNumberGenerator
from kmip_client.protocol.model.payloads.structures import CapabilityInformation, DefaultsInformation, ObjectDefaults
from kmip_client.protocol.spec.enums import (
    ClientRegistrationMethod,
    DestroyAction,
    ObjectType,
    QueryFunction,
    RNGAlgorithm,
    RNGMode,
    ShreddingAlgorithm,
)
from kmip_client.protocol.ttlv import ItemType

from ..engine.context import RequestContext
from ..objects.server_attributes import FLAGS, PROTECTION_STORAGE, random_number_generator
from .creation import DEFAULT_SECRET_BITS  # what Create of Secret Data makes

Version = tuple[int, int]
Q = QueryFunction

#: The KMIP version that introduced each Query Function (the Query Function enumeration of
#: KMIP 1.0 to 2.0: 1.1 added the extension queries, 1.2 attestation, 1.3 five more, 2.0 the
#: defaults and storage masks; 2.1 added none).
QUERY_FUNCTION_SINCE: dict[int, Version] = {
    **dict.fromkeys(
        (Q.QUERY_OPERATIONS, Q.QUERY_OBJECTS, Q.QUERY_SERVER_INFORMATION, Q.QUERY_APPLICATION_NAMESPACES), (1, 0)
    ),
    **dict.fromkeys((Q.QUERY_EXTENSION_LIST, Q.QUERY_EXTENSION_MAP), (1, 1)),
    Q.QUERY_ATTESTATION_TYPES: (1, 2),
    **dict.fromkeys(
        (
            Q.QUERY_RNGS,
            Q.QUERY_VALIDATIONS,
            Q.QUERY_PROFILES,
            Q.QUERY_CAPABILITIES,
            Q.QUERY_CLIENT_REGISTRATION_METHODS,
        ),
        (1, 3),
    ),
    **dict.fromkeys((Q.QUERY_DEFAULTS_INFORMATION, Q.QUERY_STORAGE_PROTECTION_MASKS), (2, 0)),
}


def requested_functions(version: Version, functions: tuple[IntEnum, ...]) -> frozenset[int]:
    """The Query Functions asked for, each defined in the client's KMIP ``version``.

    A value the client's version does not have (Query Profiles from a 1.2 client, Query
    Defaults Information from a 1.4 one) or that no version has is a field the message's
    version does not define: Invalid Field (KMIP 1.4 §11.1, "same major & minor version,
    unknown field"; 2.1 §6.1.40.1 lists Invalid Field for Query), as the dispatcher answers a
    payload field of a later version.
    """
    for function in functions:
        since = QUERY_FUNCTION_SINCE.get(int(function))
        if since is None or version < since:
            name = _name(function)
            raise InvalidField(f"Query Function {name} is not defined in KMIP {version[0]}.{version[1]}")
    return frozenset(int(function) for function in functions)


def _name(function: IntEnum) -> str:
    try:
        return QueryFunction(int(function)).name.replace("_", " ").title().replace("Rngs", "RNGs")
    except ValueError:
        return f"0x{int(function):08X}"


# --------------------------------------------------------------------------- Query RNGs


def rng_parameters(ctx: RequestContext) -> tuple[RandomNumberGenerator, ...]:
    """The one generator new key material comes from: the token's (custody.random), described
    as the Random Number Generator attribute of every key the server generates describes it,
    with RNG Algorithm Unspecified when the token is not known (KMIP 2.1 §6.1.40 asks for
    that)."""
    value = random_number_generator(ctx.custody.random_generator).value
    assert isinstance(value, RandomNumberGenerator)
    return (value,)


# --------------------------------------------------------------------------- Query Capabilities


def capability_information(ctx: RequestContext, *, quantum_safe: bool) -> CapabilityInformation:
    """What this server can do, in the fields ``ctx.version`` defines.

    * Streaming, asynchronous operations (no Poll, Cancel or Asynchronous Indicator) and
      attestation: none.
    * Batch Error Continuation Option Undo and Continue (1.4 fields): both honoured, by the
      dispatcher.
    * Unwrap Mode: not stated. It says whether a wrapped key a client registers is unwrapped
      (Processed) or kept wrapped (Not Processed); this server refuses wrapped key blocks
      (Feature Not Supported), so neither is true.
    * Destroy Action: Destroy removes the value and keeps the object and its attributes (a
      Destroyed object is still found, its attributes read). On SQLite the value is shredded:
      secure_delete zeroes it in its page and the write-ahead log is cut before Destroy is
      answered (README, "Destroy is irreversible"); overwriting is no cryptographic
      shredding, so the algorithm is Unspecified. On PostgreSQL the value is deleted but an
      old row version keeps it until VACUUM: deleted, not shredded (Shredding Unsupported).
    * RNG Mode: a DRBG the token runs (SoftHSM2 on OpenSSL) is one instantiation serving every
      client of a worker: Shared Instantiation; an unknown token's generator: Unspecified.
    * Quantum Safe Capability (2.1): ``quantum_safe``, whether the server conforms to the
      Quantum Safe Server profile (it honours the Quantum Safe attribute).
    """
    postgresql = not ctx.session.erases_in_place
    drbg = random_number_generator(ctx.custody.random_generator).value.rng_algorithm == RNGAlgorithm.DRBG
    since_14 = ctx.version >= (1, 4)
    return CapabilityInformation(
        streaming_capability=False,
        asynchronous_capability=False,
        attestation_capability=False,
        batch_undo_capability=True if since_14 else None,
        batch_continue_capability=True if since_14 else None,
        destroy_action=DestroyAction.KEY_MATERIAL_DELETED if postgresql else DestroyAction.KEY_MATERIAL_SHREDDED,
        shredding_algorithm=ShreddingAlgorithm.UNSUPPORTED if postgresql else ShreddingAlgorithm.UNSPECIFIED,
        rng_mode=RNGMode.SHARED_INSTANTIATION if drbg else RNGMode.UNSPECIFIED,
        quantum_safe_capability=quantum_safe if ctx.version >= (2, 1) else None,
    )


# --------------------------------------------------------------------------- Query Client Registration Methods

#: How a client gets the credentials it connects with: ``strongroom certs issue``, run by the
#: operator on the server's side, generates the client's private key and its certificate
#: (signed by the data directory's CA) before the client ever connects. Of KMIP's methods that
#: is Server Pre-Generated: the server made the key in advance. (The enumeration's text adds
#: that the key comes back as a PKCS#12 under HEX(SHA256(Username || Password)); here it is
#: handed over out of band as PEM files, and nothing is fetched over KMIP.) Not Server
#: On-Demand (nothing is generated when a client asks), not Client Generated (no CSR is
#: signed on request) and not Client Registered (no client registers a certificate: clients
#: are trusted through the CA, ``tls.client_ca``).
CLIENT_REGISTRATION_METHODS: tuple[ClientRegistrationMethod, ...] = (ClientRegistrationMethod.SERVER_PRE_GENERATED,)


# --------------------------------------------------------------------------- Query Defaults Information


def defaults_information() -> DefaultsInformation:
    """The values Create (the factory operation) gives an attribute a client leaves out, by
    the object types it makes (Defaults Information is 2.x, where Create makes both).

    * Every object: Sensitive False, Extractable True (server_attributes.fill_defaults).
    * Secret Data: a Cryptographic Length of 256 bits (its Secret Data Type, Seed, is a field
      of the object, not an attribute).
    * Symmetric Key: nothing more. Cryptographic Algorithm and Length have no default (Create
      refuses a request without them), and the Cryptographic Usage Mask default depends on
      the algorithm (Encrypt and Decrypt for AES and Triple DES, MAC Generate and MAC Verify
      for HMAC), which Object Defaults, one set of values per object type, cannot express: it
      is left out rather than reported wrong for some keys.
    """
    shared = (FLAGS["Sensitive", False], FLAGS["Extractable", True])
    secret_length = Attribute(name="Cryptographic Length", value=DEFAULT_SECRET_BITS, type=ItemType.INTEGER)
    return DefaultsInformation(
        object_defaults=(
            ObjectDefaults(object_type=ObjectType.SYMMETRIC_KEY, attributes=Attributes(attributes=shared)),
            ObjectDefaults(
                object_type=ObjectType.SECRET_DATA, attributes=Attributes(attributes=(secret_length, *shared))
            ),
        )
    )


# --------------------------------------------------------------------------- Query Storage Protection Masks

#: Where objects may be kept: in the database, in software, their values wrapped under the
#: token's master key; the Protection Storage Mask every object has (server_attributes) and
#: the only one Create accepts.
STORAGE_PROTECTION_MASKS = ProtectionStorageMasks(masks=(PROTECTION_STORAGE,))
