"""The XKS proxy API's messages: request bodies read and checked, answers and errors written.

Sans-I/O (no engine, no sockets): the route (xks_route.py) hands a request body here and gets
typed requests back, or an :class:`XksError` whose name and HTTP status are the
specification's ("Error codes"). What the specification fixes is checked here:

* every body is a JSON object with ``requestMetadata``, itself an object carrying the fields
  the operation REQUIRES as strings (``kmsRequestId`` and ``kmsOperation`` always;
  ``awsPrincipalArn`` for the key operations, ``kmsKeyArn`` for Encrypt and Decrypt); other
  fields, and kmsOperation values this proxy has not heard of, are accepted as the
  specification demands;
* binary fields are standard Base64 (RFC 4648 section 4, padding included);
* ``encryptionAlgorithm`` is ``AES_GCM``, ``ciphertextDataIntegrityValueAlgorithm``
  ``SHA_256``; an IV is 12 or 16 bytes, a tag 16, ``ciphertextMetadata`` at most 20;
* sizes beyond those the specification requires (4,300 bytes of plaintext, 8,192 of AAD) are
  served up to :data:`MAX_DATA` and :data:`MAX_AAD`, beyond which the answer is
  UnsupportedOperationException, as the specification says for "a parameter value [that]
  exceeded the maximum size that is currently supported".

The AAD given to AES-GCM binds both the caller's ``additionalAuthenticatedData`` and any
``ciphertextMetadata`` with their lengths, as the Encrypt section prescribes: 2-byte
big-endian length of the AAD || AAD || 1-byte length of the metadata || metadata.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import hashlib
import json
from typing import Any

__all__ = [
    "LOGGED_METADATA",
    "MAX_AAD",
    "MAX_DATA",
    "DecryptRequest",
    "EncryptRequest",
    "ErrorName",
    "Operation",
    "RequestMetadata",
    "XksError",
    "b64",
    "cdiv",
    "error_body",
    "gcm_aad",
    "json_body",
    "read_body",
    "read_decrypt",
    "read_encrypt",
    "read_metadata",
]

#: Largest plaintext or ciphertext served, in bytes (the specification requires 4,300).
MAX_DATA = 65_536
#: Largest additionalAuthenticatedData (the specification requires 8,192; its length field
#: in the GCM AAD is 2 bytes).
MAX_AAD = 65_535
MAX_CIPHERTEXT_METADATA = 20
IV_SIZES = (12, 16)
TAG_SIZE = 16
_MAX_ERROR_MESSAGE = 511  # "MUST be less than 512 characters", printable ASCII


class ErrorName(enum.Enum):
    """The specification's errors and their HTTP statuses."""

    VALIDATION = ("ValidationException", 400)
    INVALID_STATE = ("InvalidStateException", 400)
    INVALID_CIPHERTEXT = ("InvalidCiphertextException", 400)
    INVALID_KEY_USAGE = ("InvalidKeyUsageException", 400)
    AUTHENTICATION_FAILED = ("AuthenticationFailedException", 401)
    ACCESS_DENIED = ("AccessDeniedException", 403)
    KEY_NOT_FOUND = ("KeyNotFoundException", 404)
    INVALID_URI_PATH = ("InvalidUriPathException", 404)
    THROTTLING = ("ThrottlingException", 429)
    UNSUPPORTED_OPERATION = ("UnsupportedOperationException", 501)
    DEPENDENCY_TIMEOUT = ("DependencyTimeoutException", 503)
    INTERNAL = ("InternalException", 500)

    @property
    def title(self) -> str:
        return self.value[0]

    @property
    def status(self) -> int:
        return self.value[1]


