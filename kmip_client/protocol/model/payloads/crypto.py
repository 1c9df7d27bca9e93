"""Payloads of the cryptographic operations: Encrypt, Decrypt, Sign, Signature Verify, MAC,
MAC Verify, Hash, RNG Retrieve / Seed, Validate and PKCS#11.

Streaming (Correlation Value, Init / Final Indicator) exists from KMIP 1.3, authenticated
encryption data from 1.4. Plaintext, random output and PKCS#11 parameters are ``secret``.
"""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum
from typing import Any

from ...spec import Tag
from ...spec.enums import Operation
from ...ttlv import ItemType
from ..attributes import CryptographicParameters
from ..base import Struct, kfield
from ..messages import request_payload, response_payload
from ..objects import Certificate
from .structures import uid

_TEXT = ItemType.TEXT_STRING
_BYTES = ItemType.BYTE_STRING
_INT = ItemType.INTEGER
_ENUM = ItemType.ENUMERATION
_BOOL = ItemType.BOOLEAN
_DT = ItemType.DATE_TIME

_V13 = (1, 3)
_V14 = (1, 4)


def _params() -> Any:
    return kfield(Tag.CRYPTOGRAPHIC_PARAMETERS, CryptographicParameters)


def _correlation() -> Any:
    return kfield(Tag.CORRELATION_VALUE, _BYTES, min_version=_V13)


def _init() -> Any:
    return kfield(Tag.INIT_INDICATOR, _BOOL, min_version=_V13)


def _final() -> Any:
    return kfield(Tag.FINAL_INDICATOR, _BOOL, min_version=_V13)


def _data(secret: bool = False) -> Any:
    return kfield(Tag.DATA, _BYTES, secret=secret)


@request_payload(Operation.ENCRYPT)
class EncryptRequest(Struct):
    unique_identifier: str | None = uid()
    cryptographic_parameters: CryptographicParameters | None = _params()
    data: bytes | None = _data(secret=True)
    iv_counter_nonce: bytes | None = kfield(Tag.IV_COUNTER_NONCE, _BYTES)
    correlation_value: bytes | None = _correlation()
    init_indicator: bool | None = _init()
    final_indicator: bool | None = _final()
    authenticated_encryption_additional_data: bytes | None = kfield(
        Tag.AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, _BYTES, min_version=_V14
    )


@response_payload(Operation.ENCRYPT)
class EncryptResponse(Struct):
    unique_identifier: str | None = uid()
    data: bytes | None = _data()
    iv_counter_nonce: bytes | None = kfield(Tag.IV_COUNTER_NONCE, _BYTES)
    correlation_value: bytes | None = _correlation()
    authenticated_encryption_tag: bytes | None = kfield(Tag.AUTHENTICATED_ENCRYPTION_TAG, _BYTES, min_version=_V14)


@request_payload(Operation.DECRYPT)
class DecryptRequest(Struct):
    unique_identifier: str | None = uid()
    cryptographic_parameters: CryptographicParameters | None = _params()
    data: bytes | None = _data()
    iv_counter_nonce: bytes | None = kfield(Tag.IV_COUNTER_NONCE, _BYTES)
    correlation_value: bytes | None = _correlation()
    init_indicator: bool | None = _init()
    final_indicator: bool | None = _final()
    authenticated_encryption_additional_data: bytes | None = kfield(
        Tag.AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, _BYTES, min_version=_V14
    )
    authenticated_encryption_tag: bytes | None = kfield(Tag.AUTHENTICATED_ENCRYPTION_TAG, _BYTES, min_version=_V14)


@response_payload(Operation.DECRYPT)
class DecryptResponse(Struct):
    unique_identifier: str | None = uid()
    data: bytes | None = _data(secret=True)
    correlation_value: bytes | None = _correlation()


@request_payload(Operation.SIGN)
class SignRequest(Struct):
    unique_identifier: str | None = uid()
    cryptographic_parameters: CryptographicParameters | None = _params()
    data: bytes | None = _data(secret=True)
    digested_data: bytes | None = kfield(Tag.DIGESTED_DATA, _BYTES, min_version=_V14)
    correlation_value: bytes | None = _correlation()
    init_indicator: bool | None = _init()
    final_indicator: bool | None = _final()


@response_payload(Operation.SIGN)
class SignResponse(Struct):
    unique_identifier: str | None = uid()
    signature_data: bytes | None = kfield(Tag.SIGNATURE_DATA, _BYTES)
    correlation_value: bytes | None = _correlation()


@request_payload(Operation.SIGNATURE_VERIFY)
class SignatureVerifyRequest(Struct):
    unique_identifier: str | None = uid()
    cryptographic_parameters: CryptographicParameters | None = _params()
    data: bytes | None = _data(secret=True)
    digested_data: bytes | None = kfield(Tag.DIGESTED_DATA, _BYTES, min_version=_V14)
    signature_data: bytes | None = kfield(Tag.SIGNATURE_DATA, _BYTES)
    correlation_value: bytes | None = _correlation()
    init_indicator: bool | None = _init()
    final_indicator: bool | None = _final()


