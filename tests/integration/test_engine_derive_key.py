"""Derive Key through the engine: known answers from the standards (tests/vectors/kat/kdf.json)
computed by the server from registered base objects and read back with Get; the new object's
attributes and links; the errors of KMIP 1.4 §11.7 and 2.1 §6.1.14.1 in each version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kmip_client.protocol.model import Attribute, RequestBatchItem, RequestMessage
from kmip_client.protocol.model.attributes import CryptographicParameters, Link
from kmip_client.protocol.model.messages import REQUEST_PAYLOADS, decode_message
from kmip_client.protocol.model.objects import KeyBlock, KeyValue, OpaqueObject, SecretData, SymmetricKey
from kmip_client.protocol.model.payloads.structures import DerivationParameters
from kmip_client.protocol.spec.enums import (
    BlockCipherMode,
    CryptographicAlgorithm,
    CryptographicUsageMask,
    DerivationMethod,
    HashingAlgorithm,
    KeyFormatType,
    LinkType,
    ObjectType,
    Operation,
    PaddingMethod,
    ResultReason,
    SecretDataType,
    State,
)

from .engine_support import attributes_of, failure, one, register, run
from .kmip_messages import V14, V21, attrs_for, item, ok, request_bytes

KAT = json.loads((Path(__file__).parents[1] / "vectors" / "kat" / "kdf.json").read_text())
A = CryptographicAlgorithm
M = DerivationMethod
Usage = CryptographicUsageMask
R = ResultReason


def _bytes(case: dict, name: str) -> bytes:
    text = case.get(f"{name}_text")
    return text.encode() if text is not None else bytes.fromhex(case[name])


def _base(engine, version, value: bytes, algorithm=None, mask=Usage.DERIVE_KEY, activate=True, params=None) -> str:
    """A base object holding ``value``: a Symmetric Key of ``algorithm``, else Secret Data."""
    if algorithm is None:
        block = KeyBlock(key_format_type=KeyFormatType.OPAQUE, key_value=KeyValue(key_material=value))
        object_type, managed = (
            ObjectType.SECRET_DATA,
            SecretData(secret_data_type=SecretDataType.PASSWORD, key_block=block),
        )
    else:
        block = KeyBlock(
            key_format_type=KeyFormatType.RAW,
            key_value=KeyValue(key_material=value),
            cryptographic_algorithm=algorithm,
            cryptographic_length=len(value) * 8,
        )
        object_type, managed = ObjectType.SYMMETRIC_KEY, SymmetricKey(key_block=block)
    attributes = [Attribute(name="Cryptographic Usage Mask", value=mask)]
    if params is not None:
        attributes.append(Attribute(name="Cryptographic Parameters", value=params))
    uid = register(engine, version, object_type, managed, attributes)
    if activate:
        ok(one(engine, version, item(Operation.ACTIVATE, unique_identifier=uid)))
    return uid


def _derive_item(version, bases, method, params, length, object_type=ObjectType.SECRET_DATA, algorithm=None):
    attributes = [Attribute(name="Cryptographic Length", value=length)]
    if algorithm is not None:
        attributes.insert(0, Attribute(name="Cryptographic Algorithm", value=algorithm))
    return item(
        Operation.DERIVE_KEY,
        object_type=object_type,
        unique_identifiers=tuple(bases),
        derivation_method=method,
        derivation_parameters=params,
        **attrs_for(version, attributes),
    )


def _derive(engine, version, bases, method, params, length, **kwargs):
    return one(engine, version, _derive_item(version, bases, method, params, length, **kwargs))


def _value(engine, version, uid) -> bytes:
    got = ok(one(engine, version, item(Operation.GET, unique_identifier=uid)))
    return got.managed_object.key_block.key_value.key_material


def _derived(engine, version, bases, method, params, length, **kwargs) -> bytes:
    return _value(
        engine, version, ok(_derive(engine, version, bases, method, params, length, **kwargs)).unique_identifier
    )


# --------------------------------------------------------------------------- known answers


@pytest.mark.parametrize("version", [V14, V21])
@pytest.mark.parametrize(
    "case", KAT["pbkdf2"], ids=lambda c: f"{c['source']}-{c['hash']}-{c['iterations']}-{c['length']}"
)
def test_pbkdf2_known_answers(engine, version, case):
    """RFC 6070 (HMAC-SHA1) and RFC 7914 §11 (HMAC-SHA-256): the password is a Secret Data."""
    password = _base(engine, version, _bytes(case, "password"))
    params = DerivationParameters(
        cryptographic_parameters=CryptographicParameters(hashing_algorithm=HashingAlgorithm[case["hash"]]),
        salt=_bytes(case, "salt"),
        iteration_count=case["iterations"],
    )
    assert _derived(engine, version, [password], M.PBKDF2, params, case["length"]) == bytes.fromhex(case["output"])


def test_pbkdf2_defaults_to_hmac_sha1(engine):
    """No Hashing Algorithm: PKCS #5's default PRF, HMAC-SHA1 (RFC 6070 case 2)."""
    case = KAT["pbkdf2"][1]
    password = _base(engine, V21, _bytes(case, "password"))
    params = DerivationParameters(salt=_bytes(case, "salt"), iteration_count=case["iterations"])
    assert _derived(engine, V21, [password], M.PBKDF2, params, 160) == bytes.fromhex(case["output"])


