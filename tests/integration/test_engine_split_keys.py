"""Split Key objects through the engine on both stores: Register and Get as registered, the
split parameters checked as KMIP 1.4 §2.2.5 / 2.1 §2.8 require, each refusal's reason."""

from __future__ import annotations

import dataclasses
import os

import pytest

from kmip_client.protocol.model.objects import KeyBlock, KeyValue, SplitKey
from kmip_client.protocol.spec.enums import (
    CryptographicAlgorithm,
    KeyFormatType,
    ObjectType,
    Operation,
    ResultReason,
    SplitKeyMethod,
)

from .engine_support import attributes_of, failure, one
from .kmip_messages import V14, V21, attrs_for, item, ok

R = ResultReason
PART = bytes(range(32))


def split_part(**changes) -> SplitKey:
    part = SplitKey(
        split_key_parts=3,
        key_part_identifier=2,
        split_key_threshold=2,
        split_key_method=SplitKeyMethod.POLYNOMIAL_SHARING_GF_28,
        key_block=KeyBlock(
            key_format_type=KeyFormatType.RAW,
            key_value=KeyValue(key_material=PART),
            cryptographic_algorithm=CryptographicAlgorithm.AES,
            cryptographic_length=256,
        ),
    )
    return dataclasses.replace(part, **changes)


def register_part(engine, version, part):
    request = item(Operation.REGISTER, object_type=ObjectType.SPLIT_KEY, managed_object=part, **attrs_for(version, []))
    return one(engine, version, request)


@pytest.mark.parametrize("version", [V14, V21])
def test_a_split_key_part_round_trips(engine, version):
    uid = ok(register_part(engine, version, split_part())).unique_identifier
    got = ok(one(engine, version, item(Operation.GET, unique_identifier=uid)))
    assert got.object_type == ObjectType.SPLIT_KEY and got.managed_object == split_part()
    attrs = attributes_of(
        engine, uid, version, names=("Object Type", "Cryptographic Algorithm", "Cryptographic Length")
    )
    assert attrs == {
        "Object Type": ObjectType.SPLIT_KEY,
        "Cryptographic Algorithm": CryptographicAlgorithm.AES,
        "Cryptographic Length": 256,
    }


def test_prime_field_sharing_keeps_its_prime(engine):
    prime = 2**127 - 1
    part = split_part(split_key_method=SplitKeyMethod.POLYNOMIAL_SHARING_PRIME_FIELD, prime_field_size=prime)
    uid = ok(register_part(engine, V21, part)).unique_identifier
    assert ok(one(engine, V21, item(Operation.GET, unique_identifier=uid))).managed_object.prime_field_size == prime


@pytest.mark.parametrize(
    ("changes", "v21_reason", "words"),
    [
        ({"key_part_identifier": 0}, R.INVALID_ATTRIBUTE_VALUE, "Key Part Identifier 0"),
        ({"key_part_identifier": 4}, R.INVALID_ATTRIBUTE_VALUE, "Key Part Identifier 4"),
        ({"split_key_threshold": 5}, R.INVALID_ATTRIBUTE_VALUE, "Split Key Threshold 5"),
        ({"split_key_method": SplitKeyMethod.XOR}, R.INVALID_ATTRIBUTE_VALUE, "XOR splitting needs every part"),
        ({"split_key_method": SplitKeyMethod.POLYNOMIAL_SHARING_PRIME_FIELD}, R.MISSING_DATA, "Prime Field Size"),
        ({"prime_field_size": 7}, R.INVALID_ATTRIBUTE_VALUE, "Prime Field Size"),
        ({"split_key_threshold": None}, R.MISSING_DATA, "Split Key Threshold"),
    ],
)
@pytest.mark.parametrize("version", [V14, V21])
def test_split_parameters_are_checked(engine, version, changes, v21_reason, words):
    reason = v21_reason if version >= (2, 0) else R.INVALID_FIELD
    assert words in failure(register_part(engine, version, split_part(**changes)), reason)


def test_a_split_key_in_another_format_is_refused(engine):
    block = KeyBlock(key_format_type=KeyFormatType.PKCS_8, key_value=KeyValue(key_material=os.urandom(64)))
    failure(register_part(engine, V21, split_part(key_block=block)), R.KEY_FORMAT_TYPE_NOT_SUPPORTED)
