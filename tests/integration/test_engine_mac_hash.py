"""MAC, MAC Verify and Hash through the engine, on the real token and both stores: the known
answers of the standards (tests/vectors/kat: RFC 4231, RFC 2202, NIST SP 800-38B, FIPS 180-4
and 202), whole and streamed, the method named by the key's or the request's parameters, and
the refusals with their Result Reasons."""

from __future__ import annotations

import hmac as stdlib_hmac
import json
from pathlib import Path
from typing import Any

import pytest

from kmip_client.protocol.model import Attribute
from kmip_client.protocol.model.attributes import CryptographicParameters, RevocationReason
from kmip_client.protocol.model.objects import KeyBlock, KeyValue, SecretData, SymmetricKey
from kmip_client.protocol.spec.enums import (
    CryptographicAlgorithm,
    CryptographicUsageMask,
    HashingAlgorithm,
    KeyFormatType,
    ObjectType,
    Operation,
    ResultReason,
    RevocationReasonCode,
    SecretDataType,
    ValidityIndicator,
)

from .engine_support import failure, one, register, run
from .kmip_messages import V14, V21, attrs_for, item, ok

KAT = Path(__file__).resolve().parents[1] / "vectors" / "kat"
A = CryptographicAlgorithm
Usage = CryptographicUsageMask
R = ResultReason
MAC_USES = Usage.MAC_GENERATE | Usage.MAC_VERIFY


def _load(name: str) -> Any:
    return json.loads((KAT / name).read_text())


def _bytes(case: dict[str, Any], field: str) -> bytes:
    if f"{field}_text" in case:
        return case[f"{field}_text"].encode("ascii")
    if f"{field}_repeat" in case:
        pattern, times = case[f"{field}_repeat"]
        return bytes.fromhex(pattern) * times
    return bytes.fromhex(case[field])


HMAC_CASES = _load("hmac.json")["cases"]
CMAC = _load("cmac_aes.json")
SHA_CASES = _load("sha.json")["cases"]


def symmetric_key(
    engine, version, key: bytes, algorithm: A, *, usage: int = MAC_USES, parameters=None, activate=True, bits=None
) -> str:
    """Register ``key`` as a Raw symmetric key (Active unless told otherwise); its identifier."""
    block = KeyBlock(
        key_format_type=KeyFormatType.RAW,
        key_value=KeyValue(key_material=key),
        cryptographic_algorithm=algorithm,
        cryptographic_length=bits or len(key) * 8,
    )
    attributes = [Attribute(name="Cryptographic Usage Mask", value=usage)]
    if parameters is not None:
        attributes.append(Attribute(name="Cryptographic Parameters", value=parameters))
    uid = register(engine, version, ObjectType.SYMMETRIC_KEY, SymmetricKey(key_block=block), attributes)
    if activate:
        ok(one(engine, version, item(Operation.ACTIVATE, unique_identifier=uid)))
    return uid


def secret_data(engine, version, key: bytes, usage: int = MAC_USES) -> str:
    """Register ``key`` as Active Secret Data (a Seed); its identifier."""
    block = KeyBlock(key_format_type=KeyFormatType.OPAQUE, key_value=KeyValue(key_material=key))
    secret = SecretData(secret_data_type=SecretDataType.SEED, key_block=block)
    uid = register(
        engine, version, ObjectType.SECRET_DATA, secret, [Attribute(name="Cryptographic Usage Mask", value=usage)]
    )
    ok(one(engine, version, item(Operation.ACTIVATE, unique_identifier=uid)))
    return uid


def hmac_key(engine, version, key: bytes, algorithm: A) -> tuple[str, CryptographicParameters | None]:
    """An HMAC key for ``key`` and the parameters a request needs for it: a symmetric key of
    that algorithm, or Secret Data (the algorithm named by the request) for a key shorter than
    the 64 bits Register accepts for HMAC keys (RFC 4231 case 2's "Jefe")."""
    if len(key) >= 8:
        return symmetric_key(engine, version, key, algorithm), None
    return secret_data(engine, version, key), CryptographicParameters(cryptographic_algorithm=algorithm)


def mac_of(engine, version, uid: str | None, data: bytes, parameters=None) -> bytes:
    request = item(Operation.MAC, unique_identifier=uid, cryptographic_parameters=parameters, data=data)
    payload = ok(one(engine, version, request))
    assert payload.unique_identifier == uid
    return payload.mac_data


