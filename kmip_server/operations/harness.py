"""Log, and the test-harness operation Interop (KMIP 2.x).

Log writes a client's message to the server log. Interop marks where a conformance test case
begins and ends (the OASIS profile test cases open and close with it); the specification
forbids it on a production server, so it answers only when the server runs with
``test_harness`` on (see Dispatcher). Neither touches stored objects.
"""

from __future__ import annotations

import logging

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.model import Struct
from kmip_client.protocol.model.payloads.harness import InteropRequest, InteropResponse, LogRequest, LogResponse
from kmip_client.protocol.spec.enums import Operation, ResultReason

from ..engine.context import RequestContext
from ..engine.registry import operation

log = logging.getLogger("strongroom.client_log")

#: Longest client message written to the log; the rest is cut (a log is not a data store).
MAX_LOG_MESSAGE = 1024
_INTEROP_FUNCTIONS = {1: "begin", 2: "end", 3: "reset"}


def printable(text: str, limit: int = MAX_LOG_MESSAGE) -> str:
    """``text`` safe for a one-line log record: control characters escaped, length bounded."""
    cut = text[:limit]
    shown = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in cut)
    return shown + (f"... ({len(text) - limit} more characters)" if len(text) > limit else "")


@operation(Operation.LOG, writes=False, min_version=(2, 0))
def log_message(ctx: RequestContext, request: LogRequest) -> Struct:
    if request.log_message is None:
        raise KmipError("Log needs a Log Message", ResultReason.INVALID_MESSAGE)
    log.info("identity=%s message=%s", ctx.identity.name, printable(request.log_message))
    return LogResponse()


@operation(Operation.INTEROP, writes=False, min_version=(2, 0), harness=True)
def interop(ctx: RequestContext, request: InteropRequest) -> Struct:
    function = _INTEROP_FUNCTIONS.get(int(request.interop_function or 0))
    if function is None:
        raise KmipError(
            f"Interop Function {request.interop_function!r} is not Begin, End or Reset", ResultReason.INVALID_FIELD
        )
    if request.interop_identifier is None:
        raise KmipError("Interop needs an Interop Identifier", ResultReason.INVALID_MESSAGE)
    # Test cases run against a fresh client identity each (tests/conformance), so Reset has
    # no state of its own to clear; all three mark the test log.
    log.info("identity=%s interop %s %s", ctx.identity.name, function, printable(request.interop_identifier, 200))
    return InteropResponse()
