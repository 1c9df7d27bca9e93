"""Register: objects come back in the form they were registered in."""

from __future__ import annotations

import pytest

from kmip_client.protocol.model.objects import KeyBlock, KeyValue, SymmetricKey, TransparentKeyMaterial
from kmip_client.protocol.spec.enums import CryptographicAlgorithm, KeyFormatType, ObjectType, Operation

from .engine_support import attributes_of, one
from .kmip_messages import V14, V21, attrs_for, item, ok

KEY = bytes.fromhex("0123456789abcdef0123456789abcdef")


def register(engine, version, object_type, managed, attributes=()):
    request = item(
        Operation.REGISTER, object_type=object_type, managed_object=managed, **attrs_for(version, list(attributes))
    )
    return ok(one(engine, version, request)).unique_identifier


@pytest.mark.parametrize("version", [V14, V21])
def test_transparent_symmetric_key_comes_back_transparent(engine, version):
    """v2.1 BL-M-3: a key registered as a Transparent Symmetric Key is returned so by a Get
    that names no format; Raw on request."""
    key = SymmetricKey(
        key_block=KeyBlock(
            key_format_type=KeyFormatType.TRANSPARENT_SYMMETRIC_KEY,
            key_value=KeyValue(key_material=TransparentKeyMaterial(key=KEY)),
            cryptographic_algorithm=CryptographicAlgorithm.AES,
            cryptographic_length=128,
        )
    )
    uid = register(engine, version, ObjectType.SYMMETRIC_KEY, key)
    got = ok(one(engine, version, item(Operation.GET, unique_identifier=uid))).managed_object
    assert got == key
    raw = ok(one(engine, version, item(Operation.GET, unique_identifier=uid, key_format_type=KeyFormatType.RAW)))
    block = raw.managed_object.key_block
    assert block.key_format_type == KeyFormatType.RAW and block.key_value.key_material == KEY
    same = ok(
        one(
            engine,
            version,
            item(Operation.GET, unique_identifier=uid, key_format_type=KeyFormatType.TRANSPARENT_SYMMETRIC_KEY),
        )
    )
    assert same.managed_object == key
    attrs = attributes_of(engine, uid, version)
    if version >= (2, 0):  # a 2.x attribute
        assert attrs["Key Format Type"] == KeyFormatType.TRANSPARENT_SYMMETRIC_KEY
    assert attrs["Cryptographic Length"] == 128
