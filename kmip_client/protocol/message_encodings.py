"""A KMIP message in the encodings KMIP over HTTPS carries: binary TTLV, JSON and XML.

The client's HTTPS transport and the server's HTTPS listener convert between them here, so the
two cannot disagree on a body. Text is written compactly, in UTF-8.
"""

from __future__ import annotations

from .errors import ProtocolError
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


def to_ttlv(body: bytes, encoding: str, *, max_size: int | None = None) -> bytes:
    """The TTLV of ``body``, a message in ``encoding``; a ProtocolError or ValueError (bad
    UTF-8, JSON or XML among them) if it is not one.

    With ``max_size``, a ProtocolError too if the TTLV would be longer: XML is stopped while it
    is read (it may grow, UTF-16 text becoming UTF-8); JSON cannot outgrow its body, and its
    TTLV is checked once encoded.
    """
    if encoding == "ttlv":
        message = body
    elif encoding == "json":
        message = encode(item_from_json(body))
    else:
        message = encode(item_from_xml(body, max_size=max_size))
    if max_size is not None and len(message) > max_size:
        raise ProtocolError(f"the message is longer than {max_size} bytes as TTLV")
    return message
