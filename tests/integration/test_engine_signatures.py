"""Sign and Signature Verify through the engine, on the real token and both stores.

Known answers where the scheme is deterministic (tests/vectors/kat/signatures.json): RFC 8032
Ed25519 and Ed448, and Wycheproof's RSASSA-PKCS1-v1_5 SHA-256 signatures, made by the server
with the registered private key and compared byte for byte. ECDSA, DSA and PSS are randomized:
their signatures are checked with ``cryptography`` against the public key, and the server's
verification against ``cryptography``'s signatures. Then the parameters (the key's attribute or
the request's, the Digital Signature Algorithm, the defaults), Digested Data, streams, the
lifecycle and date rules and the refusals with their Result Reasons.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa, utils
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_der_private_key,
)

from kmip_client.protocol.model import Attribute
from kmip_client.protocol.model.attributes import CryptographicParameters
from kmip_client.protocol.model.objects import KeyBlock, KeyValue, PrivateKey, PublicKey, TransparentKeyMaterial
from kmip_client.protocol.spec.enums import (
    CryptographicAlgorithm,
    CryptographicUsageMask,
    DigitalSignatureAlgorithm,
    HashingAlgorithm,
    KeyFormatType,
    ObjectType,
    Operation,
    PaddingMethod,
    RecommendedCurve,
    ResultReason,
    ValidityIndicator,
)

from .engine_support import T0, failure, one, register
from .kmip_messages import V14, V21, at, item, ok

KAT = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "kat" / "signatures.json").read_text())
A = CryptographicAlgorithm
D = DigitalSignatureAlgorithm
H = HashingAlgorithm
F = KeyFormatType
P = PaddingMethod
R = ResultReason
Usage = CryptographicUsageMask
V20 = (2, 0)
MESSAGE = bytes.fromhex("01020304050607080910111213141516")
RSA_KEY = load_der_private_key(bytes.fromhex(KAT["rsa_pkcs1v15"]["private_pkcs8"]), None)
assert isinstance(RSA_KEY, rsa.RSAPrivateKey)


# ---- helpers


def _block(fmt: F, material: Any, algorithm: A, length: int) -> KeyBlock:
    return KeyBlock(
        key_format_type=fmt, key_value=KeyValue(key_material=material), cryptographic_algorithm=algorithm,
        cryptographic_length=length,
    )  # fmt: skip


def register_key(engine, version, private: bool, block: KeyBlock, *, usage=None, params=None, dates=None) -> str:
    """Register a key block as a Private (Sign) or Public (Verify) Key, Active since an hour ago
    unless ``dates`` say otherwise (``{}``: Pre-Active); its identifier."""
    mask = usage if usage is not None else (Usage.SIGN if private else Usage.VERIFY)
    attributes = [Attribute(name="Cryptographic Usage Mask", value=mask)]
    if params is not None:
        attributes.append(Attribute(name="Cryptographic Parameters", value=params))
    given = {"Activation Date": at(T0 - 3600)} if dates is None else dates
    attributes += [Attribute(name=name, value=value) for name, value in given.items()]
    object_type, cls = (ObjectType.PRIVATE_KEY, PrivateKey) if private else (ObjectType.PUBLIC_KEY, PublicKey)
    return register(engine, version, object_type, cls(key_block=block), attributes)


def key_pair(engine, version, key, algorithm: A, length: int, *, params=None, **kwargs) -> tuple[str, str]:
    """A ``cryptography`` private key registered as PKCS#8 and its public key as X.509."""
    der = key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    spki = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    private = register_key(engine, version, True, _block(F.PKCS_8, der, algorithm, length), params=params, **kwargs)
    public = register_key(engine, version, False, _block(F.X_509, spki, algorithm, length), params=params, **kwargs)
    return private, public


def sign(engine, version, uid, data=MESSAGE, params=None, **fields) -> bytes:
    request = item(Operation.SIGN, unique_identifier=uid, cryptographic_parameters=params, data=data, **fields)
    payload = ok(one(engine, version, request))
    assert payload.unique_identifier == uid and payload.correlation_value is None
    return payload.signature_data


def verify(engine, version, uid, signature, data=MESSAGE, params=None, **fields) -> ValidityIndicator:
    request = item(
        Operation.SIGNATURE_VERIFY, unique_identifier=uid, cryptographic_parameters=params, data=data,
        signature_data=signature, **fields,
    )  # fmt: skip
    payload = ok(one(engine, version, request))
    assert payload.unique_identifier == uid
    return payload.validity_indicator


