"""Encrypt and Decrypt (KMIP 1.4 §4.29/§4.30, 2.1 §6.1.17/§6.1.11): whole or streamed.

The key comes from :func:`.keys.key_for` (state, dates, usage mask, unwrap), the effective
Cryptographic Parameters from :func:`.keys.parameters` (the request's, else the key's
attribute), the cipher from the table in :mod:`.ciphers`. RSA keys go to :mod:`.asymmetric`.

A stream (Init Indicator, Correlation Value; see :mod:`.streams`) keeps the key, the
parameters, the IV, the additional data and the tag of its first part, and all input so far:
each part runs the cipher again from the start and returns the output not yet returned.

Result Reasons follow the OASIS profile vectors: a missing IV is Invalid Message
(CS-BC-M-11..13 in every version), a tag length the mode does not take is General Failure
and a failed authentication Cryptographic Failure (CS-BC-M-GCM-1, CHACHA20POLY1305-1), an
exhausted Usage Limits is Permission Denied (CS-BC-M-7; 2.1 §6.1.17 says so too).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.model.attributes import CryptographicParameters, UsageLimits
from kmip_client.protocol.model.payloads.crypto import DecryptRequest, DecryptResponse, EncryptRequest, EncryptResponse
from kmip_client.protocol.spec.enums import CryptographicUsageMask, ObjectType, Operation, ResultReason, UsageLimitsUnit

from ...engine.context import RequestContext, WriteNeeded
from ...engine.registry import operation
from ..common import load_object
from . import ciphers
from .asymmetric import ParameterError, rsa_decrypt, rsa_encrypt
from .keys import KeyInUse, key_for, parameters
from .streams import Stream, stream_of

R = ResultReason
F = ciphers.Fault
_ASYMMETRIC = frozenset({int(ObjectType.PUBLIC_KEY), int(ObjectType.PRIVATE_KEY)})


def _error(ctx: RequestContext, error: ciphers.CipherError) -> KmipError:
    fault = error.fault
    if fault is F.BAD_PARAMETERS:
        reason = ctx.reason(R.BAD_CRYPTOGRAPHIC_PARAMETERS, R.INVALID_FIELD)
    elif fault is F.UNSUPPORTED:
        reason = ctx.reason(R.UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS, R.FEATURE_NOT_SUPPORTED)
    elif fault is F.MISSING_IV:
        reason = R.INVALID_MESSAGE
    elif fault is F.TAG_LENGTH:
        reason = R.GENERAL_FAILURE
    else:
        reason = R.CRYPTOGRAPHIC_FAILURE
    return KmipError(str(error), reason)


@dataclasses.dataclass(slots=True)
class _Call:
    """What one Encrypt or Decrypt part works with, whole or streamed."""

    key: KeyInUse
    params: CryptographicParameters
    stream: Stream | None
    data: bytes  # all input: earlier parts' and this one's

    @property
    def final(self) -> bool:
        return self.stream is None or self.stream.final

    @property
    def first(self) -> bool:
        return self.stream is None or self.stream.new


def _call(ctx: RequestContext, op: Operation, request: Any, usage: CryptographicUsageMask, protects: bool) -> _Call:
    stream = stream_of(ctx, op, request)
    action = "encrypt" if protects else "decrypt"
    given_uid = request.unique_identifier
    given_params = request.cryptographic_parameters
    if stream is not None and not stream.new:
        if given_uid is not None and stream.key_uid is not None and ctx.uid(given_uid) != stream.key_uid:
            raise KmipError("a stream's later parts use the key its first part named", R.INVALID_FIELD)
        given_uid = stream.key_uid if given_uid is None else given_uid
        given_params = given_params or stream.parameters
    key = key_for(ctx, given_uid, usage=usage, protects=protects, action=action)
    params = parameters(given_params, key)
    data = request.data
    if stream is None and data is None:
        raise KmipError(f"{op.name.title()} needs Data", R.INVALID_MESSAGE)
    if stream is not None and stream.new:
        stream.key_uid, stream.parameters = key.uid, params
    previous = stream.data if stream is not None else b""
    return _Call(key, params, stream, previous + (data or b""))


def _suite(ctx: RequestContext, call: _Call) -> ciphers.Suite:
    params, key = call.params, call.key
    if key.algorithm is not None and params.cryptographic_algorithm not in (None, key.algorithm):
        raise KmipError(
            "the Cryptographic Parameters name another Cryptographic Algorithm than the key's",
            ctx.reason(R.BAD_CRYPTOGRAPHIC_PARAMETERS, R.INVALID_FIELD),
        )
    return ciphers.suite_for(params.cryptographic_algorithm, params.block_cipher_mode)


def _job(call: _Call, suite: ciphers.Suite, iv: bytes | None) -> ciphers.Job:
    params = call.params
    return ciphers.Job(
        key=call.key.raw(),
        iv=iv,
        data=call.data,
        final=call.final,
        padding=ciphers.padding_for(suite, params.padding_method),
        initial_counter=params.initial_counter_value,
        counter_bits=params.counter_length,
    )


def _saved(call: _Call, name: str, given: bytes | None) -> bytes | None:
    """A value of the first part (IV, additional data, tag): later parts use the saved one."""
    stream = call.stream
    if stream is None or stream.new:
        return given
    return stream.values.get(name, given)


def _random_iv(suite: ciphers.Suite, params: CryptographicParameters) -> bytes:
    bits = params.iv_length
    if bits is None:
        return os.urandom(suite.random_iv_size)
    if bits <= 0 or bits % 8:
        raise ciphers.CipherError(F.BAD_PARAMETERS, f"IV Length {bits} is not a whole number of bytes")
    iv = os.urandom(bits // 8)
    ciphers.check_iv(suite, iv)
    return iv


def _iv(call: _Call, suite: ciphers.Suite, given: bytes | None, generate: bool) -> tuple[bytes | None, bool]:
    """The IV/Counter/Nonce to use and whether the server generated it (then it is returned)."""
    iv = _saved(call, "iv", given)
    generated = False
    if iv is None and generate and suite.iv_sizes is not None and call.params.random_iv:
        iv, generated = _random_iv(suite, call.params), True
    ciphers.check_iv(suite, iv)
    bits = call.params.iv_length
    if iv is not None and not generated and bits is not None and bits != 8 * len(iv):
        raise ciphers.CipherError(F.BAD_PARAMETERS, f"the IV/Counter/Nonce is {8 * len(iv)} bits, not IV Length {bits}")
    return iv, generated


def _finish(
    ctx: RequestContext, call: _Call, output: bytes, values: dict[str, bytes | None]
) -> tuple[bytes, bytes | None]:
    """This part's share of ``output``, and the Correlation Value to answer with (non-final parts)."""
    stream = call.stream
    if stream is None:
        return output, None
    part = output[stream.emitted :]
    if stream.final:
        stream.close(ctx)
        return part, None
    if stream.new:
        stream.values = {name: value for name, value in values.items() if value is not None}
    stream.data, stream.emitted = call.data, len(output)
    stream.save(ctx)
    return part, stream.correlation_value