def verify(engine, version, uid: str, data: bytes, mac: bytes, parameters=None) -> ValidityIndicator:
    request = item(
        Operation.MAC_VERIFY, unique_identifier=uid, cryptographic_parameters=parameters, data=data, mac_data=mac
    )
    payload = ok(one(engine, version, request))
    assert payload.unique_identifier == uid
    return payload.validity_indicator


def digest_of(engine, version, algorithm, data: bytes) -> bytes:
    params = CryptographicParameters(hashing_algorithm=algorithm)
    return ok(one(engine, version, item(Operation.HASH, cryptographic_parameters=params, data=data))).data


# ---- known answers


@pytest.mark.parametrize("algorithm", ["HMAC_SHA1", "HMAC_SHA224", "HMAC_SHA256", "HMAC_SHA384", "HMAC_SHA512"])
def test_hmac_known_answers(engine, algorithm):
    """RFC 4231 (SHA-2) and RFC 2202 (SHA-1): each case's key registered as an HMAC key of
    that algorithm; MAC gives the RFC's value, MAC Verify accepts it and refuses it changed."""
    cases = [c for c in HMAC_CASES if algorithm in c["mac"]]
    assert len(cases) == 6
    for index, case in enumerate(cases):
        version = V21 if index % 2 else V14
        uid, params = hmac_key(engine, version, _bytes(case, "key"), A[algorithm])
        data, expected = _bytes(case, "data"), bytes.fromhex(case["mac"][algorithm])
        assert mac_of(engine, version, uid, data, params) == expected, (case["source"], case["case"])
        assert verify(engine, version, uid, data, expected, params) == ValidityIndicator.VALID
        changed = expected[:-1] + bytes([expected[-1] ^ 1])
        assert verify(engine, version, uid, data, changed, params) == ValidityIndicator.INVALID
        assert verify(engine, version, uid, data + b"!", expected, params) == ValidityIndicator.INVALID


@pytest.mark.parametrize("algorithm", ["HMAC_SHA3_224", "HMAC_SHA3_256", "HMAC_SHA3_384", "HMAC_SHA3_512"])
def test_hmac_sha3(engine, algorithm):
    """HMAC with SHA-3 (no RFC vectors): the server's value is Python's own hmac module's over
    RFC 4231 case 6's key, longer than every SHA-3 block, and MAC Verify accepts it."""
    case = next(c for c in HMAC_CASES if c["source"] == "RFC 4231" and c["case"] == 6)
    key, data = _bytes(case, "key"), _bytes(case, "data")
    uid = symmetric_key(engine, V21, key, A[algorithm])
    expected = stdlib_hmac.new(key, data, algorithm.removeprefix("HMAC_").lower()).digest()
    assert mac_of(engine, V21, uid, data) == expected
    assert verify(engine, V21, uid, data, expected) == ValidityIndicator.VALID


@pytest.mark.parametrize("key_bits", [128, 192, 256])
def test_cmac_aes_known_answers(engine, key_bits):
    """NIST SP 800-38B Appendix D (AES-128 = RFC 4493): an AES key MACs with CMAC."""
    cases = [c for c in CMAC["cases"] if len(c["key"]) * 4 == key_bits]
    assert len(cases) == 4
    uid = symmetric_key(engine, V21, bytes.fromhex(cases[0]["key"]), A.AES)
    for case in cases:
        message, expected = bytes.fromhex(CMAC["messages"][case["message"]]), bytes.fromhex(case["mac"])
        assert mac_of(engine, V21, uid, message) == expected, case["example"]
        assert verify(engine, V14, uid, message, expected) == ValidityIndicator.VALID
        assert verify(engine, V14, uid, message, bytes(16)) == ValidityIndicator.INVALID


@pytest.mark.parametrize("algorithm", sorted({c["algorithm"] for c in SHA_CASES}))
def test_hash_known_answers(engine, algorithm):
    """FIPS 180-4 and FIPS 202 example values, in 1.4 and 2.1."""
    for case in (c for c in SHA_CASES if c["algorithm"] == algorithm):
        data, expected = _bytes(case, "data"), bytes.fromhex(case["digest"])
        for version in (V14, V21):
            assert digest_of(engine, version, HashingAlgorithm[algorithm], data) == expected, case


def test_sha3_named_as_the_cryptographic_algorithm(engine):
    """2.x names SHA-3 functions as Cryptographic Algorithms too."""
    params = CryptographicParameters(cryptographic_algorithm=A.SHA3_256)
    got = ok(one(engine, V21, item(Operation.HASH, cryptographic_parameters=params, data=b"abc"))).data
    assert got.hex() == "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"