class XksError(Exception):
    """A refusal to answer with the error ``name``; ``message`` is for the proxy's operator
    (AWS KMS logs it to the caller's CloudWatch) and never holds request data."""

    def __init__(self, name: ErrorName, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message


class Operation(enum.Enum):
    """The four API operations, by the last segment of their path."""

    METADATA = "metadata"
    ENCRYPT = "encrypt"
    DECRYPT = "decrypt"
    HEALTH = "health"


#: The requestMetadata fields each operation REQUIRES (all others are optional).
_REQUIRED_METADATA = {
    Operation.HEALTH: ("kmsRequestId", "kmsOperation"),
    Operation.METADATA: ("kmsRequestId", "kmsOperation", "awsPrincipalArn"),
    Operation.ENCRYPT: ("kmsRequestId", "kmsOperation", "awsPrincipalArn", "kmsKeyArn"),
    Operation.DECRYPT: ("kmsRequestId", "kmsOperation", "awsPrincipalArn", "kmsKeyArn"),
}
#: What the log line of a request shows of its metadata (an ARN may be 2,048 characters).
LOGGED_METADATA = ("kmsRequestId", "kmsOperation", "awsPrincipalArn", "kmsKeyArn", "kmsViaService")
_MAX_METADATA_VALUE = 4096


@dataclasses.dataclass(frozen=True)
class RequestMetadata:
    """The requestMetadata of a request: its string fields, as sent."""

    fields: dict[str, str]

    def get(self, name: str) -> str | None:
        return self.fields.get(name)


@dataclasses.dataclass(frozen=True)
class EncryptRequest:
    metadata: RequestMetadata
    plaintext: bytes = dataclasses.field(repr=False)
    aad: bytes | None
    cdiv_wanted: bool


@dataclasses.dataclass(frozen=True)
class DecryptRequest:
    metadata: RequestMetadata
    ciphertext: bytes
    iv: bytes
    tag: bytes
    aad: bytes | None
    ciphertext_metadata: bytes | None


def _invalid(message: str) -> XksError:
    return XksError(ErrorName.VALIDATION, message)


def read_body(body: bytes) -> dict[str, Any]:
    """The request body's JSON object."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise _invalid("the request body is not JSON") from None
    if not isinstance(data, dict):
        raise _invalid("the request body must be a JSON object")
    return data


def read_metadata(data: dict[str, Any], operation: Operation) -> RequestMetadata:
    """The body's requestMetadata, with the fields ``operation`` requires."""
    given = data.get("requestMetadata")
    if not isinstance(given, dict):
        raise _invalid("requestMetadata is required and must be a JSON object")
    for name in _REQUIRED_METADATA[operation]:
        value = given.get(name)
        if not isinstance(value, str) or not value:
            raise _invalid(f"requestMetadata.{name} is required and must be a non-empty string")
    fields = {}
    for name, value in given.items():
        if isinstance(value, str):
            if len(value) > _MAX_METADATA_VALUE:
                raise _invalid(f"requestMetadata.{_printable(name)[:64]} is longer than {_MAX_METADATA_VALUE}")
            fields[name] = value
    return RequestMetadata(fields)


def _base64(data: dict[str, Any], name: str, *, required: bool, limit: int, spec_limit: bool = False) -> bytes | None:
    """The decoded field; longer than ``limit`` bytes is UnsupportedOperationException, or
    ValidationException when ``spec_limit`` (the specification's own bound)."""
    value = data.get(name)
    if value is None:
        if required:
            raise _invalid(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise _invalid(f"{name} must be a Base64 string")
    too_long = XksError(
        ErrorName.VALIDATION if spec_limit else ErrorName.UNSUPPORTED_OPERATION,
        f"{name} is longer than {limit} bytes" + ("" if spec_limit else ", the most this proxy serves"),
    )
    if len(value) > 4 * (limit // 3 + 1):
        raise too_long
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(f"{name} is not standard Base64") from None
    if len(decoded) > limit:
        raise too_long
    return decoded


def _algorithm(data: dict[str, Any]) -> None:
    if data.get("encryptionAlgorithm") != "AES_GCM":
        raise _invalid("encryptionAlgorithm is required and must be AES_GCM")


def read_encrypt(data: dict[str, Any], metadata: RequestMetadata) -> EncryptRequest:
    plaintext = _base64(data, "plaintext", required=True, limit=MAX_DATA)
    _algorithm(data)
    aad = _base64(data, "additionalAuthenticatedData", required=False, limit=MAX_AAD)
    cdiv_algorithm = data.get("ciphertextDataIntegrityValueAlgorithm")
    if cdiv_algorithm is not None and cdiv_algorithm != "SHA_256":
        raise _invalid("ciphertextDataIntegrityValueAlgorithm must be SHA_256")
    assert plaintext is not None
    return EncryptRequest(metadata, plaintext, aad, cdiv_algorithm is not None)


def read_decrypt(data: dict[str, Any], metadata: RequestMetadata) -> DecryptRequest:
    ciphertext = _base64(data, "ciphertext", required=True, limit=MAX_DATA)
    _algorithm(data)
    iv = _base64(data, "initializationVector", required=True, limit=max(IV_SIZES), spec_limit=True)
    tag = _base64(data, "authenticationTag", required=True, limit=TAG_SIZE, spec_limit=True)
    aad = _base64(data, "additionalAuthenticatedData", required=False, limit=MAX_AAD)
    extra = _base64(data, "ciphertextMetadata", required=False, limit=MAX_CIPHERTEXT_METADATA, spec_limit=True)
    assert ciphertext is not None and iv is not None and tag is not None
    if len(iv) not in IV_SIZES:
        raise _invalid("initializationVector must be 12 or 16 bytes")
    if len(tag) != TAG_SIZE:
        raise _invalid("authenticationTag must be 16 bytes")
    return DecryptRequest(metadata, ciphertext, iv, tag, aad, extra)


def gcm_aad(aad: bytes | None, ciphertext_metadata: bytes | None) -> bytes:
    """The AAD AES-GCM authenticates: each part preceded by its length (Encrypt, "NOTE")."""
    aad = aad or b""
    extra = ciphertext_metadata or b""
    return len(aad).to_bytes(2, "big") + aad + len(extra).to_bytes(1, "big") + extra


def cdiv(aad: bytes | None, ciphertext_metadata: bytes | None, iv: bytes, ciphertext: bytes, tag: bytes) -> str:
    """The Ciphertext Data Integrity Value (Appendix C): Base64 SHA-256 over the decoded
    AAD || ciphertextMetadata || IV || ciphertext || tag, absent parts empty, no lengths."""
    digest = hashlib.sha256()
    for part in (aad or b"", ciphertext_metadata or b"", iv, ciphertext, tag):
        digest.update(part)
    return base64.b64encode(digest.digest()).decode("ascii")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def json_body(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def _printable(text: str) -> str:
    return "".join(char if " " <= char <= "~" else "?" for char in text)


def error_body(error: XksError) -> bytes:
    """``{"errorName": ..., "errorMessage": ...}``; the message printable ASCII, under 512."""
    return json_body({"errorName": error.name.title, "errorMessage": _printable(error.message)[:_MAX_ERROR_MESSAGE]})