@pytest.mark.parametrize("case", KAT["hkdf"], ids=lambda c: f"RFC5869-{c['case']}")
def test_hkdf_known_answers(engine, case):
    """RFC 5869 A.1-A.3 (HKDF is a KMIP 2.x method; SHA-256 is its default hash)."""
    ikm = _base(engine, V21, _bytes(case, "ikm"))
    info = _bytes(case, "info")
    params = DerivationParameters(salt=_bytes(case, "salt"), derivation_data=info or None)
    assert _derived(engine, V21, [ikm], M.HKDF, params, case["length"]) == bytes.fromhex(case["output"])


_PRF_KEYS = {"HMAC_SHA256": A.HMAC_SHA256, "CMAC_AES128": A.AES}


@pytest.mark.parametrize("version", [V14, V21])
@pytest.mark.parametrize("case", KAT["kbkdf"], ids=lambda c: f"{c['mode']}-{c['prf']}-r{c['rlen']}-L{c['length']}")
def test_sp800_108_known_answers(engine, version, case):
    """NIST CAVP KBKDF vectors: KI is a Symmetric Key whose algorithm gives the PRF (HMAC-SHA256
    or AES for CMAC); the Derivation Data is the fixed input; Counter Length is r."""
    ki = _base(engine, version, _bytes(case, "ki"), algorithm=_PRF_KEYS[case["prf"]])
    params = DerivationParameters(
        cryptographic_parameters=CryptographicParameters(counter_length=case["rlen"]),
        derivation_data=_bytes(case, "fixed"),
        initialization_vector=bytes.fromhex(case["iv"]) if case.get("iv") else None,
    )
    derived = _derived(engine, version, [ki], M[case["mode"]], params, case["length"])
    assert derived == bytes.fromhex(case["output"])


def test_sp800_108_prf_from_hashing_algorithm_with_a_secret_data_key(engine):
    """The PRF named by the Cryptographic Parameters' Hashing Algorithm, KI a Secret Data, the
    counter width left to its default (32 bits): CAVP counter-mode HMAC_SHA256 r=32, COUNT=30."""
    case = KAT["kbkdf"][1]
    ki = _base(engine, V21, _bytes(case, "ki"))
    params = DerivationParameters(
        cryptographic_parameters=CryptographicParameters(hashing_algorithm=HashingAlgorithm.SHA_256),
        derivation_data=_bytes(case, "fixed"),
    )
    assert _derived(engine, V21, [ki], M.NIST800_108_C, params, case["length"]) == bytes.fromhex(case["output"])