def flipped(value: bytes) -> bytes:
    return value[:-1] + bytes([value[-1] ^ 1])


VALID, INVALID = ValidityIndicator.VALID, ValidityIndicator.INVALID
PKCS1_SHA256 = CryptographicParameters(padding_method=P.PKCS1_V1_5, hashing_algorithm=H.SHA_256)


# ---- known answers


@pytest.mark.parametrize("case", KAT["eddsa"], ids=lambda c: f"{c['algorithm']} {c['case']}")
def test_eddsa_known_answers(engine, case):
    """RFC 8032: the server signs with the registered seed and gives the RFC's signature; it
    verifies it with the RFC's public key, and refuses it for another message."""
    cls = ed25519.Ed25519PrivateKey if case["algorithm"] == "ED25519" else ed448.Ed448PrivateKey
    key = cls.from_private_bytes(bytes.fromhex(case["secret"]))
    public_raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert public_raw.hex() == case["public"]  # the PKCS#8 form below holds the RFC's key
    algorithm, bits = A[case["algorithm"]], 8 * len(public_raw)
    private, public = key_pair(engine, V21, key, algorithm, bits)
    message, expected = bytes.fromhex(case["message"]), bytes.fromhex(case["signature"])
    assert sign(engine, V21, private, message) == expected
    assert verify(engine, V21, public, expected, message) == VALID
    assert verify(engine, V21, public, expected, message + b"\x00") == INVALID
    assert verify(engine, V21, public, flipped(expected), message) == INVALID


@pytest.mark.parametrize("version", [V14, V21])
@pytest.mark.parametrize(
    "params",
    [
        PKCS1_SHA256,
        CryptographicParameters(digital_signature_algorithm=D.SHA_256_WITH_RSA_ENCRYPTION),
        None,  # the key's Cryptographic Parameters attribute decides
    ],
    ids=["padding and hash", "digital signature algorithm", "key attribute"],
)
def test_rsa_pkcs1v15_known_answers(engine, version, params):
    """Wycheproof RSASSA-PKCS1-v1_5 SHA-256 (2048-bit): the exact signatures, each way of
    naming the scheme; the public key verifies them and refuses a changed one."""
    vectors = KAT["rsa_pkcs1v15"]
    der, spki = bytes.fromhex(vectors["private_pkcs8"]), bytes.fromhex(vectors["public_spki"])
    stored = PKCS1_SHA256 if params is None else None
    private = register_key(engine, version, True, _block(F.PKCS_8, der, A.RSA, 2048), params=stored)
    public = register_key(engine, version, False, _block(F.X_509, spki, A.RSA, 2048), params=stored)
    for case in vectors["cases"]:
        message, expected = bytes.fromhex(case["message"]), bytes.fromhex(case["signature"])
        assert sign(engine, version, private, message, params) == expected, case["tcId"]
        assert verify(engine, version, public, expected, message, params) == VALID
        assert verify(engine, version, public, flipped(expected), message, params) == INVALID


@pytest.mark.parametrize("fmt", [F.PKCS_1, F.TRANSPARENT_RSA_PRIVATE_KEY, "transparent without CRT values"])
def test_rsa_private_key_formats_sign_alike(engine, fmt):
    """The same key as PKCS#1 DER, as a Transparent RSA Private Key and as one with only the
    Modulus and the exponents (the CRT values are derived) gives the known signature."""
    numbers = RSA_KEY.private_numbers()
    if fmt == F.PKCS_1:
        block = _block(F.PKCS_1, RSA_KEY.private_bytes(Encoding.DER, PrivateFormat.TraditionalOpenSSL,
                                                       NoEncryption()), A.RSA, 2048)  # fmt: skip
    else:
        full = fmt == F.TRANSPARENT_RSA_PRIVATE_KEY
        material = TransparentKeyMaterial(
            modulus=numbers.public_numbers.n,
            private_exponent=numbers.d,
            public_exponent=numbers.public_numbers.e,
            **(
                {
                    "p": numbers.p,
                    "q": numbers.q,
                    "prime_exponent_p": numbers.dmp1,
                    "prime_exponent_q": numbers.dmq1,
                    "crt_coefficient": numbers.iqmp,
                }
                if full
                else {}
            ),  # fmt: skip
        )
        block = _block(F.TRANSPARENT_RSA_PRIVATE_KEY, material, A.RSA, 2048)
    uid = register_key(engine, V21, True, block)
    case = KAT["rsa_pkcs1v15"]["cases"][1]
    assert sign(engine, V21, uid, bytes.fromhex(case["message"]), PKCS1_SHA256).hex() == case["signature"]


