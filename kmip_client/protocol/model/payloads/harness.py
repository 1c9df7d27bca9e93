"""Payloads of the 2.x test-harness and housekeeping operations: Interop, Log, Ping and Set
Endpoint Role (the last also server-to-client)."""

from __future__ import annotations

from enum import IntEnum

from ...spec import Tag
from ...spec.enums import Operation
from ...ttlv import ItemType
from ..base import Struct, kfield
from ..messages import request_payload, response_payload

_TEXT = ItemType.TEXT_STRING
_ENUM = ItemType.ENUMERATION


@request_payload(Operation.INTEROP)
class InteropRequest(Struct):
    interop_function: IntEnum | None = kfield(Tag.INTEROP_FUNCTION, _ENUM)
    interop_identifier: str | None = kfield(Tag.INTEROP_IDENTIFIER, _TEXT)


@response_payload(Operation.INTEROP)
class InteropResponse(Struct):
    pass


@request_payload(Operation.LOG)
class LogRequest(Struct):
    log_message: str | None = kfield(Tag.LOG_MESSAGE, _TEXT)


@response_payload(Operation.LOG)
class LogResponse(Struct):
    pass


@request_payload(Operation.PING)
class PingRequest(Struct):
    pass


@response_payload(Operation.PING)
class PingResponse(Struct):
    pass


@request_payload(Operation.SET_ENDPOINT_ROLE)
class SetEndpointRoleRequest(Struct):
    endpoint_role: IntEnum | None = kfield(Tag.ENDPOINT_ROLE, _ENUM)


@response_payload(Operation.SET_ENDPOINT_ROLE)
class SetEndpointRoleResponse(Struct):
    endpoint_role: IntEnum | None = kfield(Tag.ENDPOINT_ROLE, _ENUM)