@pytest.mark.parametrize("version", [V14, V21])
def test_hmac_hash_and_encrypt_known_answers(engine, version):
    """KMIP's HMAC (RFC 4231 case 1; the hash is the key's algorithm), HASH (SHA-256 of "abc",
    FIPS 180-4) and ENCRYPT (AES-128 ECB, FIPS 197 C.1) methods."""
    case = KAT["hmac"]
    key = _base(engine, version, _bytes(case, "key"), algorithm=A.HMAC_SHA256)
    params = DerivationParameters(derivation_data=_bytes(case, "data"))
    assert _derived(engine, version, [key], M.HMAC, params, 256) == bytes.fromhex(case["output"])

    case = KAT["hash"]
    data = _base(engine, version, _bytes(case, "data"))
    params = DerivationParameters(
        cryptographic_parameters=CryptographicParameters(hashing_algorithm=HashingAlgorithm.SHA_256)
    )
    assert _derived(engine, version, [data], M.HASH, params, 256) == bytes.fromhex(case["output"])
    # Fewer bits: the leftmost ones.
    assert _derived(engine, version, [data], M.HASH, params, 128) == bytes.fromhex(case["output"])[:16]

    case = KAT["encrypt"]
    key = _base(engine, version, _bytes(case, "key"), algorithm=A.AES)
    params = DerivationParameters(
        cryptographic_parameters=CryptographicParameters(
            block_cipher_mode=BlockCipherMode.ECB, padding_method=PaddingMethod.NONE
        ),
        derivation_data=_bytes(case, "data"),
    )
    derived = _derived(
        engine, version, [key], M.ENCRYPT, params, 128, object_type=ObjectType.SYMMETRIC_KEY, algorithm=A.AES
    )
    assert derived == bytes.fromhex(case["output"])


def test_derivation_data_from_a_secret_data_object(engine):
    """RFC 4231 case 1 again, its data held by a second base object instead of Derivation Data."""
    case = KAT["hmac"]
    key = _base(engine, V21, _bytes(case, "key"), algorithm=A.HMAC_SHA256)
    data = _base(engine, V21, _bytes(case, "data"))
    assert _derived(engine, V21, [key, data], M.HMAC, DerivationParameters(), 256) == bytes.fromhex(case["output"])


def test_key_parameters_stand_in_for_the_requests(engine):
    """No Cryptographic Parameters in the request: the base key's attribute is used (HASH with
    the SHA-256 the key's Cryptographic Parameters name)."""
    case = KAT["hash"]
    stored = CryptographicParameters(hashing_algorithm=HashingAlgorithm.SHA_256)
    data = _base(engine, V21, _bytes(case, "data"), params=stored)
    assert _derived(engine, V21, [data], M.HASH, DerivationParameters(), 256) == bytes.fromhex(case["output"])


# --------------------------------------------------------------------------- the new object


@pytest.mark.parametrize("version", [V14, V21])
def test_derived_key_is_a_new_object_linked_to_its_base(engine, version):
    case = KAT["kbkdf"][0]
    ki = _base(engine, version, _bytes(case, "ki"), algorithm=A.HMAC_SHA256)
    params = DerivationParameters(derivation_data=_bytes(case, "fixed"))
    batch = run(
        engine,
        version,
        _derive_item(
            version, [ki], M.NIST800_108_C, params, 128, object_type=ObjectType.SYMMETRIC_KEY, algorithm=A.AES
        ),
        item(Operation.GET),  # the ID Placeholder: Derive Key sets it to the new object
    )
    derived, got = (ok(result) for result in batch.batch_items)
    uid = derived.unique_identifier
    assert uid != ki and got.unique_identifier == uid and got.object_type == ObjectType.SYMMETRIC_KEY
    block = got.managed_object.key_block
    assert block.key_value.key_material == bytes.fromhex(case["output"])
    assert block.cryptographic_algorithm == A.AES and block.cryptographic_length == 128
    attrs = attributes_of(engine, uid, version)
    assert attrs["Cryptographic Algorithm"] == A.AES and attrs["Cryptographic Length"] == 128
    assert attrs["State"] == State.PRE_ACTIVE
    assert attrs["Link"] == Link(link_type=LinkType.DERIVATION_BASE_OBJECT_LINK, linked_object_identifier=ki)
    assert attrs["Original Creation Date"] == attrs["Initial Date"]
    assert "Random Number Generator" not in attrs  # computed, not drawn from the generator
    base = attributes_of(engine, ki, version)
    assert base["Link"] == Link(link_type=LinkType.DERIVED_KEY_LINK, linked_object_identifier=uid)


