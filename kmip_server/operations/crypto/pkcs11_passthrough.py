"""The PKCS#11 operation (KMIP 2.0 and 2.1, §6.1.37): a client calls PKCS#11 functions through
the server, answered by the server's own token library.

Offered: C_Initialize, C_GetInfo and C_Finalize, the functions of the PKCS#11 profile's test
cases (PKCS11-M-1-20/21). Another standard function gets the return code
CKR_FUNCTION_NOT_SUPPORTED, as a library answers for a function it does not implement; a
vendor-defined (Integer) function is PKCS#11 Invalid Function; an interface other than the
default "PKCS 11" is PKCS#11 Invalid Interface.

A client's initialisation is its own. The server's library stays initialised for the server
(its custody works through it) and is never finalised for a client. What C_Initialize and
C_Finalize change is the client's state, modelled as the KMIP specification and the test cases
imply: C_Initialize answers with a Correlation Value ("server defined Byte String that the
client must provide in the next request"), C_GetInfo and C_Finalize carry it, and C_Finalize
ends it. The state is kept as a stream (:mod:`.streams`: in the store, bound to the client's
identity, counted against its open streams, gone after the streams' idle time), so it holds
across connections, worker processes and nodes. Without that value, or after C_Finalize,
C_GetInfo and C_Finalize answer CKR_CRYPTOKI_NOT_INITIALIZED; C_Initialize with a live value
answers CKR_CRYPTOKI_ALREADY_INITIALIZED. C_Initialize's arguments (CK_C_INITIALIZE_ARGS:
mutex callbacks and threading flags of the caller's own process) have no meaning across the
wire and are not interpreted.

C_GetInfo's output is CK_INFO as the KMIP PKCS#11 profile encodes parameters: the CK_VERSION
bytes (major, minor), the 32-character blank-padded manufacturerID, flags as a CK_ULONG (8
bytes, big-endian; zero, as PKCS#11 requires), the 32-character libraryDescription and the
library's CK_VERSION: 76 bytes, the layout of the test cases' expected output. The values are
the token library's (python-pkcs11 reads them with C_GetInfo when it loads the library).
"""

from __future__ import annotations

import dataclasses
from enum import IntEnum
from typing import Any

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.model import Struct
from kmip_client.protocol.model.payloads.crypto import PKCS11Request, PKCS11Response
from kmip_client.protocol.spec.enums import Operation, PKCS11Function, PKCS11ReturnCode, ResultReason

from ...custody.pkcs11 import LibraryInfo, Pkcs11Custody
from ...engine.context import RequestContext
from ...engine.registry import operation
from .streams import Stream, stream_of

R = ResultReason
F = PKCS11Function
RC = PKCS11ReturnCode

#: The default interface of PKCS#11 3.0 (C_GetInterface's "PKCS 11"); KMIP's default too.
DEFAULT_INTERFACE = "PKCS 11"
_TEXT_FIELD = 32  # CK_UTF8CHAR manufacturerID[32], libraryDescription[32]


@dataclasses.dataclass(frozen=True, slots=True)
class _Part:
    """A PKCS#11 call seen as a part of the client's initialised-state stream."""

    correlation_value: bytes | None
    init_indicator: bool
    final_indicator: bool


def _blank_padded(text: str) -> bytes:
    return text.encode("utf-8")[:_TEXT_FIELD].ljust(_TEXT_FIELD, b" ")


def ck_info(info: LibraryInfo) -> bytes:
    """CK_INFO in the PKCS#11 profile's encoding (see the module docstring)."""
    return (
        bytes(info.cryptoki_version)
        + _blank_padded(info.manufacturer_id)
        + (0).to_bytes(8, "big")  # flags: "bit flags reserved for future versions; must be zero"
        + _blank_padded(info.library_description)
        + bytes(info.library_version)
    )