def test_digested_data_signs_the_digest(engine):
    """Digested Data (1.4+) is the message's hash: signed as such it gives the signature of the
    message; a digest of the wrong length is refused."""
    vectors = KAT["rsa_pkcs1v15"]
    private = register_key(engine, V21, True, _block(F.PKCS_8, bytes.fromhex(vectors["private_pkcs8"]), A.RSA, 2048))
    public = register_key(engine, V21, False, _block(F.X_509, bytes.fromhex(vectors["public_spki"]), A.RSA, 2048))
    case = vectors["cases"][2]
    message, expected = bytes.fromhex(case["message"]), bytes.fromhex(case["signature"])
    digest = hashlib.sha256(message).digest()
    assert sign(engine, V14, private, None, PKCS1_SHA256, digested_data=digest) == expected
    assert verify(engine, V14, public, expected, None, PKCS1_SHA256, digested_data=digest) == VALID
    assert verify(engine, V14, public, expected, None, PKCS1_SHA256, digested_data=flipped(digest)) == INVALID
    short = item(
        Operation.SIGN, unique_identifier=private, cryptographic_parameters=PKCS1_SHA256, digested_data=digest[:20]
    )
    assert "32" in failure(one(engine, V21, short), R.BAD_CRYPTOGRAPHIC_PARAMETERS)


# ---- randomized schemes, checked independently


@pytest.mark.parametrize("version", [V14, V21])
def test_pss_salt_and_mask_defaults(engine, version):
    """PSS with the key's parameters naming only the hash: MGF1 uses that hash and the salt is
    the hash's length (checked by cryptography with exactly those); a Salt Length given is
    used; verification without a Salt Length accepts any (CS-AC-M-2's 222-byte salt)."""
    stored = CryptographicParameters(padding_method=P.PSS, hashing_algorithm=H.SHA_256, cryptographic_algorithm=A.RSA)
    private, public = key_pair(engine, version, RSA_KEY, A.RSA, 2048, params=stored)
    signature = sign(engine, version, private)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    RSA_KEY.public_key().verify(signature, MESSAGE, pss, hashes.SHA256())
    assert signature != sign(engine, version, private)  # a random salt each time
    longest = dataclass_replace(stored, salt_length=222)
    signature = sign(engine, version, private, params=longest)
    RSA_KEY.public_key().verify(signature, MESSAGE, padding.PSS(padding.MGF1(hashes.SHA256()), 222), hashes.SHA256())
    assert verify(engine, version, public, signature) == VALID  # no Salt Length: any
    assert verify(engine, version, public, signature, params=dataclass_replace(stored, salt_length=32)) == INVALID
    assert verify(engine, version, public, signature, params=dataclass_replace(stored, hashing_algorithm=H.SHA_1)) == (
        INVALID
    )
    theirs = RSA_KEY.sign(MESSAGE, padding.PSS(padding.MGF1(hashes.SHA384()), 48), hashes.SHA384())
    rsassa_pss = CryptographicParameters(digital_signature_algorithm=D.RSASSA_PSS, hashing_algorithm=H.SHA_384)
    assert verify(engine, version, public, theirs, params=rsassa_pss) == VALID


def dataclass_replace(params: CryptographicParameters, **changes: Any) -> CryptographicParameters:
    return dataclasses.replace(params, **changes)


CURVES = [
    (ec.SECP256R1, 256, D.ECDSA_WITH_SHA256, hashes.SHA256),
    (ec.SECP384R1, 384, D.ECDSA_WITH_SHA384, hashes.SHA384),
    (ec.SECP521R1, 521, D.ECDSA_WITH_SHA512, hashes.SHA512),
]


