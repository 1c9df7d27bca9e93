"""Encrypt and Decrypt through the engine, on the real token and both stores: the known answers
of the standards (tests/vectors/kat/aes_modes.json: SP 800-38A/C, GCM, CAVP XTS and TDES,
RFC 3394/5649/3686/8439) byte for byte and back, streamed parts equal to the whole, Random IV,
Usage Limits, batches with the ID Placeholder, RSA keys, and the refusals with their Result
Reasons (those the OASIS CS-BC-M vectors expect)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from kmip_client.protocol.model import Attribute
from kmip_client.protocol.model.attributes import CryptographicParameters, RevocationReason, UsageLimits
from kmip_client.protocol.model.objects import KeyBlock, KeyValue, PrivateKey, PublicKey, SymmetricKey
from kmip_client.protocol.spec.enums import (
    BlockCipherMode,
    CryptographicAlgorithm,
    CryptographicUsageMask,
    HashingAlgorithm,
    KeyFormatType,
    ObjectType,
    Operation,
    PaddingMethod,
    ResultReason,
    ResultStatus,
    RevocationReasonCode,
    UsageLimitsUnit,
)

from .engine_support import T0, failure, one, register, run
from .kmip_messages import V14, V21, attrs_for, item, ok

A = CryptographicAlgorithm
M = BlockCipherMode
Usage = CryptographicUsageMask
R = ResultReason
BOTH = Usage.ENCRYPT | Usage.DECRYPT
V13 = (1, 3)
V20 = (2, 0)
KAT = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "kat" / "aes_modes.json").read_text())
CASES = KAT["cases"]
_LENGTHS = {A.DES3: 168}  # a three-key TDEA key is 192 bits with parity, 168 without


def key(engine, version, material: bytes, algorithm: A = A.AES, *, usage: int = BOTH, extra=(), bits=None) -> str:
    """Register ``material`` as an Active Raw symmetric key; its identifier."""
    block = KeyBlock(
        key_format_type=KeyFormatType.RAW,
        key_value=KeyValue(key_material=material),
        cryptographic_algorithm=algorithm,
        cryptographic_length=bits or _LENGTHS.get(algorithm, len(material) * 8),
    )
    attributes = [
        Attribute(name="Cryptographic Usage Mask", value=usage),
        Attribute(name="Activation Date", value=datetime.fromtimestamp(T0 - 3600, UTC)),
        *extra,
    ]
    return register(engine, version, ObjectType.SYMMETRIC_KEY, SymmetricKey(key_block=block), attributes)


def key_parameters(params: CryptographicParameters) -> Attribute:
    return Attribute(name="Cryptographic Parameters", value=params)


def encrypt(engine, version, uid, data: bytes | None, params=None, **fields) -> Any:
    return one(
        engine,
        version,
        item(Operation.ENCRYPT, unique_identifier=uid, cryptographic_parameters=params, data=data, **fields),
    )


def decrypt(engine, version, uid, data: bytes | None, params=None, **fields) -> Any:
    return one(
        engine,
        version,
        item(Operation.DECRYPT, unique_identifier=uid, cryptographic_parameters=params, data=data, **fields),
    )


def _hex(case: dict[str, Any], field: str) -> bytes | None:
    return bytes.fromhex(case[field]) if field in case else None


def _case_params(case: dict[str, Any]) -> CryptographicParameters:
    mode = case.get("mode")
    tag = _hex(case, "tag")
    return CryptographicParameters(
        block_cipher_mode=M[mode] if mode else None,
        padding_method=PaddingMethod.NONE if mode in ("ECB", "CBC") else None,
        tag_length=len(tag) if tag is not None else None,
        initial_counter_value=case.get("initial_counter_value"),
        counter_length=case.get("counter_length"),
    )


# --------------------------------------------------------------------------- known answers


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_known_answer_through_the_server(engine, case):
    """The vector's key registered, its plaintext encrypted to its ciphertext (and tag) byte
    for byte, and the ciphertext decrypted back to the plaintext."""
    version = V21
    algorithm = A[case.get("algorithm", "AES")]
    uid = key(engine, version, bytes.fromhex(case["key"]), algorithm)
    params = _case_params(case)
    iv, aad, tag = _hex(case, "iv"), _hex(case, "aad"), _hex(case, "tag")
    plaintext, ciphertext = bytes.fromhex(case["plaintext"]), bytes.fromhex(case["ciphertext"])
    sealed = ok(
        encrypt(
            engine, version, uid, plaintext, params, iv_counter_nonce=iv, authenticated_encryption_additional_data=aad
        )
    )
    assert sealed.unique_identifier == uid
    assert sealed.data == ciphertext
    assert sealed.authenticated_encryption_tag == tag
    assert sealed.iv_counter_nonce is None  # the client chose it: nothing to return
    opened = ok(
        decrypt(
            engine,
            version,
            uid,
            ciphertext,
            params,
            iv_counter_nonce=iv,
            authenticated_encryption_additional_data=aad,
            authenticated_encryption_tag=tag,
        )
    )
    assert opened.data == plaintext


@pytest.mark.parametrize("version", [V13, V14, V20])
@pytest.mark.parametrize("name", ["SP 800-38A F.2.1 CBC-AES128", "SP 800-38A F.5.1 CTR-AES128"])
def test_known_answer_in_older_versions(engine, version, name):
    case = next(c for c in CASES if c["name"] == name)
    uid = key(engine, version, bytes.fromhex(case["key"]))
    params = _case_params(case)
    iv, ciphertext = bytes.fromhex(case["iv"]), bytes.fromhex(case["ciphertext"])
    assert ok(encrypt(engine, version, uid, bytes.fromhex(case["plaintext"]), params, iv_counter_nonce=iv)).data == (
        ciphertext
    )
    assert ok(decrypt(engine, version, uid, ciphertext, params, iv_counter_nonce=iv)).data.hex() == case["plaintext"]


def test_gcm_tag_truncated_on_request(engine):
    """Tag Length 12 gives the first 12 bytes of the full tag, and that verifies (CS-BC-M-GCM-1)."""
    case = next(c for c in CASES if c["name"] == "GCM test case 4")
    uid = key(engine, V21, bytes.fromhex(case["key"]))
    params = CryptographicParameters(block_cipher_mode=M.GCM, tag_length=12)
    fields = {
        "iv_counter_nonce": bytes.fromhex(case["iv"]),
        "authenticated_encryption_additional_data": bytes.fromhex(case["aad"]),
    }
    sealed = ok(encrypt(engine, V21, uid, bytes.fromhex(case["plaintext"]), params, **fields))
    assert sealed.authenticated_encryption_tag == bytes.fromhex(case["tag"])[:12]
    opened = decrypt(
        engine,
        V21,
        uid,
        sealed.data,
        params,
        authenticated_encryption_tag=sealed.authenticated_encryption_tag,
        **fields,
    )
    assert ok(opened).data.hex() == case["plaintext"]


def test_chacha20_original_64_bit_nonce(engine):
    """An 8-byte nonce is the original ChaCha20 (64-bit counter from 0): the all-zero key and
    nonce give the keystream of RFC 8439 A.1 test vector #1 (its 96-bit nonce is zero too)."""
    uid = key(engine, V21, bytes(32), A.CHACHA20)
    got = ok(encrypt(engine, V21, uid, bytes(64), iv_counter_nonce=bytes(8))).data
    assert got.hex() == (
        "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7"
        "da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586"
    )


