"""The PKCS#11 operation through the engine, answered by the server's own SoftHSM2 library: the
PKCS11-M-1 conversation (C_Initialize, C_GetInfo, C_Finalize), the client's initialised state
and its return codes, and the errors of KMIP 2.1 §6.1.37.1."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from kmip_client.protocol.spec.enums import (
    Operation,
    PKCS11Function,
    PKCS11ReturnCode,
    ResultReason,
    ResultStatus,
)

from .engine_support import BOB, create, failure, one
from .kmip_messages import V14, V21, item, ok

F = PKCS11Function
RC = PKCS11ReturnCode
V20 = (2, 0)


def _call(engine, function, version=V21, identity=None, **payload):
    batch_item = item(Operation.PKCS_11, pkcs_11_function=function, **payload)
    return one(engine, version, batch_item) if identity is None else one(engine, version, batch_item, identity)


def _initialize(engine, version=V21, **kwargs) -> bytes:
    # The PKCS11-M-1 test cases send C_Initialize with Input Parameters 01.
    answer = ok(_call(engine, F.C_INITIALIZE, version, pkcs_11_input_parameters=b"\x01", **kwargs))
    assert answer.pkcs_11_return_code == RC.OK and answer.pkcs_11_function == F.C_INITIALIZE
    assert answer.correlation_value
    return answer.correlation_value


def _softhsm_version() -> tuple[int, int]:
    """The library version as softhsm2-util reports it (independently of the server's reading)."""
    tool = shutil.which("softhsm2-util")
    if tool is None:
        pytest.fail("softhsm2-util is missing: run scripts/setup (apt-get install softhsm2)")
    major, minor, *_ = subprocess.run([tool, "--version"], capture_output=True, text=True, check=True).stdout.split(".")
    return int(major), int(minor)


@pytest.mark.parametrize("version", [V20, V21])
def test_initialize_getinfo_finalize(engine, version):
    """PKCS11-M-1-20/21: the values are the real token library's, in the profile's CK_INFO layout."""
    correlation = _initialize(engine, version)
    info = ok(_call(engine, F.C_GETINFO, version, correlation_value=correlation))
    assert info.pkcs_11_return_code == RC.OK and info.correlation_value is None
    out = info.pkcs_11_output_parameters
    assert len(out) == 76  # CK_VERSION 2 + manufacturerID 32 + flags 8 + libraryDescription 32 + CK_VERSION 2
    assert out[:2] == bytes([2, 40])  # SoftHSM2 2.6 implements Cryptoki 2.40
    assert out[2:34] == b"SoftHSM".ljust(32, b" ")
    assert out[34:42] == bytes(8)  # flags: reserved, zero
    assert out[42:74] == b"Implementation of PKCS11".ljust(32, b" ")
    assert tuple(out[74:]) == _softhsm_version()
    done = ok(_call(engine, F.C_FINALIZE, version, correlation_value=correlation))
    assert done.pkcs_11_return_code == RC.OK and done.correlation_value is None


def test_not_initialized_before_and_after(engine):
    got = ok(_call(engine, F.C_GETINFO))
    assert got.pkcs_11_return_code == RC.CRYPTOKI_NOT_INITIALIZED and got.pkcs_11_output_parameters is None
    assert ok(_call(engine, F.C_FINALIZE)).pkcs_11_return_code == RC.CRYPTOKI_NOT_INITIALIZED
    correlation = _initialize(engine)
    assert ok(_call(engine, F.C_FINALIZE, correlation_value=correlation)).pkcs_11_return_code == RC.OK
    for function in (F.C_GETINFO, F.C_FINALIZE):
        again = ok(_call(engine, function, correlation_value=correlation))
        assert again.pkcs_11_return_code == RC.CRYPTOKI_NOT_INITIALIZED


def test_initialize_twice(engine):
    correlation = _initialize(engine)
    again = ok(_call(engine, F.C_INITIALIZE, correlation_value=correlation))
    assert again.pkcs_11_return_code == RC.CRYPTOKI_ALREADY_INITIALIZED
    # Still initialised, and a second C_Initialize without the value starts a state of its own.
    assert ok(_call(engine, F.C_GETINFO, correlation_value=correlation)).pkcs_11_return_code == RC.OK
    assert _initialize(engine) != correlation


def test_state_belongs_to_the_client(engine):
    correlation = _initialize(engine)
    theirs = ok(_call(engine, F.C_GETINFO, identity=BOB, correlation_value=correlation))
    assert theirs.pkcs_11_return_code == RC.CRYPTOKI_NOT_INITIALIZED
    assert ok(_call(engine, F.C_GETINFO, correlation_value=correlation)).pkcs_11_return_code == RC.OK


def test_client_finalize_leaves_the_servers_library_working(engine):
    correlation = _initialize(engine)
    ok(_call(engine, F.C_FINALIZE, correlation_value=correlation))
    uid = create(engine, V21)  # wraps under the token's master key
    assert ok(one(engine, V21, item(Operation.GET, unique_identifier=uid))).managed_object is not None


def test_functions_not_offered(engine):
    got = ok(_call(engine, F.C_GETSLOTLIST))
    assert got.pkcs_11_return_code == RC.FUNCTION_NOT_SUPPORTED and got.pkcs_11_function == F.C_GETSLOTLIST
    failure(_call(engine, 0x1001), ResultReason.PKCS_11_INVALID_FUNCTION)  # vendor-defined (an Integer)
    failure(_call(engine, F.C_GETINFO, pkcs_11_interface="Vendor X"), ResultReason.PKCS_11_INVALID_INTERFACE)
    named = ok(_call(engine, F.C_GETINFO, pkcs_11_interface="PKCS 11"))
    assert named.pkcs_11_interface == "PKCS 11"


def test_parameters_the_functions_do_not_take(engine):
    correlation = _initialize(engine)
    failure(
        _call(engine, F.C_GETINFO, correlation_value=correlation, pkcs_11_input_parameters=b"\x01"),
        ResultReason.PKCS_11_CODEC_ERROR,
    )
    reserved = ok(_call(engine, F.C_FINALIZE, correlation_value=correlation, pkcs_11_input_parameters=b"\x01"))
    assert reserved.pkcs_11_return_code == RC.ARGUMENTS_BAD


def test_a_kmip_2_operation(engine):
    result = _call(engine, F.C_INITIALIZE, V14)
    assert result.result_status == ResultStatus.OPERATION_FAILED
    assert result.result_reason == ResultReason.OPERATION_NOT_SUPPORTED
