"""Which messages run beside the event loop because the token makes an RSA pair for them
(batch_limits.is_slow): found in the encoded bytes of real requests, 1.x and 2.x forms."""

from __future__ import annotations

import pytest

from kmip_client.protocol.model import Attribute, Attributes, TemplateAttribute
from kmip_client.protocol.spec.enums import CryptographicAlgorithm, ObjectType, Operation
from kmip_server.engine.batch_limits import is_slow, runs_apart
from tests.integration.kmip_messages import V14, V21, create_aes, item, request_bytes

A = CryptographicAlgorithm


def _pair(version, algorithm: A) -> bytes:
    attrs = (
        Attribute(name="Cryptographic Algorithm", value=algorithm),
        Attribute(name="Cryptographic Length", value=256),
    )
    fields = (
        {"common_attributes": Attributes(attributes=attrs)}
        if version >= (2, 0)
        else {"common_template_attribute": TemplateAttribute(attributes=attrs)}
    )
    return request_bytes(version, item(Operation.CREATE_KEY_PAIR, **fields))


@pytest.mark.parametrize("version", [V14, V21])
def test_an_rsa_pair_is_slow_an_ec_pair_not(version):
    assert is_slow(_pair(version, A.RSA)) and runs_apart(_pair(version, A.RSA))
    assert not is_slow(_pair(version, A.ECDSA)) and not is_slow(_pair(version, A.ED25519))


def test_other_operations_are_not_slow_and_re_key_key_pair_is():
    assert not is_slow(request_bytes(V14, create_aes(V14)))
    assert not is_slow(request_bytes(V21, item(Operation.GET, unique_identifier="RSA")))
    assert is_slow(request_bytes(V21, item(Operation.RE_KEY_KEY_PAIR, private_key_unique_identifier="k")))
    register = item(Operation.REGISTER, object_type=ObjectType.SYMMETRIC_KEY)
    assert not is_slow(request_bytes(V21, register))
