"""A BYOK export as KMIP requests to this node's engine, in process, as one client identity.

Every step is a request through :meth:`Dispatcher.handle`, the engine's one choke point, so the
access policy, M-of-N approval and the audit trail treat the export exactly as a KMIP client's
Get of the key with a Key Wrapping Specification (the request it is):

1. Get Attributes of the key: its Object Type says what the provider receives (the raw bytes of
   a Symmetric Key, the PKCS#8 DER of a Private Key) and whether the method takes it.
2. The provider's wrapping public key as a Public Key object of the identity's: found by a
   Name derived from its SubjectPublicKeyInfo, and its value compared with the given key
   (anyone may give an object that Name); else registered, Active, for Wrap Key only. It
   carries no Cryptographic Parameters attribute, so the Get's parameters apply.
3. Get of the key wrapped under it (Encoding Option No Encoding: the key material alone), sent
   with the Asynchronous Indicator. Where the policy holds it for approval, the engine answers
   Operation Pending and the id of the approval request (the Asynchronous Correlation Value);
   asked again with the same request, that request is Polled instead of a second one made: it
   answers pending until approved, then runs (kmip_server/operations/asynchronous.py).

The key's plaintext exists only inside the engine's Get; what comes back is wrapped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kmip_client.calls import Calls
from kmip_client.operations import Call, ManagedObject, OperationPending, call_result, decode_response, encode_request
from kmip_client.operations import managed_object as read_managed_object
from kmip_client.operations import poll as poll_item
from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.model.base import to_bytes
from kmip_client.protocol.model.objects import (
    EncryptionKeyInformation,
    KeyBlock,
    KeyValue,
    KeyWrappingSpecification,
    PublicKey,
)
from kmip_client.protocol.spec.enums import (
    CryptographicAlgorithm,
    CryptographicUsageMask,
    EncodingOption,
    KeyFormatType,
    ObjectType,
    Operation,
    State,
    WrappingMethod,
)

from ..approvals.service import ApprovalRequest, ApprovalService
from ..engine.dispatcher import Dispatcher
from ..engine.identity import ClientIdentity
from .methods import Method, MethodError

#: The protocol version of the export's requests: a held request is Polled in its own version.
VERSION = (2, 1)
_PARAMETER_FIELDS = ("padding_method", "hashing_algorithm", "mask_generator_hashing_algorithm", "block_cipher_mode")
_FORMATS = {ObjectType.SYMMETRIC_KEY: KeyFormatType.RAW, ObjectType.PRIVATE_KEY: KeyFormatType.PKCS_8}


@dataclasses.dataclass(frozen=True, slots=True)
class Exported:
    """The wrapped key material and what it was wrapped under."""

    wrapped: bytes = dataclasses.field(repr=False)
    object_type: ObjectType
    wrapping_uid: str
    wrapping_bits: int
    wrapping_fingerprint: str  # SHA-256 of the wrapping key's SubjectPublicKeyInfo, hex


@dataclasses.dataclass(frozen=True, slots=True)
class Pending:
    """The export awaits approval: ``request`` is the approval request as approvers see it."""

    request: ApprovalRequest


def wrapping_key_name(spki: bytes) -> str:
    return f"byok-wrapping-key-sha256-{hashlib.sha256(spki).hexdigest()}"


class EngineClient:
    """KMIP requests of protocol :data:`VERSION` to ``dispatcher`` as ``identity``."""

    def __init__(self, dispatcher: Dispatcher, identity: ClientIdentity) -> None:
        self.dispatcher = dispatcher
        self.identity = identity
        self.calls = Calls(VERSION)

    def run(self, call: Call, *, asynchronous: bool = False) -> Any:
        """``call``'s result; raises its KmipError, or OperationPending (only ``asynchronous``)."""
        request = encode_request(VERSION, [call.item], asynchronous=asynchronous)
        return call_result(call, decode_response(self.dispatcher.handle(request, self.identity)))


def export(client: EngineClient, method: Method, uid: str, wrapping_public: Any) -> Exported | Pending:
    """Export key ``uid`` for ``method`` under the provider's key ``wrapping_public``."""
    bits = method.check_wrapping_key(wrapping_public)
    object_type = _object_type(client, uid, method)
    spki = wrapping_public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    wrapping_uid = _wrapping_key(client, spki, bits)
    get = client.calls.get(uid, _FORMATS[object_type], _specification(wrapping_uid, method))
    try:
        got = _held_or_new(client, get)
    except OperationPending as pending:
        return Pending(_request(client, pending.correlation_value.hex()))
    wrapped = _checked(got, wrapping_uid, method)
    return Exported(wrapped, object_type, wrapping_uid, bits, hashlib.sha256(spki).hexdigest())