# --------------------------------------------------------------------------- parameters from the key, Random IV


@pytest.mark.parametrize("version", [V14, V21])
def test_parameters_and_random_iv_from_the_key(engine, version):
    """CS-BC-M-13: the key's Cryptographic Parameters say CBC, PKCS5 and Random IV; Encrypt
    returns the IV it generated, Decrypt without it is Invalid Message, with it the plaintext."""
    params = CryptographicParameters(block_cipher_mode=M.CBC, padding_method=PaddingMethod.PKCS5, random_iv=True)
    uid = key(engine, version, bytes(range(16)), extra=[key_parameters(params)])
    plaintext = b"seventeen bytes!!"
    first = ok(encrypt(engine, version, uid, plaintext))
    second = ok(encrypt(engine, version, uid, plaintext))
    assert len(first.iv_counter_nonce) == 16 and first.iv_counter_nonce != second.iv_counter_nonce
    assert len(first.data) == 32 and first.data != second.data
    failure(decrypt(engine, version, uid, first.data), R.INVALID_MESSAGE)
    assert ok(decrypt(engine, version, uid, first.data, iv_counter_nonce=first.iv_counter_nonce)).data == plaintext


@pytest.mark.parametrize(("iv_bits", "length"), [(None, 12), (128, 16), (64, 8)])
def test_random_iv_length_honoured(engine, iv_bits, length):
    uid = key(engine, V21, bytes(16))
    params = CryptographicParameters(block_cipher_mode=M.GCM, tag_length=16, random_iv=True, iv_length=iv_bits)
    sealed = ok(encrypt(engine, V21, uid, b"data", params))
    assert len(sealed.iv_counter_nonce) == length
    opened = decrypt(
        engine,
        V21,
        uid,
        sealed.data,
        params,
        iv_counter_nonce=sealed.iv_counter_nonce,
        authenticated_encryption_tag=sealed.authenticated_encryption_tag,
    )
    assert ok(opened).data == b"data"