def _library(ctx: RequestContext) -> LibraryInfo:
    custody = getattr(ctx.custody, "inner", ctx.custody)  # under custody/metered.py's wrapper
    if not isinstance(custody, Pkcs11Custody):
        raise KmipError("this server's key custody is not a PKCS#11 library", R.FEATURE_NOT_SUPPORTED)
    return custody.library_info


def _state(ctx: RequestContext, correlation: bytes | None, *, final: bool) -> Stream | None:
    """The client's initialised state for ``correlation``; None when there is none to continue."""
    if correlation is None:
        return None
    try:
        return stream_of(ctx, Operation.PKCS_11, _Part(correlation, init_indicator=False, final_indicator=final))
    except KmipError as exc:
        # Unknown, finished (C_Finalize), expired or another client's: not initialised.
        if exc.reason not in (R.INVALID_CORRELATION_VALUE, R.INVALID_FIELD):
            raise
        return None


def _function(ctx: RequestContext, given: Any) -> F | None:
    """The standard function named, or None for a standard one this server does not offer."""
    if given is None:
        raise KmipError("the PKCS#11 operation needs a PKCS#11 Function", R.INVALID_FIELD)
    function = F(given) if isinstance(given, IntEnum) and given in F._value2member_map_ else None
    if function is None:  # an Integer: a vendor-defined function
        raise KmipError(f"PKCS#11 function {int(given):#x} is not offered by this server", R.PKCS_11_INVALID_FUNCTION)
    return function if function in (F.C_INITIALIZE, F.C_GETINFO, F.C_FINALIZE) else None


@operation(Operation.PKCS_11, writes=False, min_version=(2, 0))
def pkcs11(ctx: RequestContext, request: PKCS11Request) -> Struct:
    interface = request.pkcs_11_interface
    if interface is not None and interface != DEFAULT_INTERFACE:
        raise KmipError(
            f"PKCS#11 interface {interface!r} is not offered (only {DEFAULT_INTERFACE!r})", R.PKCS_11_INVALID_INTERFACE
        )
    function = _function(ctx, request.pkcs_11_function)
    answer = PKCS11Response(pkcs_11_interface=interface, pkcs_11_function=request.pkcs_11_function)
    if function is None:
        return dataclasses.replace(answer, pkcs_11_return_code=RC.FUNCTION_NOT_SUPPORTED)
    info = _library(ctx)
    correlation = request.correlation_value
    if function == F.C_INITIALIZE:
        state = _state(ctx, correlation, final=False)
        if state is not None:
            state.save(ctx)  # still initialised: its idle time starts again
            return dataclasses.replace(answer, pkcs_11_return_code=RC.CRYPTOKI_ALREADY_INITIALIZED)
        opened = stream_of(ctx, Operation.PKCS_11, _Part(None, init_indicator=True, final_indicator=False))
        assert opened is not None  # an Init part always opens a stream
        opened.save(ctx)
        return dataclasses.replace(answer, correlation_value=opened.correlation_value, pkcs_11_return_code=RC.OK)
    if request.pkcs_11_input_parameters and function == F.C_GETINFO:
        # C_GetInfo's one parameter is its output.
        raise KmipError("C_GetInfo takes no input parameters", R.PKCS_11_CODEC_ERROR)
    if function == F.C_FINALIZE and request.pkcs_11_input_parameters not in (None, b"", b"\x00"):
        # pReserved "should be set to NULL_PTR"; a library answers CKR_ARGUMENTS_BAD otherwise.
        return dataclasses.replace(answer, pkcs_11_return_code=RC.ARGUMENTS_BAD)
    state = _state(ctx, correlation, final=function == F.C_FINALIZE)
    if state is None:
        return dataclasses.replace(answer, pkcs_11_return_code=RC.CRYPTOKI_NOT_INITIALIZED)
    if function == F.C_FINALIZE:
        state.close(ctx)
        return dataclasses.replace(answer, pkcs_11_return_code=RC.OK)
    state.save(ctx)
    return dataclasses.replace(answer, pkcs_11_output_parameters=ck_info(info), pkcs_11_return_code=RC.OK)