def _take_usage(ctx: RequestContext, key: KeyInUse, size: int, first: bool) -> None:
    """Obtain an allocation from the key's Usage Limits before protecting (KMIP 1.4 §3.21, 2.1
    §6.1.17): ``size`` bytes, or one object per operation; Permission Denied when none is left."""
    limits = key.obj.attributes.first("Usage Limits")
    if not isinstance(limits, UsageLimits):
        return
    amount = size if limits.unit == UsageLimitsUnit.BYTE else int(first)
    if not amount:
        return
    if not ctx.session.writable:
        raise WriteNeeded(f"Usage Limits of {key.uid!r}")
    # Read again under the row lock: two encryptions at once must not both spend the same count.
    fresh = load_object(ctx, key.uid, for_update=True)
    current = fresh.attributes.first("Usage Limits")
    if not isinstance(current, UsageLimits):
        return  # removed since the key was read: no limit any more
    left = current.count if current.count is not None else current.total or 0
    if left < amount:
        raise KmipError(f"object {key.uid!r} has {left} of its Usage Limits left, {amount} needed", R.PERMISSION_DENIED)
    fresh.attributes.set("Usage Limits", dataclasses.replace(current, count=left - amount))
    fresh.save(ctx)


@operation(Operation.ENCRYPT, writes=False)
def encrypt(ctx: RequestContext, request: EncryptRequest) -> EncryptResponse:
    call = _call(ctx, Operation.ENCRYPT, request, CryptographicUsageMask.ENCRYPT, protects=True)
    if call.key.object_type in _ASYMMETRIC:
        return _rsa_encrypt(ctx, call, request)
    try:
        suite = _suite(ctx, call)
        iv, generated = _iv(call, suite, request.iv_counter_nonce, generate=True)
        aad = _saved(call, "aad", request.authenticated_encryption_additional_data)
        job = _job(call, suite, iv)
        ciphers.check_key(suite, job.key)
        if suite.authenticated:
            job.aad = aad
            job.tag_size = call.params.tag_length if call.params.tag_length is not None else 16
            ciphers.check_tag_size(suite, job.tag_size)
        _take_usage(ctx, call.key, len(request.data or b""), call.first)
        output, tag = suite.encrypt(suite, job) if call.final or suite.incremental else (b"", None)
    except ciphers.CipherError as exc:
        raise _error(ctx, exc) from None
    data, correlation = _finish(ctx, call, output, {"iv": iv, "aad": aad})
    return EncryptResponse(
        unique_identifier=call.key.uid,
        data=data,
        iv_counter_nonce=iv if generated else None,
        correlation_value=correlation,
        authenticated_encryption_tag=tag if suite.authenticated and call.final else None,
    )


