"""Envelope encryption for applications: data encrypted locally, keys kept by the KMIP server.

    from kmip_client.envelope import Envelope

    envelope = Envelope(client, "orders-kek")      # the server key named "orders-kek"
    sealed = envelope.encrypt(b"card data", associated_data=b"order:42")
    plain = envelope.decrypt(sealed, associated_data=b"order:42")
    envelope.rotate()                               # new key; old data still decrypts

Each message gets a fresh 256-bit data key. The data is sealed with it by AES-GCM, and the data
key is sealed the same way under the server key (the key-encryption key), whose Unique
Identifier is stored beside it. Decryption reads that identifier, so rotating the named key
(a new server key under the same name) leaves older messages readable as long as their key
exists on the server. Until the server offers Encrypt/Decrypt, the key-encryption key is
fetched with Get and used in this process (cached per identifier); the format does not change
when that moves to the server.

Sealed format (version 1), all lengths in bytes::

    0x01 | len(uid) (2, big-endian) | uid (UTF-8) | data-key nonce (12) | sealed data key (32 + 16)
         | data nonce (12) | sealed data (n + 16)
"""

from __future__ import annotations

import os
import struct
import threading
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .protocol.spec.enums import State

__all__ = ["Envelope", "EnvelopeError"]

_VERSION = 1
_NONCE = 12
_TAG = 16
_DATA_KEY = 32
_SEALED_KEY = _DATA_KEY + _TAG


class EnvelopeError(ValueError):
    """A sealed message that cannot be opened: altered, truncated, another format, or the wrong
    associated data. Says nothing about which, on purpose."""


class _KeyClient(Protocol):
    def create(self, algorithm: str = ..., length: int = ..., *, name: str | None = ...) -> str: ...
    def activate(self, uid: str) -> None: ...
    def locate(self, *, name: str | None = ..., state: State | None = ...) -> list[str]: ...
    def get(self, uid: str) -> object: ...


class Envelope:
    """Seal and open data under the newest Active server key called ``key_name``."""

    def __init__(self, client: _KeyClient, key_name: str) -> None:
        self.client = client
        self.key_name = key_name
        self._keys: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def _key(self, uid: str) -> bytes:
        with self._lock:
            cached = self._keys.get(uid)
        if cached is not None:
            return cached
        value: bytes = self.client.get(uid).value  # type: ignore[attr-defined]
        if len(value) not in (16, 24, 32):
            raise EnvelopeError(f"server key {uid!r} is not an AES key")
        with self._lock:
            self._keys[uid] = value
        return value

    def current_key(self) -> str:
        """The Unique Identifier new messages are sealed under (the newest Active key)."""
        found = self.client.locate(name=self.key_name, state=State.ACTIVE)
        if not found:
            raise LookupError(f"no Active key named {self.key_name!r} on the server; create one with rotate()")
        return found[0]

    def rotate(self) -> str:
        """Create and activate a new AES-256 key under the name; returns its identifier.
        Messages sealed before stay readable (they name their own key)."""
        uid = self.client.create("AES", 256, name=self.key_name)
        self.client.activate(uid)
        return uid

    def encrypt(self, plaintext: bytes, *, associated_data: bytes = b"") -> bytes:
        """Seal ``plaintext``; ``associated_data`` is authenticated, not stored."""
        uid = self.current_key()
        data_key = AESGCM.generate_key(bit_length=256)
        key_nonce, data_nonce = os.urandom(_NONCE), os.urandom(_NONCE)
        uid_bytes = uid.encode("utf-8")
        header = struct.pack(">BH", _VERSION, len(uid_bytes)) + uid_bytes
        # The header is authenticated with both layers: a sealed key cannot be moved to another uid.
        sealed_key = AESGCM(self._key(uid)).encrypt(key_nonce, data_key, header)
        sealed = AESGCM(data_key).encrypt(data_nonce, plaintext, header + associated_data)
        return header + key_nonce + sealed_key + data_nonce + sealed

    def decrypt(self, message: bytes, *, associated_data: bytes = b"") -> bytes:
        """Open a message from :meth:`encrypt`; :class:`EnvelopeError` if it cannot be."""
        if len(message) < 3 or message[0] != _VERSION:
            raise EnvelopeError("not a sealed message of a known format")
        (uid_len,) = struct.unpack_from(">H", message, 1)
        body = 3 + uid_len
        if len(message) < body + _NONCE + _SEALED_KEY + _NONCE + _TAG:
            raise EnvelopeError("the sealed message is truncated")
        header = message[:body]
        try:
            uid = header[3:].decode("utf-8")
        except UnicodeDecodeError:
            raise EnvelopeError("the sealed message is damaged") from None
        key_nonce = message[body : body + _NONCE]
        sealed_key = message[body + _NONCE : body + _NONCE + _SEALED_KEY]
        data_nonce = message[body + _NONCE + _SEALED_KEY : body + 2 * _NONCE + _SEALED_KEY]
        sealed = message[body + 2 * _NONCE + _SEALED_KEY :]
        try:
            data_key = AESGCM(self._key(uid)).decrypt(key_nonce, sealed_key, header)
            return AESGCM(data_key).decrypt(data_nonce, sealed, header + associated_data)
        except InvalidTag:
            raise EnvelopeError("the sealed message cannot be opened (altered, or other associated data)") from None
