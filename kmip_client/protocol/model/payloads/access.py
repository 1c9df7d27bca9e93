"""Payloads of the 2.x session and policy operations: Login, Logout, Delegated Login, Get /
Set Constraints and Set Defaults."""

from __future__ import annotations

from datetime import datetime

from ...spec import Tag
from ...spec.enums import Operation
from ...ttlv import ItemType
from ..attributes import UsageLimits
from ..base import Struct, kfield
from ..messages import request_payload, response_payload
from .structures import Constraints, DefaultsInformation, Rights, Ticket

_INT = ItemType.INTEGER
_DT = ItemType.DATE_TIME
_INTERVAL = ItemType.INTERVAL


@request_payload(Operation.LOGIN)
class LoginRequest(Struct):
    # An Interval, or the Date-Time the ticket expires.
    lease_time: int | datetime | None = kfield(Tag.LEASE_TIME, (_INTERVAL, _DT))
    request_count: int | None = kfield(Tag.REQUEST_COUNT, _INT)
    usage_limits: UsageLimits | None = kfield(Tag.USAGE_LIMITS, UsageLimits)


@response_payload(Operation.LOGIN)
class LoginResponse(Struct):
    ticket: Ticket | None = kfield(Tag.TICKET, Ticket, secret=True)


@request_payload(Operation.LOGOUT)
class LogoutRequest(Struct):
    ticket: Ticket | None = kfield(Tag.TICKET, Ticket, secret=True)


@response_payload(Operation.LOGOUT)
class LogoutResponse(Struct):
    pass


@request_payload(Operation.DELEGATED_LOGIN)
class DelegatedLoginRequest(Struct):
    lease_time: int | datetime | None = kfield(Tag.LEASE_TIME, (_INTERVAL, _DT))
    request_count: int | None = kfield(Tag.REQUEST_COUNT, _INT)
    usage_limits: UsageLimits | None = kfield(Tag.USAGE_LIMITS, UsageLimits)
    rights: Rights | None = kfield(Tag.RIGHTS, Rights)


@response_payload(Operation.DELEGATED_LOGIN)
class DelegatedLoginResponse(LoginResponse):
    pass


@request_payload(Operation.GET_CONSTRAINTS)
class GetConstraintsRequest(Struct):
    pass


@response_payload(Operation.GET_CONSTRAINTS)
class GetConstraintsResponse(Struct):
    constraints: Constraints | None = kfield(Tag.CONSTRAINTS, Constraints)


@request_payload(Operation.SET_CONSTRAINTS)
class SetConstraintsRequest(GetConstraintsResponse):
    pass


@response_payload(Operation.SET_CONSTRAINTS)
class SetConstraintsResponse(Struct):
    pass


@request_payload(Operation.SET_DEFAULTS)
class SetDefaultsRequest(Struct):
    defaults_information: DefaultsInformation | None = kfield(Tag.DEFAULTS_INFORMATION, DefaultsInformation)


@response_payload(Operation.SET_DEFAULTS)
class SetDefaultsResponse(Struct):
    pass
