"""Split a byte stream into whole KMIP messages (sans-I/O).

A KMIP message on the wire is one top-level TTLV Structure: an 8-byte header (tag, type,
length) followed by ``length`` bytes. The framer is fed whatever the transport received and
hands back complete messages. A declared length above ``max_message_size`` is rejected as
soon as the header is complete, so a hostile peer cannot make us buffer a huge body.
"""

from __future__ import annotations

import struct

from .errors import ProtocolError

__all__ = ["Framer", "DEFAULT_MAX_MESSAGE_SIZE", "HEADER_SIZE"]

HEADER_SIZE = 8
#: Large enough for a batch of certificates or a big Locate response; small enough to bound
#: what one connection can make the server hold.
DEFAULT_MAX_MESSAGE_SIZE = 1 << 20

_HEADER = struct.Struct(">II")


class Framer:
    """Accumulates received bytes and yields complete messages.

    After a :class:`ProtocolError` the stream is unusable (framing is lost); the caller
    should answer with Invalid Message if it can and close the connection.
    """

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self.max_message_size = max_message_size
        self._buffer = bytearray()
        self._consumed = 0  # bytes of the stream already handed out, for error offsets
        self._failed = False

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return every message they complete, in order."""
        if self._failed:
            raise ProtocolError("the stream already failed to frame; close the connection")
        if not self._buffer and type(data) is bytes and len(data) >= HEADER_SIZE:
            # The usual case, one request or response per read: hand the bytes back as they
            # are, without the copy into the buffer and out again.
            tt, length = _HEADER.unpack_from(data, 0)
            if tt & 0xFF == 0x01 and HEADER_SIZE + length == len(data) <= self.max_message_size:
                self._consumed += len(data)
                return [data]
        self._buffer += data
        messages: list[bytes] = []
        while len(self._buffer) >= HEADER_SIZE:
            tt, length = _HEADER.unpack_from(self._buffer, 0)
            if tt & 0xFF != 0x01:
                self._failed = True
                raise ProtocolError(
                    f"a KMIP message must be a Structure, got item type 0x{tt & 0xFF:02X}",
                    self._consumed + 3,
                )
            total = HEADER_SIZE + length
            if total > self.max_message_size:
                self._failed = True
                raise ProtocolError(
                    f"declared message length {length} exceeds the maximum of "
                    f"{self.max_message_size - HEADER_SIZE} bytes",
                    self._consumed + 4,
                )
            if len(self._buffer) < total:
                break
            messages.append(bytes(self._buffer[:total]))
            del self._buffer[:total]
            self._consumed += total
        return messages

    def message_size_needed(self) -> int:
        """How many more bytes complete the next message (8 when not even a header is here)."""
        if len(self._buffer) < HEADER_SIZE:
            return HEADER_SIZE - len(self._buffer)
        length: int = _HEADER.unpack_from(self._buffer, 0)[1]
        return max(HEADER_SIZE + length - len(self._buffer), 0)