def test_each_derivation_adds_a_derived_key_link(engine):
    case = KAT["hash"]
    data = _base(engine, V21, _bytes(case, "data"))
    params = DerivationParameters(
        cryptographic_parameters=CryptographicParameters(hashing_algorithm=HashingAlgorithm.SHA_256)
    )
    first = ok(_derive(engine, V21, [data], M.HASH, params, 128)).unique_identifier
    second = ok(_derive(engine, V21, [data], M.HASH, params, 256)).unique_identifier
    got = ok(one(engine, V21, item(Operation.GET_ATTRIBUTES, unique_identifier=data, attribute_references=())))
    links = {a.value.linked_object_identifier for a in got.attributes.attributes if a.name == "Link"}
    assert links == {first, second}


def test_triple_des_key_gets_odd_parity(engine):
    key = _base(engine, V21, bytes(range(32)), algorithm=A.HMAC_SHA256)
    params = DerivationParameters(derivation_data=b"label\x00context")
    value = _derived(
        engine, V21, [key], M.NIST800_108_C, params, 168, object_type=ObjectType.SYMMETRIC_KEY, algorithm=A.DES3
    )
    assert len(value) == 24 and all(bin(b).count("1") % 2 == 1 for b in value)


# --------------------------------------------------------------------------- errors


def _hash_params() -> DerivationParameters:
    return DerivationParameters(
        cryptographic_parameters=CryptographicParameters(hashing_algorithm=HashingAlgorithm.SHA_256)
    )


@pytest.mark.parametrize("version", [V14, V21])
def test_missing_derivation_parameters(engine, version):
    data = _base(engine, version, b"abc")
    failure(_derive(engine, version, [data], M.HASH, None, 128), R.INVALID_FIELD)


@pytest.mark.parametrize(("version", "method", "reason"), [
    (V21, M.ASYMMETRIC_KEY, R.FEATURE_NOT_SUPPORTED),
    (V21, M.AWS_SIGNATURE_VERSION_4, R.FEATURE_NOT_SUPPORTED),
    (V14, M.HKDF, R.INVALID_FIELD),  # a 2.x method
])  # fmt: skip
def test_unsupported_method(engine, version, method, reason):
    data = _base(engine, version, b"abc")
    failure(_derive(engine, version, [data], method, _hash_params(), 128), reason)


@pytest.mark.parametrize(
    ("version", "reason"), [(V14, R.INVALID_FIELD), (V21, R.INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK)]
)
def test_base_without_derive_key_usage(engine, version, reason):
    """KMIP 1.4 §11.7: "not able to be used to derive a new key" is Invalid Field."""
    data = _base(engine, version, b"abc", mask=Usage.ENCRYPT)
    message = failure(_derive(engine, version, [data], M.HASH, _hash_params(), 128), reason)
    assert "DERIVE_KEY" in message


@pytest.mark.parametrize(("version", "reason"), [(V14, R.PERMISSION_DENIED), (V21, R.WRONG_KEY_LIFECYCLE_STATE)])
def test_base_must_be_active(engine, version, reason):
    data = _base(engine, version, b"abc", activate=False)
    failure(_derive(engine, version, [data], M.HASH, _hash_params(), 128), reason)


@pytest.mark.parametrize(("version", "reason"), [(V14, R.INVALID_FIELD), (V21, R.INVALID_OBJECT_TYPE)])
def test_base_of_another_object_type(engine, version, reason):
    """KMIP 1.4 §11.7: "not of the correct type" is Invalid Field; 2.x has Invalid Object Type."""
    opaque = OpaqueObject(opaque_data_type=0x80000001, opaque_data_value=b"opaque")
    uid = register(engine, version, ObjectType.OPAQUE_OBJECT, opaque)
    failure(_derive(engine, version, [uid], M.HASH, _hash_params(), 128), reason)


@pytest.mark.parametrize(("version", "reason"), [(V14, R.INVALID_FIELD), (V21, R.INVALID_OBJECT_TYPE)])
def test_new_object_must_be_a_key_or_secret(engine, version, reason):
    data = _base(engine, version, b"abc")
    failure(_derive(engine, version, [data], M.HASH, _hash_params(), 128, object_type=ObjectType.OPAQUE_OBJECT), reason)


@pytest.mark.parametrize("version", [V14, V21])
def test_derivation_data_given_twice_is_ambiguous(engine, version):
    """KMIP 1.4 §11.7: derivation data both in Derivation Data and by a Secret Data object is Invalid Message."""
    key = _base(engine, version, b"\x0b" * 20, algorithm=A.HMAC_SHA256)
    data = _base(engine, version, b"Hi There")
    params = DerivationParameters(derivation_data=b"Hi There")
    failure(_derive(engine, version, [key, data], M.HMAC, params, 256), R.INVALID_MESSAGE)