def test_request_parameters_override_the_keys(engine):
    uid = key(engine, V21, bytes(16), extra=[key_parameters(CryptographicParameters(block_cipher_mode=M.ECB))])
    ecb = ok(encrypt(engine, V21, uid, bytes(16))).data
    cbc = ok(
        encrypt(
            engine, V21, uid, bytes(16), CryptographicParameters(block_cipher_mode=M.CBC), iv_counter_nonce=b"\x01" * 16
        )
    ).data
    assert ecb != cbc and len(ecb) == len(cbc) == 16


# --------------------------------------------------------------------------- streams


def _parts(data: bytes, cuts: list[int]) -> list[bytes]:
    edges = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]


def _stream(engine, version, op: Operation, uid, parts: list[bytes], params, first: dict[str, Any]) -> list[Any]:
    """The response payloads of ``parts`` sent as one stream: Init, middles, Final."""
    answers = []
    correlation = None
    for index, part in enumerate(parts):
        fields: dict[str, Any] = {"unique_identifier": uid, "cryptographic_parameters": params, "data": part}
        if index == 0:
            fields.update(first, init_indicator=True)
        else:
            fields["correlation_value"] = correlation
        if index == len(parts) - 1:
            fields["final_indicator"] = True
        answer = ok(one(engine, version, item(op, **fields)))
        if index < len(parts) - 1:
            assert answer.correlation_value
            correlation = answer.correlation_value
        else:
            assert answer.correlation_value is None
        answers.append(answer)
    return answers


@pytest.mark.parametrize("cuts", [[32], [5, 21, 40], [0, 60]])
def test_streamed_gcm_equals_the_whole(engine, cuts):
    """GCM test case 5 sent in parts (as CS-BC-M-GCM-3): the parts' outputs join into the
    vector's ciphertext, the tag comes with the final part; the ciphertext decrypts back in parts."""
    case = next(c for c in CASES if c["name"] == "GCM test case 5 (64-bit IV)")
    uid = key(engine, V21, bytes.fromhex(case["key"]))
    params = CryptographicParameters(block_cipher_mode=M.GCM, tag_length=16)
    first = {
        "iv_counter_nonce": bytes.fromhex(case["iv"]),
        "authenticated_encryption_additional_data": bytes.fromhex(case["aad"]),
    }
    plaintext, ciphertext = bytes.fromhex(case["plaintext"]), bytes.fromhex(case["ciphertext"])
    sealed = _stream(engine, V21, Operation.ENCRYPT, uid, _parts(plaintext, cuts), params, first)
    assert b"".join(a.data for a in sealed) == ciphertext
    assert [a.authenticated_encryption_tag for a in sealed[:-1]] == [None] * (len(sealed) - 1)
    assert sealed[-1].authenticated_encryption_tag.hex() == case["tag"]
    first["authenticated_encryption_tag"] = bytes.fromhex(case["tag"])
    opened = _stream(engine, V21, Operation.DECRYPT, uid, _parts(ciphertext, cuts), params, first)
    assert b"".join(a.data for a in opened) == plaintext


