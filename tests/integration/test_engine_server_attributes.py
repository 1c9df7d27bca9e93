"""The engine in process — the attributes the server sets, what each KMIP version sees of them
and in what order: real SoftHSM2 custody, real stores, the dispatcher fed encoded bytes.

The expected lists are those of the OASIS test cases (KMIP Profiles 1.3 to 2.1: SKFF-M-9,
SKLC-O-1), which the conformance run replays too.
"""

from __future__ import annotations

import hashlib

import pytest

from kmip_client.protocol.model import Attribute, Name
from kmip_client.protocol.model.attributes import ProtectionStorageMasks, RandomNumberGenerator, RevocationReason
from kmip_client.protocol.model.objects import KeyBlock, KeyValue, SymmetricKey
from kmip_client.protocol.model.payloads.structures import attribute_reference, reference_name
from kmip_client.protocol.spec.enums import (
    CryptographicAlgorithm,
    DRBGAlgorithm,
    KeyFormatType,
    ObjectType,
    Operation,
    ProtectionStorageMask,
    ResultReason,
    RevocationReasonCode,
    RNGAlgorithm,
)
from kmip_server.custody import RandomGenerator
from kmip_server.objects.server_attributes import listing_key

from .engine_support import T0, attributes_of, create, failure, one, register, run, set_attribute
from .kmip_messages import V14, V21, at, create_aes, item, ok

V13, V12, V11, V10, V20 = (1, 3), (1, 2), (1, 1), (1, 0), (2, 0)
ALL_VERSIONS = [V10, V11, V12, V13, V14, V20, V21]
TOKEN_GENERATOR = RandomNumberGenerator(
    rng_algorithm=RNGAlgorithm.DRBG,
    cryptographic_algorithm=CryptographicAlgorithm.AES,
    cryptographic_length=256,
    drbg_algorithm=DRBGAlgorithm.CTR,
)


def listed(engine, uid, version) -> list[str]:
    """Get Attribute List, as 1.x names in the order the server gave."""
    payload = ok(one(engine, version, item(Operation.GET_ATTRIBUTE_LIST, unique_identifier=uid)))
    if version >= V20:
        return [reference_name(ref) for ref in payload.attribute_references]
    return list(payload.attribute_names)


def everything(engine, uid, version) -> list[tuple[str, object]]:
    """Get Attributes without names: (1.x name, value) in the order the server gave."""
    payload = ok(one(engine, version, item(Operation.GET_ATTRIBUTES, unique_identifier=uid)))
    listed = payload.attributes.attributes if version >= V20 else payload.attribute_list
    return [(a.name, a.value) for a in listed]


def compromised_key(engine, version) -> str:
    """SKFF-M-9's key: created (AES-128, a Name, Encrypt), activated, revoked as compromised."""
    uid = create(engine, version, length=128, name="SKFF-M-9")
    ok(one(engine, version, item(Operation.ACTIVATE, unique_identifier=uid)))
    reason = RevocationReason(code=RevocationReasonCode.KEY_COMPROMISE)
    revoke = item(Operation.REVOKE, unique_identifier=uid, revocation_reason=reason, compromise_occurrence_date=at(6))
    ok(one(engine, version, revoke))
    return uid


# --------------------------------------------------------------------------- lists and order

SKFF_M_9_14 = [
    "Unique Identifier",
    "Object Type",
    "Cryptographic Algorithm",
    "Cryptographic Length",
    "Activation Date",
    "Always Sensitive",
    "Compromise Date",
    "Compromise Occurrence Date",
    "Cryptographic Usage Mask",
    "Digest",
    "Extractable",
    "Fresh",
    "Initial Date",
    "Last Change Date",
    "Lease Time",
    "Name",
    "Never Extractable",
    "Original Creation Date",
    "Random Number Generator",
    "Revocation Reason",
    "Sensitive",
    "State",
]
_V2_ONLY = {"Short Unique Identifier", "Key Format Type", "Protection Storage Mask"}
_V14_ONLY = {"Always Sensitive", "Extractable", "Never Extractable", "Sensitive"}


def test_attribute_list_of_a_compromised_key_14(engine):
    assert listed(engine, compromised_key(engine, V14), V14) == SKFF_M_9_14


