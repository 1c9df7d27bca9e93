"""The wrapped key that the CSE key service hands Google, and the resource key hash.

Google stores the ``wrapped_key`` beside the encrypted document and sends it back as it is, so
the blob is the only copy of the encrypted DEK and carries what unwrapping needs::

    "SRC1" | len(key id) u8 | key id | len(resource_name) u16 | resource_name
           | len(perimeter_id) u16 | perimeter_id | IV (12) | tag (16) | AES-256-GCM ciphertext

Everything before the IV (the header) is the GCM additional authenticated data: a blob whose
resource_name, perimeter_id or key id was changed does not decrypt, so a DEK wrapped for one
document cannot be unwrapped for another. The key id names the Strongroom key that wrapped it
(the current key, or an earlier one after a rotation). Lengths are big-endian.

The resource key hash (Google's CSE reference, "Resource key hash") is HMAC-SHA256 keyed by the
DEK over ``"ResourceKeyDigest:" + resource_name + ":" + perimeter_id`` (UTF-8).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import struct

__all__ = ["IV_LENGTH", "TAG_LENGTH", "WrappedKey", "header", "resource_key_hash", "unpack"]

MAGIC = b"SRC1"
IV_LENGTH = 12
TAG_LENGTH = 16
_MAX_DEK = 128  # Google's limit for the key field of wrap


@dataclasses.dataclass(frozen=True)
class WrappedKey:
    key_id: str
    resource_name: str
    perimeter_id: str
    iv: bytes
    tag: bytes
    ciphertext: bytes

    @property
    def header(self) -> bytes:
        return header(self.key_id, self.resource_name, self.perimeter_id)

    def pack(self) -> bytes:
        return self.header + self.iv + self.tag + self.ciphertext


def header(key_id: str, resource_name: str, perimeter_id: str) -> bytes:
    """The header (and GCM AAD) of a blob; ValueError when a part is too long to encode."""
    kid, resource, perimeter = key_id.encode(), resource_name.encode(), perimeter_id.encode()
    if len(kid) > 0xFF or len(resource) > 0xFFFF or len(perimeter) > 0xFFFF:
        raise ValueError("a key id, resource_name or perimeter_id too long for a wrapped key")
    return b"".join(
        (
            MAGIC,
            struct.pack(">B", len(kid)),
            kid,
            struct.pack(">H", len(resource)),
            resource,
            struct.pack(">H", len(perimeter)),
            perimeter,
        )
    )


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, count: int) -> bytes:
        if self.at + count > len(self.data):
            raise ValueError("wrapped_key is truncated")
        part = self.data[self.at : self.at + count]
        self.at += count
        return part

    def text(self, width: str) -> str:
        (length,) = struct.unpack(width, self.take(struct.calcsize(width)))
        try:
            return self.take(length).decode()
        except UnicodeDecodeError:
            raise ValueError("wrapped_key holds text that is not UTF-8") from None


def unpack(blob: bytes) -> WrappedKey:
    """The parts of a wrapped key this service made; ValueError for anything else."""
    if not blob.startswith(MAGIC):
        raise ValueError("wrapped_key was not made by this key service (unknown format)")
    reader = _Reader(blob)
    reader.take(len(MAGIC))
    key_id = reader.text(">B")
    resource_name = reader.text(">H")
    perimeter_id = reader.text(">H")
    iv = reader.take(IV_LENGTH)
    tag = reader.take(TAG_LENGTH)
    ciphertext = blob[reader.at :]
    if not 0 < len(ciphertext) <= _MAX_DEK:
        raise ValueError("wrapped_key holds no DEK of a size this service wraps")
    return WrappedKey(key_id, resource_name, perimeter_id, iv, tag, ciphertext)


def resource_key_hash(dek: bytes, resource_name: str, perimeter_id: str) -> bytes:
    message = b"ResourceKeyDigest:" + resource_name.encode() + b":" + perimeter_id.encode()
    return hmac.new(dek, message, hashlib.sha256).digest()