@pytest.mark.parametrize(("curve", "bits", "algorithm", "digest"), CURVES, ids=["P-256", "P-384", "P-521"])
def test_ecdsa_signatures_verify_independently(engine, curve, bits, algorithm, digest):
    """ECDSA on the NIST curves: DER signatures cryptography accepts, by the Digital Signature
    Algorithm or (the curve's hash) by default; the server accepts cryptography's and refuses
    one for another message."""
    key = ec.generate_private_key(curve())
    private, public = key_pair(engine, V21, key, A.ECDSA, bits)
    named = CryptographicParameters(digital_signature_algorithm=algorithm)
    for params in (named, None):
        signature = sign(engine, V21, private, params=params)
        key.public_key().verify(signature, MESSAGE, ec.ECDSA(digest()))
    theirs = key.sign(MESSAGE, ec.ECDSA(digest()))
    assert verify(engine, V21, public, theirs, params=named) == VALID
    assert verify(engine, V21, public, theirs, MESSAGE + b"!", params=named) == INVALID
    prehashed = key.sign(hashlib.new(digest.name, MESSAGE).digest(), ec.ECDSA(utils.Prehashed(digest())))
    assert verify(engine, V21, public, prehashed) == VALID


def test_ecdsa_sec1_and_transparent_keys(engine):
    """An EC Private Key (SEC 1, KMIP 1.x) and Transparent EC keys (Recommended Curve with D
    or Q String) sign and verify like their PKCS#8 and X.509 forms."""
    key = ec.generate_private_key(ec.SECP256R1())
    sec1 = key.private_bytes(Encoding.DER, PrivateFormat.TraditionalOpenSSL, NoEncryption())
    point = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    curve = RecommendedCurve.P_256
    private_sec1 = register_key(engine, V14, True, _block(F.ECPRIVATEKEY, sec1, A.ECDSA, 256))
    private_transparent = register_key(
        engine, V21, True,
        _block(F.TRANSPARENT_EC_PRIVATE_KEY, TransparentKeyMaterial(recommended_curve=curve,
                                                                     d=key.private_numbers().private_value),
               A.EC, 256),
    )  # fmt: skip
    public = register_key(
        engine, V21, False,
        _block(F.TRANSPARENT_EC_PUBLIC_KEY, TransparentKeyMaterial(recommended_curve=curve, q_string=point), A.EC, 256),
    )  # fmt: skip
    for version, uid in ((V14, private_sec1), (V21, private_transparent)):
        signature = sign(engine, version, uid)
        key.public_key().verify(signature, MESSAGE, ec.ECDSA(hashes.SHA256()))
        assert verify(engine, V21, public, signature) == VALID


def test_dsa_signature(engine):
    key = dsa.generate_private_key(2048)
    private, public = key_pair(engine, V14, key, A.DSA, 2048)
    params = CryptographicParameters(digital_signature_algorithm=D.DSA_WITH_SHA256)
    signature = sign(engine, V14, private, params=params)
    key.public_key().verify(signature, MESSAGE, hashes.SHA256())
    assert verify(engine, V14, public, signature, params=params) == VALID
    assert verify(engine, V14, public, signature, MESSAGE[1:], params=params) == INVALID


def test_vector_verify_with_parameters_naming_another_algorithm(engine):
    """CS-AC-M-3-ECC-13: an ECDSA key verifies under parameters naming RSA and PSS; the
    Hashing Algorithm alone applies (SHA-256 Valid, SHA-1 Invalid)."""
    key = ec.generate_private_key(ec.SECP256R1())
    private, public = key_pair(engine, V14, key, A.ECDSA, 256)
    signature = sign(engine, V14, private)
    rsa_pss = CryptographicParameters(padding_method=P.PSS, hashing_algorithm=H.SHA_256, cryptographic_algorithm=A.RSA)
    assert verify(engine, V14, public, signature, params=rsa_pss) == VALID
    assert verify(engine, V14, public, signature, params=dataclass_replace(rsa_pss, hashing_algorithm=H.SHA_1)) == (
        INVALID
    )


# ---- streams


def test_streamed_sign_and_verify(engine):
    """Init, a middle part and Final: the signature of the whole message (the deterministic
    PKCS#1 v1.5 known answer), later parts naming neither key nor parameters; Verify likewise,
    with the Signature Data in its final part."""
    vectors = KAT["rsa_pkcs1v15"]
    private = register_key(engine, V21, True, _block(F.PKCS_8, bytes.fromhex(vectors["private_pkcs8"]), A.RSA, 2048))
    public = register_key(engine, V21, False, _block(F.X_509, bytes.fromhex(vectors["public_spki"]), A.RSA, 2048))
    case = vectors["cases"][3]
    message, expected = bytes.fromhex(case["message"]), bytes.fromhex(case["signature"])
    parts = (message[:5], message[5:20], message[20:])

    def stream(operation, uid, last: dict[str, Any]):
        first = ok(one(engine, V21, item(operation, unique_identifier=uid, cryptographic_parameters=PKCS1_SHA256,
                                         data=parts[0], init_indicator=True)))  # fmt: skip
        assert first.correlation_value and first.unique_identifier == uid
        assert getattr(first, "signature_data", None) is None
        middle = ok(one(engine, V21, item(operation, correlation_value=first.correlation_value, data=parts[1])))
        assert middle.correlation_value == first.correlation_value
        return ok(one(engine, V21, item(operation, correlation_value=first.correlation_value, data=parts[2],
                                        final_indicator=True, **last)))  # fmt: skip

    assert stream(Operation.SIGN, private, {}).signature_data == expected
    assert stream(Operation.SIGNATURE_VERIFY, public, {"signature_data": expected}).validity_indicator == VALID
    changed = stream(Operation.SIGNATURE_VERIFY, public, {"signature_data": flipped(expected)})
    assert changed.validity_indicator == INVALID


