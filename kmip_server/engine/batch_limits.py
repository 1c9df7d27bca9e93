"""How many batch items a request message carries, told from its bytes before it is decoded.

Decoding a message of thousands of batch items costs a large part of a second, so the
dispatcher refuses one above ``max_batch_items`` from its Request Header's Batch Count before
decoding the rest, and the transport sends a large message off its event loop after a scan
for batch items. Both read the TTLV directly: the typed decoder would decode the whole message
to get there. Anything malformed is left for the decoder to report.
"""

from __future__ import annotations

from kmip_client.protocol.spec.tags import Tag

__all__ = ["LARGE_MESSAGE_ITEMS", "batch_item_bound", "is_large", "peek_request_header"]

Version = tuple[int, int]

#: Messages with more batch items than this are "large": the transport runs them on a thread
#: of their own (transport/large.py), and the dispatcher commits their writes in chunks. About
#: 32 items is 10 to 20 ms of engine time, the longest a message may hold up a worker's other
#: clients; a thread hop costs well under a millisecond, nothing beside that. The OASIS test
#: cases send at most 4 items, real clients rarely more than a handful.
LARGE_MESSAGE_ITEMS = 32

# A Batch Item structure (tag 42000F, type Structure): what begins every batch item.
_BATCH_ITEM_TTLV = int(Tag.BATCH_ITEM).to_bytes(3, "big") + b"\x01"
# The smallest batch item: its header and an Operation (8 + 16 bytes). A message shorter than
# LARGE_MESSAGE_ITEMS of them cannot be large, which spares the scan for almost every message.
_MIN_ITEM_BYTES = 24
_REQUEST_MESSAGE = int(Tag.REQUEST_MESSAGE).to_bytes(3, "big") + b"\x01"
_REQUEST_HEADER = int(Tag.REQUEST_HEADER).to_bytes(3, "big") + b"\x01"
_PROTOCOL_VERSION = int(Tag.PROTOCOL_VERSION)
_MAJOR = int(Tag.PROTOCOL_VERSION_MAJOR).to_bytes(3, "big")
_MINOR = int(Tag.PROTOCOL_VERSION_MINOR).to_bytes(3, "big")
_BATCH_COUNT = int(Tag.BATCH_COUNT)
_STRUCTURE, _INTEGER = 0x01, 0x02


def batch_item_bound(data: bytes) -> int:
    """At least the number of batch items in ``data`` (a byte scan: a Batch Item header inside
    a byte string, improbable as it is, only counts one too many)."""
    return data.count(_BATCH_ITEM_TTLV)


def is_large(data: bytes) -> bool:
    """Whether the message ``data`` may have more than :data:`LARGE_MESSAGE_ITEMS` batch items."""
    return len(data) > LARGE_MESSAGE_ITEMS * _MIN_ITEM_BYTES and batch_item_bound(data) > LARGE_MESSAGE_ITEMS


def peek_request_header(data: bytes) -> tuple[Version | None, int | None]:
    """The Protocol Version and Batch Count in the Request Header of the TTLV request message
    ``data``, without decoding the rest; None for either when it is missing or malformed."""
    if len(data) < 16 or data[0:4] != _REQUEST_MESSAGE or data[8:12] != _REQUEST_HEADER:
        return None, None
    end = 16 + int.from_bytes(data[12:16], "big")
    if end > len(data):
        return None, None
    version: Version | None = None
    count: int | None = None
    pos = 16
    while pos + 8 <= end:
        tag_type = int.from_bytes(data[pos : pos + 4], "big")
        length = int.from_bytes(data[pos + 4 : pos + 8], "big")
        tag, typ, value = tag_type >> 8, tag_type & 0xFF, pos + 8
        if tag == _BATCH_COUNT and typ == _INTEGER and length == 4 and value + 4 <= end:
            count = int.from_bytes(data[value : value + 4], "big", signed=True)
        elif (
            tag == _PROTOCOL_VERSION
            and typ == _STRUCTURE
            and length == 32
            and value + 32 <= end
            and data[value : value + 3] == _MAJOR
            and data[value + 16 : value + 19] == _MINOR
        ):
            # Major then minor, each an Integer item of 16 bytes with its padding.
            version = (
                int.from_bytes(data[value + 8 : value + 12], "big", signed=True),
                int.from_bytes(data[value + 24 : value + 28], "big", signed=True),
            )
        pos = value + ((length + 7) & ~7)
    return version, count
