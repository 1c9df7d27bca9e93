"""The cryptographic operations as :class:`~kmip_client.operations.Call` s: Encrypt, Decrypt,
Sign, Signature Verify, MAC, MAC Verify, Hash, RNG Retrieve and Seed, Derive Key.

The keys stay on the server; these calls send the data and read back the result. Cryptographic
Parameters are given as keyword arguments (:class:`CryptoOptions`: ``mode="GCM"``,
``padding="PKCS5"``, ``hashing="SHA-256"`` ...), by enumeration member or by name, or whole as
``parameters=CryptographicParameters(...)`` (keywords given beside it override its fields).
Streamed operations (several parts under one Correlation Value) are in
:mod:`kmip_client.streaming`; both the blocking and the asyncio client build their requests
here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from enum import IntEnum
from typing import Any, TypedDict, TypeVar

from . import operations as ops
from .operations import Call, Version
from .protocol.errors import KmipError
from .protocol.model.attributes import CryptographicParameters
from .protocol.model.payloads.structures import DerivationParameters
from .protocol.spec.enums import (
    BlockCipherMode,
    CryptographicAlgorithm,
    CryptographicUsageMask,
    DerivationMethod,
    DigitalSignatureAlgorithm,
    HashingAlgorithm,
    KeyRoleType,
    MaskGenerator,
    ObjectType,
    Operation,
    PaddingMethod,
    ResultReason,
    ValidityIndicator,
)

__all__ = [
    "CryptoCalls",
    "algorithm_of",
    "default_usage",
    "CryptoOptions",
    "EncryptResult",
    "VerifyResult",
    "crypto_parameters",
    "enum_member",
]

E = TypeVar("E", bound=IntEnum)


class CryptoOptions(TypedDict, total=False):
    """Cryptographic Parameters as keyword arguments (names or enumeration members)."""

    parameters: CryptographicParameters
    mode: BlockCipherMode | str
    padding: PaddingMethod | str
    hashing: HashingAlgorithm | str
    key_role: KeyRoleType | str
    signature_algorithm: DigitalSignatureAlgorithm | str
    algorithm: CryptographicAlgorithm | str
    random_iv: bool
    iv_length: int
    tag_length: int
    fixed_field_length: int
    invocation_field_length: int
    counter_length: int
    initial_counter_value: int
    salt_length: int
    mask_generator: MaskGenerator | str
    mask_generator_hashing: HashingAlgorithm | str
    p_source: bytes
    trailer_field: int


# keyword → (field of Cryptographic Parameters, its enumeration when it has one)
_FIELDS: dict[str, tuple[str, type[IntEnum] | None]] = {
    "mode": ("block_cipher_mode", BlockCipherMode),
    "padding": ("padding_method", PaddingMethod),
    "hashing": ("hashing_algorithm", HashingAlgorithm),
    "key_role": ("key_role_type", KeyRoleType),
    "signature_algorithm": ("digital_signature_algorithm", DigitalSignatureAlgorithm),
    "algorithm": ("cryptographic_algorithm", CryptographicAlgorithm),
    "random_iv": ("random_iv", None),
    "iv_length": ("iv_length", None),
    "tag_length": ("tag_length", None),
    "fixed_field_length": ("fixed_field_length", None),
    "invocation_field_length": ("invocation_field_length", None),
    "counter_length": ("counter_length", None),
    "initial_counter_value": ("initial_counter_value", None),
    "salt_length": ("salt_length", None),
    "mask_generator": ("mask_generator", MaskGenerator),
    "mask_generator_hashing": ("mask_generator_hashing_algorithm", HashingAlgorithm),
    "p_source": ("p_source", None),
    "trailer_field": ("trailer_field", None),
}


def _squeezed(text: str) -> str:
    return "".join(ch for ch in text.upper() if ch.isalnum())


def enum_member(cls: type[E], value: E | int | str) -> E:
    """The member of ``cls`` named ``value`` in any case, with dashes, dots or underscores or
    none ("GCM", "sha-256", "SHA256", "pkcs1-v1.5"), or the member itself."""
    if isinstance(value, cls):
        return value
    if isinstance(value, int):
        return cls(value)
    exact = value.strip().upper().replace("-", "_").replace(".", "_")
    if exact in cls.__members__:
        return cls.__members__[exact]
    wanted = _squeezed(value)
    for name, member in cls.__members__.items():
        if _squeezed(name) == wanted:
            return member
    raise ValueError(f"unknown {cls.__name__} {value!r}")


def crypto_parameters(options: Mapping[str, Any]) -> CryptographicParameters | None:
    """The Cryptographic Parameters that ``options`` (:class:`CryptoOptions`) describe, or None
    when they describe none (the server then uses the key's own)."""
    unknown = sorted(set(options) - set(_FIELDS) - {"parameters"})
    if unknown:
        raise TypeError(f"unknown cryptographic parameter(s): {', '.join(unknown)}")
    fields: dict[str, Any] = {}
    for keyword, value in options.items():
        if keyword == "parameters" or value is None:
            continue
        name, cls = _FIELDS[keyword]
        fields[name] = enum_member(cls, value) if cls is not None else value
    base: CryptographicParameters | None = options.get("parameters")
    if base is None:
        return CryptographicParameters(**fields) if fields else None
    return dataclasses.replace(base, **fields) if fields else base


def algorithm_of(value: CryptographicAlgorithm | str) -> CryptographicAlgorithm:
    """An algorithm by enum or by name ("AES", "HMAC_SHA256", "hmac-sha256")."""
    if isinstance(value, str):
        try:
            return CryptographicAlgorithm[value.upper().replace("-", "_")]
        except KeyError:
            raise ValueError(f"unknown cryptographic algorithm {value!r}") from None
    return value


#: The HMAC algorithms, whose keys are for MAC Generate and MAC Verify.
_HMAC = frozenset(a for a in CryptographicAlgorithm if a.name.startswith("HMAC"))


def default_usage(algorithm: CryptographicAlgorithm) -> int:
    """The usage mask a new key gets when none is given: Encrypt and Decrypt, or MAC Generate
    and MAC Verify for HMAC keys. Some servers (PyKMIP's) refuse a key without one."""
    if algorithm in _HMAC:
        return int(CryptographicUsageMask.MAC_GENERATE | CryptographicUsageMask.MAC_VERIFY)
    return int(CryptographicUsageMask.ENCRYPT | CryptographicUsageMask.DECRYPT)


# --------------------------------------------------------------------------- results


@dataclasses.dataclass(frozen=True, slots=True)
class EncryptResult:
    """What Encrypt returned.

    ``iv`` is the IV/Counter/Nonce the ciphertext needs for decryption: the server's when it
    generated one (Random IV), else the one the request gave; ``tag`` the Authenticated
    Encryption Tag (GCM, CCM).
    """

    data: bytes = dataclasses.field(repr=False)
    iv: bytes | None = None
    tag: bytes | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class VerifyResult:
    """What Signature Verify or MAC Verify returned; true (``bool(result)``) only when valid.

    ``data`` is what a Signature Verify with message recovery gave back (else None).
    """

    indicator: ValidityIndicator | int
    data: bytes | None = dataclasses.field(default=None, repr=False)

    @property
    def valid(self) -> bool:
        return self.indicator == ValidityIndicator.VALID

    def __bool__(self) -> bool:
        return self.valid


def _bytes(payload: Any, field: str) -> bytes:
    value = getattr(payload, field)
    if value is None:
        raise KmipError(f"the server's {payload.TAG.name} carries no {field}", ResultReason.INVALID_MESSAGE)
    return bytes(value)


def verify_result(payload: Any) -> VerifyResult:
    """The :class:`VerifyResult` of a Signature Verify or MAC Verify response payload."""
    indicator = payload.validity_indicator
    if indicator is None:
        raise KmipError("the server's answer carries no Validity Indicator", ResultReason.INVALID_MESSAGE)
    try:
        indicator = ValidityIndicator(indicator)
    except ValueError:
        pass  # keep the unknown number: it is not VALID, which is all that decides
    return VerifyResult(indicator, getattr(payload, "data", None))


def encrypt_result(iv: bytes | None) -> Any:
    def parse(payload: Any) -> EncryptResult:
        return EncryptResult(
            _bytes(payload, "data"), payload.iv_counter_nonce or iv, payload.authenticated_encryption_tag
        )

    return parse


def _field(name: str) -> Any:
    return lambda payload: _bytes(payload, name)


# --------------------------------------------------------------------------- requests


class CryptoCalls:
    """The cryptographic requests of protocol ``version`` (a base of :class:`~kmip_client.calls.Calls`)."""

    version: Version

    def encrypt(self, uid: Any, data: bytes, iv: bytes | None, aad: bytes | None, options: Mapping[str, Any]) -> Call:
        item = ops.request(
            Operation.ENCRYPT,
            unique_identifier=uid,
            cryptographic_parameters=crypto_parameters(options),
            data=bytes(data),
            iv_counter_nonce=iv,
            authenticated_encryption_additional_data=aad,
        )
        return Call(item, encrypt_result(iv))

    def decrypt(
        self,
        uid: Any,
        data: bytes,
        iv: bytes | None,
        aad: bytes | None,
        tag: bytes | None,
        options: Mapping[str, Any],
    ) -> Call:
        item = ops.request(
            Operation.DECRYPT,
            unique_identifier=uid,
            cryptographic_parameters=crypto_parameters(options),
            data=bytes(data),
            iv_counter_nonce=iv,
            authenticated_encryption_additional_data=aad,
            authenticated_encryption_tag=tag,
        )
        return Call(item, _field("data"))

    def sign(self, uid: Any, data: bytes, digested: bool, options: Mapping[str, Any]) -> Call:
        given = {"digested_data" if digested else "data": bytes(data)}
        item = ops.request(
            Operation.SIGN, unique_identifier=uid, cryptographic_parameters=crypto_parameters(options), **given
        )
        return Call(item, _field("signature_data"))

    def verify(self, uid: Any, data: bytes, signature: bytes, digested: bool, options: Mapping[str, Any]) -> Call:
        given = {"digested_data" if digested else "data": bytes(data)}
        item = ops.request(
            Operation.SIGNATURE_VERIFY,
            unique_identifier=uid,
            cryptographic_parameters=crypto_parameters(options),
            signature_data=bytes(signature),
            **given,
        )
        return Call(item, verify_result)

    def mac(self, uid: Any, data: bytes, options: Mapping[str, Any]) -> Call:
        item = ops.request(
            Operation.MAC, unique_identifier=uid, cryptographic_parameters=crypto_parameters(options), data=bytes(data)
        )
        return Call(item, _field("mac_data"))

    def mac_verify(self, uid: Any, data: bytes, mac: bytes, options: Mapping[str, Any]) -> Call:
        item = ops.request(
            Operation.MAC_VERIFY,
            unique_identifier=uid,
            cryptographic_parameters=crypto_parameters(options),
            data=bytes(data),
            mac_data=bytes(mac),
        )
        return Call(item, verify_result)

    def hash(self, data: bytes, options: Mapping[str, Any]) -> Call:
        item = ops.request(Operation.HASH, cryptographic_parameters=crypto_parameters(options), data=bytes(data))
        # A whole Hash changes nothing on the server: safe to send again.
        return Call(item, _field("data"), resend=True)

    def rng_retrieve(self, length: int) -> Call:
        if length <= 0:
            raise ValueError("the number of random bytes must be positive")
        return Call(ops.request(Operation.RNG_RETRIEVE, data_length=length), _field("data"), resend=True)

    def rng_seed(self, data: bytes) -> Call:
        def parse(payload: Any) -> int:
            return int(payload.data_length) if payload.data_length is not None else len(data)

        return Call(ops.request(Operation.RNG_SEED, data=bytes(data)), parse)

    def derive_key(
        self,
        base: str | Sequence[str],
        method: DerivationMethod | str,
        *,
        object_type: ObjectType,
        algorithm: CryptographicAlgorithm | str | None,
        length: int | None,
        derivation_data: bytes | None,
        salt: bytes | None,
        iterations: int | None,
        iv: bytes | None,
        name: Any,
        usage_mask: int | None,
        extra: Mapping[str, Any] | None,
        options: Mapping[str, Any],
    ) -> Call:
        chosen = algorithm_of(algorithm) if algorithm is not None else None
        if usage_mask is None and chosen is not None:
            usage_mask = default_usage(chosen)
        standard: dict[str, Any] = {
            "Cryptographic Algorithm": chosen,
            "Cryptographic Length": length,
            "Cryptographic Usage Mask": usage_mask,
            "Name": name,
        }
        given = ops.attributes_from(self.version, extra, **standard)
        item = ops.request(
            Operation.DERIVE_KEY,
            object_type=object_type,
            unique_identifiers=(base,) if isinstance(base, str) else tuple(base),
            derivation_method=enum_member(DerivationMethod, method),
            derivation_parameters=DerivationParameters(
                cryptographic_parameters=crypto_parameters(options),
                initialization_vector=iv,
                derivation_data=derivation_data,
                salt=salt,
                iteration_count=iterations,
            ),
            **ops.attribute_set(self.version, given),
        )
        return Call(item, lambda payload: str(payload.unique_identifier))