def test_attribute_list_of_a_compromised_key_2x(engine):
    expected = list(SKFF_M_9_14)
    expected.insert(1, "Short Unique Identifier")
    expected.insert(expected.index("Digest") + 1, "Key Format Type")
    expected.insert(expected.index("Original Creation Date") + 1, "Protection Storage Mask")
    uid = compromised_key(engine, V21)
    assert listed(engine, uid, V21) == expected
    assert listed(engine, uid, V20) == expected


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_each_version_sees_only_its_own_attributes(engine, version):
    uid = compromised_key(engine, V21)
    hidden = set()
    if version < V20:
        hidden |= _V2_ONLY
    if version < V14:
        hidden |= _V14_ONLY
    if version < V13:
        hidden.add("Random Number Generator")
    if version < V12:
        hidden.add("Original Creation Date")
    if version < V11:
        hidden.add("Fresh")
    expected = [n for n in listed(engine, uid, V21) if n not in hidden]
    names = listed(engine, uid, version)
    assert names == expected
    assert [name for name, _ in everything(engine, uid, version)] == expected
    # Asked for by name, an attribute the version does not have is not there either.
    if version < V20:
        assert attributes_of(engine, uid, version, names=sorted(_V2_ONLY | _V14_ONLY | {"State"})).keys() == {
            "State",
            *(_V14_ONLY if version >= V14 else ()),
        }


def test_custom_attributes_come_first_sorted_by_name(engine):
    uid = create(engine, V14, extra=[Attribute(name="x-ID", value="TL-M-2"), Attribute(name="x-Barcode", value="XX")])
    names = listed(engine, uid, V14)
    assert names[:4] == ["x-Barcode", "x-ID", "Unique Identifier", "Object Type"]
    refs = listed(engine, uid, V21)
    assert refs[:3] == ["x-Barcode", "x-ID", "Unique Identifier"]
    assert sorted(names, key=listing_key) == names


# --------------------------------------------------------------------------- values


def test_values_of_a_created_key_14(engine, clock):
    uid = create(engine, V14, length=256, name="SKLC-O-1")
    clock.now += 5
    ok(one(engine, V14, item(Operation.DESTROY, unique_identifier=uid)))
    got = dict(everything(engine, uid, V14))
    assert got["Always Sensitive"] is False
    assert got["Sensitive"] is False
    assert got["Extractable"] is True
    assert got["Never Extractable"] is False
    assert got["Fresh"] is True  # never served by Get
    assert got["Lease Time"] == 3600
    assert got["Original Creation Date"] == got["Initial Date"] == at(T0)
    assert got["Destroy Date"] == got["Last Change Date"] == at(T0 + 5)
    assert got["Random Number Generator"] == TOKEN_GENERATOR


def test_values_of_a_created_key_21(engine):
    uid = create(engine, V21)
    got = dict(everything(engine, uid, V21))
    assert got["Short Unique Identifier"] == hashlib.sha256(uid.encode()).digest()
    assert got["Key Format Type"] == KeyFormatType.RAW
    assert got["Protection Storage Mask"] == ProtectionStorageMask.SOFTWARE
    assert got["Random Number Generator"] == TOKEN_GENERATOR
    assert got["Original Creation Date"] == got["Initial Date"]
    assert (got["Fresh"], got["Sensitive"], got["Extractable"]) == (True, False, True)


def test_the_token_generator_is_described():
    """SoftHSM2 on OpenSSL draws from OpenSSL's default generator, a CTR-DRBG on AES-256."""
    from kmip_server.custody.pkcs11 import _token_generator
    from kmip_server.custody.softhsm import find_softhsm_module

    module = find_softhsm_module()
    assert module is not None
    assert _token_generator(module) == RandomGenerator(kind="drbg", drbg="ctr", cipher="aes", bits=256)
    assert _token_generator(module.with_name("libCryptoki2_64.so")).kind == "unspecified"


def test_server_set_attributes_cannot_be_changed(engine):
    uid = create(engine, V21)
    for attr in (
        Attribute(name="Fresh", value=False),
        Attribute(name="Lease Time", value=10),
        Attribute(name="Always Sensitive", value=True),
        Attribute(name="Original Creation Date", value=at(5)),
        Attribute(name="Random Number Generator", value=RandomNumberGenerator(rng_algorithm=RNGAlgorithm.NRBG)),
        Attribute(name="Protection Storage Mask", value=2),
    ):
        failure(set_attribute(engine, uid, attr), ResultReason.ATTRIBUTE_READ_ONLY)
    failure(
        one(
            engine,
            V21,
            item(
                Operation.DELETE_ATTRIBUTE, unique_identifier=uid, attribute_reference=attribute_reference("Sensitive")
            ),
        ),
        ResultReason.ATTRIBUTE_READ_ONLY,
    )