@pytest.mark.parametrize(
    ("mode", "padding", "iv"), [(M.CBC, PaddingMethod.PKCS5, 16), (M.ECB, PaddingMethod.PKCS5, 0), (M.CCM, None, 12)]
)
def test_streamed_parts_equal_the_whole(engine, mode, padding, iv):
    """Padded block modes return whole blocks as they come; CCM (no incremental form) returns
    everything at the final part. Either way the joined output is the one-part output."""
    uid = key(engine, V14, bytes(range(32)))
    params = CryptographicParameters(
        block_cipher_mode=mode, padding_method=padding, tag_length=16 if mode == M.CCM else None
    )
    first = {"iv_counter_nonce": bytes(range(iv))} if iv else {}
    plaintext = bytes(range(50))
    whole = ok(encrypt(engine, V14, uid, plaintext, params, **first))
    parts = _stream(engine, V14, Operation.ENCRYPT, uid, _parts(plaintext, [7, 20, 33]), params, first)
    assert b"".join(p.data for p in parts) == whole.data
    if mode == M.CCM:
        assert [p.data for p in parts[:-1]] == [b"", b"", b""]
        first["authenticated_encryption_tag"] = whole.authenticated_encryption_tag
    opened = _stream(engine, V14, Operation.DECRYPT, uid, _parts(whole.data, [16, 17]), params, first)
    assert b"".join(p.data for p in opened) == plaintext


def test_stream_later_parts_omit_the_key_and_parameters(engine):
    uid = key(engine, V21, bytes(16))
    params = CryptographicParameters(block_cipher_mode=M.CTR)
    start = ok(
        one(
            engine,
            V21,
            item(
                Operation.ENCRYPT,
                unique_identifier=uid,
                cryptographic_parameters=params,
                data=b"a" * 20,
                iv_counter_nonce=bytes(16),
                init_indicator=True,
            ),
        )
    )
    end = ok(
        one(
            engine,
            V21,
            item(Operation.ENCRYPT, data=b"b" * 20, correlation_value=start.correlation_value, final_indicator=True),
        )
    )
    whole = ok(encrypt(engine, V21, uid, b"a" * 20 + b"b" * 20, params, iv_counter_nonce=bytes(16))).data
    assert start.data + end.data == whole and end.unique_identifier == uid


# --------------------------------------------------------------------------- batches