@pytest.mark.parametrize(("version", "reason"), [(V14, R.INVALID_FIELD), (V21, R.INVALID_ATTRIBUTE_VALUE)])
def test_length_beyond_the_methods_output(engine, version, reason):
    data = _base(engine, version, b"abc")
    message = failure(_derive(engine, version, [data], M.HASH, _hash_params(), 264), reason)
    assert "256 bits" in message


@pytest.mark.parametrize(
    "params",
    [
        DerivationParameters(iteration_count=1),  # no Salt
        DerivationParameters(salt=b"salt"),  # no Iteration Count
        DerivationParameters(salt=b"salt", iteration_count=0),
        DerivationParameters(salt=b"salt", iteration_count=10_000_001),  # over the server's bound
    ],
)
def test_pbkdf2_needs_salt_and_a_sane_iteration_count(engine, params):
    password = _base(engine, V21, b"password")
    failure(_derive(engine, V21, [password], M.PBKDF2, params, 160), R.INVALID_FIELD)


def test_id_placeholder_does_not_name_the_base(engine):
    """KMIP: "the current value of the ID Placeholder SHALL NOT be used in place of a Unique
    Identifier in this operation"."""
    data = _base(engine, V21, b"abc")
    batch = run(
        engine,
        V21,
        item(Operation.GET_ATTRIBUTES, unique_identifier=data, attribute_references=()),  # sets the placeholder
        _derive_item(V21, [], M.HASH, _hash_params(), 128),
    )
    ok(batch.batch_items[0])
    failure(batch.batch_items[1], R.INVALID_FIELD)


@pytest.mark.parametrize(("method", "width"), [(M.NIST800_108_C, 12), (M.NIST800_108_C, 0), (M.NIST800_108_F, 40)])
def test_counter_widths_are_those_of_sp800_108(engine, method, width):
    """r is 8, 16, 24 or 32 bits (0, no counter, in feedback and double-pipeline mode only)."""
    key = _base(engine, V21, bytes(32), algorithm=A.HMAC_SHA256)
    params = DerivationParameters(
        cryptographic_parameters=CryptographicParameters(counter_length=width), derivation_data=b"x"
    )
    failure(_derive(engine, V21, [key], method, params, 128), R.BAD_CRYPTOGRAPHIC_PARAMETERS)


def test_derivation_data_never_appears_in_an_error(engine):
    key = _base(engine, V21, bytes(16), algorithm=A.AES)
    secret = b"do-not-echo-this-derivation-data"
    params = DerivationParameters(
        cryptographic_parameters=CryptographicParameters(block_cipher_mode=BlockCipherMode.ECB),
        derivation_data=secret[:30],  # not whole blocks
    )
    message = failure(_derive(engine, V21, [key], M.ENCRYPT, params, 128), R.BAD_CRYPTOGRAPHIC_PARAMETERS)
    assert "do-not-echo" not in message and secret[:30].hex() not in message


# --------------------------------------------------------------------------- the request model


@pytest.mark.parametrize("version", [V14, V21])
def test_derive_key_request_round_trips(version):
    """The DeriveKeyRequest model encodes and decodes back in either version's form: several
    Unique Identifiers, Derivation Parameters with every field, Template-Attribute or Attributes."""
    params = DerivationParameters(
        cryptographic_parameters=CryptographicParameters(hashing_algorithm=HashingAlgorithm.SHA_256, counter_length=16),
        initialization_vector=b"\x01" * 16,
        derivation_data=b"label\x00context",
        salt=b"salt",
        iteration_count=4096,
    )
    request = REQUEST_PAYLOADS[Operation.DERIVE_KEY](
        object_type=ObjectType.SECRET_DATA,
        unique_identifiers=("a", "b"),
        derivation_method=M.NIST800_108_F,
        derivation_parameters=params,
        **attrs_for(version, [Attribute(name="Cryptographic Length", value=256)]),
    )
    message = decode_message(request_bytes(version, RequestBatchItem(operation=Operation.DERIVE_KEY, payload=request)))
    assert isinstance(message, RequestMessage)
    assert message.batch_items[0].payload == request