# --------------------------------------------------------------------------- Fresh


def fresh(engine, uid, version=V14):
    return attributes_of(engine, uid, version, names=["Fresh"])["Fresh"]


def test_get_in_a_message_that_writes_ends_freshness(engine):
    uid = create(engine, V14)
    assert fresh(engine, uid) is True
    result = run(
        engine, V14, item(Operation.ACTIVATE, unique_identifier=uid), item(Operation.GET, unique_identifier=uid)
    )
    assert [ok(r).unique_identifier for r in result.batch_items] == [uid, uid]
    assert fresh(engine, uid) is False
    assert fresh(engine, uid, V21) is False
    ok(one(engine, V14, item(Operation.GET, unique_identifier=uid)))  # and stays so
    assert fresh(engine, uid) is False


def test_create_and_get_in_one_message(engine):
    created, got = run(engine, V21, create_aes(V21), item(Operation.GET)).batch_items
    uid = ok(created).unique_identifier
    assert ok(got).unique_identifier == uid
    assert fresh(engine, uid, V21) is False


def test_a_refused_get_leaves_the_object_fresh(engine):
    uid = create(engine, V14, extra=[Attribute(name="Sensitive", value=True)])
    writing = run(
        engine, V14, item(Operation.ACTIVATE, unique_identifier=uid), item(Operation.GET, unique_identifier=uid)
    )
    failure(writing.batch_items[1], ResultReason.SENSITIVE)
    assert fresh(engine, uid) is True


def test_a_get_alone_ends_freshness(engine):
    # A Get alone runs in a read transaction; finding the object Fresh, it leaves the write
    # to the short write transaction that records the message (its audit record): the Get
    # is not run again, and each Get costs that one write transaction.
    uid = create(engine, V14)
    writes: list[bool] = []
    write = engine.repository.write
    engine.repository.write = lambda *, durable=True: writes.append(durable) or write(durable=durable)
    try:
        ok(one(engine, V14, item(Operation.GET, unique_identifier=uid)))
        assert fresh(engine, uid) is False
        ok(one(engine, V14, item(Operation.GET, unique_identifier=uid)))
    finally:
        del engine.repository.write
    # Get, the Get Attributes of fresh(), Get: one each; only the first changes something
    # (Fresh cleared), so only its transaction waits for the disk.
    assert writes == [True, False, False]


# --------------------------------------------------------------------------- Sensitive / Extractable history


def test_always_sensitive_and_never_extractable_follow_their_history(engine):
    uid = create(
        engine, V14, extra=[Attribute(name="Sensitive", value=True), Attribute(name="Extractable", value=False)]
    )
    both = ["Sensitive", "Always Sensitive", "Extractable", "Never Extractable"]
    assert attributes_of(engine, uid, V14, names=both) == dict.fromkeys(both, True) | {"Extractable": False}

    def modify(name, value):
        ok(
            one(
                engine,
                V14,
                item(Operation.MODIFY_ATTRIBUTE, unique_identifier=uid, attribute=Attribute(name=name, value=value)),
            )
        )

    modify("Sensitive", False)
    modify("Extractable", True)
    got = attributes_of(engine, uid, V14, names=both)
    assert got == {"Sensitive": False, "Always Sensitive": False, "Extractable": True, "Never Extractable": False}
    modify("Sensitive", True)
    modify("Extractable", False)
    # What they have been stays: ever not sensitive, ever extractable.
    got = attributes_of(engine, uid, V14, names=both)
    assert got == {"Sensitive": True, "Always Sensitive": False, "Extractable": False, "Never Extractable": False}