def test_batch_of_encrypts_with_the_id_placeholder(engine):
    """Register, then Encrypts and a Decrypt naming no key, in one message: each uses the
    registered key (the ID Placeholder), each answered in order."""
    block = KeyBlock(
        key_format_type=KeyFormatType.RAW,
        key_value=KeyValue(key_material=bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")),
        cryptographic_algorithm=A.AES,
        cryptographic_length=128,
    )
    attributes = [
        Attribute(name="Cryptographic Usage Mask", value=BOTH),
        Attribute(name="Activation Date", value=datetime.fromtimestamp(T0 - 3600, UTC)),
    ]
    ecb = CryptographicParameters(block_cipher_mode=M.ECB)
    f1 = next(c for c in CASES if c["name"] == "SP 800-38A F.1.1 ECB-AES128")
    plaintext, ciphertext = bytes.fromhex(f1["plaintext"]), bytes.fromhex(f1["ciphertext"])
    items = [
        item(
            Operation.REGISTER,
            object_type=ObjectType.SYMMETRIC_KEY,
            managed_object=SymmetricKey(key_block=block),
            **attrs_for(V21, attributes),
        ),
        *(
            item(Operation.ENCRYPT, cryptographic_parameters=ecb, data=plaintext[16 * i : 16 * i + 16])
            for i in range(4)
        ),
        item(Operation.DECRYPT, cryptographic_parameters=ecb, data=ciphertext),
    ]
    results = run(engine, V21, *items).batch_items
    assert [r.result_status for r in results] == [ResultStatus.SUCCESS] * 6
    uid = results[0].payload.unique_identifier
    assert {r.payload.unique_identifier for r in results} == {uid}
    assert b"".join(r.payload.data for r in results[1:5]) == ciphertext
    assert results[5].payload.data == plaintext


def test_batch_of_encrypts_under_several_keys(engine):
    uids = [key(engine, V21, bytes([n]) * 16) for n in range(3)]
    ecb = CryptographicParameters(block_cipher_mode=M.ECB)
    items = [item(Operation.ENCRYPT, unique_identifier=u, cryptographic_parameters=ecb, data=bytes(16)) for u in uids]
    results = run(engine, V21, *items).batch_items
    singly = [ok(encrypt(engine, V21, u, bytes(16), ecb)).data for u in uids]
    assert [ok(r).data for r in results] == singly and len(set(singly)) == 3


# --------------------------------------------------------------------------- usage limits


@pytest.mark.parametrize("version", [V14, V21])
def test_usage_limits_in_bytes(engine, version):
    """CS-BC-M-7: Usage Limits of 32 bytes allow two 16-byte encryptions, then Permission
    Denied; a refused request spends nothing, and decryption is never limited."""
    limits = UsageLimits(total=32, unit=UsageLimitsUnit.BYTE)
    uid = key(engine, version, bytes(16), extra=[Attribute(name="Usage Limits", value=limits)])
    ecb = CryptographicParameters(block_cipher_mode=M.ECB)
    first = ok(encrypt(engine, version, uid, bytes(16), ecb)).data
    failure(
        encrypt(engine, version, uid, bytes(15), ecb),
        R.BAD_CRYPTOGRAPHIC_PARAMETERS if version >= V20 else R.INVALID_FIELD,
    )
    ok(encrypt(engine, version, uid, bytes(16), ecb))
    failure(encrypt(engine, version, uid, bytes(16), ecb), R.PERMISSION_DENIED)
    assert ok(decrypt(engine, version, uid, first, ecb)).data == bytes(16)


def test_usage_limits_in_objects(engine):
    limits = UsageLimits(total=1, unit=UsageLimitsUnit.OBJECT)
    uid = key(engine, V21, bytes(16), extra=[Attribute(name="Usage Limits", value=limits)])
    ecb = CryptographicParameters(block_cipher_mode=M.ECB)
    ok(encrypt(engine, V21, uid, bytes(64), ecb))
    failure(encrypt(engine, V21, uid, bytes(16), ecb), R.PERMISSION_DENIED)


# --------------------------------------------------------------------------- key state and usage


@pytest.mark.parametrize(("version", "reason"), [(V14, R.PERMISSION_DENIED), (V21, R.WRONG_KEY_LIFECYCLE_STATE)])
def test_deactivated_key_decrypts_but_does_not_encrypt(engine, version, reason):
    uid = key(engine, version, bytes(16))
    ecb = CryptographicParameters(block_cipher_mode=M.ECB)
    sealed = ok(encrypt(engine, version, uid, bytes(16), ecb)).data
    revoke = item(
        Operation.REVOKE,
        unique_identifier=uid,
        revocation_reason=RevocationReason(code=RevocationReasonCode.CESSATION_OF_OPERATION),
    )
    ok(one(engine, version, revoke))
    failure(encrypt(engine, version, uid, bytes(16), ecb), reason)
    assert ok(decrypt(engine, version, uid, sealed, ecb)).data == bytes(16)


@pytest.mark.parametrize(
    ("version", "reason"), [(V14, R.PERMISSION_DENIED), (V21, R.INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK)]
)
def test_usage_mask_is_checked_per_direction(engine, version, reason):
    ecb = CryptographicParameters(block_cipher_mode=M.ECB)
    encrypt_only = key(engine, version, bytes(16), usage=Usage.ENCRYPT)
    sealed = ok(encrypt(engine, version, encrypt_only, bytes(16), ecb)).data
    failure(decrypt(engine, version, encrypt_only, sealed, ecb), reason)
    decrypt_only = key(engine, version, bytes(16), usage=Usage.DECRYPT)
    failure(encrypt(engine, version, decrypt_only, bytes(16), ecb), reason)
    assert ok(decrypt(engine, version, decrypt_only, sealed, ecb)).data == bytes(16)


# --------------------------------------------------------------------------- refusals

GCM = CryptographicParameters(block_cipher_mode=M.GCM, tag_length=16)


@pytest.mark.parametrize("version", [V14, V21])
def test_authentication_failures_are_cryptographic_failure(engine, version):
    """CS-BC-M-GCM-1: a changed tag, IV or ciphertext fails with Cryptographic Failure."""
    uid = key(engine, version, bytes(16))
    sealed = ok(encrypt(engine, version, uid, bytes(16), GCM, iv_counter_nonce=bytes(12)))
    tag = sealed.authenticated_encryption_tag
    messages = {
        failure(
            decrypt(engine, version, uid, data, GCM, iv_counter_nonce=iv, authenticated_encryption_tag=bad_tag),
            R.CRYPTOGRAPHIC_FAILURE,
        )
        for data, iv, bad_tag in (
            (sealed.data, bytes(12), b"\x00" + tag[1:]),
            (sealed.data, b"\xff" + bytes(11), tag),
            (b"\xff" + sealed.data[1:], bytes(12), tag),
        )
    }
    assert len(messages) == 1  # the same answer whatever was changed


@pytest.mark.parametrize("tag_length", [1, 32])
@pytest.mark.parametrize("algorithm", [A.AES, A.CHACHA20POLY1305])
def test_tag_length_outside_the_modes_is_general_failure(engine, tag_length, algorithm):
    """CS-BC-M-GCM-1 and CHACHA20POLY1305-1 expect General Failure for Tag Length 1 and 32."""
    uid = key(engine, V21, bytes(32), algorithm)
    mode = M.GCM if algorithm == A.AES else M.AEAD
    params = CryptographicParameters(block_cipher_mode=mode, tag_length=tag_length)
    failure(encrypt(engine, V21, uid, b"x", params, iv_counter_nonce=bytes(12)), R.GENERAL_FAILURE)


def test_bad_padding_and_unwrap_are_cryptographic_failure(engine):
    uid = key(engine, V21, bytes(16))
    cbc = CryptographicParameters(block_cipher_mode=M.CBC, padding_method=PaddingMethod.PKCS5)
    sealed = ok(encrypt(engine, V21, uid, b"0123456789", cbc, iv_counter_nonce=bytes(16))).data
    failure(decrypt(engine, V21, uid, sealed, cbc, iv_counter_nonce=b"\x01" * 16), R.CRYPTOGRAPHIC_FAILURE)
    kw = CryptographicParameters(block_cipher_mode=M.NISTKEYWRAP)
    wrapped = ok(encrypt(engine, V21, uid, bytes(32), kw)).data
    failure(decrypt(engine, V21, uid, wrapped[:-1] + b"\x00", kw), R.CRYPTOGRAPHIC_FAILURE)


@pytest.mark.parametrize(("version", "bad"), [(V14, R.INVALID_FIELD), (V21, R.BAD_CRYPTOGRAPHIC_PARAMETERS)])
def test_bad_parameters(engine, version, bad):
    aes = key(engine, version, bytes(16))
    tdes = key(engine, version, bytes(range(24)), A.DES3)
    ecb = CryptographicParameters(block_cipher_mode=M.ECB)
    cases = [
        (aes, bytes(15), ecb, {}),  # no padding, not whole blocks
        (aes, bytes(16), CryptographicParameters(block_cipher_mode=M.CBC), {"iv_counter_nonce": bytes(8)}),
        (
            aes,
            bytes(16),
            CryptographicParameters(block_cipher_mode=M.XTS),
            {"iv_counter_nonce": bytes(16)},
        ),  # 128-bit key
        (aes, bytes(16), CryptographicParameters(), {}),  # AES needs a mode
        (aes, bytes(16), ecb, {"iv_counter_nonce": bytes(16)}),  # ECB takes no IV
        (tdes, bytes(16), CryptographicParameters(block_cipher_mode=M.ECB, cryptographic_algorithm=A.AES), {}),
        (
            aes,
            bytes(32),  # two blocks from the last value of a 16-bit counter
            CryptographicParameters(block_cipher_mode=M.CTR, initial_counter_value=2**16 - 1),
            {"iv_counter_nonce": bytes(14)},
        ),
    ]
    for uid, data, params, fields in cases:
        failure(encrypt(engine, version, uid, data, params, **fields), bad)


def test_xts_key_halves_must_differ(engine):
    uid = key(engine, V21, bytes(32))
    failure(
        encrypt(
            engine, V21, uid, bytes(16), CryptographicParameters(block_cipher_mode=M.XTS), iv_counter_nonce=bytes(16)
        ),
        R.BAD_CRYPTOGRAPHIC_PARAMETERS,
    )


@pytest.mark.parametrize(
    ("version", "reason"), [(V14, R.FEATURE_NOT_SUPPORTED), (V21, R.UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS)]
)
def test_unsupported_mode(engine, version, reason):
    uid = key(engine, version, bytes(16))
    failure(encrypt(engine, version, uid, bytes(16), CryptographicParameters(block_cipher_mode=M.PCBC)), reason)


def test_missing_iv_and_missing_data(engine):
    uid = key(engine, V21, bytes(16))
    failure(encrypt(engine, V21, uid, bytes(16), GCM), R.INVALID_MESSAGE)
    failure(decrypt(engine, V21, uid, bytes(16), GCM, iv_counter_nonce=bytes(12)), R.INVALID_MESSAGE)  # no tag
    failure(encrypt(engine, V21, uid, None, GCM, iv_counter_nonce=bytes(12)), R.INVALID_MESSAGE)


# --------------------------------------------------------------------------- RSA keys go to asymmetric.py


def test_rsa_keys_are_delegated(engine):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def rsa_key(cls, object_type, fmt, material, usage):
        block = KeyBlock(
            key_format_type=fmt,
            key_value=KeyValue(key_material=material),
            cryptographic_algorithm=A.RSA,
            cryptographic_length=2048,
        )
        attributes = [
            Attribute(name="Cryptographic Usage Mask", value=usage),
            Attribute(name="Activation Date", value=datetime.fromtimestamp(T0 - 3600, UTC)),
        ]
        return register(engine, V21, object_type, cls(key_block=block), attributes)

    public_uid = rsa_key(
        PublicKey,
        ObjectType.PUBLIC_KEY,
        KeyFormatType.PKCS_1,
        private.public_key().public_bytes(Encoding.DER, PublicFormat.PKCS1),
        Usage.ENCRYPT,
    )
    private_uid = rsa_key(
        PrivateKey,
        ObjectType.PRIVATE_KEY,
        KeyFormatType.PKCS_8,
        private.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption()),
        Usage.DECRYPT,
    )
    oaep = CryptographicParameters(
        padding_method=PaddingMethod.OAEP, hashing_algorithm=HashingAlgorithm.SHA_256, cryptographic_algorithm=A.RSA
    )
    sealed = ok(encrypt(engine, V21, public_uid, b"a data key", oaep)).data
    assert len(sealed) == 256
    mgf_sha1 = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA256(), label=None)
    assert private.decrypt(sealed, mgf_sha1) == b"a data key"  # OAEP as asked, MGF1's hash defaulting to SHA-1
    assert ok(decrypt(engine, V21, private_uid, sealed, oaep)).data == b"a data key"