# ---- the method: the key's parameters, the request's, the key's algorithm

CS_AC_KEY = bytes.fromhex("0123456789abcdef0123456789abcdef")
CS_AC_DATA = bytes.fromhex("01020304050607080910111213141516")
CS_AC_MAC = bytes.fromhex("c911e78196d64c30f631bb079ea37b97a95936d4da764d6a171df030c895ecf9")


@pytest.mark.parametrize("version", [V14, V21])
def test_the_keys_cryptographic_parameters_name_hmac(engine, version):
    """CS-AC-M-4/5/6: an AES key whose Cryptographic Parameters say HMAC_SHA256 MACs with
    HMAC-SHA-256 when the request names none (the value is the profile files')."""
    params = CryptographicParameters(cryptographic_algorithm=A.HMAC_SHA256)
    uid = symmetric_key(
        engine, version, CS_AC_KEY, A.AES, usage=Usage.ENCRYPT | Usage.DECRYPT | MAC_USES, parameters=params
    )
    assert mac_of(engine, version, uid, CS_AC_DATA) == CS_AC_MAC
    assert verify(engine, version, uid, CS_AC_DATA, CS_AC_MAC) == ValidityIndicator.VALID
    # The same AES key, the request asking for CMAC instead: the request's parameters win.
    cmac = mac_of(engine, version, uid, CS_AC_DATA, CryptographicParameters(cryptographic_algorithm=A.AES))
    assert len(cmac) == 16 and cmac != CS_AC_MAC[:16]


def test_a_hashing_algorithm_asks_for_hmac(engine):
    """Parameters naming only a Hashing Algorithm: HMAC with it (RFC 4231 case 3, SHA-384)."""
    case = next(c for c in HMAC_CASES if c["source"] == "RFC 4231" and c["case"] == 3)
    uid = symmetric_key(engine, V21, _bytes(case, "key"), A.HMAC_SHA256)
    params = CryptographicParameters(hashing_algorithm=HashingAlgorithm.SHA_384)
    assert mac_of(engine, V21, uid, _bytes(case, "data"), params).hex() == case["mac"]["HMAC_SHA384"]


def test_hmac_with_secret_data(engine):
    """A Secret Data object is a MAC key too (its bytes), the algorithm from the request."""
    case = next(c for c in HMAC_CASES if c["source"] == "RFC 4231" and c["case"] == 1)
    uid = secret_data(engine, V21, _bytes(case, "key"))
    params = CryptographicParameters(cryptographic_algorithm=A.HMAC_SHA512)
    assert mac_of(engine, V21, uid, _bytes(case, "data"), params).hex() == case["mac"]["HMAC_SHA512"]


def test_the_id_placeholder_names_the_key(engine):
    """A batch: Register, Activate and MAC with no Unique Identifier (the ID Placeholder)."""
    case = next(c for c in CMAC["cases"] if c["example"] == 2)
    block = KeyBlock(
        key_format_type=KeyFormatType.RAW,
        key_value=KeyValue(key_material=bytes.fromhex(case["key"])),
        cryptographic_algorithm=A.AES,
        cryptographic_length=128,
    )
    registered = item(
        Operation.REGISTER,
        object_type=ObjectType.SYMMETRIC_KEY,
        managed_object=SymmetricKey(key_block=block),
        **attrs_for(V21, [Attribute(name="Cryptographic Usage Mask", value=MAC_USES)]),
    )
    result = run(
        engine,
        V21,
        registered,
        item(Operation.ACTIVATE),
        item(Operation.MAC, data=bytes.fromhex(CMAC["messages"]["16"])),
    )
    uid = ok(result.batch_items[0]).unique_identifier
    payload = ok(result.batch_items[2])
    assert payload.unique_identifier == uid
    assert payload.mac_data.hex() == case["mac"]


# ---- streamed


def _parts(engine, version, operation, first: dict[str, Any], chunks: list[bytes], last: dict[str, Any]):
    """Send ``chunks`` as one stream (Init with the first, Final with the last); the
    responses' payloads."""
    payloads = []
    correlation = None
    for index, chunk in enumerate(chunks):
        fields: dict[str, Any] = {"data": chunk}
        if index == 0:
            fields.update(first, init_indicator=True)
        else:
            fields["correlation_value"] = correlation
        if index == len(chunks) - 1:
            fields.update(last, final_indicator=True)
        payload = ok(one(engine, version, item(operation, **fields)))
        payloads.append(payload)
        if index < len(chunks) - 1:
            assert payload.correlation_value
            correlation = payload.correlation_value
    return payloads


