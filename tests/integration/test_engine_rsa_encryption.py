"""RSA Encrypt and Decrypt through the engine, on the real token and both stores.

Known answers: the OASIS CS-AC-M-OAEP vectors' ciphertexts (SHA-256/384/512, a Mask Generator
hash unlike the message hash, a P Source label), decrypted by the server with the registered
private key to the vectors' plaintext. Encryption is randomized (RFC 8017 §7.1.1 draws a seed,
§7.2.1 random padding octets), so what the server encrypts is decrypted independently with
``cryptography``. Then the defaults, key formats, streams and the refusals: a failed
decryption says one thing whatever went wrong.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kmip_client.protocol.model import Attribute
from kmip_client.protocol.model.attributes import CryptographicParameters
from kmip_client.protocol.model.objects import KeyBlock, KeyValue, PrivateKey, PublicKey, TransparentKeyMaterial
from kmip_client.protocol.spec.enums import (
    CryptographicAlgorithm,
    CryptographicUsageMask,
    HashingAlgorithm,
    KeyFormatType,
    MaskGenerator,
    ObjectType,
    Operation,
    PaddingMethod,
    ResultReason,
)

from .engine_support import T0, failure, one, register
from .kmip_messages import V14, V21, at, item, ok

OASIS = Path(__file__).resolve().parents[1] / "vectors" / "oasis" / "v1.4" / "mandatory"
A = CryptographicAlgorithm
F = KeyFormatType
H = HashingAlgorithm
P = PaddingMethod
R = ResultReason
Usage = CryptographicUsageMask
_HASHES = {"SHA_1": hashes.SHA1, "SHA_256": hashes.SHA256, "SHA_384": hashes.SHA384, "SHA_512": hashes.SHA512}


@dataclasses.dataclass(frozen=True)
class OaepCase:
    """One CS-AC-M-OAEP file: its key (as registered), parameters, and the Data in and out."""

    name: str
    private: bool
    fmt: F
    material: bytes
    params: CryptographicParameters
    data_in: bytes
    data_out: bytes

    def oaep(self) -> padding.OAEP:
        p = self.params
        assert p.hashing_algorithm is not None and p.mask_generator_hashing_algorithm is not None
        return padding.OAEP(
            mgf=padding.MGF1(_HASHES[p.mask_generator_hashing_algorithm.name]()),
            algorithm=_HASHES[p.hashing_algorithm.name](),
            label=p.p_source,
        )


def _oaep_case(number: int) -> OaepCase:
    root = ET.parse(OASIS / f"CS-AC-M-OAEP-{number}-14.xml").getroot()
    value = {el.tag: el.get("value") for el in root.iter() if el.get("value") is not None}
    params = CryptographicParameters(
        padding_method=P.OAEP,
        hashing_algorithm=H[value["HashingAlgorithm"]],
        mask_generator=MaskGenerator.MGF1,
        mask_generator_hashing_algorithm=H[value["MaskGeneratorHashingAlgorithm"]],
        p_source=bytes.fromhex(value["PSource"]) if "PSource" in value else None,
        cryptographic_algorithm=A.RSA,
    )
    data = [bytes.fromhex(el.get("value", "")) for el in root.iter("Data")]
    assert len(data) == 2  # the request's and the response's
    return OaepCase(
        name=f"OAEP-{number}",
        private=value["ObjectType"] == "PrivateKey",
        fmt=F[value["KeyFormatType"]],
        material=bytes.fromhex(value["KeyMaterial"]),
        params=params,
        data_in=data[0],
        data_out=data[1],
    )


DECRYPTS = [_oaep_case(n) for n in (2, 4, 6, 8, 10)]
#: Each encrypting file (public key) with the decrypting file of its key pair (private key).
PAIRS = [(_oaep_case(n), _oaep_case(n + 1)) for n in (1, 3, 5, 7, 9)]


def _private(case: OaepCase) -> rsa.RSAPrivateKey:
    key = serialization.load_der_private_key(case.material, None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


PAIR_KEY = _private(DECRYPTS[0])


def register_rsa(engine, version, private: bool, fmt: F, material: Any, params=None, usage=None) -> str:
    mask = usage if usage is not None else (Usage.DECRYPT if private else Usage.ENCRYPT)
    attributes = [
        Attribute(name="Cryptographic Usage Mask", value=mask),
        Attribute(name="Activation Date", value=at(T0 - 3600)),
    ]
    if params is not None:
        attributes.append(Attribute(name="Cryptographic Parameters", value=params))
    block = KeyBlock(
        key_format_type=fmt, key_value=KeyValue(key_material=material), cryptographic_algorithm=A.RSA,
        cryptographic_length=2048,
    )  # fmt: skip
    object_type, cls = (ObjectType.PRIVATE_KEY, PrivateKey) if private else (ObjectType.PUBLIC_KEY, PublicKey)
    return register(engine, version, object_type, cls(key_block=block), attributes)


def crypt(engine, version, operation: Operation, uid: str, data: bytes, params=None) -> bytes:
    request = item(operation, unique_identifier=uid, cryptographic_parameters=params, data=data)
    payload = ok(one(engine, version, request))
    assert payload.unique_identifier == uid
    return payload.data


def _public_der() -> bytes:
    return PAIR_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _private_der() -> bytes:
    return DECRYPTS[0].material


# ---- known answers


@pytest.mark.parametrize("version", [V14, V21])
@pytest.mark.parametrize("case", DECRYPTS, ids=lambda c: c.name)
def test_oaep_decrypt_known_answers(engine, version, case):
    """The vector's ciphertext decrypts to its plaintext, under the key's Cryptographic
    Parameters attribute as in the vector, and under the same parameters given in the request."""
    assert case.private and case.fmt == F.PKCS_1
    uid = register_rsa(engine, version, True, case.fmt, case.material, case.params)
    assert crypt(engine, version, Operation.DECRYPT, uid, case.data_in) == case.data_out
    bare = register_rsa(engine, version, True, case.fmt, case.material)
    assert crypt(engine, version, Operation.DECRYPT, bare, case.data_in, case.params) == case.data_out


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: p[0].name)
def test_oaep_encrypt_decrypts_independently(engine, pair):
    """The vector's public key (X.509) encrypts its plaintext; cryptography decrypts the result
    with the private key of the next file and the vector's parameters, and so does the server
    with that key registered. Two encryptions of one plaintext differ (OAEP's random seed)."""
    case, partner = pair
    assert not case.private and case.fmt == F.X_509 and partner.private
    key = _private(partner)
    uid = register_rsa(engine, V21, False, case.fmt, case.material, case.params)
    first = crypt(engine, V21, Operation.ENCRYPT, uid, case.data_in)
    second = crypt(engine, V21, Operation.ENCRYPT, uid, case.data_in)
    assert len(first) == 256 and first != second
    for ciphertext in (first, second, case.data_out):
        assert key.decrypt(ciphertext, case.oaep()) == case.data_in
    private = register_rsa(engine, V21, True, partner.fmt, partner.material, case.params)
    assert crypt(engine, V21, Operation.DECRYPT, private, first) == case.data_in


# ---- defaults, formats, paddings


def test_oaep_hashes_default_to_sha1(engine):
    """OAEP naming no hashes uses SHA-1 for both (RFC 8017 §A.2.1, KMIP 2.1 Table 59) and the
    empty label."""
    uid = register_rsa(engine, V21, False, F.X_509, _public_der(), CryptographicParameters(padding_method=P.OAEP))
    ciphertext = crypt(engine, V21, Operation.ENCRYPT, uid, b"secret")
    sha1 = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    assert PAIR_KEY.decrypt(ciphertext, sha1) == b"secret"
    mixed = CryptographicParameters(padding_method=P.OAEP, hashing_algorithm=H.SHA_256)
    ciphertext = crypt(engine, V21, Operation.ENCRYPT, uid, b"secret", mixed)
    mgf_sha1 = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA256(), label=None)
    assert PAIR_KEY.decrypt(ciphertext, mgf_sha1) == b"secret"