@operation(Operation.DECRYPT, writes=False)
def decrypt(ctx: RequestContext, request: DecryptRequest) -> DecryptResponse:
    call = _call(ctx, Operation.DECRYPT, request, CryptographicUsageMask.DECRYPT, protects=False)
    if call.key.object_type in _ASYMMETRIC:
        return _rsa_decrypt(ctx, call)
    try:
        suite = _suite(ctx, call)
        iv, _ = _iv(call, suite, request.iv_counter_nonce, generate=False)
        aad = _saved(call, "aad", request.authenticated_encryption_additional_data)
        tag = request.authenticated_encryption_tag or _saved(call, "tag", None)
        job = _job(call, suite, iv)
        ciphers.check_key(suite, job.key)
        if suite.authenticated:
            job.aad, job.tag = aad, tag
            if call.final:
                if tag is None:
                    raise KmipError(
                        f"{suite.name} decryption needs the Authenticated Encryption Tag", R.INVALID_MESSAGE
                    )
                wanted = call.params.tag_length
                ciphers.check_tag_size(suite, len(tag) if wanted is None else wanted)
                if wanted is not None and wanted != len(tag):
                    raise ciphers.CipherError(F.TAG_LENGTH, f"the tag is {len(tag)} bytes, not Tag Length {wanted}")
        output = suite.decrypt(suite, job) if call.final or suite.incremental else b""
    except ciphers.CipherError as exc:
        raise _error(ctx, exc) from None
    data, correlation = _finish(ctx, call, output, {"iv": iv, "aad": aad, "tag": tag})
    return DecryptResponse(unique_identifier=call.key.uid, data=data, correlation_value=correlation)


# ----------------------------------------------------------------------------- RSA


def _rsa_encrypt(ctx: RequestContext, call: _Call, request: EncryptRequest) -> EncryptResponse:
    _take_usage(ctx, call.key, len(request.data or b""), call.first)
    try:
        output = rsa_encrypt(call.key, call.params, call.data) if call.final else b""
    except ParameterError as exc:
        raise exc.for_version(ctx) from None
    data, correlation = _finish(ctx, call, output, {})
    return EncryptResponse(unique_identifier=call.key.uid, data=data, correlation_value=correlation)


def _rsa_decrypt(ctx: RequestContext, call: _Call) -> DecryptResponse:
    try:
        output = rsa_decrypt(call.key, call.params, call.data) if call.final else b""
    except ParameterError as exc:
        raise exc.for_version(ctx) from None
    data, correlation = _finish(ctx, call, output, {})
    return DecryptResponse(unique_identifier=call.key.uid, data=data, correlation_value=correlation)