def _split(data: bytes, *sizes: int) -> list[bytes]:
    out, start = [], 0
    for size in sizes:
        out.append(data[start : start + size])
        start += size
    return [*out, data[start:]]


@pytest.mark.parametrize("version", [V14, V21])
def test_hash_in_parts(engine, version):
    """FIPS 180-4's two-block SHA-256 message in three parts; no digest before the final part."""
    case = next(c for c in SHA_CASES if c["algorithm"] == "SHA_256" and len(c["data_text"]) > 3)
    params = CryptographicParameters(hashing_algorithm=HashingAlgorithm.SHA_256)
    payloads = _parts(
        engine, version, Operation.HASH, {"cryptographic_parameters": params}, _split(_bytes(case, "data"), 5, 40), {}
    )
    assert [p.data for p in payloads[:-1]] == [None, None]
    assert payloads[-1].data.hex() == case["digest"]
    assert payloads[-1].correlation_value is None


def test_mac_and_mac_verify_in_parts(engine):
    """RFC 4231 case 7 (SHA-512) in parts: the key named only by the first part; MAC Data only
    in the final response; MAC Verify's Validity Indicator only in its final response."""
    case = next(c for c in HMAC_CASES if c["source"] == "RFC 4231" and c["case"] == 7)
    uid = symmetric_key(engine, V21, _bytes(case, "key"), A.HMAC_SHA512)
    chunks = _split(_bytes(case, "data"), 1, 100)
    payloads = _parts(engine, V21, Operation.MAC, {"unique_identifier": uid}, chunks, {})
    assert all(p.unique_identifier == uid for p in payloads)
    assert [p.mac_data for p in payloads[:-1]] == [None, None]
    assert payloads[-1].mac_data.hex() == case["mac"]["HMAC_SHA512"]
    expected = bytes.fromhex(case["mac"]["HMAC_SHA512"])
    checked = _parts(engine, V21, Operation.MAC_VERIFY, {"unique_identifier": uid}, chunks, {"mac_data": expected})
    assert [p.validity_indicator for p in checked] == [None, None, ValidityIndicator.VALID]
    wrong = _parts(engine, V21, Operation.MAC_VERIFY, {"unique_identifier": uid}, chunks, {"mac_data": bytes(64)})
    assert wrong[-1].validity_indicator == ValidityIndicator.INVALID


def test_a_stream_keeps_its_key_and_parameters(engine):
    """A later part naming another key, or other parameters, is refused."""
    one_key = symmetric_key(engine, V21, b"k" * 32, A.HMAC_SHA256)
    other_key = symmetric_key(engine, V21, b"j" * 32, A.HMAC_SHA256)
    first = ok(one(engine, V21, item(Operation.MAC, unique_identifier=one_key, data=b"a", init_indicator=True)))
    moved = item(Operation.MAC, unique_identifier=other_key, data=b"b", correlation_value=first.correlation_value)
    failure(one(engine, V21, moved), R.INVALID_FIELD)
    params = CryptographicParameters(hashing_algorithm=HashingAlgorithm.SHA_256)
    started = ok(
        one(engine, V21, item(Operation.HASH, cryptographic_parameters=params, data=b"a", init_indicator=True))
    )
    other = CryptographicParameters(hashing_algorithm=HashingAlgorithm.SHA_512)
    changed = item(
        Operation.HASH, cryptographic_parameters=other, data=b"b", correlation_value=started.correlation_value
    )
    failure(one(engine, V21, changed), R.INVALID_FIELD)


# ---- refusals


@pytest.mark.parametrize(
    ("version", "reason"), [(V14, R.PERMISSION_DENIED), (V21, R.INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK)]
)
def test_the_usage_mask_decides(engine, version, reason):
    """MAC needs MAC Generate, MAC Verify needs MAC Verify in the key's usage mask."""
    only_verify = symmetric_key(engine, version, b"k" * 32, A.HMAC_SHA256, usage=Usage.MAC_VERIFY)
    failure(one(engine, version, item(Operation.MAC, unique_identifier=only_verify, data=b"x")), reason)
    only_generate = symmetric_key(engine, version, b"k" * 32, A.HMAC_SHA256, usage=Usage.MAC_GENERATE)
    mac = mac_of(engine, version, only_generate, b"x")
    refused = item(Operation.MAC_VERIFY, unique_identifier=only_generate, data=b"x", mac_data=mac)
    failure(one(engine, version, refused), reason)


