"""What the JSON key-service APIs (Google CSE, Microsoft DKE) share: bodies in and answers out."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from ..transport.https_listener import _Answer

__all__ = ["JSON", "b64decode", "b64encode", "json_answer", "read_object"]

JSON = "application/json"


def read_object(body: bytes) -> dict[str, Any]:
    """The JSON object a request body holds; ValueError saying what it is instead."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise ValueError("the body is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


def b64decode(text: object) -> bytes:
    """Base64 in either alphabet (standard or URL-safe), padded or not; ValueError otherwise.
    The clients send the standard one; accepting both costs nothing and loosens no check."""
    if not isinstance(text, str):
        raise ValueError("not a base64 string")
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not valid base64") from None


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def json_answer(status: int, data: dict[str, Any], headers: tuple[tuple[str, str], ...] = ()) -> _Answer:
    return _Answer(status, JSON, json.dumps(data, separators=(",", ":")).encode(), headers=headers)