@response_payload(Operation.SIGNATURE_VERIFY)
class SignatureVerifyResponse(Struct):
    unique_identifier: str | None = uid()
    validity_indicator: IntEnum | None = kfield(Tag.VALIDITY_INDICATOR, _ENUM)
    data: bytes | None = _data(secret=True)
    correlation_value: bytes | None = _correlation()


@request_payload(Operation.MAC)
class MACRequest(Struct):
    unique_identifier: str | None = uid()
    cryptographic_parameters: CryptographicParameters | None = _params()
    data: bytes | None = _data(secret=True)
    correlation_value: bytes | None = _correlation()
    init_indicator: bool | None = _init()
    final_indicator: bool | None = _final()


@response_payload(Operation.MAC)
class MACResponse(Struct):
    unique_identifier: str | None = uid()
    mac_data: bytes | None = kfield(Tag.MAC_DATA, _BYTES)
    correlation_value: bytes | None = _correlation()


@request_payload(Operation.MAC_VERIFY)
class MACVerifyRequest(Struct):
    unique_identifier: str | None = uid()
    cryptographic_parameters: CryptographicParameters | None = _params()
    data: bytes | None = _data(secret=True)
    mac_data: bytes | None = kfield(Tag.MAC_DATA, _BYTES)
    correlation_value: bytes | None = _correlation()
    init_indicator: bool | None = _init()
    final_indicator: bool | None = _final()


@response_payload(Operation.MAC_VERIFY)
class MACVerifyResponse(Struct):
    unique_identifier: str | None = uid()
    validity_indicator: IntEnum | None = kfield(Tag.VALIDITY_INDICATOR, _ENUM)
    correlation_value: bytes | None = _correlation()


@request_payload(Operation.HASH)
class HashRequest(Struct):
    cryptographic_parameters: CryptographicParameters | None = _params()
    data: bytes | None = _data(secret=True)
    correlation_value: bytes | None = _correlation()
    init_indicator: bool | None = _init()
    final_indicator: bool | None = _final()


@response_payload(Operation.HASH)
class HashResponse(Struct):
    data: bytes | None = _data()
    correlation_value: bytes | None = _correlation()


@request_payload(Operation.RNG_RETRIEVE)
class RNGRetrieveRequest(Struct):
    data_length: int | None = kfield(Tag.DATA_LENGTH, _INT)


@response_payload(Operation.RNG_RETRIEVE)
class RNGRetrieveResponse(Struct):
    data: bytes | None = _data(secret=True)


@request_payload(Operation.RNG_SEED)
class RNGSeedRequest(Struct):
    data: bytes | None = _data(secret=True)


@response_payload(Operation.RNG_SEED)
class RNGSeedResponse(Struct):
    data_length: int | None = kfield(Tag.DATA_LENGTH, _INT)


@request_payload(Operation.VALIDATE)
class ValidateRequest(Struct):
    certificates: tuple[Certificate, ...] = kfield(Tag.CERTIFICATE, Certificate, repeated=True)
    unique_identifiers: tuple[str, ...] = uid(repeated=True)
    validity_date: datetime | None = kfield(Tag.VALIDITY_DATE, _DT)


@response_payload(Operation.VALIDATE)
class ValidateResponse(Struct):
    validity_indicator: IntEnum | None = kfield(Tag.VALIDITY_INDICATOR, _ENUM)


@request_payload(Operation.PKCS_11)
class PKCS11Request(Struct):
    pkcs_11_interface: str | None = kfield(Tag.PKCS_11_INTERFACE, _TEXT)
    # An Enumeration for the standard functions, an Integer for vendor-defined ones.
    pkcs_11_function: IntEnum | int | None = kfield(Tag.PKCS_11_FUNCTION, (_ENUM, _INT))
    correlation_value: bytes | None = kfield(Tag.CORRELATION_VALUE, _BYTES)
    pkcs_11_input_parameters: bytes | None = kfield(Tag.PKCS_11_INPUT_PARAMETERS, _BYTES, secret=True)


@response_payload(Operation.PKCS_11)
class PKCS11Response(Struct):
    pkcs_11_interface: str | None = kfield(Tag.PKCS_11_INTERFACE, _TEXT)
    pkcs_11_function: IntEnum | int | None = kfield(Tag.PKCS_11_FUNCTION, (_ENUM, _INT))
    correlation_value: bytes | None = kfield(Tag.CORRELATION_VALUE, _BYTES)
    pkcs_11_output_parameters: bytes | None = kfield(Tag.PKCS_11_OUTPUT_PARAMETERS, _BYTES, secret=True)
    pkcs_11_return_code: IntEnum | int | None = kfield(Tag.PKCS_11_RETURN_CODE, (_ENUM, _INT))