def _object_type(client: EngineClient, uid: str, method: Method) -> ObjectType:
    found = client.run(client.calls.get_attributes(uid, ["Object Type", "Cryptographic Algorithm"]))
    object_type = ObjectType((found.get("Object Type") or [0])[0])
    if object_type not in _FORMATS:
        kind = object_type.name.replace("_", " ").title()
        raise MethodError(f"object {uid!r} is a {kind}: BYOK exports symmetric keys and private keys")
    algorithm = (found.get("Cryptographic Algorithm") or [None])[0]
    if object_type == ObjectType.PRIVATE_KEY and algorithm == CryptographicAlgorithm.RSA:
        if not method.takes_rsa_private_keys:
            raise MethodError(
                f"{method.provider} {method.name} cannot carry an RSA private key (too long for one OAEP block): "
                "use an RSA-AES key wrap method"
            )
    return object_type


def _wrapping_key(client: EngineClient, spki: bytes, bits: int) -> str:
    """The identity's Active Public Key object holding ``spki``, registered if there is none."""
    name = wrapping_key_name(spki)
    located: list[str] = client.run(
        client.calls.locate(
            name=name,
            object_type=ObjectType.PUBLIC_KEY,
            algorithm=None,
            length=None,
            state=State.ACTIVE,
            extra=None,
            max_items=None,
            offset=None,
        )
    )
    digest = hashlib.sha256(spki).digest()
    for candidate in located:
        # The server sets Digest (SHA-256 of the registered value) and no client can: it tells
        # whether this object holds the given key without fetching it.
        found = client.run(client.calls.get_attributes(candidate, ["Digest"]))
        if any(getattr(d, "digest_value", None) == digest for d in found.get("Digest", ())):
            return candidate
    public = PublicKey(
        key_block=KeyBlock(
            key_format_type=KeyFormatType.X_509,
            key_value=KeyValue(key_material=spki),
            cryptographic_algorithm=CryptographicAlgorithm.RSA,
            cryptographic_length=bits,
        )
    )
    # Active from a second ago: registered Active, with no Activate to follow.
    active = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    register = client.calls.register(
        public,
        ObjectType.PUBLIC_KEY,
        name,
        int(CryptographicUsageMask.WRAP_KEY),
        {"Activation Date": active},
    )
    uid: str = client.run(register)
    return uid


def _specification(wrapping_uid: str, method: Method) -> KeyWrappingSpecification:
    return KeyWrappingSpecification(
        wrapping_method=WrappingMethod.ENCRYPT,
        encryption_key_information=EncryptionKeyInformation(
            unique_identifier=wrapping_uid, cryptographic_parameters=method.parameters
        ),
        encoding_option=EncodingOption.NO_ENCODING,
    )


def _approvals(dispatcher: Dispatcher) -> ApprovalService | None:
    service = dispatcher.approvals
    return service if isinstance(service, ApprovalService) else None


def _held_or_new(client: EngineClient, get: Call) -> ManagedObject:
    """The Get's answer: Poll the identity's request already held for exactly this Get, or send it."""
    dispatcher = client.dispatcher
    service = _approvals(dispatcher)
    if service is not None:
        principal = dispatcher.policy.principal(client.identity)
        with dispatcher.repository.read() as session:
            held = service.find_held(
                session,
                requester=principal.name,
                tenant=principal.tenant,
                version=VERSION,
                operation=int(Operation.GET),
                payload=to_bytes(get.item.payload),
                now=int(time.time()),
            )
        if held is not None:
            poll = Call(poll_item(bytes.fromhex(held.id)), read_managed_object, pending_as=Operation.GET)
            result: ManagedObject = client.run(poll)
            return result
    got: ManagedObject = client.run(get, asynchronous=True)
    return got


def _request(client: EngineClient, request_id: str) -> ApprovalRequest:
    dispatcher = client.dispatcher
    service = _approvals(dispatcher)
    if service is None:  # only a dispatcher with approvals holds requests
        raise KmipError(f"the server held the export (request {request_id}) but has no approvals to show it")
    principal = dispatcher.policy.principal(client.identity)
    with dispatcher.repository.read() as session:
        return service.show(session, request_id, principal.name, int(time.time()))


def _checked(got: ManagedObject, wrapping_uid: str, method: Method) -> bytes:
    """The wrapped bytes, once the Key Wrapping Data says they are what was asked for (a Poll
    runs the request that was held, which :func:`_held_or_new` matched to this one)."""
    block = getattr(got.raw, "key_block", None)
    if isinstance(block, KeyBlock) and isinstance(block.key_value, bytes) and block.key_wrapping_data is not None:
        wrapping = block.key_wrapping_data
        info = wrapping.encryption_key_information
        used = info.cryptographic_parameters if info is not None else None
        if (
            info is not None
            and info.unique_identifier == wrapping_uid
            and wrapping.encoding_option == EncodingOption.NO_ENCODING
            and used is not None
            and all(getattr(used, name) == getattr(method.parameters, name) for name in _PARAMETER_FIELDS)
        ):
            return block.key_value
    raise KmipError(f"the server's answer is not the key wrapped under {wrapping_uid!r} as {method.name} asks")