def test_defaults_of_sensitive_and_extractable_are_values_to_modify(engine):
    uid = create(engine, V14)
    ok(
        one(
            engine,
            V14,
            item(
                Operation.MODIFY_ATTRIBUTE, unique_identifier=uid, attribute=Attribute(name="Extractable", value=False)
            ),
        )
    )
    got = attributes_of(engine, uid, V14, names=["Extractable", "Never Extractable"])
    assert got == {"Extractable": False, "Never Extractable": False}
    # Sensitive always has a value, so it cannot be added a second time.
    add = item(Operation.ADD_ATTRIBUTE, unique_identifier=uid, attribute=Attribute(name="Sensitive", value=True))
    failure(one(engine, V14, add), ResultReason.INVALID_FIELD)


# --------------------------------------------------------------------------- Create and Register


def test_create_checks_a_requested_random_number_generator(engine):
    mine = Attribute(name="Random Number Generator", value=TOKEN_GENERATOR)
    uid = create(engine, V21, extra=[mine])
    assert attributes_of(engine, uid, V21, names=["Random Number Generator"]) == {
        "Random Number Generator": TOKEN_GENERATOR
    }
    other = Attribute(
        name="Random Number Generator", value=RandomNumberGenerator(rng_algorithm=RNGAlgorithm.ANSI_X9_31)
    )
    failure(one(engine, V21, create_aes(V21, extra=[other])), ResultReason.INVALID_ATTRIBUTE_VALUE)
    failure(one(engine, V14, create_aes(V14, extra=[other])), ResultReason.INVALID_FIELD)


def test_create_sets_original_creation_date_and_freshness_itself(engine, clock):
    given = [Attribute(name="Original Creation Date", value=at(1000)), Attribute(name="Fresh", value=False)]
    uid = create(engine, V21, extra=given)
    got = attributes_of(engine, uid, V21, names=["Original Creation Date", "Fresh"])
    assert got == {"Original Creation Date": at(T0), "Fresh": True}


def _register(engine, version, extra):
    key = SymmetricKey(
        key_block=KeyBlock(
            key_format_type=KeyFormatType.RAW,
            key_value=KeyValue(key_material=bytes(range(16))),
            cryptographic_algorithm=CryptographicAlgorithm.AES,
            cryptographic_length=128,
        )
    )
    return register(engine, version, ObjectType.SYMMETRIC_KEY, key, extra)


def test_register_keeps_what_the_client_says_of_the_object(engine):
    plain = _register(engine, V21, [])
    names = listed(engine, plain, V21)
    assert "Random Number Generator" not in names and "Original Creation Date" not in names
    assert fresh(engine, plain, V21) is True
    given = [
        Attribute(name="Fresh", value=False),
        Attribute(name="Original Creation Date", value=at(1000)),
        Attribute(name="Name", value=Name(value="registered")),
    ]
    uid = _register(engine, V21, given)
    assert attributes_of(engine, uid, V21, names=["Fresh", "Original Creation Date"]) == {
        "Fresh": False,
        "Original Creation Date": at(1000),
    }
    # Its generator may be told later, once; a generated key's never.
    rng = Attribute(name="Random Number Generator", value=RandomNumberGenerator(rng_algorithm=RNGAlgorithm.NRBG))
    add = item(Operation.ADD_ATTRIBUTE, unique_identifier=plain, attribute=rng)
    ok(one(engine, V14, add))
    failure(one(engine, V14, add), ResultReason.INVALID_FIELD)
    generated = create(engine, V14)
    add = item(Operation.ADD_ATTRIBUTE, unique_identifier=generated, attribute=rng)
    failure(one(engine, V14, add), ResultReason.INVALID_FIELD)


def test_protection_storage_masks_must_allow_software(engine):
    hardware = ProtectionStorageMasks(masks=(ProtectionStorageMask.HARDWARE,))
    request = create_aes(V21)
    refused = item(
        Operation.CREATE,
        object_type=ObjectType.SYMMETRIC_KEY,
        attributes=request.payload.attributes,
        protection_storage_masks=hardware,
    )
    failure(one(engine, V21, refused), ResultReason.PROTECTION_STORAGE_UNAVAILABLE)
    either = ProtectionStorageMasks(masks=(ProtectionStorageMask.HARDWARE, ProtectionStorageMask.SOFTWARE))
    accepted = item(
        Operation.CREATE,
        object_type=ObjectType.SYMMETRIC_KEY,
        attributes=request.payload.attributes,
        protection_storage_masks=either,
    )
    ok(one(engine, V21, accepted))
