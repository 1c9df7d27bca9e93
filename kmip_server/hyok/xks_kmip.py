"""The KMIP requests the XKS API sends the engine, and what their answers become.

Every XKS key operation is one or more KMIP 2.1 request messages handed to the worker's
request handler (the engine's ``Dispatcher.handle``) as the credential's identity, so the
dispatcher authorizes, runs and audits them as it does any KMIP client's. This module builds
their batch items with the protocol library's model and turns a failed item into the XKS
error the specification names for it (:meth:`KmipEngine.check`).

AES-GCM as the XKS API has it: a 96-bit IV the engine draws at random, a 16-byte tag, and the
AAD of xks_protocol.gcm_aad.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from kmip_client.protocol.model import (
    Attribute,
    Attributes,
    ProtocolVersion,
    RequestBatchItem,
    RequestHeader,
    RequestMessage,
    ResponseBatchItem,
    ResponseMessage,
)
from kmip_client.protocol.model.attributes import CryptographicParameters, Link, Name
from kmip_client.protocol.model.base import to_bytes
from kmip_client.protocol.model.messages import REQUEST_PAYLOADS, decode_message
from kmip_client.protocol.spec import Tag
from kmip_client.protocol.spec.attributes import ATTRIBUTE_TAGS
from kmip_client.protocol.spec.enums import (
    BlockCipherMode,
    CryptographicAlgorithm,
    CryptographicUsageMask,
    LinkType,
    NameType,
    ObjectType,
    Operation,
    ResultReason,
    ResultStatus,
    State,
)

from ..engine.identity import ClientIdentity
from .xks_protocol import ErrorName, XksError

__all__ = ["BUDGET_SECONDS", "KeyFacts", "KmipEngine", "USAGE_NAMES", "NOT_FOUND"]

log = logging.getLogger("strongroom.hyok.xks")

MessageHandler = Callable[[bytes, ClientIdentity], bytes]

#: AWS KMS gives up on a proxy that has not answered in 250 ms.
BUDGET_SECONDS = 0.25
KEY_LENGTH = 256
#: The XKS keyUsage names of the usage mask bits (at most ten may be reported).
USAGE_NAMES = (
    (CryptographicUsageMask.ENCRYPT, "ENCRYPT"),
    (CryptographicUsageMask.DECRYPT, "DECRYPT"),
    (CryptographicUsageMask.WRAP_KEY, "WRAP"),
    (CryptographicUsageMask.UNWRAP_KEY, "UNWRAP"),
    (CryptographicUsageMask.SIGN, "SIGN"),
    (CryptographicUsageMask.VERIFY, "VERIFY"),
    (CryptographicUsageMask.DERIVE_KEY, "DERIVE"),
    (CryptographicUsageMask.MAC_GENERATE, "MAC_GENERATE"),
    (CryptographicUsageMask.MAC_VERIFY, "MAC_VERIFY"),
)
NOT_FOUND = frozenset({ResultReason.ITEM_NOT_FOUND, ResultReason.OBJECT_NOT_FOUND})

_V21 = ProtocolVersion(major=2, minor=1)
_FACTS = ("Object Type", "State", "Cryptographic Algorithm", "Cryptographic Length", "Cryptographic Usage Mask")
_FACT_TAGS = tuple(Tag(ATTRIBUTE_TAGS[name]) for name in _FACTS)
_LINK_TAGS = (Tag(ATTRIBUTE_TAGS["Link"]),)
_GONE = frozenset({State.DESTROYED, State.DESTROYED_COMPROMISED})
_KNOWN_REASONS = frozenset(int(reason) for reason in ResultReason)
_ENCRYPT_PARAMETERS = CryptographicParameters(
    block_cipher_mode=BlockCipherMode.GCM,
    cryptographic_algorithm=CryptographicAlgorithm.AES,
    random_iv=True,
    iv_length=96,
    tag_length=16,
)
_DECRYPT_PARAMETERS = CryptographicParameters(
    block_cipher_mode=BlockCipherMode.GCM, cryptographic_algorithm=CryptographicAlgorithm.AES, tag_length=16
)
# A Result Reason of the engine's and the XKS error it is (others are InternalException).
_REASONS = {
    ResultReason.ITEM_NOT_FOUND: ErrorName.KEY_NOT_FOUND,
    ResultReason.OBJECT_NOT_FOUND: ErrorName.KEY_NOT_FOUND,
    ResultReason.PERMISSION_DENIED: ErrorName.ACCESS_DENIED,
    ResultReason.USAGE_LIMIT_EXCEEDED: ErrorName.ACCESS_DENIED,
    ResultReason.INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK: ErrorName.INVALID_KEY_USAGE,
    ResultReason.BAD_CRYPTOGRAPHIC_PARAMETERS: ErrorName.INVALID_KEY_USAGE,
    ResultReason.INVALID_OBJECT_TYPE: ErrorName.INVALID_KEY_USAGE,
    ResultReason.WRONG_KEY_LIFECYCLE_STATE: ErrorName.INVALID_STATE,
    ResultReason.OBJECT_ARCHIVED: ErrorName.INVALID_STATE,
    ResultReason.KEY_VALUE_NOT_PRESENT: ErrorName.INVALID_STATE,
}


@dataclasses.dataclass(frozen=True)
class KeyFacts:
    """What the XKS API needs to know of a key."""

    uid: str
    object_type: int | None
    state: int | None
    algorithm: int | None
    length: int | None
    usage_mask: int

    @property
    def aes_256(self) -> bool:
        return (
            self.object_type == ObjectType.SYMMETRIC_KEY
            and self.algorithm == CryptographicAlgorithm.AES
            and self.length == KEY_LENGTH
        )

    @property
    def gone(self) -> bool:
        return self.state in _GONE

    @property
    def state_name(self) -> str:
        try:
            return State(self.state or 0).name.replace("_", " ").title()
        except ValueError:
            return f"in state {self.state}"

    def key_usage(self) -> list[str]:
        return [name for bit, name in USAGE_NAMES if self.usage_mask & bit]


def _item(operation: Operation, **payload: Any) -> RequestBatchItem:
    return RequestBatchItem(operation=operation, payload=REQUEST_PAYLOADS[operation](**payload))


def locate(key_id: str, usage: CryptographicUsageMask | None = None) -> RequestBatchItem:
    """A Locate of the newest key named ``key_id``; with ``usage``, only an Active AES-256
    symmetric key whose usage mask has that bit (what an XKS Encrypt or Decrypt may use)."""
    wanted = [Attribute(name="Name", value=Name(value=key_id, type=NameType.UNINTERPRETED_TEXT_STRING))]
    if usage is not None:
        wanted += [
            Attribute(name="State", value=State.ACTIVE),
            Attribute(name="Object Type", value=ObjectType.SYMMETRIC_KEY),
            Attribute(name="Cryptographic Algorithm", value=CryptographicAlgorithm.AES),
            Attribute(name="Cryptographic Length", value=KEY_LENGTH),
            Attribute(name="Cryptographic Usage Mask", value=usage),
        ]
    return _item(Operation.LOCATE, attributes=Attributes(attributes=tuple(wanted)), maximum_items=1)


def located(item: ResponseBatchItem) -> str | None:
    """The Unique Identifier a successful Locate found, if any."""
    found = item.payload.unique_identifiers
    return str(found[0]) if found else None


def get_facts(uid: str | None) -> RequestBatchItem:
    return _item(Operation.GET_ATTRIBUTES, unique_identifier=uid, attribute_references=_FACT_TAGS)


def get_links(uid: str) -> RequestBatchItem:
    return _item(Operation.GET_ATTRIBUTES, unique_identifier=uid, attribute_references=_LINK_TAGS)


def encrypt(uid: str, plaintext: bytes, aad: bytes) -> RequestBatchItem:
    return _item(
        Operation.ENCRYPT,
        unique_identifier=uid,
        cryptographic_parameters=_ENCRYPT_PARAMETERS,
        data=plaintext,
        authenticated_encryption_additional_data=aad,
    )


def decrypt(uid: str | None, ciphertext: bytes, iv: bytes, tag: bytes, aad: bytes) -> RequestBatchItem:
    """A Decrypt with key ``uid``, or the ID Placeholder (None)."""
    return _item(
        Operation.DECRYPT,
        unique_identifier=uid,
        cryptographic_parameters=_DECRYPT_PARAMETERS,
        data=ciphertext,
        iv_counter_nonce=iv,
        authenticated_encryption_additional_data=aad,
        authenticated_encryption_tag=tag,
    )


def _attributes(payload: Any) -> list[Attribute]:
    return list(payload.attributes.attributes) if payload.attributes is not None else []


def facts_of(uid: str, payload: Any) -> KeyFacts:
    found: dict[str, Any] = {}
    for attribute in _attributes(payload):
        found.setdefault(attribute.name, attribute.value)

    def number(name: str) -> int | None:
        value = found.get(name)
        return None if value is None else int(value)

    return KeyFacts(
        uid=uid,
        object_type=number("Object Type"),
        state=number("State"),
        algorithm=number("Cryptographic Algorithm"),
        length=number("Cryptographic Length"),
        usage_mask=number("Cryptographic Usage Mask") or 0,
    )


def replacement_of(payload: Any) -> str | None:
    """The key a Get Attributes of Links says replaced this one (Re-key's Replacement Object Link)."""
    for attribute in _attributes(payload):
        link = attribute.value
        if isinstance(link, Link) and link.link_type == LinkType.REPLACEMENT_OBJECT_LINK:
            return str(link.linked_object_identifier)
    return None


def ok(item: ResponseBatchItem) -> bool:
    return item.result_status == ResultStatus.SUCCESS


def reason_text(reason: int | None) -> str:
    if reason is None:
        return "no reason given"
    return ResultReason(reason).name.replace("_", " ").title() if reason in _KNOWN_REASONS else f"reason {reason}"


class KmipEngine:
    """Sends batch items to ``handler`` (the worker's Dispatcher.handle) as one message."""

    def __init__(self, handler: MessageHandler) -> None:
        self.handler = handler

    def run(self, identity: ClientIdentity, *items: RequestBatchItem) -> Sequence[ResponseBatchItem]:
        message = RequestMessage(header=RequestHeader(protocol_version=_V21, batch_count=len(items)), batch_items=items)
        started = time.monotonic()
        try:
            answer = decode_message(self.handler(to_bytes(message), identity))
        except Exception as exc:
            # A bug or a failing dependency, never the caller's input: logged (never the request).
            log.exception("the engine failed on an XKS request of %s", identity.name)
            raise XksError(ErrorName.INTERNAL, "the key manager failed; its log says more") from exc
        if not isinstance(answer, ResponseMessage) or len(answer.batch_items) != len(items):
            first = answer.batch_items[0] if isinstance(answer, ResponseMessage) and answer.batch_items else None
            why = reason_text(None if first is None else first.result_reason)
            raise XksError(ErrorName.INTERNAL, f"the key manager refused the request ({why})")
        elapsed = time.monotonic() - started
        for item in answer.batch_items:
            if item.result_reason == ResultReason.GENERAL_FAILURE and elapsed > BUDGET_SECONDS:
                # The store or the token did not answer in time (the engine's General Failure,
                # after longer than AWS KMS waits): what DependencyTimeoutException is for.
                raise XksError(
                    ErrorName.DEPENDENCY_TIMEOUT, f"the key manager's store or token took {elapsed:.2f} s and failed"
                )
        return answer.batch_items

    @staticmethod
    def check(item: ResponseBatchItem, operation: Operation) -> None:
        """Nothing for a successful item; else the XKS error its Result Reason is."""
        if ok(item):
            return
        reason = item.result_reason
        name = (
            _REASONS.get(ResultReason(reason), ErrorName.INTERNAL) if reason in _KNOWN_REASONS else ErrorName.INTERNAL
        )
        if operation == Operation.DECRYPT and reason == ResultReason.CRYPTOGRAPHIC_FAILURE:
            name = ErrorName.INVALID_CIPHERTEXT  # the tag did not verify
        if name is ErrorName.INTERNAL:
            log.warning(
                "XKS %s failed in the engine: %s: %s", operation.name.title(), reason_text(reason), item.result_message
            )
        what = operation.name.replace("_", " ").title()
        raise XksError(name, f"{what}: {reason_text(reason)}: {item.result_message or ''}".rstrip(": "))