def test_a_stream_keeps_its_key_and_parameters(engine):
    """A later part may not name another key or other parameters than the first part's; the
    Signature Data may come with the first part."""
    private, public = key_pair(engine, V21, RSA_KEY, A.RSA, 2048, params=PKCS1_SHA256)
    other = register_key(engine, V21, True, _block(F.PKCS_8, _pkcs8(), A.RSA, 2048), params=PKCS1_SHA256)
    signature = RSA_KEY.sign(MESSAGE, padding.PKCS1v15(), hashes.SHA256())

    def opened(operation, uid, **fields):
        first = item(operation, unique_identifier=uid, data=MESSAGE[:4], init_indicator=True, **fields)
        return ok(one(engine, V21, first)).correlation_value

    correlation = opened(Operation.SIGN, private)
    wrong_key = item(Operation.SIGN, unique_identifier=other, correlation_value=correlation, data=MESSAGE[4:])
    assert "another key" in failure(one(engine, V21, wrong_key), R.INVALID_FIELD)
    pss = CryptographicParameters(padding_method=P.PSS, hashing_algorithm=H.SHA_256)
    wrong_params = item(Operation.SIGN, correlation_value=correlation, cryptographic_parameters=pss, data=b"")
    assert "Cryptographic Parameters" in failure(one(engine, V21, wrong_params), R.INVALID_FIELD)
    correlation = opened(Operation.SIGNATURE_VERIFY, public, signature_data=signature)
    last = item(Operation.SIGNATURE_VERIFY, correlation_value=correlation, data=MESSAGE[4:], final_indicator=True)
    assert ok(one(engine, V21, last)).validity_indicator == VALID


# ---- lifecycle, dates and refusals


@pytest.mark.parametrize(("version", "reason"), [(V14, R.PERMISSION_DENIED), (V21, R.WRONG_KEY_LIFECYCLE_STATE)])
def test_sign_needs_an_active_key_verify_allows_a_deactivated_one(engine, version, reason):
    """A Pre-Active key signs nothing; a Deactivated private key signs nothing either, while a
    Deactivated public key still verifies (it processes protected data)."""
    pre_active = register_key(engine, version, True, _block(F.PKCS_8, _pkcs8(), A.RSA, 2048), dates={})
    assert failure(one(engine, version, _sign_item(pre_active)), reason)
    past = {"Activation Date": at(T0 - 3600), "Deactivation Date": at(T0 - 60)}
    deactivated = register_key(engine, version, True, _block(F.PKCS_8, _pkcs8(), A.RSA, 2048), dates=past)
    failure(one(engine, version, _sign_item(deactivated)), reason)
    spki = RSA_KEY.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    public = register_key(engine, version, False, _block(F.X_509, spki, A.RSA, 2048), dates=past)
    signature = RSA_KEY.sign(MESSAGE, padding.PKCS1v15(), hashes.SHA256())
    assert verify(engine, version, public, signature, params=PKCS1_SHA256) == VALID


@pytest.mark.parametrize(
    ("version", "reason"),
    [(V14, R.PERMISSION_DENIED), (V20, R.PERMISSION_DENIED), (V21, R.WRONG_KEY_LIFECYCLE_STATE)],
)
def test_protect_stop_and_process_start_dates(engine, version, reason):
    """CS-AC-M-8: past its Protect Stop Date a key signs nothing, before its Process Start Date
    it verifies nothing (the reason of a wrong state: 2.1's own, Permission Denied before)."""
    dates = {
        "Activation Date": at(T0 - 3600),
        "Process Start Date": at(T0 + 3600),
        "Protect Stop Date": at(T0 - 3600),
    }
    private, public = key_pair(engine, version, RSA_KEY, A.RSA, 2048, params=PKCS1_SHA256, dates=dates)
    failure(one(engine, version, _sign_item(private)), reason)
    signature = RSA_KEY.sign(MESSAGE, padding.PKCS1v15(), hashes.SHA256())
    verify_item = item(Operation.SIGNATURE_VERIFY, unique_identifier=public, data=MESSAGE, signature_data=signature)
    failure(one(engine, version, verify_item), reason)