@pytest.mark.parametrize("version", [V14, V21])
def test_pkcs1v15_with_transparent_and_pkcs1_keys(engine, version):
    """PKCS#1 v1.5 encryption with a Transparent RSA Public Key and a PKCS#1 public key;
    cryptography and the server (a Transparent RSA Private Key) decrypt it."""
    numbers = PAIR_KEY.private_numbers()
    pkcs1v15 = CryptographicParameters(padding_method=P.PKCS1_V1_5)
    transparent = TransparentKeyMaterial(modulus=numbers.public_numbers.n, public_exponent=numbers.public_numbers.e)
    pkcs1 = PAIR_KEY.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    private = register_rsa(
        engine, version, True, F.TRANSPARENT_RSA_PRIVATE_KEY,
        TransparentKeyMaterial(modulus=numbers.public_numbers.n, public_exponent=numbers.public_numbers.e,
                               private_exponent=numbers.d),
        pkcs1v15,
    )  # fmt: skip
    for fmt, material in ((F.TRANSPARENT_RSA_PUBLIC_KEY, transparent), (F.PKCS_1, pkcs1)):
        uid = register_rsa(engine, version, False, fmt, material, pkcs1v15)
        ciphertext = crypt(engine, version, Operation.ENCRYPT, uid, b"attack at dawn")
        assert PAIR_KEY.decrypt(ciphertext, padding.PKCS1v15()) == b"attack at dawn"
        assert crypt(engine, version, Operation.DECRYPT, private, ciphertext) == b"attack at dawn"


