"""A KMIP message in the encodings KMIP over HTTPS carries: binary TTLV, JSON and XML.

The client's HTTPS transport and the server's HTTPS listener convert between them here, so the
two cannot disagree on a body. Text is written compactly, in UTF-8.
"""

from __future__ import annotations

from .json_codec import item_from_json, item_to_json
from .ttlv import decode, encode
from .xml_codec import item_from_xml, item_to_xml

__all__ = ["CONTENT_TYPES", "MEDIA_TYPES", "from_ttlv", "to_ttlv"]

#: The Content-Type each encoding is sent with.
CONTENT_TYPES = {"ttlv": "application/octet-stream", "json": "application/json", "xml": "text/xml"}
#: Each media type a body may arrive with, and its encoding.
MEDIA_TYPES = {**{media: encoding for encoding, media in CONTENT_TYPES.items()}, "application/xml": "xml"}


def from_ttlv(message: bytes, encoding: str) -> bytes:
    """The TTLV ``message`` in ``encoding``; a ProtocolError if it is not TTLV, a ValueError
    if XML cannot carry one of its texts (a control character)."""
    if encoding == "ttlv":
        return message
    item = decode(message)
    text = item_to_json(item, indent=None) if encoding == "json" else item_to_xml(item, indent=False)
    return text.encode("utf-8")


def to_ttlv(body: bytes, encoding: str) -> bytes:
    """The TTLV of ``body``, a message in ``encoding``; a ProtocolError or ValueError (bad
    UTF-8, JSON or XML among them) if it is not one."""
    if encoding == "ttlv":
        return body
    return encode(item_from_json(body) if encoding == "json" else item_from_xml(body))