@pytest.mark.parametrize(
    ("version", "reason"), [(V14, R.PERMISSION_DENIED), (V21, R.INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK)]
)
def test_usage_mask_is_checked(engine, version, reason):
    private = register_key(engine, version, True, _block(F.PKCS_8, _pkcs8(), A.RSA, 2048), usage=Usage.DECRYPT)
    assert "SIGN" in failure(one(engine, version, _sign_item(private)), reason)


@pytest.mark.parametrize(
    ("params", "words"),
    [
        (CryptographicParameters(digital_signature_algorithm=D.ECDSA_WITH_SHA256), "does not fit"),
        (CryptographicParameters(hashing_algorithm=H.SHA_256), "Padding Method"),
        (CryptographicParameters(padding_method=P.OAEP, hashing_algorithm=H.SHA_256), "Padding Method"),
        (CryptographicParameters(padding_method=P.PKCS1_V1_5), "Hashing Algorithm"),
        (CryptographicParameters(padding_method=P.PSS, hashing_algorithm=H.SHA_256, salt_length=300), "cannot sign"),
    ],
    ids=["another family", "no padding", "encryption padding", "no hash", "salt too long"],
)
@pytest.mark.parametrize(("version", "reason"), [(V14, R.INVALID_FIELD), (V21, R.BAD_CRYPTOGRAPHIC_PARAMETERS)])
def test_unusable_parameters_are_bad_parameters(engine, params, words, version, reason):
    private = register_key(engine, version, True, _block(F.PKCS_8, _pkcs8(), A.RSA, 2048))
    assert words in failure(one(engine, version, _sign_item(private, params)), reason)


@pytest.mark.parametrize(
    ("version", "reason"), [(V14, R.CRYPTOGRAPHIC_FAILURE), (V21, R.UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS)]
)
def test_unimplemented_parameters_are_unsupported(engine, version, reason):
    """Valid KMIP values OpenSSL 3 does not offer: the MD2 hash, a non-standard PSS trailer."""
    private = register_key(engine, version, True, _block(F.PKCS_8, _pkcs8(), A.RSA, 2048))
    md2 = CryptographicParameters(padding_method=P.PKCS1_V1_5, hashing_algorithm=H.MD2)
    assert "MD2" in failure(one(engine, version, _sign_item(private, md2)), reason)
    trailer = CryptographicParameters(padding_method=P.PSS, hashing_algorithm=H.SHA_256, trailer_field=2)
    assert "trailer" in failure(one(engine, version, _sign_item(private, trailer)), reason)


@pytest.mark.parametrize(("version", "reason"), [(V14, R.ILLEGAL_OPERATION), (V21, R.INVALID_OBJECT_TYPE)])
def test_sign_with_a_public_key_is_refused(engine, version, reason):
    spki = RSA_KEY.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    public = register_key(engine, version, False, _block(F.X_509, spki, A.RSA, 2048), usage=Usage.SIGN | Usage.VERIFY)
    assert "not a Private Key" in failure(one(engine, version, _sign_item(public)), reason)


def test_missing_data_and_signature(engine):
    private, public = key_pair(engine, V21, RSA_KEY, A.RSA, 2048, params=PKCS1_SHA256)
    assert "no Data to sign" in failure(one(engine, V21, _sign_item(private, data=None)), R.INVALID_FIELD)
    no_signature = item(Operation.SIGNATURE_VERIFY, unique_identifier=public, data=MESSAGE)
    assert "Signature Data" in failure(one(engine, V21, no_signature), R.INVALID_FIELD)


def _pkcs8() -> bytes:
    return bytes.fromhex(KAT["rsa_pkcs1v15"]["private_pkcs8"])


def _sign_item(uid: str, params=PKCS1_SHA256, data: bytes | None = MESSAGE):
    return item(Operation.SIGN, unique_identifier=uid, cryptographic_parameters=params, data=data)