def test_streamed_decrypt(engine):
    """A ciphertext sent in two parts decrypts at the final one (RSA has nothing to give before)."""
    case = DECRYPTS[1]
    uid = register_rsa(engine, V21, True, case.fmt, case.material, case.params)
    first = ok(
        one(engine, V21, item(Operation.DECRYPT, unique_identifier=uid, data=case.data_in[:100], init_indicator=True))
    )
    assert first.correlation_value and not first.data
    final = item(
        Operation.DECRYPT, correlation_value=first.correlation_value, data=case.data_in[100:], final_indicator=True
    )
    assert ok(one(engine, V21, final)).data == case.data_out


# ---- refusals


@pytest.mark.parametrize("version", [V14, V21])
def test_failed_decryption_says_one_thing(engine, version):
    """Another label, a changed byte, a short ciphertext: the same Cryptographic Failure and
    message each time, naming nothing of the cause. (PKCS#1 v1.5 decryption of a bad
    ciphertext does not fail at all: OpenSSL 3.2's implicit rejection, the Marvin attack
    countermeasure, gives a synthetic message instead; it is not the plaintext.)"""
    case = DECRYPTS[4]  # the one with a P Source label
    uid = register_rsa(engine, version, True, case.fmt, case.material, case.params)
    no_label = dataclasses.replace(case.params, p_source=None)
    changed = case.data_in[:-1] + bytes([case.data_in[-1] ^ 1])
    attempts = [
        (case.data_in, no_label),
        (changed, None),
        (case.data_in[:-1], None),
    ]
    messages = set()
    for data, params in attempts:
        request = item(Operation.DECRYPT, unique_identifier=uid, cryptographic_parameters=params, data=data)
        messages.add(failure(one(engine, version, request), R.CRYPTOGRAPHIC_FAILURE))
    assert messages == {"decryption failed"}
    pkcs1v15 = CryptographicParameters(padding_method=P.PKCS1_V1_5)
    assert crypt(engine, version, Operation.DECRYPT, uid, case.data_in, pkcs1v15) != case.data_out


def test_rsa_parameter_and_data_refusals(engine):
    public = register_rsa(engine, V14, False, F.X_509, _public_der())
    none = item(Operation.ENCRYPT, unique_identifier=public, data=b"x")
    assert "Padding Method" in failure(one(engine, V14, none), R.INVALID_FIELD)
    pss = CryptographicParameters(padding_method=P.PSS)
    assert "PSS" in failure(one(engine, V14, item(Operation.ENCRYPT, unique_identifier=public,
                                                  cryptographic_parameters=pss, data=b"x")), R.INVALID_FIELD)  # fmt: skip
    oaep = CryptographicParameters(padding_method=P.OAEP, hashing_algorithm=H.SHA_512)
    too_long = item(Operation.ENCRYPT, unique_identifier=public, cryptographic_parameters=oaep, data=bytes(200))
    assert "too many" in failure(one(engine, V14, too_long), R.INVALID_FIELD)
    decrypt_with_public = item(Operation.DECRYPT, unique_identifier=public, cryptographic_parameters=oaep, data=b"x")
    failure(one(engine, V14, decrypt_with_public), R.PERMISSION_DENIED)  # its mask allows Encrypt only
    both = register_rsa(engine, V14, False, F.X_509, _public_der(), usage=Usage.ENCRYPT | Usage.DECRYPT)
    decrypt_with_public = item(Operation.DECRYPT, unique_identifier=both, cryptographic_parameters=oaep, data=b"x")
    assert "not a Private Key" in failure(one(engine, V14, decrypt_with_public), R.ILLEGAL_OPERATION)


def test_rsa_parameter_refusals_in_2x_have_the_2x_reasons(engine):
    """KMIP 2.x: Bad Cryptographic Parameters for parameters that do not fit RSA encryption,
    Unsupported Cryptographic Parameters for a hash this server does not implement."""
    public = register_rsa(engine, V21, False, F.X_509, _public_der())
    pss = CryptographicParameters(padding_method=P.PSS)
    request = item(Operation.ENCRYPT, unique_identifier=public, cryptographic_parameters=pss, data=b"x")
    assert "PSS" in failure(one(engine, V21, request), R.BAD_CRYPTOGRAPHIC_PARAMETERS)
    md2 = CryptographicParameters(padding_method=P.OAEP, hashing_algorithm=H.MD2)
    request = item(Operation.ENCRYPT, unique_identifier=public, cryptographic_parameters=md2, data=b"x")
    failure(one(engine, V21, request), R.UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS)
