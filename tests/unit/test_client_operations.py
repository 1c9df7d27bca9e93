"""The client's request encoding: the fast path equals the typed model's encoding byte for byte."""

from __future__ import annotations

import dataclasses

import pytest

from kmip_client import operations as ops
from kmip_client.calls import Calls
from kmip_client.protocol.model import ProtocolVersion, RequestHeader, RequestMessage
from kmip_client.protocol.model.attributes import attribute_for_version, attribute_name
from kmip_client.protocol.model.base import to_bytes
from kmip_client.protocol.model.messages import decode_message
from kmip_client.protocol.spec.enums import BatchErrorContinuationOption


@pytest.mark.parametrize("version", [(1, 0), (1, 4), (2, 0), (2, 1)])
@pytest.mark.parametrize("option", [None, BatchErrorContinuationOption.UNDO])
@pytest.mark.parametrize("count", [1, 3])
def test_encode_request_matches_the_model(version, option, count):
    calls = Calls(version)
    items = [calls.create("AES", 256, f"k{n}", None, {"x-n": n}).item for n in range(count)]
    fast = ops.encode_request(version, items, batch_option=option)
    if count > 1:
        items = [dataclasses.replace(it, unique_batch_item_id=n.to_bytes(4, "big")) for n, it in enumerate(items)]
    header = RequestHeader(
        protocol_version=ProtocolVersion(major=version[0], minor=version[1]),
        batch_error_continuation_option=option,
        batch_count=count,
    )
    assert fast == to_bytes(RequestMessage(header=header, batch_items=tuple(items)))
    assert decode_message(fast).protocol_version == version


def test_custom_attribute_names_follow_the_version():
    assert attribute_for_version("x-tenant", "blue", (1, 4)).name == "x-tenant"
    v2 = attribute_for_version("x-tenant", "blue", (2, 1))
    assert (v2.vendor, v2.name) == ("x", "tenant")
    assert attribute_name(v2) == "x-tenant"
    assert attribute_for_version("Object Group", "g", (2, 1)).vendor is None