@pytest.mark.parametrize(("version", "reason"), [(V14, R.PERMISSION_DENIED), (V21, R.WRONG_KEY_LIFECYCLE_STATE)])
def test_lifecycle_states(engine, version, reason):
    """Pre-Active: neither. Deactivated: MAC Verify only (processing), not MAC (protecting)."""
    pending = symmetric_key(engine, version, b"k" * 32, A.HMAC_SHA256, activate=False)
    failure(one(engine, version, item(Operation.MAC, unique_identifier=pending, data=b"x")), reason)
    refused = item(Operation.MAC_VERIFY, unique_identifier=pending, data=b"x", mac_data=bytes(32))
    failure(one(engine, version, refused), reason)
    uid = symmetric_key(engine, version, b"k" * 32, A.HMAC_SHA256)
    mac = mac_of(engine, version, uid, b"x")
    revoke = item(
        Operation.REVOKE,
        unique_identifier=uid,
        revocation_reason=RevocationReason(code=RevocationReasonCode.CESSATION_OF_OPERATION),
    )
    ok(one(engine, version, revoke))
    failure(one(engine, version, item(Operation.MAC, unique_identifier=uid, data=b"x")), reason)
    assert verify(engine, version, uid, b"x", mac) == ValidityIndicator.VALID


@pytest.mark.parametrize(("version", "reason"), [(V14, R.CRYPTOGRAPHIC_FAILURE), (V21, R.BAD_CRYPTOGRAPHIC_PARAMETERS)])
def test_no_mac_for_other_algorithms(engine, version, reason):
    """A 3DES key names no MAC this server computes; nor does an AES key of 64 bits."""
    des = symmetric_key(engine, version, bytes(range(24)), A.DES3, bits=168)
    failure(one(engine, version, item(Operation.MAC, unique_identifier=des, data=b"x")), reason)
    md5 = CryptographicParameters(cryptographic_algorithm=A.HMAC_MD5)
    hmac_key = symmetric_key(engine, version, b"k" * 16, A.HMAC_SHA256)
    failure(
        one(engine, version, item(Operation.MAC, unique_identifier=hmac_key, cryptographic_parameters=md5, data=b"x")),
        reason,
    )


def test_mac_verify_needs_mac_data(engine):
    uid = symmetric_key(engine, V21, b"k" * 32, A.HMAC_SHA256)
    failure(one(engine, V21, item(Operation.MAC_VERIFY, unique_identifier=uid, data=b"x")), R.INVALID_FIELD)
    failure(one(engine, V21, item(Operation.MAC, unique_identifier=uid)), R.INVALID_FIELD)


@pytest.mark.parametrize("version", [V14, V21])
def test_hash_refusals(engine, version):
    """No parameters or no algorithm: Invalid Field. MD5, or an algorithm that is no hash
    function: Cryptographic Failure (the one reason both versions list for Hash)."""
    failure(one(engine, version, item(Operation.HASH, data=b"abc")), R.INVALID_FIELD)
    empty = CryptographicParameters(padding_method=None)
    failure(one(engine, version, item(Operation.HASH, cryptographic_parameters=empty, data=b"abc")), R.INVALID_FIELD)
    md5 = CryptographicParameters(hashing_algorithm=HashingAlgorithm.MD5)
    failure(
        one(engine, version, item(Operation.HASH, cryptographic_parameters=md5, data=b"abc")), R.CRYPTOGRAPHIC_FAILURE
    )
    aes = CryptographicParameters(cryptographic_algorithm=A.AES)
    failure(
        one(engine, version, item(Operation.HASH, cryptographic_parameters=aes, data=b"abc")), R.CRYPTOGRAPHIC_FAILURE
    )
    sha = CryptographicParameters(hashing_algorithm=HashingAlgorithm.SHA_256)
    failure(one(engine, version, item(Operation.HASH, cryptographic_parameters=sha)), R.INVALID_FIELD)


def test_refusals_say_nothing_of_the_key_or_data(engine):
    """Error messages name the object and the method, never key bytes or data."""
    secret = bytes.fromhex("5eb1c0ffee5eb1c0ffee5eb1c0ffee5e5eb1c0ffee5eb1c0")
    uid = symmetric_key(engine, V21, secret, A.DES3, bits=168)
    message = failure(
        one(engine, V21, item(Operation.MAC, unique_identifier=uid, data=b"plaintext-42")),
        R.BAD_CRYPTOGRAPHIC_PARAMETERS,
    )
    assert secret.hex() not in message and "plaintext-42" not in message
