"""Helpers for the in-process engine tests: identities, a settable clock, request shortcuts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kmip_client.protocol.model import Attribute, Attributes
from kmip_client.protocol.spec import Tag
from kmip_client.protocol.spec.attributes import ATTRIBUTE_TAGS
from kmip_client.protocol.spec.enums import (
    Operation,
    ResultReason,
    ResultStatus,
)
from kmip_server.custody.base import KeyCustody, RsaKeyNumbers
from kmip_server.engine.identity import ClientIdentity

if TYPE_CHECKING:
    from kmip_server.engine.dispatcher import Dispatcher

from .kmip_messages import V14, V21, attrs_for, create_aes, item, ok, request_bytes, response

ALICE = ClientIdentity("alice")
BOB = ClientIdentity("bob")
ADMIN = ClientIdentity("admin")
T0 = 1_900_000_000


class Clock:
    def __init__(self) -> None:
        self.now = float(T0)

    def __call__(self) -> float:
        return self.now


def run(engine: Dispatcher, version, *items, identity=ALICE, **header):
    return response(engine.handle(request_bytes(version, *items, **header), identity))


def one(engine: Dispatcher, version, batch_item, identity=ALICE):
    result = run(engine, version, batch_item, identity=identity)
    assert len(result.batch_items) == 1
    return result.batch_items[0]


def create(engine, version=V14, identity=ALICE, **kwargs) -> str:
    return ok(one(engine, version, create_aes(version, **kwargs), identity)).unique_identifier


def attributes_of(engine, uid, version=V14, identity=ALICE, names=()):
    if version >= (2, 0):
        refs = tuple(Tag(ATTRIBUTE_TAGS[n]) for n in names)
        payload = ok(
            one(
                engine,
                version,
                item(Operation.GET_ATTRIBUTES, unique_identifier=uid, attribute_references=refs),
                identity,
            )
        )
        return {a.name if a.vendor is None else f"{a.vendor}-{a.name}": a.value for a in payload.attributes.attributes}
    payload = ok(
        one(
            engine,
            version,
            item(Operation.GET_ATTRIBUTES, unique_identifier=uid, attribute_names=tuple(names)),
            identity,
        )
    )
    return {a.name: a.value for a in payload.attribute_list}


def failure(result, reason: ResultReason) -> str:
    assert result.result_status == ResultStatus.OPERATION_FAILED, result
    assert result.result_reason == reason, (result.result_reason, result.result_message)
    assert result.result_message
    return result.result_message


def state_of(engine, uid, version=V14, identity=ALICE):
    return attributes_of(engine, uid, version, identity, ["State"])["State"]


def locate(engine, version, attributes, identity=ALICE, **kwargs):
    if version >= (2, 0):
        payload = item(Operation.LOCATE, attributes=Attributes(attributes=tuple(attributes)), **kwargs)
    else:
        payload = item(Operation.LOCATE, attribute_list=tuple(attributes), **kwargs)
    return ok(one(engine, version, payload, identity))


def set_attribute(engine, uid, attribute: Attribute, version=V21):
    """The result item of a 2.x Set Attribute of ``attribute`` on ``uid``."""
    payload = item(Operation.SET_ATTRIBUTE, unique_identifier=uid, new_attribute=Attributes(attributes=(attribute,)))
    return one(engine, version, payload)


def register(engine, version, object_type, managed, attributes=()):
    """Register ``managed`` (with ``attributes``, in the version's form); its Unique Identifier."""
    request = item(
        Operation.REGISTER, object_type=object_type, managed_object=managed, **attrs_for(version, list(attributes))
    )
    return ok(one(engine, version, request)).unique_identifier


class DelegatingCustody(KeyCustody):
    """The real token behind the KeyCustody interface, for tests that watch or change one of
    its calls (counting unwraps, a token without seeding) and leave the others to the token."""

    def __init__(self, real: KeyCustody) -> None:
        self.real = real

    @property
    def master_key_id(self) -> str:
        return self.real.master_key_id

    def wrap(self, plaintext: bytes, context: bytes) -> bytes:
        return self.real.wrap(plaintext, context)

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        return self.real.unwrap(blob, context)

    def random(self, length: int) -> bytes:
        return self.real.random(length)

    def generate_rsa(self, bits: int, public_exponent: int) -> RsaKeyNumbers:
        return self.real.generate_rsa(bits, public_exponent)

    def audit_mac(self, data: bytes) -> bytes:
        return self.real.audit_mac(data)

    def close(self) -> None:
        self.real.close()
